//! Compute sessions and their service ports as the client sees them, and the parsing of
//! the GraphQL `compute_session_list` reply (protocol doc §4).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{one_line, ApiError};

/// The protocol of a service port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppProtocol {
    /// A web app opened in the browser (Jupyter, TensorBoard, ttyd, ...).
    Http,
    /// A raw TCP app (sshd, databases).
    Tcp,
    /// An http app the image starts by itself.
    Preopen,
    /// Used inside the container only (23.09+): not tunnellable.
    Internal,
    /// An old terminal protocol: not tunnellable.
    Pty,
    /// VNC (26.x): relayed as TCP.
    Vnc,
    /// RDP (26.x): relayed as TCP.
    Rdp,
    /// Anything else a newer server may report.
    #[serde(untagged)]
    Other(String),
}

impl AppProtocol {
    fn parse(s: &str) -> Self {
        match s {
            "http" => Self::Http,
            "tcp" => Self::Tcp,
            "preopen" => Self::Preopen,
            "internal" => Self::Internal,
            "pty" => Self::Pty,
            "vnc" => Self::Vnc,
            "rdp" => Self::Rdp,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The protocol's name as the server spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Http => "http",
            Self::Tcp => "tcp",
            Self::Preopen => "preopen",
            Self::Internal => "internal",
            Self::Pty => "pty",
            Self::Vnc => "vnc",
            Self::Rdp => "rdp",
            Self::Other(s) => s,
        }
    }

    /// Whether the browser opens this app (http and preopen).
    pub fn is_web(&self) -> bool {
        matches!(self, Self::Http | Self::Preopen)
    }
}

/// One service port of a session (an "app").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    /// The app's name, e.g. `jupyter` or `sshd`.
    pub name: String,
    /// How the app speaks.
    pub protocol: AppProtocol,
    /// Ports inside the container; the first is the one tunnels reach.
    pub container_ports: Vec<u16>,
    /// Optional URL template from the image (`{protocol}://{host}:{port}/...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_template: Option<String>,
    /// Command-line options the image lets a client pass when it starts the app
    /// (`--arg`), e.g. `--logdir`; empty when it declares none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_arguments: Vec<String>,
    /// Environment variables the image lets a client set when it starts the app (`--env`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_envs: Vec<String>,
    /// Inference endpoints are served elsewhere and not tunnelled.
    #[serde(default)]
    pub is_inference: bool,
}

impl ServicePort {
    /// Whether Porthole offers a tunnel to this app (protocol doc §8.3).
    pub fn is_tunnellable(&self) -> bool {
        !self.is_inference
            && matches!(
                self.protocol,
                AppProtocol::Http
                    | AppProtocol::Tcp
                    | AppProtocol::Preopen
                    | AppProtocol::Vnc
                    | AppProtocol::Rdp
            )
    }

    /// The stream endpoint to use, following the WebUI: `tcpproxy` for sshd and raw TCP
    /// desktops, `httpproxy` otherwise (the server treats both alike).
    pub fn proxy_kind(&self) -> ProxyKind {
        let tcp_like = matches!(
            self.protocol,
            AppProtocol::Tcp | AppProtocol::Vnc | AppProtocol::Rdp
        );
        if tcp_like || self.name == "sshd" || self.name == "vscode-desktop" {
            ProxyKind::Tcp
        } else {
            ProxyKind::Http
        }
    }
}

/// How the server should start an app for a tunnel: which of its container ports, and
/// the arguments and environment the image allows (`port`, `arguments`, `envs` of the
/// stream endpoint). The default starts it as the image does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppLaunch {
    /// One of the app's container ports other than the first (API v9: 23.09 refuses any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<u16>,
    /// Options for the app's command line, e.g. `--logdir` = `/home/work/logs`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub arguments: BTreeMap<String, String>,
    /// Environment variables for the app.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub envs: BTreeMap<String, String>,
}

impl AppLaunch {
    /// Checks the options against what `app` declares, so a mistake is named before the
    /// server silently ignores it (it honours only declared names).
    pub fn check(&self, app: &ServicePort) -> Result<(), ApiError> {
        let bad = |detail: String| ApiError::BadLaunchOption {
            app: app.name.clone(),
            detail,
        };
        if let Some(port) = self.container_port {
            if !app.container_ports.contains(&port) {
                return Err(bad(format!(
                    "it has no container port {port} (its ports: {})",
                    list(app.container_ports.iter().map(u16::to_string))
                )));
            }
        }
        for (what, given, allowed) in [
            ("argument", &self.arguments, &app.allowed_arguments),
            ("environment variable", &self.envs, &app.allowed_envs),
        ] {
            if let Some(name) = given.keys().find(|k| !allowed.contains(k)) {
                return Err(bad(if allowed.is_empty() {
                    format!("its image allows no {what}s, so {name} would be ignored")
                } else {
                    format!(
                        "its image allows no {what} {name} (it allows: {})",
                        list(allowed.iter().cloned())
                    )
                }));
            }
        }
        Ok(())
    }

    /// The container port to ask for: none when it is the primary one, so that servers
    /// that cannot choose (23.09) still work.
    pub fn port_param(&self, app: &ServicePort) -> Option<u16> {
        self.container_port
            .filter(|p| app.container_ports.first() != Some(p))
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// Which stream endpoint a tunnel connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyKind {
    /// `.../httpproxy`
    Http,
    /// `.../tcpproxy`
    Tcp,
}

impl ProxyKind {
    /// The last path segment of the stream endpoint.
    pub fn path_segment(self) -> &'static str {
        match self {
            ProxyKind::Http => "httpproxy",
            ProxyKind::Tcp => "tcpproxy",
        }
    }
}

/// A compute session as listed by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeSession {
    /// The session UUID (v5+), or the session name on v4 servers, which have no ids.
    pub id: String,
    /// The session name.
    pub name: String,
    /// Status word, e.g. `RUNNING` or `PENDING`.
    pub status: String,
    /// Why the session is in its status (e.g. `no-available-instances`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_info: Option<String>,
    /// Container image, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Creation time (ISO 8601), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Its apps; empty while the session is not running.
    pub service_ports: Vec<ServicePort>,
}

impl ComputeSession {
    /// Whether the session is running and its apps can be tunnelled.
    pub fn is_running(&self) -> bool {
        matches!(self.status.as_str(), "RUNNING" | "RUNNING_DEGRADED")
    }

    /// The app with this name, if the session has it.
    pub fn app(&self, name: &str) -> Option<&ServicePort> {
        self.service_ports.iter().find(|p| p.name == name)
    }

    /// The apps Porthole offers, web apps first, then the rest, each group by name.
    pub fn tunnellable_apps(&self) -> Vec<&ServicePort> {
        let mut apps: Vec<&ServicePort> = self
            .service_ports
            .iter()
            .filter(|p| p.is_tunnellable())
            .collect();
        apps.sort_by(|a, b| (!a.protocol.is_web(), &a.name).cmp(&(!b.protocol.is_web(), &b.name)));
        apps
    }
}

/// The GraphQL query for v5+ servers.
pub const SESSION_LIST_QUERY: &str = "query($limit:Int!,$offset:Int!,$status:String){ compute_session_list(limit:$limit, offset:$offset, status:$status){ items { id name type status status_info image created_at service_ports } total_count } }";

/// The GraphQL query for v4 servers, whose sessions are known by name only.
pub const SESSION_LIST_QUERY_V4: &str = "query($limit:Int!,$offset:Int!,$status:String){ compute_session_list(limit:$limit, offset:$offset, status:$status){ items { sess_id status service_ports } total_count } }";

/// One page of a session listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPage {
    /// The sessions on this page.
    pub items: Vec<ComputeSession>,
    /// How many sessions match in total.
    pub total_count: u64,
}

fn protocol_error(what: impl Into<String>) -> ApiError {
    ApiError::UnexpectedReply(what.into())
}

/// Parses a GraphQL reply body into a page of sessions.
///
/// Accepts the standard `{data, errors}` envelope and the bare data object of
/// `/admin/graphql`. `service_ports` is a JSON string that holds JSON (parsed twice);
/// a plain array is accepted too, and a garbled value is an error naming the session.
pub fn parse_session_list(body: &[u8]) -> Result<SessionPage, ApiError> {
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| protocol_error(format!("the session list is not valid JSON ({e})")))?;
    if let Some(errors) = root.get("errors").and_then(Value::as_array) {
        if !errors.is_empty()
            && root
                .pointer("/data/compute_session_list")
                .is_none_or(Value::is_null)
        {
            let messages: Vec<String> = errors
                .iter()
                .map(|e| {
                    let message = e.get("message").and_then(Value::as_str);
                    one_line(message.unwrap_or("unknown error"), 200)
                })
                .collect();
            return Err(ApiError::GraphQl(messages.join("; ")));
        }
    }
    let data = root.get("data").unwrap_or(&root);
    let list = data
        .get("compute_session_list")
        .filter(|v| !v.is_null())
        .ok_or_else(|| protocol_error("the session list reply has no compute_session_list"))?;
    let items = list
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| protocol_error("the session list reply has no items array"))?;
    let sessions = items
        .iter()
        .map(parse_session)
        .collect::<Result<Vec<_>, _>>()?;
    let total_count = list
        .get("total_count")
        .and_then(Value::as_u64)
        .unwrap_or(sessions.len() as u64);
    Ok(SessionPage {
        items: sessions,
        total_count,
    })
}

fn opt_string(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn parse_session(item: &Value) -> Result<ComputeSession, ApiError> {
    if !item.is_object() {
        return Err(protocol_error("a session in the list is not an object"));
    }
    // v4 servers only have `sess_id`, which is the session name and also its handle.
    let name = opt_string(item, "name")
        .or_else(|| opt_string(item, "sess_id"))
        .ok_or_else(|| protocol_error("a session in the list has no name"))?;
    let id = opt_string(item, "id").unwrap_or_else(|| name.clone());
    let status = opt_string(item, "status").unwrap_or_else(|| "UNKNOWN".to_owned());
    let service_ports = match item.get("service_ports") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => {
            parse_service_ports(v).map_err(|e| protocol_error(format!("session {name:?}: {e}")))?
        }
    };
    Ok(ComputeSession {
        id,
        name,
        status,
        status_info: opt_string(item, "status_info"),
        image: opt_string(item, "image"),
        created_at: opt_string(item, "created_at"),
        service_ports,
    })
}

/// Parses a `service_ports` value: a JSON string holding a JSON array (the GraphQL
/// JSONString), or an array already; entries may use `container_ports` (listing) or
/// `ports` (`/apps`).
pub fn parse_service_ports(value: &Value) -> Result<Vec<ServicePort>, String> {
    let decoded;
    let array = match value {
        Value::String(s) => {
            decoded = serde_json::from_str::<Value>(s)
                .map_err(|e| format!("service_ports is not valid JSON ({e})"))?;
            match &decoded {
                Value::Null => return Ok(Vec::new()),
                Value::Array(a) => a,
                _ => return Err("service_ports does not hold a list".into()),
            }
        }
        Value::Array(a) => a,
        _ => return Err("service_ports is neither a JSON string nor a list".into()),
    };
    array.iter().map(parse_service_port).collect()
}

fn parse_service_port(v: &Value) -> Result<ServicePort, String> {
    let name = opt_string(v, "name").ok_or("a service port has no name")?;
    let protocol = AppProtocol::parse(
        v.get("protocol")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("service port {name:?} has no protocol"))?,
    );
    let ports = v
        .get("container_ports")
        .or_else(|| v.get("ports"))
        .and_then(Value::as_array)
        .ok_or_else(|| format!("service port {name:?} has no container ports"))?;
    let container_ports = ports
        .iter()
        .map(|p| {
            p.as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| format!("service port {name:?} has a bad port number {p}"))
        })
        .collect::<Result<Vec<u16>, String>>()?;
    let names = |key: &str| -> Vec<String> {
        v.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(ServicePort {
        allowed_arguments: names("allowed_arguments"),
        allowed_envs: names("allowed_envs"),
        name,
        protocol,
        container_ports,
        url_template: opt_string(v, "url_template"),
        is_inference: v
            .get("is_inference")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL_23_09: &str = r#"{"data":{"compute_session_list":{"items":[
      {"id":"5a1e0000-0000-4000-8000-00000000a001","name":"rig-running","type":"INTERACTIVE",
       "status":"RUNNING","status_info":null,"image":"cr.backend.ai/stable/python:3.11",
       "created_at":"2024-03-01T00:00:00+00:00",
       "service_ports":"[{\"name\": \"sshd\", \"protocol\": \"tcp\", \"container_ports\": [2200], \"host_ports\": [12200], \"is_inference\": false}, {\"name\": \"jupyter\", \"protocol\": \"http\", \"container_ports\": [8081], \"host_ports\": [18888], \"is_inference\": false}, {\"name\": \"term\", \"protocol\": \"pty\", \"container_ports\": [9000], \"host_ports\": [1]}]"},
      {"id":"5a1e0000-0000-4000-8000-00000000a002","name":"rig-pending","status":"PENDING",
       "status_info":"no-available-instances","service_ports":null}],"total_count":2}}}"#;

    #[test]
    fn parses_service_ports_twice() {
        let page = parse_session_list(REAL_23_09.as_bytes()).unwrap();
        assert_eq!(page.total_count, 2);
        let running = &page.items[0];
        assert!(running.is_running());
        assert_eq!(running.service_ports.len(), 3);
        assert_eq!(running.app("sshd").unwrap().container_ports, vec![2200]);
        assert_eq!(running.app("sshd").unwrap().proxy_kind(), ProxyKind::Tcp);
        assert_eq!(
            running.app("jupyter").unwrap().proxy_kind(),
            ProxyKind::Http
        );
        let offered: Vec<&str> = running
            .tunnellable_apps()
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(offered, ["jupyter", "sshd"]);
        let pending = &page.items[1];
        assert!(!pending.is_running());
        assert!(pending.service_ports.is_empty());
        assert_eq!(
            pending.status_info.as_deref(),
            Some("no-available-instances")
        );
    }

    #[test]
    fn parses_v4_shape_and_bare_data() {
        let body = r#"{"compute_session_list":{"items":[{"sess_id":"old","status":"RUNNING",
            "service_ports":"[{\"name\":\"jupyter\",\"protocol\":\"http\",\"container_ports\":[8080]}]"}]}}"#;
        let page = parse_session_list(body.as_bytes()).unwrap();
        assert_eq!(page.items[0].id, "old");
        assert_eq!(page.items[0].name, "old");
        assert_eq!(page.total_count, 1);
    }

    #[test]
    fn graphql_errors_and_garbage_are_errors_not_panics() {
        let bogus = r#"{"data":{"compute_session_list":null},"errors":[{"message":"'BOGUS'"}]}"#;
        assert!(
            matches!(parse_session_list(bogus.as_bytes()), Err(ApiError::GraphQl(m)) if m == "'BOGUS'")
        );
        for body in [
            "",
            "{",
            "[]",
            "{\"data\":{}}",
            "{\"data\":{\"compute_session_list\":{\"items\":[1]}}}",
            "{\"data\":{\"compute_session_list\":{\"items\":[{\"name\":\"a\",\"service_ports\":\"[{\\\"name\\\":1}]\"}]}}}",
            "{\"data\":{\"compute_session_list\":{\"items\":[{\"name\":\"a\",\"service_ports\":\"not json\"}]}}}",
            "{\"data\":{\"compute_session_list\":{\"items\":[{\"name\":\"a\",\"service_ports\":\"{}\"}]}}}",
            "{\"data\":{\"compute_session_list\":{\"items\":[{\"name\":\"a\",\"service_ports\":\"[{\\\"name\\\":\\\"x\\\",\\\"protocol\\\":\\\"tcp\\\",\\\"container_ports\\\":[70000]}]\"}]}}}",
        ] {
            assert!(parse_session_list(body.as_bytes()).is_err(), "{body}");
        }
    }

    /// Found by `cargo fuzz` (target `session_list`): GraphQL error messages with line
    /// breaks made a multi-line error.
    #[test]
    fn graphql_error_messages_stay_one_line() {
        let body =
            br#"{"data":null,"errors":[{"message":"Cannot query field 'x'\non type\r\n'Q'."}]}"#;
        let e = parse_session_list(body).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the server rejected the session query: Cannot query field 'x' on type 'Q'."
        );
    }

    #[test]
    fn accepts_a_plain_array_and_the_apps_shape() {
        let v: Value = serde_json::from_str(
            r#"[{"name":"vnc","protocol":"vnc","ports":[5900]},{"name":"x","protocol":"weird","ports":[1]},
                {"name":"llm","protocol":"http","ports":[8000],"is_inference":true}]"#,
        )
        .unwrap();
        let ports = parse_service_ports(&v).unwrap();
        assert!(ports[0].is_tunnellable());
        assert_eq!(ports[0].proxy_kind(), ProxyKind::Tcp);
        assert_eq!(ports[1].protocol, AppProtocol::Other("weird".into()));
        assert!(!ports[1].is_tunnellable());
        assert!(!ports[2].is_tunnellable());
    }
}
