//! Cluster views: `/cluster/status` (the membership seed's schema), `/v1/members`, the keyring
//! endpoints, and cluster metrics.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use time::OffsetDateTime;
use vigil_cluster::raft::Leadership;
use vigil_cluster::{Cluster, ClusterView, KeyringOp, MemberView};
use vigil_gossip::crypto::Key;
use vigil_gossip::{Health, MemberState, PHI_BUCKETS};
use vigil_health::metrics::{Kind, Writer};

use crate::error::ApiError;
use crate::{auth, wire, Api};

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

fn member(m: &MemberView) -> wire::Member {
    wire::Member {
        address: m.addr.to_string(),
        api_address: m.api_addr.map(|a| a.to_string()),
        health: m.health.as_str().to_owned(),
        health_score: m.score,
        id: None,
        incarnation: m.incarnation,
        last_heartbeat_time: m.last_heard.map(rfc3339),
        node_id: m.id.clone(),
        phi_score: m.phi.unwrap_or(0.0),
        role: m.role.as_str().to_owned(),
        state: m.state.as_str().to_owned(),
        status: status_word(m).to_owned(),
        tags: m.tags.clone(),
    }
}

fn rfc3339(at: SystemTime) -> String {
    vigil_health::rfc3339(OffsetDateTime::from(at))
}

fn counted(view: &ClusterView) -> impl Iterator<Item = &MemberView> {
    view.members.iter().filter(|m| m.state != MemberState::Left)
}

/// The membership endpoints and the keyring: `/cluster/status`, `/v1/members`, `/v1/keyring`
/// and `/v1/keyring/{op}` (the changes need the token). None without a cluster.
pub(crate) fn routes(api: &Api) -> Router {
    let Some(cluster) = api.cluster.clone() else {
        return Router::new();
    };
    Router::new()
        .route("/cluster/status", get(status))
        .route("/v1/members", get(members))
        .with_state(Membership {
            cluster: cluster.clone(),
            leadership: api.leadership.clone(),
        })
        .merge(
            Router::new()
                .route("/v1/keyring", get(keyring_list))
                .route(
                    "/v1/keyring/{op}",
                    auth::guarded(&api.token, post(keyring_change)),
                )
                .with_state(cluster),
        )
}

/// What the membership endpoints answer from: gossip's view, and Raft's say in quorum on a voter.
#[derive(Clone)]
struct Membership {
    cluster: Cluster,
    leadership: Option<Leadership>,
}

impl Membership {
    /// The cluster as this node sees it, and whether it has a quorum: Raft's view on a voter,
    /// gossip's otherwise.
    fn seen(&self) -> (Arc<ClusterView>, bool) {
        let view = self.cluster.view();
        let has_quorum = self
            .leadership
            .as_ref()
            .map_or(view.has_quorum, |l| l.status().has_quorum);
        (view, has_quorum)
    }
}

/// `GET /cluster/status`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/cluster/status", tag = "cluster",
    responses((status = 200, description = "The membership, in the seed's schema", body = wire::ClusterStatus))))]
async fn status(State(membership): State<Membership>) -> Json<wire::ClusterStatus> {
    let (view, has_quorum) = membership.seen();
    let membership = counted(&view).map(|m| (m.id.clone(), member(m))).collect();
    Json(wire::ClusterStatus {
        has_quorum,
        healthy_nodes: counted(&view).filter(|m| is_healthy(m)).count(),
        local_node: view.local_id.clone(),
        membership,
        total_nodes: counted(&view).count(),
        voters_reachable: view.voters_reachable,
        voters_total: view.voters_total,
    })
}

/// `GET /v1/members`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/members", tag = "cluster",
    responses((status = 200, description = "Every member this node knows", body = wire::Members))))]
async fn members(State(membership): State<Membership>) -> Json<wire::Members> {
    let (view, has_quorum) = membership.seen();
    let members = view
        .members
        .iter()
        .map(|m| wire::Member {
            id: Some(m.id.clone()),
            ..member(m)
        })
        .collect();
    Json(wire::Members {
        has_quorum,
        local_node: view.local_id.clone(),
        members,
    })
}

/// `GET /v1/keyring`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/keyring", tag = "cluster",
    responses(
        (status = 200, description = "The installed keys", body = wire::Keyring),
        (status = 409, description = "The cluster runs without encryption", body = wire::ErrorBody),
    )))]
async fn keyring_list(State(cluster): State<Cluster>) -> Result<Response, ApiError> {
    keyring(&cluster, KeyringOp::List).await
}

/// `POST /v1/keyring/install|use|remove` with `{"key": "<base64>"}`.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/v1/keyring/{op}", tag = "cluster",
    params(("op" = wire::KeyringChange, Path, description = "What to do with the key")),
    request_body = wire::KeyRequest,
    security(("token" = [])),
    responses(
        (status = 200, description = "The keys installed afterwards", body = wire::Keyring),
        (status = 400, description = "Not a key", body = wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 404, description = "Unknown operation", body = wire::ErrorBody),
        (status = 409, description = "Refused: the key is the primary, or not installed", body = wire::ErrorBody),
    )))]
async fn keyring_change(
    State(cluster): State<Cluster>,
    Path(op): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: wire::KeyRequest = serde_json::from_slice(&body).map_err(|e| {
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
    let keys = keys
        .into_iter()
        .map(|k| wire::KeyInfo {
            fingerprint: k.fingerprint,
            primary: k.primary,
        })
        .collect();
    Ok(Json(wire::Keyring { keys }).into_response())
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
            "Datagrams refused: wrong key, unencrypted, malformed or of a protocol version this node does not speak.",
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
    w.single(
        "vigil_cluster_protocol_version",
        Kind::Gauge,
        "Protocol version this node writes: the newest every active member speaks.",
        u32::from(view.protocol_version),
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
