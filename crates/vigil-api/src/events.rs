//! `GET /v1/events`: server-sent events of check, status (and later member and leader) changes.
//!
//! Each event's SSE `event:` name is its `type` (`check_changed`, `status_changed`, ...) and its
//! data the JSON of [`vigil_health::Event`]. The stream opens with a `status` event describing the
//! node as it is, so a client never starts blind. A client that falls behind receives `lagged`
//! with the number of events it missed.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use vigil_health::{rfc3339, Engine, Event, Status};

/// The SSE handler. The stream ends after the node reports `stopping`, so open event streams
/// never hold up a graceful shutdown.
pub async fn events(
    State(engine): State<Engine>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let receiver = engine.subscribe();
    let snapshot = engine.snapshot();
    let opening = SseEvent::default().event("status").json_data(json!({
        "type": "status",
        "status": snapshot.status(),
        "message": snapshot.message(),
        "node_id": snapshot.node_id(),
        "at": rfc3339(snapshot.last_update()),
    }));
    let already_stopping = snapshot.status() == Status::Stopping;
    let live = stream::unfold((receiver, already_stopping), |(mut rx, ended)| async move {
        if ended {
            return None;
        }
        match rx.recv().await {
            Ok(event) => {
                let last = matches!(
                    event,
                    Event::StatusChanged {
                        to: Status::Stopping,
                        ..
                    }
                );
                Some((sse_event(&event), (rx, last)))
            }
            Err(RecvError::Lagged(missed)) => {
                let lagged = SseEvent::default()
                    .event("lagged")
                    .json_data(json!({ "type": "lagged", "missed": missed }));
                Some((lagged, (rx, false)))
            }
            Err(RecvError::Closed) => None,
        }
    });
    let stream = stream::iter([opening])
        .chain(live)
        .filter_map(|e| async move { e.ok().map(Ok) });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn sse_event(event: &Event) -> Result<SseEvent, axum::Error> {
    let name = match event {
        Event::CheckChanged { .. } => "check_changed",
        Event::StatusChanged { .. } => "status_changed",
        Event::CheckRegistered { .. } => "check_registered",
        Event::CheckUnregistered { .. } => "check_unregistered",
    };
    SseEvent::default().event(name).json_data(event)
}
