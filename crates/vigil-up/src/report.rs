//! The startup report: per service when it was launched, how long it took to start and to become
//! healthy, attempts and restarts; the critical path; and the total time against two schedules of
//! the same measured durations — the critical-path lower bound (every service starting the moment
//! its dependencies allow, no concurrency limit) and a wave-by-wave start (each dependency level
//! waiting for the whole level before it); and tuning hints ([`crate::hints`]). Rendered as a
//! text table, JSON, or an SVG timeline ([`crate::svg`]).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::graph;
use crate::hints::{self, Hint};
use crate::schedule::{Mode, Outcome, Record, Scheduler};
use crate::stack::{Condition, GroupPolicy, ServiceId, Stack, Target};

/// The report of one `vigil up`. Times are seconds since the start of `vigil up`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `up`, `degraded`, `failed` or `interrupted`.
    pub outcome: String,
    /// Why the start failed, or what is degraded.
    pub reasons: Vec<String>,
    /// `graph` (each service as soon as its dependencies allow) or `waves`.
    pub schedule: String,
    /// Seconds from the start until every service settled (or the start ended).
    pub total_s: f64,
    /// The critical-path lower bound of the measured durations; `None` when the start was
    /// interrupted, as durations cut short bound nothing (so for the three fields below).
    pub critical_path_s: Option<f64>,
    /// The services on the critical path, first to last; empty when the start was interrupted.
    pub critical_path: Vec<String>,
    /// How long a wave-by-wave start of the same measured durations takes.
    pub waves_s: Option<f64>,
    /// `waves_s / total_s`: how much faster this start was than waves (under 1: slower).
    pub speedup_vs_waves: Option<f64>,
    /// The waves of that schedule.
    pub waves: Vec<Wave>,
    /// One entry per service, in stack order.
    pub services: Vec<ServiceReport>,
    /// Settings the measured start shows costing time (see [`crate::hints`]).
    pub hints: Vec<Hint>,
}

/// One service in the report.
#[derive(Clone, Debug, Serialize)]
pub struct ServiceReport {
    /// Its name.
    pub name: String,
    /// Its dependency level (its wave, counting from 0).
    pub level: usize,
    /// `ready`, `completed`, `failed`, or where it was when the start ended.
    pub state: String,
    /// When its dependencies were satisfied (it was launched then, or once a slot was free).
    pub eligible_s: Option<f64>,
    /// When it was launched (its dependencies were satisfied and a slot was free).
    pub launched_s: Option<f64>,
    /// When it first ran.
    pub started_s: Option<f64>,
    /// When it first passed its health probe.
    pub healthy_s: Option<f64>,
    /// When it was first ready (healthy, or started without a probe).
    pub ready_s: Option<f64>,
    /// When it exited with status 0.
    pub completed_s: Option<f64>,
    /// When it gave up.
    pub failed_s: Option<f64>,
    /// From launch to running.
    pub time_to_started_s: Option<f64>,
    /// From launch to healthy.
    pub time_to_healthy_s: Option<f64>,
    /// Starts attempted.
    pub attempts: u32,
    /// Restarts.
    pub restarts: u32,
    /// Why each restart happened.
    pub restart_reasons: Vec<String>,
    /// Why it failed.
    pub failure: Option<String>,
    /// Whether it is on the critical path.
    pub critical: bool,
}

/// One wave of the wave-by-wave comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Wave {
    /// The dependency level.
    pub level: usize,
    /// Its services.
    pub services: Vec<String>,
    /// Its longest service, launch to settled: how long the wave takes.
    pub duration_s: f64,
}

/// `1 wave`, `3 waves`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// This start against waves, from `speedup` (waves' time over this start's), never "0.76×
/// faster".
fn compared(speedup: f64) -> String {
    if speedup >= 1.0 {
        format!("this start was {speedup:.2}× faster")
    } else if speedup > 0.0 {
        format!("this start was {:.2}× slower", 1.0 / speedup)
    } else {
        "nothing to compare".to_owned()
    }
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// A service's own measured time from launch to meeting `condition` (settled, if it never met it).
fn own(record: &Record, condition: Option<Condition>) -> Duration {
    let Some(launched) = record.launched else {
        return Duration::ZERO;
    };
    let end = match condition {
        Some(Condition::Started) => record.started.or(record.settled()),
        Some(Condition::Healthy) => record.ready.or(record.settled()),
        Some(Condition::Completed) => record.completed.or(record.settled()),
        None => record.settled(),
    };
    end.map_or(Duration::ZERO, |e| e.saturating_sub(launched))
}

/// Earliest start of every service in the critical-path schedule, and for each the service whose
/// finish set it.
fn earliest_starts(stack: &Stack, records: &[Record]) -> (Vec<Duration>, Vec<Option<ServiceId>>) {
    let n = stack.services.len();
    let levels = graph::levels(stack);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| levels[i]);
    let mut start = vec![Duration::ZERO; n];
    let mut from: Vec<Option<ServiceId>> = vec![None; n];
    for i in order {
        for d in &stack.service(ServiceId(i)).depends_on {
            let finish = |m: ServiceId| start[m.0] + own(&records[m.0], Some(d.condition));
            let (at, who) = match d.target {
                Target::Service(m) => (finish(m), m),
                Target::Group(g) => {
                    let group = stack.group(g);
                    let mut finishes: Vec<(Duration, ServiceId)> = group
                        .members
                        .iter()
                        .filter(|&&m| {
                            group.policy == GroupPolicy::Optional || records[m.0].failed.is_none()
                        })
                        .map(|&m| (finish(m), m))
                        .collect();
                    finishes.sort();
                    let needed = match group.policy {
                        GroupPolicy::Optional => finishes.len(),
                        policy => policy.needed(group.members.len()),
                    };
                    match finishes.get(needed.saturating_sub(1)).or(finishes.last()) {
                        Some(&(at, who)) => (at, who),
                        None => continue,
                    }
                }
            };
            if from[i].is_none() || at > start[i] {
                start[i] = at;
                from[i] = Some(who);
            }
        }
    }
    (start, from)
}

impl Report {
    /// Builds the report of a start that ended `total` after it began (`outcome` `None`: it was
    /// interrupted).
    pub fn build(
        scheduler: &Scheduler,
        mode: Mode,
        outcome: Option<&Outcome>,
        total: Duration,
    ) -> Report {
        let stack = scheduler.stack();
        let records = scheduler.records();
        let levels = graph::levels(stack);
        let (start, from) = earliest_starts(stack, records);
        let finished = outcome.is_some();

        // The critical path ends at the service that settles last in that schedule.
        let end = (0..stack.services.len())
            .filter(|&i| finished && records[i].launched.is_some())
            .max_by_key(|&i| (start[i] + own(&records[i], None), std::cmp::Reverse(i)));
        let bound = end.map_or(Duration::ZERO, |i| start[i] + own(&records[i], None));
        let mut path = Vec::new();
        let mut at = end.map(ServiceId);
        while let Some(id) = at {
            if path.contains(&id) {
                break;
            }
            path.push(id);
            at = from[id.0];
        }
        path.reverse();

        let deepest = levels.iter().copied().max().unwrap_or(0);
        let waves: Vec<Wave> = (0..=deepest)
            .filter_map(|level| {
                let members: Vec<usize> = (0..stack.services.len())
                    .filter(|&i| levels[i] == level)
                    .collect();
                let duration = members.iter().map(|&i| own(&records[i], None)).max()?;
                Some(Wave {
                    level,
                    services: members
                        .iter()
                        .map(|&i| stack.services[i].name.clone())
                        .collect(),
                    duration_s: secs(duration),
                })
            })
            .collect();
        let waves_total: f64 = waves.iter().map(|w| w.duration_s).sum();

        let services = stack
            .services
            .iter()
            .enumerate()
            .map(|(i, service)| {
                let r = &records[i];
                let since_launch =
                    |t: Option<Duration>| t.zip(r.launched).map(|(t, l)| secs(t.saturating_sub(l)));
                ServiceReport {
                    name: service.name.clone(),
                    level: levels[i],
                    state: scheduler.phase(ServiceId(i)).as_str().to_owned(),
                    eligible_s: r.eligible.map(secs),
                    launched_s: r.launched.map(secs),
                    started_s: r.started.map(secs),
                    healthy_s: r.healthy.map(secs),
                    ready_s: r.ready.map(secs),
                    completed_s: r.completed.map(secs),
                    failed_s: r.failed.map(secs),
                    time_to_started_s: since_launch(r.started),
                    time_to_healthy_s: since_launch(r.healthy),
                    attempts: r.attempts,
                    restarts: u32::try_from(r.restarts.len()).unwrap_or(u32::MAX),
                    restart_reasons: r.restarts.clone(),
                    failure: r.failure.clone(),
                    critical: path.contains(&ServiceId(i)),
                }
            })
            .collect();

        let (outcome, reasons) = match outcome {
            None => ("interrupted".to_owned(), Vec::new()),
            Some(Outcome::Up { degraded }) if degraded.is_empty() => ("up".to_owned(), Vec::new()),
            Some(Outcome::Up { degraded }) => ("degraded".to_owned(), degraded.clone()),
            Some(Outcome::Failed { reasons }) => ("failed".to_owned(), reasons.clone()),
        };
        let total_s = secs(total);
        let mut report = Report {
            outcome,
            reasons,
            schedule: match mode {
                Mode::Graph => "graph",
                Mode::Waves => "waves",
            }
            .to_owned(),
            total_s,
            critical_path_s: finished.then(|| secs(bound)),
            critical_path: path
                .iter()
                .map(|id| stack.service(*id).name.clone())
                .collect(),
            waves_s: finished.then(|| (waves_total * 1000.0).round() / 1000.0),
            speedup_vs_waves: (finished && total_s > 0.0)
                .then(|| ((waves_total / total_s) * 100.0).round() / 100.0),
            waves,
            services,
            hints: Vec::new(),
        };
        report.hints = hints::hints(stack, scheduler.limit(), &report);
        report
    }

    /// The report as a text table with a summary underneath.
    pub fn table(&self) -> String {
        let fmt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}s"));
        let width = self
            .services
            .iter()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(7)
            .max(7);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$}  {:>5}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  STATE",
            "SERVICE",
            "LEVEL",
            "LAUNCHED",
            "+STARTED",
            "+HEALTHY",
            "READY AT",
            "ATTEMPTS",
            "RESTARTS"
        );
        for s in &self.services {
            let _ = writeln!(
                out,
                "{:<width$}  {:>5}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {}{}",
                s.name,
                s.level,
                fmt(s.launched_s),
                fmt(s.time_to_started_s),
                fmt(s.time_to_healthy_s),
                fmt(s.ready_s.or(s.completed_s)),
                s.attempts,
                s.restarts,
                s.state,
                if s.critical { "  * critical path" } else { "" }
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{}: {:.2}s total ({} schedule)",
            self.outcome, self.total_s, self.schedule
        );
        match (self.critical_path_s, self.waves_s) {
            (Some(bound), Some(waves)) => {
                let _ = writeln!(
                    out,
                    "critical path: {bound:.2}s lower bound ({})",
                    self.critical_path.join(" → ")
                );
                let _ = writeln!(
                    out,
                    "wave by wave: {waves:.2}s for the same durations ({}){}",
                    plural(self.waves.len(), "wave"),
                    self.speedup_vs_waves
                        .map_or_else(String::new, |x| format!("; {}", compared(x)))
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "the start was interrupted: no critical path or wave-by-wave comparison from \
                     durations cut short"
                );
            }
        }
        for hint in &self.hints {
            let _ = writeln!(out, "hint: {}", hint.message);
        }
        for reason in &self.reasons {
            let _ = writeln!(
                out,
                "{}: {reason}",
                if self.outcome == "failed" {
                    "error"
                } else {
                    "DEGRADED"
                }
            );
        }
        out
    }

    /// The comparison with a wave-by-wave start, as one line of the SVG header.
    pub fn comparison(&self) -> String {
        match (self.critical_path_s, self.waves_s) {
            (Some(bound), Some(waves)) => format!(
                "critical-path bound {bound:.2}s · wave by wave {waves:.2}s{} · critical path: {}",
                self.speedup_vs_waves
                    .map_or_else(String::new, |x| format!(" ({})", compared(x))),
                self.critical_path.join(" → ")
            ),
            _ => "interrupted: no critical path or wave-by-wave comparison".to_owned(),
        }
    }

    /// The report as pretty-printed JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}
