//! The service registry: `POST /v1/services`, `DELETE /v1/services/{name}/{id}`,
//! `GET /v1/services[/{name}][?consistent]`.
//!
//! Writes commit through Raft on the leader; another voter passes them on to the leader, a
//! node that is not a voter to a voter. Without a leader in touch with a majority they fail at
//! once with 503 `{"error": "no quorum: ..."}` and change nothing. Reads come from the serving
//! voter's copy with `X-Vigil-Stale-Ms`, or with `?consistent` from the leader after it
//! confirmed its leadership with a majority.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use vigil_cluster::raft::{Command, Registry, ServiceInstance, WriteError};

use crate::error::ApiError;
use crate::forward::{self, Incoming};
use crate::leader::VoterRead;
use crate::Api;

/// The body of `POST /v1/services`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    name: String,
    id: String,
    address: String,
    port: u16,
    #[serde(default)]
    tags: Vec<String>,
    node: Option<String>,
    #[serde(default)]
    ephemeral: bool,
}

const BODY_SHAPE: &str = "expected {\"name\": \"api\", \"id\": \"api-1\", \"address\": \"10.0.0.5\", \"port\": 8080, \"tags\": [], \"node\": \"<node id>\", \"ephemeral\": false}";

fn check_name(what: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > 200 {
        return Err(ApiError::bad_request(format!(
            "{what} must be 1 to 200 characters long"
        )));
    }
    if value
        .chars()
        .any(|c| c == '/' || c.is_control() || c.is_whitespace())
    {
        return Err(ApiError::bad_request(format!(
            "{what} {value:?} may not contain '/', spaces or control characters"
        )));
    }
    Ok(())
}

impl Registration {
    fn parse(body: &[u8], local: &str) -> Result<ServiceInstance, ApiError> {
        let r: Registration = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid body: {e} ({BODY_SHAPE})")))?;
        check_name("name", &r.name)?;
        check_name("id", &r.id)?;
        if r.address.trim().is_empty() {
            return Err(ApiError::bad_request("address is empty"));
        }
        if r.port == 0 {
            return Err(ApiError::bad_request("port must be 1 to 65535"));
        }
        let node = r.node.unwrap_or_else(|| local.to_owned());
        check_name("node", &node)?;
        Ok(ServiceInstance {
            name: r.name,
            id: r.id,
            address: r.address,
            port: r.port,
            tags: r.tags,
            node,
            ephemeral: r.ephemeral,
        })
    }
}

/// Turns a failed write (or consistent read) into its answer: passed on to the leader when
/// one is known elsewhere, 503 `no quorum` otherwise.
pub async fn write_failed(error: WriteError, request: &Incoming) -> Response {
    match error {
        WriteError::NotLeader {
            leader: Some(leader),
            api_address: Some(addr),
        } => forward::forward(request, addr, &format!("the leader is {leader}")).await,
        WriteError::NotLeader { leader, .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "no quorum: the leader ({}) has no known API address",
                leader.as_deref().unwrap_or("unknown")
            ),
        )
        .into_response(),
        e @ (WriteError::NoQuorum(_) | WriteError::Stopped(_)) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
    }
}

/// `POST /v1/services`.
pub async fn register(State(api): State<Api>, request: Incoming, body: Bytes) -> Response {
    // The instance's node defaults to the node first asked, so it is settled before the
    // request is passed on.
    let local = api.engine.snapshot().node_id().to_owned();
    let instance = match Registration::parse(&body, &local) {
        Ok(instance) => instance,
        Err(e) => return e.into_response(),
    };
    let request = Incoming {
        body: serde_json::to_vec(&instance)
            .map(Bytes::from)
            .unwrap_or(body),
        ..request
    };
    let Some(leadership) = &api.leadership else {
        return forward::to_a_voter(&request, api.cluster.as_ref()).await;
    };
    match leadership.write(Command::Register(instance.clone())).await {
        Ok(applied) => {
            let code = if applied.changed {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (code, Json(json!({ "registered": instance }))).into_response()
        }
        Err(e) => write_failed(e, &request).await,
    }
}

/// `DELETE /v1/services/{name}/{id}`.
pub async fn deregister(
    State(api): State<Api>,
    Path((name, id)): Path<(String, String)>,
    request: Incoming,
) -> Response {
    let Some(leadership) = &api.leadership else {
        return forward::to_a_voter(&request, api.cluster.as_ref()).await;
    };
    let command = Command::Deregister {
        name: name.clone(),
        id: id.clone(),
    };
    match leadership.write(command).await {
        Ok(applied) if applied.removed > 0 => {
            Json(json!({ "deregistered": { "name": name, "id": id } })).into_response()
        }
        Ok(_) => {
            ApiError::not_found(format!("no instance {id:?} of service {name:?}")).into_response()
        }
        Err(e) => write_failed(e, &request).await,
    }
}

fn instance_json(instance: &ServiceInstance, registry: &Registry) -> Value {
    let mut v = serde_json::to_value(instance).unwrap_or_default();
    v["health"] = match registry.health.get(&instance.node) {
        Some(report) => json!({ "status": report.status, "score": report.score }),
        None => json!({ "status": "unknown", "score": null }),
    };
    v
}

/// `GET /v1/services[?consistent]`.
pub async fn list(
    VoterRead {
        published, headers, ..
    }: VoterRead,
) -> Response {
    let registry = &published.registry;
    let services: Map<String, Value> = registry
        .services
        .iter()
        .map(|(name, instances)| {
            let list: Vec<Value> = instances
                .values()
                .map(|i| instance_json(i, registry))
                .collect();
            (name.clone(), Value::Array(list))
        })
        .collect();
    let nodes: Map<String, Value> = registry
        .health
        .iter()
        .map(|(node, r)| {
            (
                node.clone(),
                json!({ "status": r.status, "score": r.score }),
            )
        })
        .collect();
    (
        headers,
        Json(json!({
            "services": services,
            "nodes": nodes,
            "applied_index": published.applied_index,
        })),
    )
        .into_response()
}

/// `GET /v1/services/{name}[?consistent]`.
pub async fn get_service(
    Path(name): Path<String>,
    VoterRead {
        published, headers, ..
    }: VoterRead,
) -> Response {
    let registry = &published.registry;
    let Some(instances) = registry.services.get(&name) else {
        return ApiError::not_found(format!("no service {name:?} is registered")).into_response();
    };
    let list: Vec<Value> = instances
        .values()
        .map(|i| instance_json(i, registry))
        .collect();
    (
        headers,
        Json(json!({ "name": name, "instances": list, "applied_index": published.applied_index })),
    )
        .into_response()
}
