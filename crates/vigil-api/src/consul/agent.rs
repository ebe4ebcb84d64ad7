//! `GET /v1/agent/self` and `/v1/agent/members`: this agent and the members it knows.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use vigil_cluster::MemberView;
use vigil_gossip::{MemberState, Role};

use super::read::{local_datacenter, node_uuid, DATACENTER_TAG, DEFAULT_DATACENTER};
use super::wire;
use crate::Api;

/// A member as Serf shows it to Consul clients.
fn member(m: &MemberView) -> wire::Member {
    let mut tags = m.tags.clone();
    tags.entry(DATACENTER_TAG.to_owned())
        .or_insert_with(|| DEFAULT_DATACENTER.to_owned());
    tags.insert(
        "role".to_owned(),
        match m.role {
            Role::Voter => "consul",
            _ => "node",
        }
        .to_owned(),
    );
    wire::Member {
        name: m.id.clone(),
        addr: m.addr.ip().to_string(),
        port: m.addr.port(),
        tags,
        status: match m.state {
            MemberState::Alive | MemberState::Suspect => 1,
            MemberState::Left => 3,
            MemberState::Dead => 4,
        },
        protocol_min: 1,
        protocol_max: 5,
        protocol_cur: 2,
        delegate_min: 2,
        delegate_max: 5,
        delegate_cur: 4,
    }
}

/// `/v1/agent/self`.
pub async fn agent_self(State(api): State<Api>) -> Response {
    let node = api.engine.snapshot().node_id().to_owned();
    let view = api.cluster.as_ref().map(|c| c.view());
    let local = view.as_deref().and_then(|v| v.local());
    let body = wire::AgentSelf {
        config: wire::AgentConfig {
            datacenter: local_datacenter(&api),
            node_id: node_uuid(&node),
            node_name: node,
            server: api.leadership.is_some(),
            revision: String::new(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        member: local.map(member),
        coord: Default::default(),
        debug_config: Default::default(),
        stats: Default::default(),
        meta: Default::default(),
        xds: Default::default(),
    };
    Json(body).into_response()
}

/// `/v1/agent/members`.
pub async fn members(State(api): State<Api>) -> Response {
    let view = api.cluster.as_ref().map(|c| c.view());
    let members: Vec<wire::Member> = view
        .iter()
        .flat_map(|v| v.members.iter())
        .map(member)
        .collect();
    Json(members).into_response()
}
