//! Prometheus text exposition (format 0.0.4) of a [`Snapshot`].
//!
//! Rendered straight from the snapshot at scrape time. A metrics registry crate would keep a
//! second copy of every per-check counter, updated on the hot path and pruned by hand when checks
//! are unregistered at run time; the engine already counts everything, so the text is derived from
//! that one source of truth instead.
//!
//! The text of 10,000 checks is megabytes, so a scrape does not render it: [`shared`] renders it
//! once per snapshot, every scrape of that snapshot sends the same [`Bytes`], and at most
//! [`MAX_CONCURRENT_RENDERS`] renderings (of different snapshots) run at once. Only the uptime,
//! which changes from scrape to scrape, is written per request ([`uptime`]).

use std::fmt::Write;

use bytes::Bytes;
use tokio::sync::Semaphore;

use crate::check::CheckState;
use crate::snapshot::{Snapshot, LATENCY_BUCKETS};
use crate::status::Status;

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Most renderings of [`shared`] running at once, over every engine of the process.
pub const MAX_CONCURRENT_RENDERS: usize = 2;

static RENDERING: Semaphore = Semaphore::const_new(MAX_CONCURRENT_RENDERS);

/// Renderings made so far, for the tests that check scrapes share them.
#[cfg(test)]
pub(crate) static RENDERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Appends the health metrics of `snapshot` to `out`.
pub fn render(snapshot: &Snapshot, out: &mut String) {
    out.push_str(&String::from_utf8_lossy(&rendered(snapshot)));
    uptime(snapshot, out);
}

/// The health metrics of `snapshot` but the uptime, rendered once per snapshot and then shared by
/// every caller; waits while [`MAX_CONCURRENT_RENDERS`] other snapshots are being rendered.
pub async fn shared(snapshot: &Snapshot) -> Bytes {
    if let Some(text) = cached(snapshot) {
        return text;
    }
    // Nothing closes the semaphore, so this always holds a permit.
    let _permit = RENDERING.acquire().await;
    rendered(snapshot)
}

/// The text [`shared`] gives, if it is already rendered for `snapshot`.
pub fn cached(snapshot: &Snapshot) -> Option<Bytes> {
    snapshot.metrics_text.get().cloned()
}

/// Appends the `vigil_uptime_seconds` family, the one part of the metrics that [`shared`] leaves
/// out because it changes with every scrape.
pub fn uptime(snapshot: &Snapshot, out: &mut String) {
    let mut w = Writer::new(out);
    w.family(
        "vigil_uptime_seconds",
        Kind::Gauge,
        "Seconds since the health engine started.",
    );
    w.sample("vigil_uptime_seconds", &[], snapshot.uptime().as_secs_f64());
}

/// The snapshot's cached text, rendered now if it is the first to ask.
fn rendered(snapshot: &Snapshot) -> Bytes {
    snapshot
        .metrics_text
        .get_or_init(|| {
            #[cfg(test)]
            RENDERS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut out = String::with_capacity(4096 + snapshot.checks().len() * 1024);
            render_without_uptime(snapshot, &mut out);
            Bytes::from(out)
        })
        .clone()
}

fn render_without_uptime(snapshot: &Snapshot, out: &mut String) {
    let mut w = Writer::new(out);

    w.family(
        "vigil_build_info",
        Kind::Gauge,
        "Build and identity of the node.",
    );
    w.sample(
        "vigil_build_info",
        &[
            ("version", snapshot.version()),
            ("node_id", snapshot.node_id()),
        ],
        1.0,
    );

    w.family(
        "vigil_health_status",
        Kind::Gauge,
        "Aggregate status of the node: 1 for the current status, 0 for the others.",
    );
    for status in Status::ALL {
        let value = snapshot.status() == status;
        w.sample("vigil_health_status", &[("status", status.as_str())], value);
    }

    w.family(
        "vigil_system_health_score",
        Kind::Gauge,
        "Weighted success rate of all checks, 0 to 1.",
    );
    w.sample("vigil_system_health_score", &[], snapshot.system_score());

    w.family(
        "vigil_component_health_score",
        Kind::Gauge,
        "Weighted success rate of the checks of one component, 0 to 1.",
    );
    for (component, score) in snapshot.component_scores() {
        w.sample(
            "vigil_component_health_score",
            &[("component", component)],
            *score,
        );
    }

    w.family(
        "vigil_checks_registered",
        Kind::Gauge,
        "Checks registered on the node.",
    );
    w.sample("vigil_checks_registered", &[], snapshot.checks().len());

    w.family(
        "vigil_check_state",
        Kind::Gauge,
        "State of each check: 1 for the current state, 0 for the others.",
    );
    for view in snapshot.checks() {
        let critical = if view.spec.critical { "true" } else { "false" };
        for state in CheckState::ALL {
            let value = view.state == state;
            let labels = [
                ("check", view.spec.name.as_str()),
                ("state", state.as_str()),
                ("critical", critical),
            ];
            w.sample("vigil_check_state", &labels, value);
        }
    }

    w.family(
        "vigil_check_score",
        Kind::Gauge,
        "Success rate of each check over its score window, 0 to 1.",
    );
    for view in snapshot.checks() {
        if let Some(score) = view.score {
            w.sample("vigil_check_score", &[("check", &view.spec.name)], score);
        }
    }

    let counters: [(&str, &str, Counter); 3] = [
        (
            "vigil_check_passed_total",
            "Runs of each check that passed.",
            |s| s.passed,
        ),
        (
            "vigil_check_warned_total",
            "Runs of each check that warned.",
            |s| s.warned,
        ),
        (
            "vigil_check_failed_total",
            "Runs of each check that failed, timeouts included.",
            |s| s.failed,
        ),
    ];
    for (name, help, value) in counters {
        w.family(name, Kind::Counter, help);
        for view in snapshot.checks() {
            w.sample(name, &[("check", &view.spec.name)], value(&view.stats));
        }
    }

    let hist = "vigil_check_duration_seconds";
    w.family(hist, Kind::Histogram, "Duration of check runs.");
    for view in snapshot.checks() {
        let buckets = LATENCY_BUCKETS
            .iter()
            .copied()
            .zip(view.stats.latency_buckets.iter().copied());
        w.histogram(
            hist,
            &[("check", view.spec.name.as_str())],
            buckets,
            view.stats.latency_sum.as_secs_f64(),
            view.stats.runs(),
        );
    }
}

/// Reads one per-check counter out of its stats.
type Counter = fn(&crate::CheckStats) -> u64;

/// The type of a metric family, as its `# TYPE` line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A value that only goes up.
    Counter,
    /// Cumulative buckets, a sum and a count.
    Histogram,
}

impl Kind {
    /// The word of the `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        }
    }
}

/// A sample's value: counters stay integers, so they print exactly at any size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// A count.
    Int(u64),
    /// Anything else; NaN and the infinities print as Prometheus spells them.
    Float(f64),
}

impl From<u64> for Value {
    fn from(value: u64) -> Self {
        Value::Int(value)
    }
}

impl From<u32> for Value {
    fn from(value: u32) -> Self {
        Value::Int(u64::from(value))
    }
}

impl From<usize> for Value {
    fn from(value: usize) -> Self {
        Value::Int(u64::try_from(value).unwrap_or(u64::MAX))
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Int(u64::from(value))
    }
}

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Value::Float(value)
    }
}

/// Writes metric families in the Prometheus text format (0.0.4) onto the end of a string: every
/// `/metrics` family of vigil goes through it, so names, label escaping and number spelling are
/// the same everywhere.
pub struct Writer<'a>(&'a mut String);

impl<'a> Writer<'a> {
    /// A writer appending to `out`.
    pub fn new(out: &'a mut String) -> Self {
        Writer(out)
    }

    /// The `# HELP` and `# TYPE` lines of a family.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let _ = writeln!(
            self.0,
            "# HELP {name} {help}\n# TYPE {name} {}",
            kind.as_str()
        );
    }

    /// A family of one sample without labels.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl Into<Value>) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// One sample; label values are escaped.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<Value>) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                self.0.push_str(key);
                self.0.push_str("=\"");
                escape_into(self.0, val);
                self.0.push('"');
            }
            self.0.push('}');
        }
        let _ = match value.into() {
            Value::Int(n) => writeln!(self.0, " {n}"),
            Value::Float(x) => writeln!(self.0, " {}", format_value(x)),
        };
    }

    /// The samples of one histogram: a cumulative `_bucket` per bound of `counts` (each count
    /// is of its own bucket, not cumulative), `+Inf` with `count`, then `_sum` and `_count`,
    /// each with `labels` and `le`.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        buckets: impl IntoIterator<Item = (f64, u64)>,
        sum: f64,
        count: u64,
    ) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (bound, n) in buckets {
            cumulative += n;
            self.bucket(&bucket, labels, &bound.to_string(), cumulative);
        }
        self.bucket(&bucket, labels, "+Inf", count);
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count);
    }

    /// One `_bucket` sample: `labels` and `le`.
    fn bucket(&mut self, name: &str, labels: &[(&str, &str)], le: &str, count: u64) {
        let mut with_le = labels.to_vec();
        with_le.push(("le", le));
        self.sample(name, &with_le, count);
    }
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        value.to_string()
    }
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_into(&mut out, "a\"b\\c\nd");
        assert_eq!(out, r#"a\"b\\c\nd"#);
    }

    #[test]
    fn values_use_prometheus_spelling() {
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(0.5), "0.5");
        assert_eq!(format_value(3.0), "3");
    }
}
