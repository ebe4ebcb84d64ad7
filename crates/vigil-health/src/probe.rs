//! The probe contract: anything that can look at a dependency and say how it is.
//!
//! The engine owns scheduling, timeouts, thresholds and history; a probe only answers "how is it
//! now?" with a [`Report`]. Probe kinds (http, tcp, exec, ...) live in `vigil-probe`; a service that
//! embeds the engine can use any async closure returning a [`Report`].

use std::future::Future;
use std::ops::Index;
use std::pin::Pin;

use litemap::LiteMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Structured details attached to a report, by key, shown under `details` in the JSON views.
///
/// A sorted vector: a report carries one to a few details and every check keeps its last
/// report, so a B-tree map's node of eleven slots per report would add up over thousands of
/// checks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Details(LiteMap<String, Value>);

impl Details {
    /// No details.
    pub fn new() -> Details {
        Details::default()
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        self.0.insert(key, value)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every detail, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter()
    }
}

/// `details["key"]`: the value, or `null` when it is not set (as `serde_json::Value` answers).
impl Index<&str> for Details {
    type Output = Value;

    fn index(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.get(key).unwrap_or(&NULL)
    }
}

/// The future a probe returns.
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Report> + Send + 'a>>;

/// What a probe concluded, in Consul's three levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The dependency works.
    Pass,
    /// The dependency works with a problem worth a look (exec exit code 1, a TTL `warn`).
    Warn,
    /// The dependency does not work.
    Fail,
}

impl Verdict {
    /// The lowercase name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// One probe's answer: a verdict, a message for people and optional structured details.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The verdict.
    pub verdict: Verdict,
    /// A one-line human-readable explanation.
    pub message: String,
    /// Structured details (peer counts, versions, status codes, ...).
    pub details: Details,
    /// The underlying error, when the probe failed because of one.
    pub error: Option<String>,
}

impl Report {
    /// A passing report.
    pub fn pass(message: impl Into<String>) -> Self {
        Self::new(Verdict::Pass, message)
    }

    /// A warning report.
    pub fn warn(message: impl Into<String>) -> Self {
        Self::new(Verdict::Warn, message)
    }

    /// A failing report.
    pub fn fail(message: impl Into<String>) -> Self {
        Self::new(Verdict::Fail, message)
    }

    /// A report with the given verdict.
    pub fn new(verdict: Verdict, message: impl Into<String>) -> Self {
        Report {
            verdict,
            message: message.into(),
            details: Details::new(),
            error: None,
        }
    }

    /// Adds one structured detail.
    pub fn with_detail(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// Records the error behind a failure.
    pub fn with_error(mut self, error: impl std::fmt::Display) -> Self {
        self.error = Some(error.to_string());
        self
    }
}

/// Something the engine can run on a schedule.
///
/// Implemented for every `Fn() -> impl Future<Output = Report>`, so an async closure is a probe:
///
/// ```
/// use vigil_health::{Probe, Report};
/// fn assert_probe(_: impl Probe) {}
/// assert_probe(|| async { Report::pass("queue depth 3") });
/// ```
pub trait Probe: Send + Sync + 'static {
    /// Looks once. The engine applies the timeout; a probe need not.
    fn probe(&self) -> ProbeFuture<'_>;

    /// A short name of the probe kind, shown in check views (`http`, `tcp`, `exec`, ...).
    fn kind(&self) -> &'static str {
        "custom"
    }
}

impl<F, Fut> Probe for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Report> + Send + 'static,
{
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self())
    }
}
