//! Elections and locks for users' services, on sessions:
//! `POST /v1/elections/{name}/campaign`, `POST /v1/elections/{name}/resign`,
//! `GET /v1/elections[/{name}]`, and `POST /v1/locks/{name}`, `POST /v1/locks/{name}/release`,
//! `GET /v1/locks[/{name}]`.
//!
//! A campaign does not block: the candidate joins the election and the answer says whether it
//! leads now, with its fencing token. A candidate that waits watches the election with a
//! blocking `GET ?index=&wait=` (or `election_changed` events) until it leads. Reads come from
//! this agent's copy of the registry, like discovery; campaigns and resignations commit through
//! Raft on the leader, and without a quorum fail at once with 503 `no quorum`.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use vigil_cluster::raft::{Campaign, Command, Policy, Registry, Role, RoleKind};

use crate::catalog::{index_header, Blocking};
use crate::error::ApiError;
use crate::forward::Incoming;
use crate::instance_checks::now_ms;
use crate::leader::{ms_rfc3339, VoterRead};
use crate::services::{commit, name_problem};
use crate::sessions::refused;
use crate::{auth, wire, Api};

/// Longest `value` a candidate publishes, in bytes.
const MAX_VALUE: usize = 1024;

/// The election and lock routes, on a node in a cluster; all but the reads need the token.
pub(crate) fn routes(api: &Api) -> Router {
    if api.cluster.is_none() {
        return Router::new();
    }
    Router::new()
        .route("/v1/elections", get(list_elections))
        .route("/v1/elections/{name}", get(election))
        .route(
            "/v1/elections/{name}/campaign",
            auth::guarded(&api.token, post(campaign)),
        )
        .route(
            "/v1/elections/{name}/resign",
            auth::guarded(&api.token, post(resign)),
        )
        .route("/v1/locks", get(list_locks))
        .route(
            "/v1/locks/{name}",
            get(lock).merge(auth::guarded(&api.token, post(acquire))),
        )
        .route(
            "/v1/locks/{name}/release",
            auth::guarded(&api.token, post(release)),
        )
        .with_state(api.clone())
}

/// The body of `role` named `name`.
pub(crate) fn role_body(kind: RoleKind, name: &str, role: &Role) -> wire::RoleBody {
    let holders: Vec<wire::RoleHolder> = role
        .holders()
        .into_iter()
        .map(|(id, c, held)| wire::RoleHolder {
            id: id.clone(),
            session: c.session.clone(),
            since: ms_rfc3339(held.since_ms).unwrap_or_default(),
            token: held.token,
            value: c.value.clone(),
            yielding: held.yielding,
        })
        .collect();
    let candidate = |id: &String, c: &vigil_cluster::raft::Candidate| wire::RoleCandidate {
        holding: c.held.is_some(),
        id: id.clone(),
        session: c.session.clone(),
        value: c.value.clone(),
    };
    let candidates = role
        .holders()
        .into_iter()
        .map(|(id, c, _)| candidate(id, c))
        .chain(role.waiting().into_iter().map(|(id, c)| candidate(id, c)))
        .collect();
    wire::RoleBody {
        candidates,
        leader: (kind == RoleKind::Election)
            .then(|| holders.first().cloned())
            .flatten(),
        holders,
        index: role.index,
        kind: kind.as_str().to_owned(),
        limit: role.limit,
        name: name.to_owned(),
        policy: role.policy.as_str().to_owned(),
        preempt: role.preempt,
    }
}

/// The index a blocking read of role `name` waits on: the role's own, or — for a role that is
/// not there — the last change to any.
fn role_index(registry: &Registry, kind: RoleKind, name: &str) -> u64 {
    let coordination = &registry.coordination;
    coordination
        .roles(kind)
        .get(name)
        .map_or(coordination.index, |role| role.index)
}

/// The parameters of a role read: a blocking query, or a consistent read.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct RoleQuery {
    /// Answer once the role's index passes this one (or at the wait).
    index: Option<u64>,
    /// How long to wait for a change (`30s`, `5m`; at most 10m; default 5m).
    wait: Option<String>,
    /// Read on the leader once a majority confirmed it (any value but `false`): the answer
    /// reflects every campaign and resignation acknowledged before it.
    consistent: Option<String>,
}

/// A role read: from this agent's copy, once its index passes `?index=` when one is given; or,
/// with `?consistent`, on the leader after a majority confirmed it.
async fn read(
    api: &Api,
    kind: RoleKind,
    name: String,
    query: RoleQuery,
    mut parts: Parts,
) -> Response {
    let Some(catalog) = &api.catalog else {
        return ApiError::not_found("this node is not in a cluster").into_response();
    };
    let blocking = Blocking {
        index: query.index,
        wait: query.wait,
    };
    let consistent = query.consistent.as_deref().is_some_and(|v| v != "false");
    let published = match blocking.parse_for(&parts) {
        Err(e) => return e.into_response(),
        Ok(_) if consistent => match VoterRead::from_request_parts(&mut parts, api).await {
            Ok(read) => read.published,
            Err(answer) => return answer,
        },
        Ok(Some((index, wait))) => {
            catalog
                .after(index, wait, |p| role_index(&p.registry, kind, &name))
                .await
        }
        Ok(None) => catalog.current(),
    };
    let registry = &published.registry;
    let headers = index_header(role_index(registry, kind, &name));
    match registry.coordination.roles(kind).get(&name) {
        Some(role) => (headers, Json(role_body(kind, &name, role))).into_response(),
        None => (
            headers,
            ApiError::not_found(format!(
                "no {} {name:?}: nobody campaigns in it",
                kind.as_str()
            )),
        )
            .into_response(),
    }
}

fn list(api: &Api, kind: RoleKind) -> Response {
    let current = api.catalog.as_ref().map(|c| c.current());
    let (index, roles) = current.as_ref().map_or((0, Vec::new()), |p| {
        let coordination = &p.registry.coordination;
        let roles = coordination
            .roles(kind)
            .iter()
            .map(|(name, role)| role_body(kind, name, role))
            .collect();
        (coordination.index, roles)
    });
    (index_header(index), Json(wire::RoleList { index, roles })).into_response()
}

/// The JSON request in `body`, or a 400 that shows `shape`.
fn parse<T: DeserializeOwned>(body: &[u8], shape: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body must be JSON {shape}: {e}")))
}

fn check_value(value: &str) -> Result<(), ApiError> {
    if value.len() > MAX_VALUE {
        return Err(ApiError::bad_request(format!(
            "value: {} bytes, at most {MAX_VALUE}",
            value.len()
        )));
    }
    Ok(())
}

fn check_names(pairs: &[(&str, &str)]) -> Result<(), ApiError> {
    match pairs
        .iter()
        .find_map(|(what, value)| name_problem(what, value))
    {
        Some(problem) => Err(ApiError::bad_request(problem)),
        None => Ok(()),
    }
}

/// Commits `campaign` and answers with the role as the leader holds it afterwards.
async fn join(api: &Api, campaign: Campaign, request: &Incoming) -> Response {
    match commit(api, Command::Campaign(campaign.clone()), request).await {
        Ok(applied) => match applied.refused {
            Some(refusal) => refused(refusal),
            None => {
                let current = api.catalog.as_ref().map(|c| c.current());
                let role = current.as_ref().and_then(|p| {
                    p.registry
                        .coordination
                        .roles(campaign.kind)
                        .get(&campaign.role)
                        .map(|role| (role, role_body(campaign.kind, &campaign.role, role)))
                });
                let Some((role, body)) = role else {
                    return ApiError::not_found(format!(
                        "{} {:?} ended as it was joined",
                        campaign.kind.as_str(),
                        campaign.role
                    ))
                    .into_response();
                };
                let held = role
                    .candidates
                    .get(&campaign.candidate)
                    .and_then(|c| c.held.as_ref());
                let headers = index_header(role.index);
                let result = wire::CampaignResult {
                    holding: held.is_some(),
                    role: body,
                    token: held.map(|h| h.token),
                };
                (headers, Json(result)).into_response()
            }
        },
        Err(answer) => answer,
    }
}

/// Commits a resignation and answers with the role as it is afterwards.
async fn leave(
    api: &Api,
    kind: RoleKind,
    role: String,
    candidate: String,
    session: String,
    request: &Incoming,
) -> Response {
    let command = Command::Resign {
        kind,
        role: role.clone(),
        candidate,
        session,
        at_ms: now_ms(),
    };
    match commit(api, command, request).await {
        Ok(applied) => match applied.refused {
            Some(refusal) => refused(refusal),
            None => {
                let current = api.catalog.as_ref().map(|c| c.current());
                let body = current.as_ref().and_then(|p| {
                    p.registry
                        .coordination
                        .roles(kind)
                        .get(&role)
                        .map(|r| role_body(kind, &role, r))
                });
                Json(wire::Resigned {
                    role: body,
                    name: role,
                })
                .into_response()
            }
        },
        Err(answer) => answer,
    }
}

/// `GET /v1/elections`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/elections", tag = "coordination",
    responses((status = 200, description = "Every election with a candidate", body = wire::RoleList,
        headers(("x-vigil-index" = u64))))))]
pub async fn list_elections(State(api): State<Api>) -> Response {
    list(&api, RoleKind::Election)
}

/// `GET /v1/elections/{name}[?index=&wait=]`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/elections/{name}", tag = "coordination",
    params(("name" = String, Path, description = "The election"), RoleQuery),
    responses(
        (status = 200, description = "The leader, its token and the candidates", body = wire::RoleBody,
            headers(("x-vigil-index" = u64))),
        (status = 400, description = "A bad `wait`", body = wire::ErrorBody),
        (status = 404, description = "Nobody campaigns in it", body = wire::ErrorBody),
        (status = 503, description = "No quorum (`?consistent`)", body = wire::ErrorBody),
    )))]
pub async fn election(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(query): Query<RoleQuery>,
    parts: Parts,
) -> Response {
    read(&api, RoleKind::Election, name, query, parts).await
}

/// `POST /v1/elections/{name}/campaign`.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/v1/elections/{name}/campaign", tag = "coordination",
    params(("name" = String, Path, description = "The election")),
    request_body = wire::CampaignRequest,
    security(("token" = [])),
    responses(
        (status = 200, description = "A candidate now: leading (with its token) or waiting", body = wire::CampaignResult,
            headers(("x-vigil-index" = u64))),
        (status = 400, description = "A malformed body, a bad name, id, value or policy, an unknown session", body = wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 404, description = "The election ended as it was joined", body = wire::ErrorBody),
        (status = 409, description = "The id is taken by another session, the election runs with other settings, or the session is invalidated", body = wire::ErrorBody),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
pub async fn campaign(
    State(api): State<Api>,
    Path(name): Path<String>,
    request: Incoming,
    body: Bytes,
) -> Response {
    let asked: wire::CampaignRequest = match parse(
        &body,
        r#"{"candidate": "ID", "session": "SESSION", "value": "...", "policy": "first|lowest-id", "preempt": false}"#,
    ) {
        Ok(asked) => asked,
        Err(e) => return e.into_response(),
    };
    let policy = match asked.policy.as_deref() {
        None | Some("first") => Policy::First,
        Some("lowest-id") => Policy::LowestId,
        Some(other) => {
            return ApiError::bad_request(format!(
                "policy: {other:?} is neither \"first\" nor \"lowest-id\""
            ))
            .into_response()
        }
    };
    let value = asked.value.unwrap_or_default();
    if let Err(e) = check_names(&[
        ("election name", &name),
        ("candidate", &asked.candidate),
        ("session", &asked.session),
    ])
    .and_then(|()| check_value(&value))
    {
        return e.into_response();
    }
    let campaign = Campaign {
        kind: RoleKind::Election,
        role: name,
        candidate: asked.candidate,
        session: asked.session,
        value,
        policy,
        preempt: asked.preempt.unwrap_or(false),
        limit: 1,
        at_ms: now_ms(),
    };
    join(&api, campaign, &Incoming { body, ..request }).await
}

/// `POST /v1/elections/{name}/resign`.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/v1/elections/{name}/resign", tag = "coordination",
    params(("name" = String, Path, description = "The election")),
    request_body = wire::ResignRequest,
    security(("token" = [])),
    responses(
        (status = 200, description = "No longer a candidate; the next one leads", body = wire::Resigned),
        (status = 400, description = "A malformed body or an unknown session", body = wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 409, description = "No such candidate with that session", body = wire::ErrorBody),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
pub async fn resign(
    State(api): State<Api>,
    Path(name): Path<String>,
    request: Incoming,
    body: Bytes,
) -> Response {
    let asked: wire::ResignRequest =
        match parse(&body, r#"{"candidate": "ID", "session": "SESSION"}"#) {
            Ok(asked) => asked,
            Err(e) => return e.into_response(),
        };
    let Some(candidate) = asked.candidate else {
        return ApiError::bad_request("candidate: missing").into_response();
    };
    let request = Incoming { body, ..request };
    leave(
        &api,
        RoleKind::Election,
        name,
        candidate,
        asked.session,
        &request,
    )
    .await
}

/// `GET /v1/locks`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/locks", tag = "coordination",
    responses((status = 200, description = "Every lock held or asked for", body = wire::RoleList,
        headers(("x-vigil-index" = u64))))))]
pub async fn list_locks(State(api): State<Api>) -> Response {
    list(&api, RoleKind::Lock)
}

/// `GET /v1/locks/{name}[?index=&wait=]`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/locks/{name}", tag = "coordination",
    params(("name" = String, Path, description = "The lock"), RoleQuery),
    responses(
        (status = 200, description = "The holders, their tokens and who waits", body = wire::RoleBody,
            headers(("x-vigil-index" = u64))),
        (status = 400, description = "A bad `wait`", body = wire::ErrorBody),
        (status = 404, description = "Nobody holds or asks for it", body = wire::ErrorBody),
        (status = 503, description = "No quorum (`?consistent`)", body = wire::ErrorBody),
    )))]
pub async fn lock(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(query): Query<RoleQuery>,
    parts: Parts,
) -> Response {
    read(&api, RoleKind::Lock, name, query, parts).await
}

/// `POST /v1/locks/{name}`.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/v1/locks/{name}", tag = "coordination",
    params(("name" = String, Path, description = "The lock")),
    request_body = wire::LockRequest,
    security(("token" = [])),
    responses(
        (status = 200, description = "Held now (with its token) or waiting in line", body = wire::CampaignResult,
            headers(("x-vigil-index" = u64))),
        (status = 400, description = "A malformed body, a bad name or limit, an unknown session", body = wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 404, description = "The lock ended as it was asked for", body = wire::ErrorBody),
        (status = 409, description = "The holder name is taken by another session, the lock has another limit, or the session is invalidated", body = wire::ErrorBody),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
pub async fn acquire(
    State(api): State<Api>,
    Path(name): Path<String>,
    request: Incoming,
    body: Bytes,
) -> Response {
    let asked: wire::LockRequest = match parse(
        &body,
        r#"{"session": "SESSION", "candidate": "NAME", "value": "...", "limit": 1}"#,
    ) {
        Ok(asked) => asked,
        Err(e) => return e.into_response(),
    };
    let limit = asked.limit.unwrap_or(1);
    let most = u32::try_from(vigil_cluster::raft::MAX_CANDIDATES).unwrap_or(u32::MAX);
    if !(1..=most).contains(&limit) {
        return ApiError::bad_request(format!("limit: {limit}, not within 1 to {most}"))
            .into_response();
    }
    let candidate = asked.candidate.unwrap_or_else(|| asked.session.clone());
    let value = asked.value.unwrap_or_default();
    if let Err(e) = check_names(&[
        ("lock name", &name),
        ("candidate", &candidate),
        ("session", &asked.session),
    ])
    .and_then(|()| check_value(&value))
    {
        return e.into_response();
    }
    let campaign = Campaign {
        kind: RoleKind::Lock,
        role: name,
        candidate,
        session: asked.session,
        value,
        policy: Policy::First,
        preempt: false,
        limit,
        at_ms: now_ms(),
    };
    join(&api, campaign, &Incoming { body, ..request }).await
}

/// `POST /v1/locks/{name}/release`.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/v1/locks/{name}/release", tag = "coordination",
    params(("name" = String, Path, description = "The lock")),
    request_body = wire::ResignRequest,
    security(("token" = [])),
    responses(
        (status = 200, description = "Released (or no longer waiting); the next in line holds it", body = wire::Resigned),
        (status = 400, description = "A malformed body or an unknown session", body = wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 409, description = "No such holder with that session", body = wire::ErrorBody),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
pub async fn release(
    State(api): State<Api>,
    Path(name): Path<String>,
    request: Incoming,
    body: Bytes,
) -> Response {
    let asked: wire::ResignRequest =
        match parse(&body, r#"{"session": "SESSION", "candidate": "NAME"}"#) {
            Ok(asked) => asked,
            Err(e) => return e.into_response(),
        };
    let candidate = asked.candidate.unwrap_or_else(|| asked.session.clone());
    let request = Incoming { body, ..request };
    leave(
        &api,
        RoleKind::Lock,
        name,
        candidate,
        asked.session,
        &request,
    )
    .await
}
