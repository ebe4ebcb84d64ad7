//! Maintenance: `PUT /v1/services/{name}/{id}/maintenance` takes an instance out of discovery on
//! purpose, `PUT /v1/members/{node}/maintenance` every instance on a node; `DELETE` puts them
//! back.
//!
//! An instance in maintenance shows the state `maintenance` everywhere its state is shown, is
//! never returned as healthy (discovery, DNS, Prometheus service discovery), and its checks keep
//! running, so it comes back with what they say. Its node dying does not make it critical: the
//! operator already took it out. The flags are Raft writes like a registration, so every agent
//! sees them at once and they outlive restarts; an instance's goes with it when it is
//! deregistered, a node's stays until taken off (instances registered on the node meanwhile are
//! in maintenance too).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use vigil_cluster::raft::Command;

use crate::error::ApiError;
use crate::forward::Incoming;
use crate::services::commit;
use crate::{auth, wire, Api};

/// Longest reason kept, in bytes.
pub(crate) const MAX_REASON: usize = 1024;

/// The reason recorded when a request gives none.
const DEFAULT_REASON: &str = "in maintenance";

/// `/v1/services/{name}/{id}/maintenance` and `/v1/members/{node}/maintenance`, on a node in a
/// cluster; every method needs the token.
pub(crate) fn routes(api: &Api) -> Router {
    if api.cluster.is_none() {
        return Router::new();
    }
    Router::new()
        .route(
            "/v1/services/{name}/{id}/maintenance",
            auth::guarded(&api.token, put(enter).delete(leave)),
        )
        .route(
            "/v1/members/{node}/maintenance",
            auth::guarded(&api.token, put(enter_node).delete(leave_node)),
        )
        .with_state(api.clone())
}

/// `PUT /v1/services/{name}/{id}/maintenance`: the instance leaves discovery until taken out of
/// maintenance.
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/v1/services/{name}/{id}/maintenance", tag = "services",
    params(("name" = String, Path, description = "The service"), ("id" = String, Path, description = "The instance")),
    request_body(description = "Optional: why, as JSON `{\"reason\": \"...\"}` (at most 1,024 bytes)",
        content((Option<wire::MaintenanceRequest> = "application/json"))),
    security(("token" = [])),
    responses(
        (status = 200, description = "In maintenance", body = wire::Maintenance),
        (status = 400, description = "A malformed body or a reason over 1,024 bytes", body = wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 404, description = "No such instance", body = wire::ErrorBody),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
pub async fn enter(
    State(api): State<Api>,
    Path((name, id)): Path<(String, String)>,
    request: Incoming,
    body: Bytes,
) -> Response {
    let reason = match reason_of(&body) {
        Ok(reason) => reason,
        Err(error) => return error.into_response(),
    };
    let request = Incoming { body, ..request };
    set(&api, name, id, Some(reason), &request).await
}

/// `DELETE /v1/services/{name}/{id}/maintenance`: the instance is back in discovery, with the
/// state its checks give it.
#[cfg_attr(feature = "openapi", utoipa::path(delete, path = "/v1/services/{name}/{id}/maintenance", tag = "services",
    params(("name" = String, Path, description = "The service"), ("id" = String, Path, description = "The instance")),
    security(("token" = [])),
    responses(
        (status = 200, description = "Out of maintenance", body = wire::Maintenance),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 404, description = "No such instance", body = wire::ErrorBody),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
pub async fn leave(
    State(api): State<Api>,
    Path((name, id)): Path<(String, String)>,
    request: Incoming,
) -> Response {
    set(&api, name, id, None, &request).await
}

/// The reason in a request body: none given is [`DEFAULT_REASON`].
fn reason_of(body: &[u8]) -> Result<String, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DEFAULT_REASON.to_owned());
    }
    let request: wire::MaintenanceRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be JSON {{\"reason\": \"...\"}}: {e}"
        ))
    })?;
    match request.reason {
        Some(reason) if reason.len() > MAX_REASON => Err(ApiError::bad_request(format!(
            "reason: {} bytes, at most {MAX_REASON}",
            reason.len()
        ))),
        Some(reason) if !reason.trim().is_empty() => Ok(reason),
        _ => Ok(DEFAULT_REASON.to_owned()),
    }
}

/// Writes an instance's flag through Raft on the leader (passed on from any other node) and
/// answers with the flag as the leader then holds it.
async fn set(
    api: &Api,
    name: String,
    id: String,
    reason: Option<String>,
    request: &Incoming,
) -> Response {
    let command = Command::Maintenance {
        name: name.clone(),
        id: id.clone(),
        reason: reason.clone(),
    };
    if let Err(answer) = commit(api, command, request).await {
        return answer;
    }
    // The write is applied here, so this node's registry tells whether the instance exists.
    let known = api.catalog.as_ref().is_some_and(|catalog| {
        catalog
            .current()
            .registry
            .services
            .get(&name)
            .is_some_and(|of| of.contains_key(&id))
    });
    if !known {
        return ApiError::not_found(format!("no instance {id:?} of service {name:?}"))
            .into_response();
    }
    let body = wire::Maintenance {
        instance: wire::InstanceName { id, name },
        maintenance: reason,
    };
    (StatusCode::OK, Json(body)).into_response()
}

/// `PUT /v1/members/{node}/maintenance`: every instance on the node leaves discovery until the
/// node is taken out of maintenance.
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/v1/members/{node}/maintenance", tag = "cluster",
    params(("node" = String, Path, description = "The node's id")),
    request_body(description = "Optional: why, as JSON `{\"reason\": \"...\"}` (at most 1,024 bytes)",
        content((Option<wire::MaintenanceRequest> = "application/json"))),
    security(("token" = [])),
    responses(
        (status = 200, description = "In maintenance", body = wire::NodeMaintenance),
        (status = 400, description = "A malformed body or a reason over 1,024 bytes", body = wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 404, description = "No such member", body = wire::ErrorBody),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
pub async fn enter_node(
    State(api): State<Api>,
    Path(node): Path<String>,
    request: Incoming,
    body: Bytes,
) -> Response {
    let reason = match reason_of(&body) {
        Ok(reason) => reason,
        Err(error) => return error.into_response(),
    };
    let request = Incoming { body, ..request };
    set_node(&api, node, Some(reason), &request).await
}

/// `DELETE /v1/members/{node}/maintenance`: the node's instances are back in discovery, with the
/// states their checks give them.
#[cfg_attr(feature = "openapi", utoipa::path(delete, path = "/v1/members/{node}/maintenance", tag = "cluster",
    params(("node" = String, Path, description = "The node's id")),
    security(("token" = [])),
    responses(
        (status = 200, description = "Out of maintenance", body = wire::NodeMaintenance),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 404, description = "No such member", body = wire::ErrorBody),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
pub async fn leave_node(
    State(api): State<Api>,
    Path(node): Path<String>,
    request: Incoming,
) -> Response {
    set_node(&api, node, None, &request).await
}

/// Writes a node's flag through Raft, for a node this agent knows as a member.
async fn set_node(api: &Api, node: String, reason: Option<String>, request: &Incoming) -> Response {
    let member = api
        .cluster
        .as_ref()
        .is_some_and(|c| c.view().member(&node).is_some());
    if !member {
        return ApiError::not_found(format!("no member {node:?}")).into_response();
    }
    let command = Command::NodeMaintenance {
        node: node.clone(),
        reason: reason.clone(),
    };
    if let Err(answer) = commit(api, command, request).await {
        return answer;
    }
    let body = wire::NodeMaintenance {
        node,
        maintenance: reason,
    };
    (StatusCode::OK, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_optional_and_bounded() {
        assert_eq!(reason_of(b"").unwrap(), DEFAULT_REASON);
        assert_eq!(reason_of(b"{}").unwrap(), DEFAULT_REASON);
        assert_eq!(
            reason_of(br#"{"reason": "kernel upgrade"}"#).unwrap(),
            "kernel upgrade"
        );
        let long = format!(r#"{{"reason": "{}"}}"#, "x".repeat(MAX_REASON + 1));
        assert!(reason_of(long.as_bytes()).is_err());
        assert!(reason_of(b"not json").is_err());
    }
}
