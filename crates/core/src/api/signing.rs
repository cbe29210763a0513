//! Backend.AI keypair request signing (HMAC-SHA256), protocol doc §3.1.
//!
//! The server rebuilds a seven-line "string to sign" from the request it received and
//! compares HMACs, so every field here must match byte for byte what goes on the wire:
//! the raw path and query, the exact `Date` value, the `Host` header.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Hex SHA-256 of the empty body; Backend.AI never hashes the real body.
pub const EMPTY_BODY_HASH: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The content type the server assumes when a request carries none (WebSocket upgrades).
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Everything the signature covers, as it appears on the wire.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// HTTP method; uppercased when signed.
    pub method: &'a str,
    /// Request target exactly as sent: raw path plus `?query`.
    pub path_and_query: &'a str,
    /// The `Date` (or `X-BackendAI-Date`) header value, byte for byte.
    pub date: &'a str,
    /// The `Host` header value (`host` or `host:port` for a non-default port).
    pub host: &'a str,
    /// Media type without parameters; use [`DEFAULT_CONTENT_TYPE`] when none is sent.
    pub content_type: &'a str,
    /// The `X-BackendAI-Version` header value.
    pub api_version: &'a str,
}

impl SignedRequest<'_> {
    /// The seven newline-joined fields the HMAC is computed over.
    pub fn string_to_sign(&self) -> String {
        let content_type = self
            .content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        format!(
            "{}\n{}\n{}\nhost:{}\ncontent-type:{}\nx-backendai-version:{}\n{}",
            self.method.to_ascii_uppercase(),
            self.path_and_query,
            self.date,
            self.host,
            content_type,
            self.api_version,
            EMPTY_BODY_HASH
        )
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The per-day, per-host signing key: `HMAC(HMAC(secret, yyyymmdd), host)`.
///
/// `day` is the date of the `Date` header in the timezone it was sent in, as `YYYYMMDD`.
pub fn signing_key(secret_key: &str, day: &str, host: &str) -> [u8; 32] {
    let k1 = hmac(secret_key.as_bytes(), day.as_bytes());
    hmac(&k1, host.as_bytes())
}

/// Hex signature of `request` with `secret_key`; `day` as in [`signing_key`].
pub fn signature(secret_key: &str, day: &str, request: &SignedRequest<'_>) -> String {
    let key = signing_key(secret_key, day, request.host);
    hex::encode(hmac(&key, request.string_to_sign().as_bytes()))
}

/// The `Authorization` header value for a signature.
pub fn authorization(access_key: &str, signature: &str) -> String {
    format!("BackendAI signMethod=HMAC-SHA256, credential={access_key}:{signature}")
}

/// `YYYYMMDD` of an ISO-8601 date string in its own timezone (the first ten characters
/// without dashes), or `None` when it does not start with a `YYYY-MM-DD` date.
pub fn day_of_iso_date(date: &str) -> Option<String> {
    let head = date.get(..10)?;
    let bytes = head.as_bytes();
    let shape_ok = bytes.iter().enumerate().all(|(i, b)| match i {
        4 | 7 => *b == b'-',
        _ => b.is_ascii_digit(),
    });
    shape_ok.then(|| head.replace('-', ""))
}

/// Hex SHA-256 of `data`; handy for callers that compare payloads.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn empty_body_hash_is_sha256_of_nothing() {
        assert_eq!(sha256_hex(b""), EMPTY_BODY_HASH);
    }

    #[test]
    fn test_vector_1_websocket_upgrade() {
        let req = SignedRequest {
            method: "GET",
            path_and_query: "/stream/session/my-session/tcpproxy?app=sshd",
            date: "2024-10-01T12:34:56.789012+00:00",
            host: "127.0.0.1:8081",
            content_type: DEFAULT_CONTENT_TYPE,
            api_version: "v8.20240915",
        };
        assert_eq!(
            req.string_to_sign(),
            "GET\n/stream/session/my-session/tcpproxy?app=sshd\n2024-10-01T12:34:56.789012+00:00\n\
             host:127.0.0.1:8081\ncontent-type:application/octet-stream\n\
             x-backendai-version:v8.20240915\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let day = day_of_iso_date(req.date).unwrap();
        assert_eq!(day, "20241001");
        let k1 = hmac(SECRET.as_bytes(), day.as_bytes());
        assert_eq!(
            hex::encode(k1),
            "0a7ad2100eed424ba792f847bf180f5682208eb6a4458ac99de784a1b69fa669"
        );
        assert_eq!(
            hex::encode(signing_key(SECRET, &day, req.host)),
            "e088eacc2c06fd5e1edbd5fa29cf35fe4928856b47f12c2c71a9c0352ca5226f"
        );
        let sig = signature(SECRET, &day, &req);
        assert_eq!(
            sig,
            "537726ce18e73bfaf915956f374b88a4171041ef8e1f8a6567e753615bdf566c"
        );
        assert_eq!(
            authorization("AKIAIOSFODNN7EXAMPLE", &sig),
            "BackendAI signMethod=HMAC-SHA256, credential=AKIAIOSFODNN7EXAMPLE:\
             537726ce18e73bfaf915956f374b88a4171041ef8e1f8a6567e753615bdf566c"
        );
    }

    #[test]
    fn test_vector_2_graphql_post() {
        let req = SignedRequest {
            method: "post",
            path_and_query: "/admin/gql",
            date: "2025-01-02T03:04:05+00:00",
            host: "api.backend.ai",
            content_type: "application/json",
            api_version: "v9.20250722",
        };
        let day = day_of_iso_date(req.date).unwrap();
        assert_eq!(
            hex::encode(signing_key(SECRET, &day, req.host)),
            "f0cbe6c2d10f55db0235d1faf76246b57fa751fc9b5b70c75fb1f54a760ce90b"
        );
        assert_eq!(
            signature(SECRET, &day, &req),
            "a76500bf66c907c588c24c02c8618c3cd3a6f522a6a7a3ad3ed526e9f5d6c445"
        );
    }

    #[test]
    fn test_vector_3_v4_kernel_path() {
        let req = SignedRequest {
            method: "GET",
            path_and_query: "/stream/kernel/mysess/httpproxy?app=jupyter",
            date: "2019-07-01T00:00:00.123456+00:00",
            host: "api.backend.ai",
            content_type: DEFAULT_CONTENT_TYPE,
            api_version: "v4.20190615",
        };
        let day = day_of_iso_date(req.date).unwrap();
        assert_eq!(
            signature(SECRET, &day, &req),
            "92f7087b4eadf54dc56a92cfd0f2ffb17c0b5a713175bc82be6ccbd7b46ae6de"
        );
    }

    #[test]
    fn content_type_parameters_and_case_are_ignored() {
        let base = SignedRequest {
            method: "POST",
            path_and_query: "/admin/gql",
            date: "2025-01-02T03:04:05+00:00",
            host: "api.backend.ai",
            content_type: "application/json",
            api_version: "v9.20250722",
        };
        let sent = SignedRequest {
            content_type: "Application/JSON; charset=UTF-8",
            ..base
        };
        assert_eq!(base.string_to_sign(), sent.string_to_sign());
    }

    #[test]
    fn day_of_iso_date_rejects_garbage() {
        assert_eq!(
            day_of_iso_date("2024-10-01T00:00:00Z").as_deref(),
            Some("20241001")
        );
        assert_eq!(day_of_iso_date("Tue, 01 Oct 2024"), None);
        assert_eq!(day_of_iso_date("2024"), None);
        assert_eq!(day_of_iso_date("2024-1é-01"), None);
    }
}
