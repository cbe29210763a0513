//! `parse_session_list`: any reply body gives sessions or a one-line error, never a panic;
//! what it accepts survives a serde round trip, and its service ports re-parse to themselves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porthole_core::api::session::{parse_service_ports, parse_session_list};
use porthole_core::api::ComputeSession;

fuzz_target!(|data: &[u8]| {
    match parse_session_list(data) {
        Ok(page) => {
            for session in &page.items {
                let json = serde_json::to_string(session).expect("a session serialises");
                let back: ComputeSession =
                    serde_json::from_str(&json).expect("a serialised session parses");
                assert_eq!(&back, session);
                let ports = serde_json::to_value(&session.service_ports).unwrap();
                assert_eq!(parse_service_ports(&ports).unwrap(), session.service_ports);
                let encoded = serde_json::Value::String(ports.to_string());
                assert_eq!(
                    parse_service_ports(&encoded).unwrap(),
                    session.service_ports
                );
                let _ = session.tunnellable_apps();
                for port in &session.service_ports {
                    let _ = (port.is_tunnellable(), port.proxy_kind());
                }
            }
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains(['\n', '\r']), "not one line: {text:?}");
        }
    }
});
