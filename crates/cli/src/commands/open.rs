//! `porthole open`: a local port tunnelled to an app, until SIGINT/SIGTERM.

use std::process::ExitCode;

use porthole_core::api::{AppLaunch, BackendClient, ComputeSession};
use porthole_core::ssh::{ssh_command_line, KeyFile, KEY_FILE_NAME};
use porthole_core::tunnel::{Tunnel, TunnelOptions, TunnelState, TunnelTarget};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{host_key_pin, listen_addr, shutdown_signal};
use crate::launch;
use crate::target::{connect, find_app, CliError, Scope};

/// Arguments of `porthole open`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Session name or id.
    session: String,
    /// App name, e.g. jupyter or sshd.
    app: String,
    /// Local port (default: a free one).
    #[arg(long)]
    port: Option<u16>,
    /// Local address to listen on (default 127.0.0.1; anything else exposes the app).
    #[arg(long)]
    bind: Option<String>,
    /// Do not open the browser (http apps) or print the ssh command (sshd).
    #[arg(long)]
    no_launch: bool,
    /// Print the ready line as one JSON object.
    #[arg(long)]
    json: bool,
    /// How long to hold a connection while the app is not listening yet (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    start_timeout: u64,
    /// Which of the app's container ports to reach (default: its first; API v9 servers).
    #[arg(long, value_name = "PORT")]
    app_port: Option<u16>,
    /// An option for the app's command line, if its image allows it (repeatable).
    #[arg(long = "arg", value_name = "NAME=VALUE", value_parser = parse_pair, allow_hyphen_values = true)]
    args: Vec<(String, String)>,
    /// An environment variable for the app, if its image allows it (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_pair)]
    envs: Vec<(String, String)>,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

/// The one line `open` prints once the port is listening.
#[derive(Debug, Serialize)]
struct Ready<'a> {
    session: &'a str,
    app: &'a str,
    protocol: &'a str,
    local_addr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    /// sshd only: the command that logs in, and the key it uses (removed on exit).
    #[serde(skip_serializing_if = "Option::is_none")]
    ssh_command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_file: Option<String>,
}

/// Runs the command.
pub async fn run(scope: Scope<'_>, args: Args) -> Result<ExitCode, CliError> {
    let bind = listen_addr(args.bind.as_deref(), args.port)?;
    let client = connect(scope).await?;
    let (session, app) = find_app(&client, &args.session, &args.app).await?;
    let launch = AppLaunch {
        container_port: args.app_port,
        arguments: args.args.iter().cloned().collect(),
        envs: args.envs.iter().cloned().collect(),
    };
    launch.check(&app)?;
    if !args.json {
        eprintln!(
            "Starting {} in {}… (the server may take up to 30 s)",
            app.name, session.name
        );
    }
    let root = CancellationToken::new();
    let target = TunnelTarget {
        client: client.clone(),
        session: session.clone(),
        app: app.clone(),
        launch,
    };
    let options = TunnelOptions {
        app_start_timeout: std::time::Duration::from_secs(args.start_timeout),
        ..TunnelOptions::default()
    };
    let start_timeout = args.start_timeout;
    let tunnel = Tunnel::start(target, bind, options, &root).await?;
    if let Some(warning) = tunnel.peer_check().warning() {
        eprintln!(
            "porthole: warning: {} on {}: {warning}",
            app.name,
            tunnel.local_addr()
        );
    }
    // Before the ready line: a SIGTERM right after it must stop us cleanly (exit 0).
    let stop = shutdown_signal();
    let local = tunnel.local_addr();
    let url = tunnel.url().map(str::to_owned);
    // The key (sshd only) lives as long as the tunnel, then is removed.
    let key = if args.no_launch || app.name != "sshd" {
        None
    } else {
        download_key(&client, &session).await
    };
    let ready = Ready {
        session: &session.name,
        app: &app.name,
        protocol: app.protocol.as_str(),
        local_addr: local.to_string(),
        url: url.clone(),
        ssh_command: match &key {
            Some(k) => Some(ssh_command_line(
                local,
                k.path(),
                host_key_pin(&session.id)?.as_ref(),
            )),
            None => None,
        },
        key_file: key.as_ref().map(|k| k.path().display().to_string()),
    };
    if args.json {
        let line = serde_json::to_string(&ready).map_err(|e| CliError::Usage(e.to_string()))?;
        println!("{line}");
    } else {
        match &url {
            Some(url) => println!("{} of {} is at {url}", app.name, session.name),
            None => println!("{} of {} is at {local}", app.name, session.name),
        }
        if let Some(command) = &ready.ssh_command {
            println!("{command}");
        }
    }
    if let (Some(url), false) = (&url, args.no_launch) {
        if let Err(e) = launch::open_browser(url) {
            eprintln!("porthole: could not open a browser ({e}); open {url} yourself");
        }
    }
    if !args.json {
        eprintln!("Press Ctrl-C to stop.");
    }
    let mut status = tunnel.status();
    let app_name = app.name.clone();
    let reporter = async {
        let mut last_error = None;
        let mut starting = false;
        let mut refused_users = 0;
        while status.changed().await.is_ok() {
            let (state, current, refused) = {
                let now = status.borrow_and_update();
                (now.state, now.last_error.clone(), now.refused.clone())
            };
            // Each other user once, when their first connection is refused.
            for peer in refused.iter().skip(refused_users) {
                eprintln!(
                    "porthole: refused a connection from {}: only you can use this tunnel",
                    peer.user
                );
            }
            refused_users = refused_users.max(refused.len());
            if state == TunnelState::Failed {
                // The tunnel stopped itself (the session ended); said below.
                return current;
            }
            let now_starting = state == TunnelState::Starting;
            if now_starting && !starting {
                eprintln!(
                    "porthole: {app_name} is not listening yet; holding connections until it \
                     is (up to {start_timeout} s)"
                );
            }
            starting = now_starting;
            if current.is_some() && current != last_error {
                if let Some(error) = &current {
                    eprintln!("porthole: connection failed: {error}");
                }
                last_error = current;
            }
        }
        None
    };
    let failed = tokio::select! {
        _ = stop => None,
        failed = reporter => failed,
    };
    tunnel.stop().await;
    if let Some(reason) = failed {
        return Err(CliError::Usage(reason));
    }
    if !args.json {
        eprintln!("Stopped; port {} is released.", local.port());
    }
    Ok(ExitCode::SUCCESS)
}

async fn download_key(client: &BackendClient, session: &ComputeSession) -> Option<KeyFile> {
    let key = match client.download_file(session, KEY_FILE_NAME).await {
        Ok(bytes) => KeyFile::write(&bytes, None),
        Err(e) => {
            eprintln!("porthole: could not download the session's SSH key: {e}");
            return None;
        }
    };
    key.map_err(|e| eprintln!("porthole: {e}")).ok()
}
