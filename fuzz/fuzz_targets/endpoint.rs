//! `Endpoint::parse`: never a panic; an accepted endpoint prints as a URL that parses back
//! to it, its Host header is one clean token; errors are one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porthole_core::api::Endpoint;

fuzz_target!(|data: &str| {
    match Endpoint::parse(data) {
        Ok(endpoint) => {
            let shown = endpoint.to_string();
            let back = Endpoint::parse(&shown)
                .unwrap_or_else(|e| panic!("{shown:?} from {data:?} does not re-parse: {e}"));
            assert_eq!(back, endpoint);
            let host = endpoint.host_header();
            assert!(!host.is_empty());
            assert!(
                !host.contains(|c: char| c.is_whitespace() || c.is_control()),
                "bad Host header {host:?}"
            );
            assert!(matches!(endpoint.url().scheme(), "http" | "https"));
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains(['\n', '\r']), "not one line: {text:?}");
        }
    }
});
