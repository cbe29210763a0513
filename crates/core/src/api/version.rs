//! API version negotiation (protocol doc §2): the server's `GET /` reports the newest API it
//! speaks; we send `min(server, ours)` and pick the stream path family from it.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A Backend.AI API version such as `v8.20240915`: a major number and a revision date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiVersion {
    /// The major protocol number (4 … 9).
    pub major: u32,
    /// The revision date as `YYYYMMDD`.
    pub revision: u32,
}

/// The newest API version this client implements: 25.12 and 26.x (verified on 26.9.6).
pub const CLIENT_API_VERSION: ApiVersion = ApiVersion::V9;

/// The oldest API version servers accept at all (docs/protocol.md).
pub const OLDEST_SUPPORTED: ApiVersion = ApiVersion::OLDEST;

/// The versions where something a client can tell changed: one list, for the client and
/// the emulator alike.
impl ApiVersion {
    /// A version from its parts.
    pub const fn new(major: u32, revision: u32) -> ApiVersion {
        ApiVersion { major, revision }
    }

    /// 18.12: the oldest version any manager accepts (the body is no longer signed).
    pub const OLDEST: ApiVersion = ApiVersion::new(4, 20181215);
    /// 20.03: `/session/...` and `/stream/session/...` replace `/kernel/...`.
    pub const SESSION_PATHS: ApiVersion = ApiVersion::new(5, 20191215);
    /// 21.09: `POST /admin/gql` with standard `{data, errors}` replies.
    pub const ADMIN_GQL: ApiVersion = ApiVersion::new(6, 20210815);
    /// 23.09: service ports carry `is_inference`.
    pub const IS_INFERENCE: ApiVersion = ApiVersion::new(7, 20230615);
    /// 24.09: `download_single` by POST.
    pub const POST_DOWNLOAD: ApiVersion = ApiVersion::new(8, 20240915);
    /// 25.12 and 26.x: vnc and rdp ports relayed, and 26.x's answers (docs/protocol.md).
    pub const V9: ApiVersion = ApiVersion::new(9, 20250722);

    /// The version to send to a server that reports `server`: the older of the two.
    pub fn negotiate(server: ApiVersion) -> ApiVersion {
        server.min(CLIENT_API_VERSION)
    }

    /// Which stream path family this version uses.
    pub fn stream_paths(self) -> StreamPaths {
        if self < ApiVersion::SESSION_PATHS {
            StreamPaths::Kernel
        } else {
            StreamPaths::Session
        }
    }

    /// Whether `download_single` is served by POST (24.09, v8.20240915, and later).
    pub fn download_single_is_post(self) -> bool {
        self >= ApiVersion::POST_DOWNLOAD
    }

    /// Whether GraphQL lives at `/admin/gql` (v6.20210815+) rather than `/admin/graphql`.
    pub fn has_admin_gql(self) -> bool {
        self >= ApiVersion::ADMIN_GQL
    }

    /// Whether `vnc` and `rdp` service ports are relayed (25.12 and later).
    pub fn relays_vnc_rdp(self) -> bool {
        self >= ApiVersion::V9
    }
}

impl Ord for ApiVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.revision).cmp(&(other.major, other.revision))
    }
}

impl PartialOrd for ApiVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Zero-padded, so that what is shown always parses back (`from_str` wants 8 digits).
        write!(f, "v{}.{:08}", self.major, self.revision)
    }
}

/// A version string that is not of the form `vN.YYYYMMDD`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Backend.AI API version: {0:?} (expected e.g. \"v8.20240915\")")]
pub struct BadVersion(pub String);

impl FromStr for ApiVersion {
    type Err = BadVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadVersion(s.chars().take(64).collect());
        let rest = s.strip_prefix('v').ok_or_else(bad)?;
        let (major, revision) = rest.split_once('.').ok_or_else(bad)?;
        let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(major) || revision.len() != 8 || !all_digits(revision) {
            return Err(bad());
        }
        Ok(ApiVersion {
            major: major.parse().map_err(|_| bad())?,
            revision: revision.parse().map_err(|_| bad())?,
        })
    }
}

/// The two families of stream endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamPaths {
    /// API v4: `/stream/kernel/{session_name}/...`
    Kernel,
    /// API v5+: `/stream/session/{name_or_id}/...`
    Session,
}

impl StreamPaths {
    /// The path prefix, e.g. `/stream/session`.
    pub fn prefix(self) -> &'static str {
        match self {
            StreamPaths::Kernel => "/stream/kernel",
            StreamPaths::Session => "/stream/session",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ApiVersion {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_orders_versions() {
        assert_eq!(v("v8.20240915").to_string(), "v8.20240915");
        assert!(v("v4.20190615") < v("v5.20191215"));
        assert!(v("v6.20220615") < v("v6.20230315"));
        for bad in [
            "",
            "v",
            "8.20240915",
            "v8",
            "v8.2024",
            "vx.20240915",
            "v8.2024091a",
        ] {
            assert!(bad.parse::<ApiVersion>().is_err(), "{bad}");
        }
    }

    /// Found by `cargo fuzz` (target `api_version`): a revision with a leading zero was
    /// shown without it, and the shown version did not parse back.
    #[test]
    fn a_revision_with_leading_zeros_round_trips() {
        let version = v("v99.02057027");
        assert_eq!(version.to_string(), "v99.02057027");
        assert_eq!(v(&version.to_string()), version);
        assert_eq!(v("v8.20240915").to_string(), "v8.20240915");
    }

    #[test]
    fn negotiates_the_older_version_and_path_family() {
        assert_eq!(ApiVersion::negotiate(v("v9.20250722")), v("v9.20250722"));
        assert_eq!(ApiVersion::negotiate(v("v10.20270101")), CLIENT_API_VERSION);
        assert_eq!(ApiVersion::negotiate(v("v7.20230615")), v("v7.20230615"));
        assert_eq!(v("v4.20190615").stream_paths(), StreamPaths::Kernel);
        assert_eq!(v("v5.20191215").stream_paths(), StreamPaths::Session);
        assert!(!v("v7.20230615").download_single_is_post());
        assert!(v("v8.20240915").download_single_is_post());
        assert!(!v("v4.20190615").has_admin_gql());
    }
}
