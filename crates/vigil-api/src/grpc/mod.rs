//! vigil's gRPC surface: the standard `grpc.health.v1.Health` service (so `grpc_health_probe`,
//! Kubernetes gRPC probes and any gRPC client's health checking work unchanged) and
//! `vigil.v1.Node/HealthCheck` (proto/vigil.proto), both read from the engine.
//!
//! ```no_run
//! # async fn run(engine: vigil_health::Engine) -> Result<(), vigil_api::grpc::ServeError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9090").await.expect("bind");
//! let surface = vigil_api::grpc::GrpcSurface::new(engine, "standalone");
//! surface.serve(listener, std::future::pending()).await
//! # }
//! ```

mod health;
mod node;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_server::HealthServer;
use vigil_health::Engine;

use crate::serve::Tls;

/// Why the gRPC server stopped with an error.
pub use tonic::transport::Error as ServeError;

/// Generated from proto/vigil.proto: the `vigil.v1.Node` service, its messages and its client.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("vigil.v1");
}

/// What the gRPC server answers from.
#[derive(Clone, Debug)]
pub struct GrpcSurface {
    engine: Engine,
    role: String,
    services: BTreeMap<String, Vec<String>>,
}

impl GrpcSurface {
    /// A surface over `engine`; `role` is what `vigil.v1.Node/HealthCheck` reports.
    pub fn new(engine: Engine, role: impl Into<String>) -> Self {
        GrpcSurface {
            engine,
            role: role.into(),
            services: BTreeMap::new(),
        }
    }

    /// Adds a health service name that is `SERVING` when every one of `checks` serves.
    pub fn service(mut self, name: impl Into<String>, checks: Vec<String>) -> Self {
        self.services.insert(name.into(), checks);
        self
    }

    /// The services as tonic routes. `Watch` streams end when `closing` turns true (or its sender
    /// is dropped), so a graceful shutdown is not held up by watchers.
    pub fn routes(self, closing: watch::Receiver<bool>) -> Routes {
        let health = health::HealthService {
            engine: self.engine.clone(),
            services: Arc::new(self.services),
            closing,
        };
        let node = node::NodeService {
            engine: self.engine,
            role: self.role,
        };
        Routes::new(HealthServer::new(health)).add_service(pb::node_server::NodeServer::new(node))
    }

    /// Serves on `listener` until `shutdown` completes, then ends open `Watch` streams and waits
    /// for calls in flight.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        // Small answers must leave at once: without TCP_NODELAY on the accepted sockets, Nagle's
        // algorithm and the peer's delayed ACK hold some of them back by tens of milliseconds.
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        self.serve_incoming(incoming, shutdown).await
    }

    /// [`GrpcSurface::serve`] over TLS (ALPN `h2`), with the configuration `tls` holds when
    /// each connection arrives; a handshake must complete within [`HANDSHAKE_WITHIN`].
    pub async fn serve_tls(
        self,
        listener: TcpListener,
        tls: Tls,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let (accepted, handshaken) = mpsc::channel(HANDSHAKES);
        let acceptor = AbortOnDrop(tokio::spawn(accept_tls(listener, tls, accepted)));
        let incoming = futures_util::stream::unfold(handshaken, |mut handshaken| async move {
            let connection = handshaken.recv().await?;
            Some((Ok::<_, std::io::Error>(connection), handshaken))
        });
        let served = self.serve_incoming(incoming, shutdown).await;
        drop(acceptor);
        served
    }

    async fn serve_incoming<IO>(
        self,
        incoming: impl futures_util::Stream<Item = Result<IO, std::io::Error>> + Send,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError>
    where
        IO: tokio::io::AsyncRead
            + tokio::io::AsyncWrite
            + tonic::transport::server::Connected
            + Unpin
            + Send
            + 'static,
    {
        let (closing, closed) = watch::channel(false);
        tonic::transport::Server::builder()
            .add_routes(self.routes(closed))
            .serve_with_incoming_shutdown(incoming, async move {
                shutdown.await;
                let _ = closing.send(true);
            })
            .await
    }
}

/// How long a gRPC client has to complete its TLS handshake.
pub const HANDSHAKE_WITHIN: Duration = Duration::from_secs(10);
/// Connections handshaken and not yet taken by the server.
const HANDSHAKES: usize = 64;

/// Accepts connections and completes their handshakes, each on a task of its own so that a slow
/// client holds up no other, until the server stops taking them.
async fn accept_tls(listener: TcpListener, tls: Tls, accepted: mpsc::Sender<TlsConnection>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::debug!(%error, "accepting a gRPC connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (tls, handshaken) = (tls.clone(), accepted.clone());
        tokio::spawn(async move {
            match tls.accept_h2(stream, HANDSHAKE_WITHIN).await {
                Ok(stream) => {
                    let _ = handshaken.send(TlsConnection(stream)).await;
                }
                Err(error) => tracing::debug!(%error, "gRPC TLS handshake failed"),
            }
        });
        if accepted.is_closed() {
            return;
        }
    }
}

/// Aborts the task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A gRPC connection over TLS, as tonic takes it.
struct TlsConnection(tokio_rustls::server::TlsStream<tokio::net::TcpStream>);

impl tonic::transport::server::Connected for TlsConnection {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl tokio::io::AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
