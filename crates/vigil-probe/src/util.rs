//! Small helpers shared by the probe kinds: formatting byte counts and error chains, judging a
//! used ratio (disk, memory), and a probe's own time limit.

use std::error::Error;
#[cfg(any(feature = "grpc", feature = "postgres", feature = "redis"))]
use std::time::Duration;

use vigil_health::Report;

pub(crate) use vigil_text::fmt_elapsed;

/// A probe's own time limit when the `timeout` option is not given.
#[cfg(any(feature = "grpc", feature = "postgres", feature = "redis"))]
const DEFAULT_OWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The limit a probe sets itself from the `timeout` option: 9/10 of it, so the probe's own report of
/// a timeout arrives before the engine's deadline (which is the same option in a check) cuts it off.
#[cfg(any(feature = "grpc", feature = "postgres", feature = "redis"))]
pub(crate) fn own_timeout(options: &crate::ProbeOptions) -> Duration {
    options.timeout.unwrap_or(DEFAULT_OWN_TIMEOUT).mul_f64(0.9)
}

/// An error and all its sources, joined with `: ` (sources already in the message are skipped).
pub(crate) fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// A byte count for people, in binary units: `512 B`, `3.2 GiB`.
pub(crate) fn fmt_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Cuts `text` to at most `limit` bytes on a character boundary.
pub(crate) fn truncate_on_char_boundary(text: &mut String, limit: usize) -> bool {
    if text.len() <= limit {
        return false;
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    true
}

/// Space used and available, as `df` counts it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Usage {
    pub(crate) total: u64,
    pub(crate) used: u64,
    pub(crate) available: u64,
}

impl Usage {
    /// `used / (used + available)`; `0.0` when both are zero.
    pub(crate) fn ratio(&self) -> f64 {
        let denominator = self.used as f64 + self.available as f64;
        if denominator > 0.0 {
            self.used as f64 / denominator
        } else {
            0.0
        }
    }

    /// Passes at or under `max_used`, fails above it; `what` starts the message (`memory`, `disk /`).
    pub(crate) fn judge(&self, what: &str, max_used: f64) -> Report {
        let ratio = self.ratio();
        let summary = format!(
            "{what}: {:.1}% used ({} used, {} available, {} total)",
            ratio * 100.0,
            fmt_bytes(self.used),
            fmt_bytes(self.available),
            fmt_bytes(self.total),
        );
        let limit = format!("{:.1}%", max_used * 100.0);
        let report = if ratio > max_used {
            Report::fail(format!("{summary}, above the {limit} limit"))
        } else {
            Report::pass(format!("{summary}, limit {limit}"))
        };
        report
            .with_detail("total_bytes", self.total)
            .with_detail("used_bytes", self.used)
            .with_detail("available_bytes", self.available)
            .with_detail("used_ratio", ratio)
            .with_detail("max_used", max_used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bytes() {
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(1536), "1.5 KiB");
        assert_eq!(fmt_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(fmt_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn truncates_on_char_boundary() {
        let mut text = "aé".repeat(3); // a=1 byte, é=2 bytes
        assert!(truncate_on_char_boundary(&mut text, 2));
        assert_eq!(text, "a");
        let mut short = String::from("abc");
        assert!(!truncate_on_char_boundary(&mut short, 3));
        assert_eq!(short, "abc");
    }

    #[test]
    fn judges_usage() {
        let usage = Usage {
            total: 100,
            used: 50,
            available: 25,
        };
        assert!((usage.ratio() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            usage.judge("disk /", 0.9).verdict,
            vigil_health::Verdict::Pass
        );
        assert_eq!(
            usage.judge("disk /", 0.5).verdict,
            vigil_health::Verdict::Fail
        );
        let empty = Usage {
            total: 0,
            used: 0,
            available: 0,
        };
        assert_eq!(empty.ratio(), 0.0);
    }
}
