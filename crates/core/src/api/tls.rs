//! One rustls configuration shared by HTTP requests and WebSocket tunnels, so both trust
//! the same roots and honour the same opt-in "skip verification" choice.

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
    /// A PEM file of extra CA certificates to trust (a private CA).
    pub ca_file: Option<std::path::PathBuf>,
}

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
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = &options.ca_file {
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
