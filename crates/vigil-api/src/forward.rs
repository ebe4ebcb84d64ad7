//! Passing a request on to another node's API: writes to the leader, and every registry and
//! leader request of a node that is not a voter to a voter. The `X-Vigil-Forwarded` header
//! counts the hops, so a request is passed on at most twice (member → voter → leader) and
//! never loops.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use vigil_cluster::Cluster;
use vigil_gossip::{MemberState, Role};

use crate::error::ApiError;

/// Counts how often a request was passed on.
pub const FORWARDED: &str = "x-vigil-forwarded";
/// The header Consul's clients present their token in, passed on as `Authorization` is.
const CONSUL_TOKEN: header::HeaderName = header::HeaderName::from_static("x-consul-token");
/// Most hops a request makes.
const MAX_HOPS: u8 = 2;
/// How long the other node may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long an agent may take to accept a connection: one that does not within this is out of
/// reach (cut off, or its host gone), and waiting longer only holds the client up.
const CONNECT_WITHIN: Duration = Duration::from_secs(1);

/// Headers worth passing back from the node that answered.
const PASSED_BACK: [&str; 3] = ["content-type", "x-vigil-stale-ms", "x-vigil-served-by"];

/// How this agent reaches the other agents' APIs.
struct Peers {
    scheme: &'static str,
    client: reqwest::Client,
}

static PEERS: OnceLock<Peers> = OnceLock::new();

/// Reaches the other agents' APIs over HTTPS from now on (agents of one cluster serve theirs
/// alike): trusting the CA certificates of the PEM `ca` (the system's roots when none is given),
/// and presenting `identity` (a PEM certificate chain and its key) to agents that ask for a
/// client certificate. Called once, when the agent starts, before any request goes out; without
/// it, other agents are reached over plain HTTP.
pub fn reach_peers_over_tls(ca: Option<&[u8]>, identity: Option<&[u8]>) -> Result<(), String> {
    let mut builder = reqwest::Client::builder().connect_timeout(CONNECT_WITHIN);
    if let Some(ca) = ca {
        let certificates = reqwest::Certificate::from_pem_bundle(ca).map_err(|e| e.to_string())?;
        builder = builder.tls_built_in_root_certs(false);
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if let Some(identity) = identity {
        builder =
            builder.identity(reqwest::Identity::from_pem(identity).map_err(|e| e.to_string())?);
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    PEERS
        .set(Peers {
            scheme: "https",
            client,
        })
        .map_err(|_| "the other agents are already reached another way".to_owned())
}

fn peers() -> &'static Peers {
    PEERS.get_or_init(|| Peers {
        scheme: "http",
        client: reqwest::Client::builder()
            .connect_timeout(CONNECT_WITHIN)
            .build()
            .unwrap_or_default(),
    })
}

/// The URL of `path` on the agent whose API is at `to`.
pub fn peer_url(to: SocketAddr, path: &str) -> String {
    format!("{}://{to}{path}", peers().scheme)
}

/// The client requests to other agents go out with (set each request's timeout).
pub fn peer_client() -> &'static reqwest::Client {
    &peers().client
}

/// Hops this request has made so far.
pub fn hops(headers: &HeaderMap) -> u8 {
    headers
        .get(FORWARDED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A request as received, to pass on.
pub struct Incoming {
    /// Its method.
    pub method: Method,
    /// Its path and query.
    pub uri: Uri,
    /// Its headers (only the token and the hop count are passed on).
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl Incoming {
    /// The request of `parts`, without a body (a read, a delete); a handler with a body puts it
    /// in afterwards.
    pub fn bodiless(parts: &Parts) -> Incoming {
        Incoming {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
            body: Default::default(),
        }
    }
}

/// A handler takes the request it may pass on as an argument, bodiless.
impl<S: Send + Sync> FromRequestParts<S> for Incoming {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Incoming::bodiless(parts))
    }
}

/// Sends `request` to the API at `to` and returns its answer; 503 with a `no quorum` error when
/// the hop limit is reached or `to` does not answer.
pub async fn forward(request: &Incoming, to: SocketAddr, why: &str) -> Response {
    forward_within(request, to, why, TIMEOUT).await
}

/// [`forward`], for a request the other node may take up to `timeout` to answer.
pub async fn forward_within(
    request: &Incoming,
    to: SocketAddr,
    why: &str,
    timeout: Duration,
) -> Response {
    let hops = hops(&request.headers);
    if hops >= MAX_HOPS {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no quorum: {why}, and the request was already passed on {hops} times"),
        )
        .into_response();
    }
    let path = request
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut outgoing = peer_client()
        .request(request.method.clone(), peer_url(to, path))
        .header(FORWARDED, (hops + 1).to_string())
        .timeout(timeout)
        .body(request.body.clone());
    for name in [header::AUTHORIZATION, CONSUL_TOKEN] {
        if let Some(token) = request.headers.get(&name) {
            outgoing = outgoing.header(name, token.clone());
        }
    }
    if let Some(kind) = request.headers.get(header::CONTENT_TYPE) {
        outgoing = outgoing.header(header::CONTENT_TYPE, kind.clone());
    }
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(e) => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("no quorum: {why}, and {to} did not answer: {e}"),
            )
            .into_response()
        }
    };
    let status = answer.status();
    let mut headers = HeaderMap::new();
    for name in PASSED_BACK {
        if let Some(value) = answer.headers().get(name) {
            if let (Ok(name), Ok(value)) = (
                header::HeaderName::try_from(name),
                HeaderValue::from_bytes(value.as_bytes()),
            ) {
                headers.insert(name, value);
            }
        }
    }
    match answer.bytes().await {
        Ok(body) => (status, headers, body).into_response(),
        Err(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no quorum: {why}, and the answer from {to} broke off: {e}"),
        )
        .into_response(),
    }
}

/// The API addresses of the live voters, this node excluded, in a stable order.
pub fn voters(cluster: &Cluster) -> Vec<SocketAddr> {
    let view = cluster.view();
    view.members
        .iter()
        .filter(|m| m.role == Role::Voter && m.id != view.local_id)
        .filter(|m| m.state == MemberState::Alive)
        .filter_map(|m| m.api_addr)
        .collect()
}

/// Passes a request of a node that is not a voter to the first live voter that answers with
/// anything but 503.
pub async fn to_a_voter(request: &Incoming, cluster: Option<&Cluster>) -> Response {
    to_a_voter_within(request, cluster, TIMEOUT).await
}

/// [`to_a_voter`], for a request a voter may take up to `timeout` to answer.
pub async fn to_a_voter_within(
    request: &Incoming,
    cluster: Option<&Cluster>,
    timeout: Duration,
) -> Response {
    let voters = cluster.map(voters).unwrap_or_default();
    let mut last = None;
    for voter in voters {
        let answer = forward_within(request, voter, "this node is not a voter", timeout).await;
        if answer.status() != StatusCode::SERVICE_UNAVAILABLE {
            return answer;
        }
        last = Some(answer);
    }
    last.unwrap_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no quorum: this node is not a voter and knows no live voter to ask",
        )
        .into_response()
    })
}
