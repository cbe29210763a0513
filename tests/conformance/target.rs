//! The targets a scenario runs against, and the emulator configured like the rig.
//!
//! - `emulator-api` / `emulator-session`: `porthole-emulator` serving the rig's sessions and
//!   apps (same names, ids, keys, users, service ports) at the rig's API version (or the
//!   version under test, when no rig runs), backed by the rig's real services when the rig
//!   is up, else by stand-ins started by the test (a real OpenSSH sshd, TCP echo servers,
//!   `python3 -m http.server` pages for ttyd and jupyter).
//! - `manager`: the rig's real manager in API mode.
//! - `webserver`: the rig's real web server in session mode.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use porthole_core::api::version::ApiVersion;
use porthole_e2e::{
    greeting_echo_server, read_line_until, run_with_timeout, Emulator, HttpServer, Mode, Sshd,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

use crate::raw::{Auth, Raw, Via};
use crate::rig::{self, rig};

/// One column of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    EmulatorApi,
    EmulatorSession,
    Manager,
    WebServer,
}

impl Column {
    pub fn label(self) -> &'static str {
        match self {
            Column::EmulatorApi => "emulator-api",
            Column::EmulatorSession => "emulator-session",
            Column::Manager => "manager",
            Column::WebServer => "webserver",
        }
    }

    pub fn session_mode(self) -> bool {
        matches!(self, Column::EmulatorSession | Column::WebServer)
    }

    pub fn is_real(self) -> bool {
        matches!(self, Column::Manager | Column::WebServer)
    }
}

/// A fault the scenario needs from the start (the rig's switches; the emulator's config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// `start_service` of this app fails (rig: `fail-services`).
    StartFailure(&'static str),
    /// The app's port refuses connections although its start was reported (rig:
    /// `nocheck-services` plus the `apps` service stopped).
    RefusedPort(&'static str),
}

/// The agent error the rig's agent reports for `fail-services` (tests/rigs/agent.py).
pub fn injected_failure(app: &str) -> String {
    format!("{app} failed to start (injected by the rig)")
}

/// The real services behind the apps of `rig-running`, by app name: one `host:port` per
/// container port.
pub struct Backends {
    pub targets: std::collections::HashMap<String, Vec<String>>,
    /// The `id_container` that logs in to `sshd`.
    pub key: PathBuf,
    /// The login user of `sshd`.
    pub ssh_user: String,
    /// Whether these are the rig's own services (else stand-ins).
    pub rig: bool,
    /// The home of the `porthole` commands run against them: the SSH host key they pin
    /// belongs to this `sshd`, and stand-ins of other tests have other keys.
    pub home: tempfile::TempDir,
    _keep: Vec<Box<dyn std::any::Any + Send + Sync>>,
}

impl Backends {
    /// The rig's services.
    pub fn rig() -> Arc<Backends> {
        let targets = rig()
            .apps
            .iter()
            .map(|a| {
                let ports = a.host_ports.iter().map(|p| format!("127.0.0.1:{p}"));
                (a.name.clone(), ports.collect())
            })
            .collect();
        Arc::new(Backends {
            targets,
            key: rig().ssh_key(),
            ssh_user: "work".into(),
            rig: true,
            home: tempfile::tempdir().expect("a home for porthole"),
            _keep: Vec::new(),
        })
    }

    /// Stand-ins started by this test.
    pub async fn standalone() -> Arc<Backends> {
        let sshd = Sshd::start().await;
        let ttyd = HttpServer::start(
            "<!doctype html><title>ttyd stand-in</title><p>rig-running: ttyd stand-in</p>\n",
        )
        .await;
        std::fs::write(
            ttyd.root.path().join("health"),
            r#"{"ok": true, "app": "ttyd-standin"}"#,
        )
        .unwrap();
        let jupyter = HttpServer::start(
            "<!doctype html><html><head><title>JupyterLab</title></head>\
             <body>JupyterLab stand-in (python3 -m http.server)</body></html>\n",
        )
        .await;
        std::fs::create_dir_all(jupyter.root.path().join("api")).unwrap();
        std::fs::write(
            jupyter.root.path().join("api/status"),
            r#"{"connections": 0, "kernels": 0, "started": "stand-in"}"#,
        )
        .unwrap();
        let echo = greeting_echo_server(b"").await.to_string();
        // The rig's second echo port and its VNC server speak first; so do these.
        let echo2 = greeting_echo_server(b"port 2\n").await.to_string();
        let vnc = greeting_echo_server(b"RFB 003.008\n").await.to_string();
        let targets = rig()
            .apps
            .iter()
            .map(|a| {
                let t = match a.name.as_str() {
                    "sshd" => vec![sshd.target()],
                    "ttyd" | "preview" => vec![ttyd.target()],
                    "jupyter" => vec![jupyter.target()],
                    "echo" => vec![echo.clone(), echo2.clone()],
                    "vnc" => vec![vnc.clone()],
                    _ => vec![echo.clone()],
                };
                (a.name.clone(), t)
            })
            .collect();
        Arc::new(Backends {
            targets,
            key: sshd.client_key.clone(),
            ssh_user: sshd.user.clone(),
            rig: false,
            home: tempfile::tempdir().expect("a home for porthole"),
            _keep: vec![Box::new(sshd), Box::new(ttyd), Box::new(jupyter)],
        })
    }

    /// The first target of `app`.
    pub fn target(&self, app: &str) -> &str {
        &self.targets[app][0]
    }
}

/// When the rig's expired account's password expired: the date seed.py gives its last
/// change (2020-01-01) plus the manager's max_password_age (365 days, etcd-config.json.in).
const EXPIRED_ON: &str = "2020-12-31 00:00:00+00:00";

/// The emulator config that mirrors the rig at API version `api`: keypairs and users,
/// `rig-running` with the rig's service ports, `rig-pending` PENDING with no ports, and
/// the fault.
pub fn rig_like_config(b: &Backends, api: &str, fault: Fault) -> String {
    let r = rig();
    let manager = if api == r.api_version {
        format!("manager_version = \"{}\"\n", r.manager_version)
    } else {
        String::new()
    };
    let mut toml = format!(
        "api_version = \"{api}\"\n{manager}\n\
         [[keypairs]]\naccess_key = \"{ak}\"\nsecret_key = \"{sk}\"\nuser_id = \"{uid}\"\n\n\
         [[users]]\nusername = \"{u}\"\npassword = \"{p}\"\naccess_key = \"{ak}\"\n\n\
         [[users]]\nusername = \"{eu}\"\npassword = \"{ep}\"\naccess_key = \"{ak}\"\n\
         password_expired_on = \"{EXPIRED_ON}\"\n\n\
         [[sessions]]\nname = \"rig-running\"\nid = \"{rid}\"\nstatus = \"RUNNING\"\n\
         image = \"{img}\"\ngroup_id = \"{gid}\"\nfiles = {{ id_container = \"{key}\" }}\n",
        ak = r.access_key,
        sk = r.secret_key,
        uid = r.user_id,
        u = r.username,
        p = r.password,
        eu = r.expired_username,
        ep = r.expired_password,
        rid = r.running_id,
        img = r.image,
        gid = r.project_id,
        key = b.key.display(),
    );
    for app in &r.apps {
        let mut targets = b.targets[&app.name].clone();
        let mut extra = String::new();
        match fault {
            Fault::StartFailure(name) if name == app.name => {
                extra = format!("start_failure = \"{}\"\n", injected_failure(name));
            }
            Fault::RefusedPort(name) if name == app.name => {
                // Nothing listens there (the rig stops its real service instead).
                for target in &mut targets {
                    *target = format!("127.0.0.1:{}", porthole_e2e::free_port());
                }
            }
            _ => {}
        }
        for (key, value) in &app.extra {
            extra.push_str(&format!("{key} = {value}\n"));
        }
        let ports: Vec<String> = app.container_ports.iter().map(u16::to_string).collect();
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        toml.push_str(&format!(
            "\n[[sessions.services]]\nname = \"{}\"\nprotocol = \"{}\"\n\
             container_ports = [{}]\ntargets = [{}]\n{extra}",
            app.name,
            app.protocol,
            ports.join(", "),
            targets.join(", "),
        ));
    }
    let status_info = if r.pending_status_info.is_empty() {
        String::new()
    } else {
        format!("status_info = \"{}\"\n", r.pending_status_info)
    };
    toml.push_str(&format!(
        "\n[[sessions]]\nname = \"rig-pending\"\nid = \"{}\"\nstatus = \"PENDING\"\n\
         {status_info}image = \"{}\"\ngroup_id = \"{}\"\n",
        r.pending_id, r.image, r.project_id
    ));
    toml
}

/// One target of one scenario run.
pub struct Target {
    pub column: Column,
    /// The API version the server reports (the rig's, or the emulator's under test).
    pub api: ApiVersion,
    /// `http://127.0.0.1:PORT`: the manager (API mode) or the web server (session mode).
    pub endpoint: String,
    pub backends: Arc<Backends>,
    emulator: Option<tokio::sync::Mutex<Emulator>>,
    /// The rig's manager, stopped by [`Target::manager_down`].
    rig_fault: tokio::sync::Mutex<Option<rig::RigFault>>,
}

impl Target {
    /// The real manager or web server.
    pub fn real(column: Column, backends: Arc<Backends>) -> Target {
        let endpoint = if column.session_mode() {
            &rig().web_url
        } else {
            &rig().manager_url
        };
        Target {
            column,
            api: parse_version(&rig().api_version),
            endpoint: endpoint.clone(),
            backends,
            emulator: None,
            rig_fault: tokio::sync::Mutex::new(None),
        }
    }

    /// The emulator configured like the rig at API version `api`, with `fault`.
    pub async fn emulator(
        column: Column,
        backends: Arc<Backends>,
        api: &str,
        fault: Fault,
    ) -> Target {
        let mode = if column.session_mode() {
            Mode::Session
        } else {
            Mode::ApiV8
        };
        let emulator = Emulator::start(mode, &rig_like_config(&backends, api, fault)).await;
        Target {
            column,
            api: parse_version(api),
            endpoint: emulator.url.clone(),
            backends,
            emulator: Some(tokio::sync::Mutex::new(emulator)),
            rig_fault: tokio::sync::Mutex::new(None),
        }
    }

    pub fn session_mode(&self) -> bool {
        self.column.session_mode()
    }

    pub fn is_real(&self) -> bool {
        self.column.is_real()
    }

    pub fn label(&self) -> &'static str {
        self.column.label()
    }

    /// Whether the server speaks API `version` or newer.
    pub fn speaks(&self, version: &str) -> bool {
        self.api >= parse_version(version)
    }

    /// The BACKEND_* environment of the official client for this target.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("BACKEND_ENDPOINT", self.endpoint.clone()),
            ("HOME", self.backends.home.path().display().to_string()),
        ];
        if self.session_mode() {
            vars.extend([
                ("BACKEND_ENDPOINT_TYPE", "session".to_owned()),
                ("BACKEND_USERNAME", rig().username.clone()),
                ("BACKEND_PASSWORD", rig().password.clone()),
            ]);
        } else {
            vars.extend([
                ("BACKEND_ENDPOINT_TYPE", "api".to_owned()),
                ("BACKEND_ACCESS_KEY", rig().access_key.clone()),
                ("BACKEND_SECRET_KEY", rig().secret_key.clone()),
            ]);
        }
        vars
    }

    /// A `porthole` command for this target.
    pub fn porthole(&self, args: &[&str]) -> Command {
        porthole_e2e::porthole_command(args, self.env())
    }

    /// Runs `porthole args` to completion within `secs`.
    pub async fn run(&self, args: &[&str], secs: u64) -> std::process::Output {
        run_with_timeout(self.porthole(args), secs).await
    }

    /// Starts `porthole open SESSION APP --json [extra]` and waits for its ready line.
    pub async fn open(&self, session: &str, app: &str, extra: &[&str]) -> Open {
        let mut args = vec!["open", session, app, "--json"];
        args.extend_from_slice(extra);
        Open::spawn(self.porthole(&args)).await
    }

    /// A raw client for the manager paths (`/func` in session mode), signed in.
    pub async fn raw(&self) -> Raw {
        if self.session_mode() {
            let reply = Raw::login(&self.endpoint, &rig().username, &rig().password).await;
            assert_eq!(
                reply.json()["authenticated"],
                Value::Bool(true),
                "{}: login: {}",
                self.label(),
                String::from_utf8_lossy(&reply.body)
            );
            let id = reply.session_header.expect("X-BackendAI-SessionID");
            self.raw_with(Auth::Session {
                id,
                via: Via::Header,
            })
        } else {
            self.raw_with(Auth::Keypair {
                access_key: rig().access_key.clone(),
                secret_key: rig().secret_key.clone(),
                skew: chrono::Duration::zero(),
            })
        }
    }

    /// A raw client with the given authentication.
    pub fn raw_with(&self, auth: Auth) -> Raw {
        Raw {
            base: self.endpoint.clone(),
            prefix: if self.session_mode() { "/func" } else { "" },
            auth,
            api_version: self.api.to_string(),
        }
    }

    /// Stops the manager: the rig's real one, or the emulator's (session mode: the web
    /// server side then answers 502; API mode: the emulator process is killed).
    pub async fn manager_down(&self) {
        match &self.emulator {
            None => {
                *self.rig_fault.lock().await = Some(rig::RigFault::manager_down().await);
            }
            Some(emu) => {
                let mut emu = emu.lock().await;
                if self.session_mode() {
                    control(&emu.url, "manager", r#"{"up": false}"#).await;
                } else {
                    let child = emu.child();
                    child.start_kill().expect("kill the emulator");
                    tokio::time::timeout(Duration::from_secs(10), child.wait())
                        .await
                        .expect("the emulator exits within 10 s")
                        .expect("wait");
                }
            }
        }
    }

    /// Brings the manager back (session mode, or the rig in either mode).
    pub async fn manager_up(&self) {
        match &self.emulator {
            None => {
                if let Some(fault) = self.rig_fault.lock().await.take() {
                    fault.restore().await;
                }
            }
            Some(emu) => {
                let emu = emu.lock().await;
                if self.session_mode() {
                    control(&emu.url, "manager", r#"{"up": true}"#).await;
                }
            }
        }
    }

    /// Replaces the target's port number in `text` (messages quote the endpoint).
    pub fn normalize(&self, text: &str) -> String {
        text.replace(&self.endpoint, "ENDPOINT")
    }
}

/// A version string of tests/rigs or of `PORTHOLE_CONFORMANCE_API`.
pub fn parse_version(text: &str) -> ApiVersion {
    text.parse()
        .unwrap_or_else(|e| panic!("API version {text:?}: {e}"))
}

/// `POST /_emulator/{what}` on the emulator's control API.
async fn control(url: &str, what: &str, body: &str) {
    let reply = reqwest::Client::new()
        .post(format!("{url}/_emulator/{what}"))
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("emulator control API");
    assert!(
        reply.status().is_success(),
        "POST /_emulator/{what} {body}: {}",
        reply.status()
    );
}

/// A running `porthole open`, with its stderr collected.
pub struct Open {
    pub ready: Value,
    child: Child,
    stderr: Arc<(Mutex<Vec<String>>, Notify)>,
}

impl Open {
    /// Spawns `cmd` (a `porthole open ... --json`) and waits for its JSON ready line.
    pub async fn spawn(mut cmd: Command) -> Open {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn porthole open");
        let stderr = Arc::new((Mutex::new(Vec::new()), Notify::new()));
        let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err.next_line().await {
                sink.0.lock().unwrap().push(line);
                sink.1.notify_waiters();
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let read = read_line_until(&mut out, 90, "porthole open", |l| l.starts_with('{'));
        let line = tokio::select! {
            line = read => line,
            status = child.wait() => panic!(
                "porthole open exited ({status:?}) before its ready line: {:?}",
                stderr.0.lock().unwrap()
            ),
        };
        Open {
            ready: serde_json::from_str(&line).expect("ready line is JSON"),
            child,
            stderr,
        }
    }

    pub fn port(&self) -> u16 {
        self.ready["local_addr"]
            .as_str()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .expect("local_addr")
    }

    /// The first stderr line containing `needle`, within `secs`.
    pub async fn stderr_line(&self, needle: &str, secs: u64) -> String {
        let wait = async {
            loop {
                let notified = self.stderr.1.notified();
                if let Some(line) = self
                    .stderr
                    .0
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|l| l.contains(needle))
                {
                    return line.clone();
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(secs), wait)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "porthole open printed no line with {needle:?} within {secs} s: {:?}",
                    self.stderr.0.lock().unwrap()
                )
            })
    }

    /// Everything printed on stderr so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.0.lock().unwrap().clone()
    }

    /// SIGTERMs it and checks that it exits 0 within 10 s.
    pub async fn stop(mut self) {
        porthole_e2e::terminate(&self.child);
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("porthole open exits within 10 s of SIGTERM")
            .expect("wait");
        assert!(status.success(), "porthole open exited with {status}");
    }
}
