//! One rustls configuration shared by HTTP requests and WebSocket tunnels, so both trust
//! the same roots and honour the same opt-in "skip verification" choice.
//!
//! The roots are the system's, as browsers and the official client use them: the OS trust
//! store (on Linux the CA bundle and directory OpenSSL uses, or the ones `SSL_CERT_FILE`
//! and `SSL_CERT_DIR` name), so a company CA installed the usual way just works; plus the
//! PEM file `PORTHOLE_CA_FILE` names and a profile's own CA file; plus the bundled Mozilla
//! roots where the system has none.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::error::ApiError;

/// How the client verifies the server's certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Accept any certificate. Off by default; only for servers the user explicitly chose
    /// to trust blindly.
    pub skip_verify: bool,
    /// A PEM file of extra CA certificates to trust (a private CA), besides the system's
    /// and `PORTHOLE_CA_FILE`.
    pub ca_file: Option<std::path::PathBuf>,
}

/// The variable naming one more PEM file of CA certificates to trust.
pub const CA_FILE_VAR: &str = "PORTHOLE_CA_FILE";

/// Builds the rustls client configuration for `options`.
pub fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, ApiError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ApiError::Tls {
            endpoint: "(local setup)".into(),
            detail: e.to_string(),
        })?;
    let mut config = if options.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
            .with_no_client_auth()
    } else {
        let mut roots = system_roots();
        let env_file = std::env::var_os(CA_FILE_VAR)
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from);
        for path in options.ca_file.iter().chain(env_file.iter()) {
            for cert in read_pem_certificates(path)? {
                roots.add(cert).map_err(|e| ApiError::Tls {
                    endpoint: path.display().to_string(),
                    detail: format!("the CA file holds an unusable certificate ({e})"),
                })?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The system's trust store, or the bundled roots when it holds none (a minimal container,
/// an unusual system).
fn system_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::debug!(%error, "a system CA certificate could not be read");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::debug!(ignored, "system CA certificates rustls cannot use");
    }
    if added == 0 {
        tracing::info!("the system has no CA certificates: using the bundled roots");
        roots.roots = webpki_roots::TLS_SERVER_ROOTS.to_vec();
    }
    roots
}

fn read_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ApiError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ApiError::Tls {
            endpoint: path.display().to_string(),
            detail: format!("cannot read the CA file ({e})"),
        })?;
    if certs.is_empty() {
        return Err(ApiError::Tls {
            endpoint: path.display().to_string(),
            detail: "the CA file holds no PEM certificate".into(),
        });
    }
    Ok(certs)
}

/// Accepts every certificate but still checks handshake signatures, so the session key
/// agreement itself stays sound.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
