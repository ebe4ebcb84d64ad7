//! `GET /v1/neighbors` and the per-neighbour metrics: the neighbour monitor's views, read, never
//! probed, by the API.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use vigil_probe::neighbors::{NeighborState, NeighborView, Neighbors};

use vigil_health::metrics::{Kind, Value, Writer};

use crate::{not_found, wire, Api};

/// `/v1/neighbors`.
pub(crate) fn routes(api: &Api) -> Router {
    Router::new()
        .route("/v1/neighbors", get(list))
        .with_state(api.clone())
}

/// `GET /v1/neighbors`: every configured neighbour with its state, streaks, last latency and error.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/neighbors", tag = "neighbors",
    responses(
        (status = 200, description = "Every configured neighbour", body = wire::Neighbors),
        (status = 404, description = "No neighbours are configured", body = wire::ErrorBody),
    )))]
async fn list(State(api): State<Api>) -> Response {
    let Some(neighbors) = api.neighbors.as_ref().filter(|n| !n.is_empty()) else {
        return not_found(axum::http::Uri::from_static("/v1/neighbors"))
            .await
            .into_response();
    };
    let views = neighbors.views();
    let unavailable = views
        .iter()
        .filter(|v| v.state == NeighborState::Unavailable)
        .count();
    Json(wire::Neighbors {
        total: views.len(),
        neighbors: views.iter().map(neighbor).collect(),
        unavailable,
    })
    .into_response()
}

fn neighbor(v: &NeighborView) -> wire::Neighbor {
    wire::Neighbor {
        address: v.address.clone(),
        consecutive_failures: v.consecutive_failures,
        consecutive_successes: v.consecutive_successes,
        degrade_node: v.degrade_node,
        failures_total: v.failures_total,
        last_checked: v.last_checked.map(vigil_health::rfc3339),
        last_error: v.last_error.clone(),
        last_latency_seconds: v.last_latency_seconds,
        monitored: v.monitored,
        name: v.name.clone(),
        probes_total: v.probes_total,
        protocol: v.protocol.as_str().to_owned(),
        since: v.since.map(vigil_health::rfc3339),
        state: v.state.as_str().to_owned(),
    }
}

/// A metric family: its name, its help text and how to read a neighbour's value (none: no sample).
type Family<T> = (&'static str, &'static str, fn(&NeighborView) -> Option<T>);

/// Appends the neighbour metrics in the Prometheus text format.
pub(crate) fn render_metrics(neighbors: &Neighbors, out: &mut String) {
    let views = neighbors.views();
    if views.is_empty() {
        return;
    }
    let mut w = Writer::new(out);
    w.family(
        "vigil_neighbor_state",
        Kind::Gauge,
        "1 for the state each neighbour is in.",
    );
    for view in &views {
        for state in NeighborState::ALL {
            let labels = [("neighbor", view.name.as_str()), ("state", state.as_str())];
            w.sample("vigil_neighbor_state", &labels, view.state == state);
        }
    }
    let gauges: [Family<f64>; 2] = [
        (
            "vigil_neighbor_consecutive_failures",
            "Failed probes of each neighbour in a row.",
            |v| Some(f64::from(v.consecutive_failures)),
        ),
        (
            "vigil_neighbor_latency_seconds",
            "How long the last probe of each neighbour took.",
            |v| v.last_latency_seconds,
        ),
    ];
    for family in gauges {
        per_neighbour(&mut w, &views, Kind::Gauge, family);
    }
    let counters: [Family<u64>; 2] = [
        (
            "vigil_neighbor_probes_total",
            "Probes of each neighbour.",
            |v| Some(v.probes_total),
        ),
        (
            "vigil_neighbor_failures_total",
            "Failed probes of each neighbour.",
            |v| Some(v.failures_total),
        ),
    ];
    for family in counters {
        per_neighbour(&mut w, &views, Kind::Counter, family);
    }
}

/// One metric family with a sample per neighbour that has a value.
fn per_neighbour<T: Into<Value>>(
    w: &mut Writer<'_>,
    views: &[NeighborView],
    kind: Kind,
    (metric, help, value): Family<T>,
) {
    w.family(metric, kind, help);
    for view in views {
        if let Some(value) = value(view) {
            w.sample(metric, &[("neighbor", &view.name)], value);
        }
    }
}
