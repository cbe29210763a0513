//! `porthole proxy`: stdin/stdout relayed over one WebSocket, for ssh's ProxyCommand.

use std::process::ExitCode;

use porthole_core::tunnel::{
    relay_to_app, ConnectionError, Counters, Replay, TunnelOptions, TunnelTarget,
};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::shutdown_signal;
use crate::target::{connect, find_app, CliError, Scope};

/// Arguments of `porthole proxy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Session name or id.
    session: String,
    /// App name (usually sshd).
    app: String,
}

/// Runs the command until either side closes. A session whose app is still starting
/// (close 1013) is retried with backoff, as in tunnels.
pub async fn run(scope: Scope<'_>, args: Args) -> Result<ExitCode, CliError> {
    let client = connect(scope).await?;
    let (session, app) = find_app(&client, &args.session, &args.app).await?;
    let options = TunnelOptions::default();
    let replay = Replay::new(options.replay_limit);
    let target = TunnelTarget {
        client,
        session,
        app,
        launch: Default::default(),
    };
    let cancel = CancellationToken::new();
    let counters = Counters::default();
    let (mut stdin, mut stdout) = (tokio::io::stdin(), tokio::io::stdout());
    let relayed = relay_to_app(
        &mut stdin,
        &mut stdout,
        &target,
        &options,
        &counters,
        &cancel,
        replay,
    );
    let outcome = tokio::select! {
        outcome = relayed => outcome,
        _ = shutdown_signal() => return Ok(ExitCode::SUCCESS),
    };
    // EOF on stdout tells ssh the connection is over.
    let _ = stdout.shutdown().await;
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(ConnectionError::Handshake(e)) => Err(e.into()),
        Err(e) => Err(CliError::Usage(e.to_string())),
    }
}
