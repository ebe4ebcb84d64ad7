//! Cluster views: `/cluster/status` (the membership seed's schema), `/v1/members`, the keyring
//! endpoints, and cluster metrics.

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
use vigil_health::metrics::{Kind, Writer};

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
    let mut w = Writer::new(out);
    for (name, help, value) in counters {
        w.single(name, Kind::Counter, help, value);
    }
    w.single(
        "vigil_cluster_healthy_nodes",
        Kind::Gauge,
        "Members alive and healthy or degraded.",
        counted(view).filter(|m| is_healthy(m)).count(),
    );
    w.family(
        "vigil_cluster_members",
        Kind::Gauge,
        "Members by liveness state.",
    );
    for state in [
        MemberState::Alive,
        MemberState::Suspect,
        MemberState::Dead,
        MemberState::Left,
    ] {
        let n = view.members.iter().filter(|m| m.state == state).count();
        w.sample("vigil_cluster_members", &[("state", state.as_str())], n);
    }
    w.single(
        "vigil_cluster_has_quorum",
        Kind::Gauge,
        "1 when reachable voters are a strict majority.",
        view.has_quorum,
    );
    w.single(
        "vigil_cluster_local_health",
        Kind::Gauge,
        "Lifeguard local health multiplier of this node (0 = keeping up).",
        view.local_health,
    );
    let name = "vigil_cluster_phi";
    w.family(
        name,
        Kind::Histogram,
        "Phi of observed members when their heartbeats arrived.",
    );
    let buckets = PHI_BUCKETS
        .iter()
        .copied()
        .zip(s.phi_at_heartbeat.iter().copied());
    let total: u64 = s.phi_at_heartbeat.iter().sum();
    w.histogram(name, &[], buckets, s.phi_sum, total);
}
