//! Opens the signed WebSocket that carries one tunnelled connection.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::api::{one_line, ApiError, BackendClient, ComputeSession, ProxyKind};

/// The WebSocket of one tunnelled connection.
pub type AppStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Largest message accepted from the server. The manager sends at most 256 KiB per frame;
/// the limit only guards memory against a misbehaving peer.
pub const MAX_INCOMING_MESSAGE: usize = 16 << 20;

/// Opens a WebSocket to `app` of `session`, waiting up to `handshake_timeout` for the
/// server to start the app and answer 101.
pub async fn open_app_stream(
    client: &BackendClient,
    session: &ComputeSession,
    app: &str,
    kind: ProxyKind,
    handshake_timeout: Duration,
) -> Result<AppStream, ApiError> {
    let request = client.stream_request(session, app, kind)?;
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_INCOMING_MESSAGE))
        .max_frame_size(Some(MAX_INCOMING_MESSAGE));
    let handshake = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(config),
        true,
        Some(Connector::Rustls(client.tls_config())),
    );
    match tokio::time::timeout(handshake_timeout, handshake).await {
        Ok(Ok((stream, _response))) => Ok(stream),
        Ok(Err(e)) => Err(map_handshake_error(client, session, app, e)),
        Err(_) => Err(ApiError::Timeout {
            what: format!("waiting for {app} in {} to start", session.name),
            secs: handshake_timeout.as_secs(),
        }),
    }
}

fn map_handshake_error(
    client: &BackendClient,
    session: &ComputeSession,
    app: &str,
    error: WsError,
) -> ApiError {
    let endpoint = client.endpoint().to_string();
    match error {
        WsError::Http(response) => {
            let status = response.status().as_u16();
            let body = response.body().as_deref().unwrap_or_default();
            ApiError::from_reply(status, body, Some((&session.name, app)))
        }
        WsError::Tls(e) => ApiError::Tls {
            endpoint,
            detail: one_line(&e.to_string(), 200),
        },
        WsError::Io(e) => ApiError::Unreachable {
            endpoint,
            detail: one_line(&e.to_string(), 200),
        },
        other => ApiError::UnexpectedReply(format!(
            "the WebSocket handshake with {endpoint} failed: {}",
            one_line(&other.to_string(), 200)
        )),
    }
}
