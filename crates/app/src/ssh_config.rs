//! Settings → SSH config: a `Host <session>.porthole` for every running session with sshd
//! of the current profile, reached through the `porthole` command as ProxyCommand (see
//! [`porthole_core::ssh_config`]).

use std::path::PathBuf;

use porthole_core::ssh_config::{self, ProxySpec, SshConfigPaths};
use serde::Serialize;

use crate::error::UiError;
use crate::{lock, App};

/// What "Write SSH config" did.
#[derive(Debug, Clone, Serialize)]
pub struct SshConfigReply {
    /// The hosts written, e.g. `train-1.porthole`.
    pub hosts: Vec<String>,
    /// The managed config file.
    pub config: String,
    /// The `Include` line in the user's config.
    pub include: String,
    /// The user's config file.
    pub user_config: String,
    /// Where its previous version was saved, when Porthole changed it now.
    pub backup: Option<String>,
}

/// The `porthole` command the managed SSH config runs as ProxyCommand:
/// `$PORTHOLE_CLI`, else next to this app's binary (both ship together), else on PATH.
pub fn porthole_command() -> Result<PathBuf, UiError> {
    let name = if cfg!(windows) {
        "porthole.exe"
    } else {
        "porthole"
    };
    let from_env = std::env::var_os("PORTHOLE_CLI").map(PathBuf::from);
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name));
    from_env
        .into_iter()
        .chain(beside)
        .chain(on_path)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            UiError::new(
                "no-cli",
                "the porthole command is not installed (ssh runs it to reach sessions); \
                 install it next to the app or on your PATH",
            )
        })
}

impl App {
    /// Writes a `Host <session>.porthole` for every running session with sshd of the
    /// current profile, reached through the `porthole` command.
    pub async fn write_ssh_config(&self) -> Result<SshConfigReply, UiError> {
        let (conn, _) = lock(&self.account).connection()?;
        if conn.info.demo {
            return Err(UiError::new(
                "demo",
                "the demo's sessions exist only while Porthole runs; sign in with a saved \
                 profile to write an SSH config",
            ));
        }
        let paths = self.ssh_paths()?;
        let program = porthole_command()?;
        let hosts = ssh_config::running_hosts(&conn.client).await?;
        let proxy = ProxySpec {
            program,
            profile: Some(conn.info.profile.clone()),
            user: self.ssh_user.clone(),
        };
        let installed = ssh_config::install(&paths, &hosts, &proxy)?;
        tracing::info!(hosts = installed.hosts.len(), "ssh config written");
        Ok(SshConfigReply {
            hosts: installed.hosts,
            config: installed.config.display().to_string(),
            include: paths.include_line(),
            user_config: paths.user_config().display().to_string(),
            backup: installed.backup.map(|b| b.display().to_string()),
        })
    }

    /// Takes the managed SSH config out again; `true` when there was something to remove.
    pub fn remove_ssh_config(&self) -> Result<bool, UiError> {
        let removed = ssh_config::remove(&self.ssh_paths()?)?;
        Ok(removed.include_removed || removed.managed_removed)
    }

    fn ssh_paths(&self) -> Result<SshConfigPaths, UiError> {
        self.ssh_paths
            .clone()
            .ok_or_else(|| UiError::new("no-home", "cannot find your home directory"))
    }
}
