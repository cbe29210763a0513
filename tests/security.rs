//! Your tunnels are yours: another local user (a real OS account, made by the test and
//! removed after) is refused on web and TCP tunnels while the owner's connections work,
//! and a tunnel bound beyond loopback says the check cannot apply there; SSH host keys
//! are pinned per session, so a changed key is refused with Porthole's explanation until
//! the user forgets it.

use std::process::Stdio;

use porthole_e2e::*;

const PAGE: &str = "<!doctype html><title>owner only</title><p>only for the owner</p>\n";

/// A client run as another user: connects, sends `request`, and prints what came back
/// first (`CLOSED` when the tunnel hung up without a byte).
const CLIENT: &str = r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
try:
    s.sendall(sys.argv[2].encode())
    data = s.recv(65536)
    print("GOT " + data.decode(errors="replace").splitlines()[0] if data else "CLOSED")
except (ConnectionResetError, BrokenPipeError):
    print("CLOSED")
"#;

async fn as_user(user: &OsUser, port: u16, request: &str) -> String {
    let mut cmd = user.command("python3");
    cmd.args(["-c", CLIENT, &port.to_string(), request]);
    let out = run_with_timeout(cmd, 30).await;
    assert!(out.status.success(), "the other user's client: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The same exchange as this process's user, the tunnel's owner.
async fn as_owner(port: u16, request: &str) -> String {
    let mut cmd = tokio::process::Command::new("python3");
    cmd.args(["-c", CLIENT, &port.to_string(), request]);
    let out = run_with_timeout(cmd, 30).await;
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// What the app behind the `sink` tunnel read, per connection.
type Sink = tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>;

async fn emulator_with_web_and_echo() -> (HttpServer, Sink, Emulator) {
    let http = HttpServer::start(PAGE).await;
    let echo = greeting_echo_server(b"").await.to_string();
    let (sink, sunk) = porthole_testkit::sink_server().await;
    let sessions = vec![Session {
        name: "train-1".into(),
        status: "RUNNING".into(),
        services: vec![
            Service::new("web", "http", &http.target()),
            Service::new("echo", "tcp", &echo),
            Service::new("sink", "tcp", &sink.to_string()),
        ],
        ssh_key: None,
    }];
    let mode = Mode::ApiV8;
    let emu = Emulator::start(mode, &emulator_config(mode, &sessions, "")).await;
    (http, sunk, emu)
}

async fn open_with_stderr(emu: &Emulator, app: &str, extra: &[&str]) -> OpenTunnel {
    let mut args = vec!["open", "train-1", app, "--json", "--no-launch"];
    args.extend_from_slice(extra);
    let mut cmd = emu.porthole(&args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    OpenTunnel::spawn(cmd).await
}

#[tokio::test(flavor = "multi_thread")]
async fn another_users_connections_are_refused_and_the_owners_work() {
    let Some(bob) = OsUser::create(&format!("ph-peer-{}", std::process::id())) else {
        return;
    };
    let (_http, mut sunk, emu) = emulator_with_web_and_echo().await;
    let mut web = open_with_stderr(&emu, "web", &[]).await;
    let mut echo = open_with_stderr(&emu, "echo", &[]).await;
    let get = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", web.port());

    // The other user: closed before anything is sent, on both kinds of tunnel.
    assert_eq!(as_user(&bob, web.port(), &get).await, "CLOSED");
    assert_eq!(as_user(&bob, echo.port(), "hello").await, "CLOSED");
    assert_eq!(as_user(&bob, echo.port(), "again").await, "CLOSED");
    // The owner, meanwhile and after: served.
    assert_eq!(
        as_owner(web.port(), &get).await,
        "GOT HTTP/1.0 200 OK",
        "the owner's web request"
    );
    assert_eq!(as_owner(echo.port(), "hello").await, "GOT hello");

    // Each tunnel says so once per user, naming them.
    let said = web.stderr_line(10, |l| l.contains("refused")).await;
    assert_eq!(
        said,
        format!(
            "porthole: refused a connection from {}: only you can use this tunnel",
            bob.name
        )
    );
    echo.stderr_line(10, |l| l.contains(&bob.name)).await;

    // Nothing of a refused connection reaches the session: the first bytes the app behind
    // `sink` sees are the owner's, sent after the other user's (the tunnel's start-up
    // connection brings none).
    let mut sink = open_with_stderr(&emu, "sink", &[]).await;
    assert_eq!(as_user(&bob, sink.port(), "from bob").await, "CLOSED");
    let mut mine = tokio::net::TcpStream::connect(("127.0.0.1", sink.port()))
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut mine, b"mine")
        .await
        .unwrap();
    drop(mine);
    let first = porthole_testkit::within(async {
        loop {
            match sunk.recv().await {
                Some(read) if read.is_empty() => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the sink app is there");
    assert_eq!(String::from_utf8_lossy(&first), "mine");
    sink.stderr_line(10, |l| l.contains(&bob.name)).await;
    for tunnel in [web, echo, sink] {
        tunnel.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tunnel_bound_beyond_loopback_says_the_check_cannot_apply() {
    let Some(bob) = OsUser::create(&format!("ph-bind-{}", std::process::id())) else {
        return;
    };
    let (_http, _sunk, emu) = emulator_with_web_and_echo().await;
    let mut echo = open_with_stderr(&emu, "echo", &["--bind", "0.0.0.0"]).await;
    let warning = echo.stderr_line(10, |l| l.contains("warning")).await;
    assert!(
        warning.contains("listens beyond loopback")
            && warning.contains("every local user can use it"),
        "{warning}"
    );
    // And it is true: the user chose to share it, so the other user gets through.
    assert_eq!(as_user(&bob, echo.port(), "shared").await, "GOT shared");
    echo.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_host_key_is_refused_until_the_user_forgets_it() {
    let mut sshd = Sshd::start().await;
    let sessions = vec![Session {
        name: "train-1".into(),
        status: "RUNNING".into(),
        services: vec![Service::new("sshd", "tcp", &sshd.target())],
        ssh_key: Some(sshd.client_key.clone()),
    }];
    let mode = Mode::ApiV8;
    let emu = Emulator::start(mode, &emulator_config(mode, &sessions, "")).await;
    let home = tempfile::tempdir().unwrap();
    let user = sshd.user.clone();
    let ssh = |extra: &[&str]| {
        let mut args = vec!["ssh", "--user", &user, "train-1"];
        args.extend_from_slice(extra);
        let mut cmd = emu.porthole(&args);
        cmd.env("HOME", home.path());
        cmd
    };
    // BatchMode: a prompt would fail the command instead of waiting.
    let remote = ["--", "-o", "BatchMode=yes", "echo", "pinned"];

    // First connection to the session: no prompt, the key is pinned.
    let first = run_with_timeout(ssh(&remote), 60).await;
    assert!(first.status.success(), "first connection: {first:?}");
    assert_eq!(String::from_utf8_lossy(&first.stdout).trim(), "pinned");
    let known_hosts = home.path().join(".ssh/porthole/known_hosts");
    let pins = std::fs::read_to_string(&known_hosts).expect("the key was pinned");
    assert!(pins.starts_with("porthole-session-"), "{pins}");

    // The session's sshd makes a new key: refused, with what it means and what to do.
    sshd.regenerate_host_key().await;
    let second = run_with_timeout(ssh(&remote), 60).await;
    assert_eq!(second.status.code(), Some(255), "{second:?}");
    let stderr = String::from_utf8_lossy(&second.stderr);
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("porthole:"))
        .collect();
    assert_eq!(said.len(), 1, "one line from Porthole: {stderr}");
    assert!(
        said[0].contains("the SSH host key of session train-1 is not the one pinned")
            && said[0].contains("porthole ssh train-1 --forget-host-key"),
        "{}",
        said[0]
    );
    assert!(second.stdout.is_empty(), "nothing ran: {second:?}");

    // The documented way out: forget it, and the new key is pinned.
    let mut args = vec!["--forget-host-key"];
    args.extend_from_slice(&remote);
    let third = run_with_timeout(ssh(&args), 60).await;
    assert!(third.status.success(), "after forgetting: {third:?}");
    assert_eq!(String::from_utf8_lossy(&third.stdout).trim(), "pinned");
    let again = run_with_timeout(ssh(&remote), 60).await;
    assert!(again.status.success(), "the new key is pinned: {again:?}");
}
