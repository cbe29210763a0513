//! Request authentication as the manager does it (protocol doc §3.1 and §10):
//! the API-version header check, then the date window, then the keypair signature.
//! Session-mode (web server) checks live in [`crate::webserver`].

use axum::http::{header, HeaderMap};
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use porthole_core::api::signing::{self, SignedRequest, DEFAULT_CONTENT_TYPE};
use sha2::Sha256;

use crate::problem::Problem;
use crate::state::Shared;
use porthole_core::api::version::ApiVersion;

/// The accepted clock skew: dates must lie strictly within ±15 minutes of the server's time.
pub(crate) const MAX_SKEW: chrono::Duration = chrono::Duration::minutes(15);

/// Who a request acts as once authenticated.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) access_key: String,
}

/// The version header of a request: `X-BackendAI-Version`, else the legacy `X-Sorna-Version`.
pub(crate) fn version_header(headers: &HeaderMap) -> Option<(&'static str, String)> {
    let get = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .filter(|v| !v.is_empty())
    };
    get("x-backendai-version")
        .map(|v| ("backendai", v))
        .or_else(|| get("x-sorna-version").map(|v| ("sorna", v)))
}

/// `api_middleware`: a version header the server does not speak gets 400 "Unsupported API
/// version." on every route, anonymous ones included. The emulator accepts any well-formed
/// version from v4.20181215 up to its own (the real manager accepts only its listed ones).
pub(crate) fn check_version(headers: &HeaderMap, server: ApiVersion) -> Result<(), Problem> {
    let Some((_, value)) = version_header(headers) else {
        return Ok(());
    };
    match value.parse::<ApiVersion>() {
        Ok(v) if v >= ApiVersion::OLDEST && v <= server => Ok(()),
        _ => Err(Problem::generic_bad_request().msg("Unsupported API version.")),
    }
}

/// Parses a date header the way `dateutil` would for the formats clients send: ISO 8601 /
/// RFC 3339 (`Z`, `+00:00`, `+0000` or no zone = UTC) and RFC 2822 / HTTP dates.
pub(crate) fn parse_date(raw: &str) -> Option<DateTime<FixedOffset>> {
    let raw = raw.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(raw) {
        return Some(d);
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(d) = DateTime::parse_from_str(raw, fmt) {
            return Some(d);
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(raw, fmt) {
            return Some(Utc.from_utc_datetime(&naive).fixed_offset());
        }
    }
    DateTime::parse_from_rfc2822(raw).ok()
}

/// `check_date`: the raw date value and its parsed form, when within the window.
fn check_date(headers: &HeaderMap, now: DateTime<Utc>) -> Option<(String, DateTime<FixedOffset>)> {
    let header_text = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .filter(|v| !v.is_empty())
    };
    // `Date` wins when present, even if it is the bad one.
    let raw = header_text("date")
        .or_else(|| header_text("x-backendai-date"))
        .or_else(|| header_text("x-sorna-date"))?;
    let date = parse_date(&raw)?;
    let utc = date.with_timezone(&Utc);
    (now - MAX_SKEW < utc && utc < now + MAX_SKEW).then_some((raw, date))
}

/// The parts of `Authorization: BackendAI signMethod=HMAC-SHA256, credential=AK:SIG`.
struct AuthParams {
    sign_method: String,
    access_key: String,
    signature: String,
}

/// `_extract_auth_params`: `Ok(None)` when there is no Authorization header.
fn extract_auth_params(headers: &HeaderMap) -> Result<Option<AuthParams>, Problem> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
    if value.is_empty() {
        return Ok(None);
    }
    let (auth_type, auth_str) = value
        .split_once(' ')
        .ok_or_else(|| Problem::invalid_auth_params("Malformed authorization header"))?;
    if auth_type != "BackendAI" && auth_type != "Sorna" {
        return Err(Problem::invalid_auth_params(
            "Invalid authorization type name",
        ));
    }
    let malformed =
        || Problem::invalid_auth_params("Missing or malformed authorization parameters");
    let mut sign_method = None;
    let mut credential = None;
    for piece in auth_str.split(',') {
        let (key, val) = piece.trim().split_once('=').ok_or_else(malformed)?;
        match key.trim().to_ascii_lowercase().as_str() {
            "signmethod" => sign_method = Some(val.trim().to_owned()),
            "credential" => credential = Some(val.trim().to_owned()),
            _ => {}
        }
    }
    let (sign_method, credential) = sign_method.zip(credential).ok_or_else(malformed)?;
    let (access_key, signature) = credential.split_once(':').ok_or_else(malformed)?;
    Ok(Some(AuthParams {
        sign_method,
        access_key: access_key.to_owned(),
        signature: signature.to_owned(),
    }))
}

/// Authenticates an API-mode request (`auth_middleware` + `auth_required`).
///
/// `path_and_query` is the raw request target as received; `now` is the server time.
pub(crate) fn authenticate(
    shared: &Shared,
    method: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<Caller, Problem> {
    if shared.skip_auth {
        return skip_auth_caller(shared, headers);
    }
    // 26.x looks for the Authorization header first; 23.09 checks the date first.
    let params = if shared.release.authorization_first {
        Some(
            extract_auth_params(headers)?
                .ok_or_else(|| Problem::auth_failed("Unauthorized access"))?,
        )
    } else {
        None
    };
    let (raw_date, date) = check_date(headers, now)
        .ok_or_else(|| Problem::invalid_auth_params("Date/time sync error"))?;
    let params = match params {
        Some(p) => p,
        None => extract_auth_params(headers)?
            .ok_or_else(|| Problem::auth_failed("Unauthorized access"))?,
    };
    let keypair = shared
        .keypair(&params.access_key)
        .ok_or_else(|| Problem::auth_failed(shared.release.unknown_key_msg))?;

    // sign_request()
    let (mac_type, hash_type) = match params.sign_method.split('-').collect::<Vec<_>>()[..] {
        [mac, hash] => (mac.to_ascii_lowercase(), hash.to_ascii_lowercase()),
        _ => return Err(Problem::auth_failed("Invalid signature")),
    };
    if mac_type != "hmac" {
        return Err(Problem::invalid_auth_params(
            "Unsupported request signing method (MAC type)",
        ));
    }
    if hash_type != "sha256" {
        return Err(Problem::invalid_auth_params(
            "Unsupported request signing method (hash type)",
        ));
    }
    let (version_name, api_version) = version_header(headers)
        .ok_or_else(|| Problem::invalid_auth_params("API version missing in request headers"))?;
    let host = headers
        .get(header::HOST)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
    let request = SignedRequest {
        method,
        path_and_query,
        date: &raw_date,
        host: &host,
        content_type: &content_type,
        api_version: &api_version,
    };
    let day = date.format("%Y%m%d").to_string();
    let expected = if version_name == "backendai" {
        signing::signature(&keypair.secret_key, &day, &request)
    } else {
        legacy_sorna_signature(&keypair.secret_key, &day, &request)
    };
    if !constant_time_eq(expected.as_bytes(), params.signature.as_bytes()) {
        return Err(Problem::auth_failed(shared.release.hmac_mismatch_msg));
    }
    Ok(Caller {
        access_key: keypair.access_key.clone(),
    })
}

/// `skip_auth = true`: the keypair named in the Authorization header if it is known, else
/// the first one.
fn skip_auth_caller(shared: &Shared, headers: &HeaderMap) -> Result<Caller, Problem> {
    let named = extract_auth_params(headers).ok().flatten().and_then(|p| {
        shared
            .keypair(&p.access_key)
            .map(|kp| kp.access_key.clone())
    });
    named
        .or_else(|| shared.keypairs.first().map(|kp| kp.access_key.clone()))
        .map(|access_key| Caller { access_key })
        .ok_or_else(|| Problem::auth_failed("Unauthorized access"))
}

/// The signature when only the legacy `X-Sorna-Version` header is sent: the sixth line reads
/// `x-sorna-version:` instead of `x-backendai-version:`.
fn legacy_sorna_signature(secret_key: &str, day: &str, request: &SignedRequest<'_>) -> String {
    let text = request
        .string_to_sign()
        .replacen("\nx-backendai-version:", "\nx-sorna-version:", 1);
    let key = signing::signing_key(secret_key, day, request.host);
    match Hmac::<Sha256>::new_from_slice(&key) {
        Ok(mut mac) => {
            mac.update(text.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, KeypairConfig};
    use axum::http::HeaderValue;

    const AK: &str = "AKIAIOSFODNN7EXAMPLE";
    const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn shared() -> Shared {
        let mut config = Config::default();
        config.keypairs.push(KeypairConfig::new(AK, SK));
        Shared::new(&config, false).unwrap()
    }

    fn headers(date: &str, auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("date", HeaderValue::from_str(date).unwrap());
        h.insert("host", HeaderValue::from_static("127.0.0.1:8081"));
        h.insert(
            "x-backendai-version",
            HeaderValue::from_static("v8.20240915"),
        );
        h.insert("authorization", HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn accepts_test_vector_1() {
        let date = "2024-10-01T12:34:56.789012+00:00";
        let now = parse_date(date).unwrap().with_timezone(&Utc);
        let h = headers(
            date,
            "BackendAI signMethod=HMAC-SHA256, credential=AKIAIOSFODNN7EXAMPLE:537726ce18e73bfaf915956f374b88a4171041ef8e1f8a6567e753615bdf566c",
        );
        let caller = authenticate(
            &shared(),
            "GET",
            "/stream/session/my-session/tcpproxy?app=sshd",
            &h,
            now,
        )
        .unwrap();
        assert_eq!(caller.access_key, AK);
        // The same request with the query left out of the signature fails.
        let err = authenticate(
            &shared(),
            "GET",
            "/stream/session/my-session/tcpproxy",
            &h,
            now,
        )
        .unwrap_err();
        assert_eq!(err.msg.as_deref(), Some("Signature mismatch"));
        // 16 minutes later the date is out of the window.
        let err = authenticate(
            &shared(),
            "GET",
            "/stream/session/my-session/tcpproxy?app=sshd",
            &h,
            now + chrono::Duration::minutes(16),
        )
        .unwrap_err();
        assert_eq!(err.msg.as_deref(), Some("Date/time sync error"));
    }

    #[test]
    fn parses_the_usual_date_formats() {
        for raw in [
            "2024-10-01T12:34:56.789012+00:00",
            "2024-10-01T12:34:56.789Z",
            "2024-10-01T12:34:56+0000",
            "2024-10-01T12:34:56",
            "2024-10-01 12:34:56.5",
            "Tue, 01 Oct 2024 12:34:56 GMT",
        ] {
            let d = parse_date(raw).unwrap_or_else(|| panic!("{raw}"));
            assert_eq!(
                d.format("%Y%m%d%H%M%S").to_string(),
                "20241001123456",
                "{raw}"
            );
        }
        assert!(parse_date("yesterday").is_none());
    }

    #[test]
    fn authorization_header_errors() {
        let date = Utc::now().to_rfc3339();
        let now = Utc::now();
        let s = shared();
        let cases = [
            ("Bearer xyz", 400, "Invalid authorization type name"),
            ("BackendAI", 400, "Malformed authorization header"),
            (
                "BackendAI signMethod=HMAC-SHA256",
                400,
                "Missing or malformed authorization parameters",
            ),
            (
                "BackendAI signMethod=HMAC-SHA256, credential=NOPE:abc",
                401,
                "Access key not found",
            ),
            (
                "BackendAI signMethod=HMACSHA256, credential=AKIAIOSFODNN7EXAMPLE:abc",
                401,
                "Invalid signature",
            ),
            (
                "BackendAI signMethod=HMAC-SHA256, credential=AKIAIOSFODNN7EXAMPLE:abc",
                401,
                "Signature mismatch",
            ),
        ];
        for (auth, status, msg) in cases {
            let err = authenticate(&s, "GET", "/x", &headers(&date, auth), now).unwrap_err();
            assert_eq!(err.status.as_u16(), status, "{auth}");
            assert_eq!(err.msg.as_deref(), Some(msg), "{auth}");
        }
        let mut h = headers(&date, "x");
        h.remove("authorization");
        let err = authenticate(&s, "GET", "/x", &h, now).unwrap_err();
        assert_eq!(err.msg.as_deref(), Some("Unauthorized access"));
    }

    #[test]
    fn version_checks() {
        let v = ApiVersion::POST_DOWNLOAD;
        let mut h = HeaderMap::new();
        assert!(check_version(&h, v).is_ok());
        h.insert(
            "x-backendai-version",
            HeaderValue::from_static("v7.20230615"),
        );
        assert!(check_version(&h, v).is_ok());
        h.insert(
            "x-backendai-version",
            HeaderValue::from_static("v9.20250722"),
        );
        let err = check_version(&h, v).unwrap_err();
        assert_eq!(err.slug, "generic-bad-request");
        assert_eq!(err.msg.as_deref(), Some("Unsupported API version."));
        h.insert(
            "x-backendai-version",
            HeaderValue::from_static("v3.20170615"),
        );
        assert!(check_version(&h, v).is_err());
    }
}
