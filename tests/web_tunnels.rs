//! Web app tunnels through `porthole open`, on a real HTTP server behind the emulator:
//! each tunnel's own `*.localhost` name, the Host guard against DNS rebinding, the
//! image's `url_template`, and apps that are slow to start (a delayed start, a port that
//! opens only after the browser asked).

use std::process::Stdio;
use std::time::{Duration, Instant};

use porthole_e2e::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const PAGE: &str = "<!doctype html><title>web app</title><p>the app itself</p>\n";

async fn emulator_with(services: Vec<Service>) -> Emulator {
    let sessions = vec![Session {
        name: "train-1".into(),
        status: "RUNNING".into(),
        services,
        ssh_key: None,
    }];
    Emulator::start(Mode::ApiV8, &emulator_config(Mode::ApiV8, &sessions, "")).await
}

/// `porthole open train-1 web` with its stderr kept for the test to read; returns the
/// process and the URL of its ready line.
async fn open_web_watching_stderr(emu: &Emulator) -> (tokio::process::Child, String) {
    let mut cmd = emu.porthole(&["open", "train-1", "web", "--json", "--no-launch"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let ready = read_line_until(&mut stdout, 30, "porthole open", |l| l.starts_with('{')).await;
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    (child, ready["url"].as_str().unwrap().to_owned())
}

async fn curl(args: &[&str]) -> (String, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "30", "-w", "\n%{http_code}"])
        .args(args);
    let out = run_with_timeout(cmd, 40).await;
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status code line");
    (code.to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn rebinding_requests_are_refused_while_the_app_works_by_its_names() {
    let http = HttpServer::start(PAGE).await;
    let emu = emulator_with(vec![Service::new("web", "http", &http.target())]).await;
    let tunnel = emu.open("train-1", "web", &[]).await;
    let port = tunnel.port();
    let url = tunnel.ready["url"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("http://web-train-1.localhost:{port}/"));

    // The app answers on the tunnel's own name, localhost and the loopback address.
    for good in [
        url.clone(),
        format!("http://localhost:{port}/"),
        format!("http://127.0.0.1:{port}/"),
    ] {
        assert_eq!(curl(&[&good]).await, ("200".into(), PAGE.into()), "{good}");
    }

    // DNS rebinding: a name the attacker controls now resolves to 127.0.0.1. The browser
    // sends that name as Host; Porthole answers 403 itself, the app never sees it.
    let evil = format!("evil.example:{port}:127.0.0.1");
    let (code, body) = curl(&["--resolve", &evil, &format!("http://evil.example:{port}/")]).await;
    assert_eq!(code, "403", "{body}");
    assert!(body.contains("DNS rebinding"), "{body}");
    assert!(
        body.contains(&format!("http://web-train-1.localhost:{port}")),
        "{body}"
    );
    assert!(!body.contains("the app itself"), "{body}");
    // Another tunnel's name, or the right name on another port, is refused too.
    let other = format!("Host: jupyter-train-1.localhost:{port}");
    let (code, _) = curl(&["-H", &other, &format!("http://127.0.0.1:{port}/")]).await;
    assert_eq!(code, "403");

    // The app keeps working after the refusals (two requests in one curl: `-w` prints
    // the first one's code between the bodies).
    let (code, body) = curl(&[&url, &format!("{url}index.html")]).await;
    assert_eq!(code, "200");
    assert_eq!(body, format!("{PAGE}\n200{PAGE}"));
    tunnel.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn url_templates_give_the_start_url() {
    let http = HttpServer::start(PAGE).await;
    std::fs::create_dir(http.root.path().join("start")).unwrap();
    std::fs::write(http.root.path().join("start/index.html"), "start page\n").unwrap();
    let mut service = Service::new("custom", "http", &http.target());
    service.extra = "url_template = \"{protocol}://{host}:{port}/start/index.html\"".into();
    let emu = emulator_with(vec![service]).await;
    let tunnel = emu.open("train-1", "custom", &[]).await;
    let url = tunnel.ready["url"].as_str().unwrap().to_owned();
    assert_eq!(
        url,
        format!(
            "http://custom-train-1.localhost:{}/start/index.html",
            tunnel.port()
        )
    );
    assert_eq!(curl(&[&url]).await, ("200".into(), "start page\n".into()));
    tunnel.stop().await;
}

/// The server takes 5 s to start the app (`start_delay_ms`): `porthole open` says it is
/// ready only once the app is, and the first page the browser loads is the app's.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_starting_app_opens_without_an_error_page() {
    let http = HttpServer::start(PAGE).await;
    let mut service = Service::new("web", "http", &http.target());
    service.extra = "start_delay_ms = 5000".into();
    let emu = emulator_with(vec![service]).await;
    let browser = FakeBrowser::start().await;
    let started = Instant::now();
    let mut cmd = emu.porthole(&["open", "train-1", "web", "--json"]);
    cmd.env("BROWSER", browser.command())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let tunnel = OpenTunnel::spawn(cmd).await;
    let url = browser.next_url(30).await;
    assert!(
        started.elapsed() >= Duration::from_millis(4500),
        "the browser was opened before the app started: {:?}",
        started.elapsed()
    );
    assert_eq!(curl(&[&url]).await, ("200".into(), PAGE.into()));
    tunnel.stop().await;
}

/// The app's port opens only after the browser's request arrived (the manager closes
/// with 1013 meanwhile): the request is held, retried, and answered by the app.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_waits_for_an_app_that_listens_late() {
    let port = free_port();
    let emu = emulator_with(vec![Service::new(
        "web",
        "http",
        &format!("127.0.0.1:{port}"),
    )])
    .await;
    let (mut child, url) = open_web_watching_stderr(&emu).await;
    let request = tokio::spawn(async move { curl(&[&url]).await });
    // porthole says it holds the connection; only then does the app start listening.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    read_line_until(&mut stderr, 30, "porthole open", |l| {
        l.contains("web is not listening yet; holding connections")
    })
    .await;
    let _app = HttpServer::start_on(port, PAGE).await;
    let answer = tokio::time::timeout(Duration::from_secs(30), request)
        .await
        .expect("the held request is answered")
        .unwrap();
    assert_eq!(answer, ("200".into(), PAGE.into()));
    // Nothing was reported as failed.
    terminate(&child);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let mut line = String::new();
        while stderr.read_line(&mut line).await.unwrap_or(0) > 0 {
            rest.push_str(&line);
            line.clear();
        }
    })
    .await;
    assert!(!rest.contains("connection failed"), "{rest}");
}

/// The session is terminated under a running `porthole open`: a connection ending prompts
/// a listing check; porthole stops the tunnel, says why in one line and exits 1.
#[tokio::test(flavor = "multi_thread")]
async fn porthole_open_stops_when_its_session_ends() {
    let http = HttpServer::start(PAGE).await;
    let emu = emulator_with(vec![Service::new("web", "http", &http.target())]).await;
    let (mut child, url) = open_web_watching_stderr(&emu).await;
    assert_eq!(curl(&[&url]).await.0, "200");

    let control = reqwest::Client::new()
        .post(format!("{}/_emulator/sessions/train-1/status", emu.url))
        .json(&serde_json::json!({ "status": "TERMINATED" }))
        .send()
        .await
        .unwrap();
    assert!(control.status().is_success(), "{control:?}");
    // The browser's next request meets the ended session (502), unless the end of the
    // first request already prompted the check that stopped the tunnel (refused).
    let mut next = Command::new("curl");
    next.args(["-sS", "--max-time", "30", "-o", "/dev/null", &url]);
    let _ = run_with_timeout(next, 40).await;
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("porthole open exits once the session ended")
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "porthole: session train-1 has ended (it is no longer listed); its tunnels were stopped",
        "{stderr}"
    );
}

/// The machine's own addresses other than 127.0.0.1: another loopback address, and every
/// non-loopback IPv4 address `hostname -I` reports.
async fn other_local_addresses() -> Vec<std::net::IpAddr> {
    let mut addrs = vec![std::net::IpAddr::from([127, 0, 0, 2])];
    let out = run_with_timeout(
        {
            let mut c = Command::new("hostname");
            c.arg("-I");
            c
        },
        10,
    )
    .await;
    addrs.extend(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
            .filter(|a| a.is_ipv4() && !a.is_loopback()),
    );
    addrs
}

/// Tunnels listen on 127.0.0.1 only: the same port on any other local address is closed.
/// `--bind` must be given to expose one, and porthole warns when it is.
#[tokio::test(flavor = "multi_thread")]
async fn tunnels_listen_on_loopback_only_unless_told_otherwise() {
    let http = HttpServer::start(PAGE).await;
    let emu = emulator_with(vec![Service::new("web", "http", &http.target())]).await;
    let tunnel = emu.open("train-1", "web", &[]).await;
    let port = tunnel.port();
    assert!(tunnel.local_addr().starts_with("127.0.0.1:"));
    for ip in other_local_addresses().await {
        let reached = tokio::net::TcpStream::connect((ip, port)).await;
        assert!(reached.is_err(), "port {port} answers on {ip}");
    }
    tunnel.stop().await;

    let mut cmd = emu.porthole(&[
        "open",
        "train-1",
        "web",
        "--json",
        "--no-launch",
        "--bind",
        "0.0.0.0",
    ]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let warning =
        read_line_until(&mut stderr, 30, "porthole open", |l| l.contains("warning")).await;
    assert!(
        warning.starts_with("porthole: warning: web on 0.0.0.0:")
            && warning.contains("other machines and every local user can use it"),
        "{warning}"
    );
    terminate(&child);
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}
