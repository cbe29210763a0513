//! The emulator's GraphQL subset (lexer, parser, validation, variables, execution) on any
//! query, variables and operation name: never a panic, a hang or a stack overflow; the reply
//! is valid JSON that the client's session-list parser reads without panicking.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    query: &'a str,
    variables: &'a str,
    operation_name: Option<&'a str>,
}

fuzz_target!(|input: Input<'_>| {
    let variables = match serde_json::from_str::<Value>(input.variables) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let reply = porthole_emulator::fuzzing::graphql(input.query, &variables, input.operation_name);
    let parsed: Value = serde_json::from_str(&reply)
        .unwrap_or_else(|e| panic!("the reply is not JSON ({e}): {reply}"));
    assert!(parsed.get("data").is_some(), "{reply}");
    if let Err(e) = porthole_core::api::session::parse_session_list(reply.as_bytes()) {
        let text = e.to_string();
        assert!(!text.contains(['\n', '\r']), "not one line: {text:?}");
    }
});
