//! A request as the manager sees it, and how it reached the manager: the one type every
//! handler takes, so that handlers depend on it and not on each other.

use axum::http::request::Parts;
use bytes::Bytes;

/// How a request reached the manager.
#[derive(Debug, Clone)]
pub(crate) enum Via {
    /// Directly, keypair-signed (API mode).
    Api,
    /// Through the web server (`/func/...`) for a logged-in user: no signature.
    Web { access_key: String },
    /// Through the web server's anonymous `GET /func/`.
    WebAnonymous,
}

/// A request as the manager sees it.
pub(crate) struct Req {
    pub(crate) parts: Parts,
    /// The raw (percent-encoded) path, without the web server's `/func` prefix.
    pub(crate) path: String,
    pub(crate) body: Bytes,
}
