//! Opens the signed WebSocket that carries one tunnelled connection.
//!
//! The HTTP upgrade is done here rather than by tungstenite's client handshake, because a
//! refused upgrade must be read in full: the real manager (aiohttp) writes an error reply's
//! head and its problem+json body separately, and tungstenite keeps only the bytes that came
//! with the head, so about one refusal in seven lost its body (and Porthole its message:
//! "404 (no detail)" instead of "session ... has no app ..."). Here the body is read by its
//! `Content-Length` (or to the end), within a short bound.

use std::io;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::client::{generate_key, Request};
use tokio_tungstenite::MaybeTlsStream;

use super::link::{accept_key, Link, Role};
use crate::api::{
    one_line, ApiError, AppLaunch, BackendClient, ComputeSession, Proxy, ServicePort,
};

/// The WebSocket of one tunnelled connection.
pub type AppStream = Link<MaybeTlsStream<TcpStream>>;

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest error body read.
const MAX_ERROR_BODY: usize = 1024 * 1024;
/// How long the rest of an error body may take after its head.
const ERROR_BODY_WAIT: Duration = Duration::from_secs(5);

/// Opens a WebSocket to `app` of `session`, started as `launch` says, waiting up to
/// `handshake_timeout` for the server to start the app and answer 101.
pub async fn open_app_stream(
    client: &BackendClient,
    session: &ComputeSession,
    app: &ServicePort,
    launch: &AppLaunch,
    handshake_timeout: Duration,
) -> Result<AppStream, ApiError> {
    let request = client.stream_request(session, app, launch)?;
    let app = app.name.as_str();
    let handshake = upgrade(request, client.tls_config(), client.proxy());
    match tokio::time::timeout(handshake_timeout, handshake).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(map_failure(client, session, app, e)),
        Err(_) => Err(ApiError::Timeout {
            what: format!("waiting for {app} in {} to start", session.name),
            secs: handshake_timeout.as_secs(),
        }),
    }
}

/// Why an upgrade did not give a WebSocket.
#[derive(Debug)]
pub(crate) enum UpgradeFailure {
    /// Connecting or talking to the server failed.
    Io(io::Error),
    /// The TLS handshake failed.
    Tls(String),
    /// The server answered something other than 101: its status and whole body.
    Refused { status: u16, body: Vec<u8> },
    /// The server's reply is not a valid upgrade.
    Protocol(String),
    /// The proxy did not connect us, or dropped the connection (the error names it).
    Proxy(ApiError),
}

impl From<io::Error> for UpgradeFailure {
    fn from(e: io::Error) -> Self {
        UpgradeFailure::Io(e)
    }
}

fn map_failure(
    client: &BackendClient,
    session: &ComputeSession,
    app: &str,
    failure: UpgradeFailure,
) -> ApiError {
    let endpoint = client.endpoint().to_string();
    match failure {
        UpgradeFailure::Refused { status, body } => {
            ApiError::from_reply(status, &body, Some((&session.name, app)))
        }
        UpgradeFailure::Tls(detail) => ApiError::Tls {
            endpoint,
            detail: one_line(&detail, 200),
        },
        UpgradeFailure::Io(e) => ApiError::Unreachable {
            endpoint,
            detail: one_line(&e.to_string(), 200),
        },
        UpgradeFailure::Protocol(detail) => ApiError::UnexpectedReply(format!(
            "the WebSocket handshake with {endpoint} failed: {}",
            one_line(&detail, 200)
        )),
        UpgradeFailure::Proxy(e) => e,
    }
}

/// Connects (through `proxy` when given; TLS for `wss://`), sends the upgrade `request`
/// with its headers, and returns the WebSocket on 101, or the whole refusal.
pub(crate) async fn upgrade(
    request: Request,
    tls: std::sync::Arc<rustls::ClientConfig>,
    proxy: Option<&Proxy>,
) -> Result<AppStream, UpgradeFailure> {
    let uri = request.uri().clone();
    let secure = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        other => {
            return Err(UpgradeFailure::Protocol(format!(
                "unsupported scheme {other:?}"
            )))
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| UpgradeFailure::Protocol("the URL has no host".into()))?;
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let tcp = match proxy {
        Some(proxy) => connect_through(proxy, bare_host, port)
            .await
            .map_err(UpgradeFailure::Proxy)?,
        None => TcpStream::connect((bare_host, port)).await?,
    };
    let _ = tcp.set_nodelay(true);
    let mut stream = if secure {
        let name = ServerName::try_from(bare_host.to_owned())
            .map_err(|e| UpgradeFailure::Tls(format!("invalid server name {bare_host:?}: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| UpgradeFailure::Tls(e.to_string()))?;
        MaybeTlsStream::Rustls(tls)
    } else {
        MaybeTlsStream::Plain(tcp)
    };

    let key = generate_key();
    let host_header = match uri.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut head = format!(
        "GET {target} HTTP/1.1\r\nHost: {host_header}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
    );
    for (name, value) in request.headers() {
        let lower = name.as_str();
        if matches!(lower, "host" | "connection" | "upgrade") || lower.starts_with("sec-websocket-")
        {
            continue;
        }
        let value = value
            .to_str()
            .map_err(|_| UpgradeFailure::Protocol(format!("header {lower} is not ASCII")))?;
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.flush().await?;

    let (reply, mut buf) = match (read_head(&mut stream).await, proxy) {
        // The proxy gave up on a tunnel that stayed quiet while the server started the app.
        (Err(UpgradeFailure::Io(e)), Some(proxy))
            if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
            ) =>
        {
            return Err(UpgradeFailure::Proxy(
                proxy.dropped(&authority(bare_host, port)),
            ))
        }
        (read, _) => read?,
    };
    if reply.status == 101 {
        let header_has = |name: &str, token: &str| {
            reply
                .header(name)
                .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        };
        if !header_has("upgrade", "websocket") || !header_has("connection", "upgrade") {
            return Err(UpgradeFailure::Protocol(
                "101 without Upgrade: websocket".into(),
            ));
        }
        if reply.header("sec-websocket-accept") != Some(accept_key(key.as_bytes()).as_str()) {
            return Err(UpgradeFailure::Protocol(
                "wrong Sec-WebSocket-Accept in the 101".into(),
            ));
        }
        // Frames may have come in the same read as the head (sshd speaks first).
        return Ok(Link::new(stream, Role::Client, buf));
    }
    read_body(&mut stream, &reply, &mut buf).await;
    Err(UpgradeFailure::Refused {
        status: reply.status,
        body: buf,
    })
}

/// `host:port`, with brackets around an IPv6 address.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Asks `proxy` for a tunnel to `host:port` (HTTP `CONNECT`); on its 200 the stream
/// carries bytes to the endpoint as if connected directly (TLS goes inside).
pub(crate) async fn connect_through(
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Result<TcpStream, ApiError> {
    let target = authority(host, port);
    let mut tcp = TcpStream::connect((proxy.host(), proxy.port()))
        .await
        .map_err(|e| proxy.unreachable(&e.to_string()))?;
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(authorization) = proxy.authorization() {
        head.push_str(&format!("Proxy-Authorization: {authorization}\r\n"));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes())
        .await
        .map_err(|e| proxy.unreachable(&e.to_string()))?;
    let (reply, rest) = match read_head(&mut tcp).await {
        Ok(read) => read,
        Err(UpgradeFailure::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(proxy.dropped(&target))
        }
        Err(UpgradeFailure::Io(e)) => return Err(proxy.unreachable(&e.to_string())),
        Err(other) => {
            return Err(ApiError::Proxy {
                proxy: proxy.to_string(),
                detail: format!("did not answer the CONNECT to {target} in HTTP ({other:?})"),
                retryable: false,
            })
        }
    };
    if reply.status != 200 {
        return Err(proxy.refusal(&target, reply.status, &reply.reason));
    }
    if !rest.is_empty() {
        // The client speaks first on a new HTTP connection: nothing may come before it.
        return Err(ApiError::Proxy {
            proxy: proxy.to_string(),
            detail: format!("sent bytes of its own after connecting to {target}"),
            retryable: false,
        });
    }
    Ok(tcp)
}

/// A parsed response head.
struct Head {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads up to the end of the response head; returns it and the bytes read after it.
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(Head, Vec<u8>), UpgradeFailure> {
    let mut buf = Vec::with_capacity(4096);
    let end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(UpgradeFailure::Protocol(
                "the reply head is too large".into(),
            ));
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(UpgradeFailure::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection before answering the upgrade",
            )));
        }
    };
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| UpgradeFailure::Protocol(format!("not an HTTP reply: {status_line:?}")))?;
    let reason = status_line.get(13..).unwrap_or_default().trim().to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok((
        Head {
            status,
            reason,
            headers,
        },
        buf.split_off(end),
    ))
}

/// Completes an error reply's body in `buf`: by `Content-Length`, chunked, or to the end of
/// the connection; at most [`MAX_ERROR_BODY`] bytes within [`ERROR_BODY_WAIT`]. A body that
/// does not come in time is left as it is.
async fn read_body<S: AsyncRead + Unpin>(stream: &mut S, head: &Head, buf: &mut Vec<u8>) {
    let length = head
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let complete = |buf: &[u8]| match (length, chunked) {
        (Some(n), _) => buf.len() >= n,
        (None, true) => dechunk(buf).is_some(),
        (None, false) => false,
    };
    let _ = tokio::time::timeout(ERROR_BODY_WAIT, async {
        while !complete(buf) && buf.len() < MAX_ERROR_BODY {
            match stream.read_buf(buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    if let Some(n) = length {
        buf.truncate(n);
    } else if chunked {
        if let Some(body) = dechunk(buf) {
            *buf = body;
        }
    }
}

/// The payload of a complete chunked body, or `None` while it is incomplete.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        // A size near `usize::MAX` must not wrap: such a chunk can never be complete.
        if data.len() < size.checked_add(2)? {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// For the fuzz targets ([`crate::fuzzing`]): reads `reply` as the server's answer to an
/// upgrade request the way [`upgrade`] does (the head, then for anything but 101 the body),
/// and returns the status, the headers and the bytes after the head (101) or the body (a
/// refusal).
#[cfg(any(test, feature = "fuzzing"))]
#[allow(clippy::type_complexity)]
pub fn parse_upgrade_reply(reply: &[u8]) -> Result<(u16, Vec<(String, String)>, Vec<u8>), String> {
    static RUNTIME: std::sync::OnceLock<Option<tokio::runtime::Runtime>> =
        std::sync::OnceLock::new();
    let runtime = RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .ok()
        })
        .as_ref()
        .ok_or_else(|| "no runtime".to_owned())?;
    runtime.block_on(async {
        let mut stream = reply;
        let (head, mut buf) = read_head(&mut stream).await.map_err(|e| match e {
            UpgradeFailure::Io(e) => e.to_string(),
            UpgradeFailure::Tls(s) | UpgradeFailure::Protocol(s) => s,
            UpgradeFailure::Refused { status, .. } => format!("refused {status}"),
            UpgradeFailure::Proxy(e) => e.to_string(),
        })?;
        if head.status != 101 {
            read_body(&mut stream, &head, &mut buf).await;
        }
        Ok((head.status, head.headers, buf))
    })
}

/// For the fuzz targets ([`crate::fuzzing`]): the payload of a complete chunked body (see
/// `dechunk`).
#[cfg(feature = "fuzzing")]
pub fn dechunk_body(data: &[u8]) -> Option<Vec<u8>> {
    dechunk(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tunnel::link::{Event, HEADER_ROOM};
    use futures_util::{SinkExt, StreamExt};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    fn tls() -> std::sync::Arc<rustls::ClientConfig> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        std::sync::Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        )
    }

    /// A server that answers one connection with `parts`, written separately with a pause
    /// in between (as aiohttp writes a head and its body), then stays open.
    async fn server(parts: Vec<Vec<u8>>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while find(&head, b"\r\n\r\n").is_none() {
                let mut chunk = [0u8; 1024];
                let n = socket.read(&mut chunk).await.unwrap();
                head.extend_from_slice(&chunk[..n]);
            }
            for part in parts {
                socket.write_all(&part).await.unwrap();
                socket.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let mut rest = Vec::new();
            let _ = socket.read_to_end(&mut rest).await;
        });
        format!("ws://{addr}/stream/session/s/tcpproxy?app=x")
    }

    #[tokio::test]
    async fn a_refusal_is_read_in_full_when_its_body_comes_later() {
        let body = br#"{"type": "https://api.backend.ai/probs/object-not-found", "title": "No such app service.", "msg": "s:x"}"#;
        let head = format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/problem+json; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let url = server(vec![head.into_bytes(), body.to_vec()]).await;
        let request = url.into_client_request().unwrap();
        match upgrade(request, tls(), None).await {
            Err(UpgradeFailure::Refused { status, body: got }) => {
                assert_eq!(status, 404);
                assert_eq!(got, body);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_chunked_refusal_is_decoded() {
        let url = server(vec![
            b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            b"5\r\nhello\r\n".to_vec(),
            b"6\r\n world\r\n0\r\n\r\n".to_vec(),
        ])
        .await;
        match upgrade(url.into_client_request().unwrap(), tls(), None).await {
            Err(UpgradeFailure::Refused { status, body }) => {
                assert_eq!((status, body.as_slice()), (502, &b"hello world"[..]));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn frames_in_the_same_read_as_the_101_are_kept() {
        // A real WebSocket server that sends a frame at once (as sshd's banner comes).
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(socket).await.unwrap();
            ws.send(Message::Binary(b"SSH-2.0-test\r\n".to_vec().into()))
                .await
                .unwrap();
            while let Some(Ok(msg)) = ws.next().await {
                if let Message::Binary(data) = msg {
                    ws.send(Message::Binary(data)).await.unwrap();
                }
            }
        });
        let mut request = format!("ws://{addr}/x?app=sshd")
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("x-backendai-version", "v7.20230615".parse().unwrap());
        let (mut rx, mut tx) = upgrade(request, tls(), None).await.unwrap().split();
        assert_eq!(rx.next().await.unwrap(), Event::Data(b"SSH-2.0-test\r\n"));
        let mut frame = [&[0u8; HEADER_ROOM][..], b"ping"].concat();
        tx.send_binary(&mut frame).await.unwrap();
        assert_eq!(rx.next().await.unwrap(), Event::Data(b"ping"));
    }

    #[tokio::test]
    async fn a_wrong_accept_key_is_refused() {
        let url = server(vec![b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bogus\r\n\r\n".to_vec()]).await;
        match upgrade(url.into_client_request().unwrap(), tls(), None).await {
            Err(UpgradeFailure::Protocol(text)) => assert!(text.contains("Accept"), "{text}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_an_io_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let request = format!("ws://127.0.0.1:{port}/x")
            .into_client_request()
            .unwrap();
        assert!(matches!(
            upgrade(request, tls(), None).await,
            Err(UpgradeFailure::Io(_))
        ));
    }

    #[test]
    fn dechunking() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n0\r\n\r\n").as_deref(),
            Some(&b"abc"[..])
        );
        assert_eq!(dechunk(b"3\r\nab"), None);
        assert_eq!(
            dechunk(b"a;ext=1\r\n0123456789\r\n0\r\n"),
            Some(b"0123456789".to_vec())
        );
    }

    /// Found by `cargo fuzz` (target `upgrade_reply`): a chunk size near `usize::MAX`
    /// overflowed `size + 2` (a panic in debug, an out-of-range slice in release).
    #[test]
    fn a_huge_chunk_size_is_incomplete_not_a_panic() {
        assert_eq!(dechunk(b"ffffffffffffffff\r\nabc\r\n0\r\n\r\n"), None);
        assert_eq!(dechunk(b"fffffffffffffffe\r\nabc"), None);
        let reply = b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n\
                      ffffffffffffffff\r\nabc\r\n0\r\n\r\n";
        let (status, _, body) = parse_upgrade_reply(reply).unwrap();
        assert_eq!(status, 500);
        assert_eq!(body, b"ffffffffffffffff\r\nabc\r\n0\r\n\r\n");
    }
}
