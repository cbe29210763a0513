//! What a client can tell apart between the manager releases the emulator models, in one
//! place. Each difference is a field of [`Release`], chosen by the API version the emulator
//! reports:
//!
//! - up to `v7.20230615` (23.09): as the real 23.09.10 was seen to answer (tests/rigs/23.09);
//! - `v8.*` (24.03 to 25.11): 23.09's answers, except what is known from the source to
//!   have changed (`download_single` by POST); no server of this era is run by the tests;
//! - from `v9.20250722` (25.12, 26.x): as the real 26.9.6 was seen to answer
//!   (tests/rigs/26.9), differences listed in docs/protocol.md.

use porthole_core::api::version::ApiVersion;

/// How `download_single` is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Download {
    /// GET only (POST: 405); `file` from a JSON body or the query (23.09).
    Get,
    /// POST, `file` from a JSON body or the query; GET answers 400 `deprecated` (24.09).
    PostBodyOrQuery,
    /// POST, `file` from the query only (pydantic `QueryParam`); GET: 405 (26.x).
    PostQuery,
}

/// The behaviour of one manager (and web server) release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Release {
    /// Problem bodies carry `error_code` (25.8+).
    pub(crate) error_codes: bool,
    /// A refused web login answers with the manager's status (401), not 200 (26.4+).
    pub(crate) login_failure_status: bool,
    /// Logout answers 200 with no body (23.09: 201).
    pub(crate) logout_ok: bool,
    /// A tunnel to a session that does not run is 404 "No such session." (23.09: iterating
    /// its null service ports is a bare 500).
    pub(crate) not_running_is_404: bool,
    /// An unknown session is the generic `entity-not-found` (23.09: `object-not-found`).
    pub(crate) entity_not_found: bool,
    /// Stream parameters are a pydantic model: unknown keys are ignored, the `service`
    /// alias is gone, `port` is compared as a number, and schema errors are 400
    /// `generic-bad-request` (23.09: trafaret; unknown keys refused, `port` compared as a
    /// string, so every `port` is refused).
    pub(crate) pydantic_stream_params: bool,
    /// `port=` is compared as a string with the container ports (numbers), so every value
    /// is refused with "does not open the port number" (23.09; 26.x compares numbers).
    pub(crate) port_never_matches: bool,
    /// A failed app start is `app-service-start-failed` (23.09: `internal-server-error`).
    pub(crate) start_failed_type: bool,
    /// How `download_single` is served.
    pub(crate) download: Download,
    /// A missing file in `download_single` is a bare 500 (23.09: `kernel-execution-failed`
    /// with the agent's details).
    pub(crate) download_missing_is_internal: bool,
    /// A tunnel message over the size limit ends the connection at once, the rest of the
    /// message unread, so the client's send fails with a reset (23.09: CLOSE 1009, the
    /// message read to its end).
    pub(crate) drop_oversized: bool,
    /// Problem bodies are compact JSON (23.09: Python's `json.dumps` spacing).
    pub(crate) compact_problems: bool,
    /// A version header newer than the server's fails the signature check (401 "HMAC
    /// signature mismatch", in API mode and through the web server) instead of 400
    /// "Unsupported API version.".
    pub(crate) newer_version_fails_signature: bool,
    /// A request without an Authorization header is 401 before its date is looked at
    /// (23.09: a missing date is 400 first).
    pub(crate) authorization_first: bool,
    /// The web server refuses a `/func/stream/...` request that is no WebSocket upgrade
    /// itself (aiohttp's 400, text/plain); 23.09's fails on it (500).
    pub(crate) web_checks_upgrade: bool,
    /// `/stream/session/{id}/apps` of a session that does not run is 404 (23.09: `[]`).
    pub(crate) apps_of_not_running_is_404: bool,
    /// The signature mismatch's `msg` (23.09: "Signature mismatch").
    pub(crate) hmac_mismatch_msg: &'static str,
    /// An unknown access key's `msg` (23.09: "Access key not found").
    pub(crate) unknown_key_msg: &'static str,
}

impl Release {
    /// The release that reports `version`.
    pub(crate) fn of(version: ApiVersion) -> Release {
        let v9 = version >= ApiVersion::V9;
        Release {
            error_codes: v9,
            login_failure_status: v9,
            logout_ok: v9,
            not_running_is_404: v9,
            entity_not_found: v9,
            pydantic_stream_params: v9,
            start_failed_type: v9,
            // The string comparison comes with the trafaret schema, which 26.x replaced.
            port_never_matches: !v9,
            download: if v9 {
                Download::PostQuery
            } else if version >= ApiVersion::POST_DOWNLOAD {
                Download::PostBodyOrQuery
            } else {
                Download::Get
            },
            download_missing_is_internal: v9,
            drop_oversized: v9,
            compact_problems: v9,
            newer_version_fails_signature: v9,
            authorization_first: v9,
            web_checks_upgrade: v9,
            apps_of_not_running_is_404: v9,
            hmac_mismatch_msg: if v9 {
                "HMAC signature mismatch"
            } else {
                "Signature mismatch"
            },
            unknown_key_msg: if v9 {
                "Access key not found in HMAC"
            } else {
                "Access key not found"
            },
        }
    }
}

/// The manager release that first reported `version`, when it is a known one (what `GET /`
/// reports when the config names no release).
pub(crate) fn known_manager_version(version: ApiVersion) -> Option<&'static str> {
    Some(match (version.major, version.revision) {
        (4, 20181215) => "18.12.0",
        (4, 20190315) => "19.03.0",
        (4, 20190615) => "19.09.0",
        (5, 20191215) => "20.03.0",
        (6, 20200815) => "20.09.0",
        (6, 20210815) => "21.09.0",
        (6, 20220315) => "22.03.0",
        (6, 20220615) => "22.09.0",
        (6, 20230315) => "23.03.0",
        (7, 20230615) => "23.09.10",
        (8, 20240315) => "24.03.0",
        (8, 20240915) => "24.09.0",
        (9, 20250722) => "25.12.0",
        _ => return None,
    })
}

tokio::task_local! {
    /// The release of the server answering the current request (set by the dispatcher),
    /// for what is rendered far from the handler, like problem bodies.
    pub(crate) static CURRENT: Release;
}

/// The release answering the current request (23.09's outside of one).
pub(crate) fn current() -> Release {
    CURRENT
        .try_with(|r| *r)
        .unwrap_or_else(|_| Release::of(ApiVersion::IS_INFERENCE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_by_version() {
        let v = |s: &str| Release::of(s.parse().unwrap());
        assert_eq!(v("v7.20230615").download, Download::Get);
        assert_eq!(v("v8.20240915").download, Download::PostBodyOrQuery);
        assert!(!v("v8.20240915").error_codes);
        let r = v("v9.20250722");
        assert!(r.error_codes && r.entity_not_found && r.pydantic_stream_params);
        assert_eq!(r.download, Download::PostQuery);
    }
}
