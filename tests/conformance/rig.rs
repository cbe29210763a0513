//! The real-manager rig (`../shared/rigs/real-manager`): where it is, its fixed identities,
//! and its fault switches. The rig is shared by every test of this binary, so anything that
//! changes its behaviour (fault files, stopped services, a locked login) runs under the
//! exclusive side of [`RIG_LOCK`]; ordinary scenarios hold the shared side.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::RwLock;

/// Held shared by ordinary scenarios and exclusively while the rig is put in a fault state.
pub static RIG_LOCK: RwLock<()> = RwLock::const_new(());

/// The seeded user's access key (rig.env).
pub const ACCESS_KEY: &str = "AKIATESTRIGACCESS001";
/// Its secret key.
pub const SECRET_KEY: &str = "RigSecretKeyForLocalTests0123456789abcde";
/// The web-server login of the seeded user.
pub const USERNAME: &str = "rig-user@example.test";
/// Its password.
pub const PASSWORD: &str = "rig-password-1234";
/// The manager's API version (23.09.10).
pub const API_VERSION: &str = "v7.20230615";
/// The manager release.
pub const MANAGER_VERSION: &str = "23.09.10";
/// `rig-running`'s session id.
pub const RUNNING_ID: &str = "5a1e0000-0000-4000-8000-00000000a001";
/// `rig-pending`'s session id.
pub const PENDING_ID: &str = "5a1e0000-0000-4000-8000-00000000a002";
/// The project both sessions belong to.
pub const GROUP_ID: &str = "5a1e0000-0000-4000-8000-000000000002";
/// The image both sessions report.
pub const IMAGE: &str = "cr.backend.ai/stable/python:3.9-ubuntu20.04";
/// The manager (API mode).
pub const MANAGER_URL: &str = "http://127.0.0.1:18081";
/// The web server (session mode).
pub const WEB_URL: &str = "http://127.0.0.1:18080";
/// Service ports of `rig-running`: name, protocol, container port, host port.
pub const APPS: [(&str, &str, u16, u16); 4] = [
    ("sshd", "tcp", 2200, 12200),
    ("ttyd", "http", 7681, 17681),
    ("jupyter", "http", 8081, 18888),
    ("echo", "tcp", 7007, 17007),
];
const REDIS_PORT: u16 = 16379;
/// The manager's API port and its aiomonitor ports (rig.env).
const MANAGER_PORTS: [u16; 3] = [18081, 38100, 39100];

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

/// The rig's scripts (`setup.sh`, `start.sh`, `lib.sh`): `$PORTHOLE_RIG_DIR`, else
/// `../shared/rigs/real-manager` beside the repository.
pub fn rig_dir() -> PathBuf {
    std::env::var_os("PORTHOLE_RIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/rigs/real-manager")
        })
}

/// Where the rig keeps its state (`RIG_ROOT` of rig.env).
pub fn rig_root() -> PathBuf {
    std::env::var_os("PORTHOLE_RIG_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/bai-rig"))
}

/// The private key the rig's `download_single id_container` returns.
pub fn ssh_key() -> PathBuf {
    rig_root().join("etc/id_container")
}

/// `keys.env` as a map, checked against the constants above.
pub fn keys_env() -> HashMap<String, String> {
    let path = rig_root().join("keys.env");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; set up the rig first (scripts/test-conformance.sh does)",
            path.display()
        )
    });
    let map: HashMap<String, String> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    for (key, want) in [
        ("BACKEND_ACCESS_KEY", ACCESS_KEY),
        ("BACKEND_SECRET_KEY", SECRET_KEY),
        ("BACKEND_ENDPOINT", MANAGER_URL),
        ("BACKEND_WEB_ENDPOINT", WEB_URL),
        ("BACKEND_USERNAME", USERNAME),
        ("BACKEND_PASSWORD", PASSWORD),
    ] {
        assert_eq!(
            map.get(key).map(String::as_str),
            Some(want),
            "{}: {key} differs from what this suite expects",
            path.display()
        );
    }
    map
}

/// Fails the test with a clear message unless the manager and the web server answer.
pub async fn require_up() {
    for url in [format!("{MANAGER_URL}/"), format!("{WEB_URL}/func/")] {
        let reply = reqwest::Client::new()
            .get(&url)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match reply {
            Ok(r) if r.status().is_success() => {}
            other => panic!(
                "the real-manager rig does not answer GET {url} ({other:?}); start it with \
                 {}/start.sh, or run scripts/test-conformance.sh, which sets it up and starts it",
                rig_dir().display()
            ),
        }
    }
    keys_env();
}

/// Runs `bash -c SCRIPT` in the rig directory with `lib.sh` sourced, within `secs`.
async fn rig_bash(script: &str, secs: u64) {
    let mut cmd = Command::new("bash");
    cmd.current_dir(rig_dir())
        .arg("-c")
        .arg(format!("set -euo pipefail; source ./lib.sh; {script}"));
    let out = porthole_e2e::run_with_timeout(cmd, secs).await;
    assert!(
        out.status.success(),
        "rig command failed: {script}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the rig's `start.sh` (idempotent: starts what is down, re-seeds the sessions, clears
/// `fail-services` and the rig user's login-failure counter).
pub async fn start() {
    rig_bash("bash ./start.sh >/dev/null", 180).await;
}

fn run_file(name: &str) -> PathBuf {
    rig_root().join("run").join(name)
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
        let file = run_file("fail-services");
        std::fs::write(&file, format!("{app}\n")).expect("write fail-services");
        RigFault {
            files: vec![file],
            stopped: false,
            restored: false,
        }
    }

    /// `start_service` of `app` reports `started` without probing, and the rig's `apps`
    /// service (echo and ttyd) is stopped: the manager's connect is refused (close 1013).
    pub async fn refused_port(app: &str) -> RigFault {
        let file = run_file("nocheck-services");
        std::fs::write(&file, format!("{app}\n")).expect("write nocheck-services");
        let fault = RigFault {
            files: vec![file],
            stopped: true,
            restored: false,
        };
        rig_bash("stop_one apps", 60).await;
        fault
    }

    /// The manager process is stopped (the web server then answers 502).
    pub async fn manager_down() -> RigFault {
        rig_bash("stop_one manager", 60).await;
        // stop_one waits for the master process; its worker may hold the ports a little
        // longer, and a new manager cannot start until they are free.
        wait_ports_closed(&MANAGER_PORTS, Duration::from_secs(60)).await;
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
                .arg("180")
                .arg("bash")
                .arg(rig_dir().join("start.sh"))
                .stdout(std::process::Stdio::null())
                .status();
        }
    }
}

/// Clears the web server's login-failure counter of `username` (as start.sh does for the
/// rig user); also on drop, so a failed test never leaves the rig user locked out.
pub struct LoginCounterReset(pub String);

impl Drop for LoginCounterReset {
    fn drop(&mut self) {
        let status = std::process::Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &REDIS_PORT.to_string(), "DEL"])
            .arg(format!("login_history_{}", self.0))
            .stdout(std::process::Stdio::null())
            .status();
        // No panic here: this also runs while a failed test unwinds.
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!(
                "conformance: could not reset the login-failure counter of {} ({status:?}); \
                 run the rig's start.sh",
                self.0
            );
        }
    }
}
