//! TLS for the API and the gRPC server: the certificate chain and key, and for mutual TLS the CA
//! client certificates must chain to, read from PEM files with rustls (no OpenSSL).
//!
//! The configuration in force is swapped whole by [`Tls::reload`], so a renewed certificate is
//! served to every new connection at once while open connections keep the session they made.
//! Handshakes are bounded by the serve loop's head timeout: a client that opens a socket and says
//! nothing holds it no longer than one that sends half a request head.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Where the TLS files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// For mutual TLS: the CA certificates (PEM) a client's certificate must chain to; a client
    /// without one is refused during the handshake.
    pub client_ca: Option<PathBuf>,
}

/// Why the TLS files cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file holds no usable PEM of the kind expected.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The files do not make a configuration (a key that does not match the certificate, say).
    #[error("{0}")]
    Config(String),
}

/// The TLS configuration an API (and gRPC) listener serves, shared by its clones.
#[derive(Clone)]
pub struct Tls {
    files: Arc<ArcSwap<TlsFiles>>,
    /// For HTTP/1.1 (ALPN `http/1.1`).
    http1: Arc<ArcSwap<ServerConfig>>,
    /// For gRPC (ALPN `h2`).
    h2: Arc<ArcSwap<ServerConfig>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("files", &self.files.load())
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads `files` into a configuration.
    pub fn load(files: TlsFiles) -> Result<Tls, TlsError> {
        let (http1, h2) = configs(&files)?;
        Ok(Tls {
            files: Arc::new(ArcSwap::from_pointee(files)),
            http1: Arc::new(ArcSwap::from_pointee(http1)),
            h2: Arc::new(ArcSwap::from_pointee(h2)),
        })
    }

    /// Reads `files` (the same paths again, or new ones) and serves them to every new
    /// connection from now on; on an error nothing changes.
    pub fn reload(&self, files: TlsFiles) -> Result<(), TlsError> {
        let (http1, h2) = configs(&files)?;
        self.http1.store(Arc::new(http1));
        self.h2.store(Arc::new(h2));
        self.files.store(Arc::new(files));
        Ok(())
    }

    /// The files in force.
    pub fn files(&self) -> TlsFiles {
        TlsFiles::clone(&self.files.load())
    }

    /// Completes the handshake of an HTTP/1.1 connection within `within`.
    pub(crate) async fn accept(
        &self,
        stream: TcpStream,
        within: Duration,
    ) -> io::Result<TlsStream<TcpStream>> {
        handshake(&self.http1, stream, within).await
    }

    /// Completes the handshake of a gRPC (HTTP/2) connection within `within`.
    pub async fn accept_h2(
        &self,
        stream: TcpStream,
        within: Duration,
    ) -> io::Result<TlsStream<TcpStream>> {
        handshake(&self.h2, stream, within).await
    }
}

async fn handshake(
    config: &ArcSwap<ServerConfig>,
    stream: TcpStream,
    within: Duration,
) -> io::Result<TlsStream<TcpStream>> {
    let acceptor = TlsAcceptor::from(config.load_full());
    match tokio::time::timeout(within, acceptor.accept(stream)).await {
        Ok(accepted) => accepted,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// The HTTP/1.1 and HTTP/2 configurations of `files`.
fn configs(files: &TlsFiles) -> Result<(ServerConfig, ServerConfig), TlsError> {
    let chain = certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::File {
        path: files.key.clone(),
        reason: format!("no private key read: {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for certificate in certificates(path)? {
                roots.add(certificate).map_err(|e| TlsError::File {
                    path: path.clone(),
                    reason: format!("not a CA certificate: {e}"),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::File {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut http1 = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(format!("{}: {e}", files.cert.display())))?;
    let mut h2 = http1.clone();
    http1.alpn_protocols = vec![b"http/1.1".to_vec()];
    h2.alpn_protocols = vec![b"h2".to_vec()];
    Ok((http1, h2))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |reason: String| TlsError::File {
        path: path.to_owned(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(e.to_string()))?;
    if certificates.is_empty() {
        return Err(error("no PEM certificate in it".to_owned()));
    }
    Ok(certificates)
}
