//! The optional HTTP control API for fault tests, served only when the emulator is started
//! with `control_http` (`--control`). It has no authentication: loopback and opt-in only.
//!
//! | Request | Effect / reply |
//! |---|---|
//! | `GET /_emulator/sessions` | `[{"id","name","status","status_info","access_key"}]` |
//! | `POST /_emulator/sessions/{name_or_id}/status` `{"status": "TERMINATED", "status_info"?: ".."}` | sets the status (see [`crate::RunningEmulator::set_session_status`]); replies with the session |
//! | `GET /_emulator/relays` | `{"open": N}` open tunnel relays |
//! | `POST /_emulator/shutdown` | 202; the emulator shuts down (relays closed with 1001) |
//! | `POST /_emulator/manager` `{"up": false}` | takes the manager behind the web server down (or back up); see [`crate::RunningEmulator::set_manager_up`]; replies `{"up": bool}` |
//!
//! Errors are problem+json: 404 unknown session, 400 unknown status or bad body.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::EmulatorError;
use crate::json::J;
use crate::params::percent_decode;
use crate::problem::{json_response, Problem};
use crate::request::Req;
use crate::state::{SessionRt, Shared};

/// The path prefix of the control API.
pub const CONTROL_PREFIX: &str = "/_emulator/";

fn session_json(s: &SessionRt) -> J {
    J::obj()
        .with("id", s.id.to_string())
        .with("name", s.name.as_str())
        .with("status", s.status())
        .with("status_info", s.status_info())
        .with("access_key", s.owner.as_str())
}

fn error_problem(e: &EmulatorError) -> Problem {
    match e {
        EmulatorError::UnknownSession(_) => Problem::object_not_found("session").msg(e.to_string()),
        _ => Problem::invalid_api_params().msg(e.to_string()),
    }
}

/// Handles a request under [`CONTROL_PREFIX`].
pub(crate) fn handle(shared: &Shared, req: &Req) -> Response {
    let rest = req.path.strip_prefix(CONTROL_PREFIX).unwrap_or("");
    let segments: Vec<&str> = rest.split('/').collect();
    let method = &req.parts.method;
    match (method, segments.as_slice()) {
        (&Method::GET, ["sessions"]) => json_response(
            StatusCode::OK,
            &J::Arr(shared.sessions.iter().map(|s| session_json(s)).collect()),
        ),
        (&Method::POST, ["sessions", session, "status"]) => {
            let body: serde_json::Value = match serde_json::from_slice(&req.body) {
                Ok(v) => v,
                Err(_) => {
                    return Problem::invalid_api_params()
                        .msg("Malformed body")
                        .into_response()
                }
            };
            let Some(status) = body.get("status").and_then(|s| s.as_str()) else {
                return Problem::invalid_api_params()
                    .msg("body must be {\"status\": \"...\"}")
                    .into_response();
            };
            let status_info = body
                .get("status_info")
                .and_then(|s| s.as_str())
                .map(str::to_owned);
            match shared.set_status(&percent_decode(session, false), status, status_info) {
                Ok(s) => {
                    tracing::info!(session = %s.name, status, "control: session status changed");
                    json_response(StatusCode::OK, &session_json(&s))
                }
                Err(e) => error_problem(&e).into_response(),
            }
        }
        (&Method::GET, ["relays"]) => {
            let open = *shared.relays.borrow();
            json_response(StatusCode::OK, &J::obj().with("open", open))
        }
        (&Method::POST, ["manager"]) => {
            let up = serde_json::from_slice::<serde_json::Value>(&req.body)
                .ok()
                .and_then(|v| v.get("up").and_then(serde_json::Value::as_bool));
            let Some(up) = up else {
                return Problem::invalid_api_params()
                    .msg("body must be {\"up\": true|false}")
                    .into_response();
            };
            shared
                .manager_up
                .store(up, std::sync::atomic::Ordering::SeqCst);
            tracing::info!(up, "control: manager availability changed");
            json_response(StatusCode::OK, &J::obj().with("up", up))
        }
        (&Method::POST, ["shutdown"]) => {
            tracing::info!("control: shutdown requested");
            shared.shutdown.cancel();
            StatusCode::ACCEPTED.into_response()
        }
        _ => Problem::url_not_found(&req.path).into_response(),
    }
}
