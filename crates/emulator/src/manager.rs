//! The manager's REST surface: routing, version and auth checks in the manager's order, and
//! the small handlers (`GET /`, `/auth/authorize`, GraphQL, `/apps`).
//!
//! Order of checks (manager 23.09 middlewares): route resolution (404 `url-not-found`,
//! 405 `method-not-allowed`), then the API-version header (400 "Unsupported API version."),
//! then, for authenticated routes, date / Authorization / keypair / signature, then the
//! handler's parameter checks.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use crate::auth::{self, Caller};
use crate::graphql;
use crate::json::J;
use crate::params::{self, Key, Kind};
use crate::problem::{json_response, Problem};
use crate::release::{Download, Release};
use crate::request::{Req, Via};
use crate::state::{push_optional_fields, Shared};
use crate::stream::{self, Mode};
use porthole_core::api::version::ApiVersion;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Root,
    Authorize,
    Gql,
    GqlLegacy,
    Apps(String),
    Proxy(String),
    Download(String),
    DeprecatedGetDownload,
}

/// Resolves a route as aiohttp's router would for this server version.
fn resolve(method: &Method, path: &str, version: ApiVersion) -> Result<Route, Problem> {
    let decoded_path = params::percent_decode(path, false);
    let not_found = || Problem::url_not_found(&decoded_path);
    let only = |allowed: &'static str, route: Route| {
        if method.as_str() == allowed {
            Ok(route)
        } else {
            Err(Problem::method_not_allowed(&[allowed]))
        }
    };
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let seg = |s: &str| params::percent_decode(s, false);
    match segments.as_slice() {
        [""] => only("GET", Route::Root),
        ["auth", "authorize"] => only("POST", Route::Authorize),
        ["admin", "gql"] if version >= ApiVersion::ADMIN_GQL => only("POST", Route::Gql),
        ["admin", "graphql"] => only("POST", Route::GqlLegacy),
        ["stream", "session", s, "apps"]
            if (version >= ApiVersion::SESSION_PATHS) && !s.is_empty() =>
        {
            only("GET", Route::Apps(seg(s)))
        }
        ["stream", "session", s, "httpproxy" | "tcpproxy"]
            if (version >= ApiVersion::SESSION_PATHS) && !s.is_empty() =>
        {
            only("GET", Route::Proxy(seg(s)))
        }
        ["stream", "kernel", s, "httpproxy" | "tcpproxy"]
            if (version < ApiVersion::SESSION_PATHS) && !s.is_empty() =>
        {
            only("GET", Route::Proxy(seg(s)))
        }
        ["session", s, "download_single"]
            if (version >= ApiVersion::SESSION_PATHS) && !s.is_empty() =>
        {
            match Release::of(version).download {
                // 23.09 and older register GET only, so POST gets 405.
                Download::Get => only("GET", Route::Download(seg(s))),
                Download::PostBodyOrQuery => match method.as_str() {
                    "POST" => Ok(Route::Download(seg(s))),
                    "GET" => Ok(Route::DeprecatedGetDownload),
                    _ => Err(Problem::method_not_allowed(&["GET", "POST"])),
                },
                Download::PostQuery => only("POST", Route::Download(seg(s))),
            }
        }
        ["kernel", s, "download_single"]
            if (version < ApiVersion::SESSION_PATHS) && !s.is_empty() =>
        {
            only("GET", Route::Download(seg(s)))
        }
        _ => Err(not_found()),
    }
}

/// Handles one manager request.
pub(crate) async fn handle(shared: &Arc<Shared>, mut req: Req, via: Via) -> Response {
    // The web server opens its own WebSocket to the manager for `GET /func/stream/...`
    // (except `.../apps`): whatever the manager answers instead of a 101 becomes a 502.
    let web_socket_route = matches!(via, Via::Web { .. }) && is_stream_socket_path(&req);
    let refuse = |problem: Problem| {
        if web_socket_route {
            Problem::bad_gateway().into_response()
        } else {
            problem.into_response()
        }
    };
    let route = match resolve(&req.parts.method, &req.path, shared.api_version) {
        Ok(route) => route,
        Err(problem) => return refuse(problem),
    };
    if let Err(problem) = auth::check_version(&req.parts.headers, shared.api_version) {
        let newer = auth::version_header(&req.parts.headers)
            .and_then(|(_, v)| v.parse::<ApiVersion>().ok())
            .is_some_and(|v| v > shared.api_version);
        let signed = !matches!(route, Route::Root | Route::Authorize);
        if newer && signed && shared.release.newer_version_fails_signature {
            return refuse(Problem::auth_failed(shared.release.hmac_mismatch_msg));
        }
        return refuse(problem);
    }
    match &route {
        Route::Root => return root(shared),
        Route::Authorize => return authorize(shared, &req),
        Route::DeprecatedGetDownload => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                "deprecated",
                "This API is deprecated.",
            )
            .msg("Use the HTTP POST method to invoke this API with parameters in the request body.")
            .into_response()
        }
        _ => {}
    }
    let (caller, mode) = match &via {
        Via::Api => {
            let target = req
                .parts
                .uri
                .path_and_query()
                .map_or_else(|| req.path.clone(), |pq| pq.as_str().to_owned());
            match auth::authenticate(
                shared,
                req.parts.method.as_str(),
                &target,
                &req.parts.headers,
                Utc::now(),
            ) {
                Ok(caller) => (caller, Mode::Api),
                Err(problem) => return problem.into_response(),
            }
        }
        Via::Web { access_key } => (
            Caller {
                access_key: access_key.clone(),
            },
            Mode::Web,
        ),
        Via::WebAnonymous => return Problem::web_unauthorized().into_response(),
    };
    match route {
        Route::Gql => gql(shared, &caller, &req, false),
        Route::GqlLegacy => gql(shared, &caller, &req, true),
        Route::Apps(session) => apps(shared, &caller, &session),
        Route::Proxy(session) => {
            let query = req.parts.uri.query().map(str::to_owned);
            stream::proxy(
                shared,
                caller,
                &session,
                query.as_deref(),
                &mut req.parts,
                mode,
            )
            .await
        }
        Route::Download(session) => {
            crate::files::download_single(shared, &caller, &session, &req).await
        }
        Route::Root | Route::Authorize | Route::DeprecatedGetDownload => {
            Problem::internal().into_response()
        }
    }
}

/// Whether the web server would proxy this request as a WebSocket (`GET /stream/...` other
/// than `/stream/session/{id}/apps` and `/stream/kernel/_/events`).
fn is_stream_socket_path(req: &Req) -> bool {
    if req.parts.method != Method::GET {
        return false;
    }
    let segments: Vec<&str> = req.path.split('/').skip(1).collect();
    match segments.as_slice() {
        ["stream", "session", s, "apps"] => s.is_empty(),
        ["stream", "kernel", "_", "events"] => false,
        ["stream", ..] => true,
        _ => false,
    }
}

/// `GET /`: `{"version": ..., "manager": ...}`.
fn root(shared: &Shared) -> Response {
    let mut body = J::obj().with("version", shared.api_version_str.as_str());
    if let Some(manager) = &shared.manager_version {
        body.push("manager", manager.as_str());
    }
    json_response(StatusCode::OK, &body)
}

/// `POST /auth/authorize` (anonymous): a keypair for an email and password.
fn authorize(shared: &Shared, req: &Req) -> Response {
    const KEYS: &[Key] = &[
        Key::required(&["type"], Kind::Str),
        Key::required(&["domain"], Kind::Str),
        Key::required(&["username"], Kind::Str),
        Key::required(&["password"], Kind::Str),
    ];
    let result = (|| {
        let mut raw = params::raw_params(&req.body, req.parts.uri.query())?;
        // `.allow_extra("*")`: extra keys (e.g. otp) are ignored.
        if let Some(map) = raw.as_object_mut() {
            map.retain(|k, _| KEYS.iter().any(|key| key.names.contains(&k.as_str())));
        }
        let p = params::check(&raw, KEYS)?;
        if p["type"] != "keypair" {
            return Err(Problem::invalid_api_params().msg("Unsupported authorization type"));
        }
        let user = shared
            .users
            .iter()
            .find(|u| p["username"] == u.username.as_str() && p["password"] == u.password.as_str())
            .ok_or_else(|| Problem::auth_failed("User credential mismatch."))?;
        let keypair = shared
            .keypair(&user.access_key)
            .ok_or_else(|| Problem::auth_failed("User credential mismatch."))?;
        if let Some(on) = &user.password_expired_on {
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "password-expired",
                "Password has expired.",
            )
            .msg(format!("Password expired on {on}.")));
        }
        Ok(J::obj().with(
            "data",
            J::obj()
                .with("access_key", keypair.access_key.as_str())
                .with("secret_key", keypair.secret_key.as_str())
                .with("role", keypair.role.as_str())
                .with("status", "active"),
        ))
    })();
    match result {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(problem) => problem.into_response(),
    }
}

/// `POST /admin/gql` (standard `{data, errors}`) or `/admin/graphql` (bare data; errors
/// become 400 `graphql-error`).
fn gql(shared: &Shared, caller: &Caller, req: &Req, legacy: bool) -> Response {
    const KEYS: &[Key] = &[
        Key::required(&["query"], Kind::Str),
        Key::optional(&["variables"], Kind::OptMap),
        Key::optional(&["operation_name", "operationName"], Kind::OptStr),
    ];
    let params = match params::raw_params(&req.body, req.parts.uri.query())
        .and_then(|raw| params::check(&raw, KEYS))
    {
        Ok(p) => p,
        Err(problem) => return problem.into_response(),
    };
    let query = params["query"].as_str().unwrap_or_default();
    let variables = params["variables"].as_object().cloned().unwrap_or_default();
    let result = graphql::execute(
        shared,
        &caller.access_key,
        query,
        &variables,
        params["operation_name"].as_str(),
    );
    if legacy {
        if !result.errors.is_empty() {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                "graphql-error",
                "GraphQL-generated error.",
            )
            .data(J::Arr(result.errors.iter().map(|e| e.to_json()).collect()))
            .into_response();
        }
        return json_response(StatusCode::OK, &result.data.unwrap_or(J::Null));
    }
    json_response(StatusCode::OK, &result.formatted())
}

/// `GET /stream/session/{id}/apps`: `[{"name","protocol","ports"}]`, `[]` without ports.
fn apps(shared: &Shared, caller: &Caller, session_ref: &str) -> Response {
    let session = match shared.session_for(&caller.access_key, session_ref) {
        Ok(s) => s,
        Err(problem) => return problem.into_response(),
    };
    if !session.has_ports() {
        if shared.release.apps_of_not_running_is_404 {
            return Problem::object_not_found("session")
                .code("session_read_not-found")
                .msg(format!("Running session {} does not exist.", session.id))
                .into_response();
        }
        return json_response(StatusCode::OK, &J::Arr(Vec::new()));
    }
    let list = session
        .services
        .iter()
        .map(|svc| {
            let mut item = J::obj()
                .with("name", svc.cfg.name.as_str())
                .with("protocol", svc.cfg.protocol.as_str())
                .with("ports", svc.cfg.container_ports.clone());
            push_optional_fields(&mut item, &svc.cfg);
            item
        })
        .collect();
    json_response(StatusCode::OK, &J::Arr(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ApiVersion {
        s.parse().unwrap()
    }

    #[test]
    fn routes_by_version() {
        let v8 = v("v8.20240915");
        let v7 = v("v7.20230615");
        let v4 = v("v4.20190615");
        assert_eq!(resolve(&Method::GET, "/", v8).unwrap(), Route::Root);
        assert_eq!(
            resolve(&Method::GET, "/stream/session/a%20b/tcpproxy", v8).unwrap(),
            Route::Proxy("a b".into())
        );
        assert_eq!(
            resolve(&Method::GET, "/stream/kernel/a/httpproxy", v8)
                .unwrap_err()
                .slug,
            "url-not-found"
        );
        assert_eq!(
            resolve(&Method::GET, "/stream/kernel/a/httpproxy", v4).unwrap(),
            Route::Proxy("a".into())
        );
        assert_eq!(
            resolve(&Method::GET, "/stream/session/a/tcpproxy", v4)
                .unwrap_err()
                .slug,
            "url-not-found"
        );
        assert_eq!(
            resolve(&Method::POST, "/session/a/download_single", v7)
                .unwrap_err()
                .slug,
            "method-not-allowed"
        );
        assert_eq!(
            resolve(&Method::POST, "/session/a/download_single", v8).unwrap(),
            Route::Download("a".into())
        );
        assert_eq!(
            resolve(&Method::GET, "/session/a/download_single", v8).unwrap(),
            Route::DeprecatedGetDownload
        );
        assert_eq!(
            resolve(&Method::POST, "/admin/gql", v4).unwrap_err().slug,
            "url-not-found"
        );
        assert_eq!(
            resolve(&Method::POST, "/admin/graphql", v4).unwrap(),
            Route::GqlLegacy
        );
        assert_eq!(
            resolve(&Method::GET, "/admin/gql", v8).unwrap_err().slug,
            "method-not-allowed"
        );
        let nf = resolve(&Method::GET, "/nope/x%41", v8).unwrap_err();
        assert_eq!(nf.data, Some(J::from("/nope/xA")));
    }
}
