//! The scenarios. Each runs against one [`Target`], asserts what Porthole must do there
//! (exit codes, output, the one-line `porthole:` error) and returns what a client observed,
//! for the differential check against the emulator.
//!
//! This file holds the helpers the scenarios share; the scenarios live in one file per
//! topic.

mod accounts;
mod listing;
mod networks;
mod official;
mod outages;
mod protocols;
mod refusals;
mod ssh;
mod tunnels;

pub use accounts::{credentials, expired_password, skewed_clock, too_many_logins};
pub use listing::listing;
pub use networks::through_a_proxy;
pub use official::official_client;
pub use outages::manager_down;
pub use protocols::protocols;
pub use refusals::{bad_params, not_found, refused_port, start_failure};
pub use ssh::ssh;
pub use tunnels::{jupyter, oversized_frame, tunnels};

use std::process::{Output, Stdio};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use porthole_core::api::ApiError;
use porthole_e2e::{bin, free_port, run_with_timeout};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::raw::{Auth, Event, Handshake, Raw, Reply, Via, Ws};
use crate::rig::{self, rig};
use crate::target::{injected_failure, Open, Target};
use crate::Obs;

const WAIT: Duration = Duration::from_secs(20);
/// How long a relay must stay quiet to count as silent (the web server's relay after the
/// manager side closed never says anything again; a healthy echo answers in milliseconds).
const SILENCE: Duration = Duration::from_secs(2);
const SESSION_QUERY: &str = "query($limit:Int!,$offset:Int!,$status:String){ compute_session_list(limit:$limit, offset:$offset, status:$status){ items { id name type status status_info image scaling_group group_id service_ports } total_count } }";

/// Asserts exit status 1, no panic, and exactly one `porthole: ` line containing `needle`;
/// returns that line.
fn one_line_error(t: &Target, out: &Output, needle: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}: exit status; stdout {:?}, stderr {stderr}",
        t.label(),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !stderr.contains("panicked"),
        "{}: panic: {stderr}",
        t.label()
    );
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("porthole: "))
        .collect();
    assert_eq!(lines.len(), 1, "{}: one error line in {stderr}", t.label());
    let line = t.normalize(lines[0]);
    assert!(
        line.contains(needle),
        "{}: {line:?} does not mention {needle:?}",
        t.label()
    );
    line
}

fn assert_ok(t: &Target, out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{}: {what}: {:?}\nstdout: {}\nstderr: {}",
        t.label(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What Porthole's error mapping makes of a reply (the one line it would print).
fn mapped(reply: &Reply, session: &str, app: &str) -> String {
    ApiError::from_reply(reply.status, &reply.body, Some((session, app))).to_string()
}

fn random_bytes(n: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut data = vec![0u8; n];
    rand::rng().fill_bytes(&mut data);
    data
}

/// Sends `n` random bytes through a local tunnel port and reads them back from the echo app.
async fn echo_through(port: u16, n: usize) {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let payload = random_bytes(n);
    let (mut rd, mut wr) = socket.split();
    let write = async {
        wr.write_all(&payload).await.unwrap();
    };
    let read = async {
        let mut back = vec![0u8; n];
        rd.read_exact(&mut back).await.unwrap();
        back
    };
    let (_, back) = tokio::time::timeout(
        Duration::from_secs(120),
        futures_util::future::join(write, read),
    )
    .await
    .expect("echo through the tunnel within 120 s");
    assert!(back == payload, "echoed bytes differ");
}

/// One raw round trip on an echo tunnel: `n` random bytes as one BINARY frame.
async fn ws_echo(ws: &mut Ws, n: usize) -> String {
    let payload = random_bytes(n);
    if let Err(e) = ws.try_send(&payload).await {
        // 26.x ends the connection as soon as it has read an oversized message's header.
        return format!("the server ended the connection while it was sent ({e})");
    }
    let (got, end) = ws.read(n, WAIT).await;
    match end {
        None if got == payload => format!("echoed {n} bytes"),
        None => "echoed different bytes".into(),
        Some(e) => format!("{} of {n} bytes, then {}", got.len(), e.describe()),
    }
}

/// An HTTP/1.1 request over a tunnel WebSocket; the status line and body length (read by
/// Content-Length; through the web server the socket stays open after the app closes).
async fn ws_http(ws: &mut Ws, path: &str, close: bool) -> (String, Vec<u8>) {
    let (status, body, _) = ws_http_frames(ws, path, close).await;
    (status, body)
}

/// [`ws_http`], also returning the largest BINARY message received.
async fn ws_http_frames(ws: &mut Ws, path: &str, close: bool) -> (String, Vec<u8>, usize) {
    let mut largest = 0;
    let conn = if close { "close" } else { "keep-alive" };
    ws.send(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: {conn}\r\n\r\n").as_bytes(),
    )
    .await;
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match ws.next(WAIT).await {
            Event::Data(d) => {
                largest = largest.max(d.len());
                buf.extend_from_slice(&d);
            }
            other => panic!(
                "HTTP over the tunnel: {} before the response head",
                other.describe()
            ),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status = head.lines().next().unwrap_or_default().to_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        match ws.next(WAIT).await {
            Event::Data(d) => {
                largest = largest.max(d.len());
                body.extend_from_slice(&d);
            }
            other => panic!("HTTP over the tunnel: {} inside the body", other.describe()),
        }
    }
    (status, body, largest)
}

/// The HTTP status code of a status line (`HTTP/1.1 200 OK` -> `200`).
fn code(status_line: &str) -> String {
    status_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("?")
        .to_owned()
}

/// The tunnel's URL on the loopback address instead of its `*.localhost` name. The rig
/// runs JupyterLab on 127.0.0.1 without `allow_remote_access`, so it answers 403 to any
/// Host but `localhost`/IP literals; Backend.AI containers run it on 0.0.0.0, where the
/// name works (tests/real_apps.rs). The Host guard accepts loopback IP literals.
fn loopback_url(open: &Open) -> String {
    format!("http://127.0.0.1:{}/", open.port())
}

/// `GET url` following redirects: status and body. A tunnel's `*.localhost` name is the
/// loopback address, as browsers resolve it.
async fn http_get(url: &str) -> (u16, String) {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(60));
    if let Some(host) = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .filter(|h| h.ends_with(".localhost"))
    {
        builder = builder.resolve(&host, std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    let reply = builder
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = reply.status().as_u16();
    (status, reply.text().await.unwrap_or_default())
}

/// An API version one major newer than the target's, which no server accepts.
fn newer_version(t: &Target) -> String {
    format!("v{}.20990101", t.api.major + 1)
}

fn tunnel_path(session: &str, proto: &str, query: &str) -> String {
    format!("/stream/session/{session}/{proto}?{query}")
}

/// A handshake's observation, plus Porthole's mapping of a refusal.
fn describe_refusal(h: &Handshake, session: &str, app: &str) -> String {
    match h {
        Handshake::Open(_) => "101".into(),
        Handshake::Refused(r) => {
            format!("{} => porthole: {}", r.problem(), mapped(r, session, app))
        }
    }
}
