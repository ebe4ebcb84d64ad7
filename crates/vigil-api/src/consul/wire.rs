//! The bodies of the Consul-compatible surface, with Consul's field names, so that clients
//! written against Consul (python-consul, Prometheus's `consul_sd_configs`) read them unchanged.

use std::collections::BTreeMap;

use serde::Serialize;

/// A node, as `/v1/catalog/nodes` and `Node` of `/v1/health/service` show it.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
#[cfg_attr(feature = "openapi", schema(as = ConsulNode))]
pub struct Node {
    #[serde(rename = "ID")]
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// Consul's load-balancing weights; vigil weighs every instance alike.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
#[cfg_attr(feature = "openapi", schema(as = ConsulWeights))]
pub struct Weights {
    pub passing: u32,
    pub warning: u32,
}

/// A service instance, as `Service` of `/v1/health/service` shows it.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
#[cfg_attr(feature = "openapi", schema(as = ConsulService))]
pub struct Service {
    #[serde(rename = "ID")]
    pub id: String,
    pub service: String,
    pub tags: Vec<String>,
    pub address: String,
    pub meta: BTreeMap<String, String>,
    pub port: u16,
    pub weights: Weights,
    pub enable_tag_override: bool,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A check with its status.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
#[cfg_attr(feature = "openapi", schema(as = ConsulCheck))]
pub struct Check {
    pub node: String,
    #[serde(rename = "CheckID")]
    pub check_id: String,
    pub name: String,
    /// `passing`, `warning` or `critical`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub status: &'static str,
    pub notes: String,
    pub output: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    pub service_name: String,
    pub service_tags: Vec<String>,
    /// `tcp`, `http`, `ttl`, ... or empty for the node's own.
    #[serde(rename = "Type")]
    pub kind: String,
    pub create_index: u64,
    pub modify_index: u64,
}

/// One entry of `/v1/health/service/{name}`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
#[cfg_attr(feature = "openapi", schema(as = ConsulServiceEntry))]
pub struct ServiceEntry {
    pub node: Node,
    pub service: Service,
    pub checks: Vec<Check>,
}

/// One entry of `/v1/catalog/service/{name}`: the node and the instance flattened.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
#[cfg_attr(feature = "openapi", schema(as = ConsulCatalogService))]
pub struct CatalogService {
    #[serde(rename = "ID")]
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub node_meta: BTreeMap<String, String>,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    pub service_name: String,
    pub service_tags: Vec<String>,
    pub service_address: String,
    pub service_meta: BTreeMap<String, String>,
    pub service_port: u16,
    pub service_weights: Weights,
    pub service_enable_tag_override: bool,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A member of `/v1/agent/members`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
#[cfg_attr(feature = "openapi", schema(as = ConsulMember))]
pub struct Member {
    pub name: String,
    pub addr: String,
    pub port: u16,
    pub tags: BTreeMap<String, String>,
    /// Serf's codes: 1 alive, 2 leaving, 3 left, 4 failed.
    pub status: u8,
    pub protocol_min: u8,
    pub protocol_max: u8,
    pub protocol_cur: u8,
    pub delegate_min: u8,
    pub delegate_max: u8,
    pub delegate_cur: u8,
}

/// `Config` of `/v1/agent/self`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
#[cfg_attr(feature = "openapi", schema(as = ConsulAgentConfig))]
pub struct AgentConfig {
    pub datacenter: String,
    pub node_name: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub server: bool,
    pub revision: String,
    pub version: String,
}

/// `/v1/agent/self`: every top-level value an object, as clients expect.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ConsulAgentSelf))]
pub struct AgentSelf {
    #[serde(rename = "Config")]
    pub config: AgentConfig,
    #[serde(rename = "Member")]
    pub member: Option<Member>,
    #[serde(rename = "Coord")]
    pub coord: BTreeMap<String, String>,
    #[serde(rename = "DebugConfig")]
    pub debug_config: BTreeMap<String, String>,
    #[serde(rename = "Stats")]
    pub stats: BTreeMap<String, String>,
    #[serde(rename = "Meta")]
    pub meta: BTreeMap<String, String>,
    #[serde(rename = "xDS")]
    pub xds: BTreeMap<String, String>,
}
