//! The Host guard of web app tunnels: a defence against DNS rebinding.
//!
//! Any web page the user visits can make the browser send requests to `127.0.0.1:PORT`.
//! Plain cross-site requests are the app's own business (JupyterLab checks XSRF tokens),
//! but DNS rebinding is worse: `evil.example` first resolves to the attacker, then to
//! 127.0.0.1, and the attacker's script then reads the app's replies as same-origin.
//! Such requests carry `Host: evil.example:PORT`, so a web tunnel reads each
//! connection's first request head and refuses it unless `Host` names the tunnel itself:
//! its own `<app>-<session>.localhost` name, `localhost`, or a loopback IP literal (an IP
//! literal cannot be rebound), always with the tunnel's port.
//!
//! Only the first request of a connection is checked: browsers keep a connection to one
//! origin (scheme, host, port) and never send another host's requests over it, and
//! everything after the head (bodies, more requests, a WebSocket upgrade) is relayed
//! untouched.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest request head accepted (browsers send a few KiB at most).
pub const MAX_HEAD: usize = 32 * 1024;

/// How long a new connection may take to send its first request head. Browsers open
/// spare connections early and use them later, so this is generous.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Which `Host` values a web tunnel accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostGuard {
    /// The tunnel's own name, e.g. `jupyterlab-eval-7.localhost`.
    name: String,
    /// The tunnel's address.
    local: SocketAddr,
}

/// Why a connection's first request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The request names another host: a DNS-rebinding or misdirected request.
    #[error("refused a request for host {host:?}: this tunnel serves only {expected}")]
    ForeignHost {
        /// The `Host` the request carried.
        host: String,
        /// What it should have been.
        expected: String,
    },
    /// The request has no (or more than one) `Host` header.
    #[error("refused a request without a single Host header")]
    NoHost,
    /// The bytes are not an HTTP/1 request head.
    #[error("refused a connection that did not start with an HTTP request")]
    NotHttp,
    /// The head did not end within [`MAX_HEAD`] bytes.
    #[error("refused a request whose head is larger than {} KiB", MAX_HEAD / 1024)]
    HeadTooLarge,
}

impl Refusal {
    /// The HTTP reply to send before closing: status line, headers and a short page.
    pub fn response(&self) -> String {
        let (status, advice) = match self {
            Refusal::ForeignHost { expected, .. } => (
                "403 Forbidden",
                format!(
                    "Open the app at {expected}. Porthole refuses other host names so that web \
                     pages cannot reach the app through DNS rebinding."
                ),
            ),
            Refusal::HeadTooLarge => (
                "431 Request Header Fields Too Large",
                String::from("Clear this site's cookies and try again."),
            ),
            Refusal::NoHost | Refusal::NotHttp => (
                "400 Bad Request",
                String::from("This port is a Porthole tunnel to a web app; use a browser."),
            ),
        };
        super::html_reply(
            status,
            "Porthole: request refused",
            "Porthole refused this request",
            &[&self.to_string(), &advice],
        )
    }
}

impl HostGuard {
    /// A guard for the tunnel named `name` listening on `local`.
    pub fn new(name: impl Into<String>, local: SocketAddr) -> Self {
        HostGuard {
            name: name.into(),
            local,
        }
    }

    /// The origin users should open, e.g. `http://jupyterlab-s.localhost:8890`.
    pub fn expected(&self) -> String {
        format!("http://{}:{}", self.name, self.local.port())
    }

    /// Checks one `Host` header value.
    pub fn check_host(&self, value: &str) -> Result<(), Refusal> {
        let foreign = || Refusal::ForeignHost {
            host: crate::api::one_line(value, 100),
            expected: self.expected(),
        };
        let (host, port) = split_host_port(value).ok_or_else(foreign)?;
        if port.unwrap_or(80) != self.local.port() {
            return Err(foreign());
        }
        let host = host.to_ascii_lowercase();
        let allowed = host == self.name || host == "localhost" || self.allows_ip(&host);
        if allowed {
            Ok(())
        } else {
            Err(foreign())
        }
    }

    /// IP literals cannot be rebound: loopback ones are always fine; when the user chose
    /// to listen on another address (or on all of them), so are those.
    fn allows_ip(&self, host: &str) -> bool {
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let Ok(ip) = literal.parse::<IpAddr>() else {
            return false;
        };
        ip.is_loopback() || self.local.ip().is_unspecified() || ip == self.local.ip()
    }

    /// Checks a complete request head.
    pub fn check_head(&self, head: &[u8]) -> Result<(), Refusal> {
        let text = std::str::from_utf8(head).map_err(|_| Refusal::NotHttp)?;
        let mut lines = text.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        if !request_line.ends_with(" HTTP/1.1") && !request_line.ends_with(" HTTP/1.0") {
            return Err(Refusal::NotHttp);
        }
        let mut hosts = lines.take_while(|l| !l.is_empty()).filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("host")
                .then(|| value.trim())
        });
        match (hosts.next(), hosts.next()) {
            (Some(host), None) => self.check_host(host),
            _ => Err(Refusal::NoHost),
        }
    }

    /// Reads the first request head from `socket` into `buf` (which may then hold some
    /// bytes past the head) and checks it. `Ok(false)` means the client left or stayed
    /// silent for [`HEAD_TIMEOUT`] before sending a whole head.
    pub async fn read_and_check<R: AsyncRead + Unpin>(
        &self,
        socket: &mut R,
        buf: &mut BytesMut,
    ) -> Result<bool, Refusal> {
        let read = async {
            loop {
                if let Some(end) = find_head_end(buf) {
                    return self.check_head(&buf[..end]).map(|()| true);
                }
                if !looks_like_http(buf) {
                    return Err(Refusal::NotHttp);
                }
                if buf.len() >= MAX_HEAD {
                    return Err(Refusal::HeadTooLarge);
                }
                buf.reserve(4096);
                match socket.read_buf(buf).await {
                    Ok(0) | Err(_) => return Ok(false),
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(HEAD_TIMEOUT, read)
            .await
            .unwrap_or(Ok(false))
    }
}

/// The offset just past the blank line ending the head, if it is complete.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Whether `buf` can still be the start of a request line: an upper-case method token
/// and a space (checked as far as bytes have arrived), so TLS or SSH bytes sent to a web
/// tunnel are refused at once instead of waiting for a head that never comes.
fn looks_like_http(buf: &[u8]) -> bool {
    const MAX_METHOD: usize = 16;
    match buf.iter().position(|&b| b == b' ') {
        Some(space) => space > 0 && buf[..space].iter().all(u8::is_ascii_uppercase),
        None => buf.len() <= MAX_METHOD && buf.iter().all(u8::is_ascii_uppercase),
    }
}

/// Splits `host[:port]` and `[v6][:port]`; `None` when malformed.
fn split_host_port(value: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if value.starts_with('[') {
        let end = value.find(']')?;
        let (host, rest) = value.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match value.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (value, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> HostGuard {
        HostGuard::new("jupyterlab-s.localhost", "127.0.0.1:8890".parse().unwrap())
    }

    fn head(host: &str) -> String {
        format!("GET /lab HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n\r\n")
    }

    #[test]
    fn own_names_pass() {
        for host in [
            "jupyterlab-s.localhost:8890",
            "JupyterLab-S.localhost:8890",
            "localhost:8890",
            "127.0.0.1:8890",
            "127.0.0.2:8890",
            "[::1]:8890",
        ] {
            assert_eq!(guard().check_head(head(host).as_bytes()), Ok(()), "{host}");
        }
    }

    #[test]
    fn rebinding_and_odd_hosts_are_refused() {
        for host in [
            "evil.example:8890",
            "jupyterlab-s.localhost.evil.example:8890",
            "other-s.localhost:8890",
            "jupyterlab-s.localhost:8891",
            "jupyterlab-s.localhost",
            "192.168.1.5:8890",
            "[::1",
            ":8890",
            "localhost:99999",
        ] {
            let refused = guard().check_head(head(host).as_bytes());
            assert!(
                matches!(refused, Err(Refusal::ForeignHost { .. })),
                "{host}: {refused:?}"
            );
        }
        let err = guard().check_host("evil.example:8890").unwrap_err();
        assert!(err.response().starts_with("HTTP/1.1 403 Forbidden\r\n"));
        assert!(err
            .response()
            .contains("http://jupyterlab-s.localhost:8890"));
    }

    #[test]
    fn heads_without_one_host_are_refused() {
        let none = "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n";
        assert_eq!(guard().check_head(none.as_bytes()), Err(Refusal::NoHost));
        let two = "GET / HTTP/1.1\r\nHost: localhost:8890\r\nhost: evil:8890\r\n\r\n";
        assert_eq!(guard().check_head(two.as_bytes()), Err(Refusal::NoHost));
        assert_eq!(
            guard().check_head(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(Refusal::NotHttp)
        );
    }

    #[test]
    fn exposed_listeners_accept_their_addresses() {
        let all = HostGuard::new("a-s.localhost", "0.0.0.0:8890".parse().unwrap());
        assert_eq!(all.check_host("192.168.1.5:8890"), Ok(()));
        assert!(all.check_host("evil.example:8890").is_err());
        let one = HostGuard::new("a-s.localhost", "10.0.0.2:8890".parse().unwrap());
        assert_eq!(one.check_host("10.0.0.2:8890"), Ok(()));
        assert!(one.check_host("10.0.0.3:8890").is_err());
    }

    #[tokio::test]
    async fn reads_the_head_across_reads_and_keeps_the_rest() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for part in [
                "GE",
                "T / HTTP/1.1\r\nHo",
                "st: localhost:8890\r\n\r",
                "\nbody",
            ] {
                client.write_all(part.as_bytes()).await.unwrap();
                client.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
            client
        });
        let mut buf = BytesMut::new();
        assert_eq!(
            guard().read_and_check(&mut server, &mut buf).await,
            Ok(true)
        );
        let _client = writer.await.unwrap();
        assert!(buf.starts_with(b"GET / HTTP/1.1\r\n"));
    }

    #[tokio::test]
    async fn refuses_non_http_at_once_and_reports_silent_exits() {
        let (mut client, mut server) = tokio::io::duplex(64);
        use tokio::io::AsyncWriteExt;
        client.write_all(b"\x16\x03\x01\x02\x00").await.unwrap();
        let mut buf = BytesMut::new();
        assert_eq!(
            guard().read_and_check(&mut server, &mut buf).await,
            Err(Refusal::NotHttp)
        );
        let (client, mut server) = tokio::io::duplex(64);
        drop(client);
        let mut buf = BytesMut::new();
        assert_eq!(
            guard().read_and_check(&mut server, &mut buf).await,
            Ok(false)
        );
        let (mut client, mut server) = tokio::io::duplex(MAX_HEAD * 2);
        let long = format!("GET / HTTP/1.1\r\nCookie: {}", "a".repeat(MAX_HEAD));
        client.write_all(long.as_bytes()).await.unwrap();
        let mut buf = BytesMut::new();
        assert_eq!(
            guard().read_and_check(&mut server, &mut buf).await,
            Err(Refusal::HeadTooLarge)
        );
    }
}
