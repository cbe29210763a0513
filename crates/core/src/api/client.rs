//! [`BackendClient`]: one signed-in connection to a Backend.AI endpoint, in API mode
//! (keypair signing) or session mode (web-server login, manager calls under `/func`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, DATE};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request as WsRequest;
use url::Url;

use super::error::ApiError;
use super::proxy::{Proxy, ProxySettings};
use super::session::{
    parse_session_list, AppLaunch, ComputeSession, ServicePort, SESSION_LIST_QUERY,
    SESSION_LIST_QUERY_V4,
};
use super::signing::{self, SignedRequest};
use super::tls::{client_config, TlsOptions};
use super::version::{ApiVersion, OLDEST_SUPPORTED};

/// The web server's login-session header (23.03+; takes precedence over the cookie).
pub const SESSION_ID_HEADER: &str = "x-backendai-sessionid";
/// The web server's login-session cookie.
pub const SESSION_COOKIE: &str = "AIOHTTP_SESSION";
const VERSION_HEADER: &str = "x-backendai-version";

/// How Porthole signs in to an endpoint.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// API mode: every request is HMAC-signed with this keypair.
    Keypair {
        /// The access key (public, e.g. `AKIA...`).
        access_key: String,
        /// The secret key (never logged).
        secret_key: String,
    },
    /// Session mode: log in to the web server with a username and password.
    WebLogin {
        /// The user's email.
        username: String,
        /// The password (never logged).
        password: String,
        /// The current one-time password, for accounts with two-factor sign-in (the server
        /// answers [`ApiError::OtpRequired`] when it wants one and none was given).
        otp: Option<String>,
    },
}

impl fmt::Debug for Credentials {
    // Hand-written so that secrets never reach a log line through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Keypair { access_key, .. } => f
                .debug_struct("Keypair")
                .field("access_key", access_key)
                .finish_non_exhaustive(),
            Credentials::WebLogin { username, .. } => f
                .debug_struct("WebLogin")
                .field("username", username)
                .finish_non_exhaustive(),
        }
    }
}

/// Tunables of a client; the defaults suit real clusters.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Certificate verification.
    pub tls: TlsOptions,
    /// Limit for one HTTP request (listing, login, key download).
    pub request_timeout: Duration,
    /// Limit for a TCP connect.
    pub connect_timeout: Duration,
    /// The HTTP proxies to go through (none by default; the front ends read the
    /// environment or the profile, see [`super::proxy`]).
    pub proxy: ProxySettings,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            tls: TlsOptions::default(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            proxy: ProxySettings::direct(),
        }
    }
}

/// What `GET /` reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerInfo {
    /// The newest API version the server speaks.
    pub api_version: String,
    /// The manager release, when reported (18.12 omits it).
    pub manager_version: Option<String>,
}

#[derive(Clone)]
enum Auth {
    Keypair {
        access_key: String,
        secret_key: String,
    },
    Session {
        username: String,
        session_id: String,
    },
}

/// A parsed, validated endpoint URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: Url,
}

impl Endpoint {
    /// Validates a user-supplied endpoint URL (`http(s)://host[:port]`, no query).
    pub fn parse(input: &str) -> Result<Endpoint, ApiError> {
        let invalid = |reason: &str| ApiError::InvalidEndpoint {
            url: input.chars().take(200).collect(),
            reason: reason.to_owned(),
        };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(invalid("it is empty; give e.g. https://api.example.com"));
        }
        let url = Url::parse(trimmed)
            .map_err(|e| invalid(&format!("{e}; give e.g. https://api.example.com")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("it has no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("it must not have a query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "it must not contain credentials; use the profile's keys",
            ));
        }
        if url.path() != "/" && !url.path().is_empty() {
            // Signatures cover the raw path the manager sees; a path prefix behind a
            // rewriting proxy breaks them (protocol doc §3.1).
            return Err(invalid(
                "it must not have a path; use the manager's or web server's root URL",
            ));
        }
        Ok(Endpoint { url })
    }

    /// The URL, e.g. `https://api.example.com/`.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The `Host` header value that requests carry and signatures cover.
    pub fn host_header(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        match self.url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str().trim_end_matches('/'))
    }
}

/// A signed-in client for one endpoint. Cheap to clone.
#[derive(Clone)]
pub struct BackendClient {
    http: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
    endpoint: Endpoint,
    auth: Auth,
    server: ServerInfo,
    api_version: ApiVersion,
    /// `/func` in session mode, empty in API mode.
    prefix: &'static str,
    /// The proxy every request and tunnel to the endpoint goes through, if any.
    proxy: Option<Proxy>,
}

impl fmt::Debug for BackendClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendClient")
            .field("endpoint", &self.endpoint.to_string())
            .field("api_version", &self.api_version.to_string())
            .field("session_mode", &self.is_session_mode())
            .finish_non_exhaustive()
    }
}

impl BackendClient {
    /// Negotiates the API version and signs in (web login in session mode).
    pub async fn connect(
        endpoint: &Endpoint,
        credentials: &Credentials,
        options: &ClientOptions,
    ) -> Result<BackendClient, ApiError> {
        let tls = client_config(&options.tls)?;
        let proxy = options.proxy.for_url(endpoint.url()).cloned();
        // Only the proxy chosen here, never one reqwest would find by itself.
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("porthole/", env!("CARGO_PKG_VERSION")))
            .no_proxy();
        if let Some(proxy) = &proxy {
            // Proxies close idle client connections on their own schedule (tinyproxy after
            // its Timeout); a pooled one would fail the next request. A new connection to
            // the proxy per request costs one local round trip.
            builder = builder.pool_max_idle_per_host(0);
            let through = reqwest::Proxy::all(proxy.url_with_credentials()).map_err(|e| {
                ApiError::InvalidProxy {
                    proxy: proxy.to_string(),
                    detail: e.to_string(),
                }
            })?;
            builder = builder.proxy(through);
        }
        let http = builder
            .build()
            .map_err(|e| ApiError::UnexpectedReply(format!("cannot set up HTTP ({e})")))?;
        let net = Net {
            http: &http,
            endpoint,
            proxy: proxy.as_ref(),
        };
        let prefix = match credentials {
            Credentials::Keypair { .. } => "",
            Credentials::WebLogin { .. } => "/func",
        };
        let server = fetch_server_info(&net, prefix).await?;
        let server_version: ApiVersion = server
            .api_version
            .parse()
            .map_err(|e: super::version::BadVersion| ApiError::UnsupportedVersion(e.to_string()))?;
        if server_version < OLDEST_SUPPORTED {
            return Err(ApiError::UnsupportedVersion(format!(
                "{server_version} is older than {OLDEST_SUPPORTED}, the oldest Porthole can use"
            )));
        }
        let api_version = ApiVersion::negotiate(server_version);
        let auth = match credentials {
            Credentials::Keypair {
                access_key,
                secret_key,
            } => Auth::Keypair {
                access_key: access_key.clone(),
                secret_key: secret_key.clone(),
            },
            Credentials::WebLogin {
                username,
                password,
                otp,
            } => Auth::Session {
                username: username.clone(),
                session_id: web_login(&net, username, password, otp.as_deref()).await?,
            },
        };
        tracing::debug!(endpoint = %endpoint, %api_version, "connected");
        Ok(BackendClient {
            http,
            tls,
            endpoint: endpoint.clone(),
            auth,
            server,
            api_version,
            prefix,
            proxy,
        })
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Who this client acts as on its endpoint: the access key (API mode) or the username
    /// (web login). Two clients with the same endpoint and account see the same sessions.
    pub fn account(&self) -> &str {
        match &self.auth {
            Auth::Keypair { access_key, .. } => access_key,
            Auth::Session { username, .. } => username,
        }
    }

    /// What the server reported about itself.
    pub fn server_info(&self) -> &ServerInfo {
        &self.server
    }

    /// The API version sent with every request.
    pub fn api_version(&self) -> ApiVersion {
        self.api_version
    }

    /// Whether this client goes through a web server login session.
    pub fn is_session_mode(&self) -> bool {
        matches!(self.auth, Auth::Session { .. })
    }

    /// The proxy requests and tunnels to the endpoint go through, if any.
    pub fn proxy(&self) -> Option<&Proxy> {
        self.proxy.as_ref()
    }

    /// The TLS configuration tunnels use for `wss://` endpoints.
    pub fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        self.tls.clone()
    }

    /// The manager-side path for `path` (adds `/func` in session mode).
    fn full_path(&self, path: &str) -> String {
        format!("{}{}", self.prefix, path)
    }

    /// Authentication headers for a request to `path_and_query` (as sent, with `/func`).
    fn auth_headers(
        &self,
        method: &str,
        path_and_query: &str,
        content_type: Option<&str>,
    ) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let version = self.api_version.to_string();
        insert(&mut headers, VERSION_HEADER, &version);
        match &self.auth {
            Auth::Keypair {
                access_key,
                secret_key,
            } => {
                let now = chrono::Utc::now();
                let date = now.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
                let day = now.format("%Y%m%d").to_string();
                let host = self.endpoint.host_header();
                let req = SignedRequest {
                    method,
                    path_and_query,
                    date: &date,
                    host: &host,
                    content_type: content_type.unwrap_or(signing::DEFAULT_CONTENT_TYPE),
                    api_version: &version,
                };
                let signature = signing::signature(secret_key, &day, &req);
                insert(&mut headers, DATE.as_str(), &date);
                insert(
                    &mut headers,
                    "authorization",
                    &signing::authorization(access_key, &signature),
                );
            }
            Auth::Session { session_id, .. } => {
                insert(&mut headers, SESSION_ID_HEADER, session_id);
                insert(
                    &mut headers,
                    "cookie",
                    &format!("{SESSION_COOKIE}={session_id}"),
                );
            }
        }
        headers
    }

    /// Sends one authenticated request and returns the body of a 2xx reply; other statuses
    /// become errors. `context` names the session and app for error messages.
    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
        context: Option<(&str, &str)>,
    ) -> Result<(StatusCode, bytes::Bytes), ApiError> {
        let target = self.full_path(path_and_query);
        let url = self.endpoint.url.join(&target).map_err(|e| {
            ApiError::UnexpectedReply(format!("cannot build a URL for {target}: {e}"))
        })?;
        let sent_target = wire_target(&url);
        let content_type = body.map(|_| "application/json");
        let headers = self.auth_headers(method.as_str(), &sent_target, content_type);
        let mut request = self.http.request(method, url).headers(headers);
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let net = Net {
            http: &self.http,
            endpoint: &self.endpoint,
            proxy: self.proxy.as_ref(),
        };
        let (status, _, bytes) = net.exchange(request).await?;
        if status.is_success() {
            Ok((status, bytes))
        } else {
            Err(ApiError::from_reply(status.as_u16(), &bytes, context))
        }
    }

    /// Lists the caller's sessions. `all` includes ended ones (TERMINATED, CANCELLED, ...).
    pub async fn list_sessions(&self, all: bool) -> Result<Vec<ComputeSession>, ApiError> {
        const PAGE: u64 = 100;
        const MAX_PAGES: u64 = 50;
        let path = if self.api_version.has_admin_gql() {
            "/admin/gql"
        } else {
            "/admin/graphql"
        };
        let query = if self.api_version.major <= 4 {
            SESSION_LIST_QUERY_V4
        } else {
            SESSION_LIST_QUERY
        };
        let mut sessions = Vec::new();
        for page in 0..MAX_PAGES {
            let body = json!({
                "query": query,
                "variables": {"limit": PAGE, "offset": page * PAGE, "status": Value::Null},
            });
            let (_, bytes) = self.send(Method::POST, path, Some(&body), None).await?;
            let parsed = parse_session_list(&bytes)?;
            let got = parsed.items.len() as u64;
            sessions.extend(parsed.items);
            if got < PAGE || sessions.len() as u64 >= parsed.total_count {
                break;
            }
        }
        if !all {
            sessions.retain(|s| is_active_status(&s.status));
        }
        Ok(sessions)
    }

    /// Finds an active session by name or full id.
    pub async fn find_session(&self, name_or_id: &str) -> Result<ComputeSession, ApiError> {
        self.list_sessions(false)
            .await?
            .into_iter()
            .find(|s| s.name == name_or_id || s.id == name_or_id)
            .ok_or_else(|| ApiError::SessionNotFound {
                session: name_or_id.to_owned(),
            })
    }

    /// Downloads a file from the session's home (`id_container` is the SSH key).
    ///
    /// `download_single?file=...` with no body works on every release: up to 24.03 by GET
    /// (POST is 405), from 24.09 by POST (GET is 405), and 26.x reads `file` from the
    /// query alone. The method follows the API version; a 405 tries the other one once.
    pub async fn download_file(
        &self,
        session: &ComputeSession,
        file: &str,
    ) -> Result<Vec<u8>, ApiError> {
        // v4 servers keep files under /kernel/{name}; v5+ under /session/{id}.
        let path = if self.api_version.major <= 4 {
            format!("/kernel/{}/download_single", encode_segment(&session.name))
        } else {
            format!("/session/{}/download_single", encode_segment(&session.id))
        };
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("file", file)
            .finish();
        let target = format!("{path}?{query}");
        let context = Some((session.name.as_str(), file));
        let (first, second) = if self.api_version.download_single_is_post() {
            (Method::POST, Method::GET)
        } else {
            (Method::GET, Method::POST)
        };
        let reply = match self.send(first, &target, None, context).await {
            Err(ApiError::Http { status: 405, .. }) => {
                self.send(second, &target, None, context).await
            }
            other => other,
        };
        Ok(reply?.1.to_vec())
    }

    /// The WebSocket upgrade request for one tunnelled connection to `app`, signed now.
    pub fn stream_request(
        &self,
        session: &ComputeSession,
        app: &ServicePort,
        launch: &AppLaunch,
    ) -> Result<WsRequest, ApiError> {
        // v4 servers address sessions by name; v5+ accept the id, which never collides.
        let handle = if self.api_version.major <= 4 {
            &session.name
        } else {
            &session.id
        };
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("app", &app.name);
        if let Some(port) = launch.port_param(app) {
            query.append_pair("port", &port.to_string());
        }
        // JSON objects, as the official client sends them; unset ones are left out,
        // because servers up to 25.x refuse keys they do not expect.
        for (key, values) in [("envs", &launch.envs), ("arguments", &launch.arguments)] {
            if !values.is_empty() {
                query.append_pair(key, &serde_json::to_string(values).unwrap_or_default());
            }
        }
        let path = format!(
            "{}/{}/{}?{}",
            self.full_path(self.api_version.stream_paths().prefix()),
            encode_segment(handle),
            app.proxy_kind().path_segment(),
            query.finish()
        );
        let mut url = self.endpoint.url.clone();
        let ws_scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(ws_scheme)
            .map_err(|_| ApiError::UnexpectedReply("cannot build a WebSocket URL".into()))?;
        let url = url
            .join(&path)
            .map_err(|e| ApiError::UnexpectedReply(format!("cannot build a WebSocket URL: {e}")))?;
        let sent_target = wire_target(&url);
        let mut request = url.as_str().into_client_request().map_err(|e| {
            ApiError::UnexpectedReply(format!("cannot build a WebSocket request: {e}"))
        })?;
        for (name, value) in self.auth_headers("GET", &sent_target, None).iter() {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        Ok(request)
    }
}

/// The request target exactly as it goes on the wire (raw path plus `?query`), which is
/// what signatures cover.
fn wire_target(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{}", url.path(), q),
        None => url.path().to_owned(),
    }
}

/// Statuses of sessions that still exist (listed by default).
pub fn is_active_status(status: &str) -> bool {
    !matches!(status, "TERMINATED" | "CANCELLED" | "ERROR")
}

fn insert(headers: &mut HeaderMap, name: &str, value: &str) {
    // Values here are ASCII we built ourselves or ids the server gave; a value with a
    // control character is dropped rather than sent mangled.
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        headers.insert(name, value);
    }
}

/// Percent-encodes one path segment (session names may hold odd characters).
pub fn encode_segment(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

async fn read_limited(
    mut reply: reqwest::Response,
    endpoint: &Endpoint,
) -> Result<bytes::Bytes, ApiError> {
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = reply
        .chunk()
        .await
        .map_err(|e| map_reqwest_error(endpoint, None, e))?
    {
        if buf.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(ApiError::UnexpectedReply(format!(
                "the reply is larger than {} MiB",
                MAX_REPLY_BYTES >> 20
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// How requests reach the endpoint: the HTTP client, and the proxy it goes through.
struct Net<'a> {
    http: &'a reqwest::Client,
    endpoint: &'a Endpoint,
    proxy: Option<&'a Proxy>,
}

impl Net<'_> {
    /// Sends `request` and reads the reply (bounded): status, headers, body. What the proxy
    /// did wrong is said as the proxy's error, naming it.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, bytes::Bytes), ApiError> {
        let reply = request
            .send()
            .await
            .map_err(|e| map_reqwest_error(self.endpoint, self.proxy, e))?;
        let status = reply.status();
        let headers = reply.headers().clone();
        let body = read_limited(reply, self.endpoint).await?;
        if let Some(proxy) = self.proxy {
            if let Some(refusal) = proxy_refusal(proxy, self.endpoint, status, &body) {
                return Err(refusal);
            }
        }
        Ok((status, headers, body))
    }
}

/// A reply that came from the proxy rather than the server (plain `http://` endpoints
/// are requested through the proxy, which answers for itself): 407 always, and 401 (what
/// tinyproxy answers a wrong password with), 403 or a 5xx gateway error without the
/// server's problem+json body.
fn proxy_refusal(
    proxy: &Proxy,
    endpoint: &Endpoint,
    status: StatusCode,
    body: &[u8],
) -> Option<ApiError> {
    let from_server = serde_json::from_slice::<Value>(body)
        .ok()
        .is_some_and(|v| v.get("type").is_some() || v.get("title").is_some());
    let code = status.as_u16();
    let from_proxy = code == 407 || (matches!(code, 401 | 403 | 502..=504) && !from_server);
    from_proxy.then(|| {
        proxy.refusal(
            &endpoint.host_header(),
            code,
            status.canonical_reason().unwrap_or_default(),
        )
    })
}

async fn fetch_server_info(net: &Net<'_>, prefix: &str) -> Result<ServerInfo, ApiError> {
    let endpoint = net.endpoint;
    let url = endpoint
        .url
        .join(&format!("{prefix}/"))
        .map_err(|e| ApiError::UnexpectedReply(e.to_string()))?;
    let (status, _, body) = net.exchange(net.http.get(url)).await?;
    if !status.is_success() {
        return Err(ApiError::from_reply(status.as_u16(), &body, None));
    }
    let value: Value = serde_json::from_slice(&body).map_err(|_| {
        ApiError::UnexpectedReply(format!(
            "{endpoint} does not look like a Backend.AI {} (GET {prefix}/ did not return its version)",
            if prefix.is_empty() { "manager" } else { "web server" }
        ))
    })?;
    let api_version = value
        .get("version")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::UnexpectedReply(format!("GET {prefix}/ has no API version")))?;
    Ok(ServerInfo {
        api_version: api_version.to_owned(),
        manager_version: value
            .get("manager")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

async fn web_login(
    net: &Net<'_>,
    username: &str,
    password: &str,
    otp: Option<&str>,
) -> Result<String, ApiError> {
    let endpoint = net.endpoint;
    let url = endpoint
        .url
        .join("/server/login")
        .map_err(|e| ApiError::UnexpectedReply(e.to_string()))?;
    let mut body = json!({"username": username, "password": password});
    if let Some(otp) = otp {
        body["otp"] = otp.into();
    }
    let (status, headers, body) = net.exchange(net.http.post(url).json(&body)).await?;
    let header_id = headers
        .get(SESSION_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let cookie_id = headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.split(';')
                .next()?
                .trim()
                .strip_prefix(&format!("{SESSION_COOKIE}="))
                .map(str::to_owned)
        });
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(ApiError::TooManyLogins);
    }
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // Up to 26.2 a refused login is still 200: the flag is what counts.
    if value.get("authenticated").and_then(Value::as_bool) == Some(true) && status.is_success() {
        return header_id
            .or(cookie_id)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                ApiError::UnexpectedReply("the login reply carried no session id".into())
            });
    }
    if status.is_success() || value.get("authenticated").is_some() {
        let data = value.get("data").cloned().unwrap_or(Value::Null);
        let detail = ["details", "msg", "title"]
            .iter()
            .find_map(|k| data.get(*k).and_then(Value::as_str))
            .unwrap_or("the server did not say why");
        let kind = data.get("type").and_then(Value::as_str).unwrap_or_default();
        if kind.ends_with("/require-totp-authentication") {
            return Err(match otp {
                None => ApiError::OtpRequired,
                Some(_) => ApiError::LoginFailed {
                    detail: "the one-time password was not accepted".into(),
                },
            });
        }
        if kind.ends_with("/require-totp-registration") {
            return Err(ApiError::LoginFailed {
                detail:
                    "this account must first set up two-factor sign-in in the Backend.AI web UI"
                        .into(),
            });
        }
        if kind.ends_with("/password-expired") {
            return Err(ApiError::PasswordExpired {
                detail: super::error::one_line(detail, 200),
            });
        }
        return Err(ApiError::LoginFailed {
            detail: super::error::one_line(detail, 200),
        });
    }
    Err(ApiError::from_reply(status.as_u16(), &body, None))
}

fn map_reqwest_error(
    endpoint: &Endpoint,
    proxy: Option<&Proxy>,
    error: reqwest::Error,
) -> ApiError {
    let detail = error_chain(&error);
    // TLS runs end to end, inside the proxy's tunnel: a certificate problem is the
    // server's, wherever the bytes went.
    if is_tls_failure(&detail) {
        return ApiError::Tls {
            endpoint: endpoint.to_string(),
            detail,
        };
    }
    if let (Some(proxy), true) = (proxy, error.is_connect()) {
        // reqwest does not say which hop failed: its CONNECT's answer, or the proxy itself.
        let lower = detail.to_ascii_lowercase();
        return if lower.contains("auth") {
            proxy.refusal(
                &endpoint.host_header(),
                407,
                "Proxy Authentication Required",
            )
        } else if lower.contains("tunnel") {
            ApiError::Proxy {
                proxy: proxy.to_string(),
                detail: format!(
                    "did not connect us to {} ({detail})",
                    endpoint.host_header()
                ),
                retryable: true,
            }
        } else {
            proxy.unreachable(&detail)
        };
    }
    if error.is_timeout() {
        return ApiError::Timeout {
            what: format!("the request to {endpoint}"),
            secs: 30,
        };
    }
    if error.is_connect() || error.is_request() {
        return ApiError::Unreachable {
            endpoint: endpoint.to_string(),
            detail,
        };
    }
    ApiError::UnexpectedReply(detail)
}

fn is_tls_failure(detail: &str) -> bool {
    detail.contains("certificate")
        || detail.contains("InvalidCertificate")
        || detail.contains("tls")
}

/// The innermost cause of an error, which is the one a person can act on.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = error;
    while let Some(source) = inner.source() {
        inner = source;
    }
    super::error::one_line(&inner.to_string(), 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_validation_gives_clear_reasons() {
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:8081")
                .unwrap()
                .host_header(),
            "127.0.0.1:8081"
        );
        assert_eq!(
            Endpoint::parse("https://api.backend.ai/")
                .unwrap()
                .host_header(),
            "api.backend.ai"
        );
        assert_eq!(
            Endpoint::parse("https://api.backend.ai:443")
                .unwrap()
                .host_header(),
            "api.backend.ai"
        );
        for (bad, why) in [
            ("", "empty"),
            ("api.backend.ai", "relative URL"),
            ("ftp://x", "scheme"),
            ("http://x/prefix", "path"),
            ("http://x/?a=1", "query"),
            ("http://u:p@x", "credentials"),
            ("http://:80", "host"),
        ] {
            let err = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let c = Credentials::Keypair {
            access_key: "AK".into(),
            secret_key: "very-secret".into(),
        };
        assert!(!format!("{c:?}").contains("very-secret"));
        let c = Credentials::WebLogin {
            username: "u".into(),
            password: "hunter2".into(),
            otp: Some("123456".into()),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{c:?}").contains("123456"));
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_segment("train-1"), "train-1");
        assert_eq!(encode_segment("a b/c?"), "a%20b%2Fc%3F");
    }
}
