//! Cluster views: `/cluster/status` (the membership seed's schema), `/v1/members`, the keyring
//! endpoints, and cluster metrics.

use std::fmt::Write;
use std::time::SystemTime;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use vigil_cluster::{Cluster, ClusterView, KeyringOp, MemberView};
use vigil_gossip::crypto::Key;
use vigil_gossip::{Health, MemberState, PHI_BUCKETS};

use crate::error::ApiError;

/// The seed's word for a member: its liveness when not alive, else its own health.
fn status_word(m: &MemberView) -> &'static str {
    match (m.state, m.health) {
        (MemberState::Suspect, _) => "SUSPECT",
        (MemberState::Dead, _) => "DEAD",
        (MemberState::Left, _) => "LEFT",
        (MemberState::Alive, Health::Healthy) => "HEALTHY",
        (MemberState::Alive, Health::Degraded) => "DEGRADED",
        (MemberState::Alive, Health::Unhealthy) => "UNHEALTHY",
        (MemberState::Alive, Health::Starting) => "STARTING",
        (MemberState::Alive, Health::Stopping) => "STOPPING",
    }
}

/// Whether a member counts among `healthyNodes`: alive and serving.
fn is_healthy(m: &MemberView) -> bool {
    m.state == MemberState::Alive && matches!(m.health, Health::Healthy | Health::Degraded)
}

fn member_json(m: &MemberView) -> Value {
    json!({
        "nodeId": m.id,
        "status": status_word(m),
        "state": m.state.as_str(),
        "health": m.health.as_str(),
        "healthScore": m.score,
        "phiScore": m.phi.unwrap_or(0.0),
        "lastHeartbeatTime": m.last_heard.map(rfc3339),
        "incarnation": m.incarnation,
        "address": m.addr.to_string(),
        "role": m.role.as_str(),
        "tags": m.tags,
        "apiAddress": m.api_addr.map(|a| a.to_string()),
    })
}

fn rfc3339(at: SystemTime) -> String {
    vigil_health::rfc3339(OffsetDateTime::from(at))
}

fn counted(view: &ClusterView) -> impl Iterator<Item = &MemberView> {
    view.members.iter().filter(|m| m.state != MemberState::Left)
}

/// `GET /cluster/status`.
pub async fn status(State(cluster): State<Cluster>) -> Json<Value> {
    let view = cluster.view();
    let membership: Map<String, Value> = counted(&view)
        .map(|m| (m.id.clone(), member_json(m)))
        .collect();
    Json(json!({
        "totalNodes": counted(&view).count(),
        "healthyNodes": counted(&view).filter(|m| is_healthy(m)).count(),
        "hasQuorum": view.has_quorum,
        "votersTotal": view.voters_total,
        "votersReachable": view.voters_reachable,
        "localNode": view.local_id,
        "membership": membership,
    }))
}

/// `GET /v1/members`.
pub async fn members(State(cluster): State<Cluster>) -> Json<Value> {
    let view = cluster.view();
    let members: Vec<Value> = view
        .members
        .iter()
        .map(|m| {
            let mut v = member_json(m);
            v["id"] = Value::from(m.id.clone());
            v
        })
        .collect();
    Json(json!({ "localNode": view.local_id, "hasQuorum": view.has_quorum, "members": members }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyBody {
    key: String,
}

/// `GET /v1/keyring`.
pub async fn keyring_list(State(cluster): State<Cluster>) -> Result<Response, ApiError> {
    keyring(&cluster, KeyringOp::List).await
}

/// `POST /v1/keyring/install|use|remove` with `{"key": "<base64>"}`.
pub async fn keyring_change(
    State(cluster): State<Cluster>,
    Path(op): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: KeyBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid body: {e} (expected {{\"key\": \"<base64>\"}})"
        ))
    })?;
    let key = Key::parse(&body.key).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let op = match op.as_str() {
        "install" => KeyringOp::Install(key),
        "use" => KeyringOp::Use(key),
        "remove" => KeyringOp::Remove(key),
        other => {
            return Err(ApiError::not_found(format!(
                "unknown keyring operation {other:?}: use install, use or remove"
            )))
        }
    };
    keyring(&cluster, op).await
}

async fn keyring(cluster: &Cluster, op: KeyringOp) -> Result<Response, ApiError> {
    let keys = cluster
        .keyring(op)
        .await
        .map_err(|e| ApiError::new(axum::http::StatusCode::CONFLICT, e.to_string()))?;
    Ok(Json(json!({ "keys": keys })).into_response())
}

/// Appends the cluster metrics to a Prometheus text exposition.
pub fn render_metrics(view: &ClusterView, out: &mut String) {
    let s = &view.stats;
    let counters = [
        (
            "vigil_cluster_heartbeats_sent_total",
            "Heartbeats sent to observers.",
            s.heartbeats_sent,
        ),
        (
            "vigil_cluster_heartbeats_received_total",
            "Heartbeats received from observed members.",
            s.heartbeats_received,
        ),
        (
            "vigil_cluster_failures_detected_total",
            "Members seen declared dead.",
            s.failures_detected,
        ),
        (
            "vigil_cluster_suspicions_total",
            "Members seen turn suspect.",
            s.suspicions,
        ),
        (
            "vigil_cluster_refutations_total",
            "Suspicions of this node it refuted.",
            s.refutations,
        ),
        (
            "vigil_cluster_probes_total",
            "Indirect probes started after phi crossed the threshold.",
            s.probes,
        ),
        (
            "vigil_cluster_bytes_sent_total",
            "Gossip bytes sent, datagrams and push-pull.",
            s.bytes_sent,
        ),
        (
            "vigil_cluster_bytes_received_total",
            "Gossip bytes received, datagrams and push-pull.",
            s.bytes_received,
        ),
        (
            "vigil_cluster_packets_rejected_total",
            "Datagrams refused: wrong key, unencrypted or malformed.",
            s.rejected,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }
    let healthy = counted(view).filter(|m| is_healthy(m)).count();
    let _ = writeln!(
        out,
        "# HELP vigil_cluster_healthy_nodes Members alive and healthy or degraded.\n# TYPE vigil_cluster_healthy_nodes gauge\nvigil_cluster_healthy_nodes {healthy}"
    );
    let _ = writeln!(out, "# HELP vigil_cluster_members Members by liveness state.\n# TYPE vigil_cluster_members gauge");
    for state in [
        MemberState::Alive,
        MemberState::Suspect,
        MemberState::Dead,
        MemberState::Left,
    ] {
        let n = view.members.iter().filter(|m| m.state == state).count();
        let _ = writeln!(
            out,
            "vigil_cluster_members{{state=\"{}\"}} {n}",
            state.as_str()
        );
    }
    let quorum = u8::from(view.has_quorum);
    let _ = writeln!(
        out,
        "# HELP vigil_cluster_has_quorum 1 when reachable voters are a strict majority.\n# TYPE vigil_cluster_has_quorum gauge\nvigil_cluster_has_quorum {quorum}"
    );
    let _ = writeln!(
        out,
        "# HELP vigil_cluster_local_health Lifeguard local health multiplier of this node (0 = keeping up).\n# TYPE vigil_cluster_local_health gauge\nvigil_cluster_local_health {}",
        view.local_health
    );
    let name = "vigil_cluster_phi";
    let _ = writeln!(out, "# HELP {name} Phi of observed members when their heartbeats arrived.\n# TYPE {name} histogram");
    let mut cumulative = 0;
    for (bound, count) in PHI_BUCKETS.iter().zip(&s.phi_at_heartbeat) {
        cumulative += count;
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let total: u64 = s.phi_at_heartbeat.iter().sum();
    let _ = writeln!(
        out,
        "{name}_bucket{{le=\"+Inf\"}} {total}\n{name}_sum {}\n{name}_count {total}",
        s.phi_sum
    );
}
