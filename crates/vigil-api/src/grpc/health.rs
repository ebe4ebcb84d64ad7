//! `grpc.health.v1.Health`, as the gRPC health checking protocol describes it, answered from the
//! engine's snapshot and events.
//!
//! Names: `""` is the whole node (`SERVING` when it is ready: healthy or degraded); a check's name
//! is that check (`SERVING` when passing or warning); a configured service is a group of checks
//! (`SERVING` when all of them serve). While the node is stopping every name is `NOT_SERVING`.
//! `Check` of an unknown name fails with `NOT_FOUND`; `Watch` of one sends `SERVICE_UNKNOWN` and
//! stays open, so the watcher sees the check if it is registered later.
//!
//! tonic-health's own service answers a `Watch` of an unknown name with an error and tracks only
//! names set through its reporter, so only its generated types are used here.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use tokio::sync::{broadcast, watch};
use tonic::{Request, Response, Status as RpcStatus};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::Health;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use vigil_health::{CheckState, Engine, Event, Snapshot, Status};

/// The health service over one engine.
#[derive(Clone)]
pub(crate) struct HealthService {
    pub(crate) engine: Engine,
    /// Service name → the checks it is made of.
    pub(crate) services: Arc<BTreeMap<String, Vec<String>>>,
    /// Turns true when the server shuts down, so open `Watch` streams end and let it close.
    pub(crate) closing: watch::Receiver<bool>,
}

/// What a name stands for.
#[derive(Clone, Debug)]
enum Target {
    Node,
    Check(String),
    Service(Vec<String>),
}

impl HealthService {
    fn target(&self, name: &str) -> Target {
        if name.is_empty() {
            Target::Node
        } else if let Some(checks) = self.services.get(name) {
            Target::Service(checks.clone())
        } else {
            Target::Check(name.to_owned())
        }
    }
}

/// What a watcher knows of the states its name depends on, kept current from events, so that it
/// never depends on when a snapshot is published relative to the event that announced it.
struct Model {
    target: Target,
    node: Status,
    /// Each check the target depends on; `None` when no such check is registered.
    checks: HashMap<String, Option<CheckState>>,
}

impl Model {
    fn new(target: Target, snapshot: &Snapshot) -> Self {
        let mut model = Model {
            target,
            node: snapshot.status(),
            checks: HashMap::new(),
        };
        model.reload(snapshot);
        model
    }

    fn names(&self) -> Vec<String> {
        match &self.target {
            Target::Node => Vec::new(),
            Target::Check(name) => vec![name.clone()],
            Target::Service(checks) => checks.clone(),
        }
    }

    fn reload(&mut self, snapshot: &Snapshot) {
        self.node = snapshot.status();
        for name in self.names() {
            let state = snapshot.check(&name).map(|view| view.state);
            self.checks.insert(name, state);
        }
    }

    fn apply(&mut self, event: &Event) {
        let (check, state) = match event {
            Event::StatusChanged { to, .. } => {
                self.node = *to;
                return;
            }
            Event::CheckChanged { check, to, .. } => (check, Some(*to)),
            Event::CheckRegistered { check } => (check, Some(CheckState::Unknown)),
            Event::CheckUnregistered { check } => (check, None),
        };
        if let Some(known) = self.checks.get_mut(&**check) {
            *known = state;
        }
    }

    /// The status to report; `SERVICE_UNKNOWN` when the name is no check or service.
    fn serving(&self) -> ServingStatus {
        if self.node == Status::Stopping {
            return ServingStatus::NotServing;
        }
        match &self.target {
            Target::Node => serving_if(self.node.is_ready()),
            Target::Check(name) => match self.checks.get(name).copied().flatten() {
                None => ServingStatus::ServiceUnknown,
                Some(state) => serving_if(check_serves(state)),
            },
            Target::Service(_) => serving_if(
                self.checks
                    .values()
                    .all(|state| state.is_some_and(check_serves)),
            ),
        }
    }
}

fn check_serves(state: CheckState) -> bool {
    matches!(state, CheckState::Passing | CheckState::Warning)
}

fn serving_if(serving: bool) -> ServingStatus {
    if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

/// An open `Watch`: the model, the events that move it, and the last status sent.
struct Watcher {
    model: Model,
    events: broadcast::Receiver<Event>,
    engine: Engine,
    closing: watch::Receiver<bool>,
    sent: Option<ServingStatus>,
}

impl Watcher {
    /// The next status to send: the current one if it differs from the last sent, else the first
    /// change; `None` once the engine or the server goes away.
    async fn next(mut self) -> Option<(Result<HealthCheckResponse, RpcStatus>, Watcher)> {
        loop {
            let now = self.model.serving();
            if self.sent != Some(now) {
                self.sent = Some(now);
                return Some((Ok(response(now)), self));
            }
            // Events first: the last change (`stopping`) reaches the watcher before its stream ends.
            tokio::select! {
                biased;
                event = self.events.recv() => match event {
                    Ok(event) => self.model.apply(&event),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.model.reload(&self.engine.snapshot());
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.closing.wait_for(|closing| *closing) => return None,
            }
        }
    }
}

/// The stream `Watch` answers with.
pub(crate) type WatchStream =
    Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, RpcStatus>> + Send>>;

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, RpcStatus> {
        let name = request.into_inner().service;
        let model = Model::new(self.target(&name), &self.engine.snapshot());
        match model.serving() {
            ServingStatus::ServiceUnknown => Err(RpcStatus::not_found(format!(
                "unknown service {name:?}: not a check or a configured service"
            ))),
            status => Ok(Response::new(response(status))),
        }
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, RpcStatus> {
        let name = request.into_inner().service;
        // Subscribe before reading the snapshot: a change in between arrives as an event.
        let events = self.engine.subscribe();
        let watcher = Watcher {
            model: Model::new(self.target(&name), &self.engine.snapshot()),
            events,
            engine: self.engine.clone(),
            closing: self.closing.clone(),
            sent: None,
        };
        let stream = futures_util::stream::unfold(watcher, Watcher::next);
        Ok(Response::new(Box::pin(stream)))
    }
}
