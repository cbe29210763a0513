//! Moves bytes between one local TCP connection and its WebSocket: local reads become
//! BINARY frames, received BINARY frames are written to the local socket. Each direction
//! awaits the other side's readiness, so a slow reader slows the sender (backpressure)
//! and no buffer grows without bound.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::wake::WakeWatch;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::connector::AppStream;
use super::link::{Event, LinkError, HEADER_ROOM};
use super::status::Counters;

/// Tunables of the relay.
#[derive(Debug, Clone, Copy)]
pub struct RelayOptions {
    /// Largest chunk read from the local socket and sent as one frame. 256 KiB (the
    /// size the manager sends back) cuts the CPU per byte of a bulk upload by about a
    /// fifth, in the tunnel and in the relay, compared with 64 KiB; the buffer is only
    /// touched as far as bytes arrive, so an idle connection costs no more.
    pub chunk_size: usize,
    /// Ping interval; no frame at all (pongs included) for two intervals, while the
    /// relay waits on the server rather than on the local client, means the link is
    /// dead.
    pub ping_interval: Duration,
    /// Session mode only: the web server never passes a close on (app not listening,
    /// app gone), so a connection whose first bytes get no reply at all within this time
    /// is reported dead instead of hanging. Pings cannot tell: the web server answers
    /// them itself.
    pub first_reply_timeout: Option<Duration>,
    /// After the local client's EOF (a half-close, as scp and `nc` do), how long the
    /// app may stay silent before the connection is closed. Its bytes keep flowing
    /// until then, or until it closes.
    pub half_close_quiet: Duration,
}

/// How long a link may take to answer a ping after this computer woke up (or Porthole
/// was stopped and resumed) before it is taken for dead: well within the few seconds in
/// which every tunnel must show its true state again.
pub const WAKE_PONG_WAIT: Duration = Duration::from_secs(3);

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            chunk_size: 256 * 1024,
            ping_interval: Duration::from_secs(30),
            first_reply_timeout: None,
            half_close_quiet: Duration::from_secs(2),
        }
    }
}

/// How a relayed connection ended, when it ended without an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEnd {
    /// The local client closed its side.
    LocalClosed,
    /// The app closed (close 1000/1001, or the link ended without a close frame, which
    /// the 23.09 manager does on app EOF).
    AppClosed,
    /// The tunnel was stopped.
    Cancelled,
}

/// Why a relayed connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// Close 1013: the app is not accepting connections (not started yet or crashed).
    #[error("the app is not listening yet (close 1013); the next connection tries again")]
    AppNotListening,
    /// Close 1011: the manager could not reach the app.
    #[error("the manager could not connect to the app (close 1011)")]
    ManagerError,
    /// Close 1009: a message too large for the manager.
    #[error("the manager refused an oversized message (close 1009)")]
    TooLarge,
    /// Any other close code with its reason.
    #[error("the server closed the tunnel (close {code}{})", if reason.is_empty() { String::new() } else { format!(": {reason}") })]
    Closed {
        /// The WebSocket close code.
        code: u16,
        /// The server's reason text.
        reason: String,
    },
    /// Session mode: the app never answered (the web server hides why).
    #[error("the app did not answer within {0} s; it may not be listening (the web server does not report why)")]
    NoReply(u64),
    /// No frame came back for a whole ping interval.
    #[error("no answer from the server for {0} s; the connection was dead and has been closed")]
    Dead(u64),
    /// This computer slept (or Porthole was stopped), and the link did not answer a ping
    /// right after.
    #[error("the connection did not survive this computer's sleep (no answer after waking); it has been closed")]
    DeadAfterSleep,
    /// A transport error on the WebSocket.
    #[error("the connection to the server broke: {0}")]
    Transport(String),
}

/// The bytes a local client sent before the app's first byte came back.
///
/// The manager accepts the WebSocket before it connects to the app, and closes it with
/// 1013 when the app is not listening yet, dropping what the client sent. Keeping those
/// first bytes lets the connection be retried on a fresh WebSocket as if nothing
/// happened, so a browser sees the app once it is up rather than an error page.
#[derive(Debug)]
pub struct Replay {
    bytes: BytesMut,
    limit: usize,
    /// More than `limit` bytes went out unanswered, or the app answered: no replay.
    spent: bool,
    /// Pending bytes read before the relay started (a request head), not yet counted
    /// as sent.
    uncounted: u64,
}

impl Replay {
    /// Keeps at most `limit` unanswered bytes; 0 disables replaying.
    pub fn new(limit: usize) -> Self {
        Replay {
            bytes: BytesMut::new(),
            limit,
            spent: limit == 0,
            uncounted: 0,
        }
    }

    /// Bytes already read from the client (e.g. a request head) that the relay sends
    /// first.
    pub fn with_pending(limit: usize, pending: BytesMut) -> Self {
        let mut replay = Replay::new(limit);
        replay.record(&pending);
        replay.uncounted = pending.len() as u64;
        replay.bytes = pending;
        replay
    }

    /// Whether a failed attempt can be replayed on a new WebSocket.
    pub fn can_replay(&self) -> bool {
        !self.spent
    }

    fn record(&mut self, chunk: &[u8]) {
        if self.spent {
            return;
        }
        if self.bytes.len() + chunk.len() > self.limit {
            self.spent = true;
            self.bytes = BytesMut::new();
        }
    }

    fn keep(&mut self, chunk: &[u8]) {
        self.record(chunk);
        if !self.spent {
            self.bytes.extend_from_slice(chunk);
        }
    }

    fn answered(&mut self) {
        self.spent = true;
        self.bytes = BytesMut::new();
    }
}

/// Relays between a local byte stream (a TCP connection's halves, or stdin/stdout for
/// `porthole proxy`) and `stream` until one side closes, the link dies or `cancel` fires.
///
/// `replay` holds bytes to send first and collects what goes out before the app answers
/// (see [`Replay`]). The caller shuts the local side down afterwards, unless it replays.
pub async fn relay<R, W>(
    local_rx: &mut R,
    local_tx: &mut W,
    stream: AppStream,
    counters: &Counters,
    options: RelayOptions,
    cancel: &CancellationToken,
    replay: &mut Replay,
) -> Result<RelayEnd, RelayError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (mut ws_rx, mut ws_tx) = stream.split();
    if !replay.bytes.is_empty() {
        let mut first = vec![0u8; HEADER_ROOM];
        first.extend_from_slice(&replay.bytes);
        ws_tx.send_binary(&mut first).await.map_err(transport)?;
        // Counted once, however often the bytes are replayed.
        counters
            .bytes_up
            .fetch_add(std::mem::take(&mut replay.uncounted), Ordering::Relaxed);
    }
    let started = Instant::now();
    let elapsed_ms = || started.elapsed().as_millis() as u64;
    // Liveness, shared with the watchdog: when a frame last arrived (any frame: data,
    // pong), when app data last arrived, and whether the local client is the one holding
    // things up (a paused reader must not make the server look dead).
    let last_frame_ms = AtomicU64::new(0);
    let last_data_ms = AtomicU64::new(0);
    let local_write_blocked = AtomicBool::new(false);
    let got_data = AtomicBool::new(false);
    // Pings are read downstream and answered upstream, which owns the sending half; a
    // pong still waiting when the next ping comes is superseded (RFC 6455 allows it).
    let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    // The watchdog asks for a ping at once after a sleep.
    let ping_now = tokio::sync::Notify::new();

    let upstream = async {
        // One buffer for every frame: local bytes are read in after the header's room,
        // and masked and sent from where they landed.
        let mut buf = BytesMut::with_capacity(HEADER_ROOM + options.chunk_size);
        buf.resize(HEADER_ROOM, 0);
        let mut ping = tokio::time::interval_at(
            tokio::time::Instant::now() + options.ping_interval,
            options.ping_interval,
        );
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reply_deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        let mut watch_reply = options.first_reply_timeout.is_some();
        // Set once the local client sent EOF: WebSocket has no half-close, so nothing is
        // sent; the app's remaining bytes keep flowing until it closes, or goes quiet for
        // `half_close_quiet`.
        let mut local_eof = false;
        loop {
            let quiet_for = Duration::from_millis(
                elapsed_ms().saturating_sub(last_data_ms.load(Ordering::Relaxed)),
            );
            let quiet_left = options.half_close_quiet.saturating_sub(quiet_for);
            tokio::select! {
                read = local_rx.read_buf(&mut buf), if !local_eof => match read {
                    Ok(0) => {
                        local_eof = true;
                        // Quiet is measured from the EOF on.
                        last_data_ms.fetch_max(elapsed_ms(), Ordering::Relaxed);
                    }
                    Err(_) => {
                        let _ = ws_tx.close(1000, "").await;
                        return Ok::<RelayEnd, RelayError>(RelayEnd::LocalClosed);
                    }
                    Ok(n) => {
                        if let (true, None, Some(limit)) = (watch_reply, &reply_deadline, options.first_reply_timeout) {
                            reply_deadline = Some(Box::pin(tokio::time::sleep(limit)));
                        }
                        counters.bytes_up.fetch_add(n as u64, Ordering::Relaxed);
                        if !replay.spent {
                            if got_data.load(Ordering::Relaxed) {
                                replay.answered();
                            } else {
                                replay.keep(&buf[HEADER_ROOM..]);
                            }
                        }
                        ws_tx.send_binary(&mut buf).await.map_err(transport)?;
                        buf.truncate(HEADER_ROOM);
                    }
                },
                _ = tokio::time::sleep(quiet_left), if local_eof => {
                    // Re-measured: data may have arrived while this slept.
                    let quiet = elapsed_ms().saturating_sub(last_data_ms.load(Ordering::Relaxed));
                    if Duration::from_millis(quiet) >= options.half_close_quiet {
                        let _ = ws_tx.close(1000, "").await;
                        return Ok(RelayEnd::LocalClosed);
                    }
                }
                _ = ping.tick() => ws_tx.ping().await.map_err(transport)?,
                _ = ping_now.notified() => ws_tx.ping().await.map_err(transport)?,
                Some(payload) = pong_rx.recv() => ws_tx.pong(&payload).await.map_err(transport)?,
                _ = async {
                        match reply_deadline.as_mut() {
                            Some(deadline) => deadline.await,
                            None => std::future::pending().await,
                        }
                    }, if watch_reply && reply_deadline.is_some() =>
                {
                    if !got_data.load(Ordering::Relaxed) {
                        let secs = options.first_reply_timeout.unwrap_or_default().as_secs();
                        return Err(RelayError::NoReply(secs));
                    }
                    watch_reply = false;
                    reply_deadline = None;
                }
                _ = cancel.cancelled() => {
                    let _ = ws_tx.close(1001, "tunnel stopped").await;
                    return Ok(RelayEnd::Cancelled);
                }
            }
        }
    };

    // Ends with how the relay ended and, when the server sent a close, its code (to
    // answer it once the relay is over).
    let downstream = async {
        let mut server_close = None;
        let end = async {
            loop {
                let event = ws_rx.next().await;
                let now = elapsed_ms();
                last_frame_ms.store(now, Ordering::Relaxed);
                match event {
                    Ok(Event::Data(data)) => {
                        got_data.store(true, Ordering::Relaxed);
                        last_data_ms.store(now, Ordering::Relaxed);
                        counters
                            .bytes_down
                            .fetch_add(data.len() as u64, Ordering::Relaxed);
                        local_write_blocked.store(true, Ordering::Relaxed);
                        // Flush: a no-op for TCP, but stdout (`porthole proxy`) buffers.
                        let written = local_tx.write_all(data).await.is_ok()
                            && local_tx.flush().await.is_ok();
                        // Frames queued while the client was slow are not the server's silence.
                        last_frame_ms.store(elapsed_ms(), Ordering::Relaxed);
                        local_write_blocked.store(false, Ordering::Relaxed);
                        if !written {
                            return Ok(RelayEnd::LocalClosed);
                        }
                    }
                    Ok(Event::Ping(payload)) => {
                        let _ = pong_tx.try_send(payload);
                    }
                    // The manager relays only BINARY; anything else carries no app bytes.
                    Ok(Event::Other) => {}
                    Ok(Event::Close(frame)) => {
                        server_close = Some(frame.as_ref().map_or(1000, |(code, _)| *code));
                        return close_outcome(frame);
                    }
                    // The link ended without a close frame: what the 23.09 manager does on app EOF.
                    Ok(Event::Eof) => return Ok(RelayEnd::AppClosed),
                    // A reset or another socket error: the link broke (server killed, path cut).
                    Err(e) => return Err(transport(e)),
                }
            }
        }
        .await;
        (end, server_close)
    };

    // A link is dead when no frame at all (pongs included) came for two ping intervals
    // while the relay was waiting on the server. This runs beside both directions, so a
    // send stuck on a frozen server's full socket is caught too.
    let dead_after = options.ping_interval * 2;
    let watchdog = async {
        let period = options.ping_interval / 2;
        let mut check =
            tokio::time::interval_at(tokio::time::Instant::now() + options.ping_interval, period);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut wake = WakeWatch::new();
        loop {
            check.tick().await;
            // Asleep (or stopped) for longer than a check period: the silence meanwhile
            // says nothing, so a ping now must be answered within a short grace instead.
            if wake.slept_longer_than(options.ping_interval + period) {
                let woke_ms = elapsed_ms();
                ping_now.notify_one();
                tokio::time::sleep(WAKE_PONG_WAIT).await;
                wake = WakeWatch::new();
                if last_frame_ms.load(Ordering::Relaxed) < woke_ms
                    && !local_write_blocked.load(Ordering::Relaxed)
                {
                    return Err::<RelayEnd, RelayError>(RelayError::DeadAfterSleep);
                }
                continue;
            }
            if local_write_blocked.load(Ordering::Relaxed) {
                continue;
            }
            let silent = elapsed_ms().saturating_sub(last_frame_ms.load(Ordering::Relaxed));
            if Duration::from_millis(silent) > dead_after {
                return Err::<RelayEnd, RelayError>(RelayError::Dead(dead_after.as_secs()));
            }
        }
    };

    let mut upstream = Box::pin(upstream);
    let mut downstream = Box::pin(downstream);
    // A close the server sent first is answered below; one that answers ours is not.
    let mut answer_close = None;
    let outcome = tokio::select! {
        (end, server_close) = &mut downstream => {
            answer_close = server_close;
            end
        }
        end = watchdog => end,
        end = &mut upstream => match end {
            // Our side is done; let the close handshake finish briefly so the server
            // hears it, without waiting on a silent peer.
            Ok(end) => {
                let _ = tokio::time::timeout(Duration::from_secs(2), &mut downstream).await;
                Ok(end)
            }
            Err(e) => Err(e),
        },
    };
    drop((upstream, downstream));
    // Answer the server's close, as RFC 6455 asks; it may already be gone.
    if let Some(code) = answer_close {
        let _ = tokio::time::timeout(Duration::from_secs(1), ws_tx.close(code, "")).await;
    }
    if got_data.load(Ordering::Relaxed) {
        replay.answered();
    }
    outcome
}

fn transport(e: LinkError) -> RelayError {
    RelayError::Transport(e.to_string())
}

fn close_outcome(frame: Option<(u16, String)>) -> Result<RelayEnd, RelayError> {
    let Some((code, reason)) = frame else {
        return Ok(RelayEnd::AppClosed);
    };
    match code {
        1000 | 1001 | 1005 | 1006 => Ok(RelayEnd::AppClosed),
        1013 => Err(RelayError::AppNotListening),
        1011 => Err(RelayError::ManagerError),
        1009 => Err(RelayError::TooLarge),
        code => Err(RelayError::Closed {
            code,
            reason: crate::api::one_line(&reason, 120),
        }),
    }
}
