//! Service ports of every protocol a client meets.

use super::*;

/// One service port of each kind besides tcp and http: `vnc` (relayed from API v9), a
/// `preopen` port started with arguments and environment its image allows, an `internal`
/// port (never an app), and the second container port of `echo` (`--app-port`).
pub fn protocols(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let v9 = t.speaks("v9.20250722");
        let raw = t.raw().await;
        for (app, query) in [
            ("vnc", "app=vnc"),
            ("preview", "app=preview&arguments=%7B%22--logdir%22%3A%22%2Ftmp%22%7D&envs=%7B%22LOG_LEVEL%22%3A%22debug%22%7D"),
            ("supervisor", "app=supervisor"),
        ] {
            let h = raw.ws(&tunnel_path("rig-running", "tcpproxy", query)).await;
            let seen = match h {
                Handshake::Open(mut ws) => {
                    let first = if app == "vnc" {
                        match ws.next(WAIT).await {
                            Event::Data(d) => format!(", the app says {:?}", String::from_utf8_lossy(&d)),
                            other => format!(", then {}", other.describe()),
                        }
                    } else {
                        String::new()
                    };
                    ws.close().await;
                    format!("101{first}")
                }
                refused => describe_refusal(&refused, "rig-running", app),
            };
            obs.add(format!("tcpproxy ?{query}"), seen);
        }

        let out = t
            .run(&["open", "rig-running", "supervisor", "--no-launch"], 60)
            .await;
        obs.add(
            "porthole open rig-running supervisor",
            one_line_error(t, &out, "is not an app Porthole can open"),
        );

        if v9 {
            let open = t.open("rig-running", "vnc", &["--no-launch"]).await;
            let mut socket = TcpStream::connect(("127.0.0.1", open.port()))
                .await
                .unwrap();
            let mut greeting = [0u8; 12];
            tokio::time::timeout(WAIT, socket.read_exact(&mut greeting))
                .await
                .expect("the VNC server's greeting within 20 s")
                .unwrap();
            assert_eq!(&greeting, b"RFB 003.008\n", "{}", t.label());
            obs.add(
                "porthole open rig-running vnc",
                format!(
                    "ready ({}); the server says RFB 003.008",
                    open.ready["protocol"]
                ),
            );
            open.stop().await;
        } else {
            let out = t
                .run(&["open", "rig-running", "vnc", "--no-launch"], 60)
                .await;
            obs.add(
                "porthole open rig-running vnc",
                one_line_error(t, &out, "vnc"),
            );
        }

        let open = t
            .open(
                "rig-running",
                "preview",
                &[
                    "--no-launch",
                    "--arg",
                    "--logdir=/tmp",
                    "--env",
                    "LOG_LEVEL=debug",
                ],
            )
            .await;
        let url = open.ready["url"].as_str().unwrap_or_default().to_owned();
        let (status, _) = http_get(&format!("http://127.0.0.1:{}/health", open.port())).await;
        assert_eq!(status, 200, "{}: GET /health through preview", t.label());
        obs.add(
            "porthole open rig-running preview --arg --logdir=/tmp --env LOG_LEVEL=debug",
            format!(
                "ready; url {}; GET /health {status}",
                url.replace(&open.port().to_string(), "PORT")
            ),
        );
        open.stop().await;
        let out = t
            .run(&["open", "rig-running", "preview", "--arg", "--nope=1"], 60)
            .await;
        obs.add(
            "porthole open rig-running preview --arg --nope=1",
            one_line_error(t, &out, "allows no argument --nope (it allows: --logdir)"),
        );

        if v9 {
            let open = t
                .open(
                    "rig-running",
                    "echo",
                    &["--no-launch", "--app-port", "7008"],
                )
                .await;
            let mut socket = TcpStream::connect(("127.0.0.1", open.port()))
                .await
                .unwrap();
            let mut first = [0u8; 7];
            tokio::time::timeout(WAIT, socket.read_exact(&mut first))
                .await
                .expect("echo's second port speaks first")
                .unwrap();
            assert_eq!(&first, b"port 2\n", "{}", t.label());
            obs.add(
                "porthole open rig-running echo --app-port 7008",
                "the second port answers",
            );
            open.stop().await;
        } else {
            let out = t
                .run(
                    &[
                        "open",
                        "rig-running",
                        "echo",
                        "--no-launch",
                        "--app-port",
                        "7008",
                    ],
                    60,
                )
                .await;
            // Through the web server the manager's reason is hidden behind a 502.
            let needle = if t.session_mode() {
                "502"
            } else {
                "does not open the port number 7008"
            };
            obs.add(
                "porthole open rig-running echo --app-port 7008",
                one_line_error(t, &out, needle),
            );
        }
        obs
    })
}
