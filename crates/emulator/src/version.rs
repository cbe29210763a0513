//! Backend.AI API version strings (`v8.20240915`) and the thresholds the emulator cares about.

use std::fmt;
use std::str::FromStr;

/// A parsed `vMAJOR.YYYYMMDD` API version; ordered by major, then date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// The major number (`8` in `v8.20240915`).
    pub major: u32,
    /// The revision date as a number (`20240915`).
    pub date: u32,
}

impl ApiVersion {
    /// A version from its parts.
    pub const fn new(major: u32, date: u32) -> Self {
        ApiVersion { major, date }
    }

    /// The oldest version any manager still accepts (body no longer signed).
    pub const OLDEST: ApiVersion = ApiVersion::new(4, 20181215);
    /// 20.03: `/session/...` and `/stream/session/...` replace `/kernel/...`.
    pub const SESSION_PATHS: ApiVersion = ApiVersion::new(5, 20191215);
    /// 21.09: `POST /admin/gql` with standard `{data, errors}` replies.
    pub const ADMIN_GQL: ApiVersion = ApiVersion::new(6, 20210815);
    /// 23.09: service ports carry `is_inference`.
    pub const IS_INFERENCE: ApiVersion = ApiVersion::new(7, 20230615);
    /// 24.09: `download_single` becomes POST.
    pub const POST_DOWNLOAD: ApiVersion = ApiVersion::new(8, 20240915);
    /// 25.12+: vnc/rdp ports are relayed too.
    pub const VNC_RDP: ApiVersion = ApiVersion::new(9, 20250722);
    /// 25.12 and 26.x, as the real 26.9.6 answers (see `release.rs`).
    pub const V9: ApiVersion = ApiVersion::new(9, 20250722);

    /// Whether this server uses the v4 `/kernel/...` and `/stream/kernel/...` paths.
    pub fn uses_kernel_paths(self) -> bool {
        self < Self::SESSION_PATHS
    }

    /// The manager release that first reported this version, when it is a known one.
    pub fn known_manager_version(self) -> Option<&'static str> {
        Some(match (self.major, self.date) {
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
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}", self.major, self.date)
    }
}

/// Why a version string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid API version {0:?}: expected the form vMAJOR.YYYYMMDD, e.g. v8.20240915")]
pub struct ApiVersionError(pub String);

impl FromStr for ApiVersion {
    type Err = ApiVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ApiVersionError(s.to_owned());
        let rest = s.strip_prefix('v').ok_or_else(err)?;
        let (major, date) = rest.split_once('.').ok_or_else(err)?;
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || date.len() != 8 || !digits(date) {
            return Err(err());
        }
        Ok(ApiVersion {
            major: major.parse().map_err(|_| err())?,
            date: date.parse().map_err(|_| err())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders() {
        let v8: ApiVersion = "v8.20240915".parse().unwrap();
        let v7: ApiVersion = "v7.20230615".parse().unwrap();
        let v4: ApiVersion = "v4.20190615".parse().unwrap();
        assert!(v4 < v7 && v7 < v8);
        assert!(v4.uses_kernel_paths());
        assert!(!v7.uses_kernel_paths());
        assert_eq!(v8.to_string(), "v8.20240915");
        assert_eq!(v7.known_manager_version(), Some("23.09.10"));
        for bad in [
            "8.20240915",
            "v8",
            "v8.2024091",
            "vx.20240915",
            "v8.2024091a",
            "",
        ] {
            assert!(bad.parse::<ApiVersion>().is_err(), "{bad}");
        }
    }
}
