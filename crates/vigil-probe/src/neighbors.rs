//! Neighbour monitoring: a node probes the peers it depends on (over gRPC health, HTTP or TCP),
//! each on its own schedule, and keeps a HEALTHY / DEGRADED / UNAVAILABLE state per neighbour.
//!
//! States move by consecutive results with the thresholds of checks (by default 1 failure →
//! DEGRADED, 3 → UNAVAILABLE, 1 success → HEALTHY). Every move is a [`NeighborEvent`] and a log
//! line. A neighbour listed with `monitor = false` (a control link) is shown but never probed. A
//! neighbour with `degrade_node` gets a non-critical check `neighbor-NAME` in the engine that
//! fails while it is UNAVAILABLE, so the node reports itself degraded.
//!
//! ```no_run
//! # async fn run() -> Result<(), vigil_probe::ProbeSpecError> {
//! use vigil_probe::neighbors::{NeighborSpec, Neighbors, Protocol};
//! let neighbors = Neighbors::new(vec![NeighborSpec::new("worker-c", "127.0.0.1:50053", Protocol::Grpc)])?;
//! neighbors.start(None);
//! for view in neighbors.views() {
//!     println!("{} {}", view.name, view.state.as_str());
//! }
//! # Ok(())
//! # }
//! ```

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use vigil_health::{
    transition, CheckSpec, CheckState, Engine, Probe, Report, Streak, Thresholds, Verdict,
};

use crate::{Built, ProbeOptions, ProbeSpec, ProbeSpecError};

/// How a neighbour is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// `grpc.health.v1.Health/Check` of `""` (or of the service after a `/` in the address).
    Grpc,
    /// An HTTP GET: the address is a URL, or `HOST:PORT` for `http://HOST:PORT/health`.
    Http,
    /// A TCP connection.
    Tcp,
}

impl Protocol {
    /// The lowercase name used in config and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http",
            Protocol::Tcp => "tcp",
        }
    }

    /// The probe target for `address`.
    pub fn target(self, address: &str) -> String {
        match self {
            Protocol::Grpc => format!("grpc://{address}"),
            Protocol::Http if address.contains("://") => address.to_owned(),
            Protocol::Http => format!("http://{address}/health"),
            Protocol::Tcp => format!("tcp://{address}"),
        }
    }
}

/// One neighbour as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighborSpec {
    /// Unique name.
    pub name: String,
    /// Where it is: `HOST:PORT` (gRPC may add `/SERVICE`; HTTP may be a whole URL).
    pub address: String,
    /// How it is probed.
    pub protocol: Protocol,
    /// Time between probes (default 5 s).
    pub interval: Duration,
    /// Time a probe may take (default 2 s).
    pub timeout: Duration,
    /// Consecutive results that move its state (default 1 failure → degraded, 3 → unavailable,
    /// 1 success → healthy).
    pub thresholds: Thresholds,
    /// `false` lists the neighbour without probing it.
    pub monitor: bool,
    /// Whether its being UNAVAILABLE makes this node degraded.
    pub degrade_node: bool,
}

impl NeighborSpec {
    /// A monitored neighbour with the default interval, timeout and thresholds.
    pub fn new(name: impl Into<String>, address: impl Into<String>, protocol: Protocol) -> Self {
        NeighborSpec {
            name: name.into(),
            address: address.into(),
            protocol,
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            thresholds: Thresholds::default(),
            monitor: true,
            degrade_node: false,
        }
    }

    /// The check this neighbour adds to the engine when it may degrade the node.
    pub fn check_name(&self) -> String {
        format!("{CHECK_PREFIX}{}", self.name)
    }
}

/// The start of the names of neighbours' checks. Reserved: a check of the user's named so would
/// be replaced by, or replace, a neighbour's.
pub const CHECK_PREFIX: &str = "neighbor-";

/// A neighbour's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NeighborState {
    /// Not probed yet, or `monitor = false`.
    Unknown,
    /// Answering.
    Healthy,
    /// Failing, not yet for long enough to count as gone.
    Degraded,
    /// Failing for `failures_before_unavailable` probes in a row.
    Unavailable,
}

impl NeighborState {
    /// Every state, in display order.
    pub const ALL: [NeighborState; 4] = [
        NeighborState::Unknown,
        NeighborState::Healthy,
        NeighborState::Degraded,
        NeighborState::Unavailable,
    ];

    /// The lowercase name used in JSON, metrics and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            NeighborState::Unknown => "unknown",
            NeighborState::Healthy => "healthy",
            NeighborState::Degraded => "degraded",
            NeighborState::Unavailable => "unavailable",
        }
    }

    fn of(state: CheckState) -> Self {
        match state {
            CheckState::Unknown => NeighborState::Unknown,
            CheckState::Passing => NeighborState::Healthy,
            CheckState::Warning => NeighborState::Degraded,
            CheckState::Critical => NeighborState::Unavailable,
        }
    }
}

/// Everything known about one neighbour at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct NeighborView {
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// How it is probed.
    pub protocol: Protocol,
    /// Whether it is probed at all.
    pub monitored: bool,
    /// Its state.
    pub state: NeighborState,
    /// Failed probes in a row.
    pub consecutive_failures: u32,
    /// Passed probes in a row.
    pub consecutive_successes: u32,
    /// How long the last probe took, in seconds.
    pub last_latency_seconds: Option<f64>,
    /// Why the last probe failed; `None` after a pass.
    pub last_error: Option<String>,
    /// When it was last probed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_checked: Option<OffsetDateTime>,
    /// When its state last changed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// Probes run.
    pub probes_total: u64,
    /// Probes that failed.
    pub failures_total: u64,
    /// Whether its being UNAVAILABLE makes this node degraded.
    pub degrade_node: bool,
}

/// A neighbour changed state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NeighborEvent {
    /// The neighbour.
    pub neighbor: String,
    /// State before.
    pub from: NeighborState,
    /// State now.
    pub to: NeighborState,
    /// The last probe's message.
    pub message: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// One neighbour's probe, settings and live state.
struct Entry {
    spec: NeighborSpec,
    probe: Arc<dyn Probe>,
    state: CheckState,
    streak: Streak,
    view: NeighborView,
}

struct Inner {
    entries: Mutex<Vec<Entry>>,
    events: broadcast::Sender<NeighborEvent>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The neighbour monitor: cheap to clone, every clone sees the same neighbours.
#[derive(Clone)]
pub struct Neighbors {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Neighbors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neighbors")
            .field("count", &lock(&self.inner.entries).len())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; recover the data rather than spread a poison.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Neighbors {
    /// Builds a probe per neighbour; fails on the first address its protocol cannot probe.
    pub fn new(specs: Vec<NeighborSpec>) -> Result<Self, ProbeSpecError> {
        let mut entries = Vec::with_capacity(specs.len());
        for spec in specs {
            let options = ProbeOptions {
                timeout: Some(spec.timeout),
                ..ProbeOptions::default()
            };
            let target = spec.protocol.target(&spec.address);
            let probe = match ProbeSpec::parse(&target, &options)?.build()? {
                Built::Probe(probe) => probe,
                Built::Ttl(_) => {
                    return Err(ProbeSpecError::Build {
                        kind: spec.protocol.as_str(),
                        target,
                        reason: "a neighbour is probed, it cannot be a ttl check".to_owned(),
                    })
                }
            };
            let view = NeighborView {
                name: spec.name.clone(),
                address: spec.address.clone(),
                protocol: spec.protocol,
                monitored: spec.monitor,
                state: NeighborState::Unknown,
                consecutive_failures: 0,
                consecutive_successes: 0,
                last_latency_seconds: None,
                last_error: None,
                last_checked: None,
                since: None,
                probes_total: 0,
                failures_total: 0,
                degrade_node: spec.degrade_node,
            };
            entries.push(Entry {
                spec,
                probe,
                state: CheckState::Unknown,
                streak: Streak::default(),
                view,
            });
        }
        Ok(Neighbors {
            inner: Arc::new(Inner {
                entries: Mutex::new(entries),
                events: broadcast::channel(256).0,
                tasks: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Starts probing every monitored neighbour, each on its own task (in the current tokio
    /// runtime). With an engine, neighbours with `degrade_node` get their `neighbor-NAME` check.
    pub fn start(&self, engine: Option<&Engine>) {
        let specs: Vec<NeighborSpec> = lock(&self.inner.entries)
            .iter()
            .map(|entry| entry.spec.clone())
            .collect();
        let mut tasks = lock(&self.inner.tasks);
        for (index, spec) in specs.into_iter().enumerate() {
            if !spec.monitor {
                continue;
            }
            let gate = engine.filter(|_| spec.degrade_node).and_then(|engine| {
                let check = CheckSpec::new(spec.check_name())
                    .description(format!("fails while neighbour {} is unavailable", spec.name))
                    .thresholds(Thresholds::immediate());
                // Lapses if the monitor stops reporting for ten rounds.
                let ttl = spec.interval.saturating_add(spec.timeout).saturating_mul(10);
                match engine.register_ttl(check, ttl) {
                    Ok(_) => Some(engine.clone()),
                    Err(error) => {
                        tracing::error!(neighbor = %spec.name, %error, "cannot add the neighbour's check");
                        None
                    }
                }
            });
            let monitor = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(spec.interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let state = monitor.probe_once(index).await;
                    if let Some(engine) = &gate {
                        let verdict = if state == NeighborState::Unavailable {
                            Verdict::Fail
                        } else {
                            Verdict::Pass
                        };
                        let note = format!("neighbour {} is {}", spec.name, state.as_str());
                        let _ = engine.update_ttl(&spec.check_name(), verdict, Some(note));
                    }
                }
            }));
        }
    }

    /// Monitors `specs` from now on instead (a config reload): a neighbour configured as before
    /// keeps its state and counts, the others start as unknown; the `neighbor-NAME` checks of
    /// neighbours no longer degrading the node leave `engine`. On an error (an address its
    /// protocol cannot probe) nothing changes.
    pub fn replace(
        &self,
        specs: Vec<NeighborSpec>,
        engine: Option<&Engine>,
    ) -> Result<(), ProbeSpecError> {
        let fresh = Neighbors::new(specs)?;
        let mut entries = std::mem::take(&mut *lock(&fresh.inner.entries));
        self.stop();
        {
            let mut current = lock(&self.inner.entries);
            for entry in &mut entries {
                if let Some(kept) = current.iter().find(|old| old.spec == entry.spec) {
                    entry.state = kept.state;
                    entry.streak = kept.streak;
                    entry.view = kept.view.clone();
                }
            }
            if let Some(engine) = engine {
                let degrading = |entry: &Entry| entry.spec.degrade_node && entry.spec.monitor;
                for gone in current.iter().filter(|old| degrading(old)) {
                    let name = gone.spec.check_name();
                    if !entries
                        .iter()
                        .any(|e| degrading(e) && e.spec.check_name() == name)
                    {
                        let _ = engine.unregister(&name);
                    }
                }
            }
            *current = entries;
        }
        self.start(engine);
        Ok(())
    }

    /// Stops probing.
    pub fn stop(&self) {
        for task in lock(&self.inner.tasks).drain(..) {
            task.abort();
        }
    }

    /// Probes neighbour `index` once, applies the result and returns its state.
    async fn probe_once(&self, index: usize) -> NeighborState {
        let (probe, timeout) = {
            let entries = lock(&self.inner.entries);
            let Some(entry) = entries.get(index) else {
                return NeighborState::Unknown;
            };
            (entry.probe.clone(), entry.spec.timeout)
        };
        let start = Instant::now();
        let report = match tokio::time::timeout(timeout, probe.probe()).await {
            Ok(report) => report,
            Err(_) => Report::fail(format!(
                "no answer within {}",
                vigil_health::humanize(timeout)
            ))
            .with_error("timed out"),
        };
        self.apply(index, report, start.elapsed())
    }

    fn apply(&self, index: usize, report: Report, latency: Duration) -> NeighborState {
        let mut entries = lock(&self.inner.entries);
        let Some(entry) = entries.get_mut(index) else {
            return NeighborState::Unknown;
        };
        let now = OffsetDateTime::now_utc();
        let (state, streak) = transition(
            entry.state,
            entry.streak,
            report.verdict,
            entry.spec.thresholds,
            false,
        );
        let view = &mut entry.view;
        view.probes_total += 1;
        view.last_checked = Some(now);
        view.last_latency_seconds = Some(latency.as_secs_f64());
        view.consecutive_failures = streak.failures;
        view.consecutive_successes = streak.successes;
        if report.verdict == Verdict::Fail {
            view.failures_total += 1;
            view.last_error = Some(
                report
                    .error
                    .clone()
                    .unwrap_or_else(|| report.message.clone()),
            );
        } else {
            view.last_error = None;
        }
        let (from, to) = (NeighborState::of(entry.state), NeighborState::of(state));
        entry.state = state;
        entry.streak = streak;
        view.state = to;
        if from != to {
            view.since = Some(now);
            let name = &entry.spec.name;
            match to {
                NeighborState::Healthy => {
                    tracing::info!(neighbor = %name, from = from.as_str(), to = to.as_str(), "neighbour {name} is healthy: {}", report.message)
                }
                _ => {
                    tracing::warn!(neighbor = %name, from = from.as_str(), to = to.as_str(), failures = streak.failures, "neighbour {name} is {}: {}", to.as_str(), report.message)
                }
            }
            let _ = self.inner.events.send(NeighborEvent {
                neighbor: name.clone(),
                from,
                to,
                message: report.message,
                at: now,
            });
        }
        to
    }

    /// Whether no neighbour is configured.
    pub fn is_empty(&self) -> bool {
        lock(&self.inner.entries).is_empty()
    }

    /// Every neighbour, in configuration order.
    pub fn views(&self) -> Vec<NeighborView> {
        lock(&self.inner.entries)
            .iter()
            .map(|entry| entry.view.clone())
            .collect()
    }

    /// Every state change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NeighborEvent> {
        self.inner.events.subscribe()
    }
}
