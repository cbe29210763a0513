//! API-mode tunnels over real sockets: relay to a real TCP server, close codes, handshake
//! errors, start delay and failure, v4 paths, status changes and shutdown.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const V8: &str = "v8.20240915";

#[tokio::test]
async fn relays_binary_to_a_real_echo_server() {
    let echo = echo_server().await;
    let emu = start(&config_toml(V8, echo, "")).await;
    let mut ws = ws_signed(
        &emu,
        &signing(V8),
        "/stream/session/train-1/tcpproxy?app=echo",
    )
    .await
    .unwrap();
    send_binary(&mut ws, b"hello").await;
    let (data, _) = read_exact_binary(&mut ws, 5).await;
    assert_eq!(data, b"hello");

    // A large payload comes back in frames of at most 256 KiB.
    let payload: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (mut tx, mut rx) = ws.split();
    let sender = tokio::spawn(async move {
        for chunk in payload.chunks(1024 * 1024) {
            tx.send(Message::binary(chunk.to_vec())).await.unwrap();
        }
        (tx, payload)
    });
    let mut got = Vec::new();
    let mut largest = 0;
    while got.len() < 3 * 1024 * 1024 {
        match within(rx.next()).await {
            Some(Ok(Message::Binary(b))) => {
                largest = largest.max(b.len());
                got.extend_from_slice(&b);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let (tx, payload) = sender.await.unwrap();
    assert_eq!(got, payload);
    assert!(largest <= 256 * 1024, "frame of {largest} bytes");
    let mut ws = tx.reunite(rx).unwrap();

    // Same thing by UUID, through httpproxy and the `service` alias.
    let mut ws2 = ws_signed(
        &emu,
        &signing(V8),
        "/stream/session/5a1e0000-0000-4000-8000-00000000a001/httpproxy?service=echo",
    )
    .await
    .unwrap();
    send_binary(&mut ws2, b"by-id").await;
    assert_eq!(read_exact_binary(&mut ws2, 5).await.0, b"by-id");
    close(&mut ws2).await;
    close(&mut ws).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn text_frames_are_dropped_and_pings_answered() {
    let echo = echo_server().await;
    let emu = start(&config_toml(V8, echo, "")).await;
    let mut ws = ws_signed(
        &emu,
        &signing(V8),
        "/stream/session/train-1/tcpproxy?app=echo",
    )
    .await
    .unwrap();
    within(ws.send(Message::text("dropped"))).await.unwrap();
    within(ws.send(Message::Ping(b"p1".to_vec().into())))
        .await
        .unwrap();
    match within(ws.next()).await {
        Some(Ok(Message::Pong(p))) => assert_eq!(p.as_ref(), b"p1"),
        other => panic!("expected the pong first, got {other:?}"),
    }
    send_binary(&mut ws, b"kept").await;
    // Only the binary data comes back: the text frame never reached the app.
    assert_eq!(read_exact_binary(&mut ws, 4).await.0, b"kept");
    close(&mut ws).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn refused_target_closes_1013_and_app_eof_closes_1001() {
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
    let emu = start(&config_toml(V8, echo, &extra)).await;
    let mut ws = ws_signed(
        &emu,
        &signing(V8),
        "/stream/session/faults/tcpproxy?app=down",
    )
    .await
    .expect("101 first: the connect happens after the upgrade");
    assert_eq!(expect_close(&mut ws).await, 1013);

    let mut ws = ws_signed(
        &emu,
        &signing(V8),
        "/stream/session/faults/tcpproxy?app=greeter",
    )
    .await
    .unwrap();
    assert_eq!(read_exact_binary(&mut ws, 3).await.0, b"bye");
    assert_eq!(expect_close(&mut ws).await, 1001);
    within(emu.wait_open_relays(0)).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn client_close_closes_the_app_socket() {
    let echo = echo_server().await;
    let (sink, mut received) = sink_server().await;
    let extra = format!(
        "[[sessions]]\nname = \"s\"\n[[sessions.services]]\nname = \"sink\"\ncontainer_ports = [9000]\ntarget = \"{sink}\"\n"
    );
    let emu = start(&config_toml(V8, echo, &extra)).await;
    let mut ws = ws_signed(&emu, &signing(V8), "/stream/session/s/tcpproxy?app=sink")
        .await
        .unwrap();
    send_binary(&mut ws, b"abc").await;
    send_binary(&mut ws, b"def").await;
    close(&mut ws).await;
    // The app sees EOF (its socket closed) after the data.
    let all = within(received.recv()).await.unwrap();
    assert_eq!(all, b"abcdef");
    within(emu.wait_open_relays(0)).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn messages_of_16_mib_get_1009() {
    let echo = echo_server().await;
    let emu = start(&config_toml(V8, echo, "")).await;
    // 16 MiB - 1 is relayed.
    let mut ws = ws_signed(
        &emu,
        &signing(V8),
        "/stream/session/train-1/tcpproxy?app=echo",
    )
    .await
    .unwrap();
    let n = 16 * 1024 * 1024 - 1;
    let (mut tx, mut rx) = ws.split();
    let sender = tokio::spawn(async move {
        tx.send(Message::binary(vec![7u8; n])).await.unwrap();
        tx
    });
    let mut total = 0;
    while total < n {
        match within(rx.next()).await {
            Some(Ok(Message::Binary(b))) => total += b.len(),
            other => panic!("unexpected {other:?}"),
        }
    }
    ws = sender.await.unwrap().reunite(rx).unwrap();
    close(&mut ws).await;

    // 16 MiB gets CLOSE 1009 and nothing is relayed.
    let mut ws = ws_signed(
        &emu,
        &signing(V8),
        "/stream/session/train-1/tcpproxy?app=echo",
    )
    .await
    .unwrap();
    within(ws.send(Message::binary(vec![1u8; 16 * 1024 * 1024])))
        .await
        .unwrap();
    assert_eq!(expect_close(&mut ws).await, 1009);
    emu.shutdown().await;
}

#[tokio::test]
async fn handshake_errors_match_the_manager() {
    let echo = echo_server().await;
    let extra = r#"
[[sessions]]
name = "broken"
[[sessions.services]]
name = "vscode"
protocol = "http"
container_ports = [8180]
target = "127.0.0.1:9"
start_failure = "code-server exited with status 1"
[[sessions.services]]
name = "term"
protocol = "pty"
container_ports = [2002]
"#;
    let emu = start(&config_toml(V8, echo, extra)).await;
    let cases: &[(&str, u16, serde_json::Value)] = &[
        (
            "/stream/session/nope/tcpproxy?app=echo",
            404,
            json!({"type": "https://api.backend.ai/probs/object-not-found", "title": "No such session.", "msg": "Session (id=nope) does not exist."}),
        ),
        (
            "/stream/session/5a1e0000/tcpproxy?app=echo",
            404,
            json!({"type": "https://api.backend.ai/probs/object-not-found", "title": "No such session.", "msg": "Session (id=5a1e0000) does not exist."}),
        ),
        (
            "/stream/session/other/tcpproxy?app=echo",
            404,
            json!({"type": "https://api.backend.ai/probs/object-not-found", "title": "No such session.", "msg": "Session (id=other) does not exist."}),
        ),
        (
            "/stream/session/train-1/tcpproxy?app=nope",
            404,
            json!({"type": "https://api.backend.ai/probs/object-not-found", "title": "No such app service.", "msg": "train-1:nope"}),
        ),
        (
            "/stream/session/train-1/tcpproxy?app=echo&owner_access_key=AK",
            400,
            json!({"type": "https://api.backend.ai/probs/invalid-api-params", "title": "Missing or invalid API parameters.", "msg": "Input validation error", "data": {"owner_access_key": "owner_access_key is not allowed key"}}),
        ),
        (
            "/stream/session/train-1/tcpproxy",
            400,
            json!({"type": "https://api.backend.ai/probs/invalid-api-params", "title": "Missing or invalid API parameters.", "msg": "Input validation error", "data": {"app": "is required"}}),
        ),
        (
            "/stream/session/train-1/tcpproxy?app=echo&port=9999",
            400,
            json!({"type": "https://api.backend.ai/probs/invalid-api-params", "title": "Missing or invalid API parameters.", "msg": "Service echo does not open the port number 9999."}),
        ),
        (
            "/stream/session/queued/tcpproxy?app=echo",
            500,
            json!({"type": "https://api.backend.ai/probs/internal-server-error", "title": "Internal server error."}),
        ),
        (
            "/stream/session/broken/httpproxy?app=vscode",
            500,
            json!({"type": "https://api.backend.ai/probs/internal-server-error", "title": "Internal server error.", "msg": "Failed to launch the app service", "data": "code-server exited with status 1"}),
        ),
        (
            "/stream/session/broken/tcpproxy?app=term",
            500,
            json!({"type": "https://api.backend.ai/probs/internal-server-error", "title": "Internal server error."}),
        ),
        (
            "/stream/kernel/train-1/tcpproxy?app=echo",
            404,
            json!({"type": "https://api.backend.ai/probs/url-not-found", "title": "Unknown URL path.", "data": "/stream/kernel/train-1/tcpproxy"}),
        ),
    ];
    for (path, status, body) in cases {
        let err = ws_signed(&emu, &signing(V8), path).await.unwrap_err();
        let (got_status, got_body) = handshake_error(err);
        assert_eq!((got_status, &got_body), (*status, body), "{path}");
    }

    // A secondary container port is refused before 26.x: its trafaret schema leaves `port`
    // a string, which never equals a container port (26.x picks the port; the conformance
    // suite holds both to the real servers).
    let err = ws_signed(
        &emu,
        &signing(V8),
        "/stream/session/train-1/tcpproxy?app=echo&port=7008",
    )
    .await
    .unwrap_err();
    let (status, body) = handshake_error(err);
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["msg"], "Service echo does not open the port number 7008.",
        "{body}"
    );

    // A signed GET without Upgrade: 400 generic-bad-request.
    let resp = signed(
        &emu,
        &signing(V8),
        "GET",
        "/stream/session/train-1/tcpproxy?app=echo",
        None,
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body["type"],
        "https://api.backend.ai/probs/generic-bad-request"
    );

    // An unsigned upgrade.
    let err = ws_with_headers(&emu, "/stream/session/train-1/tcpproxy?app=echo", &[])
        .await
        .unwrap_err();
    let (status, body) = handshake_error(err);
    assert_eq!(status, 400);
    assert_eq!(body["msg"], "Date/time sync error");
    emu.shutdown().await;
}

#[tokio::test]
async fn start_delay_is_shared_by_concurrent_first_connections() {
    let echo = echo_server().await;
    let extra = format!(
        "[[sessions]]\nname = \"slow\"\n[[sessions.services]]\nname = \"app\"\ncontainer_ports = [8888]\ntarget = \"{echo}\"\nstart_delay_ms = 400\n"
    );
    let emu = start(&config_toml(V8, echo, &extra)).await;
    let path = "/stream/session/slow/tcpproxy?app=app";
    let started = Instant::now();
    let (sa, sb) = (signing(V8), signing(V8));
    let (a, b) = tokio::join!(ws_signed(&emu, &sa, path), ws_signed(&emu, &sb, path));
    let first = started.elapsed();
    let (mut a, mut b) = (a.unwrap(), b.unwrap());
    assert!(first >= Duration::from_millis(400), "101 after {first:?}");
    assert!(
        first < Duration::from_millis(790),
        "the two waits were not shared: {first:?}"
    );
    // The app is up now: the next handshake does not wait.
    let again = Instant::now();
    let mut c = ws_signed(&emu, &signing(V8), path).await.unwrap();
    assert!(
        again.elapsed() < Duration::from_millis(300),
        "{:?}",
        again.elapsed()
    );
    send_binary(&mut c, b"ok").await;
    assert_eq!(read_exact_binary(&mut c, 2).await.0, b"ok");
    for ws in [&mut a, &mut b, &mut c] {
        close(ws).await;
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn v4_uses_kernel_paths() {
    let echo = echo_server().await;
    let emu = start(&config_toml("v4.20190615", echo, "")).await;
    let v4 = "v4.20190615";
    let mut ws = ws_signed(
        &emu,
        &signing(v4),
        "/stream/kernel/train-1/httpproxy?app=echo",
    )
    .await
    .unwrap();
    send_binary(&mut ws, b"v4").await;
    assert_eq!(read_exact_binary(&mut ws, 2).await.0, b"v4");
    close(&mut ws).await;
    let err = ws_signed(
        &emu,
        &signing(v4),
        "/stream/session/train-1/tcpproxy?app=echo",
    )
    .await
    .unwrap_err();
    assert_eq!(handshake_error(err).0, 404);

    // v4 listing goes through /admin/graphql with the old item shape.
    let body = json!({"query": "{ compute_session_list(limit: 10, offset: 0) { items { sess_id status service_ports } } }"});
    let resp = post_json(&emu, v4, "/admin/graphql", &body).await;
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["compute_session_list"]["items"][0]["sess_id"], "train-1");
    let ports: serde_json::Value = serde_json::from_str(
        v["compute_session_list"]["items"][0]["service_ports"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(ports[0].get("is_inference").is_none());
    assert_eq!(post_json(&emu, v4, "/admin/gql", &body).await.status(), 404);
    emu.shutdown().await;
}

#[tokio::test]
async fn terminating_a_session_closes_its_relays() {
    let echo = echo_server().await;
    let emu = start(&config_toml(V8, echo, "")).await;
    let mut ws = ws_signed(
        &emu,
        &signing(V8),
        "/stream/session/train-1/tcpproxy?app=echo",
    )
    .await
    .unwrap();
    send_binary(&mut ws, b"x").await;
    read_exact_binary(&mut ws, 1).await;
    assert_eq!(emu.open_relays(), 1);
    emu.set_session_status("train-1", "TERMINATED").unwrap();
    assert_eq!(expect_close(&mut ws).await, 1001);
    within(emu.wait_open_relays(0)).await;

    let err = ws_signed(
        &emu,
        &signing(V8),
        "/stream/session/train-1/tcpproxy?app=echo",
    )
    .await
    .unwrap_err();
    assert_eq!(handshake_error(err).0, 404);
    let running = list(&emu, V8, Some("RUNNING")).await;
    assert_eq!(running["data"]["compute_session_list"]["total_count"], 0);
    let terminated = list(&emu, V8, Some("TERMINATED")).await;
    assert_eq!(
        terminated["data"]["compute_session_list"]["items"][0]["name"],
        "train-1"
    );
    assert!(emu.set_session_status("train-1", "BOGUS").is_err());
    assert!(emu.set_session_status("nope", "RUNNING").is_err());

    // Back to RUNNING: tunnels work again.
    emu.set_session_status("train-1", "RUNNING").unwrap();
    let mut ws = ws_signed(
        &emu,
        &signing(V8),
        "/stream/session/train-1/tcpproxy?app=echo",
    )
    .await
    .unwrap();
    close(&mut ws).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_relays_and_releases_the_listener() {
    let echo = echo_server().await;
    let emu = start(&config_toml(V8, echo, "")).await;
    let addr = emu.local_addr();
    let mut ws = ws_signed(
        &emu,
        &signing(V8),
        "/stream/session/train-1/tcpproxy?app=echo",
    )
    .await
    .unwrap();
    send_binary(&mut ws, b"x").await;
    read_exact_binary(&mut ws, 1).await;
    let closing = tokio::spawn(async move { expect_close(&mut ws).await });
    within(emu.shutdown()).await;
    assert_eq!(closing.await.unwrap(), 1001);
    // The port is free again.
    let listener = tokio::net::TcpListener::bind(addr).await;
    assert!(listener.is_ok(), "{listener:?}");
}

#[tokio::test]
async fn http_control_api() {
    let echo = echo_server().await;
    let emu = start_with(&config_toml(V8, echo, ""), true).await;
    let mut ws = ws_signed(
        &emu,
        &signing(V8),
        "/stream/session/train-1/tcpproxy?app=echo",
    )
    .await
    .unwrap();
    let relays: serde_json::Value = within(
        http()
            .get(format!("{}/_emulator/relays", emu.endpoint_url()))
            .send(),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(relays, json!({"open": 1}));
    let resp = within(
        http()
            .post(format!(
                "{}/_emulator/sessions/train-1/status",
                emu.endpoint_url()
            ))
            .json(&json!({"status": "TERMINATED"}))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "TERMINATED");
    assert_eq!(expect_close(&mut ws).await, 1001);
    let resp = within(
        http()
            .post(format!(
                "{}/_emulator/sessions/train-1/status",
                emu.endpoint_url()
            ))
            .json(&json!({"status": "BOGUS"}))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = within(
        http()
            .post(format!("{}/_emulator/shutdown", emu.endpoint_url()))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 202);
    within(emu.shutdown_requested()).await;
    emu.shutdown().await;

    // Without the option the control API does not exist.
    let emu = start(&config_toml(V8, echo, "")).await;
    let resp = within(
        http()
            .get(format!("{}/_emulator/relays", emu.endpoint_url()))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 404);
    emu.shutdown().await;
}
