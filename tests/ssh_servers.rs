//! `porthole ssh`, `open` and `proxy` against both SSH servers a session's `sshd` app may
//! be: OpenSSH's sshd, and dropbear as Backend.AI containers run it (user `work`, options
//! of the kernel runner). Each server sits behind the emulator as the session's `sshd`
//! (tcp) app, with the session's `id_container` served for download; each test runs with
//! API keypair signing (v8) and with web login.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use porthole_e2e::dropbear::{login_account, Account, ClientKey, Dropbear};
use porthole_e2e::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::task::JoinHandle;

const PAGE: &str = "<!doctype html><title>porthole e2e</title><p>hello through ssh -L</p>\n";

/// Which SSH server plays the session's `sshd` app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    OpenSsh,
    Dropbear,
}

/// A running SSH server of either kind.
enum Server {
    OpenSsh(Sshd),
    Dropbear(Dropbear),
}

impl Server {
    async fn start(kind: Kind) -> Server {
        match kind {
            Kind::OpenSsh => Server::OpenSsh(Sshd::start().await),
            Kind::Dropbear => Server::Dropbear(Dropbear::start().await),
        }
    }

    fn target(&self) -> String {
        match self {
            Server::OpenSsh(s) => s.target(),
            Server::Dropbear(s) => s.target(),
        }
    }

    fn client_key(&self) -> &Path {
        match self {
            Server::OpenSsh(s) => &s.client_key,
            Server::Dropbear(s) => &s.client_key,
        }
    }

    fn user(&self) -> &str {
        match self {
            Server::OpenSsh(s) => &s.user,
            Server::Dropbear(s) => &s.user,
        }
    }

    fn scratch(&self) -> &Path {
        match self {
            Server::OpenSsh(s) => &s.scratch,
            Server::Dropbear(s) => &s.scratch,
        }
    }

    /// The login user's home as the server's sessions see it.
    fn home(&self) -> PathBuf {
        match self {
            Server::OpenSsh(s) => {
                Account::by_name(&s.user)
                    .expect("passwd entry of the login user")
                    .home
            }
            Server::Dropbear(s) => s.home.clone(),
        }
    }

    /// For dropbear, checks that it logged a public-key login of its user: the
    /// connection reached this server, with the session key.
    async fn assert_key_login_logged(&self) {
        if let Server::Dropbear(s) = self {
            let want = format!("Pubkey auth succeeded for '{}'", s.user);
            s.wait_for_log(&want, 10).await;
        }
    }
}

/// A server, an HTTP server, and the emulator with one session `train-1` whose `sshd`
/// app is the server.
struct Fixture {
    server: Server,
    http: HttpServer,
    emu: Emulator,
}

async fn fixture(kind: Kind, mode: Mode) -> Fixture {
    fixture_with(Server::start(kind).await, mode).await
}

async fn fixture_with(server: Server, mode: Mode) -> Fixture {
    let http = HttpServer::start(PAGE).await;
    let sessions = [Session {
        name: "train-1".into(),
        status: "RUNNING".into(),
        services: vec![Service::new("sshd", "tcp", &server.target())],
        ssh_key: Some(server.client_key().to_owned()),
    }];
    let emu = Emulator::start(mode, &emulator_config(mode, &sessions, "")).await;
    Fixture { server, http, emu }
}

/// OpenSSH client options that log in with `key` on `port` (`port_flag`: `-p` for ssh,
/// `-P` for scp and sftp), recording no host key.
fn client_options(key: &Path, port_flag: &str, port: u16) -> Vec<String> {
    let mut opts: Vec<String> = vec!["-i".into(), key.display().to_string()];
    for o in [
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
        "IdentitiesOnly=yes",
        "BatchMode=yes",
        "LogLevel=ERROR",
    ] {
        opts.extend(["-o".into(), o.into()]);
    }
    opts.extend([port_flag.into(), port.to_string()]);
    opts
}

/// Whether ssh's debug line `line`, after the lines in `seen`, says that the local
/// forward on `lport` accepts connections. ssh says "Local forwarding listening on
/// 127.0.0.1 port N." before it binds, and "Entering interactive session." once every
/// forward listens.
fn forward_ready(seen: &mut String, line: &str, lport: u16) -> bool {
    let ready = line.contains("Entering interactive session")
        && seen.contains(&format!(
            "Local forwarding listening on 127.0.0.1 port {lport}."
        ));
    seen.push_str(line);
    seen.push('\n');
    ready
}

/// Reads the rest of `stderr` in the background (so the writer never blocks on a full
/// pipe) and hands it back at the end, after `seen`.
fn drain(mut stderr: BufReader<ChildStderr>, seen: String) -> JoinHandle<String> {
    tokio::spawn(async move {
        let mut rest = Vec::new();
        let _ = stderr.read_to_end(&mut rest).await;
        seen + &String::from_utf8_lossy(&rest)
    })
}

/// GETs `url` directly (no proxy): the body of a 2xx answer, or what went wrong, with
/// the causes.
async fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let failed = |e: reqwest::Error| {
        let mut text = format!("GET {url}: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client");
    let response = client.get(url).send().await.map_err(failed)?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: {}", response.status()));
    }
    Ok(response.bytes().await.map_err(failed)?.to_vec())
}

/// Waits up to `secs` for `child` to exit.
async fn exits_within(child: &mut Child, secs: u64, what: &str) -> std::process::ExitStatus {
    tokio::time::timeout(Duration::from_secs(secs), child.wait())
        .await
        .unwrap_or_else(|_| panic!("{what} did not exit within {secs} s"))
        .expect("wait")
}

/// Whether `status` is how ssh ends when it handles SIGTERM itself: OpenSSH 9.2 closes
/// a `-N` session with exit 0 ("Transferred: ..."); others say "Killed by signal 15."
/// and exit 255.
fn ssh_stopped_itself(status: std::process::ExitStatus) -> bool {
    matches!(status.code(), Some(0 | 255))
}

/// Whether something accepts connections on the loopback `port`.
fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Writes a 4 MiB random file next to the HTTP server's page and returns its name.
fn big_file(http: &HttpServer) -> &'static str {
    random_file(&http.root.path().join("big.bin"), 4 << 20);
    "big.bin"
}

/// Fetches the page and the big file through `port` and compares them with the
/// originals; on failure, says what went wrong.
async fn fetch_both_through(port: u16, http: &HttpServer, big: &str) -> Result<(), String> {
    let page = fetch(&format!("http://127.0.0.1:{port}/")).await?;
    if page != PAGE.as_bytes() {
        return Err(format!(
            "the page through the forward differs: {:?}",
            String::from_utf8_lossy(&page)
        ));
    }
    let body = fetch(&format!("http://127.0.0.1:{port}/{big}")).await?;
    let original = std::fs::read(http.root.path().join(big)).expect("read big file");
    if body != original {
        return Err(format!(
            "{big} through the forward differs ({} bytes, want {})",
            body.len(),
            original.len()
        ));
    }
    Ok(())
}

/// Fails the test with `error` and what ssh logged, once `child` (and its process group
/// when it leads one, as `porthole ssh` here does with its ssh) is killed.
async fn fail_with_log(error: String, child: &mut Child, log: JoinHandle<String>) -> ! {
    if let Some(pid) = child.id() {
        let pid = pid as libc::pid_t;
        // SAFETY: getpgid(2) and kill(2) on this test's own child, with a valid signal.
        unsafe {
            if libc::getpgid(pid) == pid {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
    let _ = child.start_kill();
    let log = tokio::time::timeout(Duration::from_secs(10), log)
        .await
        .map(|l| l.unwrap_or_default())
        .unwrap_or_else(|_| "(ssh's stderr still open after 10 s)".into());
    panic!("{error}\nssh's log:\n{log}");
}

/// `porthole ssh SESSION -- COMMAND` prints the command's stdout and stderr, exits with
/// its exit code, runs as the login user in their home, and removes the downloaded key.
async fn ssh_command_output_and_exit_code(kind: Kind, mode: Mode) {
    let f = fixture(kind, mode).await;
    let user = f.server.user().to_owned();
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = f.emu.porthole(&[
        "ssh",
        "--user",
        &user,
        "train-1",
        "--",
        r#"echo "user=$USER pwd=$(pwd)"; echo to-stderr >&2; exit 5"#,
    ]);
    cmd.env("TMPDIR", tmp.path());
    let out = run_with_timeout(cmd, 40).await;
    assert_eq!(out.status.code(), Some(5), "the remote exit code: {out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("user={user} pwd={}\n", f.server.home().display()),
        "{out:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("to-stderr"),
        "the remote stderr comes through: {out:?}"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the downloaded key is removed"
    );

    let mut cmd = f
        .emu
        .porthole(&["ssh", "--user", &user, "train-1", "--", "echo", "ok"]);
    cmd.env("TMPDIR", tmp.path());
    let out = run_with_timeout(cmd, 40).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{out:?}");
    f.server.assert_key_login_logged().await;
}

/// The shell script the "interactive" tests type: its output names the user and /tmp,
/// and it exits 3.
const SCRIPT: &str = "echo \"u=$USER\"\ncd /tmp\necho \"pwd=$(pwd)\"\nexit 3\n";

/// `porthole ssh SESSION -- -T` with a script on stdin: the login shell runs it (no tty),
/// its output and exit code come back.
async fn ssh_runs_a_script_from_stdin(kind: Kind, mode: Mode) {
    let f = fixture(kind, mode).await;
    let user = f.server.user().to_owned();
    let mut cmd = f
        .emu
        .porthole(&["ssh", "--user", &user, "train-1", "--", "-T"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn porthole ssh");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(SCRIPT.as_bytes()).await.expect("write");
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(40), child.wait_with_output())
        .await
        .expect("porthole ssh -T finishes within 40 s")
        .expect("wait");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("u={user}\npwd=/tmp\n"),
        "{out:?}"
    );
}

/// `porthole ssh SESSION -- -tt` with a script typed on stdin (kept open, as a terminal
/// would): the server gives the shell a pty, the script runs, the exit code comes back.
async fn ssh_with_a_forced_tty_runs_a_typed_script(kind: Kind, mode: Mode) {
    let f = fixture(kind, mode).await;
    let user = f.server.user().to_owned();
    let mut cmd = f
        .emu
        .porthole(&["ssh", "--user", &user, "train-1", "--", "-tt"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // With OpenSSH's sshd the session runs in the user's real home: an interactive shell
    // must not leave its history there.
    let home_before = home_listing(&f.server.home());
    let mut child = cmd.spawn().expect("spawn porthole ssh");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("unset HISTFILE\n{SCRIPT}").as_bytes())
        .await
        .expect("write");
    stdin.flush().await.expect("flush");
    // stdin stays open until the shell has exited by itself.
    let out = tokio::time::timeout(Duration::from_secs(40), child.wait_with_output())
        .await
        .expect("porthole ssh -tt finishes within 40 s")
        .expect("wait");
    drop(stdin);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{out:?}\nstdout:\n{text}");
    // The pty echoes the typed lines ("u=$USER"); only the shell's output has the values.
    assert!(
        text.contains(&format!("u={user}")) && text.contains("pwd=/tmp"),
        "the typed script's output:\n{text}"
    );
    assert!(
        text.contains("\r\n"),
        "the output went through a pty (CRLF line ends):\n{text}"
    );
    assert_eq!(
        home_listing(&f.server.home()),
        home_before,
        "the session changed nothing in {}",
        f.server.home().display()
    );
}

/// Name, size and mtime of each entry of `dir` (empty if it is missing), sorted.
fn home_listing(dir: &Path) -> Vec<(String, u64, Option<std::time::SystemTime>)> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let meta = e.metadata().ok();
            (
                e.file_name().to_string_lossy().into_owned(),
                meta.as_ref().map_or(0, |m| m.len()),
                meta.and_then(|m| m.modified().ok()),
            )
        })
        .collect();
    entries.sort();
    entries
}

/// sftp puts and gets a random 32 MiB file through `porthole open SESSION sshd`, with the
/// key `open` downloaded (its ready line's `key_file`); SHA-256 equal both ways.
async fn sftp_moves_32_mib_both_ways(kind: Kind, mode: Mode) {
    let f = fixture(kind, mode).await;
    let tunnel = f.emu.open_launching("train-1", "sshd", &[]).await;
    let key_file = PathBuf::from(tunnel.ready["key_file"].as_str().expect("key_file"));

    let local = tempfile::tempdir().unwrap();
    let up = local.path().join("up.bin");
    let down = local.path().join("down.bin");
    random_file(&up, 32 << 20);
    let remote = f.server.scratch().join(format!("sftp-{mode:?}.bin"));
    let batch = local.path().join("batch");
    std::fs::write(
        &batch,
        format!(
            "put {} {}\nget {} {}\n",
            up.display(),
            remote.display(),
            remote.display(),
            down.display()
        ),
    )
    .unwrap();
    let mut sftp = Command::new("sftp");
    sftp.arg("-b")
        .arg(&batch)
        .args(client_options(&key_file, "-P", tunnel.port()))
        .arg(format!("{}@127.0.0.1", f.server.user()))
        .stdin(Stdio::null());
    let out = run_with_timeout(sftp, 50).await;
    assert!(out.status.success(), "sftp: {out:?}");
    let sha = sha256_file(&up);
    assert_eq!(sha256_file(&remote), sha, "uploaded file differs");
    assert_eq!(sha256_file(&down), sha, "downloaded file differs");
    tunnel.stop().await;
}

/// `ssh -N -L 127.0.0.1:LPORT:127.0.0.1:HTTP` through `porthole open`: a page and a
/// 4 MiB file fetched through LPORT are the HTTP server's; SIGTERM stops ssh and frees
/// LPORT, and `open` still stops cleanly.
async fn local_forward_through_open(kind: Kind, mode: Mode) {
    let f = fixture(kind, mode).await;
    let big = big_file(&f.http);
    let tunnel = f.emu.open("train-1", "sshd", &[]).await;
    let lport = free_port();
    let mut opts = client_options(f.server.client_key(), "-p", tunnel.port());
    // Debug output for the "listening" event; ExitOnForwardFailure so a failed bind ends
    // ssh at once.
    for o in &mut opts {
        if o == "LogLevel=ERROR" {
            *o = "LogLevel=DEBUG1".into();
        }
    }
    let mut ssh = Command::new("ssh");
    ssh.args(&opts)
        .args(["-N", "-o", "ExitOnForwardFailure=yes", "-L"])
        .arg(format!("127.0.0.1:{lport}:127.0.0.1:{}", f.http.port))
        .arg(format!("{}@127.0.0.1", f.server.user()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = ssh.spawn().expect("spawn ssh -L");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    read_line_until(&mut err, 30, "ssh -N -L", |l| {
        forward_ready(&mut seen, l, lport)
    })
    .await;
    let rest = drain(err, seen);

    if let Err(e) = fetch_both_through(lport, &f.http, big).await {
        fail_with_log(e, &mut child, rest).await;
    }

    terminate(&child);
    let status = exits_within(&mut child, 10, "ssh -N -L after SIGTERM").await;
    let log = rest.await.unwrap();
    assert!(
        ssh_stopped_itself(status),
        "ssh ends by itself on SIGTERM: {status}\n{log}"
    );
    assert!(!port_open(lport), "LPORT {lport} is released");
    tunnel.stop().await;
}

/// The pids of `parent`'s children named `name` (from /proc).
fn children_named(parent: u32, name: &str) -> Vec<libc::pid_t> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let ppid = stat[close + 1..].split_whitespace().nth(1);
        if &stat[open + 1..close] == name && ppid == Some(parent.to_string().as_str()) {
            pids.extend(stat[..open].trim().parse::<libc::pid_t>().ok());
        }
    }
    pids
}

/// Starts `porthole ssh train-1 -- -v -N -L 127.0.0.1:LPORT:127.0.0.1:HTTP` in a process
/// group of its own (as a shell runs a foreground job) with TMPDIR `tmp`, and returns
/// once ssh listens on LPORT, with the rest of its stderr being drained.
async fn porthole_ssh_forward(f: &Fixture, lport: u16, tmp: &Path) -> (Child, JoinHandle<String>) {
    let forward = format!("127.0.0.1:{lport}:127.0.0.1:{}", f.http.port);
    let mut cmd = f.emu.porthole(&[
        "ssh",
        "--user",
        f.server.user(),
        "train-1",
        "--",
        "-v",
        "-N",
        "-o",
        "ExitOnForwardFailure=yes",
        "-L",
        &forward,
    ]);
    cmd.env("TMPDIR", tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    // As in a terminal, where Ctrl-C is live: a test run started in the background by a
    // non-interactive shell inherits SIGINT ignored, and ssh keeps an ignored SIGINT.
    // SAFETY: signal(2) is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn porthole ssh -L");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    read_line_until(&mut err, 30, "porthole ssh -N -L", |l| {
        forward_ready(&mut seen, l, lport)
    })
    .await;
    (child, drain(err, seen))
}

/// `porthole ssh SESSION -- -N -L 127.0.0.1:LPORT:127.0.0.1:HTTP`: the forward works;
/// when ssh is stopped (SIGTERM) porthole exits with ssh's code, frees LPORT and removes
/// the key.
async fn local_forward_through_porthole_ssh(kind: Kind, mode: Mode) {
    let f = fixture(kind, mode).await;
    let big = big_file(&f.http);
    let lport = free_port();
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, rest) = porthole_ssh_forward(&f, lport, tmp.path()).await;

    if let Err(e) = fetch_both_through(lport, &f.http, big).await {
        fail_with_log(e, &mut child, rest).await;
    }

    let porthole = child.id().expect("pid");
    let ssh = children_named(porthole, "ssh");
    assert_eq!(ssh.len(), 1, "porthole ssh runs one ssh: {ssh:?}");
    // SAFETY: kill(2) on the ssh this test's porthole started, with a valid signal.
    unsafe {
        libc::kill(ssh[0], libc::SIGTERM);
    }
    let status = exits_within(&mut child, 10, "porthole ssh after ssh's SIGTERM").await;
    let log = rest.await.unwrap();
    assert!(
        ssh_stopped_itself(status),
        "porthole ssh exits with ssh's code after ssh's SIGTERM: {status}\n{log}"
    );
    assert!(!port_open(lport), "LPORT {lport} is released");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the downloaded key is removed"
    );
}

/// `ssh -o ProxyCommand='porthole proxy train-1 sshd'`: one WebSocket per ssh, no local
/// port.
async fn proxy_command_works(kind: Kind, mode: Mode) {
    let f = fixture(kind, mode).await;
    let mut opts = client_options(f.server.client_key(), "-p", 22);
    opts.truncate(opts.len() - 2);
    let mut ssh = Command::new("ssh");
    ssh.args(opts)
        .arg("-o")
        .arg(format!(
            "ProxyCommand={} proxy train-1 sshd",
            bin("porthole").display()
        ))
        .arg(format!("{}@train-1.porthole", f.server.user()))
        .arg("echo proxied; exit 4")
        .envs(f.emu.env())
        .stdin(Stdio::null());
    let out = run_with_timeout(ssh, 40).await;
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "proxied\n", "{out:?}");
    f.server.assert_key_login_logged().await;
}

/// Runs a test body with a 60 s deadline, so a hang fails instead of blocking the run.
async fn bounded(test: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("the test finishes within 60 s");
}

macro_rules! for_each_server_and_mode {
    ($($name:ident),* $(,)?) => {
        mod openssh_api_v8 { use super::*; $( #[tokio::test(flavor = "multi_thread")] async fn $name() { bounded(super::$name(Kind::OpenSsh, Mode::ApiV8)).await } )* }
        mod openssh_session { use super::*; $( #[tokio::test(flavor = "multi_thread")] async fn $name() { bounded(super::$name(Kind::OpenSsh, Mode::Session)).await } )* }
        mod dropbear_api_v8 { use super::*; $( #[tokio::test(flavor = "multi_thread")] async fn $name() { bounded(super::$name(Kind::Dropbear, Mode::ApiV8)).await } )* }
        mod dropbear_session { use super::*; $( #[tokio::test(flavor = "multi_thread")] async fn $name() { bounded(super::$name(Kind::Dropbear, Mode::Session)).await } )* }
    };
}

for_each_server_and_mode!(
    ssh_command_output_and_exit_code,
    ssh_runs_a_script_from_stdin,
    ssh_with_a_forced_tty_runs_a_typed_script,
    sftp_moves_32_mib_both_ways,
    local_forward_through_open,
    local_forward_through_porthole_ssh,
    proxy_command_works,
);

/// The key Backend.AI's kernel runner makes when the user has none (dropbearkey RSA,
/// converted to OpenSSH format) works with `porthole ssh` and OpenSSH's client.
#[tokio::test(flavor = "multi_thread")]
async fn dropbear_takes_a_kernel_runner_rsa_key() {
    bounded(async {
        let server = Server::Dropbear(Dropbear::start_with(ClientKey::DropbearRsa).await);
        let key = std::fs::read_to_string(server.client_key()).unwrap();
        assert!(
            key.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"),
            "dropbearconvert writes OpenSSH format:\n{key}"
        );
        let f = fixture_with(server, Mode::ApiV8).await;
        let user = f.server.user().to_owned();
        let out = f
            .emu
            .run(
                &["ssh", "--user", &user, "train-1", "--", "echo", "rsa-ok"],
                40,
            )
            .await;
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "rsa-ok\n", "{out:?}");
        let Server::Dropbear(d) = &f.server else {
            unreachable!()
        };
        d.wait_for_log(
            &format!("Pubkey auth succeeded for '{user}' with ssh-rsa"),
            10,
        )
        .await;
    })
    .await;
}

/// The harness itself: dropbear's sessions see a private home (the temp dir with the
/// test's authorized_keys, nothing else) at the user's real home path, while the real
/// home is untouched and no mount shows outside; sftp's server path is executable there.
#[tokio::test(flavor = "multi_thread")]
async fn dropbear_home_is_private_and_sftp_server_present() {
    bounded(async {
        let account = login_account();
        let real_keys = account.home.join(".ssh/authorized_keys");
        let before = real_keys.exists().then(|| sha256_file(&real_keys));

        let d = Dropbear::start().await;
        let mut ssh = Command::new("ssh");
        ssh.args(client_options(&d.client_key, "-p", d.port))
            .arg(format!("{}@127.0.0.1", d.user))
            .arg(format!(
                "cat ~/.ssh/authorized_keys; ls -A ~; test -x {} && echo sftp-server-ok",
                d.sftp_server.display()
            ))
            .stdin(Stdio::null());
        let out = run_with_timeout(ssh, 30).await;
        assert!(out.status.success(), "{out:?}");
        let public = std::fs::read_to_string(d.dir().join("id_container.pub")).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{public}.ssh\nsftp-server-ok\n"),
            "what the session sees in its home"
        );
        let after = real_keys.exists().then(|| sha256_file(&real_keys));
        assert_eq!(before, after, "{} is untouched", real_keys.display());
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let home = account.home.display().to_string();
        assert!(
            !mounts
                .lines()
                .any(|l| l.split(' ').nth(4) == Some(home.as_str())),
            "no mount on {home} outside dropbear's namespace:\n{mounts}"
        );
    })
    .await;
}

/// Ctrl-C in the terminal running `porthole ssh SESSION -- -N -L ...` (SIGINT to the
/// whole foreground process group) should end ssh, then porthole with ssh's code, the
/// key removed (porthole ignores SIGINT while ssh runs and waits for it).
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_on_porthole_ssh_removes_the_key() {
    bounded(async {
        let f = fixture(Kind::Dropbear, Mode::ApiV8).await;
        let lport = free_port();
        let tmp = tempfile::tempdir().unwrap();
        let (mut child, rest) = porthole_ssh_forward(&f, lport, tmp.path()).await;
        let porthole = child.id().expect("pid");
        ssh_catches_sigint(porthole).await;
        let pgid = porthole as libc::pid_t;
        // SAFETY: kill(2) on the process group this test created, with a valid signal.
        unsafe {
            libc::kill(-pgid, libc::SIGINT);
        }
        let status = exits_within(&mut child, 10, "porthole ssh after Ctrl-C").await;
        // The pipe closes once every writer (porthole and ssh) has exited.
        let log = tokio::time::timeout(Duration::from_secs(10), rest)
            .await
            .expect("ssh exits within 10 s of Ctrl-C")
            .unwrap();
        assert!(!port_open(lport), "LPORT {lport} is released");
        let left: Vec<_> = walk(tmp.path());
        assert!(
            left.is_empty(),
            "the downloaded key is removed after Ctrl-C (porthole exited with {status}); \
             left: {left:?}\n{log}"
        );
        assert_eq!(
            status.code(),
            Some(255),
            "porthole ssh exits with ssh's code (255 when ssh is ended by a signal)\n{log}"
        );
    })
    .await;
}

/// Waits until the `ssh` that `parent` started has its own SIGINT handler. OpenSSH sets it
/// only in its session loop, after the forwards are up and after briefly ignoring SIGINT
/// to read the old disposition: a Ctrl-C before then kills ssh outright or is lost (ssh
/// then runs on). No event announces a signal handler, so /proc is read until it shows.
async fn ssh_catches_sigint(parent: u32) {
    let sigint_bit = 1u64 << (libc::SIGINT - 1);
    for _ in 0..400 {
        let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .unwrap_or_default();
        for pid in children.split_whitespace() {
            let caught = proc_status_field(pid, "SigCgt")
                .and_then(|mask| u64::from_str_radix(&mask, 16).ok())
                .unwrap_or(0);
            if proc_status_field(pid, "Name").as_deref() == Some("ssh") && caught & sigint_bit != 0
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("ssh (child of porthole {parent}) never set a SIGINT handler within 10 s");
}

/// Every path under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            paths.extend(walk(&path));
        }
        paths.push(path);
    }
    paths
}
