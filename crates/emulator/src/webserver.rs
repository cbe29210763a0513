//! Session mode: the Backend.AI web server in front of the manager, on the same listener.
//!
//! - `POST /server/login` `{"username","password"}`: 200 `authenticated: true` with the
//!   cookie `AIOHTTP_SESSION=<32 hex>; expires=...; HttpOnly; Max-Age=604800; Path=/` and the
//!   header `X-BackendAI-SessionID`; a wrong password or unknown user is still 200, with
//!   `authenticated: false` and a fresh, unauthenticated session id; a missing field is 400,
//!   an already logged-in session 400, and 10 failures for one username within 20 minutes
//!   give 429 (even with the right password) until 20 minutes after the last attempt.
//! - `POST /server/login-check`, `POST /server/logout` (201, cookie expired).
//! - `GET /func/` (anonymous) and `GET /func/ping`.
//! - `/func/<manager path>` with `X-BackendAI-SessionID` (which wins) or the cookie: the
//!   manager's handlers as the user's keypair, no signature; no or unknown session: 401
//!   `auth-failed` "Unauthorized access". Tunnels under `/func/stream/...`: see
//!   [`crate::stream`] (502 for any handshake failure; closes not passed on).

use std::sync::Arc;
use std::time::Instant;

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use crate::json::J;
use crate::logins::{WebSession, ALLOWED_FAIL_COUNT};
use crate::manager;
use crate::problem::{json_response, Problem, PROBLEM_CONTENT_TYPE, PROBS};
use crate::request::{Req, Via};
use crate::state::Shared;

/// The login cookie's name.
pub const SESSION_COOKIE: &str = "AIOHTTP_SESSION";
/// The header that carries the login session id (23.03+); it wins over the cookie.
pub const SESSION_HEADER: &str = "x-backendai-sessionid";
/// Login sessions last this long (`session.max_age`).
const MAX_AGE_SECS: i64 = 604_800;

/// The session id a request carries: the header if present (even a wrong one), else the cookie.
fn request_session_id(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(SESSION_HEADER) {
        return Some(String::from_utf8_lossy(value.as_bytes()).trim().to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(';')
                .map(|c| c.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .find_map(|cookie| {
            cookie
                .strip_prefix(SESSION_COOKIE)
                .and_then(|rest| rest.strip_prefix('='))
                .map(|v| v.trim_matches('"').to_owned())
        })
}

fn web_problem(status: StatusCode, slug: &str, title: &str) -> Response {
    let body = J::obj()
        .with("type", format!("{PROBS}{slug}"))
        .with("title", title);
    (
        status,
        [(header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE)],
        body.dumps(),
    )
        .into_response()
}

/// What the web server answers when its manager refuses connections: 502 `bad-gateway`,
/// on `/server/login` with the client library's error as `details` (26.x: also as `msg`,
/// naming the manager's address, here `manager`).
fn manager_unreachable(shared: &Shared, manager: Option<&str>) -> Response {
    let release = shared.release;
    let mut body = J::obj()
        .with("type", format!("{PROBS}bad-gateway"))
        .with("title", "The proxy target server is inaccessible.");
    if release.error_codes {
        body.push("error_code", "api_request_unreachable");
    }
    if let Some(manager) = manager {
        let details = if release.error_codes {
            let (host, port) = manager.rsplit_once(':').unwrap_or((manager, "80"));
            format!(
                "BackendClientError('Request to the API endpoint has failed.\\nCheck your network \
                 connection and/or the server status.\\n\u{279c} ClientConnectorError(ConnectionKey(\
                 host=\\'{host}\\', port={port}, is_ssl=False, ssl=True, proxy=None, proxy_auth=None, \
                 proxy_headers_hash=None, server_hostname=None), ConnectionRefusedError(111, \"Connect \
                 call failed (\\'{host}\\', {port})\"))')"
            )
        } else {
            "BackendClientError(\"Request to the API endpoint has failed.\\nCheck your network \
             connection and/or the server status.\\n\u{279c} ClientConnectorError(ConnectionRefusedError(111, \
             'Connection refused'))\")"
                .to_owned()
        };
        if release.error_codes {
            body.push("msg", details.as_str());
        }
        body.push("details", details);
    }
    let text = if release.compact_problems {
        body.dumps_compact()
    } else {
        body.dumps()
    };
    (
        StatusCode::BAD_GATEWAY,
        [(header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE)],
        text,
    )
        .into_response()
}

fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "405: Method Not Allowed",
    )
        .into_response()
}

fn with_session_headers(mut response: Response, id: &str) -> Response {
    let expires =
        (Utc::now() + chrono::Duration::seconds(MAX_AGE_SECS)).format("%a, %d %b %Y %H:%M:%S GMT");
    let cookie = format!(
        "{SESSION_COOKIE}={id}; expires={expires}; HttpOnly; Max-Age={MAX_AGE_SECS}; Path=/"
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
    response
}

/// Whether a JSON value is "truthy" as Python sees it.
fn truthy(value: Option<&serde_json::Value>) -> bool {
    match value {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => !s.is_empty(),
        Some(serde_json::Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(serde_json::Value::Array(a)) => !a.is_empty(),
        Some(serde_json::Value::Object(o)) => !o.is_empty(),
    }
}

/// `POST /server/login`.
fn login(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let web = &shared.web;
    let existing = request_session_id(headers);
    if web.logged_in(existing.as_deref()).is_some() {
        return web_problem(
            StatusCode::BAD_REQUEST,
            "generic-bad-request",
            "You have already logged in.",
        );
    }
    let creds = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    for field in ["username", "password"] {
        if !truthy(creds.get(field)) {
            return web_problem(
                StatusCode::BAD_REQUEST,
                "invalid-api-params",
                &format!("You must provide the {field} field."),
            );
        }
    }
    let username = match creds.get("username") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let password = creds.get("password").and_then(|v| v.as_str());

    let now = Instant::now();
    let mut fail_count = web.recent_failures(&username, now);
    let record = |fail_count: u32| web.record_attempt(&username, now, fail_count);
    if fail_count >= ALLOWED_FAIL_COUNT {
        record(fail_count);
        tracing::info!(%username, fail_count, "login blocked: too many failed attempts");
        return web_problem(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "Too many failed login attempts",
        );
    }
    if !shared.manager_is_up() {
        // The anonymous `User.authorize` call to the manager fails: a client error, which
        // is not a failed login (the counter is not touched).
        tracing::info!(%username, "login: the manager is down");
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1:80");
        return manager_unreachable(shared, Some(host));
    }
    let user = shared
        .users
        .iter()
        .find(|u| u.username == username && Some(u.password.as_str()) == password);
    let keypair = user.and_then(|u| shared.keypair(&u.access_key));
    let given_otp = creds.get("otp").and_then(|v| v.as_str());
    if let (Some(user), Some(_)) = (user, keypair) {
        if user.otp.is_some() && given_otp.is_none() {
            // The TOTP plugin's answer: not a failed login (no counter), status 200.
            tracing::info!(%username, "login: a one-time password is needed");
            let body = J::obj().with("authenticated", false).with(
                "data",
                J::obj()
                    .with("type", format!("{PROBS}require-totp-authentication"))
                    .with("title", "Two-Factor Authentication needed.")
                    .with(
                        "details",
                        "You must authenticate using Two-Factor Authentication.",
                    ),
            );
            return json_response(StatusCode::OK, &body);
        }
    }
    let refusal = match (user, keypair) {
        (Some(user), Some(_)) if user.otp.is_some() && user.otp.as_deref() != given_otp => Some((
            "auth-failed",
            "Credential/signature mismatch.",
            "Invalid OTP code.".to_owned(),
        )),
        (Some(user), Some(_)) => user.password_expired_on.as_ref().map(|on| {
            (
                "password-expired",
                "Password has expired.",
                format!("Password expired on {on}."),
            )
        }),
        _ => Some((
            "auth-failed",
            "Credential/signature mismatch.",
            "User credential mismatch.".to_owned(),
        )),
    };
    match (refusal, keypair) {
        (None, Some(kp)) => {
            record(0);
            let id = web.save(
                existing.as_deref(),
                WebSession {
                    access_key: Some(kp.access_key.clone()),
                },
            );
            tracing::info!(%username, "login succeeded");
            let body = J::obj().with("authenticated", true).with(
                "data",
                J::obj()
                    .with("access_key", kp.access_key.as_str())
                    .with("role", kp.role.as_str())
                    .with("status", "active"),
            );
            with_session_headers(json_response(StatusCode::OK, &body), &id)
        }
        (refusal, _) => {
            let (slug, title, details) = refusal.unwrap_or_default();
            fail_count += 1;
            record(fail_count);
            let id = web.save(existing.as_deref(), WebSession { access_key: None });
            tracing::info!(%username, fail_count, slug, "login failed");
            let body = J::obj().with("authenticated", false).with(
                "data",
                J::obj()
                    .with("type", format!("{PROBS}{slug}"))
                    .with("title", title)
                    .with("details", details),
            );
            // 26.4+ pass the manager's 401 on; older web servers answer 200.
            let status = if shared.release.login_failure_status {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::OK
            };
            with_session_headers(json_response(status, &body), &id)
        }
    }
}

/// `POST /server/login-check`.
fn login_check(shared: &Shared, headers: &HeaderMap) -> Response {
    let id = request_session_id(headers);
    let known = id
        .as_deref()
        .and_then(|id| shared.web.session(id).map(|s| (id.to_owned(), s)));
    let (authenticated, data, session_id) = match known {
        Some((
            id,
            WebSession {
                access_key: Some(ak),
            },
        )) => {
            let role = shared.role_of(&ak);
            let data = J::obj()
                .with("access_key", ak.as_str())
                .with("role", role.as_str())
                .with("status", "active");
            (true, data, J::from(id))
        }
        Some((id, _)) => (false, J::Null, J::from(id)),
        None => (false, J::Null, J::Null),
    };
    let body = J::obj()
        .with("authenticated", authenticated)
        .with("data", data)
        .with("session_id", session_id);
    json_response(StatusCode::OK, &body)
}

/// `POST /server/logout`: 201 (26.x: 200), the session forgotten and the cookie expired.
fn logout(shared: &Shared, headers: &HeaderMap) -> Response {
    if let Some(id) = request_session_id(headers) {
        shared.web.remove(&id);
    }
    let status = if shared.release.logout_ok {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut response = status.into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "AIOHTTP_SESSION=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/",
        ),
    );
    response
}

/// Handles `/server/*` requests; `None` when the path is not one of the web server's.
pub(crate) fn server_route(shared: &Shared, req: &Req) -> Option<Response> {
    let handler: fn(&Shared, &Req) -> Response = match req.path.as_str() {
        "/server/login" => |s, r| login(s, &r.parts.headers, &r.body),
        "/server/login-check" => |s, r| login_check(s, &r.parts.headers),
        "/server/logout" => |s, r| logout(s, &r.parts.headers),
        _ => return None,
    };
    Some(if req.parts.method == Method::POST {
        handler(shared, req)
    } else {
        method_not_allowed()
    })
}

/// Handles `/func` and `/func/...`.
pub(crate) async fn func(shared: &Arc<Shared>, mut req: Req) -> Response {
    let rest = req.path.strip_prefix("/func").unwrap_or("").to_owned();
    let rest = if rest.is_empty() {
        "/".to_owned()
    } else {
        rest
    };
    if rest == "/ping" && req.parts.method == Method::GET {
        let body = J::obj()
            .with(
                "version",
                shared.manager_version.clone().unwrap_or_default(),
            )
            .with("details", "Success");
        return json_response(StatusCode::OK, &body);
    }
    req.path = rest;
    if req.path == "/" && req.parts.method == Method::GET {
        if !shared.manager_is_up() {
            return manager_unreachable(shared, None);
        }
        return manager::handle(shared, req, Via::WebAnonymous).await;
    }
    let id = request_session_id(&req.parts.headers);
    let Some(access_key) = shared.web.logged_in(id.as_deref()) else {
        return Problem::web_unauthorized().into_response();
    };
    if !shared.manager_is_up() {
        return manager_unreachable(shared, None);
    }
    manager::handle(shared, req, Via::Web { access_key }).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_wins_over_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; AIOHTTP_SESSION=cookieid"),
        );
        assert_eq!(request_session_id(&h).as_deref(), Some("cookieid"));
        h.insert(SESSION_HEADER, HeaderValue::from_static("headerid"));
        assert_eq!(request_session_id(&h).as_deref(), Some("headerid"));
    }

    #[test]
    fn truthiness() {
        assert!(!truthy(None));
        assert!(!truthy(Some(&serde_json::json!(""))));
        assert!(!truthy(Some(&serde_json::json!(0))));
        assert!(truthy(Some(&serde_json::json!("x"))));
    }
}
