//! The WebSocket upgrade reply (head, then a refusal's body by Content-Length, chunked or
//! to the end) and the chunked decoder: never a panic, and the results stay within the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porthole_core::fuzzing::{dechunk_body, parse_upgrade_reply};

fuzz_target!(|data: &[u8]| {
    if let Some(body) = dechunk_body(data) {
        assert!(body.len() <= data.len());
    }
    if let Ok((status, headers, rest)) = parse_upgrade_reply(data) {
        assert!(status <= 999);
        assert!(rest.len() <= data.len());
        for (name, value) in &headers {
            assert_eq!(name.trim(), name);
            assert_eq!(value.trim(), value);
        }
        if status != 101 {
            let length = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse::<usize>().ok());
            if let Some(n) = length {
                assert!(rest.len() <= n);
            }
            // What the client does with a refusal: it must not panic either.
            let error = porthole_core::api::ApiError::from_reply(status, &rest, Some(("s", "a")));
            let text = error.to_string();
            assert!(!text.contains(['\n', '\r']), "not one line: {text:?}");
        }
    }
});
