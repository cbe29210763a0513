//! Errors of the Backend.AI client, each a one-line message a person can act on.

use serde::Deserialize;
use serde_json::Value;

/// An RFC 7807 problem body as the manager sends it (`application/problem+json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Problem {
    /// e.g. `https://api.backend.ai/probs/auth-failed`
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Short human title, e.g. `No such session.`
    #[serde(default)]
    pub title: String,
    /// Optional detail.
    #[serde(default)]
    pub msg: Option<String>,
    /// Optional structured detail (the agent's error for start failures).
    #[serde(default)]
    pub data: Option<Value>,
}

impl Problem {
    /// Parses a problem body; anything else becomes a problem whose title is the text.
    pub fn parse(body: &[u8]) -> Problem {
        match serde_json::from_slice::<Problem>(body) {
            Ok(p) if !p.kind.is_empty() || !p.title.is_empty() => p,
            _ => Problem {
                title: one_line(&String::from_utf8_lossy(body), 200),
                ..Problem::default()
            },
        }
    }

    /// The slug at the end of `type`, e.g. `auth-failed`.
    pub fn slug(&self) -> &str {
        self.kind.rsplit('/').next().unwrap_or_default()
    }

    /// `data` as a short string, when present.
    pub fn data_text(&self) -> Option<String> {
        match self.data.as_ref()? {
            Value::Null => None,
            Value::String(s) => Some(one_line(s, 300)),
            other => Some(one_line(&other.to_string(), 300)),
        }
    }

    /// The most specific text the server gave: `msg`, else `title`.
    pub fn detail(&self) -> String {
        match self.msg.as_deref().filter(|m| !m.is_empty()) {
            Some(msg) => readable_msg(msg),
            None => one_line(&self.title, 300),
        }
    }
}

/// A problem's `msg` as one readable line. 26.x puts whole pydantic reports there
/// ("<BackendAISchemaValidationFailed(400): Schema validation failed. (1 validation error
/// for Model\nfield\n  Field required [type=missing, ...]\n  For further ...)> -> extra_data:
/// ..."); of those, the field and what is wrong with it ("port: Input should be greater
/// than or equal to 1024") is what a person can act on.
pub fn readable_msg(msg: &str) -> String {
    if msg.starts_with("<BackendAISchemaValidationFailed") {
        let mut lines = msg.lines().skip(1);
        let fields: Vec<String> = std::iter::from_fn(|| {
            let field = lines.next()?.trim();
            let what = lines.next()?.trim();
            lines.next();
            let what = what.split(" [type=").next().unwrap_or(what);
            (!field.is_empty() && !field.starts_with("->")).then(|| format!("{field}: {what}"))
        })
        .collect();
        if !fields.is_empty() {
            return one_line(&fields.join("; "), 300);
        }
    }
    one_line(msg, 300)
}

/// Collapses whitespace and cuts `text` to `max` characters, so server text fits one line.
pub fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() > max {
        let cut: String = joined.chars().take(max).collect();
        format!("{cut}…")
    } else {
        joined
    }
}

/// Everything that can go wrong talking to a Backend.AI endpoint.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The endpoint URL itself is unusable.
    #[error("invalid endpoint URL {url:?}: {reason}")]
    InvalidEndpoint {
        /// What the user gave.
        url: String,
        /// Why it is unusable.
        reason: String,
    },
    /// No TCP connection could be made.
    #[error(
        "cannot reach {endpoint}: {detail}. Check the endpoint URL and that the server is up."
    )]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The OS's reason.
        detail: String,
    },
    /// The proxy setting cannot be used.
    #[error("the proxy {proxy:?} cannot be used: {detail}")]
    InvalidProxy {
        /// The proxy as given (password hidden).
        proxy: String,
        /// Why.
        detail: String,
    },
    /// The HTTP proxy did not connect us to the endpoint: it refused (407, 403, 502...),
    /// closed the connection, or could not be reached.
    #[error("the proxy {proxy} {detail}")]
    Proxy {
        /// The proxy (`http://[user@]host:port`, no password).
        proxy: String,
        /// What it did, with what to do about it, e.g. "refused the connection to
        /// api.example.com:443 (407 Proxy Authentication Required): check the proxy user
        /// name and password".
        detail: String,
        /// Whether the same request may work later as it is (the proxy was unreachable or
        /// its upstream failed), as opposed to a refusal the user must act on.
        retryable: bool,
    },
    /// The TLS handshake failed, usually an untrusted certificate.
    #[error("TLS with {endpoint} failed: {detail}. If the server uses a private CA, add it to the profile; skipping verification is a last resort.")]
    Tls {
        /// The endpoint.
        endpoint: String,
        /// The TLS library's reason.
        detail: String,
    },
    /// The request or handshake took longer than allowed.
    #[error("{what} timed out after {secs} s")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The limit.
        secs: u64,
    },
    /// 401: the keypair or the login session was refused.
    #[error("the server refused the credentials (401: {detail}). Check the access and secret key (or the username and password) and sign in again.")]
    AuthFailed {
        /// The server's reason, e.g. "Signature mismatch".
        detail: String,
    },
    /// 400 "Date/time sync error": the request date is more than 15 minutes off.
    #[error("the server rejected the request time (clock skew over 15 minutes). Set this computer's clock (e.g. enable NTP) and retry.")]
    ClockSkew,
    /// Web login refused the username or password.
    #[error("sign-in failed: {}. Check the username and password.", detail.trim_end_matches('.'))]
    LoginFailed {
        /// The server's reason.
        detail: String,
    },
    /// The account's password is older than the server allows.
    #[error("the password of this account has expired ({detail}); set a new one in the Backend.AI web UI, then sign in again.")]
    PasswordExpired {
        /// The server's reason, e.g. "Password expired on 2020-12-31 00:00:00+00:00."
        detail: String,
    },
    /// The web server asks for a one-time password (the account has two-factor sign-in).
    #[error("this account signs in with a one-time password (OTP) as well; give the current code from its authenticator app.")]
    OtpRequired,
    /// Too many failed logins for this user.
    #[error("too many failed sign-in attempts (429); wait about 20 minutes before trying again.")]
    TooManyLogins,
    /// 404 "No such session."
    #[error("no session {session:?} on this endpoint; it may have ended")]
    SessionNotFound {
        /// The name or id asked for.
        session: String,
    },
    /// 404 "No such app service."
    #[error("session {session:?} has no app {app:?}.")]
    AppNotFound {
        /// The session.
        session: String,
        /// The app asked for.
        app: String,
    },
    /// 404 from the stream endpoint for a session that exists but does not run (26.x:
    /// "Running session ... does not exist.").
    #[error("session {session:?} is not running, so its apps are not available; wait until it is RUNNING.")]
    NoRunningSession {
        /// The session.
        session: String,
    },
    /// The session exists but is not running, so it has no apps yet.
    #[error("session {session:?} is {status}, not RUNNING, so its apps are not available yet.")]
    SessionNotRunning {
        /// The session.
        session: String,
        /// Its status.
        status: String,
    },
    /// An option for starting an app that the app does not declare.
    #[error("cannot start {app} that way: {detail}.")]
    BadLaunchOption {
        /// The app.
        app: String,
        /// What is wrong.
        detail: String,
    },
    /// 500 with `data`: the app did not start inside the container.
    #[error("{app} failed to start in session {session:?}: {detail}")]
    AppStartFailed {
        /// The session.
        session: String,
        /// The app.
        app: String,
        /// The agent's reason.
        detail: String,
    },
    /// 502 from the web server: its upstream call failed and the reason is hidden.
    #[error("the web server answered 502 ({detail}): the manager is down or refused to open the app, and only the server's log says which. Check that the session and app are running, or retry later.")]
    BadGateway {
        /// The web server's text.
        detail: String,
    },
    /// The server speaks an API version we cannot use.
    #[error("the server's API version is unsupported: {0}")]
    UnsupportedVersion(String),
    /// Any other HTTP error with the server's problem text.
    #[error("the server answered {status} {title}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Http {
        /// HTTP status code.
        status: u16,
        /// The problem title.
        title: String,
        /// `msg` and `data`, when given.
        detail: Option<String>,
    },
    /// GraphQL `errors`.
    #[error("the server rejected the session query: {0}")]
    GraphQl(String),
    /// A reply that does not have the expected shape.
    #[error("unexpected reply from the server: {0}")]
    UnexpectedReply(String),
    /// A local file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl ApiError {
    /// A stable short name for the error class, for the UI and `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::InvalidEndpoint { .. } => "invalid-endpoint",
            ApiError::Unreachable { .. } => "unreachable",
            ApiError::Tls { .. } => "tls",
            ApiError::InvalidProxy { .. } => "invalid-proxy",
            ApiError::Proxy { .. } => "proxy",
            ApiError::Timeout { .. } => "timeout",
            ApiError::AuthFailed { .. } => "auth-failed",
            ApiError::ClockSkew => "clock-skew",
            ApiError::LoginFailed { .. } => "login-failed",
            ApiError::PasswordExpired { .. } => "password-expired",
            ApiError::OtpRequired => "otp-required",
            ApiError::TooManyLogins => "too-many-logins",
            ApiError::SessionNotFound { .. } => "session-not-found",
            ApiError::AppNotFound { .. } => "app-not-found",
            ApiError::SessionNotRunning { .. } | ApiError::NoRunningSession { .. } => {
                "session-not-running"
            }
            ApiError::AppStartFailed { .. } => "app-start-failed",
            ApiError::BadLaunchOption { .. } => "invalid-option",
            ApiError::BadGateway { .. } => "bad-gateway",
            ApiError::UnsupportedVersion(_) => "unsupported-version",
            ApiError::Http { .. } => "http",
            ApiError::GraphQl(_) => "graphql",
            ApiError::UnexpectedReply(_) => "unexpected-reply",
            ApiError::Io { .. } => "io",
        }
    }

    /// Whether retrying the same request later may succeed without any user action.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ApiError::Unreachable { .. }
                | ApiError::Timeout { .. }
                | ApiError::BadGateway { .. }
                | ApiError::Proxy {
                    retryable: true,
                    ..
                }
        )
    }

    /// Maps an HTTP error reply to an error; `context` names the session and app for
    /// stream and session-scoped requests.
    pub fn from_reply(status: u16, body: &[u8], context: Option<(&str, &str)>) -> ApiError {
        let problem = Problem::parse(body);
        let (session, app) = context.unwrap_or(("", ""));
        match (status, problem.slug()) {
            (401, "password-expired") => ApiError::PasswordExpired {
                detail: problem.detail(),
            },
            (401, _) => ApiError::AuthFailed {
                detail: problem.detail(),
            },
            (400, "invalid-auth-params") if problem.detail().contains("Date/time") => {
                ApiError::ClockSkew
            }
            (400, "generic-bad-request") if problem.title.contains("Unsupported API version") => {
                ApiError::UnsupportedVersion(one_line(&problem.title, 200))
            }
            (404, "object-not-found") if problem.title.contains("app service") => {
                ApiError::AppNotFound {
                    session: session.to_owned(),
                    app: app.to_owned(),
                }
            }
            (404, "object-not-found")
                if problem
                    .msg
                    .as_deref()
                    .is_some_and(|m| m.starts_with("Running session")) =>
            {
                ApiError::NoRunningSession {
                    session: session.to_owned(),
                }
            }
            // 26.x answers an unknown session with its generic `entity-not-found`, and an id
            // the caller may not read (no session of theirs) with a permission error.
            (404, "entity-not-found") | (403, "not-enough-permission") if context.is_some() => {
                ApiError::SessionNotFound {
                    session: session.to_owned(),
                }
            }
            (404, "object-not-found" | "too-many-sessions-matched")
                if problem.title.contains("session") || problem.slug().starts_with("too-many") =>
            {
                ApiError::SessionNotFound {
                    session: session.to_owned(),
                }
            }
            (429, _) => ApiError::TooManyLogins,
            (500, _) if context.is_some() && problem.data.is_some() => ApiError::AppStartFailed {
                session: session.to_owned(),
                // Shown without quotes, so it is kept to one line like the server's text.
                app: one_line(app, 200),
                detail: problem.data_text().unwrap_or_else(|| problem.detail()),
            },
            (502, _) => ApiError::BadGateway {
                detail: one_line(&problem.title, 200),
            },
            _ => {
                let mut detail = problem
                    .msg
                    .as_deref()
                    .filter(|m| !m.is_empty())
                    .map(readable_msg);
                if let Some(data) = problem.data_text() {
                    detail = Some(match detail {
                        Some(m) => format!("{m} ({data})"),
                        None => data,
                    });
                }
                ApiError::Http {
                    status,
                    title: if problem.title.is_empty() {
                        "(no detail)".to_owned()
                    } else {
                        one_line(&problem.title, 200)
                    },
                    detail: detail.map(|d| one_line(&d, 300)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "https://api.backend.ai/probs/";

    fn body(slug: &str, title: &str, msg: Option<&str>, data: Option<&str>) -> Vec<u8> {
        let mut v = serde_json::json!({"type": format!("{P}{slug}"), "title": title});
        if let Some(m) = msg {
            v["msg"] = m.into();
        }
        if let Some(d) = data {
            v["data"] = d.into();
        }
        v.to_string().into_bytes()
    }

    #[test]
    fn maps_the_real_managers_errors() {
        let ctx = Some(("rig-running", "nope"));
        let e = ApiError::from_reply(
            401,
            &body(
                "auth-failed",
                "Credential/signature mismatch.",
                Some("Signature mismatch"),
                None,
            ),
            None,
        );
        assert_eq!(e.kind(), "auth-failed");
        assert!(e.to_string().contains("Signature mismatch"));
        let e = ApiError::from_reply(
            400,
            &body(
                "invalid-auth-params",
                "Missing or invalid authorization parameters.",
                Some("Date/time sync error"),
                None,
            ),
            None,
        );
        assert_eq!(e.kind(), "clock-skew");
        let e = ApiError::from_reply(
            404,
            &body(
                "object-not-found",
                "No such app service.",
                Some("rig-running:nope"),
                None,
            ),
            ctx,
        );
        assert_eq!(
            e.to_string(),
            "session \"rig-running\" has no app \"nope\"."
        );
        let e = ApiError::from_reply(
            404,
            &body("object-not-found", "No such session.", None, None),
            ctx,
        );
        assert_eq!(e.kind(), "session-not-found");
        let e = ApiError::from_reply(
            500,
            &body(
                "internal-server-error",
                "Internal server error",
                Some("Failed to launch the app service"),
                Some("port 8081 not open"),
            ),
            ctx,
        );
        assert_eq!(
            e.to_string(),
            "nope failed to start in session \"rig-running\": port 8081 not open"
        );
        let e = ApiError::from_reply(
            502,
            &body(
                "bad-gateway",
                "The proxy target server is inaccessible.",
                None,
                None,
            ),
            ctx,
        );
        assert_eq!(e.kind(), "bad-gateway");
        let e = ApiError::from_reply(
            400,
            &body(
                "invalid-api-params",
                "Invalid API parameters.",
                Some("Input validation error"),
                Some("x"),
            ),
            ctx,
        );
        assert_eq!(
            e.to_string(),
            "the server answered 400 Invalid API parameters.: Input validation error (x)"
        );
    }

    /// As the real 26.9.6 manager answers (tests/rigs/26.9).
    #[test]
    fn maps_what_26_9_answers() {
        let ctx = Some(("rig-pending", "echo"));
        let e = ApiError::from_reply(
            404,
            &body(
                "object-not-found",
                "No such session.",
                Some("Running session b0a7c0de-0000-4000-8000-00000000a002 does not exist."),
                None,
            ),
            ctx,
        );
        assert_eq!(e.kind(), "session-not-running");
        assert!(
            e.to_string().contains("\"rig-pending\" is not running"),
            "{e}"
        );
        let e = ApiError::from_reply(
            404,
            &body(
                "entity-not-found",
                "Entity not found.",
                Some("No SessionRow matches the given key"),
                None,
            ),
            Some(("nope", "echo")),
        );
        assert_eq!(e.kind(), "session-not-found");
        let e = ApiError::from_reply(
            401,
            &body(
                "password-expired",
                "Password has expired.",
                Some("Password expired on 2020-12-31 00:00:00+00:00."),
                None,
            ),
            None,
        );
        assert_eq!(e.kind(), "password-expired");
        assert!(e.to_string().contains("2020-12-31"), "{e}");
        let pydantic = "<BackendAISchemaValidationFailed(400): Schema validation failed. (1 validation error for StreamProxyRequest\nport\n  Input should be greater than or equal to 1024 [type=greater_than_equal, input_value='80', input_type=str]\n    For further information visit https://errors.pydantic.dev/2.13/v/greater_than_equal)>\n -> extra_data: {'errors': []}";
        let e = ApiError::from_reply(
            400,
            &body(
                "generic-bad-request",
                "Invalid or Missing API Parameters.",
                Some(pydantic),
                None,
            ),
            Some(("rig-running", "echo")),
        );
        assert_eq!(
            e.to_string(),
            "the server answered 400 Invalid or Missing API Parameters.: port: Input should be greater than or equal to 1024"
        );
    }

    #[test]
    fn non_json_bodies_stay_one_line() {
        let e = ApiError::from_reply(
            503,
            b"<html>\n<body>Service\n  Unavailable</body></html>",
            None,
        );
        assert_eq!(
            e.to_string(),
            "the server answered 503 <html> <body>Service Unavailable</body></html>"
        );
        let long = "x".repeat(1000);
        assert!(
            ApiError::from_reply(500, long.as_bytes(), None)
                .to_string()
                .len()
                < 300
        );
    }

    /// Found while writing the `problem_reply` fuzz target's one-line invariant: a JSON
    /// title with an escaped newline reached the 502 and unsupported-version messages as
    /// it was, and an app name was shown unquoted in the start-failure message.
    #[test]
    fn json_titles_and_app_names_stay_one_line() {
        let title = |t: &str| body("generic-bad-request", t, None, None);
        for (status, body, context) in [
            (502, title("Bad\n gateway"), None),
            (400, title("Unsupported API version:\r\nv99"), None),
            (
                500,
                body("internal-server-error", "x", None, Some("\"boom\"")),
                Some(("s", "app\nname")),
            ),
        ] {
            let text = ApiError::from_reply(status, &body, context).to_string();
            assert!(!text.contains(['\n', '\r']), "{text:?}");
        }
        let e = ApiError::from_reply(502, &title("Bad\n gateway"), None);
        assert!(matches!(&e, ApiError::BadGateway { detail } if detail == "Bad gateway"));
        let e = ApiError::from_reply(400, &title("Unsupported API version:\r\nv99"), None);
        assert_eq!(e.kind(), "unsupported-version");
    }
}
