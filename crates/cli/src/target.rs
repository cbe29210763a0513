//! Where the command connects: a saved profile or the official client's BACKEND_*
//! environment variables, resolved into a signed-in client and a session's app.

use std::env;

use porthole_core::api::version::ApiVersion;
use porthole_core::api::{
    ApiError, AppProtocol, BackendClient, ClientOptions, ComputeSession, Credentials, Endpoint,
    Proxy, ProxySettings, ServicePort,
};

/// The first API version whose servers relay `vnc` and `rdp` ports (25.12).
const VNC_RDP_RELAYED: ApiVersion = ApiVersion {
    major: 9,
    revision: 20250722,
};
use porthole_core::profiles::{
    proxy_secret_name, KeyringSecrets, ProfileError, ProfileStore, SecretStore,
};

/// Errors of the command, each printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Talking to the server failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A profile problem.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A tunnel could not start.
    #[error(transparent)]
    Tunnel(#[from] porthole_core::tunnel::TunnelError),
    /// The managed SSH config could not be written.
    #[error(transparent)]
    SshConfig(#[from] porthole_core::ssh_config::SshConfigError),
    /// The SSH key is unusable.
    #[error(transparent)]
    Key(#[from] porthole_core::ssh::KeyError),
    /// Anything the user has to fix in what they typed or configured.
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    /// What to do about it, in the command's words, when the error itself cannot say
    /// (the engine's errors state what happened; the front ends say what to do).
    pub fn advice(&self) -> Option<&'static str> {
        use porthole_core::tunnel::TunnelError;
        match self {
            CliError::Tunnel(TunnelError::PortInUse { .. }) => {
                Some("pick another with --port, or omit it for a free one")
            }
            CliError::Api(ApiError::SessionNotFound { .. })
            | CliError::Tunnel(TunnelError::Api(ApiError::SessionNotFound { .. })) => {
                Some("`porthole sessions` lists yours")
            }
            CliError::Profile(ProfileError::NotFound(_)) => {
                Some("`porthole profile list` shows them")
            }
            CliError::Profile(ProfileError::NoSecret(_)) => {
                Some("add the profile again with `porthole profile add` to store it")
            }
            _ => None,
        }
    }
}

/// What the global options say about where to connect, and how.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    /// `--profile`.
    pub profile: Option<&'a str>,
    /// `--proxy`: a proxy URL, or `direct`.
    pub proxy: Option<&'a str>,
}

/// Builds a signed-in client from `--profile`, else BACKEND_* variables, else the active
/// profile; through `--proxy`, else the profile's proxy, else the environment's.
pub async fn connect(scope: Scope<'_>) -> Result<BackendClient, CliError> {
    let (endpoint, credentials, mut options) = match scope.profile {
        Some(name) => from_profile(Some(name))?,
        None => match from_env()? {
            Some(found) => found,
            None => from_profile(None).map_err(|e| match e {
                CliError::Profile(ProfileError::NotFound(_)) => CliError::Usage(
                    "no endpoint configured: set BACKEND_ENDPOINT with BACKEND_ACCESS_KEY and \
                     BACKEND_SECRET_KEY (or BACKEND_ENDPOINT_TYPE=session with BACKEND_USERNAME \
                     and BACKEND_PASSWORD), or save one with `porthole profile add`"
                        .into(),
                ),
                other => other,
            })?,
        },
    };
    if let Some(proxy) = scope.proxy {
        options.proxy = proxy_setting(proxy)?;
    }
    let mut credentials = credentials;
    if let Credentials::WebLogin { otp, .. } = &mut credentials {
        *otp = var("BACKEND_OTP");
    }
    match BackendClient::connect(&endpoint, &credentials, &options).await {
        Err(ApiError::OtpRequired) => {
            let Some(code) = prompt_otp() else {
                return Err(CliError::Usage(format!(
                    "{} Give it in BACKEND_OTP, or run porthole in a terminal to be asked.",
                    ApiError::OtpRequired
                )));
            };
            if let Credentials::WebLogin { otp, .. } = &mut credentials {
                *otp = Some(code);
            }
            Ok(BackendClient::connect(&endpoint, &credentials, &options).await?)
        }
        other => Ok(other?),
    }
}

/// Asks for the one-time password on the terminal, when there is one.
fn prompt_otp() -> Option<String> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return None;
    }
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    write!(tty, "One-time password: ").ok()?;
    let mut line = String::new();
    std::io::BufReader::new(tty).read_line(&mut line).ok()?;
    let code = line.trim().to_owned();
    (!code.is_empty()).then_some(code)
}

/// The profile that [`connect`] uses for `profile`: the named one, none when BACKEND_*
/// variables configure the endpoint, else the active profile.
pub fn profile_in_use(profile: Option<&str>) -> Result<Option<String>, CliError> {
    if let Some(name) = profile {
        return Ok(Some(name.to_owned()));
    }
    if var("BACKEND_ENDPOINT").is_some() {
        return Ok(None);
    }
    Ok(Some(ProfileStore::default_location()?.get(None)?.name))
}

fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn required(name: &str, mode: &str) -> Result<String, CliError> {
    var(name).ok_or_else(|| CliError::Usage(format!("{name} is not set (needed for {mode} mode)")))
}

type Target = (Endpoint, Credentials, ClientOptions);

fn from_env() -> Result<Option<Target>, CliError> {
    let Some(url) = var("BACKEND_ENDPOINT") else {
        return Ok(None);
    };
    let endpoint = Endpoint::parse(&url)?;
    let mode = var("BACKEND_ENDPOINT_TYPE").unwrap_or_else(|| "api".into());
    let credentials = match mode.as_str() {
        "api" => Credentials::Keypair {
            access_key: required("BACKEND_ACCESS_KEY", "api")?,
            secret_key: required("BACKEND_SECRET_KEY", "api")?,
        },
        "session" => Credentials::WebLogin {
            username: required("BACKEND_USERNAME", "session")?,
            password: required("BACKEND_PASSWORD", "session")?,
            otp: None,
        },
        other => {
            return Err(CliError::Usage(format!(
                "BACKEND_ENDPOINT_TYPE must be \"api\" or \"session\", not {other:?}"
            )))
        }
    };
    let mut options = ClientOptions::default();
    options.tls.skip_verify = matches!(
        var("BACKEND_SKIP_SSLCERT_VALIDATION").as_deref(),
        Some("1" | "true" | "yes")
    );
    options.proxy = ProxySettings::from_env()?;
    Ok(Some((endpoint, credentials, options)))
}

/// `--proxy URL`, or `--proxy direct` (also `none`) for no proxy at all.
fn proxy_setting(text: &str) -> Result<ProxySettings, CliError> {
    Ok(match text.trim() {
        "direct" | "none" => ProxySettings::direct(),
        url => ProxySettings::all_through(Proxy::parse(url)?, ""),
    })
}

fn from_profile(name: Option<&str>) -> Result<Target, CliError> {
    let store = ProfileStore::default_location()?;
    let profile = store.get(name)?;
    let secrets = KeyringSecrets::new();
    let secret = secrets
        .get(&profile.name)?
        .ok_or_else(|| ProfileError::NoSecret(profile.name.clone()))?;
    let proxy_password = secrets.get(&proxy_secret_name(&profile.name))?;
    let endpoint = Endpoint::parse(&profile.endpoint)?;
    let options = profile.client_options(proxy_password.as_deref())?;
    Ok((endpoint, profile.credentials(secret), options))
}

/// Finds a running session and one of its apps, with messages that list what exists.
pub async fn find_app(
    client: &BackendClient,
    session: &str,
    app: &str,
) -> Result<(ComputeSession, ServicePort), CliError> {
    let found = client.find_session(session).await?;
    if !found.is_running() {
        return Err(ApiError::SessionNotRunning {
            session: found.name.clone(),
            status: found.status.clone(),
        }
        .into());
    }
    let Some(port) = found.app(app).cloned() else {
        let names: Vec<&str> = found
            .tunnellable_apps()
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        return Err(CliError::Usage(format!(
            "session {:?} has no app {app:?}; it offers: {}",
            found.name,
            if names.is_empty() {
                "nothing".to_owned()
            } else {
                names.join(", ")
            }
        )));
    };
    if matches!(port.protocol, AppProtocol::Vnc | AppProtocol::Rdp)
        && client.api_version() < VNC_RDP_RELAYED
    {
        return Err(CliError::Usage(format!(
            "{app:?} of session {:?} is a {} port, which this server (API {}) does not relay; \
             Backend.AI 25.12 and later do",
            found.name,
            port.protocol.as_str(),
            client.api_version()
        )));
    }
    if !port.is_tunnellable() {
        let why = if port.is_inference {
            "it is an inference endpoint, served outside the session's stream proxy".to_owned()
        } else {
            format!(
                "its protocol, {}, is for the image's own use",
                port.protocol.as_str()
            )
        };
        return Err(CliError::Usage(format!(
            "{app:?} of session {:?} is not an app Porthole can open: {why}",
            found.name
        )));
    }
    Ok((found, port))
}
