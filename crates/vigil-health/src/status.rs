//! The node's aggregate status and the rules that derive it from its checks.
//!
//! | status | when |
//! | --- | --- |
//! | `stopping` | shutdown has begun |
//! | `unhealthy` | an enabled critical check is `critical` |
//! | `starting` | an enabled critical check has no counted result yet (or no check has any) |
//! | `degraded` | a non-critical check is failing, a critical check is `warning`, or the overall score is under the healthy threshold |
//! | `healthy` | otherwise |
//!
//! [`Tally`] keeps the counts these rules need, updated per state change, so deciding the status
//! costs O(1) whatever the number of checks.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::check::{CheckSpec, CheckState};

/// The node's aggregate health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Critical checks have not reported yet.
    Starting,
    /// Everything passes.
    Healthy,
    /// Serving, with a non-critical problem.
    Degraded,
    /// A critical check fails.
    Unhealthy,
    /// Shutdown under way.
    Stopping,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 5] = [
        Status::Starting,
        Status::Healthy,
        Status::Degraded,
        Status::Unhealthy,
        Status::Stopping,
    ];

    /// The lowercase name used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Healthy => "healthy",
            Status::Degraded => "degraded",
            Status::Unhealthy => "unhealthy",
            Status::Stopping => "stopping",
        }
    }

    /// Whether the node should receive traffic (`/health`, `/health/ready` answer 200).
    pub fn is_ready(self) -> bool {
        matches!(self, Status::Healthy | Status::Degraded)
    }

    /// Whether the process counts as alive (`/health/live` answers 200).
    pub fn is_live(self) -> bool {
        self != Status::Stopping
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the node has its status, naming the check that decides it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cause {
    Stopping,
    CriticalFailing { check: Arc<str>, others: usize },
    AwaitingCritical { count: usize },
    AwaitingAny,
    Failing { check: Arc<str>, others: usize },
    LowScore { score: f64, threshold: f64 },
    AllPassing,
    NoChecks,
}

impl Cause {
    pub(crate) fn status(&self) -> Status {
        match self {
            Cause::Stopping => Status::Stopping,
            Cause::CriticalFailing { .. } => Status::Unhealthy,
            Cause::AwaitingCritical { .. } | Cause::AwaitingAny => Status::Starting,
            Cause::Failing { .. } | Cause::LowScore { .. } => Status::Degraded,
            Cause::AllPassing | Cause::NoChecks => Status::Healthy,
        }
    }

    /// The status message; `detail` is the last message of the check the cause names.
    pub(crate) fn message(&self, detail: Option<&str>) -> String {
        let named = |kind: &str, check: &str, others: usize| {
            let mut m = format!("{kind} \"{check}\" failing");
            if let Some(d) = detail.filter(|d| !d.is_empty()) {
                m.push_str(": ");
                m.push_str(d);
            }
            if others > 0 {
                m.push_str(&format!(" (and {others} more)"));
            }
            m
        };
        match self {
            Cause::Stopping => "shutting down".to_owned(),
            Cause::CriticalFailing { check, others } => named("critical check", check, *others),
            Cause::AwaitingCritical { count } => {
                format!("waiting for the first result of {count} critical check(s)")
            }
            Cause::AwaitingAny => "waiting for the first check result".to_owned(),
            Cause::Failing { check, others } => named("check", check, *others),
            Cause::LowScore { score, threshold } => low_score_message(*score, *threshold),
            Cause::AllPassing => "All health checks passing".to_owned(),
            Cause::NoChecks => "no checks registered".to_owned(),
        }
    }

    /// The check whose message belongs in the status message.
    pub(crate) fn check(&self) -> Option<&Arc<str>> {
        match self {
            Cause::CriticalFailing { check, .. } | Cause::Failing { check, .. } => Some(check),
            _ => None,
        }
    }
}

/// Counts of enabled checks by what matters to the status rules.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    enabled: usize,
    reported: usize,
    awaiting_critical: usize,
    critical_failing: BTreeSet<Arc<str>>,
    failing: BTreeSet<Arc<str>>,
}

impl Tally {
    /// Counts a check in `state`; call [`Tally::remove`] with the same arguments to undo.
    pub(crate) fn add(&mut self, name: &Arc<str>, spec: &CheckSpec, state: CheckState) {
        self.apply(name, spec, state, true);
    }

    /// Undoes [`Tally::add`].
    pub(crate) fn remove(&mut self, name: &Arc<str>, spec: &CheckSpec, state: CheckState) {
        self.apply(name, spec, state, false);
    }

    fn apply(&mut self, name: &Arc<str>, spec: &CheckSpec, state: CheckState, add: bool) {
        if !spec.enabled {
            return;
        }
        let count = |n: &mut usize| {
            if add {
                *n += 1
            } else {
                *n -= 1
            }
        };
        let member = |set: &mut BTreeSet<Arc<str>>| {
            if add {
                set.insert(name.clone());
            } else {
                set.remove(name);
            }
        };
        count(&mut self.enabled);
        if state != CheckState::Unknown {
            count(&mut self.reported);
        }
        match (spec.critical, state) {
            (true, CheckState::Unknown) => count(&mut self.awaiting_critical),
            (true, CheckState::Critical) => member(&mut self.critical_failing),
            (true, CheckState::Warning) | (false, CheckState::Warning | CheckState::Critical) => {
                member(&mut self.failing)
            }
            _ => {}
        }
    }

    /// Applies the status rules.
    pub(crate) fn cause(&self, stopping: bool, score: f64, healthy_threshold: f64) -> Cause {
        let first_and_others =
            |set: &BTreeSet<Arc<str>>| set.iter().next().map(|c| (c.clone(), set.len() - 1));
        if stopping {
            Cause::Stopping
        } else if let Some((check, others)) = first_and_others(&self.critical_failing) {
            Cause::CriticalFailing { check, others }
        } else if self.awaiting_critical > 0 {
            Cause::AwaitingCritical {
                count: self.awaiting_critical,
            }
        } else if self.enabled == 0 {
            Cause::NoChecks
        } else if self.reported == 0 {
            Cause::AwaitingAny
        } else if let Some((check, others)) = first_and_others(&self.failing) {
            Cause::Failing { check, others }
        } else if score < healthy_threshold {
            Cause::LowScore {
                score,
                threshold: healthy_threshold,
            }
        } else {
            Cause::AllPassing
        }
    }
}

/// Most decimals a score or threshold is printed with in a status message.
const MAX_DECIMALS: usize = 6;

/// "overall score S below healthy threshold T", with as many decimals as it takes for S to read
/// as lower than T (0.9479 against 0.95 reads 0.948, never 0.95).
fn low_score_message(score: f64, threshold: f64) -> String {
    let as_printed = |x: f64, decimals: usize| format!("{x:.decimals$}").parse::<f64>().ok();
    let threshold_decimals = (2..=MAX_DECIMALS)
        .find(|&d| as_printed(threshold, d) == Some(threshold))
        .unwrap_or(MAX_DECIMALS);
    let shown = (threshold_decimals..=MAX_DECIMALS)
        .find(|&d| as_printed(score, d).is_some_and(|s| s < threshold))
        .map(|d| format!("{score:.d$}"))
        // Closer than a millionth: the shortest exact form still differs from the threshold.
        .unwrap_or_else(|| score.to_string());
    format!("overall score {shown} below healthy threshold {threshold:.threshold_decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckState::*;

    fn tally(checks: &[(&str, bool, CheckState)]) -> Tally {
        let mut t = Tally::default();
        for (name, critical, state) in checks {
            t.add(
                &Arc::from(*name),
                &CheckSpec::new(*name).critical(*critical),
                *state,
            );
        }
        t
    }

    #[test]
    fn a_low_score_reads_lower_than_the_threshold() {
        let message = |score, threshold| low_score_message(score, threshold);
        assert_eq!(
            message(0.9479, 0.95),
            "overall score 0.948 below healthy threshold 0.95"
        );
        assert_eq!(
            message(2.0 / 3.0, 0.95),
            "overall score 0.67 below healthy threshold 0.95"
        );
        assert_eq!(
            message(0.94996, 0.95),
            "overall score 0.94996 below healthy threshold 0.95"
        );
        assert_eq!(
            message(0.97, 0.975),
            "overall score 0.970 below healthy threshold 0.975"
        );
        assert_eq!(
            message(0.9499999999, 0.95),
            "overall score 0.9499999999 below healthy threshold 0.95"
        );
        assert_eq!(
            message(0.5, 1.0),
            "overall score 0.50 below healthy threshold 1.00"
        );
    }

    fn status(checks: &[(&str, bool, CheckState)]) -> Status {
        tally(checks).cause(false, 1.0, 0.95).status()
    }

    #[test]
    fn the_status_table() {
        assert_eq!(status(&[]), Status::Healthy);
        assert_eq!(
            status(&[("db", true, Passing), ("c", false, Passing)]),
            Status::Healthy
        );
        assert_eq!(
            status(&[("db", true, Unknown), ("c", false, Passing)]),
            Status::Starting
        );
        assert_eq!(status(&[("c", false, Unknown)]), Status::Starting);
        assert_eq!(
            status(&[("c", false, Unknown), ("d", false, Passing)]),
            Status::Healthy
        );
        assert_eq!(
            status(&[("db", true, Passing), ("c", false, Critical)]),
            Status::Degraded
        );
        assert_eq!(status(&[("db", true, Warning)]), Status::Degraded);
        assert_eq!(
            status(&[("db", true, Critical), ("x", true, Unknown)]),
            Status::Unhealthy
        );
        let t = tally(&[("db", true, Passing)]);
        assert_eq!(t.cause(true, 1.0, 0.95).status(), Status::Stopping);
        assert_eq!(t.cause(false, 0.9, 0.95).status(), Status::Degraded);
    }

    #[test]
    fn disabled_checks_do_not_count() {
        let mut t = Tally::default();
        t.add(
            &Arc::from("db"),
            &CheckSpec::new("db").critical(true).enabled(false),
            Critical,
        );
        assert_eq!(t.cause(false, 1.0, 0.95), Cause::NoChecks);
    }

    #[test]
    fn remove_undoes_add() {
        let mut t = tally(&[("db", true, Critical)]);
        let spec = CheckSpec::new("db").critical(true);
        t.remove(&Arc::from("db"), &spec, Critical);
        t.add(&Arc::from("db"), &spec, Passing);
        assert_eq!(t.cause(false, 1.0, 0.95), Cause::AllPassing);
    }

    #[test]
    fn messages_name_the_check_and_count_the_rest() {
        let t = tally(&[("db", true, Critical), ("queue", true, Critical)]);
        let cause = t.cause(false, 1.0, 0.95);
        assert_eq!(
            cause.message(Some("connection refused")),
            "critical check \"db\" failing: connection refused (and 1 more)"
        );
    }
}
