//! `GET /v1/catalog/services`, `/v1/catalog/service/{name}` and `/v1/catalog/nodes`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::response::Response;
use vigil_cluster::raft::Registry;
use vigil_cluster::ClusterView;

#[cfg(feature = "openapi")]
use super::read::ReadParams;
use super::read::{node, respond, ConsulQuery};
use super::wire;
use crate::Api;

/// `{"name": ["tag", ...]}`: every service with the union of its instances' tags.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/catalog/services", tag = "consul",
    params(ReadParams),
    responses(
        (status = 200, description = "Every service with its instances' tags", body = std::collections::BTreeMap<String, Vec<String>>, headers(("x-consul-index" = u64, description = "The index of the answer, for the next blocking read"), ("x-consul-knownleader" = String), ("x-consul-lastcontact" = u64))),
        (status = 400, description = "A bad query: an index that is not a whole number, a bad wait, another datacenter", body = crate::wire::ErrorBody),
        (status = 503, description = "No quorum (`?consistent`)", body = crate::wire::ErrorBody),
    )))]
pub async fn services(State(api): State<Api>, parts: Parts) -> Response {
    respond(
        &api,
        parts,
        |p| p.registry.services_index,
        |p, _, _| {
            let services: BTreeMap<String, Vec<String>> = p
                .registry
                .services
                .iter()
                .map(|(name, instances)| {
                    let mut tags: Vec<String> =
                        instances.values().flat_map(|i| i.tags.clone()).collect();
                    tags.sort();
                    tags.dedup();
                    (name.clone(), tags)
                })
                .collect();
            Ok(services)
        },
    )
    .await
}

/// Every instance of service `name` (`?tag=`, repeatable, keeps those with every tag), whatever
/// its health, each with its node.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/catalog/service/{name}", tag = "consul",
    params(ReadParams, ("name" = String, Path, description = "The service"), ("tag" = Option<String>, Query, description = "Only instances with this tag (repeatable)")),
    responses(
        (status = 200, description = "The instances of the service", body = Vec<wire::CatalogService>, headers(("x-consul-index" = u64, description = "The index of the answer, for the next blocking read"), ("x-consul-knownleader" = String), ("x-consul-lastcontact" = u64))),
        (status = 400, description = "A bad query: an index that is not a whole number, a bad wait, another datacenter", body = crate::wire::ErrorBody),
        (status = 503, description = "No quorum (`?consistent`)", body = crate::wire::ErrorBody),
    )))]
pub async fn service(State(api): State<Api>, Path(name): Path<String>, parts: Parts) -> Response {
    let index_name = name.clone();
    respond(
        &api,
        parts,
        move |p| p.registry.service_index(&index_name),
        |p, view, query| Ok(catalog_entries(&p.registry, view, &name, query)),
    )
    .await
}

fn catalog_entries(
    registry: &Registry,
    view: Option<&ClusterView>,
    name: &str,
    query: &ConsulQuery,
) -> Vec<wire::CatalogService> {
    let index = registry.service_index(name);
    let tags = query.all("tag");
    registry
        .services
        .get(name)
        .into_iter()
        .flat_map(|of| of.values())
        .filter(|i| tags.iter().all(|t| i.tags.iter().any(|have| have == t)))
        .map(|i| {
            let node = node(view, &i.node, index);
            let service = super::read::service(i, index);
            wire::CatalogService {
                id: node.id,
                node: node.node,
                address: node.address,
                datacenter: node.datacenter,
                tagged_addresses: node.tagged_addresses,
                node_meta: node.meta,
                service_id: service.id,
                service_name: service.service,
                service_tags: service.tags,
                service_address: service.address,
                service_meta: service.meta,
                service_port: service.port,
                service_weights: service.weights,
                service_enable_tag_override: false,
                create_index: index.max(1),
                modify_index: index.max(1),
            }
        })
        .collect()
}

/// Every member this agent knows, as catalog nodes.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/catalog/nodes", tag = "consul",
    params(ReadParams, ("node-meta" = Option<String>, Query, description = "Only nodes with this `key:value` tag (repeatable)")),
    responses(
        (status = 200, description = "Every node", body = Vec<wire::Node>, headers(("x-consul-index" = u64, description = "The index of the answer, for the next blocking read"), ("x-consul-knownleader" = String), ("x-consul-lastcontact" = u64))),
        (status = 400, description = "A bad query: an index that is not a whole number, a bad wait, another datacenter", body = crate::wire::ErrorBody),
        (status = 503, description = "No quorum (`?consistent`)", body = crate::wire::ErrorBody),
    )))]
pub async fn nodes(State(api): State<Api>, parts: Parts) -> Response {
    respond(
        &api,
        parts,
        |p| p.applied_index.unwrap_or(0),
        |p, view, query| {
            let index = p.applied_index.unwrap_or(0);
            let meta = query.node_meta();
            let nodes: Vec<wire::Node> = view
                .iter()
                .flat_map(|v| v.members.iter())
                .map(|m| node(view, &m.id, index))
                .filter(|n| {
                    meta.iter()
                        .all(|(k, v)| n.meta.get(*k).is_some_and(|have| have == v))
                })
                .collect();
            Ok(nodes)
        },
    )
    .await
}
