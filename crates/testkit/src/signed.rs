//! Talking to a manager as a Backend.AI client does, but by hand: request headers signed
//! with `porthole_core::api::signing`, WebSockets opened with them, and what a refused
//! handshake said. For tests that check the server's side (the emulator, the real
//! managers) rather than Porthole's client.

use std::net::SocketAddr;

use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::{SinkExt, StreamExt};
use porthole_core::api::signing::{self, SignedRequest, DEFAULT_CONTENT_TYPE};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::wait::within;

/// A client WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The ISO date a client sends for `at`, as the official client writes it.
pub fn iso_date(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, false)
}

/// How one request is signed.
#[derive(Debug, Clone)]
pub struct Signing<'a> {
    /// The access key.
    pub access_key: &'a str,
    /// The secret key.
    pub secret_key: &'a str,
    /// The `Date` header (see [`iso_date`]).
    pub date: String,
    /// The `X-BackendAI-Version` header.
    pub version: &'a str,
    /// The Content-Type sent (`None`: no header; `application/octet-stream` is signed).
    pub content_type: Option<&'a str>,
}

impl<'a> Signing<'a> {
    /// Signs as `access_key` / `secret_key` for API `version`, dated now.
    pub fn new(access_key: &'a str, secret_key: &'a str, version: &'a str) -> Signing<'a> {
        Signing {
            access_key,
            secret_key,
            date: iso_date(Utc::now()),
            version,
            content_type: None,
        }
    }

    /// `(name, value)` headers for `method path_and_query` sent to `host`.
    pub fn headers(&self, method: &str, path_and_query: &str, host: &str) -> Vec<(String, String)> {
        let request = SignedRequest {
            method,
            path_and_query,
            date: &self.date,
            host,
            content_type: self.content_type.unwrap_or(DEFAULT_CONTENT_TYPE),
            api_version: self.version,
        };
        let day = signing::day_of_iso_date(&self.date).expect("the date is ISO 8601");
        let signature = signing::signature(self.secret_key, &day, &request);
        let mut headers = vec![
            ("Date".to_owned(), self.date.clone()),
            ("X-BackendAI-Version".to_owned(), self.version.to_owned()),
            (
                "Authorization".to_owned(),
                signing::authorization(self.access_key, &signature),
            ),
        ];
        if let Some(ct) = self.content_type {
            headers.push(("Content-Type".to_owned(), ct.to_owned()));
        }
        headers
    }
}

/// Opens a WebSocket to `ws://addr{path_and_query}` signed with `signing`.
pub async fn ws_signed(
    addr: SocketAddr,
    signing: &Signing<'_>,
    path_and_query: &str,
) -> Result<Ws, tungstenite::Error> {
    let host = addr.to_string();
    let headers = signing.headers("GET", path_and_query, &host);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    ws_with_headers(addr, path_and_query, &headers).await
}

/// Opens a WebSocket to `ws://addr{path_and_query}` with these headers and no signature
/// (session mode sends the login session instead).
pub async fn ws_with_headers(
    addr: SocketAddr,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, tungstenite::Error> {
    let mut request = format!("ws://{addr}{path_and_query}")
        .into_client_request()
        .expect("a valid WebSocket URL");
    for (k, v) in headers {
        let name: HeaderName = k.parse().expect("a header name");
        request
            .headers_mut()
            .insert(name, HeaderValue::from_str(v).expect("a header value"));
    }
    within(tokio_tungstenite::connect_async(request))
        .await
        .map(|(ws, _)| ws)
}

/// The status and JSON body of a refused WebSocket handshake.
pub fn handshake_error(err: tungstenite::Error) -> (u16, serde_json::Value) {
    match err {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let body = response.body().clone().unwrap_or_default();
            let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            (status, json)
        }
        other => panic!("expected an HTTP error, got {other:?}"),
    }
}

/// The next message that is not a ping or pong; `None` once the connection ended.
pub async fn next_message(ws: &mut Ws) -> Option<Message> {
    loop {
        match within(ws.next()).await {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(m)) => return Some(m),
            Some(Err(_)) | None => return None,
        }
    }
}

/// Reads BINARY frames until `n` bytes arrived; returns them and the largest frame size.
pub async fn read_exact_binary(ws: &mut Ws, n: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(n);
    let mut largest = 0;
    while out.len() < n {
        match next_message(ws).await {
            Some(Message::Binary(b)) => {
                largest = largest.max(b.len());
                out.extend_from_slice(&b);
            }
            other => panic!("expected binary data, got {other:?}"),
        }
    }
    (out, largest)
}

/// Waits for a CLOSE frame and returns its code, after letting the close handshake finish.
pub async fn expect_close(ws: &mut Ws) -> u16 {
    loop {
        let code = match next_message(ws).await {
            Some(Message::Close(Some(frame))) => u16::from(frame.code),
            Some(Message::Close(None)) => 1005,
            Some(Message::Binary(_) | Message::Text(_)) => continue,
            other => panic!("expected a CLOSE frame, got {other:?}"),
        };
        // Reading on sends our CLOSE reply; the server then ends the connection.
        while next_message(ws).await.is_some() {}
        return code;
    }
}

/// Sends binary data.
pub async fn send_binary(ws: &mut Ws, data: &[u8]) {
    within(ws.send(Message::binary(data.to_vec())))
        .await
        .expect("send a BINARY frame");
}

/// Closes with 1000 and waits for the server's reply.
pub async fn close(ws: &mut Ws) {
    let _ = within(ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    })))
    .await;
    while next_message(ws).await.is_some() {}
}
