//! vigil's HTTP and gRPC surfaces.
//!
//! One axum router that a `vigil` agent serves: the probe endpoints of `vigil-health`
//! (`/health*`, `/livez`, `/readyz`), `/metrics`, the check API under `/v1/checks`, and the event
//! stream `/v1/events`. Mutating endpoints require the bearer token when one is configured, and
//! every error is JSON `{"error": "..."}` with a 4xx status that names the problem. The [`grpc`]
//! module serves `grpc.health.v1.Health` and `vigil.v1.Node` from the same engine.
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
//! | GET | `/v1/leader` | who leads, the term, since when, the leader's API address |
//! | POST | `/v1/services` | register a service instance; token |
//! | DELETE | `/v1/services/{name}/{id}` | deregister; token |
//! | GET | `/v1/services`, `/v1/services/{name}` | the registry with each instance's node health |
//! | GET | `/`, `/assets/*` | the live dashboard |
//! | GET | `/v1/neighbors` | each configured neighbour: state, consecutive failures, last latency and error |

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
pub mod checkdef;
mod checks;
mod cluster;
mod dashboard;
pub mod error;
mod events;
mod forward;
pub mod grpc;
mod leader;
mod neighbors;
pub mod serve;
mod services;

use std::future::Future;

use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Json;
use axum::{middleware, Router};
use serde_json::Value;
use vigil_cluster::raft::Leadership;
use vigil_cluster::Cluster;
use vigil_health::{metrics, Engine};
use vigil_probe::neighbors::Neighbors;

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
    /// The Raft group, when the node is a voter. Without it, leader and registry requests are
    /// passed on to a voter.
    pub leadership: Option<Leadership>,
    /// The neighbour monitor, when neighbours are configured.
    pub neighbors: Option<Neighbors>,
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
            .route("/v1/neighbors", get(neighbors::list))
            .with_state(self.clone());
        if let Some(c) = self.cluster.clone() {
            mutating = mutating
                .merge(
                    Router::new()
                        .route("/v1/keyring/{op}", post(cluster::keyring_change))
                        .with_state(c.clone()),
                )
                .merge(
                    Router::new()
                        .route("/v1/services", post(services::register))
                        .route("/v1/services/{name}/{id}", delete(services::deregister))
                        .with_state(self.clone()),
                );
            reading = reading
                .merge(
                    Router::new()
                        .route("/v1/keyring", get(cluster::keyring_list))
                        .with_state(c),
                )
                .merge(
                    Router::new()
                        .route("/cluster/status", get(cluster_status))
                        .route("/v1/members", get(members))
                        .route("/v1/leader", get(leader::leader))
                        .route("/v1/services", get(services::list))
                        .route("/v1/services/{name}", get(services::get_service))
                        .with_state(self.clone()),
                );
        }
        let dashboard = dashboard::routes(self.cluster.is_some());
        mutating
            .route_layer(guard)
            .merge(reading)
            .merge(vigil_health::http::probe_routes(self.engine))
            .merge(dashboard)
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(middleware::from_fn(refuse_oversized_bodies))
            .layer(middleware::map_response(json_errors))
    }
}

/// Largest request body the API reads (2 MiB, axum's default, made explicit).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Answers `413` at once to a request whose `Content-Length` is over [`MAX_BODY_BYTES`], before
/// anything of its body is read.
async fn refuse_oversized_bodies(request: axum::extract::Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(length) if length > MAX_BODY_BYTES as u64 => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is {length} bytes, over the limit of {MAX_BODY_BYTES}"),
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

/// Longest text error body carried over into JSON by [`json_errors`].
const TEXT_ERROR_MAX: usize = 4096;

/// Turns a client error answered as text (axum's own rejections: `413` for a body over the limit,
/// `400` for a path that is not UTF-8, `415`, `422`) into the `{"error": "..."}` every API error is.
async fn json_errors(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !response.status().is_client_error() || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, TEXT_ERROR_MAX)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("client error")
            .to_owned()
    } else {
        text
    };
    let json = ApiError::new(parts.status, message).into_response();
    let (json_parts, json_body) = json.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    drop(json_parts);
    Response::from_parts(parts, json_body)
}

/// `GET /metrics`: the engine's text, shared by every scrape of one snapshot, then the uptime and
/// the neighbour, cluster and Raft families, which are small and rendered per scrape.
async fn metrics_text(State(api): State<Api>) -> Response {
    let snapshot = api.engine.snapshot();
    let shared = metrics::shared(&snapshot).await;
    let mut out = String::with_capacity(8192);
    metrics::uptime(&snapshot, &mut out);
    if let Some(neighbors) = &api.neighbors {
        neighbors::render_metrics(neighbors, &mut out);
    }
    if let Some(cluster) = &api.cluster {
        cluster::render_metrics(&cluster.view(), &mut out);
    }
    if let Some(leadership) = &api.leadership {
        leader::render_metrics(leadership, &mut out);
    }
    let body = vigil_health::http::shared_body([shared, bytes::Bytes::from(out)]);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response()
}

/// `GET /cluster/status`, with Raft's quorum on a voter.
async fn cluster_status(State(api): State<Api>) -> Response {
    with_raft_quorum(api, "/cluster/status", cluster::status).await
}

/// `GET /v1/members`, with Raft's quorum on a voter.
async fn members(State(api): State<Api>) -> Response {
    with_raft_quorum(api, "/v1/members", cluster::members).await
}

/// A membership answer of [`cluster`] with `hasQuorum` as Raft sees it on a voter; 404 at `path`
/// on a node without a cluster.
async fn with_raft_quorum<F>(
    api: Api,
    path: &'static str,
    answer: impl FnOnce(State<Cluster>) -> F,
) -> Response
where
    F: Future<Output = Json<Value>>,
{
    let Some(c) = api.cluster.clone() else {
        return not_found(axum::http::Uri::from_static(path))
            .await
            .into_response();
    };
    let Json(mut body) = answer(State(c)).await;
    leader::patch_quorum(&mut body, api.leadership.as_ref());
    Json(body).into_response()
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
