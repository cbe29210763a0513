//! `Problem::parse` and `ApiError::from_reply` on any status, body and context: never a
//! panic, and every message a person sees is one line.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use porthole_core::api::{ApiError, Problem};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    status: u16,
    context: Option<(&'a str, &'a str)>,
    body: &'a [u8],
}

fn one_line(what: &str, text: &str) {
    assert!(
        !text.contains(['\n', '\r']),
        "{what} is not one line: {text:?}"
    );
}

fuzz_target!(|input: Input<'_>| {
    let problem = Problem::parse(input.body);
    let _ = problem.slug();
    one_line("detail", &problem.detail());
    if let Some(data) = problem.data_text() {
        one_line("data_text", &data);
    }
    // Session and app names come from the server or the user; whatever they hold, the
    // message stays on one line.
    let status = 400 + input.status % 200;
    for status in [status, input.status] {
        let error = ApiError::from_reply(status, input.body, input.context);
        let _ = (error.kind(), error.is_transient());
        one_line("from_reply", &error.to_string());
    }
});
