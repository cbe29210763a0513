//! A small hand-written GraphQL subset: enough of the manager's schema for session listing.
//!
//! Supported: one or more `query` operations (anonymous or named, `operationName` picks one),
//! variable definitions with defaults, arguments (variables and literals), aliases,
//! `__typename`, comments and commas. The schema:
//!
//! ```graphql
//! type Queries { compute_session_list(limit: Int!, offset: Int!, status: String,
//!                  access_key: String, group_id: String, domain_name: String,
//!                  scaling_group: String, order: String, filter: String): ComputeSessionList }
//! type ComputeSessionList { items: [ComputeSession]  total_count: Int }
//! type ComputeSession { id session_id name session_name sess_id type session_type status
//!   status_info image architecture scaling_group group_id group_name domain_name user_id
//!   user_uuid user_email access_key created_at terminated_at starts_at tag cluster_mode
//!   cluster_size occupied_slots mounts result service_ports }
//! ```
//!
//! `service_ports` (and `occupied_slots`) are `JSONString`s: JSON encoded as a string, null
//! unless the session is RUNNING. `order` and `filter` are accepted and ignored. Fragments,
//! directives and mutations are reported as GraphQL errors. Malformed input never panics: it
//! becomes a GraphQL error with a location.

mod execute;
mod lexer;
mod parser;
mod schema;

use std::collections::HashMap;

use serde_json::Value;

use crate::config::{Role, SESSION_STATUSES};
use crate::json::J;
use crate::state::{python_isoformat, Shared};

pub(crate) use execute::execute;
use lexer::*;
use parser::*;
use schema::*;

/// A GraphQL error with an optional source location and response path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GqlError {
    pub(crate) message: String,
    pub(crate) location: Option<(usize, usize)>,
    pub(crate) path: Vec<String>,
}

impl GqlError {
    fn at(message: impl Into<String>, pos: Pos) -> Self {
        GqlError {
            message: message.into(),
            location: Some((pos.line, pos.column)),
            path: Vec::new(),
        }
    }

    fn plain(message: impl Into<String>) -> Self {
        GqlError {
            message: message.into(),
            location: None,
            path: Vec::new(),
        }
    }

    /// The `{"message", "locations"?, "path"?}` object (26.x: a resolver's error also has
    /// `extensions.code`, first).
    pub(crate) fn to_json(&self) -> J {
        let mut obj = J::obj();
        if !self.path.is_empty() && crate::release::current().error_codes {
            obj.push(
                "extensions",
                J::obj().with("code", "backendai_generic_internal-error"),
            );
        }
        obj.push("message", self.message.as_str());
        if let Some((line, column)) = self.location {
            obj.push(
                "locations",
                J::Arr(vec![J::obj().with("line", line).with("column", column)]),
            );
        }
        if !self.path.is_empty() {
            obj.push("path", self.path.clone());
        }
        obj
    }
}

/// The outcome of one GraphQL request: `data` (`None` = null) and errors.
#[derive(Debug, Clone)]
pub(crate) struct GqlResponse {
    pub(crate) data: Option<J>,
    pub(crate) errors: Vec<GqlError>,
}

impl GqlResponse {
    /// `{"data": ..., "errors"?: [...]}` as `ExecutionResult.formatted`.
    pub(crate) fn formatted(&self) -> J {
        let mut obj = J::obj().with("data", self.data.clone().unwrap_or(J::Null));
        if !self.errors.is_empty() {
            obj.push(
                "errors",
                J::Arr(self.errors.iter().map(GqlError::to_json).collect()),
            );
        }
        obj
    }

    fn failed(errors: Vec<GqlError>) -> Self {
        GqlResponse { data: None, errors }
    }
}

/// The state the unit tests and the fuzz entry query: two keypairs, a RUNNING session with
/// sshd and a PENDING one for AK1, and a session of AK2's that AK1 must not see.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fixture_config() -> crate::config::Config {
    use crate::config::{Config, KeypairConfig, ServiceConfig, SessionConfig};
    let mut config = Config::default();
    config.keypairs.push(KeypairConfig::new("AK1", "s1"));
    config.keypairs.push(KeypairConfig::new("AK2", "s2"));
    config
        .sessions
        .push(SessionConfig::new("run").with_service(ServiceConfig::new(
            "sshd",
            "tcp",
            2200,
            "127.0.0.1:2222",
        )));
    config
        .sessions
        .push(SessionConfig::new("wait").with_status("PENDING"));
    let mut other = SessionConfig::new("theirs");
    other.access_key = Some("AK2".into());
    config.sessions.push(other);
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "query($limit:Int!,$offset:Int!,$status:String){ compute_session_list(limit:$limit, offset:$offset, status:$status){ items { id name type status status_info image scaling_group group_id created_at service_ports } total_count } }";

    fn shared() -> Shared {
        Shared::new(&fixture_config(), false).unwrap()
    }

    fn vars(v: serde_json::Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn lists_own_sessions_with_json_string_ports() {
        let s = shared();
        let r = execute(
            &s,
            "AK1",
            LIST,
            &vars(serde_json::json!({"limit": 50, "offset": 0, "status": null})),
            None,
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let text = r.formatted().dumps();
        let v: Value = serde_json::from_str(&text).unwrap();
        let list = &v["data"]["compute_session_list"];
        assert_eq!(list["total_count"], 2);
        let items = list["items"].as_array().unwrap();
        assert_eq!(items[0]["name"], "run");
        let ports: Value =
            serde_json::from_str(items[0]["service_ports"].as_str().unwrap()).unwrap();
        assert_eq!(ports[0]["name"], "sshd");
        assert_eq!(ports[0]["container_ports"][0], 2200);
        assert_eq!(items[1]["name"], "wait");
        assert!(items[1]["service_ports"].is_null());
        // Only the selected fields, in the selected order.
        let keys: Vec<&String> = items[0].as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 10);
    }

    #[test]
    fn status_filter_and_paging() {
        let s = shared();
        let q = "{ compute_session_list(limit: 1, offset: 0, status: \"RUNNING,PENDING\") { total_count items { name } } }";
        let r = execute(&s, "AK1", q, &serde_json::Map::new(), None);
        let v: Value = serde_json::from_str(&r.formatted().dumps()).unwrap();
        assert_eq!(v["data"]["compute_session_list"]["total_count"], 2);
        assert_eq!(
            v["data"]["compute_session_list"]["items"]
                .as_array()
                .unwrap()
                .len(),
            1
        );

        let q = "{ compute_session_list(limit: 10, offset: 0, status: \"BOGUS\") { total_count } }";
        let r = execute(&s, "AK1", q, &serde_json::Map::new(), None);
        let v: Value = serde_json::from_str(&r.formatted().dumps()).unwrap();
        assert!(v["data"]["compute_session_list"].is_null());
        assert_eq!(v["errors"][0]["message"], "'BOGUS'");
        assert_eq!(v["errors"][0]["path"][0], "compute_session_list");
    }

    #[test]
    fn v4_shape_and_aliases() {
        let s = shared();
        let q = "query { sessions: compute_session_list(limit: 5, offset: 0) { items { sess_id status service_ports } } }";
        let r = execute(&s, "AK2", q, &serde_json::Map::new(), None);
        let v: Value = serde_json::from_str(&r.formatted().dumps()).unwrap();
        assert_eq!(v["data"]["sessions"]["items"][0]["sess_id"], "theirs");
        assert_eq!(v["data"]["sessions"]["items"][0]["service_ports"], "[]");
    }

    #[test]
    fn malformed_queries_are_errors_not_panics() {
        let s = shared();
        let empty = serde_json::Map::new();
        for q in [
            "",
            "{",
            "}",
            "{ compute_session_list }",
            "{ compute_session_list(limit: 1, offset: 0) }",
            "{ compute_session_list(limit: 1) { total_count } }",
            "{ compute_session_list(limit: 1, offset: 0, bogus: 1) { total_count } }",
            "{ compute_session_list(limit: 1, offset: 0) { items { nope } } }",
            "{ compute_session_list(limit: 1, offset: 0) { total_count { x } } }",
            "{ compute_session_list(limit: $l, offset: 0) { total_count } }",
            "query($l: Int!) { compute_session_list(limit: $l, offset: 0) { total_count } }",
            "{ compute_session_list(limit: \"x\", offset: 0) { total_count } }",
            "{ other }",
            "mutation { x }",
            "{ ...frag }",
            "\"unterminated",
            "{ a(b: \"\\u12\") }",
            "{ compute_session_list(limit: 1, offset: 0) @include(if: true) { total_count } }",
            &"{".repeat(500),
            &"[".repeat(500),
            "query A { __typename } query B { __typename }",
            "{ é }",
            "- 1e",
        ] {
            let r = execute(&s, "AK1", q, &empty, None);
            assert!(!r.errors.is_empty(), "no error for {q:?}");
        }
        let r = execute(
            &s,
            "AK1",
            "query A { __typename } query B { __typename }",
            &empty,
            Some("B"),
        );
        assert!(r.errors.is_empty());
    }

    #[test]
    fn syntax_error_locations() {
        let s = shared();
        let r = execute(
            &s,
            "AK1",
            "{\n  compute_session_list(limit: 1 offset: 0) {\n  }\n}",
            &serde_json::Map::new(),
            None,
        );
        assert_eq!(r.errors[0].location, Some((3, 3)));
        assert!(r.data.is_none());
    }
}
