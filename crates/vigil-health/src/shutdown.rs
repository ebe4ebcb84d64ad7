//! Graceful shutdown: phases, prioritized components with timeouts, and hooks.
//!
//! When shutdown starts — by a signal, a request, or a critical check that stays failing past its
//! grace period — the engine turns `stopping` first, so readiness fails and load balancers drain the
//! node before anything closes. Then, in order:
//!
//! 1. pre-shutdown hooks, one after another;
//! 2. components by ascending priority; components of equal priority stop concurrently;
//! 3. post-shutdown hooks.
//!
//! Every step has a timeout; one that fails or times out is reported and the rest still run.
//!
//! ```no_run
//! # async fn run(engine: vigil_health::Engine) {
//! use std::time::Duration;
//! use vigil_health::shutdown::{Coordinator, Phase};
//!
//! let shutdown = Coordinator::new().with_engine(engine);
//! shutdown.component("http-server", 10, Duration::from_secs(20), || async { Ok::<_, std::io::Error>(()) });
//! shutdown.hook(Phase::PostShutdown, "flush-logs", || async { Ok::<_, std::io::Error>(()) });
//! shutdown.listen_for_signals();
//! let report = shutdown.run().await;
//! println!("stopped after {}", report.reason);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use tokio::time::{timeout, Instant};

use crate::check::CheckState;
use crate::engine::Engine;
use crate::event::Event;
use crate::scheduler::{humanize, unwind_to_err};

/// The phases of a shutdown, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Before components stop: the engine is already `stopping`.
    PreShutdown,
    /// Components stop by priority.
    Shutdown,
    /// After every component has stopped.
    PostShutdown,
}

/// What started the shutdown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A termination signal (`SIGTERM`, `SIGINT`).
    Signal(&'static str),
    /// A critical check stayed failing for the configured grace period.
    CriticalCheck {
        /// The check.
        check: String,
        /// How long it had been failing.
        failing_for: Duration,
    },
    /// The program asked for it.
    Requested(String),
    /// A part of the node failed for good and the process cannot go on without it (its Raft
    /// server stopped, say); the process should exit with a failure so that its supervisor
    /// starts it again.
    Fault(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Signal(signal) => write!(f, "{signal}"),
            Reason::CriticalCheck { check, failing_for } => {
                write!(
                    f,
                    "critical check \"{check}\" failing for {}",
                    humanize(*failing_for)
                )
            }
            Reason::Requested(why) => write!(f, "request: {why}"),
            Reason::Fault(what) => write!(f, "failure: {what}"),
        }
    }
}

/// How one step ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It finished.
    Completed,
    /// It returned an error.
    Failed(String),
    /// It did not finish within its timeout and was abandoned.
    TimedOut,
}

/// One step of a finished shutdown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepReport {
    /// Its phase.
    pub phase: Phase,
    /// The component or hook name.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took.
    pub elapsed: Duration,
}

/// What a shutdown did, step by step, in the order steps finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// What started it.
    pub reason: Reason,
    /// Every step.
    pub steps: Vec<StepReport>,
}

impl Report {
    /// Whether every step completed.
    pub fn is_clean(&self) -> bool {
        self.steps.iter().all(|s| s.outcome == Outcome::Completed)
    }
}

type StepFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type StepFn = Box<dyn FnOnce() -> StepFuture + Send>;

struct Step {
    phase: Phase,
    name: String,
    priority: i32,
    timeout: Duration,
    run: StepFn,
}

/// Coordinates a graceful shutdown. Cheap to clone; clones share the same shutdown.
#[derive(Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Mutex<Option<Engine>>,
    steps: Mutex<Vec<Step>>,
    hook_timeout: Duration,
    reason: watch::Sender<Option<Reason>>,
}

impl Default for Coordinator {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coordinator")
            .field("reason", &*self.inner.reason.borrow())
            .finish_non_exhaustive()
    }
}

impl Coordinator {
    /// A coordinator with no steps; hooks time out after 5 s.
    pub fn new() -> Self {
        Coordinator {
            inner: Arc::new(Inner {
                engine: Mutex::new(None),
                steps: Mutex::new(Vec::new()),
                hook_timeout: Duration::from_secs(5),
                reason: watch::Sender::new(None),
            }),
        }
    }

    /// Marks `engine` stopping as the very first act of shutdown, and stops its checks at the end.
    pub fn with_engine(self, engine: Engine) -> Self {
        *lock(&self.inner.engine) = Some(engine);
        self
    }

    /// Adds a component to stop in the shutdown phase. Lower priorities stop first.
    pub fn component<F, Fut, E>(
        &self,
        name: impl Into<String>,
        priority: i32,
        timeout: Duration,
        stop: F,
    ) where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        self.add(Phase::Shutdown, name.into(), priority, timeout, stop);
    }

    /// Adds a hook to run in `phase` (in the shutdown phase it runs before every component).
    pub fn hook<F, Fut, E>(&self, phase: Phase, name: impl Into<String>, hook: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        self.add(phase, name.into(), i32::MIN, self.inner.hook_timeout, hook);
    }

    fn add<F, Fut, E>(&self, phase: Phase, name: String, priority: i32, timeout: Duration, f: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        let run: StepFn =
            Box::new(move || Box::pin(async move { f().await.map_err(|e| e.to_string()) }));
        lock(&self.inner.steps).push(Step {
            phase,
            name,
            priority,
            timeout,
            run,
        });
    }

    /// Starts the shutdown. Returns false if it had already started (the first reason stays).
    pub fn trigger(&self, reason: Reason) -> bool {
        let mut first = false;
        self.inner.reason.send_if_modified(|current| {
            first = current.is_none();
            if first {
                *current = Some(reason);
            }
            first
        });
        if first {
            if let Some(engine) = lock(&self.inner.engine).as_ref() {
                engine.begin_stopping();
            }
        }
        first
    }

    /// Why shutdown started, once it has.
    pub fn reason(&self) -> Option<Reason> {
        self.inner.reason.borrow().clone()
    }

    /// Waits until shutdown starts and returns why.
    pub async fn triggered(&self) -> Reason {
        let mut rx = self.inner.reason.subscribe();
        loop {
            if let Some(reason) = rx.borrow_and_update().clone() {
                return reason;
            }
            if rx.changed().await.is_err() {
                // The sender lives in `self.inner`, which outlives this borrow.
                unreachable!("shutdown coordinator dropped while awaited");
            }
        }
    }

    /// Starts the shutdown on the first `SIGTERM` or `SIGINT` (Ctrl-C).
    pub fn listen_for_signals(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            let signal = wait_for_signal().await;
            this.trigger(Reason::Signal(signal));
        });
    }

    /// Starts the shutdown when a critical check stays `critical` for `grace`.
    pub fn stop_on_critical(&self, engine: &Engine, grace: Duration) {
        let mut events = engine.subscribe();
        let failing: Vec<_> = engine
            .snapshot()
            .checks()
            .filter(|v| v.spec.critical && v.state == CheckState::Critical)
            .map(|v| (v.spec.name.clone(), v.since))
            .collect();
        for (check, since) in failing {
            self.arm_critical(engine.clone(), check, since, grace);
        }
        let this = self.clone();
        let engine = engine.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    _ = this.triggered() => return,
                    event = events.recv() => event,
                };
                match event {
                    Ok(Event::CheckChanged {
                        check,
                        to: CheckState::Critical,
                        at,
                        ..
                    }) => {
                        let critical = engine
                            .snapshot()
                            .check(&check)
                            .is_some_and(|v| v.spec.critical);
                        if critical {
                            this.arm_critical(engine.clone(), check.to_string(), Some(at), grace);
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                    _ => {}
                }
            }
        });
    }

    fn arm_critical(
        &self,
        engine: Engine,
        check: String,
        since: Option<time::OffsetDateTime>,
        grace: Duration,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let still_failing = engine
                .snapshot()
                .check(&check)
                .is_some_and(|v| v.state == CheckState::Critical && v.since == since);
            if still_failing {
                this.trigger(Reason::CriticalCheck {
                    check,
                    failing_for: grace,
                });
            }
        });
    }

    /// Waits for the shutdown to start, then runs every step and reports.
    pub async fn run(&self) -> Report {
        let reason = self.triggered().await;
        let mut steps = std::mem::take(&mut *lock(&self.inner.steps));
        steps.sort_by_key(|s| (s.phase, s.priority));
        let mut reports = Vec::with_capacity(steps.len());
        let mut steps = steps.into_iter().peekable();
        while let Some(first) = steps.next() {
            let mut batch = vec![first];
            while let Some(next) = steps.next_if(|s| concurrent(&batch[0], s)) {
                batch.push(next);
            }
            reports.extend(run_batch(batch).await);
        }
        if let Some(engine) = lock(&self.inner.engine).as_ref() {
            engine.stop();
        }
        Report {
            reason,
            steps: reports,
        }
    }
}

/// Components of equal priority stop together; hooks run one at a time.
fn concurrent(a: &Step, b: &Step) -> bool {
    a.phase == Phase::Shutdown
        && b.phase == Phase::Shutdown
        && a.priority == b.priority
        && a.priority != i32::MIN
}

async fn run_batch(batch: Vec<Step>) -> Vec<StepReport> {
    let mut set = JoinSet::new();
    for step in batch {
        set.spawn(async move {
            let started = Instant::now();
            let outcome = match timeout(step.timeout, unwind_to_err(step.run)).await {
                Ok(Ok(Ok(()))) => Outcome::Completed,
                Ok(Ok(Err(e))) => Outcome::Failed(e),
                Ok(Err(panic)) => Outcome::Failed(format!("panicked: {panic}")),
                Err(_) => Outcome::TimedOut,
            };
            StepReport {
                phase: step.phase,
                name: step.name,
                outcome,
                elapsed: started.elapsed(),
            }
        });
    }
    let mut reports = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(report) => reports.push(report),
            Err(e) => tracing::error!("shutdown step panicked: {e}"),
        }
    }
    reports
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "SIGINT"
}
