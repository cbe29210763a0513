//! `porthole` against the emulator with a real OpenSSH sshd and a real HTTP server behind
//! it, in every mode: API v8, API v4 (`/stream/kernel`), and web login (`/func`).

use std::path::Path;
use std::process::Stdio;

use porthole_e2e::*;
use tokio::process::Command;

const PAGE: &str = "<!doctype html><title>porthole e2e</title><p>hello through the tunnel</p>\n";

fn sessions(sshd: &Sshd, http: &HttpServer) -> Vec<Session> {
    vec![
        Session {
            name: "train-1".into(),
            status: "RUNNING".into(),
            services: vec![
                Service::new("sshd", "tcp", &sshd.target()),
                Service::new("web", "http", &http.target()),
            ],
            ssh_key: Some(sshd.client_key.clone()),
        },
        Session::pending("queued"),
    ]
}

async fn fixture(mode: Mode) -> (Sshd, HttpServer, Emulator) {
    let sshd = Sshd::start().await;
    let http = HttpServer::start(PAGE).await;
    let emulator = Emulator::start(mode, &emulator_config(mode, &sessions(&sshd, &http), "")).await;
    (sshd, http, emulator)
}

fn ssh_cmd(sshd: &Sshd, port: u16) -> Command {
    let mut cmd = Command::new("ssh");
    let mut opts = sshd.client_options(port);
    // ssh takes the port as -p, scp as -P.
    let n = opts.len();
    opts[n - 2] = "-p".into();
    cmd.args(opts).arg(format!("{}@127.0.0.1", sshd.user));
    cmd.stdin(Stdio::null());
    cmd
}

async fn curl(url: &str) -> std::process::Output {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--fail", "--max-time", "30", url]);
    run_with_timeout(cmd, 40).await
}

async fn sessions_are_listed(mode: Mode) {
    let (_sshd, _http, emu) = fixture(mode).await;
    let out = emu.run(&["sessions", "--json"], 30).await;
    assert!(out.status.success(), "{out:?}");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{list}");
    let train = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "train-1")
        .unwrap();
    assert_eq!(train["status"], "RUNNING");
    let apps: Vec<&str> = train["service_ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(apps, ["sshd", "web"]);
    assert_eq!(train["service_ports"][0]["protocol"], "tcp");
    assert!(train["service_ports"][0]["container_ports"].is_array());
    let queued = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "queued")
        .unwrap();
    assert_eq!(queued["service_ports"], serde_json::json!([]));
    let table = emu.run(&["sessions"], 30).await;
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("train-1") && text.contains("sshd, web") || text.contains("web, sshd"),
        "{text}"
    );
}

async fn porthole_ssh_runs_a_command(mode: Mode) {
    let (sshd, _http, emu) = fixture(mode).await;
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = emu.porthole(&["ssh", "--user", &sshd.user, "train-1", "--", "echo", "ok"]);
    cmd.env("TMPDIR", tmp.path());
    let out = run_with_timeout(cmd, 60).await;
    assert!(out.status.success(), "porthole ssh failed: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    // The downloaded key is gone with its directory.
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "key left behind"
    );
    // ssh's exit code comes through.
    let mut cmd = emu.porthole(&["ssh", "--user", &sshd.user, "train-1", "--", "exit", "7"]);
    cmd.env("TMPDIR", tmp.path());
    let out = run_with_timeout(cmd, 60).await;
    assert_eq!(out.status.code(), Some(7), "{out:?}");
}

async fn scp_moves_64_mib_both_ways(mode: Mode) {
    let (sshd, _http, emu) = fixture(mode).await;
    let tunnel = emu.open_launching("train-1", "sshd", &[]).await;
    // Without --no-launch the key is downloaded for the printed ssh command: private.
    let key_file = tunnel.ready["key_file"]
        .as_str()
        .expect("key_file")
        .to_owned();
    let mode_bits = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    ) & 0o777;
    assert_eq!(mode_bits, 0o600);
    assert!(tunnel.ready["ssh_command"]
        .as_str()
        .unwrap()
        .contains(&format!("-p {}", tunnel.port())));

    let local = tempfile::tempdir().unwrap();
    let up = local.path().join("up.bin");
    random_file(&up, 64 << 20);
    let remote = sshd.scratch.join(format!("up-{mode:?}.bin"));
    let mut scp = Command::new("scp");
    scp.args(sshd.client_options(tunnel.port()))
        .arg(&up)
        .arg(format!("{}@127.0.0.1:{}", sshd.user, remote.display()));
    let out = run_with_timeout(scp, 120).await;
    assert!(out.status.success(), "scp upload: {out:?}");
    assert_eq!(sha256_file(&up), sha256_file(&remote));

    let down = local.path().join("down.bin");
    let mut scp = Command::new("scp");
    scp.args(sshd.client_options(tunnel.port()))
        .arg(format!("{}@127.0.0.1:{}", sshd.user, remote.display()))
        .arg(&down);
    let out = run_with_timeout(scp, 120).await;
    assert!(out.status.success(), "scp download: {out:?}");
    assert_eq!(sha256_file(&up), sha256_file(&down));

    // Plain ssh through the same tunnel.
    let mut ssh = ssh_cmd(&sshd, tunnel.port());
    ssh.arg("echo via-open");
    let out = run_with_timeout(ssh, 60).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "via-open\n",
        "{out:?}"
    );
    tunnel.stop().await;
    assert!(
        !Path::new(&key_file).exists(),
        "the key is removed when open exits"
    );
}

async fn proxy_command_works(mode: Mode) {
    let (sshd, _http, emu) = fixture(mode).await;
    let mut ssh = Command::new("ssh");
    let mut opts = sshd.client_options(22);
    opts.truncate(opts.len() - 2);
    ssh.args(opts)
        .arg("-o")
        .arg(format!(
            "ProxyCommand={} proxy train-1 sshd",
            bin("porthole").display()
        ))
        .arg(format!("{}@train-1.porthole", sshd.user))
        .arg("echo proxied")
        .envs(emu.env())
        .stdin(Stdio::null());
    let out = run_with_timeout(ssh, 60).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "proxied\n");
}

async fn http_app_serves_32_parallel_requests(mode: Mode) {
    let (_sshd, http, emu) = fixture(mode).await;
    std::fs::write(http.root.path().join("big.bin"), vec![7u8; 4 << 20]).unwrap();
    let tunnel = emu.open("train-1", "web", &[]).await;
    let url = tunnel.ready["url"]
        .as_str()
        .expect("url for an http app")
        .to_owned();
    assert_eq!(tunnel.ready["protocol"], "http");
    assert_eq!(tunnel.ready["app"], "web");
    assert_eq!(tunnel.ready["session"], "train-1");
    // Its own loopback name keeps its cookies apart from other tunnels' (curl, like
    // browsers, resolves *.localhost to the loopback address by itself).
    assert_eq!(
        url,
        format!("http://web-train-1.localhost:{}/", tunnel.port())
    );
    let out = curl(&url).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), PAGE);

    let mut tasks = Vec::new();
    for i in 0..32 {
        let url = if i % 4 == 0 {
            format!("{url}big.bin")
        } else {
            url.clone()
        };
        tasks.push(tokio::spawn(async move { (i, curl(&url).await) }));
    }
    for task in tasks {
        let (i, out) = task.await.unwrap();
        assert!(out.status.success(), "request {i}: {out:?}");
        if i % 4 == 0 {
            assert_eq!(out.stdout.len(), 4 << 20, "request {i}");
        } else {
            assert_eq!(String::from_utf8_lossy(&out.stdout), PAGE, "request {i}");
        }
    }
    let port = tunnel.port();
    tunnel.stop().await;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the port is released after stop"
    );
}

macro_rules! in_every_mode {
    ($($name:ident),* $(,)?) => {
        mod api_v8 { use super::*; $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name(Mode::ApiV8).await } )* }
        mod api_v4 { use super::*; $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name(Mode::ApiV4).await } )* }
        mod session_mode { use super::*; $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name(Mode::Session).await } )* }
    };
}

in_every_mode!(
    sessions_are_listed,
    porthole_ssh_runs_a_command,
    scp_moves_64_mib_both_ways,
    proxy_command_works,
    http_app_serves_32_parallel_requests,
);

/// Without `--no-launch`, `open` hands the app's URL to `$BROWSER`, and that URL serves
/// the page; SIGINT (Ctrl-C) then stops it with exit 0 and frees the port.
#[tokio::test(flavor = "multi_thread")]
async fn open_launches_browser_with_a_working_url_and_exits_0_on_sigint() {
    let mode = Mode::ApiV8;
    let (_sshd, _http, emu) = fixture(mode).await;
    let browser = FakeBrowser::start().await;
    let mut cmd = emu.porthole(&["open", "train-1", "web"]);
    cmd.env("BROWSER", browser.command())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let line = read_line_until(&mut out, 60, "porthole open", |l| {
        l.contains(" is at http://")
    })
    .await;
    let printed_url = line.rsplit(' ').next().unwrap().to_owned();
    let url = browser.next_url(20).await;
    assert_eq!(url, printed_url);
    let page = curl(&url).await;
    assert_eq!(String::from_utf8_lossy(&page.stdout), PAGE);

    let port: u16 = url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    interrupt(&child);
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
        .await
        .expect("exits within 10 s of SIGINT")
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
