//! The writes of Consul's agent API: `PUT /v1/agent/service/register` (Consul's body, its
//! `Check`/`Checks` mapped onto vigil probes), `/v1/agent/service/deregister/{id}`,
//! `/v1/agent/check/pass|warn|fail/{check_id}` (`?note=`), `/v1/agent/check/update/{check_id}`,
//! `/v1/agent/service/maintenance/{id}` and `/v1/agent/maintenance` (`?enable=&reason=`).
//!
//! Each is carried out by the vigil endpoint that does the same — the registration, TTL and
//! maintenance paths of the native API — on a request built for it, so it is validated,
//! passed on and committed exactly as a native one. Consul decodes JSON keys case-insensitively
//! and clients rely on it (python-consul sends `check`, `tcp`, `ttl`), so keys are compared
//! lowercased with underscores dropped.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use vigil_cluster::raft::{Command, ServiceInstance};

use super::read::{consul_check_id, ConsulQuery};
use crate::error::ApiError;
use crate::forward::Incoming;
use crate::services::commit;
use crate::{instance_checks, maintenance, services, wire, Api};

/// How long a registration waits for this agent's copy of the registry to show it.
const REGISTERED_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// A registration as Consul's agent takes it (keys normalised, see the module comment).
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ConsulRegistration))]
pub(crate) struct Registration {
    id: Option<String>,
    name: String,
    #[serde(default)]
    tags: Vec<String>,
    address: Option<String>,
    port: Option<u16>,
    check: Option<Check>,
    #[serde(default)]
    checks: Vec<Check>,
}

/// A check of a registration: one of `HTTP`, `TCP`, `GRPC`, `TTL`, `Args` (or the old
/// `Script`), with its interval and timeout.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ConsulRegistrationCheck))]
pub(crate) struct Check {
    checkid: Option<String>,
    http: Option<String>,
    tcp: Option<String>,
    grpc: Option<String>,
    ttl: Option<String>,
    args: Option<Vec<String>>,
    script: Option<String>,
    interval: Option<String>,
    timeout: Option<String>,
    deregistercriticalserviceafter: Option<String>,
}

/// `value` with every object key lowercased and its underscores dropped.
fn normalised(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.to_lowercase().replace('_', ""), normalised(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalised).collect()),
        other => other,
    }
}

/// `argv` as one `exec:` command line, each word quoted for the shell-words split.
fn command_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The vigil check definition of Consul check `check`, named `name`.
fn check_definition(check: &Check, name: String) -> Result<Map<String, Value>, ApiError> {
    let probe = match (
        &check.http,
        &check.tcp,
        &check.grpc,
        &check.ttl,
        &check.args,
        &check.script,
    ) {
        (Some(url), ..) => url.clone(),
        (_, Some(address), ..) => format!("tcp://{address}"),
        (_, _, Some(target), ..) => format!("grpc://{target}"),
        (_, _, _, Some(_), ..) => "ttl".to_owned(),
        (_, _, _, _, Some(argv), _) if !argv.is_empty() => format!("exec:{}", command_line(argv)),
        (_, _, _, _, _, Some(script)) => {
            format!("exec:sh -c {}", command_line(std::slice::from_ref(script)))
        }
        _ => {
            return Err(ApiError::bad_request(format!(
                "check {name:?}: one of HTTP, TCP, GRPC, TTL or Args is needed"
            )))
        }
    };
    let mut body = Map::new();
    body.insert("name".into(), name.into());
    body.insert("probe".into(), probe.into());
    if let Some(ttl) = &check.ttl {
        body.insert("ttl".into(), ttl.clone().into());
    }
    if check.ttl.is_none() {
        let interval = check.interval.clone().unwrap_or_else(|| "10s".to_owned());
        body.insert("interval".into(), interval.into());
    }
    if let Some(timeout) = &check.timeout {
        body.insert("timeout".into(), timeout.clone().into());
    }
    Ok(body)
}

/// The vigil registration of Consul's body, on `node`.
fn registration(
    body: &[u8],
    node: &str,
    local_address: String,
) -> Result<wire::Registration, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body must be a JSON object: {e}")))?;
    let asked: Registration = serde_json::from_value(normalised(value))
        .map_err(|e| ApiError::bad_request(format!("not a Consul service registration: {e}")))?;
    let id = asked.id.clone().unwrap_or_else(|| asked.name.clone());
    let consul_checks: Vec<&Check> = asked.check.iter().chain(asked.checks.iter()).collect();
    let several = consul_checks.len() > 1;
    let mut checks = Vec::new();
    let mut deregister_after = None;
    for (n, check) in consul_checks.iter().enumerate() {
        // Consul's own default check ids: `service:ID`, or `service:ID:N` for several.
        let name = check.checkid.clone().unwrap_or_else(|| {
            if several {
                format!("service:{id}:{}", n + 1)
            } else {
                format!("service:{id}")
            }
        });
        checks.push(check_definition(check, name)?);
        deregister_after = deregister_after.or(check.deregistercriticalserviceafter.clone());
    }
    Ok(wire::Registration {
        name: asked.name,
        id,
        address: asked
            .address
            .filter(|a| !a.is_empty())
            .unwrap_or(local_address),
        port: asked.port.unwrap_or(0),
        tags: asked.tags,
        node: Some(node.to_owned()),
        ephemeral: false,
        checks: Some(checks),
        deregister_critical_after: deregister_after,
    })
}

/// A request to the native endpoint `method path`, carrying this agent's own token (the Consul
/// token was checked already) to wherever it is passed on.
fn native(api: &Api, method: Method, path: &str, body: Bytes) -> Incoming {
    let mut headers = HeaderMap::new();
    if let Some(bearer) = api.token.bearer() {
        headers.insert(header::AUTHORIZATION, bearer);
    }
    headers.insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("a valid header"),
    );
    Incoming {
        method,
        uri: Uri::try_from(path).unwrap_or_default(),
        headers,
        body,
    }
}

/// Consul's success: 200 with an empty body. A native error is passed on as it is.
fn consul_answer(native: Response) -> Response {
    if native.status().is_success() {
        StatusCode::OK.into_response()
    } else {
        native
    }
}

/// Commits `command` as the native endpoint of `request` would, answering as Consul does.
async fn commit_as_consul(api: &Api, command: Command, request: &Incoming) -> Response {
    match commit(api, command, request).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(answer) => consul_answer(answer),
    }
}

/// `PUT /v1/agent/service/register`.
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/v1/agent/service/register", tag = "consul",
    request_body(content = Registration, description = "Consul's service definition; keys are read case-insensitively, as Consul reads them (`Name`, `ID`, `Tags`, `Address`, `Port`, `Check`, `Checks`)"),
    security(("token" = [])),
    responses(
        (status = 200, description = "Done: an empty body, as Consul answers"),
        (status = 400, description = "Not a Consul service registration, or a check vigil cannot run", body = crate::wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = crate::wire::ErrorBody),
        (status = 429, description = "The node holds as many instances as it may", body = crate::wire::ErrorBody),
        (status = 503, description = "No quorum", body = crate::wire::ErrorBody),
    )))]
pub async fn register(State(api): State<Api>, body: Bytes) -> Response {
    let node = api.engine.snapshot().node_id().to_owned();
    let local_address = api
        .cluster
        .as_ref()
        .and_then(|c| c.view().local().map(|m| m.addr.ip().to_string()))
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    let registration = match registration(&body, &node, local_address) {
        Ok(registration) => registration,
        Err(e) => return e.into_response(),
    };
    let body = match serde_json::to_vec(&registration) {
        Ok(body) => Bytes::from(body),
        Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
    };
    let request = native(&api, Method::POST, "/v1/services", body.clone());
    let answer = consul_answer(services::register(State(api.clone()), request, body).await);
    if answer.status().is_success() {
        // Consul's agent holds what it registered at once: the next call to this agent (a TTL
        // update, a read) must find it, so wait for this agent's copy to show it.
        if let Some(catalog) = &api.catalog {
            let (name, id) = (&registration.name, &registration.id);
            catalog
                .after(0, REGISTERED_WITHIN, |p| {
                    let known = p
                        .registry
                        .services
                        .get(name)
                        .is_some_and(|of| of.contains_key(id));
                    u64::from(known)
                })
                .await;
        }
    }
    answer
}

/// The instance with id `id` on this agent's node.
fn local_instance(api: &Api, id: &str) -> Option<ServiceInstance> {
    let node = api.engine.snapshot().node_id().to_owned();
    let current = api.catalog.as_ref()?.current();
    let found = current
        .registry
        .instances()
        .find(|i| i.id == id && i.node == node)
        .cloned();
    found
}

/// `PUT /v1/agent/service/deregister/{id}`.
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/v1/agent/service/deregister/{id}", tag = "consul",
    params(("id" = String, Path, description = "The instance, registered on this agent")),
    security(("token" = [])),
    responses(
        (status = 200, description = "Done: an empty body, as Consul answers"),
        (status = 401, description = "No or a wrong token", body = crate::wire::ErrorBody),
        (status = 404, description = "No such instance on this agent", body = crate::wire::ErrorBody),
        (status = 503, description = "No quorum", body = crate::wire::ErrorBody),
    )))]
pub async fn deregister(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let Some(instance) = local_instance(&api, &id) else {
        return ApiError::not_found(format!("Unknown service ID {id:?}")).into_response();
    };
    let path = format!("/v1/services/{}/{}", instance.name, instance.id);
    let request = native(&api, Method::DELETE, &path, Bytes::new());
    let command = Command::Deregister {
        name: instance.name,
        id: instance.id,
    };
    commit_as_consul(&api, command, &request).await
}

/// `PUT /v1/agent/check/{pass|warn|fail}/{check_id}[?note=]`.
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/v1/agent/check/{verdict}/{check_id}", tag = "consul",
    params(("verdict" = String, Path, description = "`pass`, `warn` or `fail`"),
        ("check_id" = String, Path, description = "A TTL check of an instance on this agent"),
        ("note" = Option<String>, Query, description = "The check's new output")),
    security(("token" = [])),
    responses(
        (status = 200, description = "Done: an empty body, as Consul answers"),
        (status = 400, description = "A bad query or note", body = crate::wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = crate::wire::ErrorBody),
        (status = 404, description = "No such check on this agent, or an unknown verdict", body = crate::wire::ErrorBody),
        (status = 503, description = "The instance's node cannot be reached", body = crate::wire::ErrorBody),
    )))]
pub async fn check_update(
    State(api): State<Api>,
    Path((verdict, check_id)): Path<(String, String)>,
    parts: Parts,
) -> Response {
    let query = match ConsulQuery::of(&parts) {
        Ok(query) => query,
        Err(e) => return e.into_response(),
    };
    let note = query.value("note").unwrap_or_default().to_owned();
    ttl_verdict(&api, &verdict, &check_id, note).await
}

/// The body of `PUT /v1/agent/check/update/{check_id}` (keys normalised).
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ConsulCheckUpdate))]
pub(crate) struct CheckUpdate {
    status: String,
    #[serde(default)]
    output: String,
}

/// `PUT /v1/agent/check/update/{check_id}` with `{"Status": "passing|warning|critical",
/// "Output": "..."}`.
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/v1/agent/check/update/{check_id}", tag = "consul",
    params(("check_id" = String, Path, description = "A TTL check of an instance on this agent")),
    request_body(content = CheckUpdate, description = "`Status` (`passing`, `warning`, `critical`) and `Output`; keys read case-insensitively"),
    security(("token" = [])),
    responses(
        (status = 200, description = "Done: an empty body, as Consul answers"),
        (status = 400, description = "A malformed body or an unknown status", body = crate::wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = crate::wire::ErrorBody),
        (status = 404, description = "No such check on this agent", body = crate::wire::ErrorBody),
        (status = 503, description = "The instance's node cannot be reached", body = crate::wire::ErrorBody),
    )))]
pub async fn check_status(
    State(api): State<Api>,
    Path(check_id): Path<String>,
    body: Bytes,
) -> Response {
    let update = serde_json::from_slice::<Value>(&body)
        .map_err(|e| e.to_string())
        .and_then(|v| {
            serde_json::from_value::<CheckUpdate>(normalised(v)).map_err(|e| e.to_string())
        });
    let update = match update {
        Ok(update) => update,
        Err(e) => {
            return ApiError::bad_request(format!(
                "the body must be {{\"Status\": \"passing|warning|critical\", \"Output\": \"...\"}}: {e}"
            ))
            .into_response()
        }
    };
    let verdict = match update.status.as_str() {
        "passing" => "pass",
        "warning" => "warn",
        "critical" => "fail",
        other => {
            return ApiError::bad_request(format!(
                "Status {other:?} is none of passing, warning, critical"
            ))
            .into_response()
        }
    };
    ttl_verdict(&api, verdict, &check_id, update.output).await
}

/// Gives TTL check `check_id` of an instance on this agent's node the verdict `pass`, `warn` or
/// `fail`, with `note` as its output.
async fn ttl_verdict(api: &Api, verdict: &str, check_id: &str, note: String) -> Response {
    let node = api.engine.snapshot().node_id().to_owned();
    let Some(current) = api.catalog.as_ref().map(|c| c.current()) else {
        return ApiError::not_found("this node is not in a cluster").into_response();
    };
    let found = current
        .registry
        .instances()
        .filter(|i| i.node == node)
        .find_map(|i| {
            i.checks
                .keys()
                .find(|name| *name == check_id || consul_check_id(i, name) == check_id)
                .map(|name| (i.clone(), name.clone()))
        });
    let Some((instance, check)) = found else {
        return ApiError::not_found(format!("Unknown check ID {check_id:?}")).into_response();
    };
    let note = Bytes::from(note);
    let path = format!("/v1/services/{}/{}/{verdict}", instance.name, instance.id);
    let request = native(api, Method::PUT, &path, note.clone());
    let answer = instance_checks::ttl_update(
        api,
        &instance.name,
        &instance.id,
        verdict,
        Some(&check),
        request,
        note,
    )
    .await;
    match answer {
        Ok(answer) | Err(answer) => consul_answer(answer),
    }
}

/// Consul's `?enable=true|false[&reason=]`: the reason to record (`default` when none is given)
/// or `None` to leave maintenance.
fn maintenance_asked(parts: &Parts, default: &str) -> Result<Option<String>, ApiError> {
    let query = ConsulQuery::of(parts)?;
    let enable = match query
        .value("enable")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("true") => true,
        Some("false") => false,
        _ => {
            return Err(ApiError::bad_request(
                "enable: \"true\" or \"false\" is needed",
            ))
        }
    };
    let reason = query
        .value("reason")
        .filter(|r| !r.is_empty())
        .unwrap_or(default);
    if reason.len() > maintenance::MAX_REASON {
        return Err(ApiError::bad_request(format!(
            "reason: {} bytes, at most {}",
            reason.len(),
            maintenance::MAX_REASON
        )));
    }
    Ok(enable.then(|| reason.to_owned()))
}

/// Commits a maintenance `command` that records `reason` (`None`: leave maintenance), on behalf
/// of the native request to `path` (PUT with the reason to enter, DELETE to leave), and answers
/// as Consul does.
async fn commit_maintenance(
    api: &Api,
    path: &str,
    command: Command,
    reason: Option<String>,
) -> Response {
    let request = match reason {
        Some(reason) => {
            let body = wire::MaintenanceRequest {
                reason: Some(reason),
            };
            let body = serde_json::to_vec(&body).unwrap_or_default();
            native(api, Method::PUT, path, Bytes::from(body))
        }
        None => native(api, Method::DELETE, path, Bytes::new()),
    };
    commit_as_consul(api, command, &request).await
}

/// `PUT /v1/agent/service/maintenance/{id}?enable=true|false[&reason=]`.
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/v1/agent/service/maintenance/{id}", tag = "consul",
    params(("id" = String, Path, description = "The instance, registered on this agent"),
        ("enable" = String, Query, description = "`true` or `false`"),
        ("reason" = Option<String>, Query, description = "Why (at most 1,024 bytes)")),
    security(("token" = [])),
    responses(
        (status = 200, description = "Done: an empty body, as Consul answers"),
        (status = 400, description = "No `enable`, or a reason over 1,024 bytes", body = crate::wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = crate::wire::ErrorBody),
        (status = 404, description = "No such instance on this agent", body = crate::wire::ErrorBody),
        (status = 503, description = "No quorum", body = crate::wire::ErrorBody),
    )))]
pub async fn maintenance(State(api): State<Api>, Path(id): Path<String>, parts: Parts) -> Response {
    let reason = match maintenance_asked(&parts, "Maintenance mode is enabled for this service") {
        Ok(reason) => reason,
        Err(e) => return e.into_response(),
    };
    let Some(instance) = local_instance(&api, &id) else {
        return ApiError::not_found(format!("Unknown service ID {id:?}")).into_response();
    };
    let path = format!("/v1/services/{}/{}/maintenance", instance.name, instance.id);
    let command = Command::Maintenance {
        name: instance.name,
        id: instance.id,
        reason: reason.clone(),
    };
    commit_maintenance(&api, &path, command, reason).await
}

/// `PUT /v1/agent/maintenance?enable=true|false[&reason=]`: this agent's node, with every
/// instance on it.
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/v1/agent/maintenance", tag = "consul",
    params(("enable" = String, Query, description = "`true` or `false`"),
        ("reason" = Option<String>, Query, description = "Why (at most 1,024 bytes)")),
    security(("token" = [])),
    responses(
        (status = 200, description = "Done: an empty body, as Consul answers"),
        (status = 400, description = "No `enable`, or a reason over 1,024 bytes", body = crate::wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = crate::wire::ErrorBody),
        (status = 503, description = "No quorum", body = crate::wire::ErrorBody),
    )))]
pub async fn node_maintenance(State(api): State<Api>, parts: Parts) -> Response {
    let reason = match maintenance_asked(&parts, "Maintenance mode is enabled for this node") {
        Ok(reason) => reason,
        Err(e) => return e.into_response(),
    };
    let node = api.engine.snapshot().node_id().to_owned();
    let path = format!("/v1/members/{node}/maintenance");
    let command = Command::NodeMaintenance {
        node,
        reason: reason.clone(),
    };
    commit_maintenance(&api, &path, command, reason).await
}
