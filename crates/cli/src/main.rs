//! `porthole`: list Backend.AI sessions and tunnel their apps from the terminal.

#![forbid(unsafe_code)]

mod commands;
mod launch;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Reach the apps inside your Backend.AI sessions: Jupyter, TensorBoard, SSH and more.
///
/// Configured like the official client (BACKEND_ENDPOINT, BACKEND_ACCESS_KEY,
/// BACKEND_SECRET_KEY, BACKEND_ENDPOINT_TYPE=api|session, BACKEND_USERNAME,
/// BACKEND_PASSWORD), or with a saved profile (`porthole profile add`).
#[derive(Debug, Parser)]
#[command(name = "porthole", version)]
struct Cli {
    /// Use this saved profile instead of the BACKEND_* environment.
    #[arg(long, global = true)]
    profile: Option<String>,

    /// Go through this HTTP proxy (`http://[user:password@]host:port`), or `direct` for
    /// none; without it HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY apply (or the
    /// profile's proxy).
    #[arg(long, global = true, value_name = "URL")]
    proxy: Option<String>,

    /// Log more (repeat for even more); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List your sessions and their apps.
    Sessions(commands::sessions::Args),
    /// Open a local port that tunnels to an app of a session, until Ctrl-C.
    Open(commands::open::Args),
    /// SSH into a session (downloads its key, tunnels sshd, runs ssh).
    Ssh(commands::ssh::Args),
    /// Write `Host <session>.porthole` entries for plain ssh/scp/rsync (--remove undoes it).
    SshConfig(commands::ssh_config::Args),
    /// Relay stdin/stdout to an app over one WebSocket (for ssh's ProxyCommand).
    Proxy(commands::proxy::Args),
    /// Manage saved endpoints (secrets go to the OS keychain).
    #[command(subcommand)]
    Profile(commands::profile::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("porthole: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let scope = target::Scope {
        profile: cli.profile.as_deref(),
        proxy: cli.proxy.as_deref(),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Sessions(args) => commands::sessions::run(scope, args).await,
            Command::Open(args) => commands::open::run(scope, args).await,
            Command::Ssh(args) => commands::ssh::run(scope, args).await,
            Command::Proxy(args) => commands::proxy::run(scope, args).await,
            Command::SshConfig(args) => commands::ssh_config::run(scope, args).await,
            Command::Profile(cmd) => commands::profile::run(cmd),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            match e.advice() {
                Some(advice) => eprintln!("porthole: {e}; {advice}"),
                None => eprintln!("porthole: {e}"),
            }
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,porthole_core=info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
