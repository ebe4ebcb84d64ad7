//! `GET /v1/health/service/{name}`, `/v1/health/checks/{service}`, `/v1/health/node/{node}` and
//! `/v1/health/state/{state}`: the same states vigil's discovery answers with, in Consul's shape.
//! `?passing` keeps the instances whose every check passes — its own, its node's `serfHealth`,
//! and none in maintenance, its own or its node's — exactly those `?healthy` and DNS return.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::Uri;
use axum::response::Response;
use vigil_cluster::raft::{InstanceState, Published, Registry};
use vigil_cluster::ClusterView;

use super::read::{instance_checks, node, node_checks, respond, service, ConsulQuery, ReadParams};
use super::wire;
use crate::discovery::{discover_in, Filter};
use crate::error::ApiError;
use crate::Api;

/// The entries of service `name` in `registry`: each instance with its node and its checks.
fn entries(
    registry: &Registry,
    view: Option<&ClusterView>,
    name: &str,
    query: &ConsulQuery,
) -> Vec<wire::ServiceEntry> {
    let index = registry.service_index(name);
    let tags = query.all("tag");
    let meta = query.node_meta();
    let passing = query.flag("passing");
    discover_in(registry, view, name, &Filter::default())
        .into_iter()
        .filter(|(i, _)| tags.iter().all(|t| i.tags.iter().any(|have| have == t)))
        .filter(|(_, state)| !passing || *state == InstanceState::Passing)
        .map(|(i, _)| {
            let mut checks = node_checks(registry, view, &i.node, index);
            checks.extend(instance_checks(registry, i, index));
            wire::ServiceEntry {
                node: node(view, &i.node, index),
                service: service(i, index),
                checks,
            }
        })
        .filter(|e| {
            meta.iter()
                .all(|(k, v)| e.node.meta.get(*k).is_some_and(|have| have == v))
        })
        .collect()
}

/// How a `/v1/health/service/{name}` read can be answered from a kept body, ahead of the router.
pub(crate) enum KeptRead {
    /// From the registry as it is.
    Now,
    /// Once the service's index passes `index`, or after `wait`.
    After {
        /// The index the client holds.
        index: u64,
        /// How long it waits at most.
        wait: Duration,
    },
}

/// How the read `uri` can be answered from a kept body; `None` for a read the router answers:
/// `?consistent` (asks the leader), `?dc` (checked against this agent's), a `?wait` without an
/// `?index`, or a bad query (the router says what is wrong).
pub(crate) fn kept_read(uri: &Uri) -> Option<KeptRead> {
    let params = ReadParams::of(&ConsulQuery::of_uri(uri).ok()?).ok()?;
    if params.consistent()
        || params.dc.is_some()
        || (params.index.is_none() && params.wait.is_some())
    {
        return None;
    }
    Some(match params.blocking().parse().ok()? {
        Some((index, wait)) => KeptRead::After { index, wait },
        None => KeptRead::Now,
    })
}

/// The body of `/v1/health/service/{name}` from `published`, with its `X-Consul-Index`: the same
/// whether the read waited or not.
pub(crate) fn kept_body(
    published: &Published,
    view: &ClusterView,
    name: &str,
    uri: &Uri,
) -> Option<(u64, Vec<u8>)> {
    let query = ConsulQuery::of_uri(uri).ok()?;
    let registry = &published.registry;
    let body = serde_json::to_vec(&entries(registry, Some(view), name, &query)).ok()?;
    Some((registry.service_index(name).max(1), body))
}

/// `/v1/health/service/{name}`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/health/service/{name}", tag = "consul",
    params(ReadParams, ("name" = String, Path, description = "The service"), ("passing" = Option<String>, Query, description = "Only instances whose every check passes"), ("tag" = Option<String>, Query, description = "Only instances with this tag (repeatable)"), ("node-meta" = Option<String>, Query, description = "Only instances on nodes with this `key:value` tag (repeatable)")),
    responses(
        (status = 200, description = "Each instance with its node and checks", body = Vec<wire::ServiceEntry>, headers(("x-consul-index" = u64, description = "The index of the answer, for the next blocking read"), ("x-consul-knownleader" = String), ("x-consul-lastcontact" = u64))),
        (status = 400, description = "A bad query: an index that is not a whole number, a bad wait, another datacenter", body = crate::wire::ErrorBody),
        (status = 503, description = "No quorum (`?consistent`)", body = crate::wire::ErrorBody),
    )))]
pub async fn service_health(
    State(api): State<Api>,
    Path(name): Path<String>,
    parts: Parts,
) -> Response {
    let index_name = name.clone();
    respond(
        &api,
        parts,
        move |p| p.registry.service_index(&index_name),
        |p, view, query| Ok(entries(&p.registry, view, &name, query)),
    )
    .await
}

/// `/v1/health/checks/{service}`: the checks of every instance of the service.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/health/checks/{name}", tag = "consul",
    params(ReadParams, ("name" = String, Path, description = "The service")),
    responses(
        (status = 200, description = "The checks of every instance of the service", body = Vec<wire::Check>, headers(("x-consul-index" = u64, description = "The index of the answer, for the next blocking read"), ("x-consul-knownleader" = String), ("x-consul-lastcontact" = u64))),
        (status = 400, description = "A bad query: an index that is not a whole number, a bad wait, another datacenter", body = crate::wire::ErrorBody),
        (status = 503, description = "No quorum (`?consistent`)", body = crate::wire::ErrorBody),
    )))]
pub async fn service_checks(
    State(api): State<Api>,
    Path(name): Path<String>,
    parts: Parts,
) -> Response {
    let index_name = name.clone();
    respond(
        &api,
        parts,
        move |p| p.registry.service_index(&index_name),
        |p, _, _| {
            let index = p.registry.service_index(&name);
            let checks: Vec<wire::Check> = p
                .registry
                .services
                .get(&name)
                .into_iter()
                .flat_map(|of| of.values())
                .flat_map(|i| instance_checks(&p.registry, i, index))
                .collect();
            Ok(checks)
        },
    )
    .await
}

/// `/v1/health/node/{node}`: the node's own checks and those of its instances.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/health/node/{name}", tag = "consul",
    params(ReadParams, ("name" = String, Path, description = "The node")),
    responses(
        (status = 200, description = "The node's own checks and those of its instances", body = Vec<wire::Check>, headers(("x-consul-index" = u64, description = "The index of the answer, for the next blocking read"), ("x-consul-knownleader" = String), ("x-consul-lastcontact" = u64))),
        (status = 400, description = "A bad query: an index that is not a whole number, a bad wait, another datacenter", body = crate::wire::ErrorBody),
        (status = 503, description = "No quorum (`?consistent`)", body = crate::wire::ErrorBody),
    )))]
pub async fn node_health(
    State(api): State<Api>,
    Path(name): Path<String>,
    parts: Parts,
) -> Response {
    respond(
        &api,
        parts,
        |p| p.applied_index.unwrap_or(0),
        |p, view, _| {
            let index = p.applied_index.unwrap_or(0);
            let mut checks = node_checks(&p.registry, view, &name, index);
            checks.extend(
                p.registry
                    .instances()
                    .filter(|i| i.node == name)
                    .flat_map(|i| instance_checks(&p.registry, i, index)),
            );
            Ok(checks)
        },
    )
    .await
}

/// `/v1/health/state/{state}`: every check in `passing`, `warning`, `critical` or `any`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/health/state/{state}", tag = "consul",
    params(ReadParams, ("state" = String, Path, description = "`any`, `passing`, `warning` or `critical`")),
    responses(
        (status = 200, description = "Every check in that state", body = Vec<wire::Check>, headers(("x-consul-index" = u64, description = "The index of the answer, for the next blocking read"), ("x-consul-knownleader" = String), ("x-consul-lastcontact" = u64))),
        (status = 400, description = "A bad query: an index that is not a whole number, a bad wait, another datacenter", body = crate::wire::ErrorBody),
        (status = 503, description = "No quorum (`?consistent`)", body = crate::wire::ErrorBody),
    )))]
pub async fn state(State(api): State<Api>, Path(wanted): Path<String>, parts: Parts) -> Response {
    respond(
        &api,
        parts,
        |p| p.applied_index.unwrap_or(0),
        |p, view, _| {
            if !matches!(wanted.as_str(), "any" | "passing" | "warning" | "critical") {
                return Err(ApiError::bad_request(format!(
                    "state {wanted:?} is none of any, passing, warning, critical"
                )));
            }
            let index = p.applied_index.unwrap_or(0);
            let mut nodes: Vec<String> = view
                .map(|v| v.members.iter().map(|m| m.id.clone()).collect())
                .unwrap_or_default();
            nodes.sort();
            let checks = nodes
                .iter()
                .flat_map(|n| node_checks(&p.registry, view, n, index))
                .chain(
                    p.registry
                        .instances()
                        .flat_map(|i| instance_checks(&p.registry, i, index)),
                )
                .filter(|c| wanted == "any" || c.status == wanted)
                .collect::<Vec<_>>();
            Ok(checks)
        },
    )
    .await
}
