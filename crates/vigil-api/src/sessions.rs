//! Holders' sessions: `POST /v1/sessions` creates one, `PUT /v1/sessions/{id}/renew` keeps it,
//! `DELETE /v1/sessions/{id}` ends it, and `GET /v1/sessions/{id}/hold` ties it to a connection.
//!
//! A session ends when its holder ends it, when it is not renewed within its TTL, or — held —
//! when the connection of its `hold` request closes: a process that dies closes its sockets,
//! so a holder beside its agent is replaced at once instead of a TTL later. The cluster gives a
//! session up when the instance it follows turns critical or its node dies; renewals are then
//! refused with 409 and the reason. Ending a session withdraws every candidacy it has.
//!
//! Creating and ending commit through Raft; a renewal is answered by the leader once a majority
//! confirmed it, and only then counts (see `vigil_cluster::raft::Leadership::renew`).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures_util::{stream, StreamExt};
use tokio::sync::mpsc;
use tracing::info;
use vigil_cluster::raft::{Command, InstanceRef, Refusal, Registry, RenewError, Session};
use vigil_text::limits;

use crate::error::ApiError;
use crate::forward::{self, Incoming};
use crate::instance_checks::now_ms;
use crate::leader::ms_rfc3339;
use crate::services::{commit, name_problem, write_failed};
use crate::{auth, wire, Api};

/// The TTL of a session created without one.
const DEFAULT_TTL: &str = "10s";
/// Longest `holder` kept, in bytes.
const MAX_HOLDER: usize = 200;
/// How long a `hold` waits for a session this agent's copy of the registry does not show yet.
const HOLD_FIND: Duration = Duration::from_secs(5);
/// How often a `hold` stream writes a line: a closed connection is found by the next write at
/// the latest.
const HOLD_BEAT: Duration = Duration::from_millis(100);

/// The session routes, on a node in a cluster; all but the reads need the token.
pub(crate) fn routes(api: &Api) -> Router {
    if api.cluster.is_none() {
        return Router::new();
    }
    Router::new()
        .route(
            "/v1/sessions",
            get(list).merge(auth::guarded(&api.token, post(create))),
        )
        .route(
            "/v1/sessions/{id}",
            get(one).merge(auth::guarded(&api.token, axum::routing::delete(end))),
        )
        .route(
            "/v1/sessions/{id}/renew",
            auth::guarded(&api.token, put(renew)),
        )
        .route(
            "/v1/sessions/{id}/hold",
            auth::guarded(&api.token, get(hold)),
        )
        .with_state(api.clone())
}

/// The answer to a refused session or role command: 400 for a session that does not exist,
/// 409 for a conflict.
pub(crate) fn refused(refusal: Refusal) -> Response {
    let status = match refusal {
        Refusal::NoSession(_) => StatusCode::BAD_REQUEST,
        Refusal::Conflict(_) => StatusCode::CONFLICT,
    };
    ApiError::new(status, refusal.to_string()).into_response()
}

/// The creation request in `body` (empty: every default).
fn request_of(body: &[u8]) -> Result<wire::SessionRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(wire::SessionRequest::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be JSON {{\"holder\": \"...\", \"ttl\": \"10s\", \"instance\": \"SERVICE/ID\"}}: {e}"
        ))
    })
}

/// The session `request` asks for, validated, on `node`.
fn session_of(
    request: wire::SessionRequest,
    node: &str,
    registry: &Registry,
) -> Result<Session, ApiError> {
    let holder = request.holder.unwrap_or_default();
    if holder.len() > MAX_HOLDER || holder.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "holder: at most {MAX_HOLDER} bytes, no control characters"
        )));
    }
    let ttl = limits::SESSION_TTL
        .parse(request.ttl.as_deref().unwrap_or(DEFAULT_TTL))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let instance = match request.instance.as_deref() {
        None => None,
        Some(text) => {
            let Some((service, id)) = text.split_once('/') else {
                return Err(ApiError::bad_request(format!(
                    "instance: {text:?} is not SERVICE/ID"
                )));
            };
            if let Some(problem) = name_problem("instance: the service", service)
                .or_else(|| name_problem("instance: the id", id))
            {
                return Err(ApiError::bad_request(problem));
            }
            Some(InstanceRef {
                service: service.to_owned(),
                id: id.to_owned(),
            })
        }
    };
    let session = Session {
        id: format!("{:032x}", rand::random::<u128>()),
        holder,
        node: node.to_owned(),
        ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
        instance,
        created_ms: now_ms(),
        invalidated: None,
    };
    if let Some(problem) = registry.session_problem(&session) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("the session would be given up at once: {problem}"),
        ));
    }
    Ok(session)
}

/// `POST /v1/sessions`.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/v1/sessions", tag = "coordination",
    request_body(description = "Optional: `{\"holder\", \"ttl\", \"instance\"}`", content((Option<wire::SessionRequest> = "application/json"))),
    security(("token" = [])),
    responses(
        (status = 201, description = "Created", body = wire::SessionBody),
        (status = 400, description = "A malformed body, a TTL out of bounds, a bad instance", body = wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 409, description = "The instance is not registered, critical or in maintenance", body = wire::ErrorBody),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
pub async fn create(State(api): State<Api>, request: Incoming, body: Bytes) -> Response {
    let (Some(catalog), Some(cluster)) = (&api.catalog, &api.cluster) else {
        return ApiError::not_found("this node is not in a cluster").into_response();
    };
    let mut asked = match request_of(&body) {
        Ok(asked) => asked,
        Err(e) => return e.into_response(),
    };
    // The session's node defaults to the agent first asked, so it is settled before the
    // request is passed on.
    let node = asked
        .node
        .get_or_insert_with(|| api.engine.snapshot().node_id().to_owned())
        .clone();
    if cluster.view().member(&node).is_none() {
        return ApiError::bad_request(format!("node: no member {node:?} in the cluster"))
            .into_response();
    }
    let body = serde_json::to_vec(&asked).map(Bytes::from).unwrap_or(body);
    let session = match session_of(asked, &node, &catalog.current().registry) {
        Ok(session) => session,
        Err(e) => return e.into_response(),
    };
    let request = Incoming { body, ..request };
    match commit(&api, Command::SessionCreate(session.clone()), &request).await {
        Ok(applied) => match applied.refused {
            Some(refusal) => refused(refusal),
            None => {
                let registry = api.catalog.as_ref().map(|c| c.current());
                let body = registry
                    .as_ref()
                    .map(|p| session_body(&p.registry, &session))
                    .unwrap_or_else(|| session_body(&Registry::default(), &session));
                (StatusCode::CREATED, Json(body)).into_response()
            }
        },
        Err(answer) => answer,
    }
}

/// The body of `session` as `registry` holds it.
pub(crate) fn session_body(registry: &Registry, session: &Session) -> wire::SessionBody {
    let holds = registry
        .coordination
        .roles_of(&session.id)
        .into_iter()
        .map(|(kind, name, candidate, c)| wire::HeldRole {
            candidate: candidate.clone(),
            kind: kind.as_str().to_owned(),
            name: name.clone(),
            token: c.held.as_ref().map(|h| h.token),
            yielding: c.held.as_ref().is_some_and(|h| h.yielding),
        })
        .collect();
    wire::SessionBody {
        created: ms_rfc3339(session.created_ms).unwrap_or_default(),
        holder: session.holder.clone(),
        holds,
        id: session.id.clone(),
        instance: session
            .instance
            .as_ref()
            .map(|i| format!("{}/{}", i.service, i.id)),
        invalidated: session.invalidated.clone(),
        node: session.node.clone(),
        ttl_ms: session.ttl_ms,
    }
}

/// `GET /v1/sessions`: every session, from this agent's copy of the registry.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/sessions", tag = "coordination",
    responses((status = 200, description = "Every session", body = [wire::SessionBody]))))]
pub async fn list(State(api): State<Api>) -> Response {
    let current = api.catalog.as_ref().map(|c| c.current());
    let bodies: Vec<wire::SessionBody> = current
        .iter()
        .flat_map(|p| {
            p.registry
                .coordination
                .sessions
                .values()
                .map(|s| session_body(&p.registry, s))
        })
        .collect();
    Json(bodies).into_response()
}

/// `GET /v1/sessions/{id}`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/sessions/{id}", tag = "coordination",
    params(("id" = String, Path, description = "The session")),
    responses(
        (status = 200, description = "The session", body = wire::SessionBody),
        (status = 404, description = "No such session", body = wire::ErrorBody),
    )))]
pub async fn one(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let current = api.catalog.as_ref().map(|c| c.current());
    match current
        .as_ref()
        .and_then(|p| Some((p, p.registry.coordination.sessions.get(&id)?)))
    {
        Some((p, session)) => Json(session_body(&p.registry, session)).into_response(),
        None => ApiError::not_found(format!("no session {id}")).into_response(),
    }
}

/// `PUT /v1/sessions/{id}/renew`.
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/v1/sessions/{id}/renew", tag = "coordination",
    params(("id" = String, Path, description = "The session")),
    security(("token" = [])),
    responses(
        (status = 200, description = "Renewed: the session lives one more TTL from when the request was sent", body = wire::SessionBody),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 404, description = "No such session (it ended)", body = wire::ErrorBody),
        (status = 409, description = "The cluster gave the session up; what it holds is released when it ends", body = wire::ErrorBody),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
pub async fn renew(State(api): State<Api>, Path(id): Path<String>, request: Incoming) -> Response {
    let Some(leadership) = &api.leadership else {
        return forward::to_a_voter(&request, api.cluster.as_ref()).await;
    };
    match leadership.renew(&id).await {
        Ok(session) => {
            Json(session_body(&leadership.registry().registry, &session)).into_response()
        }
        Err(RenewError::Unknown(_)) => {
            ApiError::not_found(format!("no session {id}")).into_response()
        }
        Err(e @ RenewError::Invalidated { .. }) => {
            ApiError::new(StatusCode::CONFLICT, e.to_string()).into_response()
        }
        Err(RenewError::Write(e)) => write_failed(e, &request).await,
    }
}

/// `DELETE /v1/sessions/{id}`.
#[cfg_attr(feature = "openapi", utoipa::path(delete, path = "/v1/sessions/{id}", tag = "coordination",
    params(("id" = String, Path, description = "The session")),
    security(("token" = [])),
    responses(
        (status = 200, description = "Ended; everything it held is released", body = wire::SessionEnded),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 404, description = "No such session", body = wire::ErrorBody),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
pub async fn end(State(api): State<Api>, Path(id): Path<String>, request: Incoming) -> Response {
    end_session(&api, id, "ended by its holder".to_owned(), &request).await
}

async fn end_session(api: &Api, id: String, reason: String, request: &Incoming) -> Response {
    let command = Command::SessionEnd {
        id: id.clone(),
        reason,
        at_ms: now_ms(),
    };
    match commit(api, command, request).await {
        Ok(applied) if applied.refused.is_none() => {
            Json(wire::SessionEnded { ended: id }).into_response()
        }
        Ok(_) => ApiError::not_found(format!("no session {id}")).into_response(),
        Err(answer) => answer,
    }
}

/// `GET /v1/sessions/{id}/hold`: a stream of one JSON line every 100 ms for as long as the
/// session lives; when its connection closes, the session ends.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/sessions/{id}/hold", tag = "coordination",
    params(("id" = String, Path, description = "The session")),
    security(("token" = [])),
    responses(
        (status = 200, description = "Held: newline-delimited JSON, the session first, then `{}` every 100 ms", content_type = "application/x-ndjson", body = String),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 404, description = "No such session", body = wire::ErrorBody),
    )))]
pub async fn hold(State(api): State<Api>, Path(id): Path<String>, request: Incoming) -> Response {
    let Some(catalog) = api.catalog.clone() else {
        return ApiError::not_found("this node is not in a cluster").into_response();
    };
    // A session is acknowledged by the leader before every agent has applied it: an agent
    // whose copy lags waits for it a little before saying it does not exist.
    let current = catalog
        .after(0, HOLD_FIND, |p| {
            u64::from(p.registry.coordination.sessions.contains_key(&id))
        })
        .await;
    let Some(session) = current.registry.coordination.sessions.get(&id) else {
        return ApiError::not_found(format!("no session {id}")).into_response();
    };
    let first = match serde_json::to_vec(&session_body(&current.registry, session)) {
        Ok(mut line) => {
            line.push(b'\n');
            Bytes::from(line)
        }
        Err(e) => {
            return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    };
    let (lines, received) = mpsc::channel::<Bytes>(1);
    let node = api.engine.snapshot().node_id().to_owned();
    // Ending the session is a DELETE of it, with the token the holder presented.
    let ending = Incoming {
        method: Method::DELETE,
        uri: Uri::try_from(format!("/v1/sessions/{id}")).unwrap_or_default(),
        headers: request.headers.clone(),
        body: Bytes::new(),
    };
    tokio::spawn(async move {
        let mut beat = tokio::time::interval(HOLD_BEAT);
        beat.tick().await;
        let mut changes = catalog.changes();
        let closed = loop {
            tokio::select! {
                _ = lines.closed() => break true,
                _ = beat.tick() => {
                    if lines.send(Bytes::from_static(b"{}\n")).await.is_err() {
                        break true;
                    }
                }
                changed = changes.changed() => if changed.is_err() { break false },
            }
            if !changes
                .borrow_and_update()
                .registry
                .coordination
                .sessions
                .contains_key(&id)
            {
                break false;
            }
        };
        if closed {
            info!(session = %id, "the holder's connection closed: ending its session");
            let reason = format!("its holder's connection to agent {node} closed");
            end_session(&api, id, reason, &ending).await;
        }
    });
    let body = stream::once(async move { Ok::<_, Infallible>(first) })
        .chain(stream::unfold(received, |mut received| async move {
            received.recv().await.map(|line| (Ok(line), received))
        }));
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        )],
        Body::from_stream(body),
    )
        .into_response()
}
