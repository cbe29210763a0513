//! The official client of the same release, side by side.

use super::*;

/// Porthole's side of every check of the rig's check-official-client.sh, (a)-(l), in this
/// target's mode (the official client's own run is in scripts/test-conformance.sh).
pub fn official_client(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        // (a) / (i) listing (session mode: after a web login).
        let out = t.run(&["sessions"], 60).await;
        assert_ok(t, &out, "porthole sessions");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text
            .lines()
            .any(|l| l.starts_with("rig-running") && l.contains("RUNNING")));
        assert!(text
            .lines()
            .any(|l| l.starts_with("rig-pending") && l.contains("PENDING")));
        obs.add(
            "(a)/(i) listing",
            "rig-running RUNNING, rig-pending PENDING",
        );
        // (b) / (j) TCP echo: 200 kB of random bytes through `porthole open`.
        let open = t.open("rig-running", "echo", &["--no-launch"]).await;
        echo_through(open.port(), 200_000).await;
        open.stop().await;
        obs.add("(b)/(j) echo tunnel", "200 kB round trip");
        // (c) / (h) key download + ssh through the sshd tunnel.
        let out = t
            .run(
                &[
                    "ssh",
                    "--user",
                    &t.backends.ssh_user,
                    "rig-running",
                    "--",
                    "echo",
                    "ssh-cmd-ok",
                ],
                90,
            )
            .await;
        assert_ok(t, &out, "porthole ssh");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ssh-cmd-ok\n");
        obs.add("(c)/(h) ssh", "ssh-cmd-ok");
        // (d) JupyterLab page and /api/status.
        let open = t.open("rig-running", "jupyter", &["--no-launch"]).await;
        let url = loopback_url(&open);
        let (status, page) = http_get(&url).await;
        assert!(status == 200 && page.contains("JupyterLab"), "{status}");
        let (status, _) = http_get(&format!("{url}api/status")).await;
        assert_eq!(status, 200);
        open.stop().await;
        obs.add("(d) jupyter", "200 JupyterLab page, /api/status 200");
        // (e) the key as download_single returns it (Porthole's own download).
        let open = t.open("rig-running", "sshd", &[]).await;
        let key = std::fs::read(open.ready["key_file"].as_str().unwrap()).unwrap();
        assert_eq!(key, std::fs::read(&t.backends.key).unwrap());
        open.stop().await;
        obs.add("(e) download_single id_container", "the private key");
        // (f) HTTP and WebSocket app traffic through the ttyd tunnel.
        if t.backends.rig {
            let open = t.open("rig-running", "ttyd", &["--no-launch"]).await;
            let url = open.ready["url"].as_str().unwrap().to_owned();
            let (status, body) = http_get(&format!("{url}health")).await;
            assert_eq!(status, 200, "{body}");
            let (mut ws, _) =
                tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", open.port()))
                    .await
                    .expect("WebSocket through the ttyd tunnel");
            use futures_util::{SinkExt, StreamExt};
            use tokio_tungstenite::tungstenite::Message;
            ws.send(Message::Text("hello-ws".into())).await.unwrap();
            let t1 = tokio::time::timeout(WAIT, ws.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            ws.send(Message::Binary(b"\x00\x01bin".to_vec().into()))
                .await
                .unwrap();
            let t2 = tokio::time::timeout(WAIT, ws.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(t1, Message::Text("hello-ws".into()));
            assert_eq!(t2, Message::Binary(b"\x00\x01bin".to_vec().into()));
            let _ = ws.close(None).await;
            open.stop().await;
            obs.add("(f) ttyd HTTP + WebSocket", "200, text and binary echoed");
        }
        // (g) / (k) one raw stream: `porthole proxy` relays stdin/stdout over one WebSocket.
        let mut cmd = t.porthole(&["proxy", "rig-running", "echo"]);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"raw-rig-check").await.unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut got = [0u8; 13];
        tokio::time::timeout(WAIT, stdout.read_exact(&mut got))
            .await
            .expect("porthole proxy output")
            .unwrap();
        assert_eq!(&got, b"raw-rig-check");
        // No half-close in the protocol: stdin EOF ends the stream.
        drop(stdin);
        let status = tokio::time::timeout(WAIT, child.wait())
            .await
            .expect("porthole proxy exits after stdin EOF")
            .unwrap();
        assert!(status.success(), "{status}");
        obs.add("(g)/(k) porthole proxy echo", "raw-rig-check");
        if t.session_mode() {
            // (k) the login session id as the header alone and as the cookie alone.
            let raw = t.raw().await;
            let Auth::Session { id, .. } = raw.auth.clone() else {
                unreachable!()
            };
            for via in [Via::Header, Via::Cookie] {
                let mut ws = t
                    .raw_with(Auth::Session {
                        id: id.clone(),
                        via,
                    })
                    .ws(&tunnel_path("rig-running", "tcpproxy", "app=echo"))
                    .await
                    .open("echo");
                obs.add(
                    format!("(k) session id via {via:?} only"),
                    ws_echo(&mut ws, 65536).await,
                );
                ws.close().await;
            }
            // (l) httpproxy jupyter, download_single through /func, error shapes, logout.
            let mut ws = raw
                .ws(&tunnel_path("rig-running", "httpproxy", "app=jupyter"))
                .await
                .open("jupyter");
            let (status, _) = ws_http(&mut ws, "/api/status", false).await;
            ws.close().await;
            obs.add("(l) httpproxy jupyter", code(&status));
            let method = if t.speaks("v8.20240915") {
                "POST"
            } else {
                "GET"
            };
            let r = raw
                .request(
                    method,
                    "/session/rig-running/download_single?file=id_container",
                    None,
                )
                .await;
            assert_eq!(r.body, std::fs::read(&t.backends.key).unwrap());
            obs.add("(l) download_single via /func", r.status.to_string());
        }
        obs
    })
}
