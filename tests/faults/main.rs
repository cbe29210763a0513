//! Fault tests of the tunnel engine: the engine runs in this process (porthole-core), the
//! manager is a real `porthole-emulator` process on a fixed loopback port (so it can be
//! killed, frozen with SIGSTOP and restarted on the same port), and the apps behind it are
//! servers written here. Faults on the network path go through [`FaultProxy`].
//!
//! The tests take turns (one lock for the file): they measure this process's memory, file
//! descriptors and tasks, which a test running beside them would disturb.
//!
//! `PORTHOLE_TEST_EMULATOR_LOG=info` shows the emulator's log (default: warnings only).
//!
//! This file holds what the tests share (the manager process, the engine, the apps, this
//! process's resources); each kind of fault has its own file.

mod burst;
mod fault_proxy;
mod integrity;
mod manager_frozen;
mod manager_killed;
mod network;
mod session_end;
mod slow_reader;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use porthole_core::api::{BackendClient, ClientOptions, Credentials, Endpoint};
use porthole_core::tunnel::{
    RelayOptions, Tunnel, TunnelOptions, TunnelState, TunnelStatus, TunnelTarget,
};
use porthole_e2e::faultproxy::FaultProxy;
use porthole_e2e::{
    bin, emulator_config, free_port, proc_status_field, read_line_until, Mode, Service, Session,
    ACCESS_KEY, SECRET_KEY,
};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// One test at a time: see the module doc.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The session every test tunnels into.
const SESSION: &str = "s1";
/// The ping interval of the tests that need dead links found quickly.
const PING: Duration = Duration::from_secs(1);

/// A `porthole-emulator --control` process on a fixed loopback port.
struct Manager {
    port: u16,
    config: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

async fn spawn_manager(config: &Path, port: u16) -> Child {
    let log = std::env::var("PORTHOLE_TEST_EMULATOR_LOG").unwrap_or_else(|_| "warn".into());
    let mut child = Command::new(bin("porthole-emulator"))
        .arg("--config")
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--control"])
        .env("RUST_LOG", log)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn porthole-emulator");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    read_line_until(&mut out, 20, "porthole-emulator", |l| {
        l.starts_with("listening on ")
    })
    .await;
    child
}

impl Manager {
    /// Starts the emulator with one running session, [`SESSION`], offering `services`.
    async fn start(services: Vec<Service>) -> Manager {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("emulator.toml");
        let session = Session {
            name: SESSION.into(),
            status: "RUNNING".into(),
            services,
            ssh_key: None,
        };
        std::fs::write(&config, emulator_config(Mode::ApiV8, &[session], "")).expect("config");
        let port = free_port();
        let child = spawn_manager(&config, port).await;
        Manager {
            port,
            config,
            child,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = self.child.id().expect("the emulator is running");
        // SAFETY: kill(2) with the pid of a child we own and a valid signal number.
        let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }

    /// SIGKILLs the emulator and reaps it.
    async fn kill(&mut self) {
        self.child.start_kill().expect("SIGKILL the emulator");
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("the emulator dies within 10 s of SIGKILL")
            .expect("wait");
    }

    /// Starts the emulator again, on the same port with the same config.
    async fn restart(&mut self) {
        self.child = spawn_manager(&self.config, self.port).await;
    }

    /// Sets the session's status through the control API.
    async fn set_session_status(&self, status: &str) {
        let reply = reqwest::Client::new()
            .post(format!(
                "{}/_emulator/sessions/{SESSION}/status",
                self.url()
            ))
            .json(&serde_json::json!({ "status": status, "status_info": "user-requested" }))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("control API");
        assert!(reply.status().is_success(), "control API: {reply:?}");
    }
}

fn options(ping_interval: Duration) -> TunnelOptions {
    TunnelOptions {
        relay: RelayOptions {
            ping_interval,
            ..RelayOptions::default()
        },
        ..TunnelOptions::default()
    }
}

/// Signs in at `endpoint` and opens a tunnel to `app` of [`SESSION`] on a free port.
async fn open_tunnel(endpoint: &str, app: &str, options: TunnelOptions) -> Tunnel {
    let endpoint = Endpoint::parse(endpoint).expect("endpoint");
    let credentials = Credentials::Keypair {
        access_key: ACCESS_KEY.into(),
        secret_key: SECRET_KEY.into(),
    };
    let client = BackendClient::connect(&endpoint, &credentials, &ClientOptions::default())
        .await
        .expect("sign in");
    let session = client.find_session(SESSION).await.expect("session");
    let app = session.app(app).expect("app").clone();
    let target = TunnelTarget {
        client,
        session,
        app,
        launch: Default::default(),
    };
    Tunnel::start(
        target,
        "127.0.0.1:0".parse().unwrap(),
        options,
        &CancellationToken::new(),
    )
    .await
    .expect("tunnel starts")
}

/// Waits (at most `secs`) for a status that satisfies `want`.
async fn wait_status(
    status: &mut watch::Receiver<TunnelStatus>,
    secs: u64,
    what: &str,
    want: impl Fn(&TunnelStatus) -> bool,
) -> TunnelStatus {
    let waited = tokio::time::timeout(Duration::from_secs(secs), status.wait_for(|s| want(s)))
        .await
        .map(|r| r.map(|s| s.clone()));
    match waited {
        Ok(Ok(s)) => s,
        _ => panic!(
            "{what}: not within {secs} s; last status {:?}",
            *status.borrow()
        ),
    }
}

/// Runs `test` with an upper bound, so a hang fails instead of blocking the run, and
/// prints how long it took (after waiting for its turn).
async fn bounded<F: Future>(secs: u64, test: F) -> F::Output {
    let started = Instant::now();
    let output = tokio::time::timeout(Duration::from_secs(secs), test)
        .await
        .unwrap_or_else(|_| panic!("the test did not finish within {secs} s"));
    let thread = std::thread::current();
    eprintln!(
        "{}: {:.1} s",
        thread.name().unwrap_or("test"),
        started.elapsed().as_secs_f64()
    );
    output
}

/// Waits until `socket` ends (EOF or an error), at most `limit`.
async fn closed_within<R: AsyncRead + Unpin>(socket: &mut R, limit: Duration, what: &str) {
    let mut sink = vec![0u8; 64 * 1024];
    let drained = tokio::time::timeout(limit, async {
        loop {
            match socket.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "{what}: still open after {limit:?}");
}

/// One echo round trip through `addr`.
async fn echo_once(addr: SocketAddr, message: &[u8]) -> Result<(), String> {
    let mut socket = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    socket
        .write_all(message)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut back = vec![0u8; message.len()];
    tokio::time::timeout(Duration::from_secs(10), socket.read_exact(&mut back))
        .await
        .map_err(|_| "no echo within 10 s".to_owned())?
        .map_err(|e| format!("read: {e}"))?;
    if back != message {
        return Err("the echo differs".into());
    }
    Ok(())
}

/// An echoed connection kept open: one round trip done, so the relay is established.
async fn idle_connection(addr: SocketAddr) -> TcpStream {
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    socket.write_all(b"hello").await.expect("write");
    let mut back = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(10), socket.read_exact(&mut back))
        .await
        .expect("echo within 10 s")
        .expect("echo");
    assert_eq!(&back, b"hello");
    socket
}

/// A connection that uploads as fast as the tunnel takes it (the echo comes back and is
/// read and dropped), until it breaks. `moved` counts the bytes read back.
struct BusyConnection {
    moved: watch::Receiver<u64>,
    ended: tokio::sync::oneshot::Receiver<Instant>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl BusyConnection {
    async fn start(addr: SocketAddr) -> BusyConnection {
        let socket = TcpStream::connect(addr).await.expect("connect");
        let (mut rd, mut wr) = socket.into_split();
        let (counter, moved) = watch::channel(0u64);
        let (ended_tx, ended) = tokio::sync::oneshot::channel();
        let writer = tokio::spawn(async move {
            let block = vec![0x5au8; 64 * 1024];
            while wr.write_all(&block).await.is_ok() {}
        });
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => counter.send_modify(|moved| *moved += n as u64),
                }
            }
            let _ = ended_tx.send(Instant::now());
        });
        BusyConnection {
            moved,
            ended,
            tasks: vec![writer, reader],
        }
    }

    /// Waits until at least `bytes` came back.
    async fn wait_moved(&mut self, bytes: u64) {
        let limit = Duration::from_secs(30);
        let moved = matches!(
            tokio::time::timeout(limit, self.moved.wait_for(|m| *m >= bytes)).await,
            Ok(Ok(_))
        );
        assert!(
            moved,
            "the busy connection moved only {} bytes",
            *self.moved.borrow()
        );
    }

    /// Waits (at most `limit`) for the local connection to end; when it ended.
    async fn ended_within(&mut self, limit: Duration, what: &str) -> Instant {
        match tokio::time::timeout(limit, &mut self.ended).await {
            Ok(Ok(at)) => at,
            _ => panic!("{what}: the busy local connection is still open after {limit:?}"),
        }
    }
}

impl Drop for BusyConnection {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn serve(handler: impl Fn(TcpStream) + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind app");
    let addr = listener.local_addr().expect("app addr");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            handler(socket);
        }
    });
    addr
}

/// Echoes every byte back.
async fn echo_app() -> SocketAddr {
    serve(|mut socket| {
        tokio::spawn(async move {
            let (mut r, mut w) = socket.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        });
    })
    .await
}

/// The emulator as a separate process, serving [`SESSION`] with one `echo` app.
async fn echo_manager() -> Manager {
    let app = echo_app().await;
    Manager::start(vec![Service::new("echo", "tcp", &app.to_string())]).await
}

/// After a fault has cleared: a new connection echoes `probe` and the tunnel settles back
/// to listening with nothing open.
async fn recovers(
    addr: SocketAddr,
    status: &mut watch::Receiver<TunnelStatus>,
    probe: &[u8],
    what: &str,
) {
    echo_once(addr, probe).await.expect(what);
    wait_status(status, 5, "recovered", |s| {
        s.state == TunnelState::Listening && s.active_connections == 0
    })
    .await;
}

/// Header of the source/sink app: upload length, download length, seed, and whether the
/// download starts only after the whole upload was read.
const HEADER: usize = 25;
/// SHA-256 of the upload as received, then of the download as sent.
const TRAILER: usize = 64;
/// Chunk size of the generators.
const CHUNK: usize = 64 * 1024;

/// SHA-256 as data streams past. ring's is assembly, fast even in a debug build (the
/// `sha2` crate unoptimised hashes about 30 MiB/s, which would make the 1 GiB test
/// several minutes long).
struct Sha256(ring::digest::Context);

impl Sha256 {
    fn new() -> Sha256 {
        Sha256(ring::digest::Context::new(&ring::digest::SHA256))
    }

    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finalize(self) -> [u8; 32] {
        self.0
            .finish()
            .as_ref()
            .try_into()
            .expect("SHA-256 is 32 bytes")
    }
}

/// Fills `buf` from `rng` and hashes it.
fn generate(rng: &mut SmallRng, hasher: &mut Sha256, buf: &mut [u8]) {
    rng.fill_bytes(buf);
    hasher.update(buf);
}

/// Reads exactly `len` bytes, hashing them.
async fn sink<R: AsyncRead + Unpin>(rd: &mut R, len: u64) -> std::io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = rd.read(&mut buf[..want]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hasher.finalize())
}

/// Writes `len` bytes from a generator seeded with `seed`, hashing them.
async fn source<W: AsyncWrite + Unpin>(
    wr: &mut W,
    len: u64,
    seed: u64,
) -> std::io::Result<[u8; 32]> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let n = CHUNK.min(left as usize);
        generate(&mut rng, &mut hasher, &mut buf[..n]);
        wr.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    Ok(hasher.finalize())
}

/// The source/sink app: reads the header, then takes the upload and sends the download
/// (at once, or after the upload), then a trailer with both hashes, then closes.
async fn source_sink_app() -> SocketAddr {
    serve(|mut socket| {
        tokio::spawn(async move {
            let mut header = [0u8; HEADER];
            if socket.read_exact(&mut header).await.is_err() {
                return;
            }
            let up = u64::from_le_bytes(header[0..8].try_into().unwrap());
            let down = u64::from_le_bytes(header[8..16].try_into().unwrap());
            let seed = u64::from_le_bytes(header[16..24].try_into().unwrap());
            let after_upload = header[24] == 1;
            let (mut rd, mut wr) = socket.split();
            let hashes = if after_upload {
                match sink(&mut rd, up).await {
                    Ok(up_hash) => source(&mut wr, down, seed).await.map(|d| (up_hash, d)),
                    Err(e) => Err(e),
                }
            } else {
                let (u, d) = tokio::join!(sink(&mut rd, up), source(&mut wr, down, seed));
                u.and_then(|u| d.map(|d| (u, d)))
            };
            if let Ok((up_hash, down_hash)) = hashes {
                let _ = wr.write_all(&up_hash).await;
                let _ = wr.write_all(&down_hash).await;
            }
            // Dropping the socket closes it: the manager ends the WebSocket (1001).
        });
    })
    .await
}

/// What one source/sink exchange saw.
#[derive(Debug)]
struct Exchange {
    up_sent: [u8; 32],
    up_received: [u8; 32],
    down_sent: [u8; 32],
    down_received: [u8; 32],
    down_len: u64,
}

/// Uploads `up` bytes and downloads `down` bytes through `addr`, concurrently, hashing
/// both ends. With `half_close`, the client sends all, shuts its write side down, and
/// only then does the app start sending.
async fn exchange(
    addr: SocketAddr,
    up: u64,
    down: u64,
    seed: u64,
    half_close: bool,
) -> Result<Exchange, String> {
    let socket = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut rd, mut wr) = socket.into_split();
    let writer = async move {
        let mut header = [0u8; HEADER];
        header[0..8].copy_from_slice(&up.to_le_bytes());
        header[8..16].copy_from_slice(&down.to_le_bytes());
        header[16..24].copy_from_slice(&(seed ^ 0xd0d0).to_le_bytes());
        header[24] = u8::from(half_close);
        wr.write_all(&header).await?;
        let hash = source(&mut wr, up, seed).await?;
        if half_close {
            wr.shutdown().await?;
        }
        // Without a half-close the write side stays open until the reader is done.
        Ok::<_, std::io::Error>((hash, wr))
    };
    let reader = async move {
        let down_received = sink(&mut rd, down).await?;
        let mut trailer = [0u8; TRAILER];
        rd.read_exact(&mut trailer).await?;
        let mut extra = Vec::new();
        rd.read_to_end(&mut extra).await?;
        Ok::<_, std::io::Error>((down_received, trailer, extra.len()))
    };
    let (written, read) = tokio::join!(writer, reader);
    let (up_sent, _wr) = written.map_err(|e| format!("upload: {e}"))?;
    let (down_received, trailer, extra) = read.map_err(|e| format!("download: {e}"))?;
    if extra != 0 {
        return Err(format!("{extra} bytes after the trailer"));
    }
    Ok(Exchange {
        up_sent,
        up_received: trailer[..32].try_into().unwrap(),
        down_sent: trailer[32..].try_into().unwrap(),
        down_received,
        down_len: down,
    })
}

/// The firehose app: a client sends one tag byte, then the app writes to it without end,
/// counting the bytes each tag's connection has taken.
#[derive(Clone, Default)]
struct Firehose {
    written: Arc<Mutex<HashMap<u8, Arc<AtomicU64>>>>,
}

impl Firehose {
    async fn start(&self) -> SocketAddr {
        let written = self.written.clone();
        serve(move |mut socket| {
            let written = written.clone();
            tokio::spawn(async move {
                let mut tag = [0u8; 1];
                if socket.read_exact(&mut tag).await.is_err() {
                    return;
                }
                let counter = Arc::new(AtomicU64::new(0));
                written
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(tag[0], counter.clone());
                let block = vec![0xa5u8; 256 * 1024];
                loop {
                    match socket.write(&block).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            counter.fetch_add(n as u64, Ordering::Relaxed);
                        }
                    }
                }
            });
        })
        .await
    }

    /// Bytes the app has written to the connection tagged `tag` (0 until it connected).
    fn written(&self, tag: u8) -> u64 {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tag)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// Downloads `len` bytes from the firehose through `addr` as connection `tag`; the rate.
async fn firehose_download(addr: SocketAddr, tag: u8, len: u64) -> f64 {
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    socket.write_all(&[tag]).await.expect("tag");
    let started = Instant::now();
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = socket.read(&mut buf[..want]).await.expect("download");
        assert!(n > 0, "the firehose ended early");
        left -= n as u64;
    }
    len as f64 / started.elapsed().as_secs_f64()
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    proc_status_field("self", "VmRSS")
        .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Tasks alive in this test's runtime.
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

const MIB: u64 = 1024 * 1024;

/// Busy connections through `addr`, each with data flowing both ways.
async fn busy_connections(addr: SocketAddr, n: usize) -> Vec<BusyConnection> {
    let mut busy = Vec::new();
    for _ in 0..n {
        busy.push(BusyConnection::start(addr).await);
    }
    for b in &mut busy {
        b.wait_moved(4 * MIB).await;
    }
    busy
}

/// Asserts that every busy connection ends within 1 s of `since`.
async fn all_end_within_a_second(busy: &mut [BusyConnection], since: Instant, what: &str) {
    for (i, b) in busy.iter_mut().enumerate() {
        let left = Duration::from_secs(1).saturating_sub(since.elapsed());
        let at = b
            .ended_within(left, &format!("{what}: connection {i}"))
            .await;
        eprintln!("{what}: connection {i} closed after {:?}", at - since);
    }
}
