//! A Consul-compatible subset of the HTTP API, on the same listener as vigil's own, so that
//! tooling written for Consul — Prometheus's `consul_sd_configs`, python-consul, load balancers
//! — works against a vigil cluster unchanged.
//!
//! Reads come from this agent's copy of the registry (every agent answers the same, non-voters
//! included) and block on `?index=&wait=` with `X-Consul-Index`; instances and their checks carry
//! the states vigil's own discovery gives them. What vigil does not have — the KV store, ACL
//! tokens, prepared queries, Connect, Consul's own sessions — answers 501 naming it; any other
//! path under a Consul prefix answers vigil's JSON 404. `/v1/snapshot` is vigil's own backup
//! (`crate::snapshot`), not Consul's archive format. Deregistration and TTL updates also
//! answer GET, as Consul's agent did before 1.0 and python-consul 0.7 still sends.

pub(crate) mod agent;
pub(crate) mod agent_write;
pub(crate) mod catalog;
pub(crate) mod health;
mod read;
pub(crate) mod status;
mod wire;

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, put};
use axum::Router;

use crate::error::ApiError;
use crate::{auth, Api};

pub(crate) use health::{kept_body, kept_read, KeptRead};
pub(crate) use read::{leader_contact, INDEX};

/// Consul features vigil does not serve, by path prefix, with what to say.
const NOT_SERVED: [(&str, &str); 9] = [
    ("/v1/kv", "the KV store"),
    ("/v1/acl", "ACL tokens and policies"),
    ("/v1/query", "prepared queries"),
    ("/v1/connect", "Connect (service mesh)"),
    (
        "/v1/session",
        "Consul sessions (vigil's own are under /v1/sessions)",
    ),
    ("/v1/txn", "transactions"),
    ("/v1/operator", "the operator API"),
    ("/v1/config", "configuration entries"),
    ("/v1/coordinate", "network coordinates"),
];

/// The Consul routes, on a node in a cluster.
pub(crate) fn routes(api: &Api) -> Router {
    if api.cluster.is_none() {
        return Router::new();
    }
    let mut router = Router::new()
        .route("/v1/agent/self", get(agent::agent_self))
        .route("/v1/agent/members", get(agent::members))
        .route("/v1/agent/services", get(agent::services))
        .route("/v1/agent/checks", get(agent::checks))
        .route("/v1/status/leader", get(status::leader))
        .route("/v1/status/peers", get(status::peers))
        .route("/v1/catalog/services", get(catalog::services))
        .route("/v1/catalog/service/{name}", get(catalog::service))
        .route("/v1/catalog/nodes", get(catalog::nodes))
        .route("/v1/health/service/{name}", get(health::service_health))
        .route("/v1/health/checks/{name}", get(health::service_checks))
        .route("/v1/health/node/{name}", get(health::node_health))
        .route("/v1/health/state/{state}", get(health::state))
        .route(
            "/v1/agent/service/register",
            auth::guarded(&api.token, put(agent_write::register)),
        )
        .route(
            "/v1/agent/service/deregister/{id}",
            auth::guarded(
                &api.token,
                put(agent_write::deregister).get(agent_write::deregister),
            ),
        )
        .route(
            "/v1/agent/check/{verdict}/{check_id}",
            auth::guarded(
                &api.token,
                put(agent_write::check_update).get(agent_write::check_update),
            ),
        )
        .route(
            "/v1/agent/check/update/{check_id}",
            auth::guarded(&api.token, put(agent_write::check_status)),
        )
        .route(
            "/v1/agent/service/maintenance/{id}",
            auth::guarded(&api.token, put(agent_write::maintenance)),
        )
        .route(
            "/v1/agent/maintenance",
            auth::guarded(&api.token, put(agent_write::node_maintenance)),
        );
    for (prefix, _) in NOT_SERVED {
        router = router
            .route(prefix, any(not_served))
            .route(&format!("{prefix}/{{*rest}}"), any(not_served));
    }
    router.with_state(api.clone())
}

/// 501 naming the Consul feature asked for.
async fn not_served(uri: Uri) -> Response {
    let path = uri.path();
    let feature = NOT_SERVED
        .iter()
        .find(|(prefix, _)| path == *prefix || path.starts_with(&format!("{prefix}/")))
        .map_or("this Consul feature", |(_, feature)| feature);
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        format!("vigil does not serve {feature} of Consul's API ({path})"),
    )
    .into_response()
}
