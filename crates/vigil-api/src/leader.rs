//! `GET /v1/leader`, the freshness headers of registry reads, Raft's say in `hasQuorum`, and
//! the leadership metrics.
//!
//! Reads served from a voter's own copy of the registry carry `X-Vigil-Stale-Ms`: 0 on a
//! leader that a majority acknowledged within the election timeout, otherwise the
//! milliseconds since this voter last heard from a leader (`unknown` when it never has). Every
//! answer names the node that served it in `X-Vigil-Served-By`.

use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;
use vigil_cluster::raft::{LeaderStatus, Leadership};

use crate::forward::{self, Incoming};
use crate::Api;

/// Says how stale a read may be.
pub const STALE_MS: &str = "x-vigil-stale-ms";
/// Names the node that served a read.
pub const SERVED_BY: &str = "x-vigil-served-by";

/// `?consistent`: the read must reflect every write committed before it.
#[derive(Debug, Default, Deserialize)]
pub struct ReadMode {
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

fn ms_rfc3339(ms: u64) -> Option<String> {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .map(vigil_health::rfc3339)
}

/// The JSON of `/v1/leader`.
pub fn leader_json(status: &LeaderStatus, node: &str) -> Value {
    json!({
        "leader_id": status.leader_id,
        "term": status.term,
        "since": status.since_ms.and_then(ms_rfc3339),
        "api_address": status.api_address.map(|a| a.to_string()),
        "is_leader": status.is_leader,
        "has_quorum": status.has_quorum,
        "stale_ms": status.stale_ms,
        "served_by": node,
    })
}

/// `GET /v1/leader[?consistent]`.
pub async fn leader(
    State(api): State<Api>,
    Query(mode): Query<ReadMode>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some(leadership) = &api.leadership else {
        let request = Incoming::bodiless(method, uri, headers);
        return forward::to_a_voter(&request, api.cluster.as_ref()).await;
    };
    let node = api.engine.snapshot().node_id().to_owned();
    if mode.consistent() {
        if let Err(e) = leadership.read_consistent().await {
            let request = Incoming::bodiless(method, uri, headers);
            return crate::services::write_failed(e, &request).await;
        }
    }
    let status = leadership.status();
    (
        freshness(&status, &node, mode.consistent()),
        Json(leader_json(&status, &node)),
    )
        .into_response()
}

/// Raft's view of quorum replaces gossip's on a voter: `hasQuorum` in `/cluster/status` and
/// `/v1/members`.
pub fn patch_quorum(body: &mut Value, leadership: Option<&Leadership>) {
    if let Some(leadership) = leadership {
        body["hasQuorum"] = Value::Bool(leadership.status().has_quorum);
    }
}

/// Appends the leadership metrics to a Prometheus text exposition.
pub fn render_metrics(leadership: &Leadership, out: &mut String) {
    let status = leadership.status();
    let registry = leadership.registry();
    let instances: usize = registry.registry.services.values().map(|s| s.len()).sum();
    let _ = writeln!(
        out,
        "# HELP vigil_leader_changes_total Leader changes this voter has seen (elections won, lost or begun).\n# TYPE vigil_leader_changes_total counter\nvigil_leader_changes_total {}",
        leadership.leader_changes()
    );
    let _ = writeln!(
        out,
        "# HELP vigil_leader_is_leader 1 while this voter is the Raft leader.\n# TYPE vigil_leader_is_leader gauge\nvigil_leader_is_leader {}",
        u8::from(status.is_leader)
    );
    let _ = writeln!(
        out,
        "# HELP vigil_raft_term Current Raft term on this voter.\n# TYPE vigil_raft_term gauge\nvigil_raft_term {}",
        status.term
    );
    let _ = writeln!(
        out,
        "# HELP vigil_raft_has_quorum 1 while this voter is in touch with a majority through Raft.\n# TYPE vigil_raft_has_quorum gauge\nvigil_raft_has_quorum {}",
        u8::from(status.has_quorum)
    );
    let _ = writeln!(
        out,
        "# HELP vigil_registry_instances Service instances in this voter's copy of the registry.\n# TYPE vigil_registry_instances gauge\nvigil_registry_instances {instances}"
    );
}
