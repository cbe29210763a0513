//! `porthole proxy`: stdin/stdout relayed over one WebSocket, for ssh's ProxyCommand.

use std::process::ExitCode;

use porthole_core::tunnel::{open_app_stream, relay, Counters, RelayOptions, TunnelOptions};
use tokio_util::sync::CancellationToken;

use super::shutdown_signal;
use crate::target::{connect, find_app, CliError};

/// Arguments of `porthole proxy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Session name or id.
    session: String,
    /// App name (usually sshd).
    app: String,
}

/// Runs the command until either side closes.
pub async fn run(profile: Option<&str>, args: Args) -> Result<ExitCode, CliError> {
    let client = connect(profile).await?;
    let (session, app) = find_app(&client, &args.session, &args.app).await?;
    let stream = open_app_stream(
        &client,
        &session,
        &app.name,
        app.proxy_kind(),
        TunnelOptions::default().handshake_timeout,
    )
    .await?;
    let cancel = CancellationToken::new();
    let counters = Counters::default();
    let relayed = relay(
        tokio::io::stdin(),
        tokio::io::stdout(),
        stream,
        &counters,
        RelayOptions::default(),
        &cancel,
    );
    let outcome = tokio::select! {
        outcome = relayed => outcome,
        _ = shutdown_signal() => return Ok(ExitCode::SUCCESS),
    };
    match outcome {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(CliError::Usage(e.to_string())),
    }
}
