//! The Backend.AI client: signing, login, version negotiation, listing, key download.

mod client;
mod error;
pub mod proxy;
pub mod session;
pub mod signing;
mod tls;
pub mod version;

pub use client::{
    encode_segment, is_active_status, BackendClient, ClientOptions, Credentials, Endpoint,
    ServerInfo, SESSION_COOKIE, SESSION_ID_HEADER,
};
pub use error::{one_line, readable_msg, ApiError, Problem};
pub use proxy::{Proxy, ProxySettings};
pub use session::{AppLaunch, AppProtocol, ComputeSession, ProxyKind, ServicePort};
pub use tls::TlsOptions;
