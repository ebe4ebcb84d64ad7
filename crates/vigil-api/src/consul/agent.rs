//! `GET /v1/agent/self`, `/v1/agent/members`, `/v1/agent/services` and `/v1/agent/checks`:
//! this agent, the members it knows, and the instances registered on it with their checks.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use vigil_cluster::MemberView;
use vigil_gossip::{MemberState, Role};

use super::read::{
    instance_checks, local_datacenter, node_maintenance_check, node_uuid, service, DATACENTER_TAG,
    DEFAULT_DATACENTER,
};
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
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/agent/self", tag = "consul",
    responses((status = 200, description = "This agent: `Config.Datacenter`, `Config.NodeName`, ...", body = wire::AgentSelf))))]
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
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/agent/members", tag = "consul",
    responses((status = 200, description = "The members this agent knows, as Serf shows them", body = Vec<wire::Member>))))]
pub async fn members(State(api): State<Api>) -> Response {
    let view = api.cluster.as_ref().map(|c| c.view());
    let members: Vec<wire::Member> = view
        .iter()
        .flat_map(|v| v.members.iter())
        .map(member)
        .collect();
    Json(members).into_response()
}

/// The instances registered on this agent's node, by id.
fn local_instances(api: &Api) -> Vec<vigil_cluster::raft::ServiceInstance> {
    let node = api.engine.snapshot().node_id().to_owned();
    api.catalog
        .as_ref()
        .map(|c| {
            c.current()
                .registry
                .instances()
                .filter(|i| i.node == node)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// `/v1/agent/services`: the instances registered on this agent, by id.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/agent/services", tag = "consul",
    responses((status = 200, description = "The instances registered on this agent, by id", body = std::collections::BTreeMap<String, wire::Service>))))]
pub async fn services(State(api): State<Api>) -> Response {
    let index = api
        .catalog
        .as_ref()
        .map_or(0, |c| c.current().registry.services_index);
    let services: std::collections::BTreeMap<String, wire::Service> = local_instances(&api)
        .iter()
        .map(|i| (i.id.clone(), service(i, index)))
        .collect();
    Json(services).into_response()
}

/// `/v1/agent/checks`: the checks of the instances on this agent and `_node_maintenance` while
/// the agent's node is in maintenance (Consul leaves `serfHealth` out here), by check id.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/agent/checks", tag = "consul",
    responses((status = 200, description = "The checks of this agent's instances, by check id", body = std::collections::BTreeMap<String, wire::Check>))))]
pub async fn checks(State(api): State<Api>) -> Response {
    let Some(current) = api.catalog.as_ref().map(|c| c.current()) else {
        return Json(std::collections::BTreeMap::<String, wire::Check>::new()).into_response();
    };
    let index = current.registry.services_index;
    let node = api.engine.snapshot().node_id().to_owned();
    let node_maintenance = node_maintenance_check(&current.registry, &node, index);
    let checks: std::collections::BTreeMap<String, wire::Check> = local_instances(&api)
        .iter()
        .flat_map(|i| instance_checks(&current.registry, i, index))
        .chain(node_maintenance)
        .map(|c| (c.check_id.clone(), c))
        .collect();
    Json(checks).into_response()
}
