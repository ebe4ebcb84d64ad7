//! Who may change and who may read: the API token guarding mutating endpoints, and the optional
//! read token guarding everything but the probe endpoints.
//!
//! A token is presented as `Authorization: Bearer <token>`, as Consul's clients send it
//! (`X-Consul-Token`), or as `?token=` (what a browser's `EventSource` can send). Tokens are
//! compared in constant time.

use std::borrow::Cow;
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use subtle::ConstantTimeEq;
use vigil_health::Engine;

use crate::error::ApiError;

/// A token; none leaves what it guards open. Every clone shares one value, so a reload that
/// replaces it ([`Token::replace`]) guards every route at once.
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
    /// A token that requests must present (none: open).
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

    /// Whether `presented` is this token (false when none is set).
    fn matches(&self, presented: &str) -> bool {
        self.0
            .load()
            .as_ref()
            .is_some_and(|expected| bool::from(presented.as_bytes().ct_eq(expected.as_bytes())))
    }

    fn admits(&self, presented: Option<&str>) -> Result<(), ApiError> {
        if !self.is_set() {
            return Ok(());
        }
        match presented {
            None => Err(missing_token()),
            Some(p) if self.matches(p) => Ok(()),
            Some(_) => Err(invalid_token()),
        }
    }
}

fn missing_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "missing API token: send the header \"Authorization: Bearer <token>\"",
    )
}

fn invalid_token() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid API token")
}

/// `route` behind the API token: without it, 401 and a JSON error, before the handler runs.
pub fn guarded<S: Clone + Send + Sync + 'static>(
    token: &Token,
    route: MethodRouter<S>,
) -> MethodRouter<S> {
    route.route_layer(middleware::from_fn_with_state(token.clone(), require_token))
}

async fn require_token(State(token): State<Token>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match token.admits(presented(&parts.headers, &parts.uri).as_deref()) {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(e) => e.into_response(),
    }
}

/// The token a request presents: `Authorization: Bearer`, `X-Consul-Token` or `?token=`.
fn presented<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<Cow<'a, str>> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    header(header::AUTHORIZATION)
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .or_else(|| header(axum::http::HeaderName::from_static("x-consul-token")))
        .map(|token| Cow::Borrowed(token.trim()))
        .or_else(|| {
            form_urlencoded::parse(uri.query()?.as_bytes())
                .find(|(key, _)| key == "token")
                .map(|(_, value)| value)
        })
}

/// The endpoints a kubelet or load balancer polls, open without a token even when reads need
/// one; what they show without it is only whether the node is up ([`vigil_health::http::respond_public`]).
pub const PROBE_PATHS: [&str; 4] = ["/livez", "/readyz", "/health/live", "/health/ready"];

/// The dashboard's page and assets: code shipped in the binary, no data. Open, so that a
/// browser can load the page that then asks for the token.
const PAGE_PATHS: [&str; 3] = ["/", "/assets/app.js", "/assets/style.css"];

/// The read guard: with a read token set, a request must present it or the API token for
/// anything but the probe endpoints (and the dashboard's page), and `?verbose` on a probe
/// endpoint needs it too.
#[derive(Clone, Debug, Default)]
pub struct Readers {
    /// The API token, which reads as well as writes.
    pub api_token: Token,
    /// The read token; none: reads are open.
    pub read_token: Token,
}

impl Readers {
    /// The `Authorization` header one agent presents to read from another: the API token, else
    /// the read token (agents of a cluster share their tokens).
    pub(crate) fn bearer(&self) -> Option<axum::http::HeaderValue> {
        self.api_token.bearer().or_else(|| self.read_token.bearer())
    }

    /// The answer for a request that may not read what it asks, `None` when it may. `engine`
    /// answers the probe endpoints for a caller without a token.
    pub(crate) fn refuse(&self, engine: &Engine, parts: &Parts) -> Option<Response> {
        if !self.read_token.is_set() {
            return None;
        }
        let path = parts.uri.path();
        let presented = presented(&parts.headers, &parts.uri);
        match presented.as_deref() {
            Some(token) if self.read_token.matches(token) || self.api_token.matches(token) => {
                return None
            }
            Some(_) => return Some(invalid_token().into_response()),
            None => {}
        }
        if PAGE_PATHS.contains(&path) {
            return None;
        }
        if !PROBE_PATHS.contains(&path) {
            return Some(
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "reading this agent needs a token: send the header \"Authorization: Bearer <token>\" with its read token or API token",
                )
                .into_response(),
            );
        }
        if parts.method != Method::GET && parts.method != Method::HEAD {
            return None;
        }
        if asks_verbose(parts.uri.query()) {
            return Some(
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "?verbose shows check details: send the read token or API token",
                )
                .into_response(),
            );
        }
        vigil_health::http::respond_public(engine, path, parts.uri.query())
    }
}

/// Whether a query asks for `verbose` (kube-apiserver's flag: present and not `false`/`0`).
fn asks_verbose(query: Option<&str>) -> bool {
    query.is_some_and(|query| {
        form_urlencoded::parse(query.as_bytes())
            .any(|(key, value)| key == "verbose" && value != "false" && value != "0")
    })
}

/// Middleware of the whole router: requests the read guard refuses get its answer.
pub(crate) async fn require_reader(
    State((readers, engine)): State<(Readers, Engine)>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    match readers.refuse(&engine, &parts) {
        Some(refusal) => refusal,
        None => next.run(Request::from_parts(parts, body)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = axum::http::Request::get(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_token_is_read_from_the_header_consul_header_or_query() {
        for (uri, headers) in [
            ("/v1/services", vec![("authorization", "Bearer s3cret")]),
            ("/v1/services", vec![("x-consul-token", "s3cret")]),
            ("/v1/services?index=3&token=s3cret", vec![]),
            ("/v1/services?token=s%33cret", vec![]),
        ] {
            let parts = parts(uri, &headers);
            assert_eq!(
                presented(&parts.headers, &parts.uri).as_deref(),
                Some("s3cret"),
                "{uri} {headers:?}"
            );
        }
        let none = parts("/v1/services?tokens=x", &[]);
        assert_eq!(presented(&none.headers, &none.uri), None);
    }

    #[test]
    fn verbose_is_what_kube_apiserver_calls_verbose() {
        assert!(asks_verbose(Some("verbose")));
        assert!(asks_verbose(Some("exclude=a&verbose=1")));
        assert!(!asks_verbose(Some("verbose=false")));
        assert!(!asks_verbose(Some("verbose=0")));
        assert!(!asks_verbose(Some("exclude=verbose")));
        assert!(!asks_verbose(None));
    }

    #[test]
    fn with_a_read_token_only_probes_and_the_page_are_open() {
        let engine = Engine::builder().build();
        let readers = Readers {
            api_token: Token::new(Some("write".into())),
            read_token: Token::new(Some("read".into())),
        };
        let status = |uri: &str, headers: &[(&str, &str)]| {
            readers
                .refuse(&engine, &parts(uri, headers))
                .map(|r| r.status())
        };
        assert_eq!(status("/v1/services", &[]), Some(StatusCode::UNAUTHORIZED));
        assert_eq!(status("/metrics", &[]), Some(StatusCode::UNAUTHORIZED));
        assert_eq!(status("/health", &[]), Some(StatusCode::UNAUTHORIZED));
        assert_eq!(
            status("/v1/services", &[("authorization", "Bearer nope")]),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(status("/v1/services?token=read", &[]), None);
        assert_eq!(
            status("/v1/services", &[("authorization", "Bearer write")]),
            None
        );
        assert_eq!(status("/", &[]), None);
        assert_eq!(status("/readyz", &[]), Some(StatusCode::OK));
        assert_eq!(
            status("/readyz?verbose", &[]),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(status("/readyz?verbose&token=read", &[]), None);

        let open = Readers::default();
        assert!(open.refuse(&engine, &parts("/v1/services", &[])).is_none());
    }
}
