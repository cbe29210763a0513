//! The ways a client can reach a target: directly, or through a local listener that
//! tunnels over WebSockets (Porthole, the official client, websocat).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::servers::{free_port, start_listening, Targets};

/// The apps of the benchmark session, one per scenario's target.
pub const APPS: [&str; 4] = ["iperf", "sockperf", "web", "echo"];

/// Emulator keys for the signed contenders.
pub const ACCESS_KEY: &str = "AKIABENCHMARK0000001";
const SECRET_KEY: &str = "bench-secret-key";
const SESSION: &str = "bench";

/// Which client carries the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// No tunnel: loopback TCP to the target.
    Direct,
    /// `porthole open` (release build) through the emulator.
    Porthole,
    /// `backend.ai app` (PyPI backend.ai-client 23.9.10) through the emulator.
    Official,
    /// websocat as the client, through the emulator (unsigned; bench-only emulator).
    Websocat,
    /// websocat client + websocat server, no emulator: a reference WS tunnel.
    WebsocatPair,
    /// Two socat processes in a row, plain TCP, no WebSocket: what two user-space hops
    /// (a tunnel client and a relay) cost with no framing at all, the floor for any
    /// client-plus-relay path.
    SocatPair,
}

impl Kind {
    /// Column name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Porthole => "porthole",
            Kind::Official => "official",
            Kind::Websocat => "websocat",
            Kind::WebsocatPair => "websocat-pair",
            Kind::SocatPair => "socat-pair",
        }
    }
}

/// Where things are on disk.
pub struct Tools {
    /// `target/release`.
    pub release: PathBuf,
    /// The official client's executable.
    pub official: PathBuf,
    /// websocat's executable.
    pub websocat: PathBuf,
}

/// One contender with a local address per app.
pub struct Contender {
    /// Which one.
    pub kind: Kind,
    /// Local address per app.
    pub addrs: BTreeMap<&'static str, SocketAddr>,
    /// Processes carrying the bytes per app (for CPU and memory readings).
    pub pids: BTreeMap<&'static str, u32>,
    children: Vec<Child>,
}

/// Both emulators of a run: a signed one and an unsigned one for websocat.
pub struct Emulators {
    /// URL of the signed emulator.
    pub signed: String,
    /// URL of the unsigned (skip_auth) emulator.
    pub unsigned: String,
    /// Process ids of the signed and the unsigned emulator.
    pub pids: (u32, u32),
    _children: Vec<Child>,
    _dir: tempfile::TempDir,
}

fn config(targets: &Targets, skip_auth: bool) -> String {
    let mut toml = format!(
        "api_version = \"v8.20240915\"\nskip_auth = {skip_auth}\n[[keypairs]]\naccess_key = \"{ACCESS_KEY}\"\nsecret_key = \"{SECRET_KEY}\"\n\
         [[sessions]]\nname = \"{SESSION}\"\nstatus = \"RUNNING\"\n"
    );
    for (i, (app, target)) in APPS
        .iter()
        .zip([targets.iperf, targets.sockperf, targets.http, targets.echo])
        .enumerate()
    {
        let protocol = if *app == "web" { "http" } else { "tcp" };
        toml.push_str(&format!(
            "[[sessions.services]]\nname = \"{app}\"\nprotocol = \"{protocol}\"\ncontainer_ports = [{}]\ntarget = \"{target}\"\n",
            9000 + i
        ));
    }
    toml
}

async fn start_emulator(bin: &Path, config_path: &Path) -> Result<(String, Child)> {
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(config_path)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("porthole-emulator")?;
    let mut out = BufReader::new(child.stdout.take().context("stdout")?);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(20), out.read_line(&mut line)).await??;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .context("emulator ready line")?
        .to_owned();
    Ok((url, child))
}

impl Emulators {
    /// Starts both emulators.
    pub async fn start(tools: &Tools, targets: &Targets) -> Result<Emulators> {
        let dir = tempfile::tempdir()?;
        let bin = tools.release.join("porthole-emulator");
        let signed_cfg = dir.path().join("signed.toml");
        let unsigned_cfg = dir.path().join("unsigned.toml");
        std::fs::write(&signed_cfg, config(targets, false))?;
        std::fs::write(&unsigned_cfg, config(targets, true))?;
        let (signed, a) = start_emulator(&bin, &signed_cfg).await?;
        let (unsigned, b) = start_emulator(&bin, &unsigned_cfg).await?;
        let pids = (a.id().context("pid")?, b.id().context("pid")?);
        Ok(Emulators {
            signed,
            unsigned,
            pids,
            _children: vec![a, b],
            _dir: dir,
        })
    }
}

fn backend_env(cmd: &mut Command, url: &str) {
    cmd.env("BACKEND_ENDPOINT", url)
        .env("BACKEND_ENDPOINT_TYPE", "api")
        .env("BACKEND_ACCESS_KEY", ACCESS_KEY)
        .env("BACKEND_SECRET_KEY", SECRET_KEY);
}

impl Contender {
    /// Starts `kind` in front of every app.
    pub async fn start(
        kind: Kind,
        tools: &Tools,
        targets: &Targets,
        emulators: &Emulators,
    ) -> Result<Contender> {
        let mut contender = Contender {
            kind,
            addrs: BTreeMap::new(),
            pids: BTreeMap::new(),
            children: Vec::new(),
        };
        let direct = [targets.iperf, targets.sockperf, targets.http, targets.echo];
        for (app, target) in APPS.iter().zip(direct) {
            let addr = match kind {
                Kind::Direct => target,
                Kind::Porthole => contender.porthole(tools, emulators, app).await?,
                Kind::Official => contender.official(tools, emulators, app).await?,
                Kind::Websocat => {
                    let url = format!(
                        "{}/stream/session/{SESSION}/tcpproxy?app={app}",
                        emulators.unsigned.replacen("http://", "ws://", 1)
                    );
                    contender.websocat_client(tools, app, &url).await?
                }
                Kind::SocatPair => {
                    let relay = contender.socat(target).await?;
                    contender.socat(relay).await?
                }
                Kind::WebsocatPair => {
                    let ws_port = free_port()?;
                    let server = start_listening(
                        Command::new(&tools.websocat).args([
                            "--binary",
                            "-E",
                            &format!("ws-l:127.0.0.1:{ws_port}"),
                            &format!("tcp:{target}"),
                        ]),
                        ws_port,
                        "websocat server",
                        "scripts/bench.sh installs it",
                    )
                    .await?;
                    contender.children.push(server);
                    contender
                        .websocat_client(tools, app, &format!("ws://127.0.0.1:{ws_port}/"))
                        .await?
                }
            };
            contender.addrs.insert(app, addr);
        }
        Ok(contender)
    }

    async fn porthole(
        &mut self,
        tools: &Tools,
        emulators: &Emulators,
        app: &'static str,
    ) -> Result<SocketAddr> {
        let mut cmd = Command::new(tools.release.join("porthole"));
        cmd.args(["open", SESSION, app, "--json", "--no-launch"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        backend_env(&mut cmd, &emulators.signed);
        let mut child = cmd.spawn().context("porthole")?;
        let mut out = BufReader::new(child.stdout.take().context("stdout")?);
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(30), out.read_line(&mut line)).await??;
        let ready: serde_json::Value =
            serde_json::from_str(&line).context("porthole ready line")?;
        let addr: SocketAddr = ready["local_addr"]
            .as_str()
            .context("local_addr")?
            .parse()?;
        self.pids.insert(app, child.id().context("pid")?);
        self.children.push(child);
        Ok(addr)
    }

    async fn official(
        &mut self,
        tools: &Tools,
        emulators: &Emulators,
        app: &'static str,
    ) -> Result<SocketAddr> {
        let port = free_port()?;
        let home = std::env::temp_dir().join(format!("porthole-bench-home-{}", std::process::id()));
        std::fs::create_dir_all(&home)?;
        let mut cmd = Command::new(&tools.official);
        cmd.args(["app", SESSION, app, "-b", &format!("127.0.0.1:{port}")])
            .env("HOME", &home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        backend_env(&mut cmd, &emulators.signed);
        let mut child = cmd
            .spawn()
            .context("backend.ai app (run scripts/install-test-deps.sh)")?;
        let mut err = BufReader::new(child.stderr.take().context("stderr")?);
        let wanted = format!("127.0.0.1:{port}");
        let ready = async {
            let mut line = String::new();
            loop {
                line.clear();
                if err.read_line(&mut line).await? == 0 {
                    bail!("backend.ai app exited before listening");
                }
                if line.contains(&wanted) {
                    return Ok(());
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), ready).await??;
        // Keep draining its stderr so it never blocks on a full pipe.
        tokio::spawn(async move {
            let mut line = String::new();
            while err
                .read_line(&mut line)
                .await
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                line.clear();
            }
        });
        self.pids.insert(app, child.id().context("pid")?);
        self.children.push(child);
        Ok(([127, 0, 0, 1], port).into())
    }

    /// A socat forwarding a local port to `to` (a process per connection, as socat does);
    /// 256 KiB buffers, as Porthole and the emulator use.
    async fn socat(&mut self, to: SocketAddr) -> Result<SocketAddr> {
        let port = free_port()?;
        let child = start_listening(
            Command::new("socat").args([
                "-b",
                "262144",
                &format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"),
                &format!("TCP:{to}"),
            ]),
            port,
            "socat",
            "scripts/bench.sh installs it",
        )
        .await?;
        self.children.push(child);
        Ok(([127, 0, 0, 1], port).into())
    }

    async fn websocat_client(
        &mut self,
        tools: &Tools,
        app: &'static str,
        url: &str,
    ) -> Result<SocketAddr> {
        let port = free_port()?;
        let child = start_listening(
            Command::new(&tools.websocat).args([
                "--binary",
                "-E",
                // -H takes several values; the `=` form keeps it from eating the URL.
                "-H=X-BackendAI-Version: v8.20240915",
                &format!("tcp-l:127.0.0.1:{port}"),
                url,
            ]),
            port,
            "websocat",
            "scripts/bench.sh installs it",
        )
        .await?;
        self.pids.insert(app, child.id().context("pid")?);
        self.children.push(child);
        Ok(([127, 0, 0, 1], port).into())
    }
}
