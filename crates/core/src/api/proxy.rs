//! HTTP proxies, for everything Porthole sends: API requests and every tunnel WebSocket.
//!
//! Which proxy applies follows the conventions curl uses: `https_proxy` / `HTTPS_PROXY`
//! for `https://` (and `wss://`) endpoints, `http_proxy` / `HTTP_PROXY` for `http://` (and
//! `ws://`), `all_proxy` / `ALL_PROXY` for either when the specific one is not set (the
//! lower-case name wins when both are set), and `no_proxy` / `NO_PROXY` to go direct: a
//! comma-separated list of host names (matching the name and its subdomains; a leading
//! `.` is allowed), IP addresses, CIDR ranges (`10.0.0.0/8`), or `*` for everything. A
//! proxy is `[http://][user:password@]host[:port]` (port 1080 when left out, as curl).
//! Loopback destinations never use a proxy: a proxy's own loopback is not this machine's.
//!
//! Requests go through the proxy as HTTP does it; tunnels ask it for a `CONNECT` to the
//! endpoint and speak TLS (for `https://`) inside.

use std::fmt;
use std::net::IpAddr;

use url::Url;

use super::error::ApiError;

/// One HTTP proxy.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    host: String,
    port: u16,
    /// `user:password`, percent-decoded.
    credentials: Option<(String, String)>,
}

impl fmt::Debug for Proxy {
    // Hand-written: the password never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("address", &self.to_string())
            .finish()
    }
}

impl fmt::Display for Proxy {
    /// `http://[user@]host:port`, without the password: how messages name the proxy.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.credentials {
            Some((user, _)) => write!(f, "http://{user}@{}:{}", self.host, self.port),
            None => write!(f, "http://{}:{}", self.host, self.port),
        }
    }
}

impl Proxy {
    /// Reads a proxy as curl does: `host:port`, `http://host:port`, with `user:password@`.
    pub fn parse(text: &str) -> Result<Proxy, ApiError> {
        let text = text.trim();
        let bad = |why: &str| ApiError::InvalidProxy {
            proxy: redact(text),
            detail: why.to_owned(),
        };
        let with_scheme = if text.contains("://") {
            text.to_owned()
        } else {
            format!("http://{text}")
        };
        let url = Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
        match url.scheme() {
            "http" => {}
            "https" => {
                return Err(bad(
                    "TLS to the proxy itself (https://) is not supported; use http://",
                ))
            }
            other if other.starts_with("socks") => {
                return Err(bad("SOCKS proxies are not supported; use an HTTP proxy"))
            }
            other => return Err(bad(&format!("unknown proxy scheme {other}://"))),
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("it names no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let credentials = (!url.username().is_empty()).then(|| {
            let decode = |s: &str| percent_decode(s).unwrap_or_else(|| s.to_owned());
            (
                decode(url.username()),
                decode(url.password().unwrap_or_default()),
            )
        });
        Ok(Proxy {
            host,
            port: url.port().unwrap_or(1080),
            credentials,
        })
    }

    /// Whether a password came with the proxy.
    pub fn has_password(&self) -> bool {
        self.credentials
            .as_ref()
            .is_some_and(|(_, password)| !password.is_empty())
    }

    /// The password, when one came with the proxy.
    pub fn password(&self) -> Option<&str> {
        self.credentials
            .as_ref()
            .map(|(_, password)| password.as_str())
            .filter(|p| !p.is_empty())
    }

    /// The same proxy with `password` for its user (none without a user).
    pub fn with_password(mut self, password: &str) -> Proxy {
        if let Some((_, p)) = &mut self.credentials {
            *p = password.to_owned();
        }
        self
    }

    /// The proxy's host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `Proxy-Authorization` header value, when the proxy has credentials.
    pub fn authorization(&self) -> Option<String> {
        use base64::Engine as _;
        self.credentials.as_ref().map(|(user, password)| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {token}")
        })
    }

    /// The proxy as a URL with its credentials, for the HTTP client.
    pub fn url_with_credentials(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match &self.credentials {
            Some((user, password)) => format!(
                "http://{}:{}@{host}:{}",
                percent_encode(user),
                percent_encode(password),
                self.port
            ),
            None => format!("http://{host}:{}", self.port),
        }
    }
}

/// What went wrong with the proxy, as an [`ApiError::Proxy`] that names it.
impl Proxy {
    /// The proxy answered `status` (`reason`) instead of connecting us to `target`.
    pub fn refusal(&self, target: &str, status: u16, reason: &str) -> ApiError {
        let answer = format!("{status} {reason}").trim().to_owned();
        let (detail, retryable) = match status {
            // tinyproxy answers a wrong password with 401 instead of 407.
            401 | 407 if self.credentials.is_some() => (
                format!(
                    "refused its user name or password ({answer}): check the ones in the \
                     proxy setting (http://user:password@host:port)"
                ),
                false,
            ),
            401 | 407 => (
                format!(
                    "wants a user name and password ({answer}): give them in the proxy \
                     setting as http://user:password@host:port"
                ),
                false,
            ),
            403 => (
                format!(
                    "refused the connection to {target} ({answer}): the proxy does not allow \
                     it; ask its administrators, or add the host to NO_PROXY if it is \
                     reachable without the proxy"
                ),
                false,
            ),
            502..=504 => (
                format!(
                    "could not reach {target} ({answer}): the cluster may be down, or unknown \
                     to the proxy; try again later"
                ),
                true,
            ),
            _ => (
                format!("answered {answer} instead of connecting to {target}"),
                false,
            ),
        };
        ApiError::Proxy {
            proxy: self.to_string(),
            detail,
            retryable,
        }
    }

    /// The proxy itself could not be reached.
    pub fn unreachable(&self, detail: &str) -> ApiError {
        ApiError::Proxy {
            proxy: self.to_string(),
            detail: format!(
                "cannot be reached ({detail}): check the proxy setting (HTTPS_PROXY, \
                 HTTP_PROXY, ALL_PROXY, or the profile's proxy)"
            ),
            retryable: true,
        }
    }

    /// The proxy closed the connection to `target` before the server answered.
    pub fn dropped(&self, target: &str) -> ApiError {
        ApiError::Proxy {
            proxy: self.to_string(),
            detail: format!(
                "closed the connection to {target} before the server answered (an idle \
                 timeout of the proxy?); try again"
            ),
            retryable: true,
        }
    }
}

/// Which proxy (if any) each destination uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    http: Option<Proxy>,
    https: Option<Proxy>,
    no_proxy: NoProxy,
}

impl ProxySettings {
    /// No proxy at all.
    pub fn direct() -> ProxySettings {
        ProxySettings::default()
    }

    /// `proxy` for every destination but the `no_proxy` ones.
    pub fn all_through(proxy: Proxy, no_proxy: &str) -> ProxySettings {
        ProxySettings {
            http: Some(proxy.clone()),
            https: Some(proxy),
            no_proxy: NoProxy::parse(no_proxy),
        }
    }

    /// From the environment variables curl reads (see the module docs).
    pub fn from_env() -> Result<ProxySettings, ApiError> {
        ProxySettings::from_vars(|name| std::env::var(name).ok())
    }

    /// The same, from any source of variables (tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<ProxySettings, ApiError> {
        let get = |name: &str| {
            var(name)
                .or_else(|| var(&name.to_ascii_uppercase()))
                .filter(|v| !v.trim().is_empty())
        };
        let all = get("all_proxy").map(|p| Proxy::parse(&p)).transpose()?;
        let http = match get("http_proxy") {
            Some(p) => Some(Proxy::parse(&p)?),
            None => all.clone(),
        };
        let https = match get("https_proxy") {
            Some(p) => Some(Proxy::parse(&p)?),
            None => all,
        };
        Ok(ProxySettings {
            http,
            https,
            no_proxy: NoProxy::parse(&get("no_proxy").unwrap_or_default()),
        })
    }

    /// Whether any destination goes through a proxy.
    pub fn is_direct(&self) -> bool {
        self.http.is_none() && self.https.is_none()
    }

    /// The proxy for `url` (`http`, `https`, `ws` or `wss`), or `None` to go direct.
    pub fn for_url(&self, url: &Url) -> Option<&Proxy> {
        let proxy = match url.scheme() {
            "https" | "wss" => self.https.as_ref(),
            _ => self.http.as_ref(),
        }?;
        let host = url.host_str()?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if is_loopback(host) || self.no_proxy.matches(host) {
            return None;
        }
        Some(proxy)
    }
}

/// The `no_proxy` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct NoProxy {
    everything: bool,
    entries: Vec<NoProxyEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NoProxyEntry {
    /// A host name: itself and its subdomains.
    Domain(String),
    /// An address, or a range of them.
    Net(IpAddr, u8),
}

impl NoProxy {
    fn parse(list: &str) -> NoProxy {
        let mut no_proxy = NoProxy::default();
        for entry in list
            .split([',', ' '])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            if entry == "*" {
                no_proxy.everything = true;
                continue;
            }
            let (addr, bits) = match entry.split_once('/') {
                Some((a, b)) => (a, b.parse::<u8>().ok()),
                None => (entry, None),
            };
            let bare = addr.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = bare.parse::<IpAddr>() {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                no_proxy
                    .entries
                    .push(NoProxyEntry::Net(ip, bits.unwrap_or(max).min(max)));
            } else {
                // A port after the name (`host:8080`) is ignored, as by curl.
                let name = entry.split(':').next().unwrap_or(entry);
                let name = name.trim_start_matches("*.").trim_start_matches('.');
                no_proxy
                    .entries
                    .push(NoProxyEntry::Domain(name.to_ascii_lowercase()));
            }
        }
        no_proxy
    }

    fn matches(&self, host: &str) -> bool {
        if self.everything {
            return true;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|entry| match (entry, ip) {
            (NoProxyEntry::Domain(d), _) => host == *d || host.ends_with(&format!(".{d}")),
            (NoProxyEntry::Net(net, bits), Some(ip)) => in_net(ip, *net, *bits),
            (NoProxyEntry::Net(..), None) => false,
        })
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The proxy text with any password replaced, for messages.
fn redact(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => text.to_owned(),
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn proxies_are_read_as_curl_reads_them() {
        let p = Proxy::parse("proxy.corp:3128").unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.corp", 3128));
        assert_eq!(p.authorization(), None);
        let p = Proxy::parse("http://al%40ice:p%3Ass@proxy.corp").unwrap();
        assert_eq!(p.port(), 1080);
        assert_eq!(p.to_string(), "http://al@ice@proxy.corp:1080");
        assert_eq!(p.authorization().as_deref(), Some("Basic YWxAaWNlOnA6c3M="));
        assert!(!format!("{p:?}").contains("p:ss"));
        assert_eq!(
            p.url_with_credentials(),
            "http://al%40ice:p%3Ass@proxy.corp:1080"
        );
        for bad in ["socks5://p:1080", "https://p:443", "http://", "ftp://p"] {
            let e = Proxy::parse(bad).unwrap_err();
            assert_eq!(e.kind(), "invalid-proxy", "{bad}");
        }
        let e = Proxy::parse("https://u:secret@p:1").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn the_scheme_picks_the_variable_lower_case_first() {
        let s = ProxySettings::from_vars(vars(&[
            ("https_proxy", "https-lower:1"),
            ("HTTPS_PROXY", "https-upper:1"),
            ("HTTP_PROXY", "http-upper:2"),
        ]))
        .unwrap();
        assert_eq!(
            s.for_url(&url("https://x.test/")).unwrap().host(),
            "https-lower"
        );
        assert_eq!(
            s.for_url(&url("wss://x.test/")).unwrap().host(),
            "https-lower"
        );
        assert_eq!(
            s.for_url(&url("ws://x.test/")).unwrap().host(),
            "http-upper"
        );
        let s = ProxySettings::from_vars(vars(&[("ALL_PROXY", "all:3")])).unwrap();
        assert_eq!(s.for_url(&url("https://x.test/")).unwrap().host(), "all");
        assert_eq!(s.for_url(&url("http://x.test/")).unwrap().host(), "all");
        assert!(ProxySettings::from_vars(vars(&[])).unwrap().is_direct());
    }

    #[test]
    fn no_proxy_and_loopback_go_direct() {
        let s = ProxySettings::from_vars(vars(&[
            ("HTTPS_PROXY", "p:1"),
            (
                "NO_PROXY",
                "corp.test, .lab.test,10.0.0.0/8, 192.168.1.5, ::1,internal:8080",
            ),
        ]))
        .unwrap();
        let direct = |u: &str| s.for_url(&url(u)).is_none();
        assert!(direct("https://corp.test/"));
        assert!(direct("https://api.corp.test/"));
        assert!(direct("https://x.lab.test/"));
        assert!(direct("https://10.20.30.40/"));
        assert!(direct("https://192.168.1.5:8443/"));
        assert!(direct("https://internal/"));
        assert!(direct("https://127.0.0.1:9000/"), "loopback");
        assert!(direct("https://localhost/"), "loopback");
        assert!(
            !direct("https://notcorp.test/"),
            "a suffix is not a subdomain"
        );
        assert!(!direct("https://192.168.1.6/"));
        assert!(!direct("https://cluster.example/"));
        let all =
            ProxySettings::from_vars(vars(&[("HTTPS_PROXY", "p:1"), ("no_proxy", "*")])).unwrap();
        assert!(all.for_url(&url("https://anything.test/")).is_none());
    }
}
