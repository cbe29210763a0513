//! The WebSocket of one tunnelled connection, framed by hand for the relay.
//!
//! A relay needs a small part of RFC 6455: BINARY frames out, payload bytes in, pings,
//! pongs and the close handshake. tungstenite copies every outgoing frame into its own
//! buffer and shifts that buffer after each partial write (over a third of the tunnel's
//! CPU on a bulk upload, measured with perf), and zero-fills 16 KiB of read buffer
//! before every read. Here an outgoing frame is masked in place in the buffer the local
//! socket was read into, with room for the header kept in front of it, and incoming
//! payload goes to the local socket straight from the read buffer, read in pieces as
//! large as the frame: only the kernel copies the bytes.
//!
//! Payload is streamed, never gathered into whole messages, so a peer's message size
//! costs no memory; fragmented messages are followed only to tell BINARY from TEXT.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

/// Bytes to keep free in front of a payload for its frame header: 2 bytes, up to 8 of
/// length, and a 4-byte mask.
pub const HEADER_ROOM: usize = 14;

/// The first read buffer of a link: what a link that only ever sees small frames
/// touches (its pages, not its capacity, are what an idle connection costs).
const FIRST_READ: usize = 16 * 1024;
/// The largest read: the manager's frames are at most 256 KiB.
const BULK_READ: usize = 256 * 1024;
/// RFC 6455: control frames carry at most 125 bytes.
const MAX_CONTROL: u64 = 125;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Which end of the WebSocket this side is: a client masks what it sends and expects
/// unmasked frames; a server the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Porthole's side of a tunnel.
    Client,
    /// The manager's side.
    Server,
}

/// A broken link: the socket failed, or the peer broke the protocol.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A socket error (a reset, a broken pipe).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer sent something RFC 6455 forbids.
    #[error("WebSocket protocol error: {0}")]
    Protocol(&'static str),
    /// A message reached the limit set with [`LinkReader::limit_messages`].
    #[error("a message of {0} bytes or more")]
    TooLarge(u64),
}

/// The `Sec-WebSocket-Accept` value answering a `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    tokio_tungstenite::tungstenite::handshake::derive_accept_key(key)
}

/// What came in on a link.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// Payload bytes of a BINARY message, as they arrive (part of a frame, or all of it).
    Data(&'a [u8]),
    /// A ping; answer it with [`LinkWriter::pong`] and this payload.
    Ping(Bytes),
    /// A frame that carries nothing for the relay: a pong, or a piece of a TEXT message
    /// (the manager relays only BINARY).
    Other,
    /// A close frame: its code and reason, if it had any.
    Close(Option<(u16, String)>),
    /// The peer ended the connection without a close frame.
    Eof,
}

/// A WebSocket on `S` after the opening handshake.
#[derive(Debug)]
pub struct Link<S> {
    io: S,
    role: Role,
    /// Bytes read along with the handshake's reply head (a server that speaks first).
    read: BytesMut,
}

impl<S: AsyncRead + AsyncWrite> Link<S> {
    /// A link on `io`, whose first bytes (read with the handshake) are `already_read`.
    pub fn new(io: S, role: Role, already_read: Vec<u8>) -> Self {
        Link {
            io,
            role,
            read: BytesMut::from(&already_read[..]),
        }
    }

    /// The link's receiving and sending halves, to use at the same time.
    pub fn split(self) -> (LinkReader<ReadHalf<S>>, LinkWriter<WriteHalf<S>>) {
        let (rx, tx) = tokio::io::split(self.io);
        (
            LinkReader::new(rx, self.role, self.read),
            LinkWriter::new(tx, self.role),
        )
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Link<S> {
    /// Closes politely: sends a close frame (1000) and waits for the peer's close or the
    /// end of the connection, ignoring anything else it sends meanwhile.
    pub async fn close(self) -> Result<(), LinkError> {
        let (mut rx, mut tx) = self.split();
        tx.close(1000, "").await?;
        loop {
            match rx.next().await? {
                Event::Close(_) | Event::Eof => return Ok(()),
                Event::Data(_) | Event::Ping(_) | Event::Other => {}
            }
        }
    }
}

/// The payload of the frame being read.
#[derive(Debug)]
struct Payload {
    remaining: u64,
    binary: bool,
    mask: Option<[u8; 4]>,
    /// Bytes unmasked so far, for the mask's phase.
    offset: usize,
}

/// The receiving half of a [`Link`].
#[derive(Debug)]
pub struct LinkReader<R> {
    io: R,
    role: Role,
    buf: BytesMut,
    /// Bytes at the front of `buf` handed out by the last [`Event::Data`].
    handed_out: usize,
    payload: Option<Payload>,
    /// A fragmented message is in progress: whether it is BINARY.
    message: Option<bool>,
    /// Bytes of the current message announced so far (its frames' lengths).
    message_len: u64,
    /// Messages this long or longer are refused.
    limit: Option<u64>,
}

/// A parsed frame header.
#[derive(Debug, PartialEq, Eq)]
struct Header {
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: u64,
}

/// Parses the frame header at the start of `buf`: the header and its length, or `None`
/// when more bytes are needed.
fn parse_header(buf: &[u8]) -> Result<Option<(Header, usize)>, LinkError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(LinkError::Protocol(
            "reserved bits set (no extension was agreed)",
        ));
    }
    let (len, mut at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(b);
                let len = u64::from_be_bytes(be);
                if len >> 63 != 0 {
                    return Err(LinkError::Protocol("frame length has its top bit set"));
                }
                (len, 10)
            }
            None => return Ok(None),
        },
        short => (u64::from(short), 2),
    };
    let mask = if b1 & 0x80 != 0 {
        match buf.get(at..at + 4) {
            Some(k) => {
                at += 4;
                Some([k[0], k[1], k[2], k[3]])
            }
            None => return Ok(None),
        }
    } else {
        None
    };
    Ok(Some((
        Header {
            fin: b0 & 0x80 != 0,
            opcode: b0 & 0x0F,
            mask,
            len,
        },
        at,
    )))
}

/// XORs `buf` with `key`, starting `offset` bytes into the mask's cycle.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key: [u8; 4] = std::array::from_fn(|i| key[(i + offset) % 4]);
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let (words, rest) = buf.as_chunks_mut::<8>();
    for word in words {
        *word = (u64::from_ne_bytes(*word) ^ wide).to_ne_bytes();
    }
    // `rest` starts at a multiple of 8, so the cycle is back at the key's start.
    for (i, byte) in rest.iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

impl<R: AsyncRead + Unpin> LinkReader<R> {
    fn new(io: R, role: Role, already_read: BytesMut) -> Self {
        LinkReader {
            io,
            role,
            buf: already_read,
            handed_out: 0,
            payload: None,
            message: None,
            message_len: 0,
            limit: None,
        }
    }

    /// Refuses messages of `limit` bytes or more with [`LinkError::TooLarge`], as soon as
    /// a frame header announces it (before any of its payload is handed out).
    pub fn limit_messages(&mut self, limit: u64) {
        self.limit = Some(limit);
    }

    /// Reads more bytes; 0 at the end of the connection. `want` is how many the frame in
    /// progress still needs, which sizes the read.
    async fn fill(&mut self, want: u64) -> std::io::Result<usize> {
        let size = usize::try_from(want)
            .unwrap_or(BULK_READ)
            .clamp(FIRST_READ, BULK_READ);
        if self.buf.capacity() - self.buf.len() < size.min(FIRST_READ) {
            // With nothing kept, this reuses the allocation from its start.
            self.buf.reserve(size);
        }
        self.io.read_buf(&mut self.buf).await
    }

    /// The next event. Payload is handed out as it arrives: an [`Event::Data`] slice is
    /// valid until the next call.
    pub async fn next(&mut self) -> Result<Event<'_>, LinkError> {
        self.buf.advance(std::mem::take(&mut self.handed_out));
        loop {
            // A payload in progress always has bytes left (an empty one is never kept).
            if let Some(mut payload) = self.payload.take() {
                if self.buf.is_empty() {
                    let want = payload.remaining;
                    self.payload = Some(payload);
                    if self.fill(want).await? == 0 {
                        return Ok(Event::Eof);
                    }
                    continue;
                }
                let n = usize::try_from(payload.remaining)
                    .unwrap_or(usize::MAX)
                    .min(self.buf.len());
                if let Some(key) = payload.mask {
                    apply_mask(&mut self.buf[..n], key, payload.offset);
                }
                payload.offset += n;
                payload.remaining -= n as u64;
                let binary = payload.binary;
                if payload.remaining > 0 {
                    self.payload = Some(payload);
                }
                if binary {
                    self.handed_out = n;
                    return Ok(Event::Data(&self.buf[..n]));
                }
                self.buf.advance(n);
                return Ok(Event::Other);
            }

            let Some((header, header_len)) = parse_header(&self.buf)? else {
                if self.fill(HEADER_ROOM as u64).await? == 0 {
                    return Ok(Event::Eof);
                }
                continue;
            };
            match (self.role, header.mask.is_some()) {
                (Role::Client, true) => {
                    return Err(LinkError::Protocol("the server sent a masked frame"))
                }
                (Role::Server, false) => {
                    return Err(LinkError::Protocol("the client sent an unmasked frame"))
                }
                _ => {}
            }
            if header.opcode >= OP_CLOSE {
                if !header.fin || header.len > MAX_CONTROL {
                    return Err(LinkError::Protocol(
                        "a control frame is fragmented or longer than 125 bytes",
                    ));
                }
                // Control payloads are small: read all of one before handling it.
                let total = header_len + header.len as usize;
                while self.buf.len() < total {
                    if self.fill(total as u64).await? == 0 {
                        return Ok(Event::Eof);
                    }
                }
                self.buf.advance(header_len);
                let mut body = self.buf.split_to(header.len as usize);
                if let Some(key) = header.mask {
                    apply_mask(&mut body, key, 0);
                }
                return match header.opcode {
                    OP_CLOSE => close_event(&body),
                    OP_PING => Ok(Event::Ping(body.freeze())),
                    OP_PONG => Ok(Event::Other),
                    _ => Err(LinkError::Protocol("unknown control opcode")),
                };
            }
            let binary = match (header.opcode, self.message) {
                (OP_CONTINUATION, Some(binary)) => binary,
                (OP_CONTINUATION, None) => {
                    return Err(LinkError::Protocol("a continuation frame with no message"))
                }
                (OP_TEXT | OP_BINARY, Some(_)) => {
                    return Err(LinkError::Protocol("a new message inside a fragmented one"))
                }
                (OP_TEXT, None) => false,
                (OP_BINARY, None) => true,
                _ => return Err(LinkError::Protocol("unknown data opcode")),
            };
            if self.message.is_none() {
                self.message_len = 0;
            }
            self.message_len = self.message_len.saturating_add(header.len);
            let too_large = self.limit.filter(|l| self.message_len >= *l);
            // An oversized message's payload is still read, and dropped, so a caller that
            // closes and then drains the link leaves the stream in step.
            let binary = binary && too_large.is_none();
            self.message = if header.fin { None } else { Some(binary) };
            self.buf.advance(header_len);
            if header.len > 0 {
                self.payload = Some(Payload {
                    remaining: header.len,
                    binary,
                    mask: header.mask,
                    offset: 0,
                });
            }
            if let Some(limit) = too_large {
                return Err(LinkError::TooLarge(limit));
            }
            if header.len == 0 {
                return Ok(Event::Other);
            }
        }
    }
}

fn close_event(body: &[u8]) -> Result<Event<'static>, LinkError> {
    match body {
        [] => Ok(Event::Close(None)),
        [_] => Err(LinkError::Protocol("a close frame with a 1-byte body")),
        [hi, lo, reason @ ..] => Ok(Event::Close(Some((
            u16::from_be_bytes([*hi, *lo]),
            String::from_utf8_lossy(reason).into_owned(),
        )))),
    }
}

/// The sending half of a [`Link`].
///
/// Sending is cancel-safe: a send dropped part-way (a relay stopped mid-frame) leaves the
/// rest of its frame here, and it goes out before anything else, so a close frame sent
/// afterwards still lands on a frame boundary. Only then is anything copied.
#[derive(Debug)]
pub struct LinkWriter<W> {
    io: W,
    role: Role,
    /// The unsent rest of a frame whose send was dropped.
    pending: Vec<u8>,
}

/// The part of a frame being written; on drop before the end, the rest is kept.
struct Unsent<'a> {
    bytes: &'a [u8],
    written: usize,
    keep: &'a mut Vec<u8>,
}

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        if let Some(rest) = self.bytes.get(self.written..) {
            self.keep.extend_from_slice(rest);
        }
    }
}

impl<W: AsyncWrite + Unpin> LinkWriter<W> {
    fn new(io: W, role: Role) -> Self {
        LinkWriter {
            io,
            role,
            pending: Vec::new(),
        }
    }

    /// Sends `frame[HEADER_ROOM..]` as one BINARY frame. The header is written into the
    /// room in front and a client's payload is masked in place, so `frame` no longer
    /// holds the payload afterwards.
    pub async fn send_binary(&mut self, frame: &mut [u8]) -> Result<(), LinkError> {
        self.send(OP_BINARY, frame).await
    }

    /// Sends a ping.
    pub async fn ping(&mut self) -> Result<(), LinkError> {
        self.send(OP_PING, &mut [0u8; HEADER_ROOM]).await
    }

    /// Answers a ping with its payload.
    pub async fn pong(&mut self, payload: &[u8]) -> Result<(), LinkError> {
        self.send_control(OP_PONG, payload).await
    }

    /// Sends a close frame with `code` and `reason` (cut to fit a control frame).
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), LinkError> {
        let mut body = code.to_be_bytes().to_vec();
        let mut cut = reason.len().min(MAX_CONTROL as usize - 2);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        body.extend_from_slice(&reason.as_bytes()[..cut]);
        self.send_control(OP_CLOSE, &body).await
    }

    async fn send_control(&mut self, opcode: u8, payload: &[u8]) -> Result<(), LinkError> {
        let mut frame = [0u8; HEADER_ROOM + MAX_CONTROL as usize];
        let len = payload.len().min(MAX_CONTROL as usize);
        frame[HEADER_ROOM..HEADER_ROOM + len].copy_from_slice(&payload[..len]);
        self.send(opcode, &mut frame[..HEADER_ROOM + len]).await
    }

    async fn send(&mut self, opcode: u8, frame: &mut [u8]) -> Result<(), LinkError> {
        while !self.pending.is_empty() {
            let n = self.io.write(&self.pending).await?;
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
            }
            self.pending.drain(..n);
        }
        let (room, payload) = frame.split_at_mut(HEADER_ROOM);
        let mask = (self.role == Role::Client).then(rand::random::<[u8; 4]>);
        let start = write_header(room, opcode, payload.len(), mask);
        if let Some(key) = mask {
            apply_mask(payload, key, 0);
        }
        let mut unsent = Unsent {
            bytes: &frame[start..],
            written: 0,
            keep: &mut self.pending,
        };
        while unsent.written < unsent.bytes.len() {
            match self.io.write(&unsent.bytes[unsent.written..]).await {
                Ok(0) => {
                    unsent.written = unsent.bytes.len();
                    return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
                }
                Ok(n) => unsent.written += n,
                Err(e) => {
                    // The link is broken; nothing is kept for a next send.
                    unsent.written = unsent.bytes.len();
                    return Err(e.into());
                }
            }
        }
        drop(unsent);
        // A no-op on TCP; TLS holds bytes until flushed.
        self.io.flush().await?;
        Ok(())
    }
}

/// Writes a final frame's header at the end of `room`; returns where it starts.
fn write_header(room: &mut [u8], opcode: u8, len: usize, mask: Option<[u8; 4]>) -> usize {
    let mut header = [0u8; HEADER_ROOM];
    header[0] = 0x80 | opcode;
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut n = if len < 126 {
        header[1] = mask_bit | len as u8;
        2
    } else if let Ok(short) = u16::try_from(len) {
        header[1] = mask_bit | 126;
        header[2..4].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        header[1] = mask_bit | 127;
        header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    if let Some(key) = mask {
        header[n..n + 4].copy_from_slice(&key);
        n += 4;
    }
    let start = room.len() - n;
    room[start..].copy_from_slice(&header[..n]);
    start
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::DuplexStream;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::{self, CloseFrame};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::WebSocketStream;

    use super::*;

    /// Our client link against tungstenite's server on an in-memory pipe.
    async fn pair() -> (Link<DuplexStream>, WebSocketStream<DuplexStream>) {
        let (a, b) = tokio::io::duplex(1 << 20);
        let server = WebSocketStream::from_raw_socket(b, protocol::Role::Server, None).await;
        (Link::new(a, Role::Client, Vec::new()), server)
    }

    async fn collect_data<R: AsyncRead + Unpin>(rx: &mut LinkReader<R>, want: usize) -> Vec<u8> {
        let mut got = Vec::new();
        while got.len() < want {
            match rx.next().await.unwrap() {
                Event::Data(d) => got.extend_from_slice(d),
                Event::Other => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        got
    }

    fn frame_of(payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0u8; HEADER_ROOM];
        frame.extend_from_slice(payload);
        frame
    }

    #[test]
    fn masking_matches_bytewise_at_every_phase() {
        let key = [0x12, 0x34, 0x56, 0x78];
        let data: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
        for offset in 0..8 {
            let mut fast = data.clone();
            apply_mask(&mut fast, key, offset);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[(i + offset) % 4])
                .collect();
            assert_eq!(fast, slow, "offset {offset}");
        }
    }

    #[test]
    fn headers_take_the_shortest_length_form() {
        for (len, size) in [(0, 2), (125, 2), (126, 4), (65_535, 4), (65_536, 10)] {
            let mut room = [0u8; HEADER_ROOM];
            let start = write_header(&mut room, OP_BINARY, len, None);
            assert_eq!(HEADER_ROOM - start, size, "len {len}");
            let (header, used) = parse_header(&room[start..]).unwrap().unwrap();
            assert_eq!(used, size);
            assert_eq!(header.len, len as u64);
            let start = write_header(&mut room, OP_PING, len, Some([1, 2, 3, 4]));
            assert_eq!(HEADER_ROOM - start, size + 4);
        }
    }

    #[test]
    fn bad_headers_are_refused() {
        assert!(parse_header(&[0x82]).unwrap().is_none(), "needs more");
        assert!(
            parse_header(&[0x82, 126, 1]).unwrap().is_none(),
            "needs more"
        );
        assert!(matches!(
            parse_header(&[0xC2, 0]),
            Err(LinkError::Protocol(_))
        ));
        let huge = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(parse_header(&huge), Err(LinkError::Protocol(_))));
    }

    #[tokio::test]
    async fn binary_both_ways_with_tungstenite() {
        let (link, mut server) = pair().await;
        let (mut rx, mut tx) = link.split();
        let up: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut frame = frame_of(&up);
        tx.send_binary(&mut frame).await.unwrap();
        match server.next().await.unwrap().unwrap() {
            Message::Binary(got) => assert_eq!(&got[..], &up[..]),
            other => panic!("{other:?}"),
        }
        let down: Vec<u8> = (0..700_000u32).map(|i| (i % 253) as u8).collect();
        server.send(Message::binary(down.clone())).await.unwrap();
        server.send(Message::binary(&b"tail"[..])).await.unwrap();
        assert_eq!(
            collect_data(&mut rx, down.len() + 4).await,
            [&down[..], b"tail"].concat()
        );
    }

    #[tokio::test]
    async fn fragments_pings_text_and_close() {
        let (link, mut server) = pair().await;
        let (mut rx, mut tx) = link.split();
        let frames = [
            Frame::message(&b"ab"[..], OpCode::Data(Data::Binary), false),
            Frame::message(&b"cd"[..], OpCode::Data(Data::Continue), true),
            Frame::message(&b"text"[..], OpCode::Data(Data::Text), false),
            Frame::message(&b"more"[..], OpCode::Data(Data::Continue), true),
        ];
        for frame in frames {
            server.send(Message::Frame(frame)).await.unwrap();
        }
        server
            .send(Message::Ping(Bytes::from_static(b"hi")))
            .await
            .unwrap();
        server
            .send(Message::Close(Some(CloseFrame {
                code: 1013.into(),
                reason: "try again".into(),
            })))
            .await
            .unwrap();
        assert_eq!(collect_data(&mut rx, 4).await, b"abcd");
        // The TEXT message is skipped, in two pieces.
        assert_eq!(rx.next().await.unwrap(), Event::Other);
        assert_eq!(rx.next().await.unwrap(), Event::Other);
        let Event::Ping(payload) = rx.next().await.unwrap() else {
            panic!("ping expected");
        };
        tx.pong(&payload).await.unwrap();
        assert_eq!(
            rx.next().await.unwrap(),
            Event::Close(Some((1013, "try again".into())))
        );
        // tungstenite checked our pong's mask and answered the close itself.
        tx.close(1000, "").await.unwrap();
        drop((rx, tx));
        while let Some(message) = server.next().await {
            match message {
                Ok(Message::Pong(p)) => assert_eq!(&p[..], b"hi"),
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(other) => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn eof_and_bad_frames() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut rx = LinkReader::new(a, Role::Client, BytesMut::new());
        // A masked frame from a server is refused.
        b.write_all(&[0x82, 0x81, 1, 2, 3, 4, 5]).await.unwrap();
        assert!(matches!(rx.next().await, Err(LinkError::Protocol(_))));

        let (a, mut b) = tokio::io::duplex(1024);
        let mut rx = LinkReader::new(a, Role::Client, BytesMut::from(&[0x82, 3, b'x'][..]));
        assert_eq!(rx.next().await.unwrap(), Event::Data(b"x"));
        b.write_all(b"y").await.unwrap();
        assert_eq!(rx.next().await.unwrap(), Event::Data(b"y"));
        drop(b);
        // The connection ends mid-frame: an end without a close.
        assert_eq!(rx.next().await.unwrap(), Event::Eof);
    }

    #[tokio::test]
    async fn a_send_dropped_mid_frame_is_finished_before_the_next_frame() {
        // A pipe smaller than the frame: the send must wait for the reader.
        let (a, b) = tokio::io::duplex(1024);
        let mut server_side =
            WebSocketStream::from_raw_socket(b, protocol::Role::Server, None).await;
        let (_rx, mut tx) = Link::new(a, Role::Client, Vec::new()).split();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 241) as u8).collect();
        let mut frame = frame_of(&big);
        let send = tx.send_binary(&mut frame);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), send)
                .await
                .is_err(),
            "the send waits for a reader"
        );
        let close = tokio::spawn(async move { tx.close(1001, "stopped").await });
        match server_side.next().await.unwrap().unwrap() {
            Message::Binary(got) => assert_eq!(&got[..], &big[..]),
            other => panic!("{other:?}"),
        }
        match server_side.next().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
            other => panic!("{other:?}"),
        }
        close.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn an_oversized_message_is_refused_before_its_payload() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut client = WebSocketStream::from_raw_socket(a, protocol::Role::Client, None).await;
        let (mut rx, _tx) = Link::new(b, Role::Server, Vec::new()).split();
        rx.limit_messages(1000);
        client.send(Message::binary(vec![1u8; 999])).await.unwrap();
        assert_eq!(collect_data(&mut rx, 999).await.len(), 999);
        let parts = [
            Frame::message(vec![2u8; 600], OpCode::Data(Data::Binary), false),
            Frame::message(vec![3u8; 400], OpCode::Data(Data::Continue), true),
        ];
        for frame in parts {
            client.send(Message::Frame(frame)).await.unwrap();
        }
        assert_eq!(collect_data(&mut rx, 600).await.len(), 600);
        assert!(matches!(rx.next().await, Err(LinkError::TooLarge(1000))));
        // Its payload is skipped; the link stays in step.
        client.send(Message::binary(&b"after"[..])).await.unwrap();
        assert_eq!(rx.next().await.unwrap(), Event::Other);
        assert_eq!(collect_data(&mut rx, 5).await, b"after");
    }

    #[tokio::test]
    async fn server_role_unmasks_a_client() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut client = WebSocketStream::from_raw_socket(a, protocol::Role::Client, None).await;
        let (mut rx, mut tx) = Link::new(b, Role::Server, Vec::new()).split();
        let up: Vec<u8> = (0..100_003u32).map(|i| (i % 7) as u8).collect();
        client.send(Message::binary(up.clone())).await.unwrap();
        assert_eq!(collect_data(&mut rx, up.len()).await, up);
        let mut frame = frame_of(b"back");
        tx.send_binary(&mut frame).await.unwrap();
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::binary(&b"back"[..])
        );
    }
}
