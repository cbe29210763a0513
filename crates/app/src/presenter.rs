//! How the desktop app presents sessions, apps and tunnels: display names and icons of
//! known apps, what one click does, why a session's apps are unavailable, and the tray
//! menu as data (so tests can assert what the tray shows).

use porthole_core::api::{ComputeSession, ServicePort};
use porthole_core::tunnel::{TunnelInfo, TunnelState};
use serde::{Serialize, Serializer};

use crate::error::capitalise;

/// What one click on an app does once its tunnel is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppAction {
    /// Open its URL in the browser.
    Browser,
    /// Open a terminal running `ssh`.
    Terminal,
    /// Nothing to launch: the local address is the product (raw TCP).
    Address,
}

/// An app as the sessions view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppView {
    /// The app's name on the server, e.g. `jupyterlab`.
    pub name: String,
    /// Its display name, e.g. `JupyterLab`.
    pub label: String,
    /// Its icon id: jupyter, jupyterlab, tensorboard, vscode, ttyd, sshd or generic.
    pub icon: &'static str,
    /// What a click does.
    pub action: AppAction,
    /// The protocol as the server spells it.
    pub protocol: String,
}

/// A session as the sessions view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionView {
    /// The session id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its status word, e.g. `RUNNING`.
    pub status: String,
    /// running, waiting, ending or error: how the status dot is coloured.
    pub status_class: &'static str,
    /// The image without its registry, e.g. `python:3.11-ubuntu22.04`.
    pub image: Option<String>,
    /// Creation time (ISO 8601) when known, for the age column.
    pub created_at: Option<String>,
    /// The apps a click can open (tunnellable only), web apps first; empty while the
    /// session is not running.
    pub apps: Vec<AppView>,
    /// Why no app can be opened now, in words; `None` when apps are available.
    pub unavailable: Option<String>,
}

/// `(server name, display name, icon)` of the apps Porthole knows by name.
const KNOWN_APPS: &[(&str, &str, &str)] = &[
    ("jupyter", "Jupyter", "jupyter"),
    ("jupyterlab", "JupyterLab", "jupyterlab"),
    ("tensorboard", "TensorBoard", "tensorboard"),
    ("vscode", "VS Code", "vscode"),
    ("vscode-desktop", "VS Code Desktop", "vscode"),
    ("ttyd", "Terminal", "ttyd"),
    ("sshd", "SSH", "sshd"),
    ("sftpd", "SFTP", "sshd"),
    ("rstudio", "RStudio", "generic"),
    ("mlflow-ui", "MLflow", "generic"),
    ("nniboard", "NNI", "generic"),
    ("digits", "DIGITS", "generic"),
    ("h2o-dai", "H2O", "generic"),
];

/// The display name of an app: the known name, else the server's name capitalised.
pub fn app_label(name: &str) -> String {
    if let Some((_, label, _)) = KNOWN_APPS.iter().find(|(n, _, _)| *n == name) {
        return (*label).to_owned();
    }
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The icon id of an app.
pub fn app_icon(name: &str) -> &'static str {
    KNOWN_APPS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or("generic", |(_, _, icon)| icon)
}

/// What a click on `port` does.
pub fn app_action(port: &ServicePort) -> AppAction {
    action_of(&port.name, port.protocol.is_web())
}

/// What a click on the app `name` does; `web` when it is reached in a browser.
fn action_of(name: &str, web: bool) -> AppAction {
    if name == "sshd" {
        AppAction::Terminal
    } else if web {
        AppAction::Browser
    } else {
        AppAction::Address
    }
}

/// The view of one app.
pub fn app_view(port: &ServicePort) -> AppView {
    AppView {
        name: port.name.clone(),
        label: app_label(&port.name),
        icon: app_icon(&port.name),
        action: app_action(port),
        protocol: port.protocol.as_str().to_owned(),
    }
}

/// The image reference without its registry and project (`cr.backend.ai/stable/x:1` →
/// `x:1`).
pub fn short_image(image: &str) -> String {
    image.rsplit('/').next().unwrap_or(image).to_owned()
}

fn status_class(status: &str) -> &'static str {
    match status {
        "RUNNING" | "RUNNING_DEGRADED" => "running",
        "TERMINATING" | "TERMINATED" | "CANCELLED" => "ending",
        "ERROR" => "error",
        _ => "waiting",
    }
}

/// Why a session that is not running offers no apps, in words.
pub fn unavailable_reason(session: &ComputeSession) -> Option<String> {
    if session.is_running() {
        if session.tunnellable_apps().is_empty() {
            return Some("This session has no apps Porthole can open.".into());
        }
        return None;
    }
    let info = session.status_info.as_deref().filter(|i| !i.is_empty());
    let why = match session.status.as_str() {
        "PENDING" => match info {
            Some("no-available-instances") => {
                "Waiting for resources: no agent has room for it yet.".to_owned()
            }
            Some(info) => format!("Waiting in the queue ({info})."),
            None => "Waiting in the queue for resources.".to_owned(),
        },
        "SCHEDULED" | "PREPARING" | "PREPARED" | "CREATING" => {
            "Starting: the container is being prepared.".to_owned()
        }
        "PULLING" => "Starting: the image is being pulled.".to_owned(),
        "RESTARTING" => "Restarting.".to_owned(),
        "SUSPENDED" => "Suspended.".to_owned(),
        "TERMINATING" => "Ending: the session is being terminated.".to_owned(),
        "TERMINATED" | "CANCELLED" => "Ended.".to_owned(),
        "ERROR" => match info {
            Some(info) => format!("Failed ({info})."),
            None => "Failed.".to_owned(),
        },
        other => format!("It is {other}."),
    };
    let tail = if matches!(status_class(&session.status), "waiting") {
        " Its apps appear here when it is running."
    } else {
        ""
    };
    Some(format!("{why}{tail}"))
}

/// The view of one session.
pub fn session_view(session: &ComputeSession) -> SessionView {
    let apps = if session.is_running() {
        session
            .tunnellable_apps()
            .into_iter()
            .map(app_view)
            .collect()
    } else {
        Vec::new()
    };
    SessionView {
        id: session.id.clone(),
        name: session.name.clone(),
        status: session.status.clone(),
        status_class: status_class(&session.status),
        image: session.image.as_deref().map(short_image),
        created_at: session.created_at.clone(),
        apps,
        unavailable: unavailable_reason(session),
    }
}

/// Where the user reaches a tunnel: `host:port` of its URL for web apps (their own
/// `*.localhost` name), else the local address.
pub fn tunnel_address(info: &TunnelInfo) -> String {
    info.url
        .as_deref()
        .and_then(|url| url.strip_prefix("http://"))
        .and_then(|rest| rest.split('/').next())
        .map_or_else(|| info.local_addr.to_string(), str::to_owned)
}

/// The tray icon's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrayState {
    /// No tunnel runs.
    Idle,
    /// At least one tunnel runs and none is failing.
    Active,
    /// A tunnel is failing or the endpoint reported an error.
    Error,
}

/// An entry of a tunnel's submenu in the tray.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelItem {
    /// Open the web app in the browser.
    Open,
    /// Copy the URL or address.
    CopyAddress,
    /// Stop the tunnel.
    Stop,
}

impl TunnelItem {
    /// The entry's words.
    pub fn label(self) -> &'static str {
        match self {
            TunnelItem::Open => "Open",
            TunnelItem::CopyAddress => "Copy address",
            TunnelItem::Stop => "Stop",
        }
    }

    fn word(self) -> &'static str {
        match self {
            TunnelItem::Open => "open",
            TunnelItem::CopyAddress => "copy",
            TunnelItem::Stop => "stop",
        }
    }
}

/// An entry of the tray menu after the tunnels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayItem {
    /// Stop every tunnel.
    StopAll,
    /// Show the window.
    Show,
    /// Quit, closing every tunnel.
    Quit,
}

impl TrayItem {
    /// The entry's words.
    pub fn label(self) -> &'static str {
        match self {
            TrayItem::StopAll => "Stop all",
            TrayItem::Show => "Show Porthole",
            TrayItem::Quit => "Quit",
        }
    }

    fn word(self) -> &'static str {
        match self {
            TrayItem::StopAll => "stop-all",
            TrayItem::Show => "show",
            TrayItem::Quit => "quit",
        }
    }
}

// The tray model serialises each entry as its words, as the tray shows them.
impl Serialize for TunnelItem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

impl Serialize for TrayItem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

/// What a click on a tray entry asks for; its menu id is [`TrayCommand::id`], read back
/// by [`TrayCommand::parse`] (an id it does not know is `None`, never another command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayCommand {
    /// An entry of tunnel `id`'s submenu.
    Tunnel(u64, TunnelItem),
    /// An entry after the tunnels.
    App(TrayItem),
}

impl TrayCommand {
    /// The menu item id.
    pub fn id(self) -> String {
        match self {
            TrayCommand::Tunnel(id, item) => format!("{}:{id}", item.word()),
            TrayCommand::App(item) => item.word().to_owned(),
        }
    }

    /// The command of a menu item id.
    pub fn parse(id: &str) -> Option<TrayCommand> {
        let app = [TrayItem::StopAll, TrayItem::Show, TrayItem::Quit];
        if let Some(item) = app.into_iter().find(|i| i.word() == id) {
            return Some(TrayCommand::App(item));
        }
        let (word, n) = id.split_once(':')?;
        let item = [TunnelItem::Open, TunnelItem::CopyAddress, TunnelItem::Stop]
            .into_iter()
            .find(|i| i.word() == word)?;
        Some(TrayCommand::Tunnel(n.parse().ok()?, item))
    }
}

/// One tunnel's submenu in the tray.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrayTunnel {
    /// The tunnel id.
    pub id: u64,
    /// `session · App`.
    pub label: String,
    /// Where the user reaches it: `jupyterlab-s.localhost:8890` for web apps, else the
    /// local address, e.g. `127.0.0.1:2200`.
    pub address: String,
    /// The tunnel's state.
    pub state: TunnelState,
    /// Its entries, in order.
    pub items: Vec<TunnelItem>,
}

/// The tray menu as data: what the tray shows, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrayMenu {
    /// The icon state.
    pub state: TrayState,
    /// The first (disabled) line, e.g. `Porthole — 2 tunnels`.
    pub title: String,
    /// One submenu per running tunnel.
    pub tunnels: Vec<TrayTunnel>,
    /// The entries after the tunnels.
    pub actions: Vec<TrayItem>,
}

/// `session · App` for a tunnel.
pub fn tunnel_label(info: &TunnelInfo) -> String {
    format!("{} · {}", info.session_name, app_label(&info.key.app))
}

/// A tunnel as the window shows it: the engine's record, with the words the window needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TunnelView {
    /// The tunnel itself.
    #[serde(flatten)]
    pub info: TunnelInfo,
    /// The app's display name.
    pub app_label: String,
    /// `session · App`.
    pub label: String,
    /// Where the user reaches it (see [`tunnel_address`]).
    pub address: String,
    /// What opening it does: the browser (web apps, which have a URL), a terminal
    /// (`sshd`), or nothing but its address.
    pub action: AppAction,
    /// Who besides the user tried to use it, or that anyone can: one line, when there is
    /// something to say.
    pub notice: Option<String>,
}

/// A change to the set of tunnels, as the window hears of it.
// Cloned into every listener anyway; boxing would add an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TunnelEventView {
    /// A tunnel started or its status changed.
    Updated(TunnelView),
    /// A tunnel was stopped and is gone.
    Removed {
        /// Its id.
        id: u64,
    },
}

/// The window's view of a tunnel.
pub fn tunnel_view(info: &TunnelInfo) -> TunnelView {
    TunnelView {
        app_label: app_label(&info.key.app),
        label: tunnel_label(info),
        address: tunnel_address(info),
        action: action_of(&info.key.app, info.url.is_some()),
        notice: tunnel_notice(info),
        info: info.clone(),
    }
}

/// What the tunnel row says about who may use it: the other users it refused, or that
/// anyone can.
pub fn tunnel_notice(info: &TunnelInfo) -> Option<String> {
    if !info.status.refused.is_empty() {
        let refused: Vec<String> = info.status.refused.iter().map(|r| r.to_string()).collect();
        return Some(capitalise(&format!(
            "{}: only you can use this tunnel",
            refused.join(", ")
        )));
    }
    info.peer_check.warning().map(capitalise)
}

/// The tray menu for these tunnels; `endpoint_error` marks the icon red.
pub fn tray_menu(tunnels: &[TunnelInfo], endpoint_error: bool) -> TrayMenu {
    let running: Vec<&TunnelInfo> = tunnels
        .iter()
        .filter(|t| t.status.state.is_running())
        .collect();
    let failing = tunnels
        .iter()
        .any(|t| matches!(t.status.state, TunnelState::Failed | TunnelState::Degraded));
    let state = if failing || endpoint_error {
        TrayState::Error
    } else if running.is_empty() {
        TrayState::Idle
    } else {
        TrayState::Active
    };
    let title = match running.len() {
        0 => "Porthole — no tunnels".to_owned(),
        1 => "Porthole — 1 tunnel".to_owned(),
        n => format!("Porthole — {n} tunnels"),
    };
    let mut actions = Vec::new();
    if !running.is_empty() {
        actions.push(TrayItem::StopAll);
    }
    actions.extend([TrayItem::Show, TrayItem::Quit]);
    TrayMenu {
        state,
        title,
        tunnels: running
            .iter()
            .map(|t| TrayTunnel {
                id: t.id,
                label: tunnel_label(t),
                address: tunnel_address(t),
                state: t.status.state,
                items: if t.url.is_some() {
                    vec![TunnelItem::Open, TunnelItem::CopyAddress, TunnelItem::Stop]
                } else {
                    vec![TunnelItem::CopyAddress, TunnelItem::Stop]
                },
            })
            .collect(),
        actions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use porthole_core::api::AppProtocol;
    use porthole_core::tunnel::{PeerCheck, TunnelKey, TunnelStatus};

    fn port(name: &str, protocol: AppProtocol) -> ServicePort {
        ServicePort {
            name: name.into(),
            protocol,
            container_ports: vec![8080],
            url_template: None,
            is_inference: false,
            allowed_arguments: Vec::new(),
            allowed_envs: Vec::new(),
        }
    }

    fn session(status: &str, info: Option<&str>) -> ComputeSession {
        ComputeSession {
            id: "id-1".into(),
            name: "train".into(),
            status: status.into(),
            status_info: info.map(str::to_owned),
            image: Some("cr.backend.ai/stable/python:3.11-ubuntu22.04".into()),
            created_at: Some("2024-01-01T00:00:00Z".into()),
            service_ports: vec![
                port("sshd", AppProtocol::Tcp),
                port("ttyd", AppProtocol::Http),
                port("jupyter", AppProtocol::Http),
                port("ipykernel", AppProtocol::Pty),
                port("internal-x", AppProtocol::Internal),
                port("redis", AppProtocol::Tcp),
            ],
        }
    }

    #[test]
    fn running_sessions_offer_tunnellable_apps_web_first() {
        let view = session_view(&session("RUNNING", None));
        let names: Vec<_> = view.apps.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["jupyter", "ttyd", "redis", "sshd"]);
        assert_eq!(view.image.as_deref(), Some("python:3.11-ubuntu22.04"));
        assert_eq!(view.status_class, "running");
        assert_eq!(view.unavailable, None);
        let sshd = view.apps.iter().find(|a| a.name == "sshd").unwrap();
        assert_eq!(
            (sshd.label.as_str(), sshd.icon, sshd.action),
            ("SSH", "sshd", AppAction::Terminal)
        );
        let redis = view.apps.iter().find(|a| a.name == "redis").unwrap();
        assert_eq!(
            (redis.label.as_str(), redis.icon, redis.action),
            ("Redis", "generic", AppAction::Address)
        );
        assert_eq!(view.apps[0].action, AppAction::Browser);
    }

    #[test]
    fn other_sessions_say_why() {
        let view = session_view(&session("PENDING", Some("no-available-instances")));
        assert!(view.apps.is_empty());
        let why = view.unavailable.unwrap();
        assert!(
            why.contains("Waiting for resources") && why.contains("when it is running"),
            "{why}"
        );
        assert_eq!(view.status_class, "waiting");
        let view = session_view(&session("TERMINATING", None));
        assert_eq!(view.status_class, "ending");
        assert!(view.unavailable.unwrap().starts_with("Ending"));
        let view = session_view(&session("ERROR", Some("image-pull-failed")));
        assert_eq!(
            view.unavailable.as_deref(),
            Some("Failed (image-pull-failed).")
        );
        let mut bare = session("RUNNING", None);
        bare.service_ports.retain(|p| !p.is_tunnellable());
        assert!(session_view(&bare).unavailable.unwrap().contains("no apps"));
    }

    fn info(id: u64, app: &str, protocol: &str, state: TunnelState) -> TunnelInfo {
        TunnelInfo {
            id,
            key: TunnelKey {
                endpoint: "http://127.0.0.1:1".into(),
                session_id: "id-1".into(),
                app: app.into(),
            },
            session_name: "train".into(),
            protocol: protocol.into(),
            local_addr: format!("127.0.0.1:{}", 9000 + id).parse().unwrap(),
            url: (protocol == "http")
                .then(|| format!("http://{app}-train.localhost:{}/", 9000 + id)),
            peer_check: PeerCheck::OwnerOnly,
            status: TunnelStatus {
                state,
                ..TunnelStatus::starting()
            },
        }
    }

    #[test]
    fn tray_menu_lists_running_tunnels() {
        let idle = tray_menu(&[], false);
        assert_eq!(
            (idle.state, idle.title.as_str()),
            (TrayState::Idle, "Porthole — no tunnels")
        );
        assert_eq!(idle.actions, [TrayItem::Show, TrayItem::Quit]);
        let tunnels = [
            info(1, "jupyter", "http", TunnelState::Active),
            info(2, "sshd", "tcp", TunnelState::Listening),
        ];
        let menu = tray_menu(&tunnels, false);
        assert_eq!(menu.state, TrayState::Active);
        assert_eq!(menu.title, "Porthole — 2 tunnels");
        assert_eq!(menu.tunnels[0].label, "train · Jupyter");
        assert_eq!(
            menu.tunnels[0].items,
            [TunnelItem::Open, TunnelItem::CopyAddress, TunnelItem::Stop]
        );
        assert_eq!(
            menu.tunnels[1].items,
            [TunnelItem::CopyAddress, TunnelItem::Stop]
        );
        assert_eq!(menu.tunnels[0].address, "jupyter-train.localhost:9001");
        assert_eq!(menu.tunnels[1].address, "127.0.0.1:9002");
        assert_eq!(
            menu.actions,
            [TrayItem::StopAll, TrayItem::Show, TrayItem::Quit]
        );
        let json = serde_json::to_value(&menu).unwrap();
        assert_eq!(json["actions"][0], "Stop all");
        assert_eq!(json["tunnels"][0]["items"][1], "Copy address");
        assert_eq!(tray_menu(&tunnels, true).state, TrayState::Error);
        let failing = [info(3, "jupyter", "http", TunnelState::Degraded)];
        assert_eq!(tray_menu(&failing, false).state, TrayState::Error);
        assert_eq!(tunnel_view(&tunnels[1]).label, "train · SSH");
    }

    #[test]
    fn tray_ids_read_back_and_unknown_ones_are_nothing() {
        for command in [
            TrayCommand::App(TrayItem::Quit),
            TrayCommand::App(TrayItem::StopAll),
            TrayCommand::Tunnel(7, TunnelItem::CopyAddress),
            TrayCommand::Tunnel(8, TunnelItem::Open),
        ] {
            assert_eq!(TrayCommand::parse(&command.id()), Some(command));
        }
        for unknown in ["", "title", "tunnel:3", "stop:x", "bogus:1", "quit:1"] {
            assert_eq!(TrayCommand::parse(unknown), None, "{unknown}");
        }
    }
}
