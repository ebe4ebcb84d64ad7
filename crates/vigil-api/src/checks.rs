//! `/v1/checks`: register and unregister checks at run time, push TTL results, read one check.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use vigil_health::{CheckJson, Engine, RegisterError, Registered, TtlError, Verdict};

use crate::checkdef::CheckDefinition;
use crate::error::ApiError;

/// `GET /v1/checks/{name}`: the check and its kept history.
pub async fn get_check(
    State(engine): State<Engine>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let snapshot = engine.snapshot();
    let view = snapshot
        .check(&name)
        .ok_or_else(|| ApiError::not_found(format!("no check named {name:?}")))?;
    let history = engine.history(&name).unwrap_or_default();
    Ok(Json(json!({ "name": name, "check": CheckJson(view), "history": history })).into_response())
}

/// `PUT /v1/checks/{name}`: registers (or replaces) a check from a JSON definition.
pub async fn put_check(
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
    let (code, word) = match registered {
        Registered::Added => (StatusCode::CREATED, "registered"),
        Registered::Replaced => (StatusCode::OK, "replaced"),
    };
    Ok((code, Json(json!({ "check": name, "result": word }))).into_response())
}

/// `DELETE /v1/checks/{name}`.
pub async fn delete_check(
    State(engine): State<Engine>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    engine
        .unregister(&name)
        .map_err(|e| ApiError::not_found(e.to_string()))?;
    Ok(Json(json!({ "check": name, "result": "unregistered" })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Note {
    note: Option<String>,
}

/// `PUT /v1/checks/{name}/pass|warn|fail`: a TTL update. The body, if any, is the note: plain
/// text, or JSON `{"note": "..."}`.
pub async fn put_ttl(
    State(engine): State<Engine>,
    Path((name, verdict)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let verdict = match verdict.as_str() {
        "pass" => Verdict::Pass,
        "warn" => Verdict::Warn,
        "fail" => Verdict::Fail,
        other => {
            return Err(ApiError::not_found(format!(
                "unknown TTL update {other:?}: use pass, warn or fail"
            )))
        }
    };
    let note = note_from_body(&body)?;
    engine
        .update_ttl(&name, verdict, note)
        .map_err(|e| match e {
            TtlError::Unknown(e) => ApiError::not_found(e.to_string()),
            TtlError::NotTtl(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        })?;
    let state = engine.snapshot().check(&name).map(|v| v.state);
    Ok(Json(json!({ "check": name, "state": state })).into_response())
}

fn note_from_body(body: &[u8]) -> Result<Option<String>, ApiError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::bad_request("note must be UTF-8 text"))?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.starts_with('{') {
        let note: Note = serde_json::from_str(text).map_err(|e| {
            ApiError::bad_request(format!(
                "invalid JSON body: {e} (expected {{\"note\": \"...\"}})"
            ))
        })?;
        return Ok(note.note);
    }
    Ok(Some(text.chars().take(4096).collect()))
}
