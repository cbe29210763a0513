//! RFC 7807 error bodies, as the manager (and the web server) send them.
//!
//! `{"type": "https://api.backend.ai/probs/<slug>", "title": ..., "msg"?: ..., "data"?: ...}`
//! with `Content-Type: application/problem+json; charset=utf-8` (protocol doc §5 and §10).

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::json::J;

/// Prefix of every problem `type`.
pub(crate) const PROBS: &str = "https://api.backend.ai/probs/";

/// The problem+json content type the manager sends.
pub(crate) const PROBLEM_CONTENT_TYPE: &str = "application/problem+json; charset=utf-8";

/// The JSON content type of `web.json_response`.
pub(crate) const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// One error response (boxed: it travels in `Result`s a lot).
#[derive(Debug, Clone)]
pub(crate) struct Problem(Box<ProblemData>);

/// The parts of a [`Problem`].
#[derive(Debug, Clone)]
pub(crate) struct ProblemData {
    pub(crate) status: StatusCode,
    pub(crate) slug: &'static str,
    pub(crate) title: String,
    pub(crate) msg: Option<String>,
    pub(crate) data: Option<J>,
    /// The `error_code` of releases that send one (25.8+).
    pub(crate) code: Option<&'static str>,
    /// Written with Python's `json.dumps` spacing by every release (the web server's own
    /// aiohttp errors), where 26.x writes the manager's compact.
    pub(crate) spaced: bool,
    /// Extra top-level members after `type`/`title` (e.g. `agent-details`).
    pub(crate) extra: Vec<(String, J)>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
}

impl Problem {
    /// A problem with a status, slug and title and nothing else.
    pub(crate) fn new(status: StatusCode, slug: &'static str, title: impl Into<String>) -> Self {
        Problem(Box::new(ProblemData {
            status,
            slug,
            title: title.into(),
            msg: None,
            data: None,
            code: None,
            spaced: false,
            extra: Vec::new(),
            headers: Vec::new(),
        }))
    }

    /// Sets `msg`.
    pub(crate) fn msg(mut self, msg: impl Into<String>) -> Self {
        self.0.msg = Some(msg.into());
        self
    }

    /// Sets the `error_code` that releases from 25.8 send.
    pub(crate) fn code(mut self, code: &'static str) -> Self {
        self.0.code = Some(code);
        self
    }

    /// Sets `data`.
    pub(crate) fn data(mut self, data: impl Into<J>) -> Self {
        self.0.data = Some(data.into());
        self
    }

    /// Adds an extra top-level member.
    pub(crate) fn extra(mut self, key: &str, value: J) -> Self {
        self.0.extra.push((key.to_owned(), value));
        self
    }

    /// Adds a response header.
    pub(crate) fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.push((name, value));
        self
    }

    /// The full `type` URL.
    pub(crate) fn type_url(&self) -> String {
        format!("{PROBS}{}", self.slug)
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> J {
        let mut body = J::obj()
            .with("type", self.type_url())
            .with("title", self.title.as_str());
        if let Some(code) = self.code.filter(|_| crate::release::current().error_codes) {
            body.push("error_code", code);
        }
        if let Some(msg) = &self.msg {
            body.push("msg", msg.as_str());
        }
        if let Some(data) = &self.data {
            body.push("data", data.clone());
        }
        for (key, value) in &self.extra {
            body.push(key, value.clone());
        }
        body
    }

    // ---- the manager's error classes (manager/api/exceptions.py) ----

    /// 404 `url-not-found` "Unknown URL path." with `data` = the path.
    pub(crate) fn url_not_found(path: &str) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "url-not-found", "Unknown URL path.")
            .code("api_read_not-found")
            .data(path)
    }

    /// 405 `method-not-allowed` "HTTP Method Not Allowed." with an `Allow` header.
    pub(crate) fn method_not_allowed(allowed: &[&str]) -> Self {
        let mut problem = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "HTTP Method Not Allowed.",
        )
        .code("api_access_forbidden");
        if let Ok(value) = HeaderValue::from_str(&allowed.join(",")) {
            problem = problem.header(header::ALLOW, value);
        }
        problem
    }

    /// 400 `generic-bad-request` "Bad request.".
    pub(crate) fn generic_bad_request() -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "generic-bad-request",
            "Bad request.",
        )
        .code("backendai_generic_bad-request")
    }

    /// 400 `invalid-auth-params` "Missing or invalid authorization parameters." with `msg`.
    pub(crate) fn invalid_auth_params(msg: &str) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-auth-params",
            "Missing or invalid authorization parameters.",
        )
        .code("user_auth_invalid-parameters")
        .msg(msg)
    }

    /// 401 `auth-failed` "Credential/signature mismatch." with `msg`.
    pub(crate) fn auth_failed(msg: &str) -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "auth-failed",
            "Credential/signature mismatch.",
        )
        .code("user_auth_unauthorized")
        .msg(msg)
    }

    /// 400 `invalid-api-params` "Missing or invalid API parameters.".
    pub(crate) fn invalid_api_params() -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-api-params",
            "Missing or invalid API parameters.",
        )
    }

    /// 400 `invalid-api-params` "Input validation error" with the per-key errors as `data`.
    pub(crate) fn input_validation(errors: Vec<(String, J)>) -> Self {
        Problem::invalid_api_params()
            .msg("Input validation error")
            .data(J::Obj(errors))
    }

    /// 404 `object-not-found` "No such <object>.".
    pub(crate) fn object_not_found(object: &str) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "object-not-found",
            format!("No such {object}."),
        )
    }

    /// 404 "No such session." with the manager's `msg`.
    pub(crate) fn session_not_found(session: &str) -> Self {
        Problem::object_not_found("session").msg(format!("Session (id={session}) does not exist."))
    }

    /// 500 `internal-server-error` "Internal server error.".
    pub(crate) fn internal() -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-server-error",
            "Internal server error.",
        )
        .code("backendai_generic_internal-error")
    }

    /// 503 `service-unavailable` (the manager's own typo included).
    pub(crate) fn service_unavailable() -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service-unavailable",
            "Serivce unavailable.",
        )
    }

    // ---- the web server's own problems (web/server.py, web/proxy.py, web/auth.py) ----

    /// 401 `auth-failed` "Unauthorized access" (web server: no or unknown login session).
    pub(crate) fn web_unauthorized() -> Self {
        let mut problem = Problem::new(
            StatusCode::UNAUTHORIZED,
            "auth-failed",
            "Unauthorized access",
        );
        problem.0.spaced = true;
        problem
    }

    /// 502 `bad-gateway` "The proxy target server is inaccessible.".
    pub(crate) fn bad_gateway() -> Self {
        Problem::new(
            StatusCode::BAD_GATEWAY,
            "bad-gateway",
            "The proxy target server is inaccessible.",
        )
        .code("api_request_unreachable")
    }
}

impl std::ops::Deref for Problem {
    type Target = ProblemData;

    fn deref(&self) -> &ProblemData {
        &self.0
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = if crate::release::current().compact_problems && !self.spaced {
            self.body().dumps_compact()
        } else {
            self.body().dumps()
        };
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE)],
            body,
        )
            .into_response();
        for (name, value) in self.0.headers {
            response.headers_mut().append(name, value);
        }
        response
    }
}

/// A `web.json_response`-style 200 reply.
pub(crate) fn json_response(status: StatusCode, body: &J) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, JSON_CONTENT_TYPE)],
        body.dumps(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_body_order_and_fields() {
        let p = Problem::auth_failed("Signature mismatch");
        assert_eq!(
            p.body().dumps(),
            r#"{"type": "https://api.backend.ai/probs/auth-failed", "title": "Credential/signature mismatch.", "msg": "Signature mismatch"}"#
        );
        let p = Problem::url_not_found("/x");
        assert_eq!(p.status, StatusCode::NOT_FOUND);
        assert_eq!(p.data, Some(J::from("/x")));
    }
}
