//! What a check is: its specification, thresholds, state and the result of one run.

use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};
use time::OffsetDateTime;

use crate::probe::{Details, Report, Verdict};

/// How a check is scheduled and judged. Build one with [`CheckSpec::new`] and the setters.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckSpec {
    /// Unique name; also the gRPC service name and the `check` metric label.
    pub name: String,
    /// What the check verifies, for people.
    pub description: String,
    /// Time between runs (default 30 s). The first run is staggered randomly within it.
    pub interval: Duration,
    /// A run that takes longer is cut and counts as a failure (default 10 s).
    pub timeout: Duration,
    /// After registration, failures do not count until this has passed or the check passes once.
    pub start_period: Duration,
    /// A disabled check is listed but never run and never affects status.
    pub enabled: bool,
    /// A critical check that fails makes the node `unhealthy`; others make it `degraded`.
    pub critical: bool,
    /// Component the check belongs to, for component scores.
    pub component: Option<String>,
    /// How many results move the check between states.
    pub thresholds: Thresholds,
}

impl CheckSpec {
    /// A non-critical, enabled check with the default interval, timeout and thresholds.
    pub fn new(name: impl Into<String>) -> Self {
        CheckSpec {
            name: name.into(),
            description: String::new(),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            start_period: Duration::ZERO,
            enabled: true,
            critical: false,
            component: None,
            thresholds: Thresholds::default(),
        }
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the interval between runs.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the per-run timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the start period.
    pub fn start_period(mut self, start_period: Duration) -> Self {
        self.start_period = start_period;
        self
    }

    /// Enables or disables the check.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Marks the check critical or not.
    pub fn critical(mut self, critical: bool) -> Self {
        self.critical = critical;
        self
    }

    /// Puts the check in a component.
    pub fn component(mut self, component: impl Into<String>) -> Self {
        self.component = Some(component.into());
        self
    }

    /// Sets the thresholds.
    pub fn thresholds(mut self, thresholds: Thresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    /// Weight of this check in component and system scores: critical checks count double.
    pub(crate) fn weight(&self) -> u64 {
        if self.critical {
            2
        } else {
            1
        }
    }
}

/// Whether `name` can name a check: 1–128 characters from `a-z A-Z 0-9 . _ - :`, so that it fits
/// URLs, metric labels and gRPC service names unchanged.
pub fn valid_check_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'))
}

/// Consecutive results needed to move a check between states.
///
/// Defaults: 1 failure → warning (degraded), 3 failures → critical (unavailable), 1 success →
/// passing. Built through [`Thresholds::new`], so `critical_after >= warning_after >= 1` always holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    warning_after: u32,
    critical_after: u32,
    passing_after: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            warning_after: 1,
            critical_after: 3,
            passing_after: 1,
        }
    }
}

/// Thresholds that cannot be satisfied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThresholdError {
    /// A threshold of zero results.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// Unhealthy before degraded.
    #[error("failures_before_unhealthy ({critical}) must not be below failures_before_degraded ({warning})")]
    Inverted {
        /// failures before degraded
        warning: u32,
        /// failures before unhealthy
        critical: u32,
    },
}

impl Thresholds {
    /// Checks and builds thresholds: failures before degraded, failures before unhealthy,
    /// successes before healthy.
    pub fn new(
        warning_after: u32,
        critical_after: u32,
        passing_after: u32,
    ) -> Result<Self, ThresholdError> {
        if warning_after == 0 {
            return Err(ThresholdError::Zero("failures_before_degraded"));
        }
        if critical_after == 0 {
            return Err(ThresholdError::Zero("failures_before_unhealthy"));
        }
        if passing_after == 0 {
            return Err(ThresholdError::Zero("successes_before_healthy"));
        }
        if critical_after < warning_after {
            return Err(ThresholdError::Inverted {
                warning: warning_after,
                critical: critical_after,
            });
        }
        Ok(Thresholds {
            warning_after,
            critical_after,
            passing_after,
        })
    }

    /// Pushed results are authoritative: one `fail` is critical at once (Consul's TTL semantics).
    pub fn immediate() -> Self {
        Thresholds {
            warning_after: 1,
            critical_after: 1,
            passing_after: 1,
        }
    }

    /// Consecutive failures before the check turns `warning`.
    pub fn warning_after(&self) -> u32 {
        self.warning_after
    }

    /// Consecutive failures before the check turns `critical`.
    pub fn critical_after(&self) -> u32 {
        self.critical_after
    }

    /// Consecutive successes before the check turns `passing`.
    pub fn passing_after(&self) -> u32 {
        self.passing_after
    }
}

/// The state of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CheckState {
    /// No counted result yet (never run, or only failed inside its start period).
    Unknown,
    /// Healthy.
    Passing,
    /// Degraded: failing, but not yet for long enough to be critical, or warned.
    Warning,
    /// Unavailable.
    Critical,
}

impl CheckState {
    /// Every state, in display order.
    pub const ALL: [CheckState; 4] = [
        CheckState::Unknown,
        CheckState::Passing,
        CheckState::Warning,
        CheckState::Critical,
    ];

    /// The lowercase name used in JSON, metrics and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckState::Unknown => "unknown",
            CheckState::Passing => "passing",
            CheckState::Warning => "warning",
            CheckState::Critical => "critical",
        }
    }

    /// Whether this state is a failure of some degree.
    pub fn is_failing(self) -> bool {
        matches!(self, CheckState::Warning | CheckState::Critical)
    }
}

impl std::fmt::Display for CheckState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Consecutive-result counters of one check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Streak {
    /// Consecutive failures (reset by a pass or a warn).
    pub failures: u32,
    /// Consecutive passes (reset by a fail or a warn).
    pub successes: u32,
}

/// Applies one verdict to a check's state: the whole threshold logic in one pure function.
///
/// Inside the start period a check that has not yet passed ignores failures, as Docker does.
pub fn transition(
    state: CheckState,
    streak: Streak,
    verdict: Verdict,
    thresholds: Thresholds,
    in_start_period: bool,
) -> (CheckState, Streak) {
    match verdict {
        Verdict::Pass => {
            let streak = Streak {
                failures: 0,
                successes: streak.successes.saturating_add(1),
            };
            let state = if streak.successes >= thresholds.passing_after {
                CheckState::Passing
            } else {
                state
            };
            (state, streak)
        }
        _ if in_start_period && state == CheckState::Unknown => (state, Streak::default()),
        Verdict::Warn => (CheckState::Warning, Streak::default()),
        Verdict::Fail => {
            let streak = Streak {
                failures: streak.failures.saturating_add(1),
                successes: 0,
            };
            let state = if streak.failures >= thresholds.critical_after {
                CheckState::Critical
            } else if streak.failures >= thresholds.warning_after {
                state_if_failing(state)
            } else {
                state
            };
            (state, streak)
        }
    }
}

/// A failing check never improves on a further failure: critical stays critical.
fn state_if_failing(state: CheckState) -> CheckState {
    if state == CheckState::Critical {
        CheckState::Critical
    } else {
        CheckState::Warning
    }
}

/// The outcome of one run of a check, in the CHORUS JSON shape.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckResult {
    /// Whether the run passed.
    pub healthy: bool,
    /// The probe's verdict (`pass`, `warn`, `fail`).
    pub verdict: Verdict,
    /// Human-readable explanation.
    pub message: String,
    /// Structured details; omitted when empty.
    #[serde(skip_serializing_if = "Details::is_empty")]
    pub details: Details,
    /// How long the run took, in nanoseconds in JSON.
    #[serde(serialize_with = "nanos")]
    pub latency: Duration,
    /// When the run started, RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// The error behind a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CheckResult {
    /// Wraps a probe's report with the run's timing.
    pub fn from_report(report: Report, latency: Duration, timestamp: OffsetDateTime) -> Self {
        CheckResult {
            healthy: report.verdict == Verdict::Pass,
            verdict: report.verdict,
            message: report.message,
            details: report.details,
            latency,
            timestamp,
            error: report.error,
        }
    }
}

/// Serializes a duration as integer nanoseconds, as the CHORUS schema does.
pub(crate) fn nanos<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(verdicts: &[Verdict], thresholds: Thresholds) -> Vec<CheckState> {
        let mut state = CheckState::Unknown;
        let mut streak = Streak::default();
        verdicts
            .iter()
            .map(|&v| {
                (state, streak) = transition(state, streak, v, thresholds, false);
                state
            })
            .collect()
    }

    use CheckState::*;
    use Verdict::{Fail, Pass, Warn};

    #[test]
    fn default_thresholds_degrade_after_one_and_fail_after_three() {
        assert_eq!(
            run(&[Pass, Fail, Fail, Fail, Fail, Pass], Thresholds::default()),
            [Passing, Warning, Warning, Critical, Critical, Passing]
        );
    }

    #[test]
    fn first_result_failing_counts() {
        assert_eq!(run(&[Fail], Thresholds::default()), [Warning]);
    }

    #[test]
    fn successes_before_healthy_holds_the_state() {
        let t = Thresholds::new(1, 2, 3).expect("valid thresholds");
        assert_eq!(
            run(&[Fail, Fail, Pass, Pass, Pass], t),
            [Warning, Critical, Critical, Critical, Passing]
        );
    }

    #[test]
    fn failures_below_the_warning_threshold_keep_passing() {
        let t = Thresholds::new(2, 4, 1).expect("valid thresholds");
        assert_eq!(
            run(&[Pass, Fail, Pass, Fail, Fail, Fail, Fail], t),
            [Passing, Passing, Passing, Passing, Warning, Warning, Critical]
        );
    }

    #[test]
    fn warn_is_warning_at_once_and_resets_the_failure_streak() {
        assert_eq!(
            run(&[Fail, Fail, Warn, Fail, Fail], Thresholds::default()),
            [Warning, Warning, Warning, Warning, Warning]
        );
    }

    #[test]
    fn immediate_thresholds_make_one_failure_critical() {
        assert_eq!(
            run(&[Pass, Fail], Thresholds::immediate()),
            [Passing, Critical]
        );
    }

    #[test]
    fn start_period_ignores_failures_until_the_first_pass() {
        let t = Thresholds::default();
        let (s, k) = transition(Unknown, Streak::default(), Fail, t, true);
        assert_eq!((s, k), (Unknown, Streak::default()));
        let (s, k) = transition(s, k, Pass, t, true);
        assert_eq!(s, Passing);
        let (s, _) = transition(s, k, Fail, t, true);
        assert_eq!(
            s, Warning,
            "after a first pass, failures count even in the start period"
        );
    }

    #[test]
    fn thresholds_are_validated() {
        assert_eq!(
            Thresholds::new(0, 3, 1),
            Err(ThresholdError::Zero("failures_before_degraded"))
        );
        assert!(matches!(
            Thresholds::new(3, 2, 1),
            Err(ThresholdError::Inverted { .. })
        ));
        assert_eq!(
            Thresholds::new(1, 1, 0),
            Err(ThresholdError::Zero("successes_before_healthy"))
        );
    }
}
