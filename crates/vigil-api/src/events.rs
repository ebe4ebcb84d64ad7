//! `GET /v1/events`: server-sent events of check, status, membership and leader changes.
//!
//! Each event's SSE `event:` name is its `type` (`check_changed`, `status_changed`,
//! `member_up`, `member_down`, `leader_changed`, `neighbor_changed`, `service_changed`,
//! `election_changed`, `lock_changed`, ...) and
//! its data the event's JSON. The stream opens with a `status`
//! event describing the node as it is, so a client never starts blind. A client that falls behind
//! receives `lagged` with the number of events it missed. The stream ends after the node reports
//! `stopping`, so open event streams never hold up a graceful shutdown.
//!
//! The events come from a [`Feed`], which webhooks read too: each [`Notice`] carries its JSON
//! and, for webhooks, its category, severity and one line for people.

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
use vigil_health::{rfc3339, CheckState, Event, Status};
use vigil_probe::neighbors::{NeighborEvent, NeighborState};

use crate::catalog::Catalog;
use crate::discovery::{discover, Filter};
use crate::roles::role_body;
use crate::webhooks::{Category, Severity};
use crate::{wire, Api};

/// `/v1/events`.
pub(crate) fn routes(api: &Api) -> Router {
    Router::new()
        .route("/v1/events", get(events))
        .with_state(api.clone())
}

/// The agent's events, from every source it has, until the node stops.
pub(crate) struct Feed {
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
    fn notice(&self) -> Notice {
        match self {
            Change::Service(change) => {
                let severity = if change.passing == change.instances {
                    Severity::Info
                } else if change.passing == 0 {
                    Severity::Critical
                } else {
                    Severity::Warning
                };
                let text = format!(
                    "service {}: {} of {} instances passing",
                    change.service, change.passing, change.instances
                );
                Notice::new(&change.kind, Category::Service, severity, text, change)
            }
            Change::Role(change) => {
                let what = change.kind.trim_end_matches("_changed");
                let text = format!("{what} {} changed", change.name);
                Notice::new(
                    &change.kind,
                    Category::Election,
                    Severity::Info,
                    text,
                    change,
                )
            }
        }
    }
}

/// One event of the agent: its `type`, its JSON, and what webhooks filter and show.
#[derive(Clone, Debug)]
pub(crate) struct Notice {
    /// The event's `type` (`check_changed`, `member_down`, ...).
    pub kind: String,
    /// What it is about.
    pub category: Category,
    /// How bad it is.
    pub severity: Severity,
    /// One line for people.
    pub text: String,
    /// The event as `/v1/events` sends it, `type` included.
    pub data: serde_json::Value,
}

impl Notice {
    fn new(
        kind: &str,
        category: Category,
        severity: Severity,
        text: String,
        data: &impl serde::Serialize,
    ) -> Notice {
        let mut data = serde_json::to_value(data).unwrap_or_default();
        if let Some(object) = data.as_object_mut() {
            object
                .entry("type")
                .or_insert_with(|| serde_json::Value::from(kind));
        }
        Notice {
            kind: kind.to_owned(),
            category,
            severity,
            text,
            data,
        }
    }

    fn sse(&self) -> Result<SseEvent, axum::Error> {
        SseEvent::default().event(&self.kind).json_data(&self.data)
    }
}

/// What a [`Feed`] gives.
pub(crate) enum FeedItem {
    /// An event.
    Event(Notice),
    /// This many events were missed: the reader fell behind.
    Lagged(u64),
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
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/events", tag = "events",
    responses((status = 200, description = "Server-sent events, each `data` a JSON object with its `type`; the first is `status`",
        content_type = "text/event-stream", body = String))))]
async fn events(State(api): State<Api>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let feed = Feed::of(&api);
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
    let feed = Feed {
        ended: snapshot.status() == Status::Stopping,
        ..feed
    };
    let live = stream::unfold(feed, |mut feed| async move {
        let event = match feed.next().await? {
            FeedItem::Event(notice) => notice.sse(),
            FeedItem::Lagged(missed) => lagged(missed),
        };
        Some((event, feed))
    });
    let stream = stream::iter([opening])
        .chain(live)
        .filter_map(|e| async move { e.ok().map(Ok) });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

impl Feed {
    /// The events of `api`'s node from now on.
    pub(crate) fn of(api: &Api) -> Feed {
        Feed {
            health: api.engine.subscribe(),
            members: api.cluster.as_ref().map(|c| c.subscribe()),
            leaders: api.leadership.as_ref().map(|l| l.subscribe()),
            neighbors: api.neighbors.as_ref().map(|n| n.subscribe()),
            services: api
                .catalog
                .as_ref()
                .map(|c| ServiceChanges::new(c, api.cluster.clone())),
            ended: false,
        }
    }

    /// The next event from any source; `None` after the node reported `stopping`, or once the
    /// health engine is gone.
    pub(crate) async fn next(&mut self) -> Option<FeedItem> {
        if self.ended {
            return None;
        }
        loop {
            let member = async {
                match self.members.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            let leader = async {
                match self.leaders.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            let neighbor = async {
                match self.neighbors.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            let service = async {
                match self.services.as_mut() {
                    Some(changes) => changes.next().await,
                    None => std::future::pending().await,
                }
            };
            let lagged = |missed| Some(FeedItem::Lagged(missed));
            tokio::select! {
                service = service => match service {
                    Some(change) => return Some(FeedItem::Event(change.notice())),
                    None => self.services = None,
                },
                neighbor = neighbor => match neighbor {
                    Ok(event) => return Some(FeedItem::Event(neighbor_notice(&event))),
                    Err(RecvError::Lagged(missed)) => return lagged(missed),
                    Err(RecvError::Closed) => self.neighbors = None,
                },
                leader = leader => match leader {
                    Ok(event) => return Some(FeedItem::Event(leader_notice(&event))),
                    Err(RecvError::Lagged(missed)) => return lagged(missed),
                    Err(RecvError::Closed) => self.leaders = None,
                },
                health = self.health.recv() => return match health {
                    Ok(event) => {
                        self.ended =
                            matches!(event, Event::StatusChanged { to: Status::Stopping, .. });
                        Some(FeedItem::Event(health_notice(&event)))
                    }
                    Err(RecvError::Lagged(missed)) => lagged(missed),
                    Err(RecvError::Closed) => None,
                },
                member = member => match member {
                    Ok(event) => return Some(FeedItem::Event(member_notice(&event))),
                    Err(RecvError::Lagged(missed)) => return lagged(missed),
                    Err(RecvError::Closed) => self.members = None,
                },
            }
        }
    }
}

fn neighbor_notice(event: &NeighborEvent) -> Notice {
    let severity = match event.to {
        NeighborState::Unknown | NeighborState::Healthy => Severity::Info,
        NeighborState::Degraded => Severity::Warning,
        NeighborState::Unavailable => Severity::Critical,
    };
    let text = format!(
        "neighbour {}: {} → {} ({})",
        event.neighbor,
        event.from.as_str(),
        event.to.as_str(),
        event.message
    );
    Notice::new(
        "neighbor_changed",
        Category::Neighbor,
        severity,
        text,
        event,
    )
}

fn leader_notice(event: &LeaderEvent) -> Notice {
    let (severity, text) = match &event.leader_id {
        Some(leader) => (
            Severity::Info,
            format!("{leader} leads the cluster (term {})", event.term),
        ),
        None => (
            Severity::Warning,
            format!("the cluster has no leader (term {})", event.term),
        ),
    };
    Notice::new("leader_changed", Category::Leader, severity, text, event)
}

fn member_notice(event: &MembershipEvent) -> Notice {
    let (severity, what) = match event {
        MembershipEvent::Up(_) => (Severity::Info, "joined"),
        MembershipEvent::Updated(_) => (Severity::Info, "changed"),
        MembershipEvent::Suspect(_) => (Severity::Warning, "is suspected to have failed"),
        MembershipEvent::Alive(_) => (Severity::Info, "is alive again"),
        MembershipEvent::Down(_) => (Severity::Critical, "failed"),
        MembershipEvent::Left(_) => (Severity::Info, "left"),
    };
    let text = format!("member {} {what}", event.member().id);
    Notice::new(event.kind(), Category::Member, severity, text, event)
}

fn health_notice(event: &Event) -> Notice {
    let (kind, category, severity, text) = match event {
        Event::CheckChanged {
            check,
            from,
            to,
            message,
            ..
        } => (
            "check_changed",
            Category::Check,
            match to {
                CheckState::Critical => Severity::Critical,
                CheckState::Warning => Severity::Warning,
                CheckState::Passing | CheckState::Unknown => Severity::Info,
            },
            format!("check {check}: {from} → {to} ({message})"),
        ),
        Event::StatusChanged {
            from, to, message, ..
        } => (
            "status_changed",
            Category::Status,
            match to {
                Status::Unhealthy => Severity::Critical,
                Status::Degraded => Severity::Warning,
                Status::Starting | Status::Healthy | Status::Stopping => Severity::Info,
            },
            format!("status {from} → {to}: {message}"),
        ),
        Event::CheckRegistered { check } => (
            "check_registered",
            Category::Check,
            Severity::Info,
            format!("check {check} registered"),
        ),
        Event::CheckUnregistered { check } => (
            "check_unregistered",
            Category::Check,
            Severity::Info,
            format!("check {check} removed"),
        ),
    };
    Notice::new(kind, category, severity, text, event)
}

fn lagged(missed: u64) -> Result<SseEvent, axum::Error> {
    SseEvent::default().event("lagged").json_data(wire::Lagged {
        missed,
        kind: "lagged".to_owned(),
    })
}
