//! `parse_service_ports`, on the value as JSON and as a double-encoded JSON string: errors
//! are one line, and what is accepted re-parses to itself after serialising.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porthole_core::api::session::parse_service_ports;
use serde_json::Value;

fn check(value: &Value) {
    match parse_service_ports(value) {
        Ok(ports) => {
            let again = serde_json::to_value(&ports).unwrap();
            assert_eq!(parse_service_ports(&again).unwrap(), ports);
            let encoded = Value::String(again.to_string());
            assert_eq!(parse_service_ports(&encoded).unwrap(), ports);
        }
        Err(e) => assert!(!e.contains(['\n', '\r']), "not one line: {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        check(&value);
    }
    check(&Value::String(String::from_utf8_lossy(data).into_owned()));
});
