//! `porthole-emulator`: run the Backend.AI manager emulator.
//!
//! ```text
//! porthole-emulator --config FILE [--listen ADDR:PORT] [--control]
//! porthole-emulator --demo [--listen ADDR:PORT] [--control]
//! ```
//!
//! Once listening it prints exactly one line to stdout, `listening on http://ADDR:PORT`;
//! logs go to stderr (`RUST_LOG`). SIGINT/SIGTERM close the relays and exit 0. A bad config
//! is a one-line error and exit status 2.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use porthole_emulator::demo::{
    self, DEMO_ACCESS_KEY, DEMO_PASSWORD, DEMO_SECRET_KEY, DEMO_USERNAME,
};
use porthole_emulator::{Config, Emulator, RunningEmulator, StartOptions};

/// A Backend.AI-compatible manager on loopback, for tests, benchmarks and demos.
#[derive(Debug, Parser)]
#[command(name = "porthole-emulator", version)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["config", "demo"])))]
struct Args {
    /// The emulator config (TOML): keypairs, users, sessions and their apps' local targets.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve the built-in demo sessions, backed by demo services started in-process.
    #[arg(long)]
    demo: bool,
    /// The address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Also serve the HTTP control API under /_emulator/ (session status, relays, shutdown).
    #[arg(long)]
    control: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("porthole-emulator: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let options = StartOptions {
        control_http: args.control,
    };
    let (emulator, services) = if args.demo {
        match demo::start_demo_with(args.listen, options).await {
            Ok(demo) => (demo.emulator, Some(demo.services)),
            Err(e) => {
                eprintln!("porthole-emulator: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        let path = args.config.unwrap_or_default();
        let config = match Config::from_path(&path) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("porthole-emulator: {e}");
                return ExitCode::from(2);
            }
        };
        match Emulator::start_with(config, args.listen, options).await {
            Ok(emulator) => (emulator, None),
            Err(e) => {
                eprintln!("porthole-emulator: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    if services.is_some() {
        eprintln!(
            "porthole-emulator demo: access key {DEMO_ACCESS_KEY}, secret key {DEMO_SECRET_KEY}; \
             web login {DEMO_USERNAME} / {DEMO_PASSWORD}"
        );
    }
    let stop = wait_for_stop(&emulator);
    let mut stdout = std::io::stdout().lock();
    let printed =
        writeln!(stdout, "listening on {}", emulator.endpoint_url()).and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(e) = printed {
        eprintln!("porthole-emulator: cannot write to stdout: {e}");
    }
    stop.await;
    emulator.shutdown().await;
    if let Some(services) = services {
        services.shutdown().await;
    }
    ExitCode::SUCCESS
}

/// Waits for SIGINT, SIGTERM or a shutdown requested through the control API. The signal
/// handlers are installed when this is called, not when the future is first polled: call
/// it before the ready line, so a signal sent right after that line stops the emulator
/// cleanly (exit 0) instead of killing it.
fn wait_for_stop(emulator: &RunningEmulator) -> impl std::future::Future<Output = ()> + '_ {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt()).ok();
        let mut term = signal(SignalKind::terminate()).ok();
        async fn received(signal: Option<&mut tokio::signal::unix::Signal>) {
            match signal {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        async move {
            tokio::select! {
                () = received(int.as_mut()) => tracing::info!("SIGINT: shutting down"),
                () = received(term.as_mut()) => tracing::info!("SIGTERM: shutting down"),
                () = emulator.shutdown_requested() => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down"),
                () = emulator.shutdown_requested() => {}
            }
        }
    }
}
