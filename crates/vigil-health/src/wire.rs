//! The JSON bodies of the probe endpoints (`/health*`), as serde structs: the handlers of
//! [`http`](crate::http) serialize them and clients deserialize them, so a field renamed on one
//! side fails to compile on the other instead of reading blank. The schema is CHORUS's
//! (`latency` and `uptime` in nanoseconds, timestamps RFC 3339) with vigil's state fields added.
//!
//! Fields of bodies that were once built as JSON maps are declared in alphabetical order, the
//! order those maps wrote them in, so the bytes on the wire stay what they were.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::check::CheckState;
use crate::probe::Details;
use crate::status::Status;

/// One check in the CHORUS shape, with vigil's state fields added: an entry of `checks` in
/// `/health` and `/health/checks`. Borrows from the check's view when the server writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Check<'a> {
    /// Whether the check passes.
    pub healthy: bool,
    /// The last run's message, or why there is none yet.
    pub message: Cow<'a, str>,
    /// Structured details of the last run, when it gave any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub details: Option<Cow<'a, Details>>,
    /// How long the last run took, in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<u64>,
    /// When the last run started, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The underlying error of the last run, when it failed because of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Cow<'a, str>>,
    /// Its state.
    pub state: CheckState,
    /// Whether its failing makes the node unhealthy.
    pub critical: bool,
    /// Whether it runs.
    pub enabled: bool,
    /// How it probes: `http`, `tcp`, `exec`, `ttl`, ...
    pub kind: Cow<'a, str>,
    /// The component its score counts towards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<Cow<'a, str>>,
    /// Success rate over its score window, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Failed runs in a row.
    pub consecutive_failures: u32,
    /// Passed runs in a row.
    pub consecutive_successes: u32,
}

/// Every check by name.
pub type CheckMap = BTreeMap<String, Check<'static>>;

/// `GET /health` but its `checks` and `uptime`: the part the server renders once per snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthHead {
    /// The node's status.
    pub status: Status,
    /// Why it is in that status.
    pub message: String,
    /// When the engine started, RFC 3339.
    pub start_time: String,
    /// When the status was last computed, RFC 3339.
    pub last_update: String,
    /// The service's version.
    pub version: String,
    /// The node's id.
    pub node_id: String,
    /// Weighted success rate of every check, 0 to 1.
    pub score: f64,
}

/// `GET /health`: 200 when healthy or degraded, 503 otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// The status and identity of the node.
    #[serde(flatten)]
    pub head: HealthHead,
    /// Every check by name.
    pub checks: CheckMap,
    /// Nanoseconds since the engine started.
    pub uptime: u64,
}

/// `GET /health/ready`: 200 when healthy or degraded, 503 otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ready {
    /// Why the node is in its status.
    pub message: String,
    /// Whether the node takes traffic.
    pub ready: bool,
    /// The node's status.
    pub status: Status,
}

/// `GET /health/live`: 200 unless stopping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Live {
    /// Whether the node is not shutting down.
    pub live: bool,
    /// The node's status.
    pub status: Status,
    /// Time since the engine started, as Go prints a duration (`24h0m0s`).
    pub uptime: String,
}

/// `GET /health/checks` but its `checks`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChecksHead {
    /// When the status was last computed, RFC 3339.
    pub timestamp: String,
    /// Checks registered.
    pub total: usize,
}

/// `GET /health/checks`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Checks {
    /// The time and the count.
    #[serde(flatten)]
    pub head: ChecksHead,
    /// Every check by name.
    pub checks: CheckMap,
}

/// `GET /health/summary`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Summary {
    /// Check runs that failed since start.
    pub check_runs_failed: u64,
    /// Check runs since start.
    pub check_runs_total: u64,
    /// Score of each component, 0 to 1.
    #[serde(default)]
    pub component_scores: BTreeMap<String, f64>,
    /// Counts of checks by state, and the uptime.
    pub key_metrics: KeyMetrics,
    /// When the latest run started, RFC 3339.
    pub last_check: Option<String>,
    /// Why the node is in its status.
    pub message: String,
    /// The node's id.
    pub node_id: String,
    /// Weighted success rate of every check, 0 to 1.
    pub overall_score: f64,
    /// The node's status.
    pub status: Status,
    /// The scores that divide healthy from degraded from unhealthy.
    pub thresholds: Thresholds,
    /// Check runs since start (the CHORUS schema's name for `check_runs_total`).
    pub total_checks: u64,
    /// The service's version.
    pub version: String,
}

/// The check counts of `/health/summary`, enabled checks only but `checks_registered`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyMetrics {
    /// Enabled checks that fail.
    pub checks_critical: usize,
    /// Enabled checks that pass.
    pub checks_passing: usize,
    /// Every registered check.
    pub checks_registered: usize,
    /// Enabled checks without a result.
    pub checks_unknown: usize,
    /// Enabled checks that warn.
    pub checks_warning: usize,
    /// Time since the engine started, as Go prints a duration.
    pub uptime: String,
}

/// The score thresholds of `/health/summary`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Thresholds {
    /// At or above it (and no critical check failing), degraded rather than unhealthy.
    pub degraded: f64,
    /// At or above it, healthy.
    pub healthy: f64,
}
