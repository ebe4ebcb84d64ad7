//! The engine: the registry of checks, their state, and the snapshot and events derived from it.
//!
//! Writers (scheduled probes, TTL updates, registrations) take one short lock, update the one
//! check concerned and the incremental tallies, and publish a new [`Snapshot`]. Readers never lock:
//! they load the current snapshot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use rand::Rng;
use time::OffsetDateTime;
use tokio::runtime::Handle;
use tokio::sync::{broadcast, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::check::{transition, valid_check_name, CheckResult, CheckSpec, CheckState, Streak};
use crate::event::Event;
use crate::history::{History, HistoryEntry};
use crate::probe::{Probe, Report, Verdict};
use crate::scheduler::{self, Sink};
use crate::score::{to_ratio, Contribution, ScoreBoard, ScoreWindow};
use crate::snapshot::{CheckKind, CheckStats, CheckView, Snapshot};
use crate::status::{Status, Tally};

/// Settings of an [`Engine`]. Build with [`Engine::builder`].
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Node identifier shown as `node_id`.
    pub node_id: String,
    /// Version of the watched service shown as `version`.
    pub version: String,
    /// System score at or above which the node may be `healthy` (default 0.95).
    pub healthy_threshold: f64,
    /// Scores below this are reported as poor in summaries and alerts (default 0.75).
    pub degraded_threshold: f64,
    /// Results kept per check (default 100).
    pub history_len: usize,
    /// Oldest result kept per check (default 1 h).
    pub history_age: Duration,
    /// Results per check in the score's sliding window (default 20).
    pub score_window: usize,
    /// Whether first runs are spread randomly within each check's interval (default true).
    pub stagger: bool,
    /// Most checks registered at once (default [`DEFAULT_MAX_CHECKS`]); registering a new name past
    /// it fails with [`RegisterError::TooMany`]. Every check costs memory, a task and a share of
    /// every snapshot and `/metrics` rendering, so an unbounded count is unbounded work.
    pub max_checks: usize,
}

/// The default of [`EngineConfig::max_checks`].
pub const DEFAULT_MAX_CHECKS: usize = 10_000;

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            node_id: "local".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            healthy_threshold: 0.95,
            degraded_threshold: 0.75,
            history_len: 100,
            history_age: Duration::from_secs(3600),
            score_window: 20,
            stagger: true,
            max_checks: DEFAULT_MAX_CHECKS,
        }
    }
}

/// Builds an [`Engine`].
#[derive(Debug, Default)]
pub struct EngineBuilder {
    config: EngineConfig,
}

impl EngineBuilder {
    /// Sets the node identifier.
    pub fn node_id(mut self, node_id: impl Into<String>) -> Self {
        self.config.node_id = node_id.into();
        self
    }

    /// Sets the version reported.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.config.version = version.into();
        self
    }

    /// Sets the healthy and degraded score thresholds.
    pub fn score_thresholds(mut self, healthy: f64, degraded: f64) -> Self {
        self.config.healthy_threshold = healthy;
        self.config.degraded_threshold = degraded;
        self
    }

    /// Sets the history bounds per check.
    pub fn history(mut self, max_len: usize, max_age: Duration) -> Self {
        self.config.history_len = max_len;
        self.config.history_age = max_age;
        self
    }

    /// Sets the number of results in each check's score window.
    pub fn score_window(mut self, results: usize) -> Self {
        self.config.score_window = results.max(1);
        self
    }

    /// Sets the most checks registered at once.
    pub fn max_checks(mut self, max: usize) -> Self {
        self.config.max_checks = max;
        self
    }

    /// Turns the random stagger of first runs on or off.
    pub fn stagger(mut self, stagger: bool) -> Self {
        self.config.stagger = stagger;
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// Builds the engine. Checks run once [`Engine::start`] is called.
    pub fn build(self) -> Engine {
        Engine::new(self.config)
    }
}

/// A check that cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// The name is empty or has characters that do not fit URLs and metric labels.
    #[error(
        "invalid check name {0:?}: use 1-128 characters from a-z, A-Z, 0-9, '.', '_', '-', ':'"
    )]
    InvalidName(String),
    /// A zero interval would run the check in a loop.
    #[error("check {0:?}: interval must be greater than zero")]
    ZeroInterval(String),
    /// A zero timeout would fail every run.
    #[error("check {0:?}: timeout must be greater than zero")]
    ZeroTimeout(String),
    /// A zero TTL would lapse at once.
    #[error("check {0:?}: ttl must be greater than zero")]
    ZeroTtl(String),
    /// The engine holds [`EngineConfig::max_checks`] checks already; replacing one still works.
    #[error("check {name:?}: the node holds {limit} checks, its limit (max_checks); unregister one first")]
    TooMany {
        /// The check refused.
        name: String,
        /// The limit.
        limit: usize,
    },
}

/// A check that the caller named does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no check named {0:?}")]
pub struct UnknownCheck(pub String);

/// A TTL update that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtlError {
    /// No such check.
    #[error(transparent)]
    Unknown(#[from] UnknownCheck),
    /// The check is run by a probe; only TTL checks accept pushed results.
    #[error("check {0:?} is not a TTL check")]
    NotTtl(String),
}

/// Whether a registration added a check or replaced one of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// A new check.
    Added,
    /// An existing check was replaced; its state starts over.
    Replaced,
}

/// The health engine. Cheap to clone; every clone is the same engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("node_id", &self.inner.config.node_id)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: EngineConfig,
    node_id: Arc<str>,
    version: Arc<str>,
    start_time: OffsetDateTime,
    state: Mutex<State>,
    snapshot: ArcSwap<Snapshot>,
    events: broadcast::Sender<Event>,
}

#[derive(Default)]
struct State {
    /// Boxed: a hash table keeps up to half its slots empty, and an entry is hundreds of bytes.
    checks: HashMap<Arc<str>, Box<Entry>>,
    views: imbl::OrdMap<Arc<str>, Arc<CheckView>>,
    tally: Tally,
    scores: ScoreBoard,
    status: Option<Status>,
    stopping: bool,
    runtime: Option<Handle>,
    next_id: u64,
    /// Events of the change being applied, sent once the snapshot that shows it is published, so
    /// a subscriber that reads the snapshot on an event never sees the state before it.
    unsent: Vec<Event>,
}

enum Feed {
    Probe(Arc<dyn Probe>),
    Ttl { ttl: Duration, reset: Arc<Notify> },
}

struct Entry {
    id: u64,
    name: Arc<str>,
    spec: Arc<CheckSpec>,
    feed: Feed,
    registered: Instant,
    state: CheckState,
    streak: Streak,
    window: ScoreWindow,
    history: History,
    view: Arc<CheckView>,
    task: Option<JoinHandle<()>>,
}

impl Entry {
    fn contribution(&self) -> Option<Contribution> {
        if !self.spec.enabled {
            return None;
        }
        Some(Contribution {
            component: self.spec.component.as_deref().map(Arc::from),
            weight: self.spec.weight(),
            ppm: self.window.ppm()?,
        })
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Engine {
    /// A builder with the default configuration.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    fn new(config: EngineConfig) -> Engine {
        let (events, _) = broadcast::channel(1024);
        let node_id: Arc<str> = config.node_id.as_str().into();
        let version: Arc<str> = config.version.as_str().into();
        let start_time = OffsetDateTime::now_utc();
        let placeholder = Snapshot {
            node_id: node_id.clone(),
            version: version.clone(),
            start_time,
            status: Status::Healthy,
            message: String::new(),
            last_update: start_time,
            system_score: 1.0,
            component_scores: Default::default(),
            checks: Default::default(),
            checks_json: Default::default(),
            metrics_text: Default::default(),
            #[cfg(feature = "axum")]
            bodies: Default::default(),
        };
        let engine = Engine {
            inner: Arc::new(Inner {
                config,
                node_id,
                version,
                start_time,
                state: Mutex::new(State::default()),
                snapshot: ArcSwap::from_pointee(placeholder),
                events,
            }),
        };
        engine.inner.publish(&mut engine.inner.lock());
        engine
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The latest snapshot. Never blocks on writers.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.load_full()
    }

    /// Events from now on. A receiver that falls more than 1,024 events behind skips ahead.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Registers a check run by `probe`, replacing any check of the same name.
    pub fn register(
        &self,
        spec: CheckSpec,
        probe: impl Probe,
    ) -> Result<Registered, RegisterError> {
        self.register_shared(spec, Arc::new(probe))
    }

    /// Registers a check run by a shared probe, replacing any check of the same name.
    pub fn register_shared(
        &self,
        spec: CheckSpec,
        probe: Arc<dyn Probe>,
    ) -> Result<Registered, RegisterError> {
        if spec.timeout.is_zero() {
            return Err(RegisterError::ZeroTimeout(spec.name));
        }
        self.insert(spec, Feed::Probe(probe))
    }

    /// Registers a TTL check: it passes, warns or fails as the watched process says through
    /// [`Engine::update_ttl`], and fails when no update arrives for `ttl`.
    ///
    /// The thresholds come from `spec`, as for any check. Pushed results are usually authoritative:
    /// give the spec [`Thresholds::immediate`](crate::Thresholds::immediate) for Consul's semantics
    /// (one `fail`, or one lapse of the TTL, is critical at once).
    pub fn register_ttl(
        &self,
        spec: CheckSpec,
        ttl: Duration,
    ) -> Result<Registered, RegisterError> {
        if ttl.is_zero() {
            return Err(RegisterError::ZeroTtl(spec.name));
        }
        let reset = Arc::new(Notify::new());
        self.insert(spec, Feed::Ttl { ttl, reset })
    }

    fn insert(&self, spec: CheckSpec, feed: Feed) -> Result<Registered, RegisterError> {
        if !valid_check_name(&spec.name) {
            return Err(RegisterError::InvalidName(spec.name));
        }
        if spec.interval.is_zero() {
            return Err(RegisterError::ZeroInterval(spec.name));
        }
        let name: Arc<str> = spec.name.as_str().into();
        let spec = Arc::new(spec);
        let kind = match &feed {
            Feed::Probe(probe) => CheckKind::Probe(probe.kind()),
            Feed::Ttl { ttl, .. } => CheckKind::Ttl(*ttl),
        };
        let mut guard = self.inner.lock();
        let st = &mut *guard;
        let replaced = st.checks.contains_key(&name);
        let limit = self.inner.config.max_checks;
        if !replaced && st.checks.len() >= limit {
            return Err(RegisterError::TooMany {
                name: spec.name.clone(),
                limit,
            });
        }
        if replaced {
            st.remove(&name);
        }
        st.next_id += 1;
        let view = Arc::new(CheckView {
            spec: spec.clone(),
            kind,
            state: CheckState::Unknown,
            streak: Streak::default(),
            score: None,
            last: None,
            since: None,
            stats: CheckStats::default(),
        });
        let mut entry = Entry {
            id: st.next_id,
            name: name.clone(),
            spec: spec.clone(),
            feed,
            registered: Instant::now(),
            state: CheckState::Unknown,
            streak: Streak::default(),
            window: ScoreWindow::new(self.inner.config.score_window),
            history: History::new(self.inner.config.history_len, self.inner.config.history_age),
            view: view.clone(),
            task: None,
        };
        if let Some(runtime) = &st.runtime {
            entry.task = self.inner.spawn(runtime, &entry);
        }
        st.tally.add(&name, &spec, CheckState::Unknown);
        st.views.insert(name.clone(), view);
        st.checks.insert(name.clone(), Box::new(entry));
        st.unsent.push(Event::CheckRegistered { check: name });
        self.inner.publish(st);
        Ok(if replaced {
            Registered::Replaced
        } else {
            Registered::Added
        })
    }

    /// Removes a check; its task stops and it no longer counts.
    pub fn unregister(&self, name: &str) -> Result<(), UnknownCheck> {
        let mut guard = self.inner.lock();
        let st = &mut *guard;
        let Some(name) = st.checks.get_key_value(name).map(|(k, _)| k.clone()) else {
            return Err(UnknownCheck(name.to_owned()));
        };
        st.remove(&name);
        st.unsent.push(Event::CheckUnregistered { check: name });
        self.inner.publish(st);
        Ok(())
    }

    /// Applies a result pushed to a TTL check and restarts its TTL.
    pub fn update_ttl(
        &self,
        name: &str,
        verdict: Verdict,
        note: Option<String>,
    ) -> Result<(), TtlError> {
        let mut guard = self.inner.lock();
        let st = &mut *guard;
        let entry = st
            .checks
            .get(name)
            .ok_or_else(|| UnknownCheck(name.to_owned()))?;
        let Feed::Ttl { reset, .. } = &entry.feed else {
            return Err(TtlError::NotTtl(name.to_owned()));
        };
        reset.notify_one();
        let id = entry.id;
        let message =
            note.unwrap_or_else(|| format!("TTL check set to {} by update", verdict.as_str()));
        let report = Report::new(verdict, message);
        let result = CheckResult::from_report(report, Duration::ZERO, OffsetDateTime::now_utc());
        self.inner.apply(st, name, id, result);
        Ok(())
    }

    /// The kept results of one check, oldest first.
    pub fn history(&self, name: &str) -> Option<Vec<HistoryEntry>> {
        let st = self.inner.lock();
        let oldest_kept = OffsetDateTime::now_utc() - self.inner.config.history_age;
        st.checks.get(name).map(|e| {
            e.history
                .iter()
                .filter(|h| h.timestamp >= oldest_kept)
                .collect()
        })
    }

    /// Starts running checks on the current tokio runtime; checks registered later start at once.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn start(&self) {
        let runtime = Handle::current();
        let mut guard = self.inner.lock();
        let st = &mut *guard;
        for entry in st.checks.values_mut() {
            if entry.task.is_none() {
                entry.task = self.inner.spawn(&runtime, entry);
            }
        }
        st.runtime = Some(runtime);
    }

    /// Stops running checks. Their last state stays visible.
    pub fn stop(&self) {
        let mut st = self.inner.lock();
        st.runtime = None;
        for entry in st.checks.values_mut() {
            if let Some(task) = entry.task.take() {
                task.abort();
            }
        }
    }

    /// Marks the node `stopping` so readiness fails before anything closes. Cannot be undone.
    pub fn begin_stopping(&self) {
        let mut guard = self.inner.lock();
        guard.stopping = true;
        self.inner.publish(&mut guard);
    }
}

impl State {
    fn remove(&mut self, name: &Arc<str>) {
        if let Some(entry) = self.checks.remove(name) {
            self.tally.remove(name, &entry.spec, entry.state);
            if let Some(c) = entry.contribution() {
                self.scores.remove(&c);
            }
            self.views.remove(name);
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data behind: every update is applied
        // field by field with no invariant spanning an await or a user callback.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn spawn(self: &Arc<Self>, runtime: &Handle, entry: &Entry) -> Option<JoinHandle<()>> {
        if !entry.spec.enabled {
            return None;
        }
        let weak = Arc::downgrade(self);
        let sink = sink(weak, entry.name.clone(), entry.id);
        Some(match &entry.feed {
            Feed::Probe(probe) => {
                let delay = if self.config.stagger {
                    rand::rng().random_range(Duration::ZERO..entry.spec.interval)
                } else {
                    Duration::ZERO
                };
                runtime.spawn(scheduler::run_probe(
                    entry.spec.clone(),
                    probe.clone(),
                    delay,
                    sink,
                ))
            }
            Feed::Ttl { ttl, reset } => {
                runtime.spawn(scheduler::run_ttl(*ttl, reset.clone(), sink))
            }
        })
    }

    /// Applies one result of check `name` registration `id`; false when that registration is gone.
    fn apply(&self, st: &mut State, name: &str, id: u64, result: CheckResult) -> bool {
        let Some(entry) = st.checks.get_mut(name).filter(|e| e.id == id) else {
            return false;
        };
        let in_start_period = entry.registered.elapsed() < entry.spec.start_period;
        let counted = result.verdict == Verdict::Pass
            || !(in_start_period && entry.state == CheckState::Unknown);
        let (state, streak) = transition(
            entry.state,
            entry.streak,
            result.verdict,
            entry.spec.thresholds,
            in_start_period,
        );
        entry.history.push(HistoryEntry {
            timestamp: result.timestamp,
            verdict: result.verdict,
            latency: result.latency,
            counted,
        });
        if counted {
            let before = entry.contribution();
            entry.window.push(result.verdict);
            let after = entry.contribution();
            if before != after {
                if let Some(c) = before {
                    st.scores.remove(&c);
                }
                if let Some(c) = after {
                    st.scores.add(&c);
                }
            }
        }
        let from = entry.state;
        if state != from {
            st.tally.remove(&entry.name, &entry.spec, from);
            st.tally.add(&entry.name, &entry.spec, state);
            entry.state = state;
        }
        entry.streak = streak;

        let mut view = CheckView::clone(&entry.view);
        view.state = state;
        view.streak = streak;
        view.score = entry.window.ppm().map(to_ratio);
        view.stats.record(result.verdict, result.latency);
        if state != from {
            view.since = Some(result.timestamp);
            st.unsent.push(Event::CheckChanged {
                check: entry.name.clone(),
                from,
                to: state,
                message: result.message.clone(),
                at: result.timestamp,
            });
        }
        view.last = Some(result);
        entry.view = Arc::new(view);
        st.views.insert(entry.name.clone(), entry.view.clone());
        self.publish(st);
        true
    }

    /// Derives the status and publishes a new snapshot.
    fn publish(&self, st: &mut State) {
        let score = st.scores.system();
        let cause = st
            .tally
            .cause(st.stopping, score, self.config.healthy_threshold);
        let detail = cause
            .check()
            .and_then(|c| st.checks.get(c))
            .and_then(|entry| failure_detail(entry));
        let status = cause.status();
        let message = cause.message(detail.as_deref());
        let now = OffsetDateTime::now_utc();
        if let Some(from) = st.status.filter(|&s| s != status) {
            st.unsent.push(Event::StatusChanged {
                from,
                to: status,
                message: message.clone(),
                at: now,
            });
        }
        st.status = Some(status);
        self.snapshot.store(Arc::new(Snapshot {
            node_id: self.node_id.clone(),
            version: self.version.clone(),
            start_time: self.start_time,
            status,
            message,
            last_update: now,
            system_score: score,
            component_scores: st.scores.components(),
            checks: st.views.clone(),
            checks_json: Default::default(),
            metrics_text: Default::default(),
            #[cfg(feature = "axum")]
            bodies: Default::default(),
        }));
        for event in st.unsent.drain(..) {
            let _ = self.events.send(event);
        }
    }
}

/// What to say of a failing check in the status message: its last message, or, when it has started
/// passing again but not often enough to count as passing, how far its recovery has come.
fn failure_detail(entry: &Entry) -> Option<String> {
    let last = entry.view.last.as_ref()?;
    if last.verdict == Verdict::Pass {
        let needed = entry.spec.thresholds.passing_after();
        return Some(format!(
            "recovering, {} of {needed} passes needed",
            entry.streak.successes
        ));
    }
    Some(first_line(&last.message).to_owned())
}

/// The part of a check message fit for a status line: its first line, at most 200 characters.
fn first_line(message: &str) -> &str {
    let line = message.lines().next().unwrap_or_default();
    match line.char_indices().nth(200) {
        Some((cut, _)) => &line[..cut],
        None => line,
    }
}

fn sink(engine: Weak<Inner>, name: Arc<str>, id: u64) -> Sink {
    Box::new(move |result| {
        let Some(inner) = engine.upgrade() else {
            return false;
        };
        let mut st = inner.lock();
        inner.apply(&mut st, &name, id, result)
    })
}
