//! The Backend.AI rig under test (`tests/rigs/`): which release (`PORTHOLE_RIG`, default
//! 26.9), its facts as the rig's own files state them (`rig.env`, `VERSION/rig.env`,
//! `service-ports.json`), and its fault switches. The rig is shared by every test of this
//! binary, so anything that changes its behaviour (fault files, stopped services, a locked
//! login) runs under the exclusive side of [`RIG_LOCK`]; ordinary scenarios hold the
//! shared side.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;
use tokio::sync::RwLock;

/// Held shared by ordinary scenarios and exclusively while the rig is put in a fault state.
pub static RIG_LOCK: RwLock<()> = RwLock::const_new(());

/// One service port of `rig-running`.
#[derive(Debug, Clone)]
pub struct App {
    /// Its name (`sshd`, `echo`, ...).
    pub name: String,
    /// Its protocol as the server reports it.
    pub protocol: String,
    /// Its container ports; the first is the primary one.
    pub container_ports: Vec<u16>,
    /// The local ports of the real services behind them.
    pub host_ports: Vec<u16>,
    /// The rest of its entry (`url_template`, `allowed_arguments`, ...).
    pub extra: serde_json::Map<String, Value>,
}

/// Everything a test needs to know about one rig.
#[derive(Debug)]
pub struct Rig {
    /// The rig's directory name: `23.09` or `26.9`.
    pub release: String,
    /// The API version its manager reports (`v9.20250722`).
    pub api_version: String,
    /// The manager release its `GET /` reports (`26.9.6`).
    pub manager_version: String,
    /// The manager (API mode).
    pub manager_url: String,
    /// The web server (session mode).
    pub web_url: String,
    /// The rig user's keypair.
    pub access_key: String,
    /// Its secret.
    pub secret_key: String,
    /// The rig user's web login.
    pub username: String,
    /// Its password.
    pub password: String,
    /// An account whose password has expired (`password-expired`).
    pub expired_username: String,
    /// Its password.
    pub expired_password: String,
    /// The rig user's id.
    pub user_id: String,
    /// What the release's scheduler writes into `rig-pending`'s status_info (empty: none).
    pub pending_status_info: String,
    /// `rig-running`'s id.
    pub running_id: String,
    /// `rig-pending`'s id.
    pub pending_id: String,
    /// The project both belong to.
    pub project_id: String,
    /// The image both report.
    pub image: String,
    /// `rig-running`'s service ports.
    pub apps: Vec<App>,
    /// Redis (the web server's login-failure counters live there).
    pub redis_port: u16,
    /// The manager's ports: they must be free before it can start again.
    pub manager_ports: Vec<u16>,
    /// `/opt/porthole-rigs/VERSION`: `keys.env`, `state/{etc,run,log}`.
    pub base: PathBuf,
}

/// The directory of the rigs' scripts.
pub fn rigs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rigs")
}

/// `KEY=VALUE` lines of a rig settings file; `$VAR` expands to earlier keys; quoted
/// (multi-line) values are skipped: the tests need none of them.
fn read_env(path: &Path, into: &mut HashMap<String, String>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            continue;
        }
        let value = value.split('#').next().unwrap_or_default().trim();
        if value.starts_with('"') || value.starts_with("${") {
            continue;
        }
        let mut expanded = value.to_owned();
        for (k, v) in into.iter() {
            expanded = expanded.replace(&format!("${k}"), v);
        }
        into.insert(key.to_owned(), expanded);
    }
}

impl Rig {
    fn load(release: &str) -> Rig {
        let dir = rigs_dir();
        let mut env = HashMap::new();
        read_env(&dir.join("rig.env"), &mut env);
        let own = dir.join(release).join("rig.env");
        assert!(
            own.exists(),
            "PORTHOLE_RIG={release}: there is no {} (the rigs are 23.09 and 26.9)",
            own.display()
        );
        read_env(&own, &mut env);
        let get = |key: &str| {
            env.get(key)
                .cloned()
                .unwrap_or_else(|| panic!("{key} is not set in tests/rigs"))
        };
        let port = |key: &str| -> u16 {
            get(key)
                .parse()
                .unwrap_or_else(|_| panic!("{key} is not a port"))
        };
        let ports_file = dir.join("service-ports.json");
        let ports: Vec<Value> = serde_json::from_str(
            &std::fs::read_to_string(&ports_file).expect("tests/rigs/service-ports.json"),
        )
        .expect("service-ports.json is a JSON list");
        let apps = ports
            .into_iter()
            .map(|entry| {
                let mut map = entry.as_object().cloned().expect("a service port object");
                let numbers = |v: Option<Value>| -> Vec<Value> {
                    v.and_then(|v| v.as_array().cloned()).unwrap_or_default()
                };
                let container_ports = numbers(map.remove("container_ports"))
                    .iter()
                    .filter_map(Value::as_u64)
                    .map(|p| p as u16)
                    .collect();
                let host_ports = numbers(map.remove("host_ports"))
                    .iter()
                    .filter_map(Value::as_str)
                    .map(port)
                    .collect();
                let text = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_owned));
                App {
                    name: text(map.remove("name")).expect("name"),
                    protocol: text(map.remove("protocol")).expect("protocol"),
                    container_ports,
                    host_ports,
                    extra: map,
                }
            })
            .collect();
        Rig {
            release: release.to_owned(),
            api_version: get("BAI_API_VERSION"),
            manager_version: get("MANAGER_VERSION"),
            manager_url: format!("http://{}:{}", get("HOST"), port("MANAGER_PORT")),
            web_url: format!("http://{}:{}", get("HOST"), port("WEB_PORT")),
            access_key: get("ACCESS_KEY"),
            secret_key: get("SECRET_KEY"),
            username: get("RIG_USER_EMAIL"),
            password: get("RIG_USER_PASSWORD"),
            expired_username: get("EXPIRED_USER_EMAIL"),
            expired_password: get("EXPIRED_USER_PASSWORD"),
            user_id: get("USER_ID"),
            pending_status_info: get("PENDING_STATUS_INFO"),
            running_id: get("RUNNING_ID"),
            pending_id: get("PENDING_ID"),
            project_id: get("PROJECT_ID"),
            image: get("IMAGE"),
            apps,
            redis_port: port("REDIS_PORT"),
            manager_ports: vec![
                port("MANAGER_PORT"),
                port("AIOMON_TERMUI_PORT"),
                port("AIOMON_WEBUI_PORT"),
            ],
            base: PathBuf::from(get("RIG_BASE")),
        }
    }

    /// The private key `download_single id_container` returns.
    pub fn ssh_key(&self) -> PathBuf {
        self.base.join("state/etc/id_container")
    }

    fn run_file(&self, name: &str) -> PathBuf {
        self.base.join("state/run").join(name)
    }

    /// `keys.env` as a map, checked against what this suite read from tests/rigs.
    pub fn keys_env(&self) -> HashMap<String, String> {
        let path = self.base.join("keys.env");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; set the rig up first (tests/rigs/rig {} setup)",
                path.display(),
                self.release
            )
        });
        let map: HashMap<String, String> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        for (key, want) in [
            ("BACKEND_ACCESS_KEY", &self.access_key),
            ("BACKEND_SECRET_KEY", &self.secret_key),
            ("BACKEND_ENDPOINT", &self.manager_url),
            ("BACKEND_WEB_ENDPOINT", &self.web_url),
            ("BACKEND_USERNAME", &self.username),
            ("BACKEND_PASSWORD", &self.password),
        ] {
            assert_eq!(
                map.get(key),
                Some(want),
                "{}: {key} differs from tests/rigs",
                path.display()
            );
        }
        map
    }
}

/// The rig under test: `PORTHOLE_RIG` (`23.09` or `26.9`; default `26.9`).
pub fn rig() -> &'static Rig {
    static RIG: OnceLock<Rig> = OnceLock::new();
    RIG.get_or_init(|| Rig::load(&std::env::var("PORTHOLE_RIG").unwrap_or_else(|_| "26.9".into())))
}

/// The local TCP ports something listens on (from /proc/net/tcp, without connecting).
fn listening_ports() -> Vec<u16> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state) = (fields.get(1)?, fields.get(3)?);
            (*state == "0A")
                .then(|| u16::from_str_radix(local.rsplit(':').next()?, 16).ok())
                .flatten()
        })
        .collect()
}

/// Waits until nothing listens on `ports` any more (bounded by `limit`).
async fn wait_ports_closed(ports: &[u16], limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let open: Vec<u16> = listening_ports()
            .into_iter()
            .filter(|p| ports.contains(p))
            .collect();
        if open.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ports {open:?} still listened on {} s after the manager was stopped",
            limit.as_secs()
        );
        // No event to await for another process's exit: poll, briefly.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fails the test with a clear message unless the manager and the web server answer.
pub async fn require_up() {
    let rig = rig();
    for url in [
        format!("{}/", rig.manager_url),
        format!("{}/func/", rig.web_url),
    ] {
        let reply = reqwest::Client::new()
            .get(&url)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match reply {
            Ok(r) if r.status().is_success() => {}
            other => panic!(
                "the Backend.AI {} rig does not answer GET {url} ({other:?}); start it with \
                 tests/rigs/rig {} start, or run scripts/test-conformance.sh",
                rig.release, rig.release
            ),
        }
    }
    rig.keys_env();
}

/// Runs `tests/rigs/rig RELEASE ARGS...` within `secs`.
async fn rig_command(args: &[&str], secs: u64) {
    let mut cmd = Command::new(rigs_dir().join("rig"));
    cmd.arg(&rig().release).args(args);
    let out = porthole_e2e::run_with_timeout(cmd, secs).await;
    assert!(
        out.status.success(),
        "tests/rigs/rig {} {} failed:\n{}{}",
        rig().release,
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts what is down (idempotent: re-seeds the sessions, clears the fault switches and the
/// login-failure counters).
pub async fn start() {
    rig_command(&["start"], 240).await;
}

/// A fault the rig is put in for one scenario; undone by [`RigFault::restore`] (or, if the
/// test failed before that, on drop).
pub struct RigFault {
    files: Vec<PathBuf>,
    stopped: bool,
    restored: bool,
}

impl RigFault {
    /// `start_service` of `app` reports `failed` (the manager answers 500 with `data`).
    pub fn start_failure(app: &str) -> RigFault {
        let file = rig().run_file("fail-services");
        std::fs::write(&file, format!("{app}\n")).expect("write fail-services");
        RigFault {
            files: vec![file],
            stopped: false,
            restored: false,
        }
    }

    /// `start_service` of `app` reports `started` without probing, and the rig's `apps`
    /// service (echo, vnc and ttyd) is stopped: the manager's connect is refused (close 1013).
    pub async fn refused_port(app: &str) -> RigFault {
        let file = rig().run_file("nocheck-services");
        std::fs::write(&file, format!("{app}\n")).expect("write nocheck-services");
        let fault = RigFault {
            files: vec![file],
            stopped: true,
            restored: false,
        };
        rig_command(&["stop-service", "apps"], 60).await;
        fault
    }

    /// The manager process is stopped (the web server then answers 502).
    pub async fn manager_down() -> RigFault {
        rig_command(&["stop-service", "manager"], 60).await;
        // The manager's worker may hold the ports a little longer than its master, and a
        // new manager cannot start until they are free.
        wait_ports_closed(&rig().manager_ports, Duration::from_secs(60)).await;
        RigFault {
            files: Vec::new(),
            stopped: true,
            restored: false,
        }
    }

    /// Undoes the fault and waits until the rig answers again.
    pub async fn restore(mut self) {
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
        if self.stopped {
            start().await;
        }
        self.restored = true;
    }
}

impl Drop for RigFault {
    fn drop(&mut self) {
        if self.restored {
            return;
        }
        // The test failed half-way: leave the rig as we found it for the other tests.
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
        if self.stopped {
            let _ = std::process::Command::new("timeout")
                .arg("240")
                .arg(rigs_dir().join("rig"))
                .args([rig().release.as_str(), "start"])
                .stdout(std::process::Stdio::null())
                .status();
        }
    }
}

/// Clears the web server's login-failure counter of `username` (as the rig's start does for
/// its users); also on drop, so a failed test never leaves a rig user locked out.
pub struct LoginCounterReset(pub String);

impl Drop for LoginCounterReset {
    fn drop(&mut self) {
        // The rig's own redis-cli (the 26.9 rig's is inside its root).
        let status = std::process::Command::new(rigs_dir().join("rig"))
            .args([
                rig().release.as_str(),
                "exec",
                "redis-cli",
                "-h",
                "127.0.0.1",
                "-p",
            ])
            .arg(rig().redis_port.to_string())
            .arg("DEL")
            .arg(format!("login_history_{}", self.0))
            .stdout(std::process::Stdio::null())
            .status();
        // No panic here: this also runs while a failed test unwinds.
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!(
                "conformance: could not reset the login-failure counter of {} ({status:?}); \
                 run tests/rigs/rig {} start",
                self.0,
                rig().release
            );
        }
    }
}
