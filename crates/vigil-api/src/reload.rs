//! `POST /v1/reload`: re-reads the agent's config file and applies it, as SIGHUP does. The agent
//! (which knows its file and how to read it) gives the API a [`ReloadHook`]; an agent started
//! without a file (`vigil demo`) has none, and the endpoint says so.

use std::fmt;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use crate::error::ApiError;
use crate::{auth, wire, Api};

/// Why a reload changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadRefused {
    /// The file has errors: every one of them, as `file:line:column: message` lines.
    Invalid(String),
    /// Settings that cannot change while the agent runs differ: their names.
    Fixed(Vec<String>),
    /// The file could not be read.
    Unreadable(String),
}

impl fmt::Display for ReloadRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadRefused::Invalid(errors) => {
                write!(f, "the config has errors; the running config stays:\n{errors}")
            }
            ReloadRefused::Fixed(names) => write!(
                f,
                "{} cannot change while the agent runs (restart it to change them); the running config stays",
                names.join(", ")
            ),
            ReloadRefused::Unreadable(reason) => {
                write!(f, "{reason}; the running config stays")
            }
        }
    }
}

/// Reloads the agent's config.
type Reload = dyn Fn() -> Result<wire::Reloaded, ReloadRefused> + Send + Sync;

/// What the API calls to reload the agent's config; none for an agent without a file.
#[derive(Clone, Default)]
pub struct ReloadHook(Option<Arc<Reload>>);

impl ReloadHook {
    /// A hook that runs `reload`.
    pub fn new(
        reload: impl Fn() -> Result<wire::Reloaded, ReloadRefused> + Send + Sync + 'static,
    ) -> Self {
        ReloadHook(Some(Arc::new(reload)))
    }
}

impl fmt::Debug for ReloadHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "ReloadHook(set)"
        } else {
            "ReloadHook(none)"
        })
    }
}

/// `/v1/reload`, token-guarded.
pub(crate) fn routes(api: &Api) -> Router {
    Router::new()
        .route("/v1/reload", auth::guarded(&api.token, post(reload)))
        .with_state(api.clone())
}

/// `POST /v1/reload`.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/v1/reload", tag = "checks",
    security(("token" = [])),
    responses(
        (status = 200, description = "Applied: checks added, changed, removed; settings that take effect at the next start", body = wire::Reloaded),
        (status = 400, description = "The file has errors (each as file:line:column) or cannot be read; nothing changed", body = wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 404, description = "The agent was not started from a config file", body = wire::ErrorBody),
        (status = 409, description = "A setting that cannot change while the agent runs differs (named); nothing changed", body = wire::ErrorBody),
    )))]
pub async fn reload(State(api): State<Api>) -> Response {
    let Some(reload) = api.reload.0.clone() else {
        return ApiError::not_found("this agent was not started from a config file")
            .into_response();
    };
    // Reading and validating the file is blocking work.
    let outcome = match tokio::task::spawn_blocking(move || reload()).await {
        Ok(outcome) => outcome,
        Err(e) => {
            return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    };
    match outcome {
        Ok(reloaded) => (StatusCode::OK, Json(reloaded)).into_response(),
        Err(refused @ ReloadRefused::Fixed(_)) => {
            ApiError::new(StatusCode::CONFLICT, refused.to_string()).into_response()
        }
        Err(refused) => ApiError::bad_request(refused.to_string()).into_response(),
    }
}
