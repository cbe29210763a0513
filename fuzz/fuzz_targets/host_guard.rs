//! The web tunnels' Host guard on whatever a local client sends first: never a panic, a
//! request passes only with a Host that names the tunnel, and a refusal's reply is a
//! well-formed HTTP response whose Content-Length matches its body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porthole_core::tunnel::HostGuard;

fuzz_target!(|data: &[u8]| {
    let guard = HostGuard::new("jupyterlab-s.localhost", "127.0.0.1:8890".parse().unwrap());
    match guard.check_head(data) {
        Ok(()) => {
            let text = std::str::from_utf8(data).expect("passed heads are UTF-8");
            let host = text
                .split("\r\n")
                .skip(1)
                .take_while(|l| !l.is_empty())
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| n.trim().eq_ignore_ascii_case("host"))
                .map(|(_, v)| v.trim().to_ascii_lowercase())
                .expect("a passed head has a Host");
            let port = host.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
            assert!(matches!(port, Some(Ok(8890))), "{host}");
        }
        Err(refusal) => {
            let reply = refusal.response();
            let (head, body) = reply.split_once("\r\n\r\n").expect("head and body");
            assert!(head.starts_with("HTTP/1.1 "));
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.parse().ok())
                .expect("Content-Length");
            assert_eq!(length, body.len());
            // What the client sent never breaks the reply's head apart.
            assert!(head.split("\r\n").all(|l| !l.is_empty() && !l.contains('\n')));
        }
    }
});
