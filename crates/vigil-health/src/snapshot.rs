//! The read side: an immutable picture of the node that endpoints serve without running probes.
//!
//! A new [`Snapshot`] is published after every result. Checks sit in a persistent map, so
//! publishing shares every unchanged check with the previous snapshot instead of copying it: a
//! result costs O(log n), not O(n), even with 10,000 checks.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use crate::check::{CheckResult, CheckSpec, CheckState, Streak};
use crate::probe::Verdict;
use crate::status::Status;

/// Upper bounds (seconds) of the check latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Cumulative counters of one check since it was registered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckStats {
    /// Runs that passed.
    pub passed: u64,
    /// Runs that warned.
    pub warned: u64,
    /// Runs that failed (including timeouts).
    pub failed: u64,
    /// Runs per latency bucket (non-cumulative; the last slot is above every bound).
    pub latency_buckets: [u64; LATENCY_BUCKETS.len() + 1],
    /// Sum of all run latencies.
    pub latency_sum: Duration,
}

impl CheckStats {
    pub(crate) fn record(&mut self, verdict: Verdict, latency: Duration) {
        match verdict {
            Verdict::Pass => self.passed += 1,
            Verdict::Warn => self.warned += 1,
            Verdict::Fail => self.failed += 1,
        }
        let secs = latency.as_secs_f64();
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency_buckets[slot] += 1;
        self.latency_sum += latency;
    }

    /// Total runs.
    pub fn runs(&self) -> u64 {
        self.passed + self.warned + self.failed
    }
}

/// How a check is fed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// Run on a schedule by a probe of the named kind.
    Probe(&'static str),
    /// Pushed by the watched process, failing when not refreshed within the TTL.
    Ttl(Duration),
}

impl CheckKind {
    /// Short name: the probe kind, or `ttl`.
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Probe(kind) => kind,
            CheckKind::Ttl(_) => "ttl",
        }
    }
}

/// Everything known about one check at one moment.
#[derive(Clone, Debug)]
pub struct CheckView {
    /// Its specification.
    pub spec: Arc<CheckSpec>,
    /// How it is fed.
    pub kind: CheckKind,
    /// Its state.
    pub state: CheckState,
    /// Consecutive results.
    pub streak: Streak,
    /// Success rate over the score window (0.0–1.0); `None` before the first counted result.
    pub score: Option<f64>,
    /// The latest result.
    pub last: Option<CheckResult>,
    /// When the state last changed.
    pub since: Option<OffsetDateTime>,
    /// Counters since registration.
    pub stats: CheckStats,
}

/// An immutable picture of the node's health.
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) node_id: Arc<str>,
    pub(crate) version: Arc<str>,
    pub(crate) start_time: OffsetDateTime,
    pub(crate) status: Status,
    pub(crate) message: String,
    pub(crate) last_update: OffsetDateTime,
    pub(crate) system_score: f64,
    pub(crate) component_scores: BTreeMap<Arc<str>, f64>,
    pub(crate) checks: imbl::OrdMap<Arc<str>, Arc<CheckView>>,
    pub(crate) checks_json: OnceLock<Bytes>,
    /// The Prometheus text of everything but the uptime, rendered by [`crate::metrics::shared`].
    pub(crate) metrics_text: OnceLock<Bytes>,
    /// The probe endpoints' bodies, each rendered on its first request to this snapshot.
    #[cfg(feature = "axum")]
    pub(crate) bodies: crate::http::Bodies,
}

impl Snapshot {
    /// The node's status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Why the node has its status.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The node's identifier.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The version of the service.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// When the engine was created.
    pub fn start_time(&self) -> OffsetDateTime {
        self.start_time
    }

    /// When this snapshot was taken.
    pub fn last_update(&self) -> OffsetDateTime {
        self.last_update
    }

    /// Time since the engine was created.
    pub fn uptime(&self) -> Duration {
        let elapsed = OffsetDateTime::now_utc() - self.start_time;
        elapsed.try_into().unwrap_or_default()
    }

    /// The weighted system score, 0.0–1.0 (1.0 before any result).
    pub fn system_score(&self) -> f64 {
        self.system_score
    }

    /// Score per component, for components with at least one scored check.
    pub fn component_scores(&self) -> &BTreeMap<Arc<str>, f64> {
        &self.component_scores
    }

    /// Every check, by name.
    pub fn checks(&self) -> impl ExactSizeIterator<Item = &Arc<CheckView>> {
        self.checks.values()
    }

    /// One check.
    pub fn check(&self, name: &str) -> Option<&Arc<CheckView>> {
        self.checks.get(name)
    }

    /// The `checks` object of the CHORUS schema, rendered once per snapshot and then shared.
    pub fn checks_json(&self) -> Bytes {
        self.checks_json
            .get_or_init(|| {
                let body =
                    serde_json::to_vec(&ChecksObject(self)).unwrap_or_else(|_| b"{}".to_vec());
                Bytes::from(body)
            })
            .clone()
    }
}

/// Serializes checks as `{"name": {healthy, message, details, latency, timestamp, ...}}`.
struct ChecksObject<'a>(&'a Snapshot);

impl Serialize for ChecksObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.checks.len()))?;
        for (name, view) in self.0.checks.iter() {
            map.serialize_entry(name.as_ref(), &CheckJson(view))?;
        }
        map.end()
    }
}

/// One check in the CHORUS shape, with vigil's state fields added.
pub struct CheckJson<'a>(pub &'a CheckView);

impl Serialize for CheckJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::wire::Check::from(self.0).serialize(serializer)
    }
}

impl<'a> From<&'a CheckView> for crate::wire::Check<'a> {
    fn from(v: &'a CheckView) -> Self {
        let last = v.last.as_ref();
        crate::wire::Check {
            healthy: last.is_some() && v.state == CheckState::Passing,
            message: last.map_or(Cow::Borrowed(pending_message(v)), |r| {
                Cow::Borrowed(r.message.as_str())
            }),
            details: last
                .filter(|r| !r.details.is_empty())
                .map(|r| Cow::Borrowed(&r.details)),
            latency: last.map(|r| u64::try_from(r.latency.as_nanos()).unwrap_or(u64::MAX)),
            timestamp: last.map(|r| rfc3339(r.timestamp)),
            error: last.and_then(|r| r.error.as_deref()).map(Cow::Borrowed),
            state: v.state,
            critical: v.spec.critical,
            enabled: v.spec.enabled,
            kind: Cow::Borrowed(v.kind.name()),
            component: v.spec.component.as_deref().map(Cow::Borrowed),
            score: v.score,
            consecutive_failures: v.streak.failures,
            consecutive_successes: v.streak.successes,
        }
    }
}

fn pending_message(view: &CheckView) -> &'static str {
    if view.spec.enabled {
        "no result yet"
    } else {
        "disabled"
    }
}

/// Formats a timestamp as RFC 3339 (UTC, `Z`).
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
