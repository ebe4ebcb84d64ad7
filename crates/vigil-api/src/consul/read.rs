//! What every read of the Consul surface shares: its query parameters (`index`, `wait`,
//! `passing`, repeatable `tag`, `node-meta`, `dc`, `stale`, `consistent`, `token`), the blocking
//! wait on the index the answer depends on, Consul's headers (`X-Consul-Index`, never 0;
//! `X-Consul-KnownLeader`; `X-Consul-LastContact`), and the node and check entries built from
//! the registry and this agent's membership.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use vigil_cluster::raft::{is_gone, Published, Registry, ServiceInstance};
use vigil_cluster::{Cluster, ClusterView};
use vigil_health::CheckState;

use super::wire;
use crate::catalog::Blocking;
use crate::discovery::gone_here;
use crate::error::ApiError;
use crate::leader::VoterRead;
use crate::Api;

/// The datacenter of a member without a `dc` tag.
pub const DEFAULT_DATACENTER: &str = "dc1";
/// The gossip tag that names a member's datacenter (`[cluster] tags = { dc = "..." }`), as
/// Consul's members carry theirs.
pub const DATACENTER_TAG: &str = "dc";

/// The datacenter of member `name` as `view` shows it.
pub fn datacenter_of(view: Option<&ClusterView>, name: &str) -> String {
    view.and_then(|v| v.member(name))
        .and_then(|m| m.tags.get(DATACENTER_TAG).cloned())
        .unwrap_or_else(|| DEFAULT_DATACENTER.to_owned())
}

/// The datacenter of this agent.
pub fn local_datacenter(api: &Api) -> String {
    let view = api.cluster.as_ref().map(Cluster::view);
    let local = view
        .as_ref()
        .map(|v| v.local_id.clone())
        .unwrap_or_default();
    datacenter_of(view.as_deref(), &local)
}

/// The query parameters every Consul read takes, for the OpenAPI document; reads parse them with
/// [`ConsulQuery`], which keeps repeated keys.
#[derive(Debug)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ReadParams {
    /// Blocking query: answer once `X-Consul-Index` passes this one (or at the wait).
    pub index: Option<u64>,
    /// How long a blocking query waits (`30s`, `5m`; at most 10m; default 5m).
    pub wait: Option<String>,
    /// The datacenter: this agent's own (another is a 400).
    pub dc: Option<String>,
    /// Read on the leader once a majority confirmed it (any value but `false`); without it
    /// (or with `stale`), every agent answers from its own copy of the registry.
    pub consistent: Option<String>,
}

impl ReadParams {
    /// The parameters in `query`; an index that is not a whole number is a 400.
    pub fn of(query: &ConsulQuery) -> Result<ReadParams, ApiError> {
        let index = match query.value("index") {
            None => None,
            Some(text) => Some(text.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("index: {text:?} is not a whole number"))
            })?),
        };
        Ok(ReadParams {
            index,
            wait: query.value("wait").map(str::to_owned),
            dc: query.value("dc").map(str::to_owned),
            consistent: query.value("consistent").map(str::to_owned),
        })
    }

    /// Whether the read asks the leader.
    pub fn consistent(&self) -> bool {
        self.consistent
            .as_deref()
            .is_some_and(|v| v != "false" && v != "0")
    }

    /// The index to wait past and for how long, `None` for an answer at once.
    pub fn blocking(&self) -> Blocking {
        Blocking {
            index: self.index,
            wait: self.wait.clone(),
        }
    }
}

/// The query of a read, its repeatable keys kept.
#[derive(Debug, Default)]
pub struct ConsulQuery {
    pairs: Vec<(String, String)>,
}

impl ConsulQuery {
    /// The query of `parts`; a query that is not `key=value&...` is a 400.
    pub fn of(parts: &Parts) -> Result<ConsulQuery, ApiError> {
        ConsulQuery::of_uri(&parts.uri)
    }

    /// The query of `uri`, as [`ConsulQuery::of`].
    pub fn of_uri(uri: &Uri) -> Result<ConsulQuery, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri).map_err(|e| {
            ApiError::bad_request(format!("the query string is not key=value pairs: {e}"))
        })?;
        Ok(ConsulQuery { pairs })
    }

    /// The first value of `key`.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key` is given (`?passing`, `?passing=true`; `false` and `0` say no).
    pub fn flag(&self, key: &str) -> bool {
        self.value(key).is_some_and(|v| v != "false" && v != "0")
    }

    /// Every value of a repeatable `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `node-meta=key:value` filters.
    pub fn node_meta(&self) -> Vec<(&str, &str)> {
        self.all("node-meta")
            .into_iter()
            .map(|kv| kv.split_once(':').unwrap_or((kv, "")))
            .collect()
    }
}

/// The index a read's answer depends on.
pub const INDEX: HeaderName = HeaderName::from_static("x-consul-index");
/// Whether this agent knows a leader.
const KNOWN_LEADER: HeaderName = HeaderName::from_static("x-consul-knownleader");
/// Milliseconds since this agent's copy last heard from the leader.
const LAST_CONTACT: HeaderName = HeaderName::from_static("x-consul-lastcontact");

/// Sets [`KNOWN_LEADER`] and [`LAST_CONTACT`] from how stale this agent's copy is (`None`: no
/// leader known).
pub fn leader_contact(headers: &mut HeaderMap, stale_ms: Option<u64>) {
    let known = HeaderValue::from_static(if stale_ms.is_some() { "true" } else { "false" });
    headers.insert(KNOWN_LEADER, known);
    let last = match stale_ms {
        Some(0) | None => HeaderValue::from_static("0"),
        Some(ms) => HeaderValue::from(ms),
    };
    headers.insert(LAST_CONTACT, last);
}

/// The registry a read answers from and the headers it carries: after the index passes
/// `?index=` (or `?wait=` runs out), from this agent's copy; with `?consistent`, from the leader
/// after a majority confirmed it. `index_of` is the index the answer depends on.
pub async fn read(
    api: &Api,
    query: &ConsulQuery,
    parts: &mut Parts,
    index_of: impl Fn(&Published) -> u64,
) -> Result<(Arc<Published>, HeaderMap), Response> {
    let params = ReadParams::of(query).map_err(IntoResponse::into_response)?;
    if let Some(dc) = &params.dc {
        let ours = local_datacenter(api);
        if *dc != ours {
            // Consul answers 500 here; a client error is what it is.
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("No path to datacenter {dc:?}: this agent is in {ours:?}"),
            )
            .into_response());
        }
    }
    let Some(catalog) = &api.catalog else {
        return Err(ApiError::not_found("this node is not in a cluster").into_response());
    };
    let wait = params
        .blocking()
        .parse_for(parts)
        .map_err(IntoResponse::into_response)?;
    let published = if params.consistent() {
        VoterRead::from_request_parts(parts, api).await?.published
    } else {
        match wait {
            Some((index, wait)) => catalog.after(index, wait, &index_of).await,
            None => catalog.current(),
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(INDEX, index_of(&published).max(1).into());
    leader_contact(&mut headers, catalog.stale_ms());
    Ok((published, headers))
}

/// Runs a read (see [`read`]) and answers with what `answer` builds from it.
pub async fn respond<T: serde::Serialize>(
    api: &Api,
    mut parts: Parts,
    index_of: impl Fn(&Published) -> u64,
    answer: impl FnOnce(&Published, Option<&ClusterView>, &ConsulQuery) -> Result<T, ApiError>,
) -> Response {
    let query = match ConsulQuery::of(&parts) {
        Ok(query) => query,
        Err(e) => return e.into_response(),
    };
    let (published, headers) = match read(api, &query, &mut parts, index_of).await {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    let view = api.cluster.as_ref().map(Cluster::view);
    match answer(&published, view.as_deref(), &query) {
        Ok(body) => (headers, Json(body)).into_response(),
        Err(e) => (headers, e).into_response(),
    }
}

/// A stable UUID-shaped id for node `name`, as Consul gives every node one.
pub fn node_uuid(name: &str) -> String {
    let half = |salt: u8| {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (salt, name).hash(&mut hasher);
        hasher.finish()
    };
    let (a, b) = (half(1), half(2));
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// Node `name` as the catalog shows it: its gossip address, when this agent knows it.
pub fn node(view: Option<&ClusterView>, name: &str, index: u64) -> wire::Node {
    let member = view.and_then(|v| v.member(name));
    let address = member.map(|m| m.addr.ip().to_string()).unwrap_or_default();
    wire::Node {
        id: node_uuid(name),
        node: name.to_owned(),
        address: address.clone(),
        datacenter: datacenter_of(view, name),
        tagged_addresses: [
            ("lan".to_owned(), address.clone()),
            ("wan".to_owned(), address),
        ]
        .into_iter()
        .collect(),
        meta: member.map(|m| m.tags.clone()).unwrap_or_default(),
        create_index: index.max(1),
        modify_index: index.max(1),
    }
}

/// Whether node `name` is alive, as this agent's membership and the registry say.
pub fn node_alive(registry: &Registry, view: Option<&ClusterView>, name: &str) -> bool {
    let gossip_dead = view.is_some_and(|v| gone_here(v, name));
    let recorded_gone = registry
        .health
        .get(name)
        .is_some_and(|r| is_gone(&r.status));
    !gossip_dead && !recorded_gone
}

/// A check of node `name` itself, with no service.
fn node_level_check(name: &str, check_id: &str, title: &str, index: u64) -> wire::Check {
    wire::Check {
        node: name.to_owned(),
        check_id: check_id.to_owned(),
        name: title.to_owned(),
        status: "critical",
        notes: String::new(),
        output: String::new(),
        service_id: String::new(),
        service_name: String::new(),
        service_tags: Vec::new(),
        kind: String::new(),
        create_index: index.max(1),
        modify_index: index.max(1),
    }
}

/// The node's own checks: Consul's `serfHealth`, and `_node_maintenance` while the node is in
/// maintenance.
pub fn node_checks(
    registry: &Registry,
    view: Option<&ClusterView>,
    name: &str,
    index: u64,
) -> Vec<wire::Check> {
    let alive = node_alive(registry, view, name);
    let serf = wire::Check {
        status: if alive { "passing" } else { "critical" },
        output: if alive {
            "Agent alive and reachable".to_owned()
        } else {
            "Agent not live or unreachable".to_owned()
        },
        ..node_level_check(name, "serfHealth", "Serf Health Status", index)
    };
    std::iter::once(serf)
        .chain(node_maintenance_check(registry, name, index))
        .collect()
}

/// Consul's `_node_maintenance` check, while node `name` is in maintenance.
pub fn node_maintenance_check(registry: &Registry, name: &str, index: u64) -> Option<wire::Check> {
    registry
        .node_maintenance
        .get(name)
        .map(|reason| wire::Check {
            notes: reason.clone(),
            kind: "maintenance".to_owned(),
            ..node_level_check(name, "_node_maintenance", "Node Maintenance Mode", index)
        })
}

/// Consul's word for a check state: a check not run yet is `critical`, as Consul starts them.
pub fn status_of(state: CheckState) -> &'static str {
    match state {
        CheckState::Passing => "passing",
        CheckState::Warning => "warning",
        CheckState::Critical | CheckState::Unknown => "critical",
    }
}

/// The checks of `instance`: each of its own, and `_service_maintenance:ID` while it is in
/// maintenance.
pub fn instance_checks(
    registry: &Registry,
    instance: &ServiceInstance,
    index: u64,
) -> Vec<wire::Check> {
    let health = registry.health_of(instance);
    let check =
        |check_id: String, name: String, status, notes: String, output: String, kind| wire::Check {
            node: instance.node.clone(),
            check_id,
            name,
            status,
            notes,
            output,
            service_id: instance.id.clone(),
            service_name: instance.name.clone(),
            service_tags: instance.tags.clone(),
            kind,
            create_index: index.max(1),
            modify_index: index.max(1),
        };
    let mut checks: Vec<wire::Check> = instance
        .checks
        .iter()
        .map(|(name, body)| {
            let report = health.and_then(|h| h.checks.get(name));
            let kind = body
                .probe()
                .map(|p| p.split(':').next().unwrap_or("").trim().to_owned())
                .unwrap_or_default();
            check(
                consul_check_id(instance, name),
                name.clone(),
                status_of(report.map_or(CheckState::Unknown, |r| r.state)),
                String::new(),
                report.map(|r| r.output.clone()).unwrap_or_default(),
                kind,
            )
        })
        .collect();
    if let Some(reason) = health.and_then(|h| h.maintenance.as_ref()) {
        checks.push(check(
            format!("_service_maintenance:{}", instance.id),
            "Service Maintenance Mode".to_owned(),
            "critical",
            reason.clone(),
            String::new(),
            "maintenance".to_owned(),
        ));
    }
    checks
}

/// The Consul check id of `instance`'s check `name`: the name itself when it is one of Consul's
/// (`service:ID`, registered through the Consul surface), `service:ID:NAME` otherwise, so that
/// ids stay unique on a node.
pub fn consul_check_id(instance: &ServiceInstance, name: &str) -> String {
    if name.contains(':') {
        name.to_owned()
    } else {
        format!("service:{}:{name}", instance.id)
    }
}

/// Consul's `Service` of `instance`.
pub fn service(instance: &ServiceInstance, index: u64) -> wire::Service {
    wire::Service {
        id: instance.id.clone(),
        service: instance.name.clone(),
        tags: instance.tags.clone(),
        address: instance.address.clone(),
        meta: BTreeMap::new(),
        port: instance.port,
        weights: wire::Weights {
            passing: 1,
            warning: 1,
        },
        enable_tag_override: false,
        create_index: index.max(1),
        modify_index: index.max(1),
    }
}
