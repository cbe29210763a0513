//! Entry points for the fuzz targets of `fuzz/` (feature `fuzzing`), not API.

use std::sync::OnceLock;

use serde_json::Value;

use crate::state::Shared;

/// Runs a GraphQL request through the parser, validation and execution exactly as
/// `POST /admin/gql` does, for access key `AK1` of a fixed state (sessions `run` with an
/// sshd, `wait` pending, and another user's `theirs`), and returns the reply body.
pub fn graphql(
    query: &str,
    variables: &serde_json::Map<String, Value>,
    operation_name: Option<&str>,
) -> String {
    static SHARED: OnceLock<Option<Shared>> = OnceLock::new();
    let shared = SHARED.get_or_init(|| Shared::new(&crate::graphql::fixture_config(), false).ok());
    match shared {
        Some(shared) => crate::graphql::execute(shared, "AK1", query, variables, operation_name)
            .formatted()
            .dumps(),
        None => String::new(),
    }
}
