//! Distance on one machine: a TCP proxy that delays every byte by a one-way latency (with
//! optional jitter) and caps the bandwidth, each way, so a cluster on loopback looks 20 or
//! 80 ms away (there is no `tc netem` here). Bytes keep their order: jitter only ever adds
//! to a byte's wait, never lets it overtake the one before.
//!
//! Each direction is a reader task and a writer task with a bounded queue between them:
//! what is in flight is what the reader took in but the writer may not write yet, like
//! bytes on a long wire. The queue is bounded in bytes, so a slow reader on the far side
//! pushes back to the sender through TCP, as on a real path.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;

/// What the path between client and server is like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathShape {
    /// One-way delay (the round trip is twice this).
    pub one_way: Duration,
    /// Up to this much more, at random, per chunk (never reordering).
    pub jitter: Duration,
    /// Bytes per second each way; `None` for no cap.
    pub bandwidth: Option<u64>,
}

impl PathShape {
    /// A path with this round-trip time, no jitter, no cap.
    pub fn rtt(rtt: Duration) -> PathShape {
        PathShape {
            one_way: rtt / 2,
            jitter: Duration::ZERO,
            bandwidth: None,
        }
    }

    /// The same path with a bandwidth cap in megabits per second.
    pub fn capped_mbit(self, mbit: u64) -> PathShape {
        PathShape {
            bandwidth: Some(mbit * 1_000_000 / 8),
            ..self
        }
    }
}

/// The most bytes in flight each way: enough for 1 Gbit/s over an 80 ms round trip
/// (10 MB), so the proxy itself is not what limits a long fat path.
const MAX_IN_FLIGHT: usize = 32 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// A running proxy; stops accepting when dropped (open connections run on).
pub struct DistanceProxy {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl DistanceProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream` over a
    /// path shaped like `shape`.
    pub async fn start(upstream: SocketAddr, shape: PathShape) -> io::Result<DistanceProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let _ = client.set_nodelay(true);
                tokio::spawn(async move {
                    // The connect itself crosses the path: one round trip, as a SYN does.
                    tokio::time::sleep(shape.one_way * 2).await;
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = server.set_nodelay(true);
                    let (client_rd, client_wr) = client.into_split();
                    let (server_rd, server_wr) = server.into_split();
                    tokio::join!(
                        carry(client_rd, server_wr, shape),
                        carry(server_rd, client_wr, shape)
                    );
                });
            }
        });
        Ok(DistanceProxy { addr, task })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DistanceProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Chunks on the wire, each with the time it may leave.
struct Wire {
    chunks: VecDeque<(Instant, Vec<u8>)>,
    bytes: usize,
    /// The reader saw the end; the writer shuts down after the last chunk.
    ended: bool,
}

/// One direction: `rd` to `wr`, each chunk held for the path's delay.
async fn carry(mut rd: OwnedReadHalf, mut wr: OwnedWriteHalf, shape: PathShape) {
    let wire = Arc::new((
        Mutex::new(Wire {
            chunks: VecDeque::new(),
            bytes: 0,
            ended: false,
        }),
        Notify::new(),
        Notify::new(),
    ));
    let reader = {
        let wire = wire.clone();
        async move {
            let mut last_due = Instant::now();
            loop {
                let mut buf = vec![0u8; CHUNK];
                let n = rd.read(&mut buf).await.unwrap_or(0);
                let (state, readable, writable) = &*wire;
                if n == 0 {
                    state.lock().await.ended = true;
                    readable.notify_one();
                    return;
                }
                buf.truncate(n);
                let jitter = if shape.jitter.is_zero() {
                    Duration::ZERO
                } else {
                    shape.jitter.mul_f64(rand_fraction())
                };
                // Never before the chunk ahead of it: the stream keeps its order.
                let due = (Instant::now() + shape.one_way + jitter).max(last_due);
                last_due = due;
                loop {
                    let mut wire = state.lock().await;
                    if wire.bytes + n <= MAX_IN_FLIGHT || wire.bytes == 0 {
                        wire.bytes += n;
                        wire.chunks.push_back((due, buf));
                        break;
                    }
                    drop(wire);
                    writable.notified().await;
                }
                readable.notify_one();
            }
        }
    };
    let writer = async move {
        let (state, readable, writable) = &*wire;
        // When the link is free again (the bandwidth cap serialises chunks).
        let mut free_at = Instant::now();
        loop {
            let next = {
                let mut wire = state.lock().await;
                match wire.chunks.pop_front() {
                    Some(chunk) => Some(chunk),
                    None if wire.ended => None,
                    None => {
                        drop(wire);
                        readable.notified().await;
                        continue;
                    }
                }
            };
            let Some((due, chunk)) = next else {
                let _ = wr.shutdown().await;
                return;
            };
            let start = due.max(free_at);
            tokio::time::sleep_until(start).await;
            if let Some(rate) = shape.bandwidth {
                free_at = start + Duration::from_secs_f64(chunk.len() as f64 / rate as f64);
                tokio::time::sleep_until(free_at).await;
            }
            let failed = wr.write_all(&chunk).await.is_err();
            {
                let mut wire = state.lock().await;
                wire.bytes -= chunk.len();
            }
            writable.notify_one();
            if failed {
                return;
            }
        }
    };
    tokio::join!(reader, writer);
}

/// A number in [0, 1) good enough for jitter.
fn rand_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_round_trip_takes_the_path_s_round_trip_time() {
        let echo = crate::echo_server().await;
        let rtt = Duration::from_millis(60);
        let proxy = DistanceProxy::start(echo, PathShape::rtt(rtt))
            .await
            .unwrap();
        let started = Instant::now();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        let took = started.elapsed();
        // The connect's round trip, then the ping's.
        assert!(took >= rtt * 2, "{took:?}");
        let again = Instant::now();
        s.write_all(b"pong").await.unwrap();
        s.read_exact(&mut buf).await.unwrap();
        assert!(again.elapsed() >= rtt, "{:?}", again.elapsed());
    }

    #[tokio::test]
    async fn the_cap_limits_throughput_and_order_is_kept() {
        let (sink, mut got) = crate::sink_server().await;
        let shape = PathShape {
            one_way: Duration::from_millis(5),
            jitter: Duration::from_millis(5),
            bandwidth: Some(1_000_000),
        };
        let proxy = DistanceProxy::start(sink, shape).await.unwrap();
        let data: Vec<u8> = (0..500_000u32).map(|i| (i % 251) as u8).collect();
        let started = Instant::now();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.write_all(&data).await.unwrap();
        s.shutdown().await.unwrap();
        let received = crate::within(got.recv()).await.unwrap();
        assert_eq!(received, data, "every byte, in order");
        // 500 kB at 1 MB/s.
        assert!(
            started.elapsed() >= Duration::from_millis(450),
            "{:?}",
            started.elapsed()
        );
    }
}
