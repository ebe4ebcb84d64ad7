//! `GET /v1/leader`, the freshness headers of registry reads, and the leadership metrics.
//!
//! Reads served from a voter's own copy of the registry carry `X-Vigil-Stale-Ms`: 0 on a
//! leader that a majority acknowledged within the election timeout, otherwise the
//! milliseconds since this voter last heard from a leader (`unknown` when it never has). Every
//! answer names the node that served it in `X-Vigil-Served-By`.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use time::OffsetDateTime;
use vigil_cluster::raft::{LeaderStatus, Leadership, Published};
use vigil_health::metrics::{Kind, Writer};

use crate::forward::{self, Incoming};
use crate::{wire, Api};

/// Says how stale a read may be.
pub const STALE_MS: &str = "x-vigil-stale-ms";
/// Names the node that served a read.
pub const SERVED_BY: &str = "x-vigil-served-by";

/// `?consistent`: the read must reflect every write committed before it.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ReadMode {
    /// Read from the leader after it confirmed its leadership with a majority (any value but
    /// `false`).
    consistent: Option<String>,
}

impl ReadMode {
    /// Whether `?consistent` was given (with any value but `false`).
    pub fn consistent(&self) -> bool {
        self.consistent.as_deref().is_some_and(|v| v != "false")
    }
}

/// The freshness headers of an answer from `node`.
pub fn freshness(status: &LeaderStatus, node: &str, consistent: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let stale = if consistent {
        "0".to_owned()
    } else {
        status
            .stale_ms
            .map_or_else(|| "unknown".to_owned(), |s| s.to_string())
    };
    if let Ok(value) = HeaderValue::from_str(&stale) {
        headers.insert(STALE_MS, value);
    }
    if let Ok(value) = HeaderValue::from_str(node) {
        headers.insert(SERVED_BY, value);
    }
    headers
}

pub(crate) fn ms_rfc3339(ms: u64) -> Option<String> {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .map(vigil_health::rfc3339)
}

/// The body of `/v1/leader`.
pub fn leader_body(status: &LeaderStatus, node: &str) -> wire::Leader {
    wire::Leader {
        api_address: status.api_address.map(|a| a.to_string()),
        has_quorum: status.has_quorum,
        is_leader: status.is_leader,
        leader_id: status.leader_id.clone(),
        served_by: node.to_owned(),
        since: status.since_ms.and_then(ms_rfc3339),
        stale_ms: status.stale_ms,
        term: status.term,
    }
}

/// `/v1/leader`, on a node in a cluster.
pub(crate) fn routes(api: &Api) -> Router {
    if api.cluster.is_none() {
        return Router::new();
    }
    Router::new()
        .route("/v1/leader", get(leader))
        .with_state(api.clone())
}

/// A read served by this voter: what the registry and leader reads answer from. Handlers take it
/// as an argument; when this node cannot serve the read, the extraction answers for them: passed
/// on to a voter when this node is not one, the failed consistent read's answer otherwise.
pub struct VoterRead {
    /// The registry; under `?consistent`, as the leader confirmed it with a majority.
    pub published: Arc<Published>,
    /// Raft's status once the registry was read.
    pub status: LeaderStatus,
    /// The id of this node, which serves the read.
    pub node: String,
    /// The freshness headers of the answer.
    pub headers: HeaderMap,
}

impl FromRequestParts<Api> for VoterRead {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Response> {
        let Query(mode) = Query::<ReadMode>::from_request_parts(parts, api)
            .await
            .map_err(IntoResponse::into_response)?;
        let request = Incoming::bodiless(parts);
        let Some(leadership) = &api.leadership else {
            return Err(forward::to_a_voter(&request, api.cluster.as_ref()).await);
        };
        let node = api.engine.snapshot().node_id().to_owned();
        let published = if mode.consistent() {
            match leadership.read_consistent().await {
                Ok(published) => published,
                Err(e) => return Err(crate::services::write_failed(e, &request).await),
            }
        } else {
            leadership.registry()
        };
        let status = leadership.status();
        Ok(VoterRead {
            published,
            headers: freshness(&status, &node, mode.consistent()),
            status,
            node,
        })
    }
}

/// `GET /v1/leader[?consistent]`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/leader", tag = "cluster",
    params(ReadMode),
    responses(
        (status = 200, description = "Who leads, as this voter (or the voter asked) sees it", body = wire::Leader,
            headers(("x-vigil-stale-ms" = String, description = "How stale the answer may be, ms or `unknown`"),
                    ("x-vigil-served-by" = String, description = "The node that answered"))),
        (status = 503, description = "No quorum: a consistent read, or no voter to ask", body = wire::ErrorBody),
    )))]
pub async fn leader(read: VoterRead) -> Response {
    (read.headers, Json(leader_body(&read.status, &read.node))).into_response()
}

/// Appends the leadership metrics to a Prometheus text exposition.
pub fn render_metrics(leadership: &Leadership, out: &mut String) {
    let status = leadership.status();
    let registry = leadership.registry();
    let instances: usize = registry.registry.services.values().map(|s| s.len()).sum();
    let metrics: [(&str, Kind, &str, u64); 5] = [
        (
            "vigil_leader_changes_total",
            Kind::Counter,
            "Leaders this voter has seen elected (each new leader or term).",
            leadership.leader_changes(),
        ),
        (
            "vigil_leader_is_leader",
            Kind::Gauge,
            "1 while this voter is the Raft leader.",
            u64::from(status.is_leader),
        ),
        (
            "vigil_raft_term",
            Kind::Gauge,
            "Current Raft term on this voter.",
            status.term,
        ),
        (
            "vigil_raft_has_quorum",
            Kind::Gauge,
            "1 while this voter is in touch with a majority through Raft.",
            u64::from(status.has_quorum),
        ),
        (
            "vigil_registry_instances",
            Kind::Gauge,
            "Service instances in this voter's copy of the registry.",
            instances as u64,
        ),
    ];
    let mut w = Writer::new(out);
    for (name, kind, help, value) in metrics {
        w.single(name, kind, help, value);
    }
}
