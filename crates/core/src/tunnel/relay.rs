//! Moves bytes between one local TCP connection and its WebSocket: local reads become
//! BINARY frames, received BINARY frames are written to the local socket. Each direction
//! awaits the other side's readiness, so a slow reader slows the sender (backpressure)
//! and no buffer grows without bound.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::connector::AppStream;
use super::status::Counters;

/// Tunables of the relay.
#[derive(Debug, Clone, Copy)]
pub struct RelayOptions {
    /// Largest chunk read from the local socket and sent as one frame.
    pub chunk_size: usize,
    /// Ping interval; a ping unanswered (no frame at all) by the next tick means the
    /// connection is dead.
    pub ping_interval: Duration,
    /// Session mode only: the web server never passes a close on (app not listening,
    /// app gone), so a connection whose first bytes get no reply at all within this time
    /// is reported dead instead of hanging. Pings cannot tell: the web server answers
    /// them itself.
    pub first_reply_timeout: Option<Duration>,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            chunk_size: 64 * 1024,
            ping_interval: Duration::from_secs(30),
            first_reply_timeout: None,
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
    let (mut ws_tx, mut ws_rx) = stream.split();
    if !replay.bytes.is_empty() {
        let first = replay.bytes.clone().freeze();
        ws_tx
            .send(Message::Binary(first))
            .await
            .map_err(|e| RelayError::Transport(e.to_string()))?;
        // Counted once, however often the bytes are replayed.
        counters
            .bytes_up
            .fetch_add(std::mem::take(&mut replay.uncounted), Ordering::Relaxed);
    }
    let started = Instant::now();
    // Milliseconds since `started` of the last frame received; read by the ping check.
    let last_frame_ms = AtomicU64::new(0);
    let got_data = AtomicBool::new(false);
    let elapsed_ms = || started.elapsed().as_millis() as u64;

    let upstream = async {
        let mut buf = BytesMut::with_capacity(options.chunk_size);
        let mut ping = tokio::time::interval_at(
            tokio::time::Instant::now() + options.ping_interval,
            options.ping_interval,
        );
        let mut last_ping_ms: Option<u64> = None;
        let mut reply_deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        let mut watch_reply = options.first_reply_timeout.is_some();
        loop {
            if buf.capacity() < options.chunk_size / 4 {
                buf.reserve(options.chunk_size);
            }
            tokio::select! {
                read = local_rx.read_buf(&mut buf) => match read {
                    Ok(0) | Err(_) => {
                        let _ = ws_tx.send(Message::Close(Some(CloseFrame {
                            code: CloseCode::Normal,
                            reason: "".into(),
                        }))).await;
                        return Ok::<RelayEnd, RelayError>(RelayEnd::LocalClosed);
                    }
                    Ok(n) => {
                        if let (true, None, Some(limit)) = (watch_reply, &reply_deadline, options.first_reply_timeout) {
                            reply_deadline = Some(Box::pin(tokio::time::sleep(limit)));
                        }
                        counters.bytes_up.fetch_add(n as u64, Ordering::Relaxed);
                        let chunk = buf.split().freeze();
                        if !replay.spent {
                            if got_data.load(Ordering::Relaxed) {
                                replay.answered();
                            } else {
                                replay.keep(&chunk);
                            }
                        }
                        ws_tx
                            .send(Message::Binary(chunk))
                            .await
                            .map_err(|e| RelayError::Transport(e.to_string()))?;
                    }
                },
                _ = ping.tick() => {
                    if let Some(sent) = last_ping_ms {
                        if last_frame_ms.load(Ordering::Relaxed) < sent {
                            return Err(RelayError::Dead(options.ping_interval.as_secs()));
                        }
                    }
                    last_ping_ms = Some(elapsed_ms());
                    ws_tx
                        .send(Message::Ping(Default::default()))
                        .await
                        .map_err(|e| RelayError::Transport(e.to_string()))?;
                }
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
                    let _ = ws_tx.send(Message::Close(Some(CloseFrame {
                        code: CloseCode::Away,
                        reason: "tunnel stopped".into(),
                    }))).await;
                    return Ok(RelayEnd::Cancelled);
                }
            }
        }
    };

    let downstream = async {
        while let Some(message) = ws_rx.next().await {
            last_frame_ms.store(elapsed_ms(), Ordering::Relaxed);
            match message {
                Ok(Message::Binary(data)) => {
                    got_data.store(true, Ordering::Relaxed);
                    counters
                        .bytes_down
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                    // Flush: a no-op for TCP, but stdout (`porthole proxy`) buffers.
                    if local_tx.write_all(&data).await.is_err() || local_tx.flush().await.is_err() {
                        return Ok(RelayEnd::LocalClosed);
                    }
                }
                // The manager relays only BINARY; anything else carries no app bytes.
                Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Ok(Message::Close(frame)) => return close_outcome(frame),
                Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed) => break,
                Err(tokio_tungstenite::tungstenite::Error::Protocol(
                    tokio_tungstenite::tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                )) => break,
                Err(tokio_tungstenite::tungstenite::Error::Io(_)) => break,
                Err(e) => return Err(RelayError::Transport(e.to_string())),
            }
        }
        // The 23.09 manager usually ends the link without a close frame on app EOF.
        Ok(RelayEnd::AppClosed)
    };

    let mut upstream = Box::pin(upstream);
    let mut downstream = Box::pin(downstream);
    let outcome = tokio::select! {
        end = &mut downstream => end,
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
    if got_data.load(Ordering::Relaxed) {
        replay.answered();
    }
    outcome
}

fn close_outcome(frame: Option<CloseFrame>) -> Result<RelayEnd, RelayError> {
    let Some(frame) = frame else {
        return Ok(RelayEnd::AppClosed);
    };
    match u16::from(frame.code) {
        1000 | 1001 | 1005 | 1006 => Ok(RelayEnd::AppClosed),
        1013 => Err(RelayError::AppNotListening),
        1011 => Err(RelayError::ManagerError),
        1009 => Err(RelayError::TooLarge),
        code => Err(RelayError::Closed {
            code,
            reason: crate::api::one_line(&frame.reason, 120),
        }),
    }
}
