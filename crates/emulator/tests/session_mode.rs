//! Session mode (the web server in front of the manager) over real sockets.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const V7: &str = "v7.20230615";

fn cookie_id(resp: &reqwest::Response) -> String {
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    let id = cookie
        .strip_prefix("AIOHTTP_SESSION=")
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("; HttpOnly; Max-Age=604800; Path=/"),
        "{cookie}"
    );
    id
}

#[tokio::test]
async fn login_func_and_logout() {
    let echo = echo_server().await;
    let emu = start(&config_toml(V7, echo, "")).await;
    let url = emu.endpoint_url();

    // Anonymous /func/ and /func/ping.
    let v: Value = within(http().get(format!("{url}/func/")).send())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"version": V7, "manager": "23.09.10"}));
    let v: Value = within(http().get(format!("{url}/func/ping")).send())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["details"], "Success");

    // No session: 401 from the web server itself.
    let resp = within(
        http()
            .post(format!("{url}/func/admin/gql"))
            .json(&json!({"query": "{ __typename }"}))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"type": "https://api.backend.ai/probs/auth-failed", "title": "Unauthorized access"})
    );

    // Missing field: 400.
    let resp = within(
        http()
            .post(format!("{url}/server/login"))
            .json(&json!({"username": USER}))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["title"], "You must provide the password field.");

    // Wrong password: still 200, authenticated false, a fresh session id anyway.
    let resp = login(&emu, USER, "wrong").await;
    assert_eq!(resp.status(), 200);
    let anon_id = cookie_id(&resp);
    assert_eq!(resp.headers()["x-backendai-sessionid"], anon_id.as_str());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"authenticated": false, "data": {"type": "https://api.backend.ai/probs/auth-failed", "title": "Credential/signature mismatch.", "details": "User credential mismatch."}})
    );
    let resp = within(
        http()
            .post(format!("{url}/func/admin/gql"))
            .header("X-BackendAI-SessionID", &anon_id)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 401);

    // Login.
    let resp = login(&emu, USER, PASSWORD).await;
    assert_eq!(resp.status(), 200);
    let id = cookie_id(&resp);
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(resp.headers()["x-backendai-sessionid"], id.as_str());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"authenticated": true, "data": {"access_key": AK, "role": "user", "status": "active"}})
    );

    // Already logged in: 400.
    let resp = within(
        http()
            .post(format!("{url}/server/login"))
            .header("Cookie", format!("AIOHTTP_SESSION={id}"))
            .json(&json!({"username": USER, "password": PASSWORD}))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);

    // /func with the header, with the cookie; the header wins even when wrong.
    let gql = json!({"query": LIST_QUERY, "variables": {"limit": 10, "offset": 0, "status": null}});
    for (name, value) in [
        ("X-BackendAI-SessionID", id.clone()),
        ("Cookie", format!("AIOHTTP_SESSION={id}")),
    ] {
        let resp = within(
            http()
                .post(format!("{url}/func/admin/gql"))
                .header(name, value)
                .json(&gql)
                .send(),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 200, "{name}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["data"]["compute_session_list"]["total_count"], 2);
    }
    let resp = within(
        http()
            .post(format!("{url}/func/admin/gql"))
            .header("Cookie", format!("AIOHTTP_SESSION={id}"))
            .header("X-BackendAI-SessionID", "0123456789abcdef0123456789abcdef")
            .json(&gql)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 401);

    // Manager errors pass through with their status and body.
    let resp = within(
        http()
            .get(format!(
                "{url}/func/session/train-1/download_single?file=id_container"
            ))
            .header("X-BackendAI-SessionID", &id)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().starts_with("-----BEGIN"));
    let resp = within(
        http()
            .get(format!("{url}/func/stream/session/nope/apps"))
            .header("X-BackendAI-SessionID", &id)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = within(
        http()
            .post(format!("{url}/func/admin/gql"))
            .header("X-BackendAI-SessionID", &id)
            .header("X-BackendAI-Version", "v8.20240915")
            .json(&gql)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);

    // login-check, logout, then 401.
    let v: Value = within(
        http()
            .post(format!("{url}/server/login-check"))
            .header("X-BackendAI-SessionID", &id)
            .send(),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["authenticated"], true);
    assert_eq!(v["session_id"], id.as_str());
    assert_eq!(v["data"]["access_key"], AK);
    let resp = within(
        http()
            .post(format!("{url}/server/logout"))
            .header("X-BackendAI-SessionID", &id)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    assert!(resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let resp = within(
        http()
            .post(format!("{url}/func/admin/gql"))
            .header("X-BackendAI-SessionID", &id)
            .json(&gql)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 401);
    emu.shutdown().await;
}

#[tokio::test]
async fn ten_failures_block_the_username() {
    let echo = echo_server().await;
    let emu = start(&config_toml(V7, echo, "")).await;
    for _ in 0..10 {
        let resp = login(&emu, USER, "wrong").await;
        assert_eq!(resp.status(), 200);
    }
    let resp = login(&emu, USER, PASSWORD).await;
    assert_eq!(resp.status(), 429);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["type"],
        "https://api.backend.ai/probs/too-many-requests"
    );
    assert_eq!(body["title"], "Too many failed login attempts");
    emu.shutdown().await;
}

async fn logged_in(emu: &porthole_emulator::RunningEmulator) -> String {
    let resp = login(emu, USER, PASSWORD).await;
    assert_eq!(resp.status(), 200);
    cookie_id(&resp)
}

#[tokio::test]
async fn tunnels_through_func() {
    let echo = echo_server().await;
    let refused = closed_port();
    let greeter = greeting_server(b"bye").await;
    let extra = format!(
        r#"
[[sessions]]
name = "faults"
[[sessions.services]]
name = "down"
container_ports = [2200]
target = "{refused}"
[[sessions.services]]
name = "greeter"
container_ports = [2201]
target = "{greeter}"
"#
    );
    let emu = start(&config_toml(V7, echo, &extra)).await;
    let id = logged_in(&emu).await;

    // Relay with the header, and with the cookie.
    let mut ws = ws_with_headers(
        &emu,
        "/func/stream/session/train-1/tcpproxy?app=echo",
        &[("X-BackendAI-SessionID", &id)],
    )
    .await
    .unwrap();
    send_binary(&mut ws, b"via web").await;
    assert_eq!(read_exact_binary(&mut ws, 7).await.0, b"via web");
    close(&mut ws).await;
    let cookie = format!("AIOHTTP_SESSION={id}");
    let mut ws = ws_with_headers(
        &emu,
        "/func/stream/session/train-1/httpproxy?app=echo",
        &[("Cookie", &cookie)],
    )
    .await
    .unwrap();
    send_binary(&mut ws, b"c").await;
    assert_eq!(read_exact_binary(&mut ws, 1).await.0, b"c");
    close(&mut ws).await;

    // Any handshake failure is a 502; no session is a 401.
    for path in [
        "/func/stream/session/nope/tcpproxy?app=echo",
        "/func/stream/session/train-1/tcpproxy?app=nope",
        "/func/stream/session/queued/tcpproxy?app=echo",
        "/func/stream/session/train-1/tcpproxy?app=echo&owner_access_key=x",
    ] {
        let err = ws_with_headers(&emu, path, &[("X-BackendAI-SessionID", &id)])
            .await
            .unwrap_err();
        let (status, body) = handshake_error(err);
        assert_eq!(status, 502, "{path}");
        assert_eq!(
            body,
            json!({"type": "https://api.backend.ai/probs/bad-gateway", "title": "The proxy target server is inaccessible."})
        );
    }
    for (path, version) in [
        ("/func/stream/kernel/train-1/tcpproxy?app=echo", V7),
        (
            "/func/stream/session/train-1/tcpproxy?app=echo",
            "v8.20240915",
        ),
    ] {
        let headers = [
            ("X-BackendAI-SessionID", id.as_str()),
            ("X-BackendAI-Version", version),
        ];
        let err = ws_with_headers(&emu, path, &headers).await.unwrap_err();
        assert_eq!(handshake_error(err).0, 502, "{path} {version}");
    }
    let err = ws_with_headers(&emu, "/func/stream/session/train-1/tcpproxy?app=echo", &[])
        .await
        .unwrap_err();
    assert_eq!(handshake_error(err).0, 401);

    // The app closes: the client's WebSocket stays open and silent.
    let mut ws = ws_with_headers(
        &emu,
        "/func/stream/session/faults/tcpproxy?app=greeter",
        &[("X-BackendAI-SessionID", &id)],
    )
    .await
    .unwrap();
    assert_eq!(read_exact_binary(&mut ws, 3).await.0, b"bye");
    assert_stays_open_and_silent(&mut ws).await;
    close(&mut ws).await;

    // A refused app port: 101, then silence (no 1013).
    let mut ws = ws_with_headers(
        &emu,
        "/func/stream/session/faults/tcpproxy?app=down",
        &[("X-BackendAI-SessionID", &id)],
    )
    .await
    .unwrap();
    assert_stays_open_and_silent(&mut ws).await;
    close(&mut ws).await;
    within(emu.wait_open_relays(0)).await;
    emu.shutdown().await;
}

/// Sends data (dropped) and a ping (answered); nothing else arrives, no CLOSE.
async fn assert_stays_open_and_silent(ws: &mut Ws) {
    send_binary(ws, b"into the void").await;
    within(ws.send(Message::Ping(b"still there?".to_vec().into())))
        .await
        .unwrap();
    match within(ws.next()).await {
        Some(Ok(Message::Pong(p))) => assert_eq!(p.as_ref(), b"still there?"),
        other => panic!("expected a pong, got {other:?}"),
    }
    // Absence of an event can only be checked with a timeout.
    let quiet = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
    assert!(quiet.is_err(), "expected silence, got {quiet:?}");
}

#[tokio::test]
async fn web_server_closes_4_mib_messages_with_1009() {
    let echo = echo_server().await;
    let emu = start(&config_toml(V7, echo, "")).await;
    let id = logged_in(&emu).await;
    let mut ws = ws_with_headers(
        &emu,
        "/func/stream/session/train-1/tcpproxy?app=echo",
        &[("X-BackendAI-SessionID", &id)],
    )
    .await
    .unwrap();
    within(ws.send(Message::binary(vec![0u8; 4 * 1024 * 1024])))
        .await
        .unwrap();
    assert_eq!(expect_close(&mut ws).await, 1009);
    emu.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_session_mode_relays() {
    let echo = echo_server().await;
    let emu = start(&config_toml(V7, echo, "")).await;
    let id = logged_in(&emu).await;
    let mut ws = ws_with_headers(
        &emu,
        "/func/stream/session/train-1/tcpproxy?app=echo",
        &[("X-BackendAI-SessionID", &id)],
    )
    .await
    .unwrap();
    send_binary(&mut ws, b"x").await;
    read_exact_binary(&mut ws, 1).await;
    let closing = tokio::spawn(async move { expect_close(&mut ws).await });
    within(emu.shutdown()).await;
    assert_eq!(closing.await.unwrap(), 1001);
}

/// With the manager down, the web server answers 502 to everything that needs it (as 23.09's
/// does when its manager refuses connections), keeps its own login sessions, and recovers.
#[tokio::test]
async fn manager_down_gives_502_until_it_is_back() {
    let echo = echo_server().await;
    let emu = start(&config_toml(V7, echo, "")).await;
    let id = logged_in(&emu).await;
    let http = reqwest::Client::new();
    let gql = json!({"query": "{ compute_session_list(limit:1, offset:0){ total_count } }"});
    emu.set_manager_up(false);

    let bad_gateway = json!({
        "type": "https://api.backend.ai/probs/bad-gateway",
        "title": "The proxy target server is inaccessible."
    });
    let resp = within(http.get(format!("{}/func/", emu.endpoint_url())).send())
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.json::<Value>().await.unwrap(), bad_gateway);
    let resp = within(
        http.post(format!("{}/func/admin/gql", emu.endpoint_url()))
            .header("X-BackendAI-SessionID", &id)
            .json(&gql)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 502);
    // Not logged in is still the web server's own 401.
    let resp = within(
        http.post(format!("{}/func/admin/gql", emu.endpoint_url()))
            .json(&gql)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 401);
    let err = ws_with_headers(
        &emu,
        "/func/stream/session/train-1/tcpproxy?app=echo",
        &[("X-BackendAI-SessionID", &id)],
    )
    .await
    .unwrap_err();
    assert_eq!(handshake_error(err), (502, bad_gateway.clone()));
    // A login needs the manager: 502 with the client error as `details`, and it does not
    // count as a failed login.
    for _ in 0..12 {
        let resp = login(&emu, USER, "wrong").await;
        assert_eq!(resp.status(), 502);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["title"], bad_gateway["title"]);
        assert!(body["details"]
            .as_str()
            .unwrap()
            .contains("Connection refused"));
    }
    // Login sessions are the web server's own.
    let resp = within(
        http.post(format!("{}/server/login-check", emu.endpoint_url()))
            .header("X-BackendAI-SessionID", &id)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["authenticated"], true);

    emu.set_manager_up(true);
    let resp = within(
        http.post(format!("{}/func/admin/gql", emu.endpoint_url()))
            .header("X-BackendAI-SessionID", &id)
            .json(&gql)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(login(&emu, USER, PASSWORD).await.status(), 200);
    emu.shutdown().await;
}
