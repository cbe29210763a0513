//! One click on an app: its tunnel (new, or the running one reused; on the remembered local
//! port when free), then what the click does for that app ([`AppAction`]): the browser for
//! web apps, a terminal running ssh with the session's key for `sshd`, nothing to launch
//! for raw TCP apps (the address is the product).

use porthole_core::api::{ApiError, ComputeSession};
use porthole_core::ssh::{self, KeyFile, KEY_FILE_NAME};
use porthole_core::tunnel::{TunnelError, TunnelInfo, TunnelTarget};
use serde::Serialize;

use crate::account::Connection;
use crate::error::UiError;
use crate::presenter::{self, AppAction, TunnelView};
use crate::settings::store::port_key;
use crate::terminal;
use crate::{lock, loopback, App};

/// What one click did.
#[derive(Debug, Clone, Serialize)]
pub struct OpenReply {
    /// The tunnel (new or reused).
    pub tunnel: TunnelView,
    /// What the click does for this app.
    pub action: AppAction,
    /// The URL of a web app.
    pub url: Option<String>,
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// The ssh command for `sshd` (with the downloaded key).
    pub ssh_command: Option<String>,
    /// Whether the browser or terminal was launched.
    pub launched: bool,
}

impl App {
    /// Starts (or reuses) the tunnel to `app` of a session and, with `launch`, opens the
    /// browser (web apps) or a terminal running ssh (`sshd`).
    pub async fn open_app(
        &self,
        session_id: &str,
        app: &str,
        launch: bool,
    ) -> Result<OpenReply, UiError> {
        let session = self.running_session(session_id).await?;
        let (conn, _) = lock(&self.account).connection()?;
        let port = session
            .app(app)
            .cloned()
            .ok_or_else(|| ApiError::AppNotFound {
                session: session.name.clone(),
                app: app.to_owned(),
            })?;
        let action = presenter::app_action(&port);
        let settings = self.settings.load().unwrap_or_default();
        let memory_key = port_key(&conn.info.endpoint, &session.name, app);
        let remembered = if settings.remember_ports {
            self.ports.get(&memory_key).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read remembered ports");
                None
            })
        } else {
            None
        };
        let target = TunnelTarget {
            client: conn.client.clone(),
            session: session.clone(),
            app: port,
            launch: Default::default(),
        };
        tracing::info!(session = %session.name, app, "opening");
        let options = self.tunnel_options.clone();
        let opened = match remembered {
            Some(p) => match self
                .tunnels
                .open(target.clone(), loopback(p), options.clone())
                .await
            {
                Err(TunnelError::PortInUse { .. }) => {
                    tracing::info!(port = p, "remembered port is taken; using a free one");
                    self.tunnels.open(target, loopback(0), options).await
                }
                other => other,
            },
            None => self.tunnels.open(target, loopback(0), options).await,
        };
        let tunnel = opened.map_err(|e| {
            tracing::warn!(session = %session.name, app, error = %e, "open failed");
            UiError::from(e)
        })?;
        if settings.remember_ports {
            if let Err(e) = self.ports.remember(&memory_key, tunnel.local_addr.port()) {
                tracing::warn!(error = %e, "cannot remember the local port");
            }
        }
        let url = tunnel.url.clone();
        let ssh_command = if action == AppAction::Terminal {
            Some(self.ssh_argv(&conn, &session, &tunnel).await?)
        } else {
            None
        };
        let mut launched = false;
        if launch {
            match (action, &url, &ssh_command) {
                (AppAction::Browser, Some(url), _) => {
                    self.launcher.open_url(url).map_err(|e| {
                        UiError::new(
                            "browser",
                            format!("could not open the browser ({e}); the app is at {url}"),
                        )
                    })?;
                    launched = true;
                }
                (AppAction::Terminal, _, Some(argv)) => {
                    self.run_in_terminal(settings.terminal_command.as_deref(), argv)?;
                    launched = true;
                }
                _ => {}
            }
        }
        Ok(OpenReply {
            address: tunnel.local_addr.to_string(),
            action,
            url,
            ssh_command: ssh_command.map(|argv| {
                argv.iter()
                    .map(|a| ssh::shell_quote(a))
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
            launched,
            tunnel: presenter::tunnel_view(&tunnel),
        })
    }

    /// `ssh ARGS...` for an sshd tunnel, downloading the session's key once per tunnel.
    async fn ssh_argv(
        &self,
        conn: &Connection,
        session: &ComputeSession,
        tunnel: &TunnelInfo,
    ) -> Result<Vec<String>, UiError> {
        let existing = lock(&self.keys)
            .get(&tunnel.id)
            .map(|k| k.path().to_owned());
        let key_path = match existing {
            Some(path) => path,
            None => {
                let bytes = conn
                    .client
                    .download_file(session, KEY_FILE_NAME)
                    .await
                    .map_err(|e| {
                        UiError::new(
                            e.kind(),
                            format!("cannot download the session's SSH key ({KEY_FILE_NAME}): {e}"),
                        )
                    })?;
                let key = KeyFile::write(&bytes, self.keys_dir.as_deref())?;
                let path = key.path().to_owned();
                lock(&self.keys).insert(tunnel.id, key);
                path
            }
        };
        // The session's host key is pinned in Porthole's known-hosts file (first use
        // records it; a changed key is refused by ssh in the terminal).
        let pin = self.ssh_paths.as_ref().map(|paths| paths.pin(&session.id));
        if let Some(pin) = &pin {
            pin.prepare().map_err(|e| {
                UiError::new(
                    "io",
                    format!("cannot create {}: {e}", pin.known_hosts().display()),
                )
            })?;
        }
        let mut argv = vec!["ssh".to_owned()];
        argv.extend(ssh::ssh_args(
            tunnel.local_addr,
            &key_path,
            &self.ssh_user,
            pin.as_ref(),
            &[],
        ));
        Ok(argv)
    }
}

impl App {
    /// Runs `command` in the terminal template `configured` names (the desktop's default
    /// when `None`).
    pub(crate) fn run_in_terminal(
        &self,
        configured: Option<&str>,
        command: &[String],
    ) -> Result<(), UiError> {
        let template = terminal::terminal_template(configured);
        let (program, args) = terminal::terminal_argv(&template, command)?;
        tracing::info!(terminal = %program, "launching a terminal");
        self.launcher.spawn(&program, &args).map_err(|e| {
            UiError::new(
                "terminal",
                format!("could not start the terminal {program:?} ({e}); set another in Settings or copy the ssh command"),
            )
        })
    }
}
