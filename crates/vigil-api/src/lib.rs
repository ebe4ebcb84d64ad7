//! vigil's HTTP surface.
//!
//! One axum router that a `vigil` agent serves: the probe endpoints of `vigil-health`
//! (`/health*`, `/livez`, `/readyz`), `/metrics`, the check API under `/v1/checks`, and the event
//! stream `/v1/events`. Mutating endpoints require the bearer token when one is configured, and
//! every error is JSON `{"error": "..."}` with a 4xx status that names the problem.
//!
//! | method | path | what |
//! | --- | --- | --- |
//! | GET | `/v1/checks/{name}` | one check and its history |
//! | PUT | `/v1/checks/{name}` | register or replace a check (JSON [`checkdef::CheckDefinition`]); token |
//! | DELETE | `/v1/checks/{name}` | unregister; token |
//! | PUT | `/v1/checks/{name}/pass\|warn\|fail` | TTL update, body = note; token |
//! | GET | `/v1/events` | server-sent events: checks, status, members |
//! | GET | `/cluster/status`, `/v1/members` | membership (when clustered) |
//! | GET, POST | `/v1/keyring`, `/v1/keyring/install\|use\|remove` | cluster keys; POST needs the token |

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
pub mod checkdef;
mod checks;
mod cluster;
pub mod error;
mod events;

use axum::extract::{FromRef, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{middleware, Router};
use vigil_cluster::Cluster;
use vigil_health::{metrics, Engine};

pub use auth::Token;
pub use error::ApiError;

/// Everything the API serves from.
#[derive(Clone, Debug)]
pub struct Api {
    /// The node's health engine.
    pub engine: Engine,
    /// Guard of mutating endpoints.
    pub token: Token,
    /// Cluster membership, when the node is part of a cluster.
    pub cluster: Option<Cluster>,
}

impl FromRef<Api> for Engine {
    fn from_ref(api: &Api) -> Engine {
        api.engine.clone()
    }
}

impl Api {
    /// The full router of an agent.
    pub fn router(self) -> Router {
        let guard = middleware::from_fn_with_state(self.token.clone(), auth::require_token);
        let mut mutating = Router::new()
            .route(
                "/v1/checks/{name}",
                put(checks::put_check).delete(checks::delete_check),
            )
            .route("/v1/checks/{name}/{verdict}", put(checks::put_ttl))
            .with_state(self.clone());
        let mut reading = Router::new()
            .route("/v1/checks/{name}", get(checks::get_check))
            .route("/v1/events", get(events::events))
            .route("/metrics", get(metrics_text))
            .with_state(self.clone());
        if let Some(c) = self.cluster.clone() {
            mutating = mutating.merge(
                Router::new()
                    .route("/v1/keyring/{op}", post(cluster::keyring_change))
                    .with_state(c.clone()),
            );
            reading = reading.merge(
                Router::new()
                    .route("/cluster/status", get(cluster::status))
                    .route("/v1/members", get(cluster::members))
                    .route("/v1/keyring", get(cluster::keyring_list))
                    .with_state(c),
            );
        }
        mutating
            .route_layer(guard)
            .merge(reading)
            .merge(vigil_health::http::probe_routes(self.engine))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
    }
}

async fn metrics_text(State(api): State<Api>) -> Response {
    let mut out = String::with_capacity(8192);
    metrics::render(&api.engine.snapshot(), &mut out);
    if let Some(cluster) = &api.cluster {
        cluster::render_metrics(&cluster.view(), &mut out);
    }
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], out).into_response()
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no endpoint at {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}
