//! The driver of `vigil up`: feeds the scheduling core with what the service runners report,
//! spawns a runner the moment the core releases its service, keeps the state file current, tells
//! an [`Observer`] everything worth showing, and stops services in reverse dependency order.
//!
//! One `Up` goes through [`Up::start`], then [`Up::supervise`] (restarts, health changes and
//! dependants following their `on_dependency_unhealthy` policy, decided by
//! [`crate::supervise`], until interrupted), and finally [`Up::stop`]; `vigil up -d` runs the
//! same in a background process. An interruption (a `true` on the `interrupt` channel, which the command sets on
//! Ctrl-C or SIGTERM) ends `start` or `supervise` at once; the caller then calls `stop`, which stops
//! everything launched so far. With a [`Registry`], services with a `register` table are
//! registered once ready and deregistered when they end for good or are stopped (see
//! [`crate::register`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::graph;
use crate::launch::Backend;
use crate::process::Stopped;
use crate::register::{Registrations, Registry, RegistryOutcome};
use crate::report::Report;
use crate::runner::{self, Control, Message, Update};
use crate::schedule::{Event, Mode, Notice, Outcome, Scheduler};
use crate::stack::{RestartMode, ServiceId, Stack};
use crate::state::{ComposeState, Proc, ServiceState, StackPhase, State, StopRecord};
use crate::supervise::{Action, Status, Supervisor};

/// What the person running `vigil up` is shown. Every method has a default that ignores it.
pub trait Observer {
    /// A service's runner reported an event (`at` since the start).
    fn event(&mut self, _scheduler: &Scheduler, _id: ServiceId, _at: Duration, _event: &Event) {}
    /// Something to say loudly: a degraded group, a fatal problem.
    fn notice(&mut self, _notice: &Notice) {}
    /// Something to say about a service beyond its events: a dependant waiting or restarted, a
    /// registration, a state file that cannot be written.
    fn note(&mut self, _service: &str, _text: &str) {}
    /// After the start, whenever a service's status changed.
    fn statuses(&mut self, _stack: &Stack, _statuses: &[Status]) {}
    /// Called about ten times a second during startup, to redraw progress.
    fn tick(&mut self, _scheduler: &Scheduler, _now: Duration) {}
    /// A service was stopped.
    fn stopped(&mut self, _service: &str, _stopped: Stopped) {}
}

/// An observer that shows nothing.
pub struct Silent;

impl Observer for Silent {}

/// Longest a stop waits for registrations and deregistrations under way.
const REGISTRY_PATIENCE: Duration = Duration::from_secs(10);

/// A service's log is cut once it is larger than this (see [`crate::process::cap_log`]).
pub const LOG_CAP: u64 = 10 * 1024 * 1024;

/// How often the supervisor looks at the size of the services' logs.
const LOG_CHECK: Duration = Duration::from_secs(5);

/// How `vigil up` runs.
pub struct Options {
    /// Graph (the default) or waves (for comparison).
    pub mode: Mode,
    /// Most services starting at once, over the stack's own `concurrency`.
    pub concurrency: Option<usize>,
    /// Where services run.
    pub backend: Backend,
    /// Directory of the state file (see [`crate::state`]); `None` keeps no state file.
    pub state_dir: Option<PathBuf>,
    /// Where services with a `register` table are registered; `None` registers nothing.
    pub registry: Option<Arc<dyn Registry>>,
}

/// How [`Up::start`] ended.
#[derive(Debug)]
pub enum Started {
    /// The start ended (up, degraded or failed: see the report's outcome).
    Done(Outcome, Report),
    /// Interrupted before it ended.
    Interrupted(Report),
}

/// One run of `vigil up`.
pub struct Up {
    scheduler: Scheduler,
    mode: Mode,
    backend: Arc<Backend>,
    state_dir: Option<PathBuf>,
    state: State,
    stops: Vec<Option<watch::Sender<bool>>>,
    controls: Vec<Option<mpsc::UnboundedSender<Control>>>,
    supervisor: Supervisor,
    log_dir: Option<PathBuf>,
    /// How each service's deregistration at its stop went, for `vigil down` to tell.
    deregistered: Vec<Option<RegistryOutcome>>,
    tasks: tokio::task::JoinSet<()>,
    updates: mpsc::UnboundedReceiver<Message>,
    sender: mpsc::UnboundedSender<Message>,
    registrations: Registrations,
    began: Instant,
}

impl Up {
    /// Prepares a run: nothing starts until [`Up::start`].
    pub fn new(stack: Stack, options: Options) -> Up {
        let levels = graph::levels(&stack);
        let n = stack.services.len();
        let (sender, updates) = mpsc::unbounded_channel();
        let compose = match &options.backend {
            Backend::Compose(project) => Some(ComposeState {
                file: project.file.clone(),
                project: project.name.clone(),
            }),
            Backend::Process { .. } => None,
        };
        let state = State {
            supervisor: supervisor(),
            phase: StackPhase::Starting,
            compose,
            services: stack
                .services
                .iter()
                .zip(levels)
                .map(|(s, level)| ServiceState {
                    name: s.name.clone(),
                    level,
                    stop_grace_ms: u64::try_from(s.stop_grace.as_millis()).unwrap_or(u64::MAX),
                    process: None,
                    container: None,
                    registered: None,
                    started_at: None,
                    status: Status::default(),
                })
                .collect(),
        };
        let log_dir = match &options.backend {
            Backend::Process { log_dir } => log_dir.clone(),
            Backend::Compose(_) => None,
        };
        Up {
            supervisor: Supervisor::new(&stack),
            controls: (0..n).map(|_| None).collect(),
            deregistered: vec![None; n],
            log_dir,
            registrations: Registrations::new(&stack, options.registry),
            scheduler: Scheduler::new(stack, options.mode, options.concurrency),
            mode: options.mode,
            backend: Arc::new(options.backend),
            state_dir: options.state_dir,
            state,
            stops: (0..n).map(|_| None).collect(),
            tasks: tokio::task::JoinSet::new(),
            updates,
            sender,
            began: Instant::now(),
        }
    }

    /// The scheduling core, for progress views.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    fn since(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.began)
    }

    fn launch(&mut self, id: ServiceId) {
        let (stop, stop_rx) = watch::channel(false);
        let (control, control_rx) = mpsc::unbounded_channel();
        self.stops[id.0] = Some(stop);
        self.controls[id.0] = Some(control);
        self.tasks.spawn(runner::run(
            id,
            self.scheduler.stack().service(id).clone(),
            Arc::clone(&self.backend),
            self.sender.clone(),
            stop_rx,
            control_rx,
        ));
    }

    fn save_state(&self) -> std::io::Result<()> {
        let Some(dir) = &self.state_dir else {
            return Ok(());
        };
        let mut state = self.state.clone();
        let launched = self.scheduler.launched();
        state.services = launched
            .iter()
            .map(|id| ServiceState {
                status: self.supervisor.statuses()[id.0].clone(),
                ..self.state.services[id.0].clone()
            })
            .collect();
        state.write(dir)
    }

    /// Applies one runner update; returns a stop result when it was one.
    fn apply(&mut self, message: Message, observer: &mut dyn Observer) -> Option<Stopped> {
        let (id, at, update) = message;
        let at = self.since(at);
        match update {
            Update::Event(event) => {
                self.follow_registration(id, &event);
                let notices = self.scheduler.record(id, at, event.clone());
                let actions = self.supervisor.record(self.scheduler.stack(), id, &event);
                observer.event(&self.scheduler, id, at, &event);
                for notice in &notices {
                    observer.notice(notice);
                }
                self.carry_out(actions, observer);
            }
            Update::Running {
                pid,
                start_time,
                container,
            } => {
                let entry = &mut self.state.services[id.0];
                entry.process = pid
                    .zip(start_time)
                    .map(|(pid, start_time)| Proc { pid, start_time });
                entry.container = container;
                entry.started_at = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_secs());
                if let Err(e) = self.save_state() {
                    observer.note(
                        &self.scheduler.stack().service(id).name,
                        &format!("cannot write the state file: {e}"),
                    );
                }
            }
            Update::Stopped(stopped) => {
                self.stops[id.0] = None;
                return Some(stopped);
            }
        }
        None
    }

    /// Tells what dependants do and restarts those whose policy says so; keeps the state file
    /// current.
    fn carry_out(&mut self, actions: Vec<Action>, observer: &mut dyn Observer) {
        for action in actions {
            let id = action.service();
            let name = self.scheduler.stack().service(id).name.clone();
            observer.note(&name, &action.describe());
            if matches!(action, Action::Restart { .. }) {
                if let Some(control) = &self.controls[id.0] {
                    // A runner that already ended has nothing to restart.
                    let _ = control.send(Control::Restart {
                        reason: "its dependencies are back".to_owned(),
                    });
                }
            }
        }
        if self.state_dir.is_some() {
            if let Err(e) = self.save_state() {
                observer.note("vigil", &format!("cannot write the state file: {e}"));
            }
        }
        observer.statuses(self.scheduler.stack(), self.supervisor.statuses());
    }

    /// Registers a service that turned ready, deregisters one that ended for good: a clean exit
    /// ends it unless its policy restarts it.
    fn follow_registration(&mut self, id: ServiceId, event: &Event) {
        let service = self.scheduler.stack().service(id);
        match event {
            Event::Healthy => self.registrations.ready(id),
            Event::Started if !service.has_health() => self.registrations.ready(id),
            Event::Completed if service.restart.mode != RestartMode::Always => {
                self.registrations.ended(id);
            }
            Event::Failed { .. } => {
                self.registrations.ended(id);
            }
            _ => {}
        }
    }

    /// Tells what became of a registration, and keeps the state file's record of it for
    /// `vigil down`.
    fn registered(&mut self, id: ServiceId, outcome: RegistryOutcome, observer: &mut dyn Observer) {
        let name = self.scheduler.stack().service(id).name.clone();
        if let Some(text) = outcome.describe() {
            observer.note(&name, &text);
        }
        let entry = &mut self.state.services[id.0];
        match outcome {
            RegistryOutcome::Registered(instance) => entry.registered = Some(instance),
            RegistryOutcome::Deregistered(_) => {
                entry.registered = None;
                self.deregistered[id.0] = Some(outcome);
            }
            RegistryOutcome::NotDeregistered(..) => {
                self.deregistered[id.0] = Some(outcome);
                return;
            }
            RegistryOutcome::NotRegistered(..) | RegistryOutcome::Unregistered => return,
        }
        if let Err(e) = self.save_state() {
            observer.note(&name, &format!("cannot write the state file: {e}"));
        }
    }

    /// Waits, at most [`REGISTRY_PATIENCE`], until no registration or deregistration is under
    /// way. What the runners report meanwhile is kept but not shown: the stack is being stopped
    /// or left.
    async fn settle_registrations(&mut self, observer: &mut dyn Observer) {
        let deadline = Instant::now() + REGISTRY_PATIENCE;
        while self.registrations.pending() > 0 {
            tokio::select! {
                (id, outcome) = self.registrations.next() => self.registered(id, outcome, observer),
                Some(message) = self.updates.recv() => {
                    self.apply(message, &mut Silent);
                }
                () = tokio::time::sleep_until(deadline) => return,
            }
        }
    }

    /// Starts the stack; returns when every service settled, the start failed, or `interrupt`
    /// turned `true`.
    pub async fn start(
        &mut self,
        observer: &mut dyn Observer,
        interrupt: &mut watch::Receiver<bool>,
    ) -> Started {
        self.began = Instant::now();
        self.save_state().ok();
        let mut ticks = tokio::time::interval(Duration::from_millis(100));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let now = self.since(Instant::now());
            for id in self.scheduler.startable(now) {
                self.launch(id);
            }
            if let Some(outcome) = self.scheduler.outcome() {
                let total = self.since(Instant::now());
                observer.tick(&self.scheduler, total);
                let report = Report::build(&self.scheduler, self.mode, Some(&outcome), total);
                return Started::Done(outcome, report);
            }
            tokio::select! {
                Some(message) = self.updates.recv() => {
                    self.apply(message, observer);
                }
                (id, outcome) = self.registrations.next() => self.registered(id, outcome, observer),
                _ = interrupt.wait_for(|i| *i) => {
                    let total = self.since(Instant::now());
                    return Started::Interrupted(Report::build(&self.scheduler, self.mode, None, total));
                }
                _ = ticks.tick() => observer.tick(&self.scheduler, now),
            }
        }
    }

    /// After a start: keeps reporting what the runners note (restarts, health changes) until
    /// `interrupt` turns `true`.
    pub async fn supervise(
        &mut self,
        observer: &mut dyn Observer,
        interrupt: &mut watch::Receiver<bool>,
    ) {
        self.state.phase = StackPhase::Up;
        let actions = self.supervisor.arm(self.scheduler.stack());
        self.carry_out(actions, observer);
        let mut log_checks = tokio::time::interval(LOG_CHECK);
        log_checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Some(message) = self.updates.recv() => {
                    self.apply(message, observer);
                }
                (id, outcome) = self.registrations.next() => self.registered(id, outcome, observer),
                _ = interrupt.wait_for(|i| *i) => return,
                _ = log_checks.tick() => self.cap_logs(observer),
            }
        }
    }

    /// Waits, at most ten seconds, for the registrations under way to end, so that a background
    /// supervisor tells their outcome while `vigil up -d` still shows what it says.
    pub async fn settle(&mut self, observer: &mut dyn Observer) {
        self.settle_registrations(observer).await;
    }

    /// Cuts every service log grown over [`LOG_CAP`].
    fn cap_logs(&self, observer: &mut dyn Observer) {
        let Some(dir) = &self.log_dir else { return };
        for service in &self.scheduler.stack().services {
            let log = dir.join(format!("{}.log", service.name));
            if let Err(e) = crate::process::cap_log(&log, LOG_CAP) {
                observer.note(&service.name, &format!("cannot cut its log: {e}"));
            }
        }
    }

    /// Stops every service launched so far, deepest dependency level first (a service stops after
    /// everything that depends on it), the services of a level at the same time, each
    /// deregistered first so that no client is sent to it while it stops. Returns each
    /// service's result in stop order, and removes the state file unless something would not stop.
    pub async fn stop(&mut self, observer: &mut dyn Observer) -> Vec<(String, Stopped)> {
        let launched = self.scheduler.launched();
        let mut results = Vec::new();
        for batch in graph::stop_batches(self.scheduler.stack(), &launched) {
            for id in &batch {
                self.registrations.ended(*id);
            }
            self.settle_registrations(observer).await;
            let mut waiting: Vec<ServiceId> = Vec::new();
            for id in batch {
                if let Some(stop) = &self.stops[id.0] {
                    // A runner that already ended has nothing to stop.
                    if stop.send(true).is_ok() {
                        waiting.push(id);
                    }
                }
            }
            let limit = waiting
                .iter()
                .map(|id| self.scheduler.stack().service(*id).stop_grace)
                .max()
                .unwrap_or_default()
                + Duration::from_secs(10);
            let deadline = Instant::now() + limit;
            while !waiting.is_empty() {
                let message = tokio::time::timeout_at(deadline, self.updates.recv()).await;
                let Ok(Some(message)) = message else {
                    for id in waiting.drain(..) {
                        let name = self.scheduler.stack().service(id).name.clone();
                        observer.stopped(&name, Stopped::Stuck);
                        results.push((name, Stopped::Stuck));
                    }
                    break;
                };
                let id = message.0;
                if let Some(stopped) = self.apply(message, &mut Silent) {
                    waiting.retain(|w| *w != id);
                    let name = self.scheduler.stack().service(id).name.clone();
                    observer.stopped(&name, stopped);
                    results.push((name, stopped));
                }
            }
        }
        if let Backend::Compose(project) = self.backend.as_ref() {
            if let Err(e) = project.remove().await {
                observer.note(
                    &project.name,
                    &format!("cannot remove the compose project: {e}"),
                );
            }
        }
        if let Some(dir) = &self.state_dir {
            // Only `vigil down` reads them, and it says what it can without them.
            let stops: Vec<StopRecord> = results
                .iter()
                .map(|(name, stopped)| StopRecord {
                    name: name.clone(),
                    stopped: *stopped,
                    deregistered: self
                        .scheduler
                        .stack()
                        .service_id(name)
                        .and_then(|id| self.deregistered[id.0].clone()),
                })
                .collect();
            let _ = State::write_stops(dir, &stops);
            if results.iter().all(|(_, s)| *s != Stopped::Stuck) {
                let _ = State::remove(dir);
            }
        }
        results
    }
}

/// This process, as the stack's supervisor.
fn supervisor() -> Option<Proc> {
    let pid = std::process::id();
    crate::process::start_time(pid).map(|start_time| Proc { pid, start_time })
}
