//! Bearer-token guard for mutating endpoints.

use std::sync::Arc;

use arc_swap::ArcSwapOption;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The API token; none leaves mutating endpoints open (local development only). Every clone
/// shares one value, so a reload that replaces it ([`Token::replace`]) guards every route at
/// once.
#[derive(Clone, Default)]
pub struct Token(Arc<ArcSwapOption<String>>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_set() {
            "Token(set)"
        } else {
            "Token(none)"
        })
    }
}

impl Token {
    /// A token that requests must present as `Authorization: Bearer <token>`.
    pub fn new(token: Option<String>) -> Self {
        let guard = Token::default();
        guard.replace(token);
        guard
    }

    /// Makes `token` the one requests must present, from now on (none: open).
    pub fn replace(&self, token: Option<String>) {
        self.0.store(token.filter(|t| !t.is_empty()).map(Arc::new));
    }

    /// The `Authorization` header that presents this token to another agent, when one is set.
    pub(crate) fn bearer(&self) -> Option<axum::http::HeaderValue> {
        let token = self.0.load_full()?;
        axum::http::HeaderValue::from_str(&format!("Bearer {token}")).ok()
    }

    /// Whether a token is configured.
    pub fn is_set(&self) -> bool {
        self.0.load().is_some()
    }

    fn admits(&self, presented: Option<&str>) -> Result<(), ApiError> {
        let expected = self.0.load();
        let Some(expected) = expected.as_ref() else {
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
    match token.admits(bearer_of(&request)) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer_of(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// `route` of the Consul-compatible surface behind the token, presented as Consul's clients
/// do: `X-Consul-Token`, `Authorization: Bearer` or `?token=`.
pub fn consul_guarded<S: Clone + Send + Sync + 'static>(
    token: &Token,
    route: MethodRouter<S>,
) -> MethodRouter<S> {
    route.route_layer(middleware::from_fn_with_state(
        token.clone(),
        require_consul_token,
    ))
}

async fn require_consul_token(
    State(token): State<Token>,
    request: Request,
    next: Next,
) -> Response {
    let in_query = request.uri().query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("token="))
            .map(str::to_owned)
    });
    let presented = request
        .headers()
        .get("x-consul-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| bearer_of(&request).map(str::to_owned))
        .or(in_query);
    match token.admits(presented.as_deref()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}
