//! Backups of the registry: `GET /v1/snapshot` reads it on the leader, after a majority confirmed
//! its leadership, into a backup file ([`Backup`]: header, length, SHA-256); `POST /v1/snapshot`
//! takes such a file, checks it whole, and writes it back through Raft, so every agent holds the
//! restored registry at the same log index. A file that is cut short, changed or not a snapshot
//! is refused with the reason and changes nothing.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use vigil_cluster::raft::{Backup, BackupHeader, Command, RoleKind};

use crate::error::ApiError;
use crate::forward::{self, Incoming};
use crate::services::{commit, write_failed};
use crate::{auth, wire, Api};

/// Largest backup `POST /v1/snapshot` takes: it travels as one Raft entry, whose frames are at
/// most 16 MiB (about 25,000 instances with their checks fit).
pub const MAX_SNAPSHOT_BYTES: usize = 8 * 1024 * 1024;

/// `/v1/snapshot`, on a node in a cluster; both methods need the token (a backup is everything
/// the registry holds).
pub(crate) fn routes(api: &Api) -> Router {
    if api.cluster.is_none() {
        return Router::new();
    }
    Router::new()
        .route(
            "/v1/snapshot",
            auth::guarded(&api.token, get(save).post(restore)),
        )
        .layer(DefaultBodyLimit::max(MAX_SNAPSHOT_BYTES))
        .with_state(api.clone())
}

/// What a backup holds, counted.
pub fn summary(header: &BackupHeader, backup: &Backup) -> wire::SnapshotSummary {
    let registry = &backup.registry;
    wire::SnapshotSummary {
        index: header.index,
        created_ms: header.created_ms,
        bytes: header.length,
        sha256: header.sha256.clone(),
        services: registry.services.len(),
        instances: registry.instances().count(),
        nodes: registry.health.len(),
        sessions: registry.coordination.sessions.len(),
        elections: registry.coordination.roles(RoleKind::Election).len(),
        locks: registry.coordination.roles(RoleKind::Lock).len(),
    }
}

/// `GET /v1/snapshot`: the registry as the leader holds it once a majority confirmed it.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/snapshot", tag = "services",
    security(("token" = [])),
    responses(
        (status = 200, description = "A backup file: a JSON header line (format, version, index, created_ms, length, sha256), then the registry's JSON",
            content_type = "application/octet-stream", body = String),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
pub async fn save(State(api): State<Api>, parts: Parts) -> Response {
    let request = Incoming::bodiless(&parts);
    let Some(leadership) = &api.leadership else {
        return forward::to_a_voter(&request, api.cluster.as_ref()).await;
    };
    let published = match leadership.read_consistent().await {
        Ok(published) => published,
        Err(e) => return write_failed(e, &request).await,
    };
    let backup = Backup {
        index: published.applied_index.unwrap_or(0),
        created_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        registry: published.registry.clone(),
    };
    match backup.encode() {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the registry does not encode: {e}"),
        )
        .into_response(),
    }
}

/// `POST /v1/snapshot`: replaces the registry with the backup in the body, through Raft.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/v1/snapshot", tag = "services",
    request_body(content = String, content_type = "application/octet-stream",
        description = "A backup file as `GET /v1/snapshot` gives it (at most 8 MiB)"),
    security(("token" = [])),
    responses(
        (status = 200, description = "Restored: what the backup held", body = wire::SnapshotSummary),
        (status = 400, description = "Not a snapshot, cut short, changed (its SHA-256 differs) or of another format version; nothing changed", body = wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 413, description = "Over 8 MiB", body = wire::ErrorBody),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
pub async fn restore(State(api): State<Api>, request: Incoming, body: Bytes) -> Response {
    let (header, backup) = match Backup::decode(&body) {
        Ok(read) => read,
        Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
    };
    let restored = summary(&header, &backup);
    let request = Incoming { body, ..request };
    match commit(&api, Command::Restore(Box::new(backup.registry)), &request).await {
        Ok(_) => (StatusCode::OK, Json(restored)).into_response(),
        Err(answer) => answer,
    }
}
