//! The targets behind every contender: real tools' servers (iperf3, sockperf) and two
//! small in-process servers (TCP echo, a minimal HTTP responder).

use std::net::SocketAddr;
use std::process::Stdio;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

/// All targets of one run.
pub struct Targets {
    /// iperf3 server (bulk throughput).
    pub iperf: SocketAddr,
    /// sockperf server (ping-pong latency).
    pub sockperf: SocketAddr,
    /// HTTP responder (connection churn).
    pub http: SocketAddr,
    /// TCP echo (scale).
    pub echo: SocketAddr,
    _children: Vec<Child>,
}

/// A loopback port that is free right now (and not handed out before in this run), for
/// tools that cannot take port 0.
pub fn free_port() -> Result<u16> {
    Ok(porthole_testkit::net::try_free_port()?)
}

/// Waits until `port` accepts connections, failing early if `child` exits. The tools here
/// (iperf3, sockperf, websocat) print nothing reliable when ready; connecting is the event.
pub async fn wait_for_port(port: u16, child: &mut Child, what: &str) -> Result<()> {
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited at start: {status}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    bail!("{what} did not listen on {port} within 10 s")
}

/// Starts `cmd` (a tool that prints nothing useful) with its output discarded, and waits
/// until it listens on `port`. `what` names it in errors; `hint` says how to install it.
pub async fn start_listening(
    cmd: &mut Command,
    port: u16,
    what: &str,
    hint: &str,
) -> Result<Child> {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("{what} ({hint})"))?;
    wait_for_port(port, &mut child, what).await?;
    Ok(child)
}

impl Targets {
    /// Starts every target on loopback.
    pub async fn start() -> Result<Targets> {
        let iperf_port = free_port()?;
        let iperf = start_listening(
            Command::new("iperf3").args(["-s", "-B", "127.0.0.1", "-p", &iperf_port.to_string()]),
            iperf_port,
            "iperf3",
            "apt-get install iperf3",
        )
        .await?;
        let sockperf_port = free_port()?;
        let sockperf = start_listening(
            Command::new("sockperf").args([
                "sr",
                "--tcp",
                "-i",
                "127.0.0.1",
                "-p",
                &sockperf_port.to_string(),
            ]),
            sockperf_port,
            "sockperf",
            "apt-get install sockperf",
        )
        .await?;
        Ok(Targets {
            iperf: ([127, 0, 0, 1], iperf_port).into(),
            sockperf: ([127, 0, 0, 1], sockperf_port).into(),
            http: http_server().await?,
            echo: porthole_testkit::net::try_echo_server().await?,
            _children: vec![iperf, sockperf],
        })
    }
}

/// A minimal HTTP/1.1 server answering every request with a 2-byte body, honouring
/// `Connection: close` (what wrk sends in the churn scenario).
pub async fn http_server() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            tokio::spawn(async move {
                let (r, mut w) = socket.into_split();
                let mut reader = BufReader::new(r);
                loop {
                    let mut close = false;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match reader.read_line(&mut line).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        if line.to_ascii_lowercase().starts_with("connection: close") {
                            close = true;
                        }
                        if line == "\r\n" || line == "\n" {
                            break;
                        }
                    }
                    let reply: &[u8] = if close {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    } else {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                    };
                    if w.write_all(reply).await.is_err() || close {
                        let _ = w.shutdown().await;
                        // Drain until the client closes, so the close is the client's.
                        let mut sink = [0u8; 64];
                        let _ = reader.read(&mut sink).await;
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}
