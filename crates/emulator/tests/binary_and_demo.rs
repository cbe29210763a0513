//! The `porthole-emulator` binary (CLI contract) and the built-in demo.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;
use porthole_emulator::demo::{
    self, DEMO_ACCESS_KEY, DEMO_PASSWORD, DEMO_SECRET_KEY, DEMO_USERNAME,
};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_porthole-emulator");

/// Kills the child on drop so a failing test leaves nothing behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary and returns it with the URL from its one stdout line.
fn spawn(args: &[&str]) -> (Proc, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    (Proc(child), url)
}

fn signal(proc: &Proc, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &proc.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn binary_serves_a_config_and_exits_0_on_sigterm() {
    let echo = echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emulator.toml");
    std::fs::write(&path, config_toml("v8.20240915", echo, "")).unwrap();
    let (mut proc, url) = spawn(&[
        "--config",
        path.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let v: Value = within(http().get(&url).send())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["version"], "v8.20240915");
    signal(&proc, "-TERM");
    let status = tokio::task::spawn_blocking(move || proc.0.wait().unwrap());
    assert_eq!(within(status).await.unwrap().code(), Some(0));
}

#[test]
fn binary_rejects_a_bad_config_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "api_version = \"v8.20240915\"\nsurprise = true\n").unwrap();
    let out = Command::new(BIN)
        .args([
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("surprise"), "{stderr}");

    let out = Command::new(BIN)
        .args(["--config", "/nonexistent/x.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn binary_demo_mode_exits_0_on_sigint() {
    let (mut proc, url) = spawn(&["--demo", "--listen", "127.0.0.1:0"]);
    let resp = within(
        http()
            .post(format!("{url}/server/login"))
            .json(&json!({"username": DEMO_USERNAME, "password": DEMO_PASSWORD}))
            .send(),
    )
    .await
    .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["authenticated"], true);
    signal(&proc, "-INT");
    let status = tokio::task::spawn_blocking(move || proc.0.wait().unwrap());
    assert_eq!(within(status).await.unwrap().code(), Some(0));
}

#[tokio::test]
async fn demo_serves_its_page_through_a_tunnel() {
    let demo = demo::start_demo("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let emu = &demo.emulator;
    let mut s = signing("v8.20240915");
    s.access_key = DEMO_ACCESS_KEY;
    s.secret_key = DEMO_SECRET_KEY;
    let mut ws = ws_signed(
        emu,
        &s,
        "/stream/session/demo-notebook/httpproxy?app=jupyter",
    )
    .await
    .unwrap();
    send_binary(
        &mut ws,
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    let mut page = Vec::new();
    loop {
        match next_message(&mut ws).await {
            Some(tokio_tungstenite::tungstenite::Message::Binary(b)) => page.extend_from_slice(&b),
            Some(tokio_tungstenite::tungstenite::Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 1001);
                // Finish the close handshake.
                while let Some(Ok(_)) = within(futures_util::StreamExt::next(&mut ws)).await {}
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let page = String::from_utf8_lossy(&page);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("Porthole demo app"), "{page}");
    assert!(page.contains("'/ws'"), "{page}");

    // The TCP echo and the listing.
    let mut ws = ws_signed(emu, &s, "/stream/session/demo-training/tcpproxy?app=echo")
        .await
        .unwrap();
    send_binary(&mut ws, b"demo").await;
    assert_eq!(read_exact_binary(&mut ws, 4).await.0, b"demo");
    close(&mut ws).await;
    let mut sj = signing("v8.20240915");
    sj.access_key = DEMO_ACCESS_KEY;
    sj.secret_key = DEMO_SECRET_KEY;
    sj.content_type = Some("application/json");
    let body =
        json!({"query": LIST_QUERY, "variables": {"limit": 50, "offset": 0, "status": null}})
            .to_string();
    let v: Value = signed(emu, &sj, "POST", "/admin/gql", Some(&body))
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = v["data"]["compute_session_list"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["demo-notebook", "demo-training", "demo-queued"]);
    demo.shutdown().await;
}
