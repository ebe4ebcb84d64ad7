//! Bearer-token guard for mutating endpoints.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The API token; `None` leaves mutating endpoints open (local development only).
#[derive(Clone, Default)]
pub struct Token(Option<Arc<str>>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Token(set)"
        } else {
            "Token(none)"
        })
    }
}

impl Token {
    /// A token that requests must present as `Authorization: Bearer <token>`.
    pub fn new(token: Option<String>) -> Self {
        Token(token.filter(|t| !t.is_empty()).map(Arc::from))
    }

    /// The `Authorization` header that presents this token to another agent, when one is set.
    pub(crate) fn bearer(&self) -> Option<axum::http::HeaderValue> {
        let token = self.0.as_ref()?;
        axum::http::HeaderValue::from_str(&format!("Bearer {token}")).ok()
    }

    /// Whether a token is configured.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    fn admits(&self, presented: Option<&str>) -> Result<(), ApiError> {
        let Some(expected) = &self.0 else {
            return Ok(());
        };
        match presented {
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing API token: send the header \"Authorization: Bearer <token>\"",
            )),
            Some(p) if bool::from(p.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
            Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid API token")),
        }
    }
}

/// `route` behind the token: without it, 401 and a JSON error, before the handler runs.
pub fn guarded<S: Clone + Send + Sync + 'static>(
    token: &Token,
    route: MethodRouter<S>,
) -> MethodRouter<S> {
    route.route_layer(middleware::from_fn_with_state(token.clone(), require_token))
}

/// Middleware rejecting requests without the configured token with 401 and a JSON error.
pub async fn require_token(State(token): State<Token>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match token.admits(presented) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}
