//! Conformance: the same scenarios against the emulator and a real Backend.AI manager (API
//! mode) and web server (session mode) of one of the rigs in `tests/rigs/` (`PORTHOLE_RIG`:
//! `23.09` or `26.9`, default `26.9`), with a differential check of the emulator against
//! them.
//!
//! Targets come from `PORTHOLE_CONFORMANCE_TARGETS` (comma-separated: `emulator`, `manager`,
//! `webserver`, or `all`; default `emulator`). `scripts/test-conformance.sh` sets up and
//! starts each rig in turn and runs all three, and the emulator alone at each API version.
//!
//! - `emulator`: `porthole-emulator` configured like the rig (same sessions, ids, keys, users,
//!   apps), in API mode and in session mode, at the API version `PORTHOLE_CONFORMANCE_API`
//!   (default: the rig's). Its apps are backed by the rig's real services when the rig
//!   targets run (or `PORTHOLE_CONFORMANCE_RIG=1`), else by stand-ins.
//! - `manager` / `webserver`: each scenario runs against the real server AND, at the same time,
//!   against an emulator configured like the rig with the same fault, backed by the same real
//!   services. Every scenario records what a client observes (HTTP status, problem type and
//!   title, `msg`/`data`, close codes, bytes, Porthole's own output); the test fails where the
//!   real server and the emulator differ. Known 23.09 bugs that the emulator deliberately
//!   models differently are asserted per target and named in the scenario.
//!
//! When `PORTHOLE_CONFORMANCE_REPORT` names a directory, each scenario writes its outcome
//! per target there (`SCENARIO.TARGET`), for the table scripts/test-conformance.sh prints.

#[path = "conformance/raw.rs"]
mod raw;
#[path = "conformance/rig.rs"]
mod rig;
#[path = "conformance/scenarios/mod.rs"]
mod scenarios;
#[path = "conformance/target.rs"]
mod target;

use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use target::{Backends, Column, Fault, Target};

/// What a client observed, in order: `(probe, observation)`.
#[derive(Debug, Default, Clone)]
pub struct Obs(Vec<(String, String)>);

impl Obs {
    pub fn add(&mut self, probe: impl Into<String>, observed: impl Into<String>) {
        self.0.push((probe.into(), observed.into()));
    }
}

/// A scenario: runs against one target, asserts what Porthole must do there, and returns
/// the observations to compare.
pub type ScenarioFn = for<'a> fn(&'a Target) -> BoxFuture<'a, Obs>;

/// How a scenario is run.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    /// Runs in API mode (emulator-api, manager).
    pub api: bool,
    /// Runs in session mode (emulator-session, webserver).
    pub session: bool,
    /// The fault the rig (and the emulator twin) is in while the scenario runs.
    pub fault: Fault,
    /// Needs the rig to itself (it stops services or locks the rig user).
    pub exclusive: bool,
}

impl Spec {
    pub const fn both(name: &'static str) -> Spec {
        Spec {
            name,
            api: true,
            session: true,
            fault: Fault::None,
            exclusive: false,
        }
    }

    pub const fn api_only(self) -> Spec {
        Spec {
            session: false,
            ..self
        }
    }

    pub const fn session_only(self) -> Spec {
        Spec { api: false, ..self }
    }

    pub const fn fault(self, fault: Fault) -> Spec {
        Spec {
            fault,
            exclusive: true,
            ..self
        }
    }

    pub const fn exclusive(self) -> Spec {
        Spec {
            exclusive: true,
            ..self
        }
    }
}

/// Which targets run.
struct Enabled {
    emulator: bool,
    manager: bool,
    webserver: bool,
    rig_backends: bool,
}

impl Enabled {
    fn from_env() -> Enabled {
        let list =
            std::env::var("PORTHOLE_CONFORMANCE_TARGETS").unwrap_or_else(|_| "emulator".into());
        let mut e = Enabled {
            emulator: false,
            manager: false,
            webserver: false,
            rig_backends: std::env::var("PORTHOLE_CONFORMANCE_RIG").is_ok_and(|v| v == "1"),
        };
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "emulator" => e.emulator = true,
                "manager" => e.manager = true,
                "webserver" => e.webserver = true,
                "all" => (e.emulator, e.manager, e.webserver) = (true, true, true),
                other => panic!(
                    "PORTHOLE_CONFORMANCE_TARGETS: unknown target {other:?} (emulator, manager, webserver, all)"
                ),
            }
        }
        e.rig_backends |= e.manager || e.webserver;
        e
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panicked".into())
}

fn report_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("PORTHOLE_CONFORMANCE_REPORT")
        .filter(|d| !d.is_empty())
        .map(Into::into)
}

/// Records an outcome for the report table.
fn report(scenario: &str, column: Column, outcome: &str) {
    let line = outcome.lines().next().unwrap_or_default();
    eprintln!("conformance: {scenario} on {}: {line}", column.label());
    if let Some(dir) = report_dir() {
        let path = dir.join(format!("{scenario}.{}", column.label()));
        let _ = std::fs::write(path, format!("{line}\n"));
    }
}

/// Saves what a target observed (`SCENARIO.TARGET.obs` in the report directory).
fn save_observations(scenario: &str, column: Column, obs: &Obs) {
    if let Some(dir) = report_dir() {
        let mut text = String::new();
        for (probe, seen) in &obs.0 {
            let _ = writeln!(text, "{probe}\n    {seen}");
        }
        let _ = std::fs::write(dir.join(format!("{scenario}.{}.obs", column.label())), text);
    }
}

/// The probes whose observations differ, one line each.
fn diff(real: &Obs, emulated: &Obs) -> Vec<String> {
    let mut lines = Vec::new();
    let mut keys: Vec<&String> = real.0.iter().map(|(k, _)| k).collect();
    for (k, _) in &emulated.0 {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for key in keys {
        let r = real.0.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let e = emulated.0.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        if r != e {
            lines.push(format!(
                "  {key}\n      real:     {}\n      emulator: {}",
                r.map_or("(not observed)", String::as_str),
                e.map_or("(not observed)", String::as_str)
            ));
        }
    }
    lines
}

enum RigGuard {
    Shared(#[allow(dead_code)] tokio::sync::RwLockReadGuard<'static, ()>),
    Exclusive(#[allow(dead_code)] tokio::sync::RwLockWriteGuard<'static, ()>),
}

async fn lock_rig(spec: &Spec) -> RigGuard {
    if spec.exclusive {
        RigGuard::Exclusive(rig::RIG_LOCK.write().await)
    } else {
        RigGuard::Shared(rig::RIG_LOCK.read().await)
    }
}

async fn apply_rig_fault(fault: Fault) -> Option<rig::RigFault> {
    match fault {
        Fault::None => None,
        Fault::StartFailure(app) => Some(rig::RigFault::start_failure(app)),
        Fault::RefusedPort(app) => Some(rig::RigFault::refused_port(app).await),
    }
}

/// Runs `f` on every enabled target of `spec`, diffs real servers against the emulator,
/// reports, and fails the test if anything failed.
pub async fn run(spec: Spec, f: ScenarioFn) {
    let enabled = Enabled::from_env();
    let mut failures: Vec<String> = Vec::new();
    for session in [false, true] {
        let (emu_col, real_col) = if session {
            (Column::EmulatorSession, Column::WebServer)
        } else {
            (Column::EmulatorApi, Column::Manager)
        };
        if !(if session { spec.session } else { spec.api }) {
            let why = format!(
                "n/a ({} mode only)",
                if session { "API" } else { "session" }
            );
            report(spec.name, emu_col, &why);
            report(spec.name, real_col, &why);
            continue;
        }
        let real_enabled = if session {
            enabled.webserver
        } else {
            enabled.manager
        };
        if real_enabled {
            // Lock first: an exclusive scenario may have a rig service down right now.
            let _guard = lock_rig(&spec).await;
            rig::require_up().await;
            let backends = Backends::rig();
            let twin = Target::emulator(
                emu_col,
                backends.clone(),
                &rig::rig().api_version,
                spec.fault,
            )
            .await;
            let real = Target::real(real_col, backends);
            let fault = apply_rig_fault(spec.fault).await;
            let started = std::time::Instant::now();
            let (r, e) = futures_util::future::join(
                AssertUnwindSafe(f(&real)).catch_unwind(),
                AssertUnwindSafe(f(&twin)).catch_unwind(),
            )
            .await;
            let secs = started.elapsed().as_secs_f64();
            if let Some(fault) = fault {
                fault.restore().await;
            }
            for (col, result) in [(real_col, &r), (emu_col, &e)] {
                if let Ok(obs) = result {
                    save_observations(spec.name, col, obs);
                }
            }
            match &e {
                Ok(_) => report(spec.name, emu_col, "PASS"),
                Err(p) => {
                    let text = panic_text(p.as_ref());
                    report(spec.name, emu_col, &format!("FAIL: {text}"));
                    failures.push(format!("{}: {text}", emu_col.label()));
                }
            }
            match (&r, &e) {
                (Err(p), _) => {
                    let text = panic_text(p.as_ref());
                    report(spec.name, real_col, &format!("FAIL: {text}"));
                    failures.push(format!("{}: {text}", real_col.label()));
                }
                (Ok(_), Err(_)) => report(
                    spec.name,
                    real_col,
                    "PASS (no differential: the emulator run failed)",
                ),
                (Ok(real_obs), Ok(emu_obs)) => {
                    let lines = diff(real_obs, emu_obs);
                    if lines.is_empty() {
                        report(
                            spec.name,
                            real_col,
                            &format!(
                                "PASS (= emulator on {} probes; {secs:.1} s)",
                                real_obs.0.len()
                            ),
                        );
                    } else {
                        let mut text = format!(
                            "the emulator differs from the real {} on {} of {} probes:\n",
                            real_col.label(),
                            lines.len(),
                            real_obs.0.len()
                        );
                        for l in &lines {
                            let _ = writeln!(text, "{l}");
                        }
                        report(
                            spec.name,
                            real_col,
                            &format!("FAIL: emulator differs on {} probes", lines.len()),
                        );
                        failures.push(text);
                    }
                }
            }
        } else if enabled.emulator {
            let _guard = if enabled.rig_backends {
                Some(lock_rig(&spec).await)
            } else {
                None
            };
            let backends = if enabled.rig_backends {
                rig::require_up().await;
                Backends::rig()
            } else {
                Backends::standalone().await
            };
            let api = std::env::var("PORTHOLE_CONFORMANCE_API")
                .unwrap_or_else(|_| rig::rig().api_version.clone());
            let t = Target::emulator(emu_col, backends, &api, spec.fault).await;
            let started = std::time::Instant::now();
            match AssertUnwindSafe(f(&t)).catch_unwind().await {
                Ok(obs) => {
                    save_observations(spec.name, emu_col, &obs);
                    let secs = started.elapsed().as_secs_f64();
                    report(spec.name, emu_col, &format!("PASS ({secs:.1} s)"));
                }
                Err(p) => {
                    let text = panic_text(p.as_ref());
                    report(spec.name, emu_col, &format!("FAIL: {text}"));
                    failures.push(format!("{}: {text}", emu_col.label()));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "scenario {} failed:\n{}",
        spec.name,
        failures.join("\n")
    );
}

macro_rules! scenarios {
    ($($name:ident => $spec:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                run($spec, scenarios::$name).await
            }
        )*
    };
}

scenarios! {
    listing => Spec::both("listing");
    tunnels => Spec::both("tunnels");
    ssh => Spec::both("ssh");
    jupyter => Spec::both("jupyter");
    not_found => Spec::both("not_found");
    start_failure => Spec::both("start_failure").fault(Fault::StartFailure("jupyter"));
    refused_port => Spec::both("refused_port").fault(Fault::RefusedPort("echo"));
    bad_params => Spec::both("bad_params");
    credentials => Spec::both("credentials");
    skewed_clock => Spec::both("skewed_clock");
    too_many_logins => Spec::both("too_many_logins").session_only().exclusive();
    manager_down => Spec::both("manager_down").exclusive();
    oversized_frame => Spec::both("oversized_frame");
    official_client => Spec::both("official_client");
    protocols => Spec::both("protocols");
    expired_password => Spec::both("expired_password").session_only();
    through_a_proxy => Spec::both("through_a_proxy");
}
