//! The scenarios. Each runs against one [`Target`], asserts what Porthole must do there
//! (exit codes, output, the one-line `porthole:` error) and returns what a client observed,
//! for the differential check against the emulator.

use std::process::{Output, Stdio};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use porthole_core::api::ApiError;
use porthole_e2e::{bin, free_port, run_with_timeout};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::raw::{Auth, Event, Handshake, Raw, Reply, Via, Ws};
use crate::rig::{self, rig};
use crate::target::{injected_failure, Open, Target};
use crate::Obs;

const WAIT: Duration = Duration::from_secs(20);
/// How long a relay must stay quiet to count as silent (the web server's relay after the
/// manager side closed never says anything again; a healthy echo answers in milliseconds).
const SILENCE: Duration = Duration::from_secs(2);
const SESSION_QUERY: &str = "query($limit:Int!,$offset:Int!,$status:String){ compute_session_list(limit:$limit, offset:$offset, status:$status){ items { id name type status status_info image scaling_group group_id service_ports } total_count } }";

// ---- helpers --------------------------------------------------------------------------

/// Asserts exit status 1, no panic, and exactly one `porthole: ` line containing `needle`;
/// returns that line.
fn one_line_error(t: &Target, out: &Output, needle: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}: exit status; stdout {:?}, stderr {stderr}",
        t.label(),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !stderr.contains("panicked"),
        "{}: panic: {stderr}",
        t.label()
    );
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("porthole: "))
        .collect();
    assert_eq!(lines.len(), 1, "{}: one error line in {stderr}", t.label());
    let line = t.normalize(lines[0]);
    assert!(
        line.contains(needle),
        "{}: {line:?} does not mention {needle:?}",
        t.label()
    );
    line
}

fn assert_ok(t: &Target, out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{}: {what}: {:?}\nstdout: {}\nstderr: {}",
        t.label(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What Porthole's error mapping makes of a reply (the one line it would print).
fn mapped(reply: &Reply, session: &str, app: &str) -> String {
    ApiError::from_reply(reply.status, &reply.body, Some((session, app))).to_string()
}

fn random_bytes(n: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut data = vec![0u8; n];
    rand::rng().fill_bytes(&mut data);
    data
}

/// Sends `n` random bytes through a local tunnel port and reads them back from the echo app.
async fn echo_through(port: u16, n: usize) {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let payload = random_bytes(n);
    let (mut rd, mut wr) = socket.split();
    let write = async {
        wr.write_all(&payload).await.unwrap();
    };
    let read = async {
        let mut back = vec![0u8; n];
        rd.read_exact(&mut back).await.unwrap();
        back
    };
    let (_, back) = tokio::time::timeout(
        Duration::from_secs(120),
        futures_util::future::join(write, read),
    )
    .await
    .expect("echo through the tunnel within 120 s");
    assert!(back == payload, "echoed bytes differ");
}

/// One raw round trip on an echo tunnel: `n` random bytes as one BINARY frame.
async fn ws_echo(ws: &mut Ws, n: usize) -> String {
    let payload = random_bytes(n);
    if let Err(e) = ws.try_send(&payload).await {
        // 26.x ends the connection as soon as it has read an oversized message's header.
        return format!("the server ended the connection while it was sent ({e})");
    }
    let (got, end) = ws.read(n, WAIT).await;
    match end {
        None if got == payload => format!("echoed {n} bytes"),
        None => "echoed different bytes".into(),
        Some(e) => format!("{} of {n} bytes, then {}", got.len(), e.describe()),
    }
}

/// An HTTP/1.1 request over a tunnel WebSocket; the status line and body length (read by
/// Content-Length; through the web server the socket stays open after the app closes).
async fn ws_http(ws: &mut Ws, path: &str, close: bool) -> (String, Vec<u8>) {
    let (status, body, _) = ws_http_frames(ws, path, close).await;
    (status, body)
}

/// [`ws_http`], also returning the largest BINARY message received.
async fn ws_http_frames(ws: &mut Ws, path: &str, close: bool) -> (String, Vec<u8>, usize) {
    let mut largest = 0;
    let conn = if close { "close" } else { "keep-alive" };
    ws.send(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: {conn}\r\n\r\n").as_bytes(),
    )
    .await;
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match ws.next(WAIT).await {
            Event::Data(d) => {
                largest = largest.max(d.len());
                buf.extend_from_slice(&d);
            }
            other => panic!(
                "HTTP over the tunnel: {} before the response head",
                other.describe()
            ),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status = head.lines().next().unwrap_or_default().to_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        match ws.next(WAIT).await {
            Event::Data(d) => {
                largest = largest.max(d.len());
                body.extend_from_slice(&d);
            }
            other => panic!("HTTP over the tunnel: {} inside the body", other.describe()),
        }
    }
    (status, body, largest)
}

/// The HTTP status code of a status line (`HTTP/1.1 200 OK` -> `200`).
fn code(status_line: &str) -> String {
    status_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("?")
        .to_owned()
}

/// The tunnel's URL on the loopback address instead of its `*.localhost` name. The rig
/// runs JupyterLab on 127.0.0.1 without `allow_remote_access`, so it answers 403 to any
/// Host but `localhost`/IP literals; Backend.AI containers run it on 0.0.0.0, where the
/// name works (tests/real_apps.rs). The Host guard accepts loopback IP literals.
fn loopback_url(open: &Open) -> String {
    format!("http://127.0.0.1:{}/", open.port())
}

/// `GET url` following redirects: status and body. A tunnel's `*.localhost` name is the
/// loopback address, as browsers resolve it.
async fn http_get(url: &str) -> (u16, String) {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(60));
    if let Some(host) = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .filter(|h| h.ends_with(".localhost"))
    {
        builder = builder.resolve(&host, std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    let reply = builder
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = reply.status().as_u16();
    (status, reply.text().await.unwrap_or_default())
}

/// An API version one major newer than the target's, which no server accepts.
fn newer_version(t: &Target) -> String {
    format!("v{}.20990101", t.api.major + 1)
}

fn tunnel_path(session: &str, proto: &str, query: &str) -> String {
    format!("/stream/session/{session}/{proto}?{query}")
}

/// A handshake's observation, plus Porthole's mapping of a refusal.
fn describe_refusal(h: &Handshake, session: &str, app: &str) -> String {
    match h {
        Handshake::Open(_) => "101".into(),
        Handshake::Refused(r) => {
            format!("{} => porthole: {}", r.problem(), mapped(r, session, app))
        }
    }
}

// ---- scenarios ----------------------------------------------------------------------------

/// Listing: RUNNING and PENDING sessions, `service_ports` a JSON string / null while
/// PENDING, the status filter, and `/apps`.
pub fn listing(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let out = t.run(&["sessions", "--json"], 60).await;
        assert_ok(t, &out, "porthole sessions --json");
        let list: Value = serde_json::from_slice(&out.stdout).expect("JSON list");
        let mut items = list.as_array().expect("array").clone();
        items.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        let names: Vec<&str> = items.iter().filter_map(|s| s["name"].as_str()).collect();
        assert_eq!(names, ["rig-pending", "rig-running"], "{}", t.label());
        for s in &items {
            let mut s = s.clone();
            // Differs between any two servers; everything else must match.
            s.as_object_mut().unwrap().remove("created_at");
            obs.add(
                format!("porthole sessions --json: {}", s["name"]),
                s.to_string(),
            );
        }
        let running = &items[1];
        assert_eq!(running["id"], rig().running_id.as_str());
        assert_eq!(running["status"], "RUNNING");
        let apps: Vec<&str> = running["service_ports"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        let want: Vec<&str> = rig().apps.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(apps, want, "{}", t.label());
        assert_eq!(items[0]["status"], "PENDING");
        assert_eq!(items[0]["service_ports"], json!([]), "{}", t.label());

        let table = t.run(&["sessions"], 60).await;
        assert_ok(t, &table, "porthole sessions");
        let text = String::from_utf8_lossy(&table.stdout);
        assert!(
            text.contains("rig-running") && text.contains("rig-pending"),
            "{text}"
        );
        for line in text.lines() {
            obs.add(
                format!(
                    "porthole sessions: line {}",
                    line.split_whitespace().next().unwrap_or("")
                ),
                line.split_whitespace().collect::<Vec<_>>().join(" "),
            );
        }

        let raw = t.raw().await;
        for status in [
            Value::Null,
            json!("RUNNING"),
            json!("PENDING"),
            json!("RUNNING,PENDING"),
            json!("TERMINATED"),
            json!("BOGUS"),
        ] {
            let body = json!({"query": SESSION_QUERY, "variables": {"limit": 50, "offset": 0, "status": status}});
            let r = raw.request("POST", "/admin/gql", Some(&body)).await;
            let v = r.json();
            let list = &v["data"]["compute_session_list"];
            let mut seen = format!("{}", r.status);
            if list.is_null() {
                seen.push_str(&format!(" list=null errors={}", v["errors"]));
            } else {
                let mut items = list["items"].as_array().cloned().unwrap_or_default();
                items.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
                for item in &items {
                    // service_ports is a GraphQL JSONString: a string holding JSON, or null.
                    seen.push_str(&format!(" | {}", item));
                    if item["name"] == "rig-running" {
                        let ports: Value = serde_json::from_str(
                            item["service_ports"]
                                .as_str()
                                .expect("service_ports is a string"),
                        )
                        .expect("service_ports holds JSON");
                        assert_eq!(ports.as_array().map(Vec::len), Some(rig().apps.len()));
                    } else {
                        assert!(item["service_ports"].is_null(), "PENDING: null ports");
                    }
                }
                seen.push_str(&format!(" | total_count={}", list["total_count"]));
            }
            obs.add(format!("gql status={status}"), seen);
        }
        for session in ["rig-running", &rig().running_id, "rig-pending", "nope"] {
            let r = raw
                .request("GET", &format!("/stream/session/{session}/apps"), None)
                .await;
            let seen = if r.status == 200 {
                format!("200 {}", r.json())
            } else {
                r.problem()
            };
            obs.add(format!("GET /stream/session/{session}/apps"), seen);
        }
        obs
    })
}

/// Tunnels to echo, sshd and jupyter through tcpproxy and httpproxy, by name and by UUID;
/// the raw relay's rules; and Porthole's `open` and `proxy` on echo, by name and by UUID.
pub fn tunnels(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let raw = t.raw().await;
        for proto in ["tcpproxy", "httpproxy"] {
            for session in ["rig-running", rig().running_id.as_str()] {
                let by = if session == "rig-running" {
                    "name"
                } else {
                    "uuid"
                };
                let mut ws = raw
                    .ws(&tunnel_path(session, proto, "app=echo"))
                    .await
                    .open("echo");
                let seen = ws_echo(&mut ws, 100_000).await;
                assert_eq!(
                    seen,
                    "echoed 100000 bytes",
                    "{}: {proto} echo by {by}",
                    t.label()
                );
                obs.add(format!("{proto} echo by {by}"), format!("101, {seen}"));
                ws.close().await;

                let mut ws = raw
                    .ws(&tunnel_path(session, proto, "app=sshd"))
                    .await
                    .open("sshd");
                let banner = match ws.next(WAIT).await {
                    Event::Data(d) => String::from_utf8_lossy(&d).to_string(),
                    other => other.describe(),
                };
                assert!(
                    banner.starts_with("SSH-2.0-"),
                    "{}: sshd banner {banner:?}",
                    t.label()
                );
                obs.add(
                    format!("{proto} sshd by {by}"),
                    "101, server speaks first: SSH-2.0-",
                );
                ws.close().await;

                let mut ws = raw
                    .ws(&tunnel_path(session, proto, "app=jupyter"))
                    .await
                    .open("jupyter");
                let (status, body) = ws_http(&mut ws, "/api/status", false).await;
                assert_eq!(code(&status), "200", "{}: jupyter {status}", t.label());
                let json: Value = serde_json::from_slice(&body).expect("/api/status is JSON");
                assert!(json.get("started").is_some(), "{json}");
                obs.add(
                    format!("{proto} jupyter by {by}"),
                    "101, GET /api/status -> 200 JSON",
                );
                ws.close().await;
            }
        }
        let mut ws = raw
            .ws(&tunnel_path("rig-running", "tcpproxy", "app=echo"))
            .await
            .open("echo");
        obs.add("tcpproxy ?app=echo", ws_echo(&mut ws, 1000).await);
        // TEXT frames are dropped; the socket stays usable.
        ws.send_text("dropped").await;
        ws.send(b"kept").await;
        let (got, end) = ws.read(4, WAIT).await;
        assert_eq!((got.as_slice(), end), (&b"kept"[..], None), "{}", t.label());
        obs.add("TEXT frame then BINARY", "TEXT dropped, BINARY echoed");
        // Pings are answered.
        let pong = ws.ping(b"porthole", WAIT).await;
        assert!(pong, "{}: no PONG", t.label());
        obs.add("PING", "PONG with the same payload");
        // A client CLOSE is answered at once.
        let close = tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
            reason: "".into(),
        };
        futures_util::SinkExt::send(
            &mut ws.0,
            tokio_tungstenite::tungstenite::Message::Close(Some(close)),
        )
        .await
        .unwrap();
        let reply = ws.next(WAIT).await;
        obs.add(
            "client CLOSE 1000",
            format!("answered with {}", reply.describe()),
        );
        if t.backends.rig {
            // App bytes come back in messages of at most 256 KiB.
            let mut ws = raw
                .ws(&tunnel_path("rig-running", "httpproxy", "app=ttyd"))
                .await
                .open("ttyd");
            let (status, body, largest) = ws_http_frames(&mut ws, "/big?n=3000000", false).await;
            assert_eq!((code(&status).as_str(), body.len()), ("200", 3_000_000));
            assert!(
                largest <= 262_144,
                "{}: a {largest}-byte message",
                t.label()
            );
            obs.add(
                "ttyd GET /big?n=3000000",
                "200, 3000000 bytes in BINARY messages of at most 256 KiB",
            );
            ws.close().await;
        }
        // The app closing its side ends the relay (API mode); the web server keeps the
        // client's socket open and silent (protocol doc §10).
        let mut ws = raw
            .ws(&tunnel_path("rig-running", "httpproxy", "app=jupyter"))
            .await
            .open("jupyter");
        let (status, _) = ws_http(&mut ws, "/api/status", true).await;
        let end = ws.next(if t.session_mode() { SILENCE } else { WAIT }).await;
        let expected = if t.session_mode() {
            Event::Silent
        } else {
            end.clone()
        };
        assert_eq!(end, expected, "{}", t.label());
        if !t.session_mode() {
            assert!(
                matches!(end, Event::Ended | Event::Close(Some(1001))),
                "{}: after the app closed: {end:?}",
                t.label()
            );
        }
        obs.add(
            "jupyter with Connection: close",
            format!("{} then {}", code(&status), end.describe()),
        );
        ws.close().await;

        // Porthole: open by name and by UUID, then a 1 MiB round trip through each.
        for session in ["rig-running", rig().running_id.as_str()] {
            let open = t.open(session, "echo", &["--no-launch"]).await;
            assert_eq!(open.ready["protocol"], "tcp");
            assert_eq!(open.ready["session"], "rig-running");
            assert!(open.ready.get("url").is_none());
            echo_through(open.port(), 1 << 20).await;
            obs.add(
                format!("porthole open {session} echo"),
                format!(
                    "ready (session {}, app {}, protocol {}); 1 MiB echoed",
                    open.ready["session"], open.ready["app"], open.ready["protocol"]
                ),
            );
            open.stop().await;
        }
        // porthole proxy: stdin/stdout over one WebSocket.
        let mut cmd = t.porthole(&["proxy", "rig-running", "echo"]);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let payload = random_bytes(300_000);
        stdin.write_all(&payload).await.unwrap();
        let mut back = vec![0u8; payload.len()];
        tokio::time::timeout(WAIT, stdout.read_exact(&mut back))
            .await
            .expect("porthole proxy echoes within 20 s")
            .unwrap();
        assert!(back == payload);
        drop(stdin);
        let status = tokio::time::timeout(WAIT, child.wait())
            .await
            .expect("porthole proxy exits after stdin EOF")
            .unwrap();
        obs.add(
            "porthole proxy rig-running echo",
            format!(
                "300000 bytes echoed; exit {:?} after stdin EOF",
                status.code()
            ),
        );
        obs
    })
}

/// `porthole ssh` with the key fetched by download_single; the raw download rules.
pub fn ssh(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let user = t.backends.ssh_user.clone();
        let expected_key = std::fs::read(&t.backends.key).unwrap();
        for session in ["rig-running", rig().running_id.as_str()] {
            let tmp = tempfile::tempdir().unwrap();
            let mut cmd = t.porthole(&["ssh", "--user", &user, session, "--", "echo", "ok"]);
            cmd.env("TMPDIR", tmp.path());
            let out = run_with_timeout(cmd, 90).await;
            assert_ok(t, &out, "porthole ssh");
            assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
            assert_eq!(
                std::fs::read_dir(tmp.path()).unwrap().count(),
                0,
                "{}: the key is removed",
                t.label()
            );
            obs.add(
                format!("porthole ssh {session} -- echo ok"),
                "ok, exit 0, key removed",
            );
        }
        let out = t
            .run(
                &["ssh", "--user", &user, "rig-running", "--", "exit", "7"],
                90,
            )
            .await;
        assert_eq!(out.status.code(), Some(7), "{}: {out:?}", t.label());
        obs.add("porthole ssh rig-running -- exit 7", "exit 7");

        // ssh through `porthole proxy` as its ProxyCommand.
        let mut ssh = Command::new("ssh");
        ssh.args(["-i"])
            .arg(&t.backends.key)
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "LogLevel=ERROR",
                "-o",
            ])
            .arg(format!(
                "ProxyCommand={} proxy rig-running sshd",
                bin("porthole").display()
            ))
            .arg(format!("{user}@rig-running"))
            .arg("echo proxied")
            .env_remove("BACKEND_ENDPOINT")
            .envs(t.env())
            .stdin(Stdio::null());
        let out = run_with_timeout(ssh, 90).await;
        assert_ok(t, &out, "ssh -o ProxyCommand='porthole proxy ...'");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "proxied\n");
        obs.add("ssh via ProxyCommand porthole proxy", "proxied");

        // `porthole open ... sshd` downloads the key for the printed ssh command.
        let open = t.open("rig-running", "sshd", &[]).await;
        let key_file = open.ready["key_file"]
            .as_str()
            .expect("key_file")
            .to_owned();
        assert_eq!(
            std::fs::read(&key_file).unwrap(),
            expected_key,
            "{}",
            t.label()
        );
        obs.add(
            "porthole open rig-running sshd: key_file",
            "the session's id_container",
        );
        open.stop().await;
        assert!(!std::path::Path::new(&key_file).exists());

        // download_single as each release serves it: GET up to 24.03, POST from 24.09 (26.x
        // reads `file` from the query alone). Porthole sends the query form, by the method
        // the version calls for.
        let raw = t.raw().await;
        let method = if t.speaks("v8.20240915") {
            "POST"
        } else {
            "GET"
        };
        let id_container = json!({"file": "id_container"});
        for (m, query, body) in [
            ("GET", "?file=id_container", None),
            ("POST", "?file=id_container", None),
            ("POST", "", Some(&id_container)),
        ] {
            let r = raw
                .request(
                    m,
                    &format!("/session/rig-running/download_single{query}"),
                    body,
                )
                .await;
            let with = if body.is_some() {
                " with a JSON body"
            } else {
                ""
            };
            let seen = if r.status == 200 {
                let what = if r.body == expected_key {
                    "the key"
                } else {
                    "other bytes"
                };
                format!("200 {} ({} bytes, {what})", r.content_type, r.body.len())
            } else {
                r.problem()
            };
            if m == method && body.is_none() {
                assert_eq!(
                    r.body,
                    expected_key,
                    "{}: {m} download_single: {seen}",
                    t.label()
                );
            }
            obs.add(format!("{m} download_single{query}{with}"), seen);
        }
        let r = raw
            .request(
                method,
                &format!(
                    "/session/{}/download_single?file=id_container",
                    rig().running_id
                ),
                None,
            )
            .await;
        obs.add(
            format!("{method} download_single by UUID"),
            format!("{}", r.status),
        );
        let r = raw
            .request(
                method,
                "/session/rig-running/download_single?file=nope.txt",
                None,
            )
            .await;
        obs.add(
            format!("{method} download_single?file=nope.txt"),
            r.problem(),
        );
        obs
    })
}

/// JupyterLab through `porthole open`: a real HTTP GET of the JupyterLab page through the
/// tunnel, and its REST API.
pub fn jupyter(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let open = t.open("rig-running", "jupyter", &["--no-launch"]).await;
        assert_eq!(open.ready["protocol"], "http");
        let named = open.ready["url"].as_str().expect("url").to_owned();
        assert_eq!(
            named,
            format!("http://jupyter-rig-running.localhost:{}/", open.port())
        );
        let url = loopback_url(&open);
        let (status, page) = http_get(&url).await;
        assert_eq!(status, 200, "{}: GET {url}", t.label());
        assert!(
            page.contains("JupyterLab"),
            "{}: not the JupyterLab page: {page:.300}",
            t.label()
        );
        obs.add(
            "porthole open jupyter: GET / (redirects followed)",
            "200, the JupyterLab page",
        );
        let (status, body) = http_get(&format!("{url}api/status")).await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&body).expect("/api/status JSON");
        assert!(v.get("started").is_some(), "{v}");
        obs.add("porthole open jupyter: GET /api/status", "200 JSON");
        // Many parallel requests, each its own tunnelled connection.
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let url = format!("{url}api/status");
            tasks.push(tokio::spawn(async move { http_get(&url).await.0 }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), 200);
        }
        obs.add("porthole open jupyter: 16 parallel GETs", "all 200");
        if t.backends.rig {
            obs.add("run a cell", run_cell(&url).await);
        }
        open.stop().await;
        obs
    })
}

/// Runs `1+1` in a new kernel through the tunnel (Jupyter's REST API and kernel WebSocket),
/// as a browser running a cell would; then deletes the kernel.
async fn run_cell(base: &str) -> String {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    // The _xsrf cookie the page sets, echoed as X-XSRFToken on POST/DELETE (as JupyterLab
    // itself does).
    let page = http.get(format!("{base}lab")).send().await.unwrap();
    let xsrf = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.split(';')
                .next()?
                .trim()
                .strip_prefix("_xsrf=")
                .map(str::to_owned)
        });
    let with_xsrf = |req: reqwest::RequestBuilder| match &xsrf {
        Some(x) => req
            .header("X-XSRFToken", x)
            .header("Cookie", format!("_xsrf={x}")),
        None => req,
    };
    let post = with_xsrf(http.post(format!("{base}api/kernels"))).json(&json!({"name": "python3"}));
    let kernel: Value = post.send().await.unwrap().json().await.unwrap();
    let id = kernel["id"]
        .as_str()
        .unwrap_or_else(|| panic!("kernel: {kernel}"))
        .to_owned();
    let ws_url = format!(
        "{}api/kernels/{id}/channels",
        base.replacen("http://", "ws://", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .expect("kernel WebSocket through the tunnel");
    use futures_util::{SinkExt, StreamExt};
    let msg_id = format!("porthole-{}", free_port());
    let request = json!({
        "header": {"msg_id": msg_id, "username": "porthole", "session": "porthole-conformance",
                   "msg_type": "execute_request", "version": "5.3", "date": chrono::Utc::now().to_rfc3339()},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": "1+1", "silent": false, "store_history": false,
                    "user_expressions": {}, "allow_stdin": false, "stop_on_error": true},
    });
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        request.to_string().into(),
    ))
    .await
    .unwrap();
    let result = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(Ok(msg)) = ws.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = msg {
                let v: Value = serde_json::from_str(&text).unwrap_or_default();
                if v["parent_header"]["msg_id"] == msg_id.as_str()
                    && v["header"]["msg_type"] == "execute_result"
                {
                    return v["content"]["data"]["text/plain"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned();
                }
            }
        }
        String::new()
    })
    .await
    .expect("execute_result within 60 s");
    let _ = ws.close(None).await;
    let _ = with_xsrf(http.delete(format!("{base}api/kernels/{id}")))
        .send()
        .await;
    assert_eq!(result, "2", "1+1 in the kernel");
    "1+1 -> 2 (kernel WebSocket through the tunnel)".into()
}

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

/// An account whose password has expired: the web server refuses its login with
/// `password-expired` (200 up to 26.2, 401 from 26.4), and Porthole says so.
pub fn expired_password(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let user = rig().expired_username.clone();
        // Each refusal counts towards the web server's lock-out.
        let _reset = t.is_real().then(|| rig::LoginCounterReset(user.clone()));
        let r = Raw::login(&t.endpoint, &user, &rig().expired_password).await;
        let v = r.json();
        assert_eq!(v["authenticated"], false, "{}", t.label());
        assert!(
            v["data"]["type"]
                .as_str()
                .is_some_and(|k| k.ends_with("/password-expired")),
            "{}: {v}",
            t.label()
        );
        obs.add(
            "POST /server/login, expired password",
            format!("{} {v}", r.status),
        );
        let mut cmd = t.porthole(&["sessions"]);
        cmd.env("BACKEND_USERNAME", &user)
            .env("BACKEND_PASSWORD", &rig().expired_password);
        let out = run_with_timeout(cmd, 60).await;
        obs.add(
            "porthole sessions as that user",
            one_line_error(
                t,
                &out,
                "the password of this account has expired (Password expired on",
            ),
        );
        obs
    })
}

/// Wrong credentials: wrong secret (401) and friends in API mode; wrong password (200 with
/// `authenticated: false`) and friends in session mode.
pub fn credentials(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        if !t.session_mode() {
            let mut cmd = t.porthole(&["sessions"]);
            cmd.env(
                "BACKEND_SECRET_KEY",
                "wrong-secret-wrong-secret-wrong-secret00",
            );
            let out = run_with_timeout(cmd, 60).await;
            let mismatch = if t.speaks("v9.20250722") {
                "refused the credentials (401: HMAC signature mismatch)"
            } else {
                "refused the credentials (401: Signature mismatch)"
            };
            obs.add(
                "porthole sessions, wrong secret",
                one_line_error(t, &out, mismatch),
            );
            let mut cmd = t.porthole(&["sessions"]);
            cmd.env("BACKEND_ACCESS_KEY", "AKIANOSUCHKEY0000000");
            let out = run_with_timeout(cmd, 60).await;
            obs.add(
                "porthole sessions, unknown access key",
                one_line_error(
                    t,
                    &out,
                    "refused the credentials (401: Access key not found",
                ),
            );
            let q = json!({"query": "{ compute_session_list(limit:1, offset:0){ total_count } }"});
            let cases: [(&str, Auth); 3] = [
                (
                    "wrong secret",
                    Auth::Keypair {
                        access_key: rig().access_key.clone(),
                        secret_key: "wrong".into(),
                        skew: chrono::Duration::zero(),
                    },
                ),
                (
                    "unknown key",
                    Auth::Keypair {
                        access_key: "AKIANOSUCHKEY0000000".into(),
                        secret_key: "wrong".into(),
                        skew: chrono::Duration::zero(),
                    },
                ),
                ("no Authorization", Auth::None),
            ];
            for (what, auth) in cases {
                let r = t
                    .raw_with(auth.clone())
                    .request("POST", "/admin/gql", Some(&q))
                    .await;
                obs.add(
                    format!("gql, {what}"),
                    format!("{} => porthole: {}", r.problem(), mapped(&r, "", "")),
                );
                let h = t
                    .raw_with(auth)
                    .ws(&tunnel_path("rig-running", "tcpproxy", "app=echo"))
                    .await;
                obs.add(format!("tunnel, {what}"), h.describe());
            }
            // A version newer than the server's.
            let mut newer = t.raw().await;
            newer.api_version = newer_version(t);
            let r = newer.request("POST", "/admin/gql", Some(&q)).await;
            obs.add("gql, a newer X-BackendAI-Version", r.problem());
        } else {
            let mut cmd = t.porthole(&["sessions"]);
            cmd.env("BACKEND_PASSWORD", "wrong-password");
            let out = run_with_timeout(cmd, 60).await;
            obs.add(
                "porthole sessions, wrong password",
                one_line_error(t, &out, "sign-in failed: User credential mismatch. Check"),
            );
            for (what, user, pass) in [
                ("wrong password", rig().username.as_str(), "wrong-password"),
                ("unknown user", "nobody-conformance@example.test", "x"),
            ] {
                let r = Raw::login(&t.endpoint, user, pass).await;
                let v = r.json();
                // 200 with the flag up to 26.2; the manager's status from 26.4.
                let status = if t.speaks("v9.20250722") { 401 } else { 200 };
                assert_eq!(r.status, status, "{}: {what}", t.label());
                assert_eq!(v["authenticated"], false);
                obs.add(
                    format!("POST /server/login, {what}"),
                    format!(
                        "{} {} session-id-header={}",
                        r.status,
                        v,
                        r.session_header.as_ref().is_some_and(|s| s.len() == 32)
                    ),
                );
            }
            let r = Raw::login(&t.endpoint, &rig().username, "").await;
            obs.add("POST /server/login, empty password", r.problem());
            // Requests with no, an unknown, or a logged-out session.
            let q = json!({"query": "{ compute_session_list(limit:1, offset:0){ total_count } }"});
            let good = t.raw().await;
            let Auth::Session { id, .. } = good.auth.clone() else {
                unreachable!()
            };
            for (what, auth) in [
                ("no session", Auth::None),
                (
                    "unknown session id",
                    Auth::Session {
                        id: "0123456789abcdef0123456789abcdef".into(),
                        via: Via::Header,
                    },
                ),
                (
                    "session id as cookie only",
                    Auth::Session {
                        id: id.clone(),
                        via: Via::Cookie,
                    },
                ),
            ] {
                let raw = t.raw_with(auth);
                let r = raw.request("POST", "/admin/gql", Some(&q)).await;
                let seen = if r.status == 200 {
                    "200".to_owned()
                } else {
                    format!("{} => porthole: {}", r.problem(), mapped(&r, "", ""))
                };
                obs.add(format!("/func/admin/gql, {what}"), seen);
                let h = raw
                    .ws(&tunnel_path("rig-running", "tcpproxy", "app=echo"))
                    .await;
                obs.add(format!("tunnel, {what}"), h.describe());
            }
            // The header wins over the cookie, even when it is wrong.
            let r = reqwest::Client::new()
                .post(format!("{}/func/admin/gql", t.endpoint))
                .header("X-BackendAI-SessionID", "0123456789abcdef0123456789abcdef")
                .header("Cookie", format!("AIOHTTP_SESSION={id}"))
                .json(&q)
                .send()
                .await
                .unwrap();
            obs.add(
                "/func/admin/gql, wrong header + right cookie",
                r.status().as_u16().to_string(),
            );
            // A version newer than the manager's: its 400 passes through.
            let mut newer = good.clone();
            newer.api_version = newer_version(t);
            let r = newer.request("POST", "/admin/gql", Some(&q)).await;
            obs.add("/func/admin/gql, a newer X-BackendAI-Version", r.problem());
            // Logging in again with a logged-in session: 400.
            let r = reqwest::Client::new()
                .post(format!("{}/server/login", t.endpoint))
                .header("X-BackendAI-SessionID", &id)
                .json(&json!({"username": rig().username, "password": rig().password}))
                .send()
                .await
                .unwrap();
            obs.add(
                "POST /server/login while logged in",
                r.status().as_u16().to_string(),
            );
            let r = reqwest::Client::new()
                .post(format!("{}/server/logout", t.endpoint))
                .header("X-BackendAI-SessionID", &id)
                .send()
                .await
                .unwrap();
            obs.add("POST /server/logout", r.status().as_u16().to_string());
            let r = good.request("POST", "/admin/gql", Some(&q)).await;
            obs.add("/func/admin/gql after logout", r.problem());
        }
        obs
    })
}

/// A skewed clock: 400 "Date/time sync error" beyond ±15 min in API mode, and Porthole's
/// message under `faketime`; in session mode the web server signs, so a skewed client works.
pub fn skewed_clock(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let mut cmd = Command::new("faketime");
        cmd.args(["-f", "-20m"])
            .arg(bin("porthole"))
            .arg("sessions")
            .env_remove("BROWSER")
            .envs(t.env())
            .stdin(Stdio::null());
        let out = run_with_timeout(cmd, 60).await;
        if t.session_mode() {
            assert_ok(t, &out, "faketime -20m porthole sessions (session mode)");
            obs.add(
                "faketime -20m porthole sessions",
                "works (the web server signs)",
            );
        } else {
            obs.add(
                "faketime -20m porthole sessions",
                one_line_error(t, &out, "clock skew over 15 minutes"),
            );
            let q = json!({"query": "{ compute_session_list(limit:1, offset:0){ total_count } }"});
            for minutes in [-16i64, -14, 14, 16] {
                let raw = t.raw_with(Auth::Keypair {
                    access_key: rig().access_key.clone(),
                    secret_key: rig().secret_key.clone(),
                    skew: chrono::Duration::minutes(minutes),
                });
                let r = raw.request("POST", "/admin/gql", Some(&q)).await;
                let seen = if r.status == 200 {
                    "200".to_owned()
                } else {
                    format!("{} => porthole: {}", r.problem(), mapped(&r, "", ""))
                };
                obs.add(format!("gql, clock {minutes:+} min"), seen);
                let h = raw
                    .ws(&tunnel_path("rig-running", "tcpproxy", "app=echo"))
                    .await;
                obs.add(format!("tunnel, clock {minutes:+} min"), h.describe());
            }
        }
        obs
    })
}

/// Ten failed logins lock a username (429) for 20 minutes, even with the right password.
pub fn too_many_logins(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        // A username nobody uses, so the real web server's lock hurts no one.
        let user = format!(
            "locked-{}-{}@example.test",
            std::process::id(),
            chrono::Utc::now().timestamp_millis()
        );
        let _reset = t.is_real().then(|| rig::LoginCounterReset(user.clone()));
        let mut seen = Vec::new();
        for _ in 0..10 {
            let r = Raw::login(&t.endpoint, &user, "wrong").await;
            seen.push(format!("{}:{}", r.status, r.json()["authenticated"]));
        }
        obs.add("10 failed logins of a new user", seen.join(" "));
        let r = Raw::login(&t.endpoint, &user, "wrong").await;
        obs.add("11th login", r.problem());
        let mut cmd = t.porthole(&["sessions"]);
        cmd.env("BACKEND_USERNAME", &user);
        let out = run_with_timeout(cmd, 60).await;
        obs.add(
            "porthole sessions as that user",
            one_line_error(t, &out, "too many failed sign-in attempts (429)"),
        );

        // The rig user: locked even with the right password, until the counter is reset
        // (start.sh does that; the guard below does it even if this test fails).
        let reset = t
            .is_real()
            .then(|| rig::LoginCounterReset(rig().username.clone()));
        for _ in 0..10 {
            Raw::login(&t.endpoint, &rig().username, "wrong").await;
        }
        let r = Raw::login(&t.endpoint, &rig().username, &rig().password).await;
        obs.add("rig user, right password after 10 failures", r.problem());
        let out = t.run(&["sessions"], 60).await;
        obs.add(
            "porthole sessions, rig user locked",
            one_line_error(t, &out, "too many failed sign-in attempts (429)"),
        );
        drop(reset);
        if t.is_real() {
            let out = t.run(&["sessions"], 60).await;
            assert_ok(t, &out, "porthole sessions after the counter reset");
        }
        obs
    })
}

/// The manager is down: `cannot reach` in API mode; 502 from the web server in session mode
/// (for /func, tunnels and even /server/login).
pub fn manager_down(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let raw = t.raw().await;
        t.manager_down().await;
        let result = std::panic::AssertUnwindSafe(async {
            let out = t.run(&["sessions"], 60).await;
            if t.session_mode() {
                obs.add(
                    "porthole sessions",
                    one_line_error(
                        t,
                        &out,
                        "answered 502 (The proxy target server is inaccessible.)",
                    ),
                );
                let q =
                    json!({"query": "{ compute_session_list(limit:1, offset:0){ total_count } }"});
                let r = raw.request("POST", "/admin/gql", Some(&q)).await;
                obs.add("/func/admin/gql", r.problem());
                let r = raw.request("GET", "/", None).await;
                obs.add("GET /func/", r.problem());
                let h = raw
                    .ws(&tunnel_path("rig-running", "tcpproxy", "app=echo"))
                    .await;
                obs.add("tunnel", describe_refusal(&h, "rig-running", "echo"));
                let r = Raw::login(&t.endpoint, &rig().username, &rig().password).await;
                obs.add("POST /server/login", r.problem());
                let Auth::Session { id, .. } = &raw.auth else {
                    unreachable!()
                };
                let r = reqwest::Client::new()
                    .post(format!("{}/server/login-check", t.endpoint))
                    .header("X-BackendAI-SessionID", id)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap_or_default();
                obs.add(
                    "POST /server/login-check",
                    format!("{status} authenticated={}", v["authenticated"]),
                );
            } else {
                obs.add(
                    "porthole sessions",
                    one_line_error(t, &out, "cannot reach ENDPOINT"),
                );
            }
        })
        .catch_unwind()
        .await;
        t.manager_up().await;
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
        if t.session_mode() {
            let out = t.run(&["sessions"], 60).await;
            assert_ok(t, &out, "porthole sessions once the manager is back");
            obs.add("porthole sessions once the manager is back", "works");
        }
        obs
    })
}

/// Message size limits: 16 MiB for the manager, 4 MiB for the web server's client socket;
/// CLOSE 1009 beyond. Porthole's frames stay far below both limits, so 20 MiB written in
/// one go through `porthole open` comes back whole.
pub fn oversized_frame(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let raw = t.raw().await;
        let limit: usize = if t.session_mode() { 4 << 20 } else { 16 << 20 };
        for (what, size) in [("limit - 1", limit - 1), ("limit", limit)] {
            let mut ws = raw
                .ws(&tunnel_path("rig-running", "tcpproxy", "app=echo"))
                .await
                .open("echo");
            let seen = ws_echo(&mut ws, size).await;
            if size < limit {
                assert_eq!(seen, format!("echoed {size} bytes"), "{}", t.label());
            } else if t.speaks("v9.20250722") {
                assert!(
                    seen.starts_with("the server ended the connection"),
                    "{}: {seen}",
                    t.label()
                );
            } else {
                assert_eq!(
                    seen,
                    format!("0 of {size} bytes, then close 1009"),
                    "{}",
                    t.label()
                );
            }
            obs.add(format!("one BINARY message of {what} bytes"), seen);
            ws.close().await;
        }
        let open = t.open("rig-running", "echo", &["--no-launch"]).await;
        echo_through(open.port(), 20 << 20).await;
        obs.add(
            "porthole open echo: 20 MiB in one write",
            "echoed (64 KiB frames)",
        );
        open.stop().await;
        obs
    })
}

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
