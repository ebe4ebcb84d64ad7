//! Helpers shared by the integration tests: scripted probes and bounded waits on events.
//!
//! Every test runs on tokio's paused clock (`start_paused = true`, a current-thread runtime), so
//! waiting costs no real time and is deterministic: when the runtime has nothing left to do, the
//! clock jumps to the next timer. A probe's result is applied in the same poll in which the probe
//! returns, so once a test observes that a run finished, the engine's snapshot already shows it.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::time::timeout;
use vigil_health::{CheckSpec, CheckState, Engine, Event, Probe, Report, Status, Verdict};

/// How long (in virtual time) a test waits for something before failing.
pub const BOUND: Duration = Duration::from_secs(3600);

/// The interval used by most test checks.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// An engine whose checks run at once when started (no random stagger).
pub fn engine() -> Engine {
    Engine::builder().stagger(false).build()
}

/// A check spec with the test interval.
pub fn spec(name: &str) -> CheckSpec {
    CheckSpec::new(name).interval(INTERVAL)
}

/// A probe that answers from a queue of reports, then repeats its last answer, and counts runs.
#[derive(Clone)]
pub struct Script {
    queue: Arc<Mutex<VecDeque<Report>>>,
    then: Report,
    finished: Arc<watch::Sender<usize>>,
}

impl Script {
    /// Answers `reports` in order, then `then` forever.
    pub fn new(reports: impl IntoIterator<Item = Report>, then: Report) -> Self {
        Script {
            queue: Arc::new(Mutex::new(reports.into_iter().collect())),
            then,
            finished: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Answers `verdicts` in order with messages `run N: VERDICT`, then repeats the last one.
    pub fn verdicts(verdicts: &[Verdict]) -> Self {
        let reports: Vec<Report> = verdicts
            .iter()
            .enumerate()
            .map(|(i, v)| Report::new(*v, format!("run {}: {}", i + 1, v.as_str())))
            .collect();
        let then = reports
            .last()
            .cloned()
            .unwrap_or_else(|| Report::pass("ok"));
        Script::new(reports, then)
    }

    /// Always answers `report`.
    pub fn always(report: Report) -> Self {
        Script::new([], report)
    }

    /// The probe to register.
    pub fn probe(&self) -> impl Probe {
        let this = self.clone();
        move || {
            let this = this.clone();
            async move {
                let report = this
                    .queue
                    .lock()
                    .expect("script lock")
                    .pop_front()
                    .unwrap_or_else(|| this.then.clone());
                this.finished.send_modify(|n| *n += 1);
                report
            }
        }
    }

    /// Runs finished so far.
    pub fn runs(&self) -> usize {
        *self.finished.borrow()
    }

    /// Waits (virtual time, bounded) until `n` runs have finished and their results are applied.
    pub async fn wait_runs(&self, n: usize) {
        let mut rx = self.finished.subscribe();
        timeout(BOUND, rx.wait_for(|&runs| runs >= n))
            .await
            .unwrap_or_else(|_| panic!("run {n} did not happen (only {} ran)", self.runs()))
            .expect("script sender alive");
    }
}

/// The state of check `name` in the latest snapshot.
pub fn state(engine: &Engine, name: &str) -> CheckState {
    engine
        .snapshot()
        .check(name)
        .unwrap_or_else(|| panic!("no check {name}"))
        .state
}

/// The latest status and its message.
pub fn status(engine: &Engine) -> (Status, String) {
    let s = engine.snapshot();
    (s.status(), s.message().to_owned())
}

/// The next event matching `pred`, skipping others; fails after [`BOUND`] of virtual time.
pub async fn wait_event(
    rx: &mut broadcast::Receiver<Event>,
    mut pred: impl FnMut(&Event) -> bool,
) -> Event {
    timeout(BOUND, async {
        loop {
            let event = rx.recv().await.expect("event channel open and not lagging");
            if pred(&event) {
                return event;
            }
        }
    })
    .await
    .expect("expected event did not arrive")
}

/// The next state change of check `name`: (from, to, message).
pub async fn check_change(
    rx: &mut broadcast::Receiver<Event>,
    name: &str,
) -> (CheckState, CheckState, String) {
    match wait_event(
        rx,
        |e| matches!(e, Event::CheckChanged { check, .. } if &**check == name),
    )
    .await
    {
        Event::CheckChanged {
            from, to, message, ..
        } => (from, to, message),
        _ => unreachable!(),
    }
}

/// Every event already queued, without waiting.
pub fn drain(rx: &mut broadcast::Receiver<Event>) -> Vec<Event> {
    let mut events = Vec::new();
    while let Ok(event) = rx.try_recv() {
        events.push(event);
    }
    events
}
