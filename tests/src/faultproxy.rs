//! A TCP proxy with switchable faults, put between Porthole and the emulator to model a
//! network path that stalls, drops or refuses connections, on real loopback sockets.
//!
//! Every accepted connection is relayed to one upstream address, byte for byte, with
//! half-closes passed on. The proxy's [`Fault`] mode applies to every connection at once
//! and can be changed at any time:
//!
//! - [`Fault::Pass`]: relay normally.
//! - [`Fault::Blackhole`]: stop moving bytes in both directions without closing anything,
//!   like a cut cable. Bytes already read are held, not dropped; new connections are
//!   accepted but not connected upstream. Back in `Pass`, everything resumes where it
//!   stopped, as TCP would after the path comes back.
//! - [`Fault::Refuse`]: new connections are reset at once; open ones keep relaying.
//!
//! [`FaultProxy::reset_all`] resets (RST, not FIN) every connection open at the time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Relay normally.
    Pass,
    /// Move no bytes and connect nothing, but close nothing either.
    Blackhole,
    /// Reset new connections as soon as they are accepted.
    Refuse,
}

/// Counters of one proxy.
#[derive(Debug, Default)]
struct Stats {
    accepted: AtomicU64,
    refused: AtomicU64,
    open: AtomicUsize,
}

/// A running fault proxy; dropping it stops accepting and resets its connections.
pub struct FaultProxy {
    addr: SocketAddr,
    mode: watch::Sender<Fault>,
    resets: watch::Sender<u64>,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and relays to `upstream`, in [`Fault::Pass`] mode.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fault proxy");
        let addr = listener.local_addr().expect("fault proxy address");
        let (mode, _) = watch::channel(Fault::Pass);
        let (resets, _) = watch::channel(0u64);
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn(accept_loop(
            listener,
            upstream,
            mode.clone(),
            resets.clone(),
            stats.clone(),
        ));
        FaultProxy {
            addr,
            mode,
            resets,
            stats,
            task,
        }
    }

    /// The address clients connect to instead of the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the endpoint URL to give a client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches every connection, open and future, to `fault`.
    pub fn set(&self, fault: Fault) {
        self.mode.send_replace(fault);
    }

    /// Relays normally again.
    pub fn pass(&self) {
        self.set(Fault::Pass);
    }

    /// Stops moving bytes without closing anything.
    pub fn blackhole(&self) {
        self.set(Fault::Blackhole);
    }

    /// Resets new connections; open ones keep relaying.
    pub fn refuse(&self) {
        self.set(Fault::Refuse);
    }

    /// The current mode.
    pub fn mode(&self) -> Fault {
        *self.mode.borrow()
    }

    /// Resets (RST) every connection open now, on both of its sides.
    pub fn reset_all(&self) {
        self.resets.send_modify(|generation| *generation += 1);
    }

    /// Connections relayed (or waiting to be) right now.
    pub fn open_connections(&self) -> usize {
        self.stats.open.load(Ordering::SeqCst)
    }

    /// Connections accepted since the start, refused ones included.
    pub fn accepted(&self) -> u64 {
        self.stats.accepted.load(Ordering::SeqCst)
    }

    /// Connections reset at accept time because the proxy was refusing.
    pub fn refused(&self) -> u64 {
        self.stats.refused.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.reset_all();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    mode: watch::Sender<Fault>,
    resets: watch::Sender<u64>,
    stats: Arc<Stats>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        stats.accepted.fetch_add(1, Ordering::SeqCst);
        if *mode.borrow() == Fault::Refuse {
            stats.refused.fetch_add(1, Ordering::SeqCst);
            reset(client);
            continue;
        }
        let _ = client.set_nodelay(true);
        stats.open.fetch_add(1, Ordering::SeqCst);
        let mode = mode.subscribe();
        let mut resets = resets.subscribe();
        // Only resets from now on count for this connection.
        resets.mark_unchanged();
        let stats = stats.clone();
        tokio::spawn(async move {
            serve(client, upstream, mode, resets).await;
            stats.open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Closes `socket` with a RST instead of a FIN.
fn reset(socket: TcpStream) {
    let _ = socket.set_zero_linger();
    drop(socket);
}

/// Waits until the mode lets bytes move (anything but a blackhole).
async fn flowing(mode: &mut watch::Receiver<Fault>) {
    let _ = mode.wait_for(|m| *m != Fault::Blackhole).await;
}

async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    mode: watch::Receiver<Fault>,
    mut resets: watch::Receiver<u64>,
) {
    let connect = async {
        let mut mode = mode.clone();
        flowing(&mut mode).await;
        TcpStream::connect(upstream).await
    };
    let mut server = tokio::select! {
        connected = connect => match connected {
            Ok(server) => server,
            Err(_) => return reset(client),
        },
        _ = resets.changed() => return reset(client),
    };
    let _ = server.set_nodelay(true);
    let reset_now = {
        let (client_rd, client_wr) = client.split();
        let (server_rd, server_wr) = server.split();
        let up = pump(client_rd, server_wr, mode.clone());
        let down = pump(server_rd, client_wr, mode.clone());
        tokio::select! {
            _ = async { tokio::join!(up, down) } => false,
            _ = resets.changed() => true,
        }
    };
    if reset_now {
        reset(client);
        reset(server);
    }
}

/// Copies `from` to `to`, holding bytes while the path is blackholed, and passes the end
/// of the stream on as a half-close.
async fn pump(
    mut from: tokio::net::tcp::ReadHalf<'_>,
    mut to: tokio::net::tcp::WriteHalf<'_>,
    mut mode: watch::Receiver<Fault>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        flowing(&mut mode).await;
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // A blackhole that started during the read holds these bytes too.
        flowing(&mut mode).await;
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
