//! `GET /metrics`: the engine's families, then those of the neighbours, the cluster and Raft.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use vigil_health::metrics;

use crate::{cluster, discovery, leader, neighbors, Api};

/// `/metrics`.
pub(crate) fn routes(api: &Api) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .with_state(api.clone())
}

/// `GET /metrics`: the engine's text, shared by every scrape of one snapshot, then the uptime and
/// the neighbour, cluster and Raft families, which are small and rendered per scrape.
#[utoipa::path(get, path = "/metrics", tag = "probes",
    responses((status = 200, description = "Prometheus text exposition 0.0.4",
        content_type = "text/plain; version=0.0.4; charset=utf-8", body = String)))]
async fn metrics_text(State(api): State<Api>) -> Response {
    let snapshot = api.engine.snapshot();
    let shared = metrics::shared(&snapshot).await;
    respond(&api, &snapshot, shared)
}

/// `GET /metrics` when the snapshot's text is already rendered, `None` when it is not.
pub(crate) fn respond_cached(api: &Api) -> Option<Response> {
    let snapshot = api.engine.snapshot();
    let shared = metrics::cached(&snapshot)?;
    Some(respond(api, &snapshot, shared))
}

/// The text of `shared` followed by the families rendered per scrape.
fn respond(api: &Api, snapshot: &vigil_health::Snapshot, shared: bytes::Bytes) -> Response {
    let mut out = String::with_capacity(8192);
    metrics::uptime(snapshot, &mut out);
    if let Some(neighbors) = &api.neighbors {
        neighbors::render_metrics(neighbors, &mut out);
    }
    if let Some(cluster) = &api.cluster {
        cluster::render_metrics(&cluster.view(), &mut out);
    }
    if let Some(leadership) = &api.leadership {
        leader::render_metrics(leadership, &mut out);
    }
    if let Some(catalog) = &api.catalog {
        discovery::render_metrics(&catalog.current().registry, api.cluster.as_ref(), &mut out);
    }
    let body = vigil_health::http::shared_body([shared, bytes::Bytes::from(out)]);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response()
}
