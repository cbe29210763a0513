//! Real networks: the cluster sits behind a real HTTP proxy (tinyproxy, in a network
//! namespace whose host names only it can resolve, see `porthole_e2e::network`), its
//! certificate comes from a company CA that only a trust store the test points `porthole`
//! at holds, and `porthole` is frozen (SIGSTOP, as a laptop suspend stops it) or has the
//! path changed under a live tunnel. What went through the proxy is read from the proxy's
//! own log.

use std::process::Stdio;
use std::time::Duration;

use porthole_e2e::network::{Cluster, ProxyOptions, Tinyproxy, MANAGER_HOST};
use porthole_e2e::*;
use porthole_testkit::tls::{TestPki, TlsFront};
use porthole_testkit::within;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// A cluster behind a proxy: the emulator on this machine's address on the link (with an
/// `echo` app and a `slow` one that takes 4 s to start), known as [`MANAGER_HOST`] only to
/// the proxy.
struct Site {
    cluster: Cluster,
    emu: Emulator,
    config: String,
    port: u16,
    proxy: Tinyproxy,
    options: ProxyOptions,
}

impl Site {
    async fn start(options: ProxyOptions) -> Option<Site> {
        let cluster = Cluster::create()?;
        let echo = greeting_echo_server(b"").await.to_string();
        let mut slow = Service::new("slow", "tcp", &echo);
        slow.extra = "start_delay_ms = 4000".into();
        let sessions = vec![Session {
            name: "train-1".into(),
            status: "RUNNING".into(),
            services: vec![Service::new("echo", "tcp", &echo), slow],
            ssh_key: None,
        }];
        let config = emulator_config(Mode::ApiV8, &sessions, "");
        let port = free_port();
        let listen = format!("{}:{port}", cluster.host_ip);
        let emu = Emulator::start_on(Mode::ApiV8, &config, &listen).await;
        let proxy = Tinyproxy::start(&cluster, &options).await;
        Some(Site {
            cluster,
            emu,
            config,
            port,
            proxy,
            options,
        })
    }

    /// The endpoint by the cluster's name (reachable through the proxy only).
    fn endpoint(&self) -> String {
        format!("http://{MANAGER_HOST}:{}", self.port)
    }

    /// `porthole ARGS` with `endpoint` and these variables, and no proxy setting but them.
    fn porthole(
        &self,
        args: &[&str],
        endpoint: &str,
        vars: &[(&str, &str)],
    ) -> tokio::process::Command {
        let mut cmd = self.emu.porthole(args);
        for var in PROXY_VARS {
            cmd.env_remove(var);
        }
        cmd.env("BACKEND_ENDPOINT", endpoint);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd
    }

    async fn run(
        &self,
        args: &[&str],
        endpoint: &str,
        vars: &[(&str, &str)],
    ) -> std::process::Output {
        run_with_timeout(self.porthole(args, endpoint, vars), 60).await
    }

    async fn open(&self, app: &str, vars: &[(&str, &str)]) -> OpenTunnel {
        let mut cmd = self.porthole(
            &["open", "train-1", app, "--json", "--no-launch"],
            &self.endpoint(),
            vars,
        );
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        OpenTunnel::spawn(cmd).await
    }
}

/// The one `porthole:` line of a failed command.
fn error_line(out: &std::process::Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("porthole:"))
        .collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    lines[0].to_owned()
}

async fn echo_once(port: u16, message: &[u8]) -> TcpStream {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    socket.write_all(message).await.unwrap();
    let mut back = vec![0u8; message.len()];
    within(socket.read_exact(&mut back)).await.unwrap();
    assert_eq!(back, message);
    socket
}

/// Resolves once `socket` is closed by the other end (EOF or reset).
async fn closed(socket: &mut TcpStream) {
    let mut buf = [0u8; 64];
    loop {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_and_every_tunnel_go_through_the_proxy() {
    let Some(site) = Site::start(ProxyOptions::default()).await else {
        return;
    };
    let endpoint = site.endpoint();
    // Without the proxy the cluster's name means nothing here.
    let direct = site.run(&["sessions"], &endpoint, &[]).await;
    assert!(error_line(&direct).contains("cannot reach"), "{direct:?}");
    assert!(site.proxy.requests().is_empty());

    let via = [("HTTP_PROXY", site.proxy.url.as_str())];
    let listed = site.run(&["sessions", "--json"], &endpoint, &via).await;
    assert!(listed.status.success(), "{listed:?}");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("train-1"));

    let tunnel = site.open("echo", &via).await;
    echo_once(tunnel.port(), b"through the proxy").await;
    tunnel.stop().await;

    let seen = site.proxy.requests();
    let authority = format!("{MANAGER_HOST}:{}", site.port);
    assert!(
        seen.iter()
            .any(|r| r.starts_with(&format!("GET http://{authority}/"))),
        "the API went through the proxy: {seen:?}"
    );
    let connects = seen
        .iter()
        .filter(|r| r.starts_with(&format!("CONNECT {authority} ")))
        .count();
    assert!(
        connects >= 2,
        "the warm-up and the connection were CONNECTs: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wss_through_the_proxy_trusting_a_company_ca_from_the_trust_store() {
    let Some(site) = Site::start(ProxyOptions::default()).await else {
        return;
    };
    let pki = TestPki::generate_for(&[&format!("DNS:{MANAGER_HOST}")]).await;
    let listen = std::net::SocketAddr::from((site.cluster.host_ip, 0));
    let front = TlsFront::start_on(
        &pki,
        listen,
        format!("{}:{}", site.cluster.host_ip, site.port),
    )
    .await;
    let endpoint = format!("https://{MANAGER_HOST}:{}", front.port);
    let via = ("HTTPS_PROXY", site.proxy.url.as_str());

    // The company CA is not in the machine's store: refused, and said so.
    let untrusted = site.run(&["sessions"], &endpoint, &[via]).await;
    let line = error_line(&untrusted);
    assert!(
        line.contains("TLS with https://manager.cluster.test"),
        "{line}"
    );

    // A trust store holding it (as an installed company CA would): everything works.
    let empty_dir = tempfile::tempdir().unwrap();
    let store = pki.ca.display().to_string();
    let trusted = [
        via,
        ("SSL_CERT_FILE", store.as_str()),
        ("SSL_CERT_DIR", empty_dir.path().to_str().unwrap()),
    ];
    let listed = site.run(&["sessions", "--json"], &endpoint, &trusted).await;
    assert!(listed.status.success(), "{listed:?}");
    let mut cmd = site.porthole(
        &["open", "train-1", "echo", "--json", "--no-launch"],
        &endpoint,
        &trusted,
    );
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let tunnel = OpenTunnel::spawn(cmd).await;
    echo_once(tunnel.port(), b"wss, inside a CONNECT").await;
    tunnel.stop().await;
    let authority = format!("{MANAGER_HOST}:{}", front.port);
    let seen = site.proxy.requests();
    assert!(
        seen.iter()
            .all(|r| r.starts_with(&format!("CONNECT {authority} "))),
        "TLS goes inside CONNECTs only: {seen:?}"
    );
    assert!(seen.len() >= 3, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_proxy_goes_direct() {
    let Some(site) = Site::start(ProxyOptions::default()).await else {
        return;
    };
    let by_address = format!("http://{}:{}", site.cluster.host_ip, site.port);
    let host = site.cluster.host_ip.to_string();
    let via = ("HTTP_PROXY", site.proxy.url.as_str());
    let listed = site
        .run(
            &["sessions"],
            &by_address,
            &[via, ("NO_PROXY", host.as_str())],
        )
        .await;
    assert!(listed.status.success(), "{listed:?}");
    let tunnel = {
        let mut cmd = site.porthole(
            &["open", "train-1", "echo", "--json", "--no-launch"],
            &by_address,
            &[via, ("no_proxy", "10.88.0.0/16")],
        );
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        OpenTunnel::spawn(cmd).await
    };
    echo_once(tunnel.port(), b"direct").await;
    tunnel.stop().await;
    assert!(
        site.proxy.requests().is_empty(),
        "{:?}",
        site.proxy.requests()
    );

    // The same without NO_PROXY goes through the proxy; and a name NO_PROXY matches is not
    // sent to the proxy even when only the proxy could reach it.
    let proxied = site.run(&["sessions"], &by_address, &[via]).await;
    assert!(proxied.status.success(), "{proxied:?}");
    assert!(!site.proxy.requests().is_empty());
    let bypassed = site
        .run(
            &["sessions"],
            &site.endpoint(),
            &[via, ("NO_PROXY", ".cluster.test")],
        )
        .await;
    assert!(
        error_line(&bypassed).contains("cannot reach"),
        "{bypassed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_that_wants_a_password_is_named_in_one_line() {
    let options = ProxyOptions {
        basic_auth: Some(("corp".into(), "s3cret".into())),
        ..ProxyOptions::default()
    };
    let Some(site) = Site::start(options).await else {
        return;
    };
    let endpoint = site.endpoint();
    let inside = site.cluster.inside_ip;
    let port = site.proxy.port;
    let proxy_name = format!("http://{inside}:{port}");

    let none = site
        .run(&["sessions"], &endpoint, &[("HTTP_PROXY", &proxy_name)])
        .await;
    let line = error_line(&none);
    assert!(
        line.starts_with(&format!(
            "porthole: the proxy {proxy_name} wants a user name and password (407"
        )),
        "{line}"
    );
    let wrong = format!("http://corp:nope@{inside}:{port}");
    let refused = site
        .run(&["sessions"], &endpoint, &[("HTTP_PROXY", &wrong)])
        .await;
    let line = error_line(&refused);
    // tinyproxy says 401 where RFC 9110 says 407; either is named the same way.
    assert!(
        line.contains(&format!(
            "the proxy http://corp@{inside}:{port} refused its user name or password (40"
        )),
        "{line}"
    );
    assert!(!line.contains("nope"), "no password in messages: {line}");

    let right = format!("http://corp:s3cret@{inside}:{port}");
    let listed = site
        .run(&["sessions"], &endpoint, &[("HTTP_PROXY", &right)])
        .await;
    assert!(listed.status.success(), "{listed:?}");
    // --proxy wins over the environment.
    let flag = site
        .run(
            &["--proxy", &right, "sessions"],
            &endpoint,
            &[("HTTP_PROXY", &wrong)],
        )
        .await;
    assert!(flag.status.success(), "{flag:?}");
    let tunnel = site.open("echo", &[("HTTP_PROXY", &right)]).await;
    echo_once(tunnel.port(), b"authenticated CONNECT").await;
    tunnel.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_that_refuses_the_destination_is_named_in_one_line() {
    let options = ProxyOptions {
        connect_ports: vec![443],
        ..ProxyOptions::default()
    };
    let Some(site) = Site::start(options).await else {
        return;
    };
    let via = [("HTTP_PROXY", site.proxy.url.as_str())];
    let out = site
        .run(
            &["open", "train-1", "echo", "--no-launch"],
            &site.endpoint(),
            &via,
        )
        .await;
    let line = error_line(&out);
    let authority = format!("{MANAGER_HOST}:{}", site.port);
    assert!(
        line.starts_with(&format!(
            "porthole: the proxy {} refused the connection to {authority} (403",
            site.proxy.url
        )),
        "{line}"
    );
    // A proxy nobody listens on.
    let gone = format!("http://{}:{}", site.cluster.inside_ip, free_port());
    let out = site
        .run(&["sessions"], &site.endpoint(), &[("HTTP_PROXY", &gone)])
        .await;
    let line = error_line(&out);
    assert!(
        line.starts_with(&format!("porthole: the proxy {gone} cannot be reached")),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_that_drops_a_quiet_connect_is_named_in_one_line() {
    let options = ProxyOptions {
        idle_timeout: Some(2),
        ..ProxyOptions::default()
    };
    let Some(site) = Site::start(options).await else {
        return;
    };
    // `slow` takes 4 s to start: the CONNECT stays quiet longer than the proxy allows.
    let out = site
        .run(
            &["open", "train-1", "slow", "--no-launch"],
            &site.endpoint(),
            &[("HTTP_PROXY", site.proxy.url.as_str())],
        )
        .await;
    let line = error_line(&out);
    assert!(
        line.starts_with(&format!(
            "porthole: the proxy {} closed the connection to {MANAGER_HOST}:{} before the server answered",
            site.proxy.url, site.port
        )),
        "{line}"
    );
}

/// A laptop suspend is the whole client stopping. `porthole open` is frozen for longer
/// than every timeout (the relay's pings, two intervals of 30 s; the proxy drops quiet
/// connections after 5 s), then resumed: within 5 s the connection that could not
/// survive is closed, and a new one works, with no user action.
#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_porthole_open_wakes_up_to_its_true_state() {
    let options = ProxyOptions {
        idle_timeout: Some(5),
        ..ProxyOptions::default()
    };
    let Some(site) = Site::start(options).await else {
        return;
    };
    let tunnel = site
        .open("echo", &[("HTTP_PROXY", site.proxy.url.as_str())])
        .await;
    let mut held = echo_once(tunnel.port(), b"before the sleep").await;
    let pid = tunnel.pid();
    signal(pid, "STOP");
    // Frozen on purpose: this is the sleep.
    tokio::time::sleep(Duration::from_secs(65)).await;
    signal(pid, "CONT");
    let woke = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), closed(&mut held))
        .await
        .expect("the connection that did not survive is closed within 5 s of waking");
    echo_once(tunnel.port(), b"after the sleep").await;
    assert!(
        woke.elapsed() < Duration::from_secs(5),
        "{:?}",
        woke.elapsed()
    );
    tunnel.stop().await;
}

/// A link that survived the sleep (nothing on the path dropped it) is not taken for dead
/// for its long silence: after waking it answers a ping, and keeps its connection.
#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_porthole_open_keeps_a_link_that_survived() {
    let echo = greeting_echo_server(b"").await.to_string();
    let sessions = vec![Session {
        name: "train-1".into(),
        status: "RUNNING".into(),
        services: vec![Service::new("echo", "tcp", &echo)],
        ssh_key: None,
    }];
    let emu = Emulator::start(Mode::ApiV8, &emulator_config(Mode::ApiV8, &sessions, "")).await;
    let tunnel = emu.open("train-1", "echo", &[]).await;
    let mut held = echo_once(tunnel.port(), b"before the sleep").await;
    let pid = tunnel.pid();
    signal(pid, "STOP");
    // Frozen on purpose: this is the sleep, longer than two ping intervals.
    tokio::time::sleep(Duration::from_secs(65)).await;
    signal(pid, "CONT");
    // Past the wake check (a ping answered within its grace): still the same connection.
    tokio::time::sleep(relay_wake_grace() + Duration::from_secs(1)).await;
    held.write_all(b"after the sleep").await.unwrap();
    let mut back = [0u8; 15];
    within(held.read_exact(&mut back))
        .await
        .expect("the connection survived the sleep");
    assert_eq!(&back, b"after the sleep");
    tunnel.stop().await;
}

fn relay_wake_grace() -> Duration {
    porthole_core::tunnel::WAKE_PONG_WAIT
}

/// The same freeze, but the link dies without a word while Porthole sleeps (the path
/// blackholed, as a NAT that forgot the connection): right after waking the link must
/// answer a ping, and does not, so its connection is closed within 5 s rather than after
/// two ping intervals; once the path is back, a new connection works.
#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_porthole_open_closes_a_link_that_died_silently() {
    let echo = greeting_echo_server(b"").await.to_string();
    let sessions = vec![Session {
        name: "train-1".into(),
        status: "RUNNING".into(),
        services: vec![Service::new("echo", "tcp", &echo)],
        ssh_key: None,
    }];
    let emu = Emulator::start(Mode::ApiV8, &emulator_config(Mode::ApiV8, &sessions, "")).await;
    let path = porthole_e2e::faultproxy::FaultProxy::start(
        emu.url.trim_start_matches("http://").parse().unwrap(),
    )
    .await;
    let mut cmd = emu.porthole(&["open", "train-1", "echo", "--json", "--no-launch"]);
    cmd.env("BACKEND_ENDPOINT", path.url());
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut tunnel = OpenTunnel::spawn(cmd).await;
    let mut held = echo_once(tunnel.port(), b"before the sleep").await;
    let pid = tunnel.pid();
    signal(pid, "STOP");
    path.blackhole();
    // Frozen on purpose: this is the sleep.
    tokio::time::sleep(Duration::from_secs(65)).await;
    signal(pid, "CONT");
    let woke = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), closed(&mut held))
        .await
        .expect("the silently dead connection is closed within 5 s of waking");
    assert!(
        woke.elapsed() < Duration::from_secs(5),
        "{:?}",
        woke.elapsed()
    );
    let said = tunnel
        .stderr_line(5, |l| l.contains("connection failed"))
        .await;
    assert!(
        said.contains("did not survive this computer's sleep"),
        "{said}"
    );
    path.pass();
    echo_once(tunnel.port(), b"after the sleep").await;
    tunnel.stop().await;
}

/// The path changes under a live tunnel: the proxy restarts, then the server moves to
/// another address behind the same name. Connections that could not survive end; new
/// ones work, with the same `porthole open`.
#[tokio::test(flavor = "multi_thread")]
async fn a_live_tunnel_follows_a_proxy_restart_and_a_server_that_moved() {
    let Some(mut site) = Site::start(ProxyOptions::default()).await else {
        return;
    };
    let tunnel = site
        .open("echo", &[("HTTP_PROXY", site.proxy.url.as_str())])
        .await;
    let mut held = echo_once(tunnel.port(), b"first path").await;

    site.proxy = site.proxy.restart(&site.cluster, &site.options).await;
    within(closed(&mut held)).await;
    let mut held = echo_once(tunnel.port(), b"after the proxy restarted").await;

    // The manager moves: a new process on another address, the same port and name.
    let _ = site.emu.child().kill().await;
    within(closed(&mut held)).await;
    let listen = format!("{}:{}", site.cluster.other_host_ip, site.port);
    site.emu = Emulator::start_on(Mode::ApiV8, &site.config, &listen).await;
    site.cluster.set_manager_address(site.cluster.other_host_ip);
    echo_once(tunnel.port(), b"after the server moved").await;
    let listed = site
        .run(
            &["sessions"],
            &site.endpoint(),
            &[("HTTP_PROXY", site.proxy.url.as_str())],
        )
        .await;
    assert!(listed.status.success(), "{listed:?}");
    tunnel.stop().await;
}

fn signal(pid: u32, name: &str) {
    let out = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .output()
        .expect("kill");
    assert!(out.status.success(), "kill -{name} {pid}: {out:?}");
}
