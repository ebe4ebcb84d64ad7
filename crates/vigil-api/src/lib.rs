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
//! | GET | `/v1/events` | server-sent events |

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
pub mod checkdef;
mod checks;
pub mod error;
mod events;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{middleware, Router};
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
}

impl Api {
    /// The full router of an agent.
    pub fn router(self) -> Router {
        let mutating = Router::new()
            .route(
                "/v1/checks/{name}",
                put(checks::put_check).delete(checks::delete_check),
            )
            .route("/v1/checks/{name}/{verdict}", put(checks::put_ttl))
            .route_layer(middleware::from_fn_with_state(
                self.token.clone(),
                auth::require_token,
            ));
        let reading = Router::new()
            .route("/v1/checks/{name}", get(checks::get_check))
            .route("/v1/events", get(events::events))
            .route("/metrics", get(metrics_text));
        mutating
            .merge(reading)
            .with_state(self.engine.clone())
            .merge(vigil_health::http::probe_routes(self.engine))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
    }
}

async fn metrics_text(State(engine): State<Engine>) -> Response {
    let mut out = String::with_capacity(8192);
    metrics::render(&engine.snapshot(), &mut out);
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
