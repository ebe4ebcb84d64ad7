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
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use tokio::sync::broadcast;
use vigil_cluster::raft::{
    Applied, CheckBody, CheckMap, Command, Instances, JsonObject, LeaderEvent, Registry,
    ServiceInstance, WriteError,
};

use crate::error::ApiError;
use crate::forward::{self, Incoming};
#[cfg(feature = "openapi")]
use crate::leader::ReadMode;
use crate::leader::VoterRead;
use crate::{auth, discovery, instance_checks, wire, Api};

/// The registry's routes, on a node in a cluster; registering and deregistering need the token.
pub(crate) fn routes(api: &Api) -> Router {
    if api.cluster.is_none() {
        return Router::new();
    }
    Router::new()
        .route(
            "/v1/services",
            get(list).merge(auth::guarded(&api.token, post(register))),
        )
        .route("/v1/services/{name}", get(discovery::get_service))
        .route(
            "/v1/services/{name}/{id}",
            auth::guarded(&api.token, delete(deregister)),
        )
        .with_state(api.clone())
}

const BODY_SHAPE: &str = "expected {\"name\": \"api\", \"id\": \"api-1\", \"address\": \"10.0.0.5\", \"port\": 8080, \"tags\": [], \"node\": \"<node id>\", \"ephemeral\": false}";

/// The key of a registration an error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationField {
    /// The registration as a whole: not an object, or a required key missing.
    Body,
    /// `name`.
    Name,
    /// `id`.
    Id,
    /// `address`.
    Address,
    /// `port`.
    Port,
    /// `tags`.
    Tags,
    /// `node`.
    Node,
    /// `ephemeral`.
    Ephemeral,
    /// `deregister_critical_after`.
    DeregisterCriticalAfter,
    /// `checks` as a whole: not a list of objects, or too many.
    Checks,
    /// One key (`probe`, `interval`, ...) of the check at `index` in `checks`.
    Check {
        /// The check's position in `checks`.
        index: usize,
        /// The key of that check at fault.
        key: String,
    },
    /// A key no registration has.
    Unknown(String),
}

impl RegistrationField {
    /// The field a top-level key of a registration stands for.
    fn of_key(key: &str) -> RegistrationField {
        match key {
            "name" => RegistrationField::Name,
            "id" => RegistrationField::Id,
            "address" => RegistrationField::Address,
            "port" => RegistrationField::Port,
            "tags" => RegistrationField::Tags,
            "node" => RegistrationField::Node,
            "ephemeral" => RegistrationField::Ephemeral,
            "deregister_critical_after" => RegistrationField::DeregisterCriticalAfter,
            "checks" => RegistrationField::Checks,
            other => RegistrationField::Unknown(other.to_owned()),
        }
    }

    /// The top-level key of the registration the field is in; `None` for the whole body.
    pub fn key(&self) -> Option<&str> {
        Some(match self {
            RegistrationField::Body => return None,
            RegistrationField::Name => "name",
            RegistrationField::Id => "id",
            RegistrationField::Address => "address",
            RegistrationField::Port => "port",
            RegistrationField::Tags => "tags",
            RegistrationField::Node => "node",
            RegistrationField::Ephemeral => "ephemeral",
            RegistrationField::DeregisterCriticalAfter => "deregister_critical_after",
            RegistrationField::Checks | RegistrationField::Check { .. } => "checks",
            RegistrationField::Unknown(key) => key,
        })
    }
}

/// Why a registration is refused: the key at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationError {
    /// The key at fault.
    pub field: RegistrationField,
    /// What is wrong, for people; a check's errors start with `checks[N].KEY: `.
    pub message: String,
    /// Whether the body's shape was refused (the API then shows the shape it expects).
    shape: bool,
}

impl RegistrationError {
    fn new(field: RegistrationField, message: impl Into<String>) -> Self {
        RegistrationError {
            field,
            message: message.into(),
            shape: false,
        }
    }
}

impl std::fmt::Display for RegistrationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RegistrationError {}

impl From<RegistrationError> for ApiError {
    fn from(error: RegistrationError) -> ApiError {
        if error.shape {
            ApiError::bad_request(format!("{} ({BODY_SHAPE})", error.message))
        } else {
            ApiError::bad_request(error.message)
        }
    }
}

fn check_name(field: RegistrationField, what: &str, value: &str) -> Result<(), RegistrationError> {
    match name_problem(what, value) {
        Some(problem) => Err(RegistrationError::new(field, problem)),
        None => Ok(()),
    }
}

/// What is wrong with `value` as a name or id (of a service, an instance, an election, a
/// candidate): 1 to 200 characters, no `/`, spaces or control characters.
pub(crate) fn name_problem(what: &str, value: &str) -> Option<String> {
    if value.is_empty() || value.len() > 200 {
        return Some(format!("{what} must be 1 to 200 characters long"));
    }
    if value
        .chars()
        .any(|c| c == '/' || c.is_control() || c.is_whitespace())
    {
        return Some(format!(
            "{what} {value:?} may not contain '/', spaces or control characters"
        ));
    }
    None
}

/// Commits `command` through Raft: on the leader here, or by passing the request on (a node
/// that is not a voter to a voter, a voter to the leader). `Err` is the answer to send as it
/// is: the one of the node the request was passed to, or 503 `no quorum`.
///
/// A leader that stops answering (paused, cut off) is replaced after its lease; a write that
/// replays safely and waits on it is then taken here or passed on to its successor, so the
/// client's request ends with the failover instead of the forwarding timeout.
pub(crate) async fn commit(
    api: &Api,
    command: Command,
    request: &Incoming,
) -> Result<Applied, Response> {
    let Some(leadership) = &api.leadership else {
        return Err(forward::to_a_voter(request, api.cluster.as_ref()).await);
    };
    let mut changes = leadership.subscribe();
    for _ in 0..SUCCESSORS_TRIED {
        match leadership.write(command.clone()).await {
            Ok(applied) => return Ok(applied),
            Err(WriteError::NotLeader {
                leader: Some(leader),
                api_address: Some(addr),
            }) if command.replays_safely() => {
                let why = format!("the leader is {leader}");
                tokio::select! {
                    answer = forward::forward(request, addr, &why) => return Err(answer),
                    () = successor(&mut changes, &leader) => {}
                }
            }
            Err(e) => return Err(write_failed(e, request).await),
        }
    }
    match leadership.write(command).await {
        Ok(applied) => Ok(applied),
        Err(e) => Err(write_failed(e, request).await),
    }
}

/// How many leaders in a row a write waiting on its leader follows to the next one.
const SUCCESSORS_TRIED: usize = 2;

/// Waits until another leader than `leader` takes office (forever if none does).
async fn successor(changes: &mut broadcast::Receiver<LeaderEvent>, leader: &str) {
    loop {
        match changes.recv().await {
            Ok(event) if event.leader_id.as_deref().is_some_and(|id| id != leader) => return,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// Most checks one instance may have.
pub const MAX_CHECKS_PER_INSTANCE: usize = 32;
/// Most instances one node may hold.
pub const MAX_INSTANCES_PER_NODE: usize = 10_000;
/// How often the default TCP check of an instance runs.
const DEFAULT_CHECK_INTERVAL: &str = "10s";

/// The instance a `POST /v1/services` body registers; its node is `local` when the body names
/// none.
fn parse_registration(body: &[u8], local: &str) -> Result<ServiceInstance, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid body: {e} ({BODY_SHAPE})")))?;
    Ok(validate_registration(value, local)?)
}

/// The instance a registration (a `POST /v1/services` body, or an agent's `[[services]]` entry
/// as JSON) stands for, validated as the registry and the agent of its node need it; its node
/// is `local` when it names none, and a registration without `checks` gets the default TCP
/// check of its address. This is the one validator of registrations: an error names the key at
/// fault.
pub fn validate_registration(
    value: serde_json::Value,
    local: &str,
) -> Result<ServiceInstance, RegistrationError> {
    // serde would say only "expected u16", not which field.
    if let Some(port) = value.get("port") {
        if !port.as_u64().is_some_and(|p| (1..=65535).contains(&p)) {
            return Err(RegistrationError::new(
                RegistrationField::Port,
                format!("port must be 1 to 65535, not {port}"),
            ));
        }
    }
    let r: wire::Registration =
        serde_json::from_value(value.clone()).map_err(|e| RegistrationError {
            field: blamed_key(&value, &e).map_or(RegistrationField::Body, |key| {
                RegistrationField::of_key(&key)
            }),
            message: format!("invalid body: {e}"),
            shape: true,
        })?;
    check_name(RegistrationField::Name, "name", &r.name)?;
    check_name(RegistrationField::Id, "id", &r.id)?;
    if r.address.trim().is_empty() {
        return Err(RegistrationError::new(
            RegistrationField::Address,
            "address is empty",
        ));
    }
    if r.port == 0 {
        return Err(RegistrationError::new(
            RegistrationField::Port,
            "port must be 1 to 65535",
        ));
    }
    let node = r.node.unwrap_or_else(|| local.to_owned());
    check_name(RegistrationField::Node, "node", &node)?;
    let deregister_critical_after_ms = r
        .deregister_critical_after
        .as_deref()
        .map(|text| {
            vigil_text::limits::DEREGISTER_CRITICAL_AFTER
                .parse(text)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .map_err(|e| {
                    RegistrationError::new(
                        RegistrationField::DeregisterCriticalAfter,
                        e.to_string(),
                    )
                })
        })
        .transpose()?;
    let checks = match r.checks {
        Some(checks) => checks,
        None => vec![default_check(&r.address, r.port)],
    };
    Ok(ServiceInstance {
        checks: named_checks(checks)?,
        name: r.name,
        id: r.id,
        address: r.address,
        port: r.port,
        tags: r.tags,
        node,
        ephemeral: r.ephemeral,
        deregister_critical_after_ms,
    })
}

/// The top-level key whose removal makes a registration serde refuses one it takes (or one it
/// refuses only for that key missing): serde's messages do not always name the key.
fn blamed_key(value: &serde_json::Value, error: &serde_json::Error) -> Option<String> {
    if error.to_string().starts_with("missing field") {
        return None;
    }
    let object = value.as_object()?;
    object.keys().find_map(|key| {
        let mut without = object.clone();
        without.remove(key);
        let cleared = match serde_json::from_value::<wire::Registration>(without.into()) {
            Ok(_) => true,
            Err(e) => e.to_string().contains(&format!("missing field `{key}`")),
        };
        cleared.then(|| key.clone())
    })
}

/// The registration that registers `instance` as it is, wherever it is parsed: what a node
/// passes on, with the node and the checks settled where the request came in.
fn registration_of(instance: &ServiceInstance) -> wire::Registration {
    wire::Registration {
        name: instance.name.clone(),
        id: instance.id.clone(),
        address: instance.address.clone(),
        port: instance.port,
        tags: instance.tags.clone(),
        node: Some(instance.node.clone()),
        ephemeral: instance.ephemeral,
        checks: Some(instance.checks.values().map(CheckBody::object).collect()),
        deregister_critical_after: instance
            .deregister_critical_after_ms
            .map(|ms| format!("{ms}ms")),
    }
}

/// The TCP check an instance gets when its registration names none.
fn default_check(address: &str, port: u16) -> JsonObject {
    let mut body = JsonObject::new();
    body.insert("name".into(), "tcp".into());
    body.insert(
        "probe".into(),
        format!("tcp://{}", discovery::dial_address(address, port)).into(),
    );
    body.insert("interval".into(), DEFAULT_CHECK_INTERVAL.into());
    body
}

/// The checks by name, each validated as the agent of its node will run it; a bad one is an
/// error that names it and its field.
fn named_checks(checks: Vec<JsonObject>) -> Result<CheckMap<CheckBody>, RegistrationError> {
    if checks.len() > MAX_CHECKS_PER_INSTANCE {
        return Err(RegistrationError::new(
            RegistrationField::Checks,
            format!("checks: at most {MAX_CHECKS_PER_INSTANCE} checks per instance"),
        ));
    }
    let mut named = CheckMap::new();
    for (i, mut body) in checks.into_iter().enumerate() {
        let at = |key: &str, message: String| {
            RegistrationError::new(
                RegistrationField::Check {
                    index: i,
                    key: key.to_owned(),
                },
                format!("checks[{i}].{key}: {message}"),
            )
        };
        let name = match body.get("name") {
            Some(serde_json::Value::String(name)) => name.clone(),
            Some(_) => return Err(at("name", "expected a string".to_owned())),
            None => format!("check-{}", i + 1),
        };
        body.insert("name".into(), name.clone().into());
        let body = CheckBody::new(&body);
        instance_checks::plan(&body, &name).map_err(|e| at(&e.field, e.message))?;
        if named.insert(name.clone(), body).is_some() {
            return Err(at("name", format!("a second check named {name:?}")));
        }
    }
    Ok(named)
}

/// Refuses an instance the cluster cannot run: checks on a node membership does not know, or
/// past the node's instance limit.
fn admissible(api: &Api, instance: &ServiceInstance) -> Result<(), ApiError> {
    let local = api.engine.snapshot().node_id().to_owned();
    if instance.node != local && !instance.checks.is_empty() {
        let known = api.cluster.as_ref().is_some_and(|c| {
            c.view()
                .member(&instance.node)
                .is_some_and(|m| m.state.is_active())
        });
        if !known {
            return Err(ApiError::bad_request(format!(
                "node: no live member {:?} to run the instance's checks; register it there, \
                 or with \"checks\": []",
                instance.node
            )));
        }
    }
    if let Some(catalog) = &api.catalog {
        let current = catalog.current();
        let registry = &current.registry;
        let replaces = registry
            .services
            .get(&instance.name)
            .is_some_and(|of| of.contains_key(&instance.id));
        let on_node = registry
            .instances()
            .filter(|i| i.node == instance.node)
            .count();
        if !replaces && on_node >= MAX_INSTANCES_PER_NODE {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "node {:?} already holds {MAX_INSTANCES_PER_NODE} instances, the most one node may",
                    instance.node
                ),
            ));
        }
    }
    Ok(())
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
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/v1/services", tag = "services",
    request_body = wire::Registration,
    security(("token" = [])),
    responses(
        (status = 201, description = "Registered", body = wire::Registered),
        (status = 200, description = "Already registered so", body = wire::Registered),
        (status = 400, description = "A malformed registration", body = wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
pub async fn register(State(api): State<Api>, request: Incoming, body: Bytes) -> Response {
    // The instance's node defaults to the node first asked, so it is settled before the
    // request is passed on.
    let local = api.engine.snapshot().node_id().to_owned();
    let instance = match parse_registration(&body, &local)
        .and_then(|instance| admissible(&api, &instance).map(|()| instance))
    {
        Ok(instance) => instance,
        Err(e) => return e.into_response(),
    };
    let request = Incoming {
        body: serde_json::to_vec(&registration_of(&instance))
            .map(Bytes::from)
            .unwrap_or(body),
        ..request
    };
    match commit(&api, Command::Register(instance.clone()), &request).await {
        Ok(applied) => {
            let code = if applied.changed {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let body = wire::Registered {
                registered: instance_body(&instance, None),
            };
            (code, Json(body)).into_response()
        }
        Err(answer) => answer,
    }
}

/// `DELETE /v1/services/{name}/{id}`.
#[cfg_attr(feature = "openapi", utoipa::path(delete, path = "/v1/services/{name}/{id}", tag = "services",
    params(("name" = String, Path, description = "The service"), ("id" = String, Path, description = "The instance")),
    security(("token" = [])),
    responses(
        (status = 200, description = "Deregistered", body = wire::Deregistered),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 404, description = "No such instance", body = wire::ErrorBody),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
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
        Ok(applied) if applied.removed > 0 => Json(wire::Deregistered {
            deregistered: wire::InstanceName { id, name },
        })
        .into_response(),
        Ok(_) => {
            ApiError::not_found(format!("no instance {id:?} of service {name:?}")).into_response()
        }
        Err(e) => write_failed(e, &request).await,
    }
}

/// An instance as the API shows it; with its state, its checks' and its node's health in
/// registry reads.
pub(crate) fn instance_body(
    instance: &ServiceInstance,
    registry: Option<&Registry>,
) -> wire::Instance {
    wire::Instance {
        address: instance.address.clone(),
        checks: registry.map(|r| checks_of(instance, r)),
        state: registry.map(|r| r.instance_state(instance)),
        ephemeral: instance.ephemeral,
        health: registry.map(|r| node_health(r, &instance.node)),
        id: instance.id.clone(),
        name: instance.name.clone(),
        node: instance.node.clone(),
        port: instance.port,
        tags: instance.tags.clone(),
    }
}

/// Each check of `instance` with its last recorded state.
fn checks_of(instance: &ServiceInstance, registry: &Registry) -> Vec<wire::InstanceCheck> {
    let recorded = registry.health_of(instance).map(|h| &h.checks);
    instance
        .checks
        .iter()
        .map(|(name, body)| {
            let report = recorded.and_then(|r| r.get(name));
            wire::InstanceCheck {
                name: name.clone(),
                output: report.map(|r| r.output.clone()).unwrap_or_default(),
                probe: body.probe().unwrap_or_default(),
                state: report.map_or(vigil_health::CheckState::Unknown, |r| r.state),
            }
        })
        .collect()
}

/// A node's last recorded health; `unknown` when it never reported.
fn node_health(registry: &Registry, node: &str) -> wire::NodeHealth {
    match registry.health.get(node) {
        Some(report) => wire::NodeHealth {
            score: Some(report.score),
            status: report.status.clone(),
        },
        None => wire::NodeHealth {
            score: None,
            status: "unknown".to_owned(),
        },
    }
}

/// Every instance of one service.
fn instances(of: &Instances, registry: &Registry) -> Vec<wire::Instance> {
    of.values()
        .map(|i| instance_body(i, Some(registry)))
        .collect()
}

/// `GET /v1/services[?consistent]`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/services", tag = "services",
    params(ReadMode),
    responses(
        (status = 200, description = "The registry, each instance with its node's health", body = wire::Services,
            headers(("x-vigil-stale-ms" = String), ("x-vigil-served-by" = String))),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
pub async fn list(
    VoterRead {
        published, headers, ..
    }: VoterRead,
) -> Response {
    let registry = &published.registry;
    let services = registry
        .services
        .iter()
        .map(|(name, of)| (name.clone(), instances(of, registry)))
        .collect();
    let nodes = registry
        .health
        .keys()
        .map(|node| (node.clone(), node_health(registry, node)))
        .collect();
    let body = wire::Services {
        applied_index: published.applied_index,
        nodes,
        services,
    };
    (headers, Json(body)).into_response()
}
