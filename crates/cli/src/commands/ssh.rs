//! `porthole ssh`: download the session's key, tunnel sshd, run the system `ssh`.

use std::process::{ExitCode, ExitStatus};

use porthole_core::ssh::{ssh_args, KeyFile, KEY_FILE_NAME};
use porthole_core::tunnel::{Tunnel, TunnelOptions, TunnelTarget};
use tokio_util::sync::CancellationToken;

use super::listen_addr;
use crate::target::{connect, find_app, CliError};

/// Arguments of `porthole ssh`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Login user inside the container.
    #[arg(long, default_value = porthole_core::ssh::CONTAINER_USER)]
    user: String,
    /// Session name or id.
    session: String,
    /// Arguments passed to ssh after the destination (a remote command, -L forwards, ...).
    #[arg(last = true)]
    ssh_args: Vec<String>,
}

/// Runs the command; the exit code is ssh's.
pub async fn run(profile: Option<&str>, args: Args) -> Result<ExitCode, CliError> {
    let client = connect(profile).await?;
    let (session, app) = find_app(&client, &args.session, "sshd").await?;
    let key_bytes = client.download_file(&session, KEY_FILE_NAME).await?;
    let key = KeyFile::write(&key_bytes, None)?;
    let root = CancellationToken::new();
    let target = TunnelTarget {
        client,
        session,
        app,
        launch: Default::default(),
    };
    let tunnel = Tunnel::start(
        target,
        listen_addr(None, None)?,
        TunnelOptions::default(),
        &root,
    )
    .await?;
    let child = tokio::process::Command::new("ssh")
        .args(ssh_args(
            tunnel.local_addr(),
            key.path(),
            &args.user,
            &args.ssh_args,
        ))
        .kill_on_drop(true)
        .spawn();
    let status = match child {
        Ok(child) => wait_for_ssh(child).await,
        Err(e) => Err(e),
    };
    tunnel.stop().await;
    drop(key);
    let status = status
        .map_err(|e| CliError::Usage(format!("cannot run ssh: {e}; is OpenSSH installed?")))?;
    Ok(exit_code_of(status))
}

/// ssh's exit code, or the shell's `128 + signal` when ssh was killed by a signal (Ctrl-C
/// that lands before ssh has installed its own handler kills it outright: 130).
fn exit_code_of(status: ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return ExitCode::from(u8::try_from(128 + signal).unwrap_or(1));
        }
    }
    ExitCode::FAILURE
}

/// Waits for ssh while keeping this process alive through signals, so the key is always
/// removed and ssh's exit code returned: Ctrl-C (SIGINT) reaches ssh from the terminal
/// itself and is ignored here; SIGTERM and SIGHUP are passed on to ssh.
async fn wait_for_ssh(mut child: tokio::process::Child) -> std::io::Result<ExitStatus> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return child.wait().await;
        };
        let pid = child.id();
        loop {
            let forward = tokio::select! {
                status = child.wait() => return status,
                _ = int.recv() => None,
                _ = term.recv() => Some(libc::SIGTERM),
                _ = hup.recv() => Some(libc::SIGHUP),
            };
            if let (Some(sig), Some(pid)) = (forward, pid) {
                // SAFETY: kill(2) on our own child's pid, which wait() has not reaped yet.
                unsafe {
                    libc::kill(pid as libc::pid_t, sig);
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        child.wait().await
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        // wait(2) status words: exit code in the second byte, a signal in the low bits.
        assert_eq!(exit_code_of(ExitStatus::from_raw(0)), ExitCode::from(0));
        assert_eq!(
            exit_code_of(ExitStatus::from_raw(255 << 8)),
            ExitCode::from(255)
        );
        assert_eq!(
            exit_code_of(ExitStatus::from_raw(libc::SIGINT)),
            ExitCode::from(130)
        );
        assert_eq!(
            exit_code_of(ExitStatus::from_raw(libc::SIGTERM)),
            ExitCode::from(143)
        );
    }
}
