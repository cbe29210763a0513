//! Real web apps as a Backend.AI container runs them: JupyterLab and TensorBoard from the
//! venv `scripts/install-browser-deps.sh` makes (`target/apps-venv`), and the headless
//! Chromium checks in `tests/browser/` that use them the way a person does.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{free_port, read_line_until, run_with_timeout};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

fn venv_bin(name: &str) -> PathBuf {
    let bin = repo_root().join("target/apps-venv/bin").join(name);
    assert!(
        bin.exists(),
        "{} is missing: run scripts/install-browser-deps.sh (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// Drains a child's output in the background so it never blocks on a full pipe; echoes
/// it when `PORTHOLE_TEST_APP_LOG` is set.
fn drain<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    mut reader: BufReader<R>,
    what: &'static str,
) {
    tokio::spawn(async move {
        let mut line = String::new();
        while reader
            .read_line(&mut line)
            .await
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            if std::env::var_os("PORTHOLE_TEST_APP_LOG").is_some() {
                eprint!("{what}: {line}");
            }
            line.clear();
        }
    });
}

/// A running web app server (JupyterLab or TensorBoard) on a loopback port.
pub struct WebApp {
    /// Its port.
    pub port: u16,
    /// Its working directory (notebooks, logs).
    pub dir: tempfile::TempDir,
    _child: Child,
}

impl WebApp {
    /// `127.0.0.1:PORT`, the emulator's target for it.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// JupyterLab the way Backend.AI's images start it: no token or password (the
    /// manager's proxy is the gate), remote access allowed (the container listens on all
    /// addresses behind the proxy), XSRF checks on.
    pub async fn jupyterlab() -> WebApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut child = Command::new(venv_bin("jupyter"))
            .args([
                "lab",
                "--no-browser",
                "--ip",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .args([
                "--IdentityProvider.token=",
                "--allow-root",
                "--ServerApp.password=",
                "--ServerApp.allow_remote_access=True",
                "--ServerApp.port_retries=0",
                "--LabApp.news_url=None",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            ])
            .arg(format!("--ServerApp.root_dir={}", dir.path().display()))
            // Its own home, as in a container: nothing lands in the real one.
            .env("HOME", dir.path())
            .env("JUPYTER_CONFIG_DIR", dir.path().join(".jupyter"))
            .env("JUPYTER_DATA_DIR", dir.path().join(".jupyter-data"))
            .env("JUPYTER_RUNTIME_DIR", dir.path().join(".jupyter-runtime"))
            .env("IPYTHONDIR", dir.path().join(".ipython"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn jupyter lab");
        let mut err = BufReader::new(child.stderr.take().expect("stderr"));
        read_line_until(&mut err, 90, "jupyter lab", |l| l.contains("is running at")).await;
        drain(err, "jupyter");
        drain(
            BufReader::new(child.stdout.take().expect("stdout")),
            "jupyter",
        );
        WebApp {
            port,
            dir,
            _child: child,
        }
    }

    /// TensorBoard over a log dir holding the scalar `tag`, written by
    /// `tests/browser/write_tb_logs.py`.
    pub async fn tensorboard(tag: &str) -> WebApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = dir.path().join("logs");
        let mut write = Command::new(venv_bin("python"));
        write
            .arg(repo_root().join("tests/browser/write_tb_logs.py"))
            .arg(&logs)
            .arg(tag);
        let out = run_with_timeout(write, 60).await;
        assert!(out.status.success(), "write_tb_logs.py: {out:?}");
        let port = free_port();
        let mut child = Command::new(venv_bin("tensorboard"))
            .arg("--logdir")
            .arg(&logs)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn tensorboard");
        let mut err = BufReader::new(child.stderr.take().expect("stderr"));
        read_line_until(&mut err, 90, "tensorboard", |l| {
            l.contains("(Press CTRL+C to quit)")
        })
        .await;
        drain(err, "tensorboard");
        drain(
            BufReader::new(child.stdout.take().expect("stdout")),
            "tensorboard",
        );
        WebApp {
            port,
            dir,
            _child: child,
        }
    }
}

/// Runs a browser check `tests/browser/<script>` with `args` under headless Chromium and
/// returns its JSON result; panics with its reason when it fails. Screenshots go to
/// `target/screenshots/browser/`.
pub async fn browser_check(script: &str, args: &[&str], secs: u64) -> Value {
    let root = repo_root();
    let mut cmd = Command::new("node");
    cmd.arg(root.join("tests/browser").join(script))
        .args(args)
        .env("PORTHOLE_SHOT_DIR", root.join("target/screenshots/browser"))
        .stdin(Stdio::null());
    let out = run_with_timeout(cmd, secs).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}\n--- its log ---\n{stderr}",
        stdout.trim()
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{script}: no JSON result ({e}): {stdout}"))
}
