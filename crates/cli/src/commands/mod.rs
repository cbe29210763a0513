//! One module per subcommand.

pub mod open;
pub mod profile;
pub mod proxy;
pub mod sessions;
pub mod ssh;
pub mod ssh_config;

use std::net::{IpAddr, SocketAddr};

use porthole_core::known_hosts::HostKeyPin;
use porthole_core::ssh_config::SshConfigPaths;

use crate::target::CliError;

/// The host-key pin of session `session_id` in `~/.ssh/porthole/known_hosts`, its folder
/// made; `None` (host keys unchecked) when there is no home directory to keep it in.
pub fn host_key_pin(session_id: &str) -> Result<Option<HostKeyPin>, CliError> {
    let Ok(paths) = SshConfigPaths::default_location() else {
        eprintln!("porthole: warning: no home directory: the session's host key is not checked");
        return Ok(None);
    };
    let pin = paths.pin(session_id);
    pin.prepare().map_err(|e| {
        CliError::Usage(format!(
            "cannot create {}: {e}",
            pin.known_hosts().display()
        ))
    })?;
    Ok(Some(pin))
}

/// Resolves `--bind` and `--port` into the address to listen on (loopback by default).
pub fn listen_addr(bind: Option<&str>, port: Option<u16>) -> Result<SocketAddr, CliError> {
    let ip: IpAddr = match bind {
        None => IpAddr::from([127, 0, 0, 1]),
        Some(text) => text.parse().map_err(|_| {
            CliError::Usage(format!(
                "--bind {text:?} is not an IP address (e.g. 127.0.0.1 or ::1)"
            ))
        })?,
    };
    Ok(SocketAddr::new(ip, port.unwrap_or(0)))
}

/// Waits for SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled, so call it before announcing readiness: a signal sent right
/// after the ready line then stops the command cleanly instead of killing it.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let handlers = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        );
        async move {
            match handlers {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
