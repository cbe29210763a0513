//! `download_single`: one small file from the session's `/home/work`, as raw bytes.
//!
//! 23.09 serves it by GET only (parameters in the query or a JSON body; POST gets 405);
//! 24.09+ serves it by POST (and answers GET with 400 `deprecated`). A missing file is the
//! agent's `FileNotFoundError`, which the manager reports as 500 `kernel-execution-failed`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::Caller;
use crate::config::FileSource;
use crate::json::J;
use crate::params::{self, Field, Key, Kind};
use crate::problem::Problem;
use crate::release::Download;
use crate::request::Req;
use crate::state::Shared;

/// The agent's error for a file it cannot read, wrapped as the manager does.
fn kernel_execution_failed() -> Problem {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "kernel-execution-failed",
        "Executing user code in the kernel has failed.",
    )
    .extra(
        "agent-details",
        J::obj()
            .with("type", "https://api.backend.ai/probs/agent-failure")
            .with("title", "Agent-side exception occurred.")
            .with(
                "exception",
                "FileNotFoundError(2, 'No such file or directory')",
            ),
    )
}

/// Path relative to `/home/work`: a leading `./` or `/home/work/` is dropped.
fn normalize(name: &str) -> &str {
    let name = name.strip_prefix("/home/work/").unwrap_or(name);
    name.trim_start_matches("./")
}

/// Handles `GET|POST /session/{id}/download_single`.
pub(crate) async fn download_single(
    shared: &Shared,
    caller: &Caller,
    session_ref: &str,
    req: &Req,
) -> Response {
    const KEYS: &[Key] = &[Key::required(&["file"], Kind::Str)];
    const FIELDS: &[Field] = &[Field {
        name: "file",
        required: true,
        int: None,
    }];
    let checked = if shared.release.download == Download::PostQuery {
        // 26.x reads the query alone (a JSON body is ignored).
        params::check_model("DownloadSingleRequest", req.parts.uri.query(), FIELDS)
    } else {
        params::raw_params(&req.body, req.parts.uri.query())
            .and_then(|raw| params::check(&raw, KEYS))
    };
    let params = match checked {
        Ok(p) => p,
        Err(problem) => return problem.into_response(),
    };
    let file = params["file"].as_str().unwrap_or_default();
    let session = match shared.session_for(&caller.access_key, session_ref) {
        Ok(s) => s,
        Err(problem) => return problem.into_response(),
    };
    if !session.has_ports() {
        // No kernel on an agent yet (or any more): the agent RPC cannot be made.
        return Problem::internal().into_response();
    }
    // 26.x no longer passes the agent's details on: a bare 500.
    let missing = || {
        if shared.release.download_missing_is_internal {
            Problem::internal().into_response()
        } else {
            kernel_execution_failed().into_response()
        }
    };
    let bytes = match session.files.get(normalize(file)) {
        None => return missing(),
        Some(FileSource::Inline { content }) => content.clone().into_bytes(),
        Some(FileSource::Path(path)) => match tokio::fs::read(path).await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::info!(path = %path.display(), error = %e, "download_single: cannot read file");
                return missing();
            }
        },
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_names() {
        assert_eq!(normalize("id_container"), "id_container");
        assert_eq!(normalize("./id_container"), "id_container");
        assert_eq!(normalize("/home/work/id_container"), "id_container");
    }

    #[test]
    fn missing_file_problem() {
        let body = kernel_execution_failed().body().dumps();
        assert!(body.contains("\"agent-details\": {"), "{body}");
        assert!(body.contains("FileNotFoundError"), "{body}");
    }
}
