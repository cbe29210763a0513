//! What the server refuses, and how Porthole says so: unknown sessions and apps, a failed app
//! start, an app that does not listen, bad stream parameters.

use super::*;

/// Unknown session and app (404), a PENDING session; Porthole's messages for them.
pub fn not_found(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let out = t.run(&["open", "nope", "echo", "--no-launch"], 60).await;
        obs.add(
            "porthole open nope echo",
            one_line_error(t, &out, "no session \"nope\""),
        );
        let out = t
            .run(&["open", "rig-running", "nope", "--no-launch"], 60)
            .await;
        obs.add(
            "porthole open rig-running nope",
            one_line_error(t, &out, "has no app \"nope\""),
        );
        let out = t
            .run(&["open", "rig-pending", "jupyter", "--no-launch"], 60)
            .await;
        obs.add(
            "porthole open rig-pending jupyter",
            one_line_error(t, &out, "is PENDING, not RUNNING"),
        );
        let out = t.run(&["ssh", "rig-pending"], 60).await;
        obs.add(
            "porthole ssh rig-pending",
            one_line_error(t, &out, "PENDING"),
        );

        // What the server itself answers (Porthole checks the listing first, so it only
        // meets these when a session ends between listing and connecting).
        let raw = t.raw().await;
        let unknown_id = format!("{}ffff", &rig().running_id[..32]);
        let cases = [
            ("nope", "echo"),
            (unknown_id.as_str(), "echo"),
            (&rig().running_id[..8], "echo"),
            ("rig-running", "nope"),
            // 23.09: iterating the PENDING kernel's null service_ports is a TypeError, a
            // bare 500; 26.x answers 404 (it looks for a running session).
            ("rig-pending", "jupyter"),
        ];
        for (session, app) in cases {
            let h = raw
                .ws(&tunnel_path(session, "tcpproxy", &format!("app={app}")))
                .await;
            let seen = describe_refusal(&h, session, app);
            if t.session_mode() {
                assert!(seen.starts_with("502 bad-gateway"), "{}: {seen}", t.label());
                assert!(seen.contains("the web server answered 502 ("), "{seen}");
            } else if session == "rig-pending" && !t.speaks("v9.20250722") {
                assert!(seen.starts_with("500 internal-server-error"), "{seen}");
            } else if session == "rig-pending" {
                assert!(
                    seen.starts_with("404 object-not-found \"No such session.\""),
                    "{seen}"
                );
                assert!(seen.contains("not running"), "{seen}");
            } else if app == "nope" {
                assert!(
                    seen.starts_with("404 object-not-found \"No such app service.\""),
                    "{seen}"
                );
                assert!(seen.contains(r#"has no app "nope""#), "{seen}");
            } else {
                // 26.x checks the permission on a session id before its existence.
                let full_id = session.len() == 36;
                let slug = if t.speaks("v9.20250722") && full_id {
                    "403 not-enough-permission"
                } else if t.speaks("v9.20250722") {
                    "404 entity-not-found \"Entity not found.\""
                } else {
                    "404 object-not-found \"No such session.\""
                };
                assert!(seen.starts_with(slug), "{}: {seen}", t.label());
                assert!(seen.contains("no session"), "{seen}");
            }
            obs.add(format!("tunnel {session} app={app}"), seen);
        }
        // v4 paths exist on no release the rigs run.
        let h = raw.ws("/stream/kernel/rig-running/tcpproxy?app=echo").await;
        obs.add(
            "tunnel /stream/kernel/rig-running",
            describe_refusal(&h, "rig-running", "echo"),
        );
        let method = if t.speaks("v8.20240915") {
            "POST"
        } else {
            "GET"
        };
        let r = raw
            .request(
                method,
                "/session/nope/download_single?file=id_container",
                None,
            )
            .await;
        obs.add("download_single of session nope", r.problem());
        obs
    })
}

/// The agent fails to start jupyter: 500 with the agent's reason as `data` (API mode), 502
/// through the web server; Porthole's message.
pub fn start_failure(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let reason = injected_failure("jupyter");
        let out = t
            .run(&["open", "rig-running", "jupyter", "--no-launch"], 90)
            .await;
        let line = if t.session_mode() {
            one_line_error(
                t,
                &out,
                "answered 502 (The proxy target server is inaccessible.)",
            )
        } else {
            one_line_error(
                t,
                &out,
                &format!("jupyter failed to start in session \"rig-running\": {reason}"),
            )
        };
        obs.add("porthole open rig-running jupyter", line);
        let raw = t.raw().await;
        for proto in ["httpproxy", "tcpproxy"] {
            let h = raw
                .ws(&tunnel_path("rig-running", proto, "app=jupyter"))
                .await;
            let seen = describe_refusal(&h, "rig-running", "jupyter");
            if !t.session_mode() {
                let slug = if t.speaks("v9.20250722") {
                    "500 app-service-start-failed \"Failed to start the application service.\""
                } else {
                    "500 internal-server-error \"Internal server error.\""
                };
                assert!(seen.starts_with(slug), "{}: {seen}", t.label());
                assert!(
                    seen.contains("msg=\"Failed to launch the app service\""),
                    "{seen}"
                );
            }
            obs.add(format!("{proto} jupyter"), seen);
        }
        // Other apps are unaffected.
        let mut ws = raw
            .ws(&tunnel_path("rig-running", "tcpproxy", "app=echo"))
            .await
            .open("echo");
        obs.add("tcpproxy echo meanwhile", ws_echo(&mut ws, 1000).await);
        ws.close().await;
        obs
    })
}

/// The app's port refuses the manager's connection after a reported start: close 1013 in
/// API mode; through the web server the client's socket stays open and silent.
pub fn refused_port(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let raw = t.raw().await;
        let mut ws = raw
            .ws(&tunnel_path("rig-running", "tcpproxy", "app=echo"))
            .await
            .open("echo (refused port)");
        ws.send(b"hello").await;
        let wait = if t.session_mode() { SILENCE } else { WAIT };
        let event = ws.next(wait).await;
        if t.session_mode() {
            assert_eq!(event, Event::Silent, "{}", t.label());
            assert!(
                ws.ping(b"alive?", WAIT).await,
                "the web server still answers pings"
            );
            obs.add(
                "tcpproxy echo, send 5 bytes",
                "101, then silent; PING still answered",
            );
        } else {
            assert_eq!(event, Event::Close(Some(1013)), "{}", t.label());
            obs.add(
                "tcpproxy echo, send 5 bytes",
                format!("101, then {}", event.describe()),
            );
        }
        ws.close().await;

        // Porthole: the warm-up gets its 101, so open is ready; the connection is held
        // and retried while the app does not listen (1013), then fails after the
        // start timeout.
        let open = t
            .open(
                "rig-running",
                "echo",
                &["--no-launch", "--start-timeout", "3"],
            )
            .await;
        let mut socket = TcpStream::connect(("127.0.0.1", open.port()))
            .await
            .unwrap();
        socket.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(60), socket.read(&mut buf)).await;
        let line = if t.session_mode() {
            let line = open.stderr_line("porthole: connection failed:", 60).await;
            assert!(line.contains("did not answer"), "{}: {line}", t.label());
            line
        } else {
            let line = open.stderr_line("porthole: connection failed:", 60).await;
            assert!(
                line.contains("did not start listening within 3 s (close 1013)"),
                "{}: {line}",
                t.label()
            );
            line
        };
        let n = read
            .expect("the local connection ends within 60 s")
            .unwrap_or(0);
        assert_eq!(n, 0, "{}: no bytes come back", t.label());
        obs.add(
            "porthole open echo: local connection",
            "closed with no data",
        );
        obs.add("porthole open echo: stderr", line);
        open.stop().await;
        obs
    })
}

/// The query parameters of a tunnel: extra keys (refused up to 25.x, ignored by 26.x), no
/// app, the `service` alias (gone in 26.x), `port=` (compared as a string by 23.09, so every
/// value is refused; 26.x picks that container port), and a tunnel GET without Upgrade.
pub fn bad_params(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let raw = t.raw().await;
        let v9 = t.speaks("v9.20250722");
        let extra_key = format!("app=echo&owner_access_key={}", rig().access_key);
        for (query, refused_before_v9, refused_by_v9) in [
            (extra_key.as_str(), true, false),
            ("app=echo&bogus=1", true, false),
            ("", true, true),
            ("service=echo", false, true),
            ("app=echo&port=80", true, true),
            ("app=echo&port=7009", true, true),
            ("app=echo&port=7007", true, false),
        ] {
            let h = raw.ws(&tunnel_path("rig-running", "tcpproxy", query)).await;
            let seen = describe_refusal(&h, "rig-running", "echo");
            let refused = if v9 { refused_by_v9 } else { refused_before_v9 };
            if !refused {
                assert_eq!(seen, "101", "{}: ?{query}", t.label());
            } else if t.session_mode() {
                assert!(seen.starts_with("502 bad-gateway"), "{}: {seen}", t.label());
            } else {
                assert!(seen.starts_with("400 "), "{}: ?{query}: {seen}", t.label());
                assert!(seen.contains("the server answered 400"), "{seen}");
            }
            obs.add(format!("tcpproxy ?{query}"), seen);
        }
        // On 26.x `port=` reaches the app's second container port (its server says so).
        let h = raw
            .ws(&tunnel_path(
                "rig-running",
                "tcpproxy",
                "app=echo&port=7008",
            ))
            .await;
        let seen = match h {
            Handshake::Open(mut ws) => {
                let first = match ws.next(WAIT).await {
                    Event::Data(d) => String::from_utf8_lossy(&d).to_string(),
                    other => other.describe(),
                };
                ws.close().await;
                format!("101, the app says {first:?}")
            }
            refused => describe_refusal(&refused, "rig-running", "echo"),
        };
        if v9 {
            assert_eq!(seen, "101, the app says \"port 2\\n\"", "{}", t.label());
        }
        obs.add("tcpproxy ?app=echo&port=7008", seen);
        // A signed GET of a tunnel path without the Upgrade header.
        let r = raw
            .request(
                "GET",
                &tunnel_path("rig-running", "tcpproxy", "app=echo"),
                None,
            )
            .await;
        obs.add("GET tcpproxy without Upgrade", r.problem());
        obs
    })
}
