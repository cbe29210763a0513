//! Running the real tools (iperf3, sockperf, wrk) and reading process figures from /proc.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// One iperf3 run.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Bytes per second received.
    pub rate: f64,
    /// Bytes received.
    pub bytes: u64,
    /// CPU seconds iperf3 itself used, client and server together (its own report): the
    /// part of the path's cost that is the same for every contender.
    pub ends_cpu: f64,
}

/// Throughput through `addr` with iperf3 (`reverse`: server to client). iperf3's server
/// takes one test at a time and needs a moment to reset after one ends, so a "busy"
/// answer is retried briefly.
pub async fn throughput(
    addr: SocketAddr,
    reverse: bool,
    streams: u32,
    secs: u32,
) -> Result<Throughput> {
    let mut attempt = 0;
    loop {
        match throughput_once(addr, reverse, streams, secs).await {
            Err(e) if e.to_string().contains("busy") && attempt < 20 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => return other,
        }
    }
}

async fn throughput_once(
    addr: SocketAddr,
    reverse: bool,
    streams: u32,
    secs: u32,
) -> Result<Throughput> {
    let mut cmd = Command::new("iperf3");
    cmd.args([
        "-c",
        &addr.ip().to_string(),
        "-p",
        &addr.port().to_string(),
        "-t",
        &secs.to_string(),
        "-P",
        &streams.to_string(),
        "-J",
    ]);
    if reverse {
        cmd.arg("-R");
    }
    let out = tokio::time::timeout(Duration::from_secs(u64::from(secs) + 30), cmd.output())
        .await
        .context("iperf3 timed out")??;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).context("iperf3 JSON")?;
    if let Some(error) = json.get("error") {
        bail!("iperf3: {error}");
    }
    let received = &json["end"]["sum_received"];
    let cpu = &json["end"]["cpu_utilization_percent"];
    let percent =
        cpu["host_total"].as_f64().unwrap_or(0.0) + cpu["remote_total"].as_f64().unwrap_or(0.0);
    Ok(Throughput {
        rate: received["bits_per_second"]
            .as_f64()
            .context("bits_per_second")?
            / 8.0,
        bytes: received["bytes"].as_u64().unwrap_or(0),
        ends_cpu: percent / 100.0 * received["seconds"].as_f64().unwrap_or(0.0),
    })
}

/// One-way latency percentiles (µs) of 64-byte ping-pong through `addr` with sockperf.
pub async fn latency(addr: SocketAddr, secs: u32) -> Result<(f64, f64)> {
    let out = tokio::time::timeout(
        Duration::from_secs(u64::from(secs) + 30),
        Command::new("sockperf")
            .args([
                "pp",
                "--tcp",
                "-i",
                &addr.ip().to_string(),
                "-p",
                &addr.port().to_string(),
                "-m",
                "64",
                "-t",
                &secs.to_string(),
            ])
            .output(),
    )
    .await
    .context("sockperf timed out")??;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let pct = |p: &str| -> Result<f64> {
        text.lines()
            .find(|l| l.contains(&format!("percentile {p} =")))
            .and_then(|l| l.rsplit('=').next())
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("sockperf printed no p{p}: {text}"))
    };
    Ok((pct("50.000")?, pct("99.000")?))
}

/// Connection churn with wrk: new connection per request (`Connection: close`).
/// Returns (requests per second, p50 latency in ms, errors).
pub async fn churn(addr: SocketAddr, secs: u32, connections: u32) -> Result<(f64, f64, u64)> {
    let out = tokio::time::timeout(
        Duration::from_secs(u64::from(secs) + 30),
        Command::new("wrk")
            .args([
                "-t1",
                &format!("-c{connections}"),
                &format!("-d{secs}s"),
                "--latency",
                "-H",
                "Connection: close",
                &format!("http://{addr}/"),
            ])
            .output(),
    )
    .await
    .context("wrk timed out")??;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("wrk printed no Requests/sec: {text}"))?;
    let p50 = text
        .lines()
        .find(|l| l.trim_start().starts_with("50%"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(parse_wrk_duration)
        .with_context(|| format!("wrk printed no 50% latency: {text}"))?;
    let errors = text
        .lines()
        .filter(|l| l.contains("Socket errors") || l.contains("Non-2xx"))
        .flat_map(|l| {
            l.split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum();
    Ok((rps, p50, errors))
}

fn parse_wrk_duration(text: &str) -> Option<f64> {
    let (num, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let value: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => value / 1000.0,
        "ms" => value,
        "s" => value * 1000.0,
        "m" => value * 60_000.0,
        _ => return None,
    })
}

/// Resident memory of a process now and at its peak, in KiB.
pub fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// CPU seconds (user + system) a process has used.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("stat format")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    // SAFETY: sysconf with a valid name has no preconditions.
    let ticks = unsafe { libc_sysconf(2) } as f64; // _SC_CLK_TCK
    Ok((utime + stime) / ticks.max(1.0))
}

/// CPU seconds `pid` used since it had used `before`, when both are known.
pub fn cpu_used_since(before: Option<f64>, pid: Option<u32>) -> Result<Option<f64>> {
    match (before, pid) {
        (Some(before), Some(pid)) => Ok(Some(cpu_seconds(pid)? - before)),
        _ => Ok(None),
    }
}

extern "C" {
    #[link_name = "sysconf"]
    fn libc_sysconf(name: i32) -> i64;
}

/// Outcome of the scale scenario.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScaleResult {
    /// Connections opened.
    pub connections: usize,
    /// Connections that failed to move their data.
    pub errors: usize,
    /// Bytes echoed in total.
    pub bytes: u64,
    /// Wall time.
    pub seconds: f64,
}

/// Opens `n` connections through `addr` to an echo server, keeps them all open, and
/// moves `rounds` × 16 KiB through each; calls `while_open` once all are open and idle.
pub async fn scale(
    addr: SocketAddr,
    n: usize,
    rounds: usize,
    while_open: impl FnOnce(),
) -> Result<ScaleResult> {
    let start = Instant::now();
    let mut sockets = Vec::with_capacity(n);
    let mut errors = 0;
    for _ in 0..n {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => sockets.push(s),
            Err(_) => errors += 1,
        }
    }
    // One round trip on each proves the tunnel behind it is up before measuring memory.
    let mut tasks = Vec::new();
    for mut socket in sockets {
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            let data: Vec<u8> = (0..16 * 1024).map(|i| (i % 253) as u8).collect();
            socket.write_all(&data[..64]).await?;
            socket.read_exact(&mut buf[..64]).await?;
            Ok::<_, std::io::Error>((socket, data, buf))
        }));
    }
    let mut open = Vec::new();
    for task in tasks {
        match task.await? {
            Ok(v) => open.push(v),
            Err(_) => errors += 1,
        }
    }
    while_open();
    let mut tasks = Vec::new();
    for (mut socket, data, mut buf) in open {
        tasks.push(tokio::spawn(async move {
            let mut moved = 0u64;
            for _ in 0..rounds {
                socket.write_all(&data).await?;
                socket.read_exact(&mut buf).await?;
                if buf != data {
                    return Err(std::io::Error::other("echo mismatch"));
                }
                moved += 2 * data.len() as u64;
            }
            Ok::<_, std::io::Error>(moved)
        }));
    }
    let mut bytes = 0;
    for task in tasks {
        match tokio::time::timeout(Duration::from_secs(120), task).await {
            Ok(Ok(Ok(moved))) => bytes += moved,
            _ => errors += 1,
        }
    }
    Ok(ScaleResult {
        connections: n,
        errors,
        bytes,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Connection setup: one new connection at a time through `addr`, each sending one HTTP
/// request and waiting for the reply's status line, which must say 200 (a refusal would
/// be fast and measure nothing). Returns the p50 and p90 in ms.
pub async fn setup_latency(addr: SocketAddr, count: usize) -> Result<(f64, f64)> {
    let mut samples = Vec::with_capacity(count);
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    for _ in 0..count {
        let start = Instant::now();
        let mut socket = tokio::net::TcpStream::connect(addr).await?;
        socket.set_nodelay(true)?;
        socket.write_all(request.as_bytes()).await?;
        let mut status = [0u8; 12];
        socket.read_exact(&mut status).await?;
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            status.ends_with(b" 200"),
            "setup: {addr} answered {:?}, not 200",
            String::from_utf8_lossy(&status)
        );
    }
    samples.sort_by(f64::total_cmp);
    Ok((samples[count / 2], samples[count * 9 / 10]))
}

/// What the owner check (`porthole_core::tunnel::peer`) costs per accepted connection, in
/// µs: a tunnel's guard asks the kernel `count` times who owns the client end of one
/// loopback connection.
pub fn owner_check_micros(count: u32) -> Result<f64> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let local = listener.local_addr()?;
    let _client = std::net::TcpStream::connect(local)?;
    let (_server, peer) = listener.accept()?;
    let guard = porthole_core::tunnel::peer::PeerGuard::for_this_user()
        .ok_or_else(|| anyhow::anyhow!("no owner check on this platform"))?;
    let started = Instant::now();
    for _ in 0..count {
        if let porthole_core::tunnel::peer::PeerVerdict::Unknown(e) = guard.check(local, peer) {
            bail!("the owner check failed: {e}");
        }
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / f64::from(count))
}
