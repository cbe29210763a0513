//! `porthole ssh`: download the session's key, tunnel sshd, run the system `ssh` with the
//! session's host key pinned (trust on first use, `porthole_core::known_hosts`).

use std::process::{ExitCode, ExitStatus, Stdio};

use porthole_core::known_hosts::{host_key_changed, HostKeyPin};
use porthole_core::ssh::{ssh_args, KeyFile, KEY_FILE_NAME};
use porthole_core::tunnel::{Tunnel, TunnelOptions, TunnelTarget};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::{host_key_pin, listen_addr};
use crate::target::{connect, find_app, CliError, Scope};

/// Arguments of `porthole ssh`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Login user inside the container.
    #[arg(long, default_value = porthole_core::ssh::CONTAINER_USER)]
    user: String,
    /// Session name or id.
    session: String,
    /// Forget the host key pinned for this session first (when you know why it changed,
    /// e.g. the image made a new one), and pin the one met now.
    #[arg(long)]
    forget_host_key: bool,
    /// Arguments passed to ssh after the destination (a remote command, -L forwards, ...).
    #[arg(last = true)]
    ssh_args: Vec<String>,
}

/// Runs the command; the exit code is ssh's.
pub async fn run(scope: Scope<'_>, args: Args) -> Result<ExitCode, CliError> {
    let client = connect(scope).await?;
    let (session, app) = find_app(&client, &args.session, "sshd").await?;
    let key_bytes = client.download_file(&session, KEY_FILE_NAME).await?;
    let key = KeyFile::write(&key_bytes, None)?;
    let pin = host_key_pin(&session.id)?;
    if let (true, Some(pin)) = (args.forget_host_key, &pin) {
        let forgotten = pin.forget().map_err(|e| {
            CliError::Usage(format!(
                "cannot change {}: {e}",
                pin.known_hosts().display()
            ))
        })?;
        if forgotten {
            eprintln!(
                "porthole: forgot the host key pinned for session {}; the one met now is pinned",
                session.name
            );
        }
    }
    let session_name = session.name.clone();
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
    // ssh's own error output passes through us, so that a refused host key can be
    // explained; its prompts and the session itself use the terminal, untouched.
    let child = tokio::process::Command::new("ssh")
        .args(ssh_args(
            tunnel.local_addr(),
            key.path(),
            &args.user,
            pin.as_ref(),
            &args.ssh_args,
        ))
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let (status, key_changed) = match child {
        Ok(mut child) => {
            let stderr = child.stderr.take();
            let (status, key_changed) = tokio::join!(wait_for_ssh(child), pass_on_stderr(stderr));
            (status, key_changed)
        }
        Err(e) => (Err(e), false),
    };
    tunnel.stop().await;
    drop(key);
    let status = status
        .map_err(|e| CliError::Usage(format!("cannot run ssh: {e}; is OpenSSH installed?")))?;
    if key_changed {
        if let Some(pin) = &pin {
            eprintln!("porthole: {}", key_changed_message(&session_name, pin));
        }
    }
    Ok(exit_code_of(status))
}

/// What a refused host key means, and how to go on when the user knows why.
fn key_changed_message(session: &str, pin: &HostKeyPin) -> String {
    format!(
        "the SSH host key of session {session} is not the one pinned at your first \
         connection, so ssh refused it: someone may be intercepting the connection, or the \
         session made a new key (some images do at every start). If you know why, run \
         `porthole ssh {session} --forget-host-key` (or `ssh-keygen -R {alias} -f {file}`).",
        alias = pin.alias(),
        file = pin.known_hosts().display(),
    )
}

/// Copies ssh's error output to ours as it comes; returns whether it said the host key
/// changed. Only a bounded tail is kept for that check.
async fn pass_on_stderr(stderr: Option<tokio::process::ChildStderr>) -> bool {
    const TAIL: usize = 4096;
    let Some(mut stderr) = stderr else {
        return false;
    };
    let mut out = tokio::io::stderr();
    let mut buf = [0u8; 4096];
    let mut tail: Vec<u8> = Vec::new();
    let mut changed = false;
    while let Ok(n) = stderr.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let _ = out.write_all(&buf[..n]).await;
        let _ = out.flush().await;
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > TAIL {
            tail.drain(..tail.len() - TAIL);
        }
        changed |= host_key_changed(&String::from_utf8_lossy(&tail));
    }
    changed
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
                _ = term.recv() => Some(nix::sys::signal::Signal::SIGTERM),
                _ = hup.recv() => Some(nix::sys::signal::Signal::SIGHUP),
            };
            if let (Some(sig), Some(pid)) = (forward, pid.and_then(|p| i32::try_from(p).ok())) {
                // Our own child, which wait() has not reaped yet.
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
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
            exit_code_of(ExitStatus::from_raw(
                nix::sys::signal::Signal::SIGINT as i32
            )),
            ExitCode::from(130)
        );
        assert_eq!(
            exit_code_of(ExitStatus::from_raw(
                nix::sys::signal::Signal::SIGTERM as i32
            )),
            ExitCode::from(143)
        );
    }
}
