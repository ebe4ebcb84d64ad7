//! `GET /v1/events`: server-sent events of check, status, membership and leader changes.
//!
//! Each event's SSE `event:` name is its `type` (`check_changed`, `status_changed`,
//! `member_up`, `member_down`, `leader_changed`, `neighbor_changed`, `service_changed`,
//! `election_changed`, `lock_changed`, ...) and
//! its data the event's JSON. The stream opens with a `status`
//! event describing the node as it is, so a client never starts blind. A client that falls behind
//! receives `lagged` with the number of events it missed. The stream ends after the node reports
//! `stopping`, so open event streams never hold up a graceful shutdown.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::stream::{self, Stream, StreamExt};
use imbl::ordmap::DiffItem;
use imbl::OrdMap;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;
use tokio::sync::watch;
use vigil_cluster::raft::{InstanceState, LeaderEvent, Published, Role, RoleKind};
use vigil_cluster::{Cluster, MembershipEvent};
use vigil_health::{rfc3339, Event, Status};
use vigil_probe::neighbors::NeighborEvent;

use crate::catalog::Catalog;
use crate::discovery::{discover, Filter};
use crate::roles::role_body;
use crate::{wire, Api};

/// `/v1/events`.
pub(crate) fn routes(api: &Api) -> Router {
    Router::new()
        .route("/v1/events", get(events))
        .with_state(api.clone())
}

/// Where the stream reads from, and whether it has delivered its last event.
struct Sources {
    health: Receiver<Event>,
    members: Option<Receiver<MembershipEvent>>,
    leaders: Option<Receiver<LeaderEvent>>,
    neighbors: Option<Receiver<NeighborEvent>>,
    services: Option<ServiceChanges>,
    ended: bool,
}

/// Follows the catalog and turns each change into one event per service, election or lock it
/// touched.
struct ServiceChanges {
    catalog: watch::Receiver<Arc<Published>>,
    cluster: Option<Cluster>,
    /// Each service's index as last told.
    told: OrdMap<String, u64>,
    /// The elections and locks as last told.
    told_roles: [OrdMap<String, Role>; 2],
    pending: VecDeque<Change>,
}

/// A change the catalog tells of.
enum Change {
    Service(wire::ServiceChanged),
    Role(Box<wire::RoleChanged>),
}

impl Change {
    fn event(&self) -> Result<SseEvent, axum::Error> {
        match self {
            Change::Service(change) => SseEvent::default().event(&change.kind).json_data(change),
            Change::Role(change) => SseEvent::default().event(&change.kind).json_data(change),
        }
    }
}

const ROLE_KINDS: [RoleKind; 2] = [RoleKind::Election, RoleKind::Lock];

impl ServiceChanges {
    fn new(catalog: &Catalog, cluster: Option<Cluster>) -> ServiceChanges {
        let mut catalog = catalog.watch();
        let (told, told_roles) = {
            let registry = &catalog.borrow_and_update().registry;
            let roles = ROLE_KINDS.map(|kind| registry.coordination.roles(kind).clone());
            (registry.modified.clone(), roles)
        };
        ServiceChanges {
            catalog,
            cluster,
            told,
            told_roles,
            pending: VecDeque::new(),
        }
    }

    /// The next change; `None` once the catalog is gone.
    async fn next(&mut self) -> Option<Change> {
        loop {
            if let Some(change) = self.pending.pop_front() {
                return Some(change);
            }
            self.catalog.changed().await.ok()?;
            let published = self.catalog.borrow_and_update().clone();
            let registry = &published.registry;
            let now = &registry.modified;
            let touched: Vec<String> = self
                .told
                .diff(now)
                .map(|change| match change {
                    DiffItem::Add(name, _)
                    | DiffItem::Update { new: (name, _), .. }
                    | DiffItem::Remove(name, _) => name.clone(),
                })
                .collect();
            for service in touched {
                let all = discover(
                    registry,
                    self.cluster.as_ref(),
                    &service,
                    &Filter::default(),
                );
                self.pending
                    .push_back(Change::Service(wire::ServiceChanged {
                        index: registry.service_index(&service),
                        instances: all.len(),
                        passing: all
                            .iter()
                            .filter(|(_, state)| *state == InstanceState::Passing)
                            .count(),
                        service,
                        kind: "service_changed".to_owned(),
                    }));
            }
            self.told = now.clone();
            for (kind, told) in ROLE_KINDS.into_iter().zip(self.told_roles.iter_mut()) {
                let now = registry.coordination.roles(kind);
                for change in told.diff(now) {
                    let name = match change {
                        DiffItem::Add(name, _)
                        | DiffItem::Update { new: (name, _), .. }
                        | DiffItem::Remove(name, _) => name,
                    };
                    self.pending
                        .push_back(Change::Role(Box::new(wire::RoleChanged {
                            role: now.get(name).map(|role| role_body(kind, name, role)),
                            name: name.clone(),
                            kind: format!("{}_changed", kind.as_str()),
                        })));
                }
                *told = now.clone();
            }
        }
    }
}

/// The SSE handler.
#[utoipa::path(get, path = "/v1/events", tag = "events",
    responses((status = 200, description = "Server-sent events, each `data` a JSON object with its `type`; the first is `status`",
        content_type = "text/event-stream", body = String)))]
async fn events(State(api): State<Api>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let sources = Sources {
        health: api.engine.subscribe(),
        members: api.cluster.as_ref().map(|c| c.subscribe()),
        leaders: api.leadership.as_ref().map(|l| l.subscribe()),
        neighbors: api.neighbors.as_ref().map(|n| n.subscribe()),
        services: api
            .catalog
            .as_ref()
            .map(|c| ServiceChanges::new(c, api.cluster.clone())),
        ended: false,
    };
    let snapshot = api.engine.snapshot();
    let opening = SseEvent::default()
        .event("status")
        .json_data(wire::Opening {
            at: rfc3339(snapshot.last_update()),
            message: snapshot.message().to_owned(),
            node_id: snapshot.node_id().to_owned(),
            status: snapshot.status(),
            kind: "status".to_owned(),
        });
    let sources = Sources {
        ended: snapshot.status() == Status::Stopping,
        ..sources
    };
    let live = stream::unfold(sources, |mut s| async move {
        if s.ended {
            return None;
        }
        let event = next(&mut s).await?;
        Some((event, s))
    });
    let stream = stream::iter([opening])
        .chain(live)
        .filter_map(|e| async move { e.ok().map(Ok) });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// The next event from either source; `None` once the health engine is gone.
async fn next(s: &mut Sources) -> Option<Result<SseEvent, axum::Error>> {
    loop {
        let member = async {
            match s.members.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let leader = async {
            match s.leaders.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let neighbor = async {
            match s.neighbors.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let service = async {
            match s.services.as_mut() {
                Some(changes) => changes.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            service = service => match service {
                Some(change) => return Some(change.event()),
                None => s.services = None,
            },
            neighbor = neighbor => match neighbor {
                Ok(event) => {
                    let mut data = serde_json::to_value(&event).unwrap_or_default();
                    data["type"] = "neighbor_changed".into();
                    return Some(SseEvent::default().event("neighbor_changed").json_data(data));
                }
                Err(RecvError::Lagged(missed)) => return Some(lagged(missed)),
                Err(RecvError::Closed) => s.neighbors = None,
            },
            leader = leader => match leader {
                Ok(event) => return Some(leader_event(&event)),
                Err(RecvError::Lagged(missed)) => return Some(lagged(missed)),
                Err(RecvError::Closed) => s.leaders = None,
            },
            health = s.health.recv() => return match health {
                Ok(event) => {
                    s.ended = matches!(event, Event::StatusChanged { to: Status::Stopping, .. });
                    Some(health_event(&event))
                }
                Err(RecvError::Lagged(missed)) => Some(lagged(missed)),
                Err(RecvError::Closed) => None,
            },
            member = member => match member {
                Ok(event) => {
                    let data = serde_json::to_value(&event).unwrap_or_default();
                    let name = data["type"].as_str().unwrap_or("member").to_owned();
                    return Some(SseEvent::default().event(name).json_data(data));
                }
                Err(RecvError::Lagged(missed)) => return Some(lagged(missed)),
                Err(RecvError::Closed) => s.members = None,
            },
        }
    }
}

fn leader_event(event: &LeaderEvent) -> Result<SseEvent, axum::Error> {
    let mut data = serde_json::to_value(event).unwrap_or_default();
    data["type"] = "leader_changed".into();
    SseEvent::default().event("leader_changed").json_data(data)
}

fn lagged(missed: u64) -> Result<SseEvent, axum::Error> {
    SseEvent::default().event("lagged").json_data(wire::Lagged {
        missed,
        kind: "lagged".to_owned(),
    })
}

fn health_event(event: &Event) -> Result<SseEvent, axum::Error> {
    let name = match event {
        Event::CheckChanged { .. } => "check_changed",
        Event::StatusChanged { .. } => "status_changed",
        Event::CheckRegistered { .. } => "check_registered",
        Event::CheckUnregistered { .. } => "check_unregistered",
    };
    SseEvent::default().event(name).json_data(event)
}
