//! `GET /metrics`: the engine's families, then those of the neighbours, the cluster and Raft.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use vigil_health::metrics;

use std::sync::Arc;

use crate::serve::{DirectAnswer, Mirror, Mirrors};
use crate::{cluster, discovery, leader, neighbors, Api};

/// `/metrics`.
pub(crate) fn routes(api: &Api) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .with_state(api.clone())
}

/// `GET /metrics`: the uptime and the neighbour, cluster, Raft and discovery families, which are
/// small and rendered per scrape, then the engine's text, shared by every scrape of one snapshot.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/metrics", tag = "probes",
    responses((status = 200, description = "Prometheus text exposition 0.0.4",
        content_type = "text/plain; version=0.0.4; charset=utf-8", body = String))))]
async fn metrics_text(State(api): State<Api>) -> Response {
    let snapshot = api.engine.snapshot();
    let shared = metrics::shared(&snapshot).await;
    respond(&api, &snapshot, shared)
}

/// `GET /metrics` ahead of the router: at once when the snapshot's text is already rendered, else
/// once it is. A large shared text goes with its [`Mirror`], which the serve loop sends without
/// copying it.
pub(crate) fn respond_direct(api: &Api, mirrors: &Arc<Mirrors>) -> DirectAnswer {
    let snapshot = api.engine.snapshot();
    if let Some(shared) = metrics::cached(&snapshot) {
        return DirectAnswer::Now(with_mirror(api, &snapshot, shared, mirrors));
    }
    let (api, mirrors) = (api.clone(), mirrors.clone());
    DirectAnswer::Soon(Box::pin(async move {
        let shared = metrics::shared(&snapshot).await;
        with_mirror(&api, &snapshot, shared, &mirrors)
    }))
}

fn with_mirror(
    api: &Api,
    snapshot: &vigil_health::Snapshot,
    shared: bytes::Bytes,
    mirrors: &Mirrors,
) -> Response {
    let mirror = mirrors.of(&shared).map(|file| Mirror { chunk: 1, file });
    let mut response = respond(api, snapshot, shared);
    if let Some(mirror) = mirror {
        response.extensions_mut().insert(mirror);
    }
    response
}

/// The families rendered per scrape, then the text of `shared` (last, so that the serve loop's
/// `sendfile` of it completes the answer).
fn respond(api: &Api, snapshot: &vigil_health::Snapshot, shared: bytes::Bytes) -> Response {
    let mut out = String::with_capacity(8192);
    metrics::uptime(snapshot, &mut out);
    if let Some(neighbors) = api.neighbors.as_ref().filter(|n| !n.is_empty()) {
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
    api.webhooks.render_metrics(&mut out);
    let body = vigil_health::http::shared_body([bytes::Bytes::from(out), shared]);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response()
}
