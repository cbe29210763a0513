//! A TLS front for the emulator: certificates made with the `openssl` command (a private
//! CA and a server certificate for 127.0.0.1 and localhost, or the names given), and a
//! rustls listener that terminates TLS and forwards each connection to the emulator, as a
//! reverse proxy in front of a real manager does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// A private CA and a server certificate it signed.
pub struct TestPki {
    /// The CA certificate (PEM), what a client must trust.
    pub ca: PathBuf,
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

async fn openssl(dir: &Path, args: &[&str]) {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(args).kill_on_drop(true);
    let out = crate::within(cmd.output())
        .await
        .expect("run openssl (apt-get install openssl)");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

impl TestPki {
    /// Makes a CA and a certificate for `127.0.0.1` / `localhost` signed by it.
    pub async fn generate() -> TestPki {
        TestPki::generate_for(&["IP:127.0.0.1", "DNS:localhost"]).await
    }

    /// Makes a CA and a certificate for these subject alternative names (`IP:10.0.0.1`,
    /// `DNS:manager.example.test`) signed by it.
    pub async fn generate_for(names: &[&str]) -> TestPki {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=Porthole test CA",
            ],
        )
        .await;
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        )
        .await;
        std::fs::write(
            d.join("ext.cnf"),
            format!(
                "subjectAltName={}\nbasicConstraints=CA:FALSE\n\
                 keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
                names.join(",")
            ),
        )
        .expect("ext.cnf");
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        )
        .await;
        TestPki {
            ca: d.join("ca.pem"),
            cert: d.join("server.pem"),
            key: d.join("server.key"),
            _dir: dir,
        }
    }
}

/// A running TLS front; stops when dropped.
pub struct TlsFront {
    /// `https://127.0.0.1:PORT`
    pub url: String,
    /// Its port.
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl TlsFront {
    /// Terminates TLS with `pki`'s server certificate on a free loopback port and
    /// forwards every connection to `backend` (`127.0.0.1:PORT`).
    pub async fn start(pki: &TestPki, backend: String) -> TlsFront {
        TlsFront::start_on(pki, "127.0.0.1:0".parse().expect("address"), backend).await
    }

    /// The same on `listen` (port 0: a free one); the URL names its address.
    pub async fn start_on(
        pki: &TestPki,
        listen: std::net::SocketAddr,
        backend: String,
    ) -> TlsFront {
        let certs = CertificateDer::pem_file_iter(&pki.cert)
            .expect("server.pem")
            .collect::<Result<Vec<_>, _>>()
            .expect("certificates");
        let key = PrivateKeyDer::from_pem_file(&pki.key).expect("server.key");
        let config = ServerConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(listen).await.expect("bind");
        let bound = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let backend = backend.clone();
                tokio::spawn(async move {
                    // A client that refuses our certificate ends its handshake here.
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    if let Ok(mut upstream) = TcpStream::connect(&backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                    }
                });
            }
        });
        TlsFront {
            url: format!("https://{bound}"),
            port: bound.port(),
            task,
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}
