//! `/v1/checks`: register and unregister checks at run time, push TTL results, read one check.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use vigil_health::{Engine, RegisterError, Registered, TtlError, Verdict};

use crate::checkdef::CheckDefinition;
use crate::error::ApiError;
use crate::wire::{self, CheckOutcome};
use crate::{auth, Api};

/// `/v1/checks/{name}` and the TTL updates; all but the read need the token.
pub(crate) fn routes(api: &Api) -> Router {
    Router::new()
        .route(
            "/v1/checks/{name}",
            get(get_check).merge(auth::guarded(
                &api.token,
                put(put_check).delete(delete_check),
            )),
        )
        .route(
            "/v1/checks/{name}/{verdict}",
            auth::guarded(&api.token, put(put_ttl)),
        )
        .with_state(api.engine.clone())
}

/// `GET /v1/checks/{name}`: the check and its kept history.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/checks/{name}", tag = "checks",
    params(("name" = String, Path, description = "The check")),
    responses(
        (status = 200, description = "The check and its kept history", body = wire::CheckDetail),
        (status = 404, description = "No such check", body = wire::ErrorBody),
    )))]
async fn get_check(
    State(engine): State<Engine>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let snapshot = engine.snapshot();
    let view = snapshot
        .check(&name)
        .ok_or_else(|| ApiError::not_found(format!("no check named {name:?}")))?;
    let history = engine.history(&name).unwrap_or_default();
    let body = wire::CheckDetail {
        check: wire::Check::from(view.as_ref()),
        history,
        name,
    };
    Ok(Json(body).into_response())
}

/// `PUT /v1/checks/{name}`: registers (or replaces) a check from a JSON definition.
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/v1/checks/{name}", tag = "checks",
    params(("name" = String, Path, pattern = r"^[A-Za-z0-9._:-]{1,128}$",
        description = "The check: 1 to 128 of `A-Z a-z 0-9 . _ - :`")),
    request_body(content = crate::openapi::CheckDefinitionSchema, description = "The check definition"),
    security(("token" = [])),
    responses(
        (status = 201, description = "Registered", body = wire::CheckChanged),
        (status = 200, description = "Replaced", body = wire::CheckChanged),
        (status = 400, description = "An invalid definition", body = wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 429, description = "Too many checks", body = wire::ErrorBody),
    )))]
async fn put_check(
    State(engine): State<Engine>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let definition: CheckDefinition = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid check definition: {e}")))?;
    if definition.name.as_deref().is_some_and(|n| n != name) {
        return Err(ApiError::bad_request(format!(
            "name in body ({:?}) differs from name in path ({name:?})",
            definition.name.as_deref().unwrap_or_default()
        )));
    }
    let plan = definition.plan(Some(&name)).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid check definition: {}: {}",
            e.field, e.message
        ))
    })?;
    let registered = plan.register(&engine).map_err(|e| match e {
        RegisterError::TooMany { .. } => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string())
        }
        _ => ApiError::bad_request(e.to_string()),
    })?;
    let (code, result) = match registered {
        Registered::Added => (StatusCode::CREATED, CheckOutcome::Registered),
        Registered::Replaced => (StatusCode::OK, CheckOutcome::Replaced),
    };
    let body = wire::CheckChanged {
        check: name,
        result,
    };
    Ok((code, Json(body)).into_response())
}

/// `DELETE /v1/checks/{name}`.
#[cfg_attr(feature = "openapi", utoipa::path(delete, path = "/v1/checks/{name}", tag = "checks",
    params(("name" = String, Path, description = "The check")),
    security(("token" = [])),
    responses(
        (status = 200, description = "Unregistered", body = wire::CheckChanged),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 404, description = "No such check", body = wire::ErrorBody),
    )))]
async fn delete_check(
    State(engine): State<Engine>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    engine
        .unregister(&name)
        .map_err(|e| ApiError::not_found(e.to_string()))?;
    let body = wire::CheckChanged {
        check: name,
        result: CheckOutcome::Unregistered,
    };
    Ok(Json(body).into_response())
}

/// `PUT /v1/checks/{name}/pass|warn|fail`: a TTL update. The body, if any, is the note: plain
/// text, or JSON `{"note": "..."}`.
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/v1/checks/{name}/{verdict}", tag = "checks",
    params(("name" = String, Path, description = "The TTL check"),
           ("verdict" = vigil_health::Verdict, Path, description = "`pass`, `warn` or `fail`")),
    request_body(description = "The note: JSON `{\"note\": \"...\"}`, or any other text as the note itself",
        content((Option<wire::Note> = "application/json"), (Option<String> = "text/plain"))),
    security(("token" = [])),
    responses(
        (status = 200, description = "Updated", body = wire::TtlUpdated),
        (status = 400, description = "A malformed note", body = wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 404, description = "No such check, or an unknown verdict", body = wire::ErrorBody),
        (status = 409, description = "Not a TTL check", body = wire::ErrorBody),
    )))]
async fn put_ttl(
    State(engine): State<Engine>,
    Path((name, verdict)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let verdict = parse_verdict(&verdict)?;
    let note = note_from_body(&body)?;
    engine
        .update_ttl(&name, verdict, note)
        .map_err(|e| match e {
            TtlError::Unknown(e) => ApiError::not_found(e.to_string()),
            TtlError::NotTtl(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        })?;
    let state = engine.snapshot().check(&name).map(|v| v.state);
    Ok(Json(wire::TtlUpdated { check: name, state }).into_response())
}

/// The verdict of a TTL update's path: `pass`, `warn` or `fail` (404 otherwise).
pub(crate) fn parse_verdict(verdict: &str) -> Result<Verdict, ApiError> {
    match verdict {
        "pass" => Ok(Verdict::Pass),
        "warn" => Ok(Verdict::Warn),
        "fail" => Ok(Verdict::Fail),
        other => Err(ApiError::not_found(format!(
            "unknown TTL update {other:?}: use pass, warn or fail"
        ))),
    }
}

/// The note of a TTL update: the body as text, or JSON `{"note": "..."}`.
pub(crate) fn note_from_body(body: &[u8]) -> Result<Option<String>, ApiError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::bad_request("note must be UTF-8 text"))?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.starts_with('{') {
        let note: wire::Note = serde_json::from_str(text).map_err(|e| {
            ApiError::bad_request(format!(
                "invalid JSON body: {e} (expected {{\"note\": \"...\"}})"
            ))
        })?;
        return Ok(note.note);
    }
    Ok(Some(text.chars().take(4096).collect()))
}
