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
//! | GET | `/v1/services` | the registry: each instance with its state, checks and node health |
//! | GET | `/v1/services/{name}` | discovery from this agent's catalog: `?healthy`, `?tag=`, `?node=`, blocking `?index=&wait=` |
//! | PUT | `/v1/services/{name}/{id}/pass\|warn\|fail` | an instance's TTL check; token |
//! | GET | `/v1/registry` | on a voter: the whole registry, which other agents copy |
//! | POST | `/v1/instance-reports` | agent to agent: instance check results; token |
//! | GET | `/v1/sd/prometheus` | Prometheus `http_sd_configs` targets: healthy instances |
//! | GET | `/`, `/assets/*` | the live dashboard |
//! | POST | `/v1/sessions` | a holder's session; token |
//! | PUT | `/v1/sessions/{id}/renew` | renew it; token |
//! | DELETE | `/v1/sessions/{id}` | end it, releasing what it holds; token |
//! | GET | `/v1/sessions/{id}/hold` | a stream that ends the session when its connection closes; token |
//! | GET | `/v1/sessions[/{id}]` | sessions and what they hold |
//! | POST | `/v1/elections/{name}/campaign\|resign` | join or leave an election; token |
//! | GET | `/v1/elections[/{name}]` | leaders, fencing tokens, candidates; blocking `?index=&wait=` |
//! | POST | `/v1/locks/{name}`, `/v1/locks/{name}/release` | ask for or release a lock; token |
//! | GET | `/v1/locks[/{name}]` | holders, fencing tokens, who waits |
//! | GET | `/v1/neighbors` | each configured neighbour: state, consecutive failures, last latency and error |
//! | GET | `/v1/openapi.json` | the OpenAPI 3 document of this API ([`openapi`]) |
//!
//! The [`dns`] module answers discovery over DNS (UDP and TCP) from the same catalog.
//!
//! Each module serves its own routes (a `routes` function) and [`Api::router`] merges them; the
//! bodies are the serde structs of [`wire`], which the `vigil` commands read back.
//!
//! The OpenAPI document is served from the checked-in `openapi.json`. The `openapi` feature
//! compiles utoipa and the annotations that describe it (each handler's `#[utoipa::path]`, the
//! wire types' `ToSchema`), which only the test keeping that file current and whoever refreshes it
//! need; the agent is built without them (see [`openapi`]).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
pub mod catalog;
pub mod checkdef;
mod checks;
mod cluster;
mod consul;
mod dashboard;
mod discovery;
mod discovery_cache;
pub mod dns;
pub mod error;
mod events;
mod forward;
pub mod grpc;
pub mod instance_checks;
mod leader;
mod maintenance;
mod metrics;
mod neighbors;
pub mod openapi;
mod prometheus_sd;
pub mod reload;
mod roles;
pub mod serve;
mod services;
mod sessions;
pub mod snapshot;
mod voters;
pub mod webhooks;
pub mod wire;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{middleware, Router};
use vigil_cluster::raft::Leadership;
use vigil_cluster::Cluster;
use vigil_health::Engine;
use vigil_probe::neighbors::Neighbors;

pub use auth::{Readers, Token};
pub use discovery::dial_address;
pub use error::ApiError;
pub use forward::{peer_client, peer_url, reach_peers_over_tls};
pub use services::{validate_registration, RegistrationError, RegistrationField};

/// Everything the API serves from.
#[derive(Clone, Debug)]
pub struct Api {
    /// The node's health engine.
    pub engine: Engine,
    /// Guard of mutating endpoints.
    pub token: Token,
    /// Guard of everything but the probe endpoints, when set (see [`auth::Readers`]).
    pub read_token: Token,
    /// Cluster membership, when the node is part of a cluster.
    pub cluster: Option<Cluster>,
    /// The Raft group, when the node is a voter. Without it, leader and registry requests are
    /// passed on to a voter.
    pub leadership: Option<Leadership>,
    /// The neighbour monitor (none configured: `/v1/neighbors` answers 404).
    pub neighbors: Option<Neighbors>,
    /// The registry this node answers discovery from, when it is part of a cluster.
    pub catalog: Option<catalog::Catalog>,
    /// The checks of the service instances on this node, when it is part of a cluster.
    pub instances: Option<instance_checks::InstanceChecks>,
    /// The webhooks events are delivered to (none by default), for their counts in `/metrics`.
    pub webhooks: webhooks::Webhooks,
    /// What `POST /v1/reload` calls (none by default: an agent without a config file).
    pub reload: reload::ReloadHook,
}

impl FromRef<Api> for Engine {
    fn from_ref(api: &Api) -> Engine {
        api.engine.clone()
    }
}

impl Api {
    /// What an agent serves: [`Api::router`], with the probe endpoints, `/metrics` and discovery
    /// answers kept for the current registry answered ahead of it (see [`serve::App::direct`]).
    pub fn app(self) -> serve::App {
        let direct = self.clone();
        let readers = self.readers();
        let answers = std::sync::Arc::new(discovery_cache::Answers::default());
        let mirrors = std::sync::Arc::new(serve::Mirrors::default());
        serve::App::from(self.router()).direct(std::sync::Arc::new(move |request| {
            if request.method != Method::GET && request.method != Method::HEAD {
                return None;
            }
            if let Some(refusal) = readers.refuse(&direct.engine, request) {
                return Some(serve::DirectAnswer::Now(refusal));
            }
            match request.uri.path() {
                "/metrics" => Some(metrics::respond_direct(&direct, &mirrors)),
                path if path.starts_with("/v1/services/")
                    || path.starts_with("/v1/health/service/") =>
                {
                    discovery_cache::respond(&direct, &answers, request)
                }
                path => vigil_health::http::respond(&direct.engine, path, request.uri.query())
                    .map(serve::DirectAnswer::Now),
            }
        }))
    }

    /// What a plain-HTTP listener for the probe endpoints alone serves (beside an API on TLS,
    /// for kubelets and load balancers): `/livez`, `/readyz`, `/health/live` and
    /// `/health/ready` answered as the API answers them, behind the same read guard, and 404
    /// for every other path.
    pub fn probe_app(&self) -> serve::App {
        let readers = self.readers();
        let engine = self.engine.clone();
        let router = auth::PROBE_PATHS
            .iter()
            .fold(Router::new(), |router, path| {
                router.route(path, axum::routing::any(method_not_allowed))
            })
            .fallback(not_found)
            .layer(middleware::map_response(json_errors));
        serve::App::from(router).direct(std::sync::Arc::new(move |request| {
            let path = request.uri.path();
            if (request.method != Method::GET && request.method != Method::HEAD)
                || !auth::PROBE_PATHS.contains(&path)
            {
                return None;
            }
            let answer = readers
                .refuse(&engine, request)
                .or_else(|| vigil_health::http::respond(&engine, path, request.uri.query()))?;
            Some(serve::DirectAnswer::Now(answer))
        }))
    }

    /// Who may read: the API token and the read token.
    pub fn readers(&self) -> auth::Readers {
        auth::Readers {
            api_token: self.token.clone(),
            read_token: self.read_token.clone(),
        }
    }

    /// The full router of an agent: each module's routes, merged, behind the read guard.
    pub fn router(self) -> Router {
        let read_guard = (self.readers(), self.engine.clone());
        Router::new()
            .merge(checks::routes(&self))
            .merge(events::routes(&self))
            .merge(metrics::routes(&self))
            .merge(neighbors::routes(&self))
            .merge(cluster::routes(&self))
            .merge(leader::routes(&self))
            .merge(services::routes(&self))
            .merge(catalog::routes(&self))
            .merge(instance_checks::routes(&self))
            .merge(maintenance::routes(&self))
            .merge(sessions::routes(&self))
            .merge(snapshot::routes(&self))
            .merge(reload::routes(&self))
            .merge(voters::routes(&self))
            .merge(roles::routes(&self))
            .merge(consul::routes(&self))
            .merge(prometheus_sd::routes(&self))
            .merge(openapi::routes())
            .merge(vigil_health::http::probe_routes(self.engine.clone()))
            .merge(dashboard::routes(self.cluster.is_some()))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(middleware::from_fn(refuse_oversized_bodies))
            .layer(middleware::map_response(json_errors))
            .layer(middleware::from_fn_with_state(
                read_guard,
                auth::require_reader,
            ))
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
    // A backup is the one body allowed to be larger.
    let limit = if request.uri().path() == "/v1/snapshot" {
        snapshot::MAX_SNAPSHOT_BYTES
    } else {
        MAX_BODY_BYTES
    };
    match announced {
        Some(length) if length > limit as u64 => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is {length} bytes, over the limit of {limit}"),
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

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no endpoint at {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}
