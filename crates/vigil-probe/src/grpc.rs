//! `grpc://HOST:PORT[/SERVICE]` probes: one `grpc.health.v1.Health/Check` call on a fresh
//! connection, in plaintext or over TLS (own CA, client certificate, server name, or no verification).
//!
//! A failing report says which step failed in its `failure` detail, so `vigil probe` can exit as
//! `grpc_health_probe` does: `connect` (no connection), `rpc` (the call failed or timed out) or
//! `not_serving` (the server answered with anything but `SERVING`).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use vigil_health::{Probe, ProbeFuture, Report, Verdict};

use crate::kind::{exit, BuildError, Built, Invalid, Kind, ProbeOptions, Target};
use crate::util::{error_chain, fmt_elapsed, own_timeout};

pub(crate) const KIND: Kind = Kind {
    scheme: "grpc",
    form: "grpc://HOST:PORT[/SERVICE]",
    parse,
};

/// The schemes this file parses.
pub(crate) const KINDS: &[Kind] = &[KIND];

/// The `failure` detail of a report whose connection could not be made.
pub const FAILURE_CONNECT: &str = "connect";
/// The `failure` detail of a report whose Check call failed or timed out.
pub const FAILURE_RPC: &str = "rpc";
/// The `failure` detail of a report whose server answered with a status other than `SERVING`.
pub const FAILURE_NOT_SERVING: &str = "not_serving";

/// grpc_health_probe's exit codes for what went wrong.
const EXIT_CONNECTION_FAILURE: u8 = 2;
const EXIT_RPC_FAILURE: u8 = 3;
const EXIT_NOT_SERVING: u8 = 4;

/// A validated `grpc://` probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcSpec {
    host: String,
    port: u16,
    service: String,
    tls: Option<TlsSettings>,
    timeout: Duration,
}

/// TLS settings of a `grpc://` probe, from the `tls*` options.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TlsSettings {
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    server_name: Option<String>,
    skip_verify: bool,
}

fn parse(_target: &str, rest: &str, options: &ProbeOptions) -> Result<Arc<dyn Target>, Invalid> {
    let rest = rest
        .strip_prefix("//")
        .ok_or_else(|| Invalid::target("missing `//` after `grpc:`"))?;
    let (authority, service) = rest.split_once('/').unwrap_or((rest, ""));
    if service.contains(['/', '?', '#']) {
        return Err(Invalid::target(format!(
            "`{service}` is not a service name (one name such as pkg.Service, no further path)"
        )));
    }
    let (host, port) = crate::kind::split_authority(authority)?;
    let tls = uses_tls(options).then(|| TlsSettings {
        ca: options.tls_ca.clone(),
        cert: options.tls_cert.clone(),
        key: options.tls_key.clone(),
        server_name: options.tls_server_name.clone(),
        skip_verify: options.tls_skip_verify,
    });
    if let Some(tls) = &tls {
        if tls.cert.is_some() != tls.key.is_some() {
            return Err(Invalid::option(
                "tls_cert",
                "a client certificate needs both tls_cert and tls_key",
            ));
        }
        if let Some(name) = &tls.server_name {
            ServerName::try_from(name.as_str()).map_err(|_| {
                Invalid::option(
                    "tls_server_name",
                    format!("`{name}` is not a DNS name or IP address"),
                )
            })?;
        }
    }
    Ok(Arc::new(GrpcSpec {
        host: host.to_owned(),
        port,
        service: service.to_owned(),
        tls,
        timeout: own_timeout(options),
    }))
}

/// Whether a `grpc://` target is reached over TLS: `tls`, or any other `tls_*` option but
/// `tls_skip_verify`.
fn uses_tls(options: &ProbeOptions) -> bool {
    options.tls
        || options.tls_ca.is_some()
        || options.tls_cert.is_some()
        || options.tls_key.is_some()
        || options.tls_server_name.is_some()
}

impl GrpcSpec {
    fn probe(&self) -> Result<GrpcProbe, BuildError> {
        let tls = match &self.tls {
            None => None,
            Some(settings) => Some(self.tls_connector(settings).map_err(BuildError)?),
        };
        let endpoint = Endpoint::from_shared(format!("http://{}", self.authority()))
            .map_err(|error| BuildError(error_chain(&error)))?
            .connect_timeout(self.timeout)
            .tcp_nodelay(true);
        Ok(GrpcProbe {
            spec: self.clone(),
            endpoint,
            tls,
        })
    }

    fn authority(&self) -> String {
        crate::kind::authority(&self.host, self.port)
    }

    /// Reads the CA and client certificate once, so each run only connects.
    fn tls_connector(&self, settings: &TlsSettings) -> Result<Tls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?;
        let builder = if settings.skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        } else {
            let mut roots = rustls::RootCertStore::empty();
            match &settings.ca {
                Some(ca) => {
                    let certificates = read_certificates(ca)?;
                    let (added, _) = roots.add_parsable_certificates(certificates);
                    if added == 0 {
                        return Err(format!("tls_ca {}: no usable certificate", ca.display()));
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots)
        };
        let mut config = match (&settings.cert, &settings.key) {
            (Some(cert), Some(key)) => {
                let chain = read_certificates(cert)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|error| format!("tls_key {}: {error}", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|error| format!("tls_cert: {error}"))?
            }
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        let name = settings.server_name.as_deref().unwrap_or(&self.host);
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|_| format!("`{name}` is not a DNS name or IP address"))?;
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }
}

fn read_certificates(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|error| format!("{}: {error}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certificates)
}

impl Target for GrpcSpec {
    fn kind(&self) -> &'static str {
        KIND.scheme
    }

    fn build(&self) -> Result<Built, BuildError> {
        self.probe().map(Built::probe)
    }

    /// `grpc_health_probe`'s codes, so scripts and Kubernetes configs written for it keep working:
    /// 0 `SERVING`, 1 bad arguments, 2 connection failure (including a connect timeout), 3 RPC
    /// failure (including an RPC timeout or an unknown service), 4 any status other than `SERVING`.
    fn exit_code(&self, report: Option<&Report>) -> u8 {
        let Some(report) = report else {
            return EXIT_RPC_FAILURE;
        };
        match report.verdict {
            Verdict::Pass => exit::HEALTHY,
            Verdict::Warn => exit::WARNING,
            Verdict::Fail => match report.details.get("failure").and_then(|f| f.as_str()) {
                Some(FAILURE_CONNECT) => EXIT_CONNECTION_FAILURE,
                Some(FAILURE_NOT_SERVING) => EXIT_NOT_SERVING,
                _ => EXIT_RPC_FAILURE,
            },
        }
    }
}

impl fmt::Display for GrpcSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "grpc://{}", self.authority())?;
        if !self.service.is_empty() {
            write!(f, "/{}", self.service)?;
        }
        Ok(())
    }
}

/// A client TLS configuration and the name the server's certificate must carry.
#[derive(Clone)]
struct Tls {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

/// Accepts any server certificate (`tls_skip_verify`) but still checks that the server holds its
/// key, so the connection is at least encrypted to whoever answered.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A built gRPC probe.
pub(crate) struct GrpcProbe {
    spec: GrpcSpec,
    endpoint: Endpoint,
    tls: Option<Tls>,
}

impl GrpcProbe {
    async fn connect(&self) -> Result<Channel, String> {
        let Some(tls) = self.tls.clone() else {
            return self
                .endpoint
                .connect()
                .await
                .map_err(|error| error_chain(&error));
        };
        let (host, port) = (self.spec.host.clone(), self.spec.port);
        let connector = tower::service_fn(move |_: Uri| {
            let (tls, host) = (tls.clone(), host.clone());
            async move {
                let tcp = TcpStream::connect((host.as_str(), port)).await?;
                tcp.set_nodelay(true)?;
                let stream = tls.connector.connect(tls.server_name, tcp).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        });
        self.endpoint
            .connect_with_connector(connector)
            .await
            .map_err(|error| error_chain(&error))
    }

    async fn run(&self) -> Report {
        let target = self.spec.to_string();
        let start = Instant::now();
        let channel = match self.connect().await {
            Ok(channel) => channel,
            Err(reason) => {
                return failed(
                    FAILURE_CONNECT,
                    format!("cannot connect to {target}: {reason}"),
                    reason,
                )
            }
        };
        let connected = start.elapsed();
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: self.spec.service.clone(),
        });
        let remaining = self.spec.timeout.saturating_sub(connected);
        request.set_timeout(remaining);
        let mut client = HealthClient::new(channel);
        let call = client.check(request);
        let response = match tokio::time::timeout(remaining, call).await {
            Err(_) => {
                let limit = fmt_elapsed(self.spec.timeout);
                return failed(
                    FAILURE_RPC,
                    format!("{target}: no answer to Check within {limit}"),
                    "deadline exceeded",
                );
            }
            Ok(Err(status)) => {
                let reason = format!("{:?}: {}", status.code(), status.message());
                return failed(
                    FAILURE_RPC,
                    format!("{target}: Check failed: {reason}"),
                    reason,
                )
                .with_detail("grpc_code", status.code() as i32);
            }
            Ok(Ok(response)) => response.into_inner(),
        };
        let elapsed = fmt_elapsed(start.elapsed());
        let status = ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown);
        let name = status.as_str_name();
        if status == ServingStatus::Serving {
            Report::pass(format!("{target}: {name} in {elapsed}")).with_detail("serving", name)
        } else {
            failed(
                FAILURE_NOT_SERVING,
                format!("{target}: {name} in {elapsed}"),
                name,
            )
            .with_detail("serving", name)
        }
    }
}

fn failed(failure: &'static str, message: String, error: impl fmt::Display) -> Report {
    Report::fail(message)
        .with_error(error)
        .with_detail("failure", failure)
}

impl Probe for GrpcProbe {
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }

    fn kind(&self) -> &'static str {
        KIND.scheme
    }
}
