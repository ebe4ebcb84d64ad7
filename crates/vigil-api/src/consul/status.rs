//! `GET /v1/status/leader` and `/v1/status/peers`: the Raft leader's and the voters' Raft
//! addresses, as Consul's servers answer with theirs.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use vigil_cluster::raft::RAFT_TAG;
use vigil_gossip::Role;

use crate::Api;

/// The Raft address member `id` publishes, when this agent knows it.
fn raft_address(api: &Api, id: &str) -> Option<String> {
    let view = api.cluster.as_ref()?.view();
    view.member(id)?.tags.get(RAFT_TAG).cloned()
}

/// `/v1/status/leader`: `"host:port"`, or `""` while there is none.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/status/leader", tag = "consul",
    responses((status = 200, description = "The leader's Raft address, `\"\"` while there is none", body = String, content_type = "application/json"))))]
pub async fn leader(State(api): State<Api>) -> Response {
    let leader = match &api.leadership {
        Some(leadership) => leadership.status().leader_id,
        None => api
            .catalog
            .as_ref()
            .and_then(|c| c.current().registry.leader.clone())
            .map(|record| record.node),
    };
    let address = leader
        .and_then(|id| raft_address(&api, &id))
        .unwrap_or_default();
    Json(address).into_response()
}

/// `/v1/status/peers`: every voter's Raft address.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/status/peers", tag = "consul",
    responses((status = 200, description = "Every voter's Raft address", body = Vec<String>))))]
pub async fn peers(State(api): State<Api>) -> Response {
    let view = api.cluster.as_ref().map(|c| c.view());
    let peers: Vec<String> = view
        .iter()
        .flat_map(|v| v.members.iter())
        .filter(|m| m.role == Role::Voter)
        .filter_map(|m| m.tags.get(RAFT_TAG).cloned())
        .collect();
    Json(peers).into_response()
}
