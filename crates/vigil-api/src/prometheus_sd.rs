//! `GET /v1/sd/prometheus`: the instances Prometheus should scrape, in the format of its
//! `http_sd_configs`, answered by any agent from its own catalog. One target group per instance,
//! since its labels (node, tags, state) are its own.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::discovery::{dial_address, discover, Filter, Wanted};
use crate::error::ApiError;
use crate::{wire, Api};

/// `/v1/sd/prometheus`, on a node in a cluster.
pub(crate) fn routes(api: &Api) -> Router {
    if api.catalog.is_none() {
        return Router::new();
    }
    Router::new()
        .route("/v1/sd/prometheus", get(targets))
        .with_state(api.clone())
}

/// `/v1/sd/prometheus`'s parameters.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct Targets {
    /// Only this service's instances.
    service: Option<String>,
    /// Which states are scraped: passing only when left out (or `passing`), `warning` for
    /// passing and warning, `false` for every instance.
    healthy: Option<String>,
}

/// `GET /v1/sd/prometheus[?service=][&healthy=]`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/sd/prometheus", tag = "services",
    params(Targets),
    responses(
        (status = 200, description = "Target groups for Prometheus's `http_sd_configs`: each instance's `address:port` with the labels `service`, `__meta_vigil_service`, `__meta_vigil_instance`, `__meta_vigil_node`, `__meta_vigil_tags` (`,a,b,`) and `__meta_vigil_state`",
            body = Vec<wire::TargetGroup>),
        (status = 400, description = "A bad `healthy`", body = wire::ErrorBody),
    )))]
pub async fn targets(State(api): State<Api>, Query(query): Query<Targets>) -> Response {
    let wanted = match query.healthy.as_deref() {
        None | Some("" | "true" | "passing") => Wanted::Passing,
        Some("warning") => Wanted::PassingOrWarning,
        Some("false") => Wanted::Any,
        Some(other) => {
            return ApiError::bad_request(format!(
                "healthy: expected \"passing\", \"warning\" or \"false\", not {other:?}"
            ))
            .into_response()
        }
    };
    let Some(catalog) = &api.catalog else {
        return ApiError::not_found("this node holds no registry").into_response();
    };
    let current = catalog.current();
    let registry = &current.registry;
    let filter = Filter {
        wanted,
        ..Filter::default()
    };
    let services: Vec<&String> = match &query.service {
        Some(name) => registry.services.keys().filter(|n| *n == name).collect(),
        None => registry.services.keys().collect(),
    };
    let groups: Vec<wire::TargetGroup> = services
        .into_iter()
        .flat_map(|name| discover(registry, api.cluster.as_ref(), name, &filter))
        .map(|(instance, state)| {
            let labels = BTreeMap::from([
                ("service".to_owned(), instance.name.clone()),
                ("__meta_vigil_service".to_owned(), instance.name.clone()),
                ("__meta_vigil_instance".to_owned(), instance.id.clone()),
                ("__meta_vigil_node".to_owned(), instance.node.clone()),
                (
                    "__meta_vigil_tags".to_owned(),
                    format!(",{},", instance.tags.join(",")),
                ),
                ("__meta_vigil_state".to_owned(), state.as_str().to_owned()),
            ]);
            wire::TargetGroup {
                labels,
                targets: vec![dial_address(&instance.address, instance.port)],
            }
        })
        .collect();
    Json(groups).into_response()
}
