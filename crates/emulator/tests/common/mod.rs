//! Helpers shared by the emulator's integration tests: its standard config and accounts,
//! and the workspace's test kit (`porthole-testkit`) bound to a running emulator.
#![allow(dead_code, unused_imports)]

use std::net::SocketAddr;

use porthole_emulator::{Config, Emulator, RunningEmulator, StartOptions};
pub use porthole_testkit::signed::{
    close, expect_close, handshake_error, iso_date, next_message, read_exact_binary, send_binary,
    Signing, Ws,
};
pub use porthole_testkit::{closed_port, echo_server, greeting_server, sink_server, within, WAIT};
use tokio_tungstenite::tungstenite;

pub const AK: &str = "AKIAEXAMPLE0000000001";
pub const SK: &str = "secret-key-one";
pub const AK2: &str = "AKIAEXAMPLE0000000002";
pub const SK2: &str = "secret-key-two";
pub const USER: &str = "user@example.com";
pub const PASSWORD: &str = "pw";

/// The standard test config: two keypairs, one user, sessions `train-1` (RUNNING, with
/// `echo` backed by `echo`), `queued` (PENDING) and `other` (owned by AK2).
pub fn config_toml(api_version: &str, echo: SocketAddr, extra: &str) -> String {
    format!(
        r#"
api_version = "{api_version}"
[[keypairs]]
access_key = "{AK}"
secret_key = "{SK}"
[[keypairs]]
access_key = "{AK2}"
secret_key = "{SK2}"
[[users]]
username = "{USER}"
password = "{PASSWORD}"
access_key = "{AK}"

[[sessions]]
name = "train-1"
id = "5a1e0000-0000-4000-8000-00000000a001"
created_at = "2024-03-28T05:06:07+00:00"
files = {{ id_container = {{ content = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n" }} }}
[[sessions.services]]
name = "echo"
protocol = "tcp"
container_ports = [7007, 7008]
target = "{echo}"
[[sessions.services]]
name = "jupyter"
protocol = "http"
container_ports = [8081]
target = "{echo}"
url_template = "http://{{host}}:{{port}}/"

[[sessions]]
name = "queued"
status = "PENDING"
status_info = "no-available-instances"
created_at = "2024-03-28T05:00:00+00:00"
[[sessions.services]]
name = "echo"
container_ports = [7007]
target = "{echo}"

[[sessions]]
name = "other"
access_key = "{AK2}"
[[sessions.services]]
name = "echo"
container_ports = [7007]
target = "{echo}"
{extra}
"#
    )
}

/// Starts an emulator from TOML on 127.0.0.1:0.
pub async fn start(toml: &str) -> RunningEmulator {
    start_with(toml, false).await
}

/// Starts an emulator from TOML on 127.0.0.1:0, optionally with the HTTP control API.
pub async fn start_with(toml: &str, control_http: bool) -> RunningEmulator {
    let config = Config::from_toml_str(toml).unwrap();
    Emulator::start_with(
        config,
        "127.0.0.1:0".parse().unwrap(),
        StartOptions { control_http },
    )
    .await
    .unwrap()
}

/// Signing as [`AK`] for API `version`, dated now.
pub fn signing(version: &str) -> Signing<'_> {
    Signing::new(AK, SK, version)
}

/// The date clients send now.
pub fn now_date() -> String {
    iso_date(chrono::Utc::now())
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A signed HTTP request (JSON body when `body` is given).
pub async fn signed(
    emu: &RunningEmulator,
    signing: &Signing<'_>,
    method: &str,
    path_and_query: &str,
    body: Option<&str>,
) -> reqwest::Response {
    let host = emu.local_addr().to_string();
    let mut headers = signing.headers(method, path_and_query, &host);
    let mut req = http().request(
        method.parse().unwrap(),
        format!("{}{}", emu.endpoint_url(), path_and_query),
    );
    for (k, v) in headers.drain(..) {
        req = req.header(k, v);
    }
    if let Some(body) = body {
        req = req.body(body.to_owned());
    }
    within(req.send()).await.unwrap()
}

/// A signed JSON POST with `Content-Type: application/json`.
pub async fn post_json(
    emu: &RunningEmulator,
    version: &str,
    path: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    let mut s = signing(version);
    s.content_type = Some("application/json");
    signed(emu, &s, "POST", path, Some(&body.to_string())).await
}

/// The §4 listing query.
pub const LIST_QUERY: &str = "query($limit:Int!,$offset:Int!,$status:String){ compute_session_list(limit:$limit, offset:$offset, status:$status){ items { id name type status status_info image scaling_group group_id created_at service_ports } total_count } }";

/// Lists sessions as AK through `/admin/gql`.
pub async fn list(emu: &RunningEmulator, version: &str, status: Option<&str>) -> serde_json::Value {
    let body = serde_json::json!({
        "query": LIST_QUERY,
        "variables": {"limit": 50, "offset": 0, "status": status},
    });
    let resp = post_json(emu, version, "/admin/gql", &body).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// Opens a signed WebSocket to the emulator's `path_and_query`.
pub async fn ws_signed(
    emu: &RunningEmulator,
    signing: &Signing<'_>,
    path_and_query: &str,
) -> Result<Ws, tungstenite::Error> {
    porthole_testkit::signed::ws_signed(emu.local_addr(), signing, path_and_query).await
}

/// Opens a WebSocket to the emulator with extra headers and no signature (session mode).
pub async fn ws_with_headers(
    emu: &RunningEmulator,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, tungstenite::Error> {
    porthole_testkit::signed::ws_with_headers(emu.local_addr(), path_and_query, headers).await
}

/// Logs in through `/server/login`; returns the session id.
pub async fn login(emu: &RunningEmulator, username: &str, password: &str) -> reqwest::Response {
    within(
        http()
            .post(format!("{}/server/login", emu.endpoint_url()))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send(),
    )
    .await
    .unwrap()
}
