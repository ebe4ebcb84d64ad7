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
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_server::HealthServer;
use vigil_health::Engine;

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
        let (closing, closed) = watch::channel(false);
        // Small answers must leave at once: without TCP_NODELAY on the accepted sockets, Nagle's
        // algorithm and the peer's delayed ACK hold some of them back by tens of milliseconds.
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        tonic::transport::Server::builder()
            .add_routes(self.routes(closed))
            .serve_with_incoming_shutdown(incoming, async move {
                shutdown.await;
                let _ = closing.send(true);
            })
            .await
    }
}
