//! Harness for the end-to-end tests: real processes (the `porthole` and
//! `porthole-emulator` binaries built by `cargo build --workspace`), a real OpenSSH sshd,
//! a real HTTP server, on loopback ports chosen by the OS.

pub mod apps;
pub mod dropbear;
pub mod faultproxy;
pub mod network;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// Keys the generated emulator configs use.
pub const ACCESS_KEY: &str = "AKIAPORTHOLETEST0001";
/// The matching secret.
pub const SECRET_KEY: &str = "porthole-test-secret-key-0123456789";
/// Web-login user of the generated configs.
pub const USERNAME: &str = "tester@example.test";
/// Its password.
pub const PASSWORD: &str = "tester-password";

/// How the client reaches the emulator in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Keypair signing, API v8 (`/stream/session`, POST download_single).
    ApiV8,
    /// Keypair signing, API v4 (`/stream/kernel`, GET download_single, /admin/graphql).
    ApiV4,
    /// Web login, `/func` prefix.
    Session,
}

impl Mode {
    /// All modes, for tests that run against each.
    pub const ALL: [Mode; 3] = [Mode::ApiV8, Mode::ApiV4, Mode::Session];

    fn api_version(self) -> &'static str {
        match self {
            Mode::ApiV8 | Mode::Session => "v8.20240915",
            Mode::ApiV4 => "v4.20190615",
        }
    }
}

/// The directory holding the workspace's built binaries (`target/debug`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test> -> target/debug
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_owned()
}

/// Path of a workspace binary; fails with the command that builds it.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the end-to-end tests",
        path.display()
    );
    path
}

pub use porthole_testkit::{free_port, greeting_echo_server};

/// The home directory of the commands this test process runs (under `target/tmp`, one per
/// process): what `porthole` keeps under `~` (pinned SSH host keys) never lands in the
/// real home, and the servers of one test binary see one consistent home.
pub fn test_home() -> &'static Path {
    static HOME: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HOME.get_or_init(|| {
        let home = bin_dir()
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("tmp")
            .join(format!("home-{}", std::process::id()));
        std::fs::create_dir_all(&home).expect("create the test home");
        home
    })
}

/// A `porthole` command with `args` and the environment `env` (BACKEND_* variables), no
/// stdin, no browser and no inherited log filter, `HOME` the [`test_home`] (callers may
/// set another), killed when dropped.
pub fn porthole_command<I, K, V>(args: &[&str], env: I) -> Command
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(bin("porthole"));
    cmd.args(args)
        .env_remove("BROWSER")
        .env_remove("RUST_LOG")
        .env("HOME", test_home())
        .envs(env)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Options for the system ssh/scp/sftp that log in with `key` through `port` on loopback,
/// quietly and without host-key prompts (`-P PORT` last: ssh wants `-p`).
pub fn ssh_client_options(key: &Path, port: u16) -> Vec<String> {
    let mut options = vec!["-i".to_owned(), key.display().to_string()];
    for option in [
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
        "IdentitiesOnly=yes",
        "BatchMode=yes",
        "LogLevel=ERROR",
    ] {
        options.extend(["-o".to_owned(), option.to_owned()]);
    }
    options.extend(["-P".to_owned(), port.to_string()]);
    options
}

/// Reads lines from `reader` until one satisfies `want`, within `secs`.
pub async fn read_line_until<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    secs: u64,
    what: &str,
    mut want: impl FnMut(&str) -> bool,
) -> String {
    let read = async {
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).await.expect("read line");
            if n == 0 {
                panic!("{what}: stream ended before the expected line; it printed:\n{seen}");
            }
            if want(line.trim_end()) {
                return line.trim_end().to_owned();
            }
            seen.push_str(&line);
        }
    };
    tokio::time::timeout(Duration::from_secs(secs), read)
        .await
        .unwrap_or_else(|_| panic!("{what}: no expected line within {secs} s"))
}

/// Sends SIGTERM to a child.
pub fn terminate(child: &Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a pid we own and a valid signal number.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
}

/// Sends SIGINT (Ctrl-C) to a child.
pub fn interrupt(child: &Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a pid we own and a valid signal number.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGINT);
        }
    }
}

/// A stand-in for the user's browser: a `$BROWSER` script that reports each URL it is
/// given to this test over a loopback socket, so the test awaits the call as an event.
pub struct FakeBrowser {
    listener: tokio::net::TcpListener,
    dir: tempfile::TempDir,
}

impl FakeBrowser {
    /// Writes the script and listens for its reports.
    pub async fn start() -> FakeBrowser {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("browser");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nexec python3 -c 'import socket,sys; s=socket.create_connection((\"127.0.0.1\",{port})); s.sendall(sys.argv[1].encode())' \"$1\"\n"
            ),
        )
        .expect("write browser script");
        set_mode(&script, 0o755);
        FakeBrowser { listener, dir }
    }

    /// The value for `$BROWSER`.
    pub fn command(&self) -> PathBuf {
        self.dir.path().join("browser")
    }

    /// The next URL the browser was asked to open, within `secs`.
    pub async fn next_url(&self, secs: u64) -> String {
        let accept = async {
            let (mut socket, _) = self.listener.accept().await.expect("accept");
            let mut url = String::new();
            tokio::io::AsyncReadExt::read_to_string(&mut socket, &mut url)
                .await
                .expect("read url");
            url
        };
        tokio::time::timeout(Duration::from_secs(secs), accept)
            .await
            .unwrap_or_else(|_| panic!("$BROWSER was not called within {secs} s"))
    }
}

/// One service behind an emulated session.
#[derive(Debug, Clone)]
pub struct Service {
    /// App name.
    pub name: String,
    /// http, tcp, preopen...
    pub protocol: String,
    /// Real local target, `127.0.0.1:PORT`.
    pub target: String,
    /// Extra TOML lines for the service table.
    pub extra: String,
}

impl Service {
    /// A service with no extra settings.
    pub fn new(name: &str, protocol: &str, target: &str) -> Self {
        Service {
            name: name.into(),
            protocol: protocol.into(),
            target: target.into(),
            extra: String::new(),
        }
    }
}

/// One emulated session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Its name.
    pub name: String,
    /// Its status word.
    pub status: String,
    /// Its services.
    pub services: Vec<Service>,
    /// Path of the `id_container` file it serves, if any.
    pub ssh_key: Option<PathBuf>,
}

impl Session {
    /// A PENDING session: no apps, no key.
    pub fn pending(name: &str) -> Session {
        Session {
            name: name.into(),
            status: "PENDING".into(),
            services: Vec::new(),
            ssh_key: None,
        }
    }
}

/// Renders an emulator config for `mode` with `sessions`, plus `extra` top-level TOML.
pub fn emulator_config(mode: Mode, sessions: &[Session], extra: &str) -> String {
    let mut toml = format!(
        "api_version = \"{}\"\n{extra}\n[[keypairs]]\naccess_key = \"{ACCESS_KEY}\"\nsecret_key = \"{SECRET_KEY}\"\n\n\
         [[users]]\nusername = \"{USERNAME}\"\npassword = \"{PASSWORD}\"\naccess_key = \"{ACCESS_KEY}\"\n",
        mode.api_version()
    );
    for (i, s) in sessions.iter().enumerate() {
        let _ = write!(
            toml,
            "\n[[sessions]]\nname = \"{}\"\nid = \"00000000-0000-4000-8000-{:012}\"\nstatus = \"{}\"\n",
            s.name,
            i + 1,
            s.status
        );
        if let Some(key) = &s.ssh_key {
            let _ = writeln!(toml, "files = {{ id_container = \"{}\" }}", key.display());
        }
        for (j, svc) in s.services.iter().enumerate() {
            let _ = write!(
                toml,
                "[[sessions.services]]\nname = \"{}\"\nprotocol = \"{}\"\ncontainer_ports = [{}]\ntarget = \"{}\"\n{}\n",
                svc.name,
                svc.protocol,
                8000 + j,
                svc.target,
                svc.extra
            );
        }
    }
    toml
}

/// A running `porthole-emulator` process.
pub struct Emulator {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// The mode its clients use.
    pub mode: Mode,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Emulator {
    /// Starts the emulator with `config` on a free port and waits for its ready line.
    pub async fn start(mode: Mode, config: &str) -> Emulator {
        Emulator::start_on(mode, config, "127.0.0.1:0").await
    }

    /// The same, listening on `listen` (`ADDRESS:PORT`, port 0: a free one).
    pub async fn start_on(mode: Mode, config: &str, listen: &str) -> Emulator {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("emulator.toml");
        std::fs::write(&path, config).expect("write config");
        let mut child = Command::new(bin("porthole-emulator"))
            .arg("--config")
            .arg(&path)
            .args(["--listen", listen, "--control"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn porthole-emulator");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let line = read_line_until(&mut out, 20, "porthole-emulator", |l| {
            l.starts_with("listening on ")
        })
        .await;
        let url = line.trim_start_matches("listening on ").to_owned();
        Emulator {
            url,
            mode,
            child,
            _dir: dir,
        }
    }

    /// The emulator's process, e.g. to kill it.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The BACKEND_* variables that point a client at this emulator.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![("BACKEND_ENDPOINT", self.url.clone())];
        match self.mode {
            Mode::ApiV8 | Mode::ApiV4 => vars.extend([
                ("BACKEND_ENDPOINT_TYPE", "api".to_owned()),
                ("BACKEND_ACCESS_KEY", ACCESS_KEY.to_owned()),
                ("BACKEND_SECRET_KEY", SECRET_KEY.to_owned()),
            ]),
            Mode::Session => vars.extend([
                ("BACKEND_ENDPOINT_TYPE", "session".to_owned()),
                ("BACKEND_USERNAME", USERNAME.to_owned()),
                ("BACKEND_PASSWORD", PASSWORD.to_owned()),
            ]),
        }
        vars
    }

    /// A `porthole` command configured for this emulator through BACKEND_* variables,
    /// with a home of this emulator's own: its sessions' ids repeat between test
    /// emulators, their SSH host keys do not, so pinned keys must not be shared.
    pub fn porthole(&self, args: &[&str]) -> Command {
        let home = self._dir.path().join("home");
        let _ = std::fs::create_dir_all(&home);
        let mut cmd = porthole_command(args, self.env());
        cmd.env("HOME", home);
        cmd
    }

    /// Runs `porthole args` to completion (at most `secs`), returning status and output.
    pub async fn run(&self, args: &[&str], secs: u64) -> std::process::Output {
        run_with_timeout(self.porthole(args), secs).await
    }

    /// Starts `porthole open SESSION APP --json --no-launch` and waits for its ready line.
    pub async fn open(&self, session: &str, app: &str, extra: &[&str]) -> OpenTunnel {
        let mut args = vec!["--no-launch"];
        args.extend_from_slice(extra);
        self.open_launching(session, app, &args).await
    }

    /// Starts `porthole open SESSION APP --json` (launching the app unless `extra` says
    /// `--no-launch`) and waits for its ready line.
    pub async fn open_launching(&self, session: &str, app: &str, extra: &[&str]) -> OpenTunnel {
        let mut args = vec!["open", session, app, "--json"];
        args.extend_from_slice(extra);
        let mut cmd = self.porthole(&args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        OpenTunnel::spawn(cmd).await
    }
}

/// Runs a command with a deadline; a hang fails the test instead of blocking CI.
pub async fn run_with_timeout(mut cmd: Command, secs: u64) -> std::process::Output {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().expect("spawn");
    tokio::time::timeout(Duration::from_secs(secs), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("command did not finish within {secs} s: {cmd:?}"))
        .expect("wait")
}

/// A running `porthole open`.
pub struct OpenTunnel {
    /// The parsed JSON ready line.
    pub ready: Value,
    /// Its error output, when `cmd` piped it.
    stderr: Option<BufReader<tokio::process::ChildStderr>>,
    child: Child,
}

impl OpenTunnel {
    /// Spawns `cmd` (a `porthole open ... --json`) and waits for its JSON ready line.
    pub async fn spawn(mut cmd: Command) -> OpenTunnel {
        let mut child = cmd.spawn().expect("spawn porthole open");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let line = read_line_until(&mut out, 90, "porthole open", |l| l.starts_with('{')).await;
        let ready: Value = serde_json::from_str(&line).expect("ready line is JSON");
        let stderr = child.stderr.take().map(BufReader::new);
        OpenTunnel {
            ready,
            stderr,
            child,
        }
    }

    /// The next line of its error output that satisfies `want`, within `secs` (the command
    /// must have piped stderr).
    pub async fn stderr_line(&mut self, secs: u64, want: impl FnMut(&str) -> bool) -> String {
        let stderr = self
            .stderr
            .as_mut()
            .expect("spawn porthole open with stderr piped to read it");
        read_line_until(stderr, secs, "porthole open's error output", want).await
    }

    /// The process id of `porthole open` (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id().expect("porthole open is running")
    }

    /// `127.0.0.1:PORT` of the tunnel.
    pub fn local_addr(&self) -> String {
        self.ready["local_addr"]
            .as_str()
            .expect("local_addr")
            .to_owned()
    }

    /// The local port.
    pub fn port(&self) -> u16 {
        self.local_addr()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// SIGTERMs `porthole open` and checks that it exits 0 within 10 s.
    pub async fn stop(mut self) {
        terminate(&self.child);
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("porthole open exits within 10 s of SIGTERM")
            .expect("wait");
        assert!(status.success(), "porthole open exited with {status}");
    }
}

/// A real OpenSSH sshd on a loopback port, accepting one generated client key.
pub struct Sshd {
    /// Its port.
    pub port: u16,
    /// The private key that logs in (the session's `id_container`).
    pub client_key: PathBuf,
    /// The user to log in as: `work` when it exists (as in Backend.AI containers, and
    /// in CI), else the current user.
    pub user: String,
    /// A directory every user can write, for transfers.
    pub scratch: PathBuf,
    child: Child,
    dir: tempfile::TempDir,
}

fn sshd_path() -> PathBuf {
    ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("OpenSSH sshd is not installed (apt-get install openssh-server)")
}

/// A new ed25519 key pair at `path` (and `path.pub`).
async fn ssh_keygen(path: &Path) {
    let mut c = Command::new("ssh-keygen");
    c.args(["-q", "-t", "ed25519", "-N", "", "-C", "porthole-test", "-f"])
        .arg(path);
    let out = run_with_timeout(c, 30).await;
    assert!(out.status.success(), "ssh-keygen failed: {out:?}");
}

/// Starts sshd with `config` in the foreground and waits until it listens.
async fn spawn_sshd(config: &Path) -> Child {
    let mut child = Command::new(sshd_path())
        .args(["-D", "-e", "-f"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sshd");
    // At LogLevel INFO sshd says "Server listening on 127.0.0.1 port N." once ready.
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    read_line_until(&mut err, 20, "sshd", |l| l.contains("Server listening on")).await;
    tokio::spawn(async move {
        let mut line = String::new();
        while err
            .read_line(&mut line)
            .await
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            if std::env::var_os("PORTHOLE_TEST_SSHD_LOG").is_some() {
                eprint!("sshd: {line}");
            }
            line.clear();
        }
    });
    child
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Whether this process's effective user is root.
pub fn is_root() -> bool {
    proc_status_field("self", "Uid")
        .and_then(|uids| uids.split_whitespace().nth(1).map(|e| e == "0"))
        .unwrap_or(false)
}

/// Waits until something accepts TCP connections on `address` (a process of another
/// program, which announces nothing), or fails the test after `timeout` naming `what`.
pub async fn wait_until_listening(
    address: impl tokio::net::ToSocketAddrs + Clone,
    timeout: Duration,
    what: &str,
) {
    porthole_testkit::wait_until(what, timeout, || {
        let address = address.clone();
        async move { tokio::net::TcpStream::connect(address).await.ok().map(drop) }
    })
    .await;
}

/// A local account made for one test, removed with its home when dropped: the other
/// user on a shared machine.
pub struct OsUser {
    /// Its login name.
    pub name: String,
    /// Its user id.
    pub uid: u32,
}

impl OsUser {
    /// Creates the account `name` (needs root; `None`, with the reason printed, when this
    /// process is not root).
    pub fn create(name: &str) -> Option<OsUser> {
        if !is_root() {
            eprintln!("skipped: creating the OS user {name} needs root");
            return None;
        }
        // A user left behind by an earlier, killed run.
        let _ = std::process::Command::new("userdel")
            .args(["-r", name])
            .output();
        let out = std::process::Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/sh", name])
            .output()
            .expect("run useradd");
        assert!(out.status.success(), "useradd {name}: {out:?}");
        let out = std::process::Command::new("id")
            .args(["-u", name])
            .output()
            .expect("run id");
        let uid = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a numeric uid");
        Some(OsUser {
            name: name.to_owned(),
            uid,
        })
    }

    /// `program` run as this user (`runuser`, no password needed as root).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", &self.name, "--", program])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }
}

impl Drop for OsUser {
    fn drop(&mut self) {
        let _ = std::process::Command::new("userdel")
            .args(["-r", &self.name])
            .output();
    }
}

/// Whether a local account named `name` exists.
pub fn user_exists(name: &str) -> bool {
    std::fs::read_to_string("/etc/passwd")
        .map(|p| p.lines().any(|l| l.split(':').next() == Some(name)))
        .unwrap_or(false)
}

/// The current user's name.
pub fn current_user() -> String {
    std::env::var("USER")
        .ok()
        .or_else(|| std::env::var("LOGNAME").ok())
        .unwrap_or_else(|| "root".into())
}

impl Sshd {
    /// Generates host and client keys and starts sshd in the foreground.
    pub async fn start() -> Sshd {
        let dir = tempfile::tempdir().expect("tempdir");
        set_mode(dir.path(), 0o755);
        let d = dir.path();
        for file in ["host_key", "id_container"] {
            ssh_keygen(&d.join(file)).await;
        }
        std::fs::copy(d.join("id_container.pub"), d.join("authorized_keys"))
            .expect("authorized_keys");
        set_mode(&d.join("authorized_keys"), 0o644);
        let scratch = d.join("scratch");
        std::fs::create_dir(&scratch).expect("scratch dir");
        set_mode(&scratch, 0o777);
        let user = if user_exists("work") {
            "work".to_owned()
        } else {
            current_user()
        };
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             AllowTcpForwarding yes\nSubsystem sftp internal-sftp\nLogLevel INFO\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).expect("sshd_config");
        std::fs::create_dir_all("/run/sshd").ok();
        let child = spawn_sshd(&d.join("sshd_config")).await;
        let client_key = d.join("id_container");
        Sshd {
            port,
            client_key,
            user,
            scratch,
            child,
            dir,
        }
    }

    /// Restarts sshd on the same port with a new host key, as a session whose image makes
    /// a new key at every start would.
    pub async fn regenerate_host_key(&mut self) {
        let _ = self.child.kill().await;
        let d = self.dir.path();
        for file in ["host_key", "host_key.pub"] {
            let _ = std::fs::remove_file(d.join(file));
        }
        ssh_keygen(&d.join("host_key")).await;
        self.child = spawn_sshd(&d.join("sshd_config")).await;
    }

    /// `127.0.0.1:PORT`
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The directory holding the keys.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Options for the system ssh/scp that log in with the session key through `port`.
    pub fn client_options(&self, port: u16) -> Vec<String> {
        ssh_client_options(&self.client_key, port)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A real HTTP server (Python's http.server) serving a directory.
pub struct HttpServer {
    /// Its port.
    pub port: u16,
    /// The directory it serves.
    pub root: tempfile::TempDir,
    _child: Child,
}

impl HttpServer {
    /// Serves a fresh directory holding `index.html` with `body`.
    pub async fn start(body: &str) -> HttpServer {
        Self::start_on(0, body).await
    }

    /// Like [`HttpServer::start`], on `port` (0: a free one).
    pub async fn start_on(port: u16, body: &str) -> HttpServer {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::write(root.path().join("index.html"), body).expect("index.html");
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
                "--directory",
            ])
            .arg(root.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn python3 -m http.server");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let line = read_line_until(&mut out, 20, "http.server", |l| {
            l.starts_with("Serving HTTP")
        })
        .await;
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .expect("port in http.server's line");
        // Keep draining its stdout so it never blocks on a full pipe.
        tokio::spawn(async move {
            let mut sink = String::new();
            while out
                .read_line(&mut sink)
                .await
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                sink.clear();
            }
        });
        HttpServer {
            port,
            root,
            _child: child,
        }
    }

    /// `127.0.0.1:PORT`
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// One field of `/proc/<pid>/status` (`pid` may be `self`), trimmed: `VmRSS` gives
/// "1234 kB". `None` when the process or the field is gone.
pub fn proc_status_field(pid: &str, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

/// Hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let data = std::fs::read(path).expect("read file");
    hex::encode(Sha256::digest(&data))
}

/// Writes `len` random bytes to `path`.
pub fn random_file(path: &Path, len: usize) {
    use rand::RngCore;
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    std::fs::write(path, data).expect("write random file");
}
