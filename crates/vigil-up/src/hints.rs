//! Tuning hints at the end of the startup report, where the measured start shows a setting
//! costing time: a `start_interval` coarse for how soon the service turned healthy, a `healthy`
//! dependency on the critical path where `started` might do, and a concurrency limit that held
//! services back once their dependencies were met. A pure function of the stack, the limit and
//! the report, so each hint is tested on a report built by hand.
//!
//! Each hint says "consider": the numbers show the cost, not whether the change is safe — only
//! the person who knows the services does.

use std::time::Duration;

use serde::Serialize;

use crate::report::Report;
use crate::stack::{Condition, HealthCheck, RestartMode, Stack, Target};

/// What a hint is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HintKind {
    /// A service's `start_interval`.
    StartInterval,
    /// A `depends_on` condition.
    Condition,
    /// The concurrency limit.
    Concurrency,
}

/// One tuning hint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hint {
    /// What it is about.
    pub kind: HintKind,
    /// The service whose setting it is, when it is one service's.
    pub service: Option<String>,
    /// What to consider, and why, for people.
    pub message: String,
}

/// Below this, a `start_interval` costs too little to mention.
const COARSE_START_INTERVAL: Duration = Duration::from_millis(500);

/// Below this, a gain is not worth a hint.
const WORTH_IT: Duration = Duration::from_millis(100);

/// The hints the report shows; none for a start that was interrupted or failed, whose
/// durations were cut short.
pub fn hints(stack: &Stack, limit: Option<usize>, report: &Report) -> Vec<Hint> {
    if !matches!(report.outcome.as_str(), "up" | "degraded") {
        return Vec::new();
    }
    let mut hints = start_intervals(stack, report);
    hints.extend(conditions(stack, report));
    hints.extend(concurrency(limit, report));
    hints
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}

fn show(d: Duration) -> String {
    crate::runner::fmt_duration(d)
}

/// A service that turned healthy at its second or third probe, probed at least
/// [`COARSE_START_INTERVAL`] apart: it was ready up to one interval before the probe that saw it.
fn start_intervals(stack: &Stack, report: &Report) -> Vec<Hint> {
    let mut hints = Vec::new();
    for (service, measured) in stack.services.iter().zip(&report.services) {
        let Some(health) = &service.health else {
            continue;
        };
        // A container's own healthcheck runs on docker's schedule, not this one.
        if matches!(health.check, HealthCheck::Container) || measured.attempts != 1 {
            continue;
        }
        let (Some(started), Some(healthy)) = (measured.started_s, measured.healthy_s) else {
            continue;
        };
        let interval = health.start_interval;
        let took = secs(healthy - started);
        if interval < COARSE_START_INTERVAL || took < interval / 2 {
            continue;
        }
        let probes = (took.as_secs_f64() / interval.as_secs_f64()).round() + 1.0;
        if probes > 3.0 {
            continue;
        }
        let finer = [10, 20, 50, 100, 200, 500, 1000]
            .into_iter()
            .map(Duration::from_millis)
            .rfind(|&d| d <= interval / 5)
            .unwrap_or(Duration::from_millis(10));
        hints.push(Hint {
            kind: HintKind::StartInterval,
            service: Some(service.name.clone()),
            message: format!(
                "{}: healthy {} after it started, at probe {probes} with probes {} apart: it may have been ready up to {} sooner; consider start_interval = \"{}\"",
                service.name,
                show(took),
                show(interval),
                show(interval),
                show(finer)
            ),
        });
    }
    hints
}

/// A dependant on the critical path that waited for its predecessor there to be `healthy`,
/// when the predecessor took a while from running to healthy and the dependant is restarted if
/// it fails early (so `started` would not leave it failed).
fn conditions(stack: &Stack, report: &Report) -> Vec<Hint> {
    let mut hints = Vec::new();
    for pair in report.critical_path.windows(2) {
        let (Some(dependency), Some(dependant)) =
            (stack.service_id(&pair[0]), stack.service_id(&pair[1]))
        else {
            continue;
        };
        let waits_healthy =
            stack.service(dependant).depends_on.iter().any(|d| {
                d.target == Target::Service(dependency) && d.condition == Condition::Healthy
            });
        if !waits_healthy
            || !stack.service(dependency).has_health()
            || stack.service(dependant).restart.mode == RestartMode::No
        {
            continue;
        }
        let measured = &report.services[dependency.0];
        let (Some(started), Some(healthy)) = (measured.started_s, measured.healthy_s) else {
            continue;
        };
        let gain = secs(healthy - started);
        if gain < WORTH_IT {
            continue;
        }
        hints.push(Hint {
            kind: HintKind::Condition,
            service: Some(pair[1].clone()),
            message: format!(
                "{}: waits for {} to be healthy, on the critical path, and {} took {} from running to healthy; if {} copes with {} not being ready yet (it retries, and restart = \"{}\" starts it again if not), consider {} = \"started\": the start could be up to {} shorter",
                pair[1],
                pair[0],
                pair[0],
                show(gain),
                pair[1],
                pair[0],
                stack.service(dependant).restart.mode.as_str(),
                pair[0],
                show(gain)
            ),
        });
    }
    hints
}

/// Services that waited for a slot once their dependencies were met.
fn concurrency(limit: Option<usize>, report: &Report) -> Vec<Hint> {
    let Some(limit) = limit else {
        return Vec::new();
    };
    let held: Vec<(&str, Duration, bool)> = report
        .services
        .iter()
        .filter_map(|s| {
            let waited = secs(s.launched_s? - s.eligible_s?);
            (waited >= WORTH_IT).then_some((s.name.as_str(), waited, s.critical))
        })
        .collect();
    let Some(&(longest, most, _)) = held.iter().max_by_key(|(_, waited, _)| *waited) else {
        return Vec::new();
    };
    let critical: Vec<&str> = held
        .iter()
        .filter(|(_, _, critical)| *critical)
        .map(|(name, _, _)| *name)
        .collect();
    let on_path = if critical.is_empty() {
        String::new()
    } else {
        format!(", on the critical path: {}", critical.join(", "))
    };
    vec![Hint {
        kind: HintKind::Concurrency,
        service: None,
        message: format!(
            "concurrency = {limit} held back {} service{} ready to start (longest: {longest}, {}){on_path}; if the machine has room, consider a higher limit",
            held.len(),
            if held.len() == 1 { "" } else { "s" },
            show(most)
        ),
    }]
}
