//! Durations as vigil prints them. Each format is fixed by where it is read, so each keeps its
//! own function; they live together so that a new output picks one of them rather than a fifth.

use std::time::Duration;

/// Go's `time.Duration` text at whole seconds (`24h0m0s`, `1m30s`, `5s`): the `uptime` of the
/// health endpoints, as the CHORUS `/health/live` body shows it.
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// A setting as a config file would write it (`250ms`, `10s`, `2m`, `1.5s`): timeouts and TTLs in
/// check reports and log lines.
pub fn humanize(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        format!("{}µs", d.as_micros())
    } else if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// A latency measured by a probe (`412µs`, `3ms`, `1.2s`), in probe reports.
pub fn fmt_elapsed(elapsed: Duration) -> String {
    if elapsed < Duration::from_millis(1) {
        format!("{}µs", elapsed.as_micros())
    } else if elapsed < Duration::from_secs(1) {
        format!("{}ms", elapsed.as_millis())
    } else {
        format!("{:.1}s", elapsed.as_secs_f64())
    }
}

/// A startup time in `vigil up` output (`1.25s`, `300ms`): two decimals, so the report's columns
/// line up and compare.
pub fn fmt_duration(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_matches_go() {
        assert_eq!(go_duration(Duration::from_secs(86400)), "24h0m0s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(5)), "5s");
    }

    #[test]
    fn humanize_reads_like_config() {
        assert_eq!(humanize(Duration::from_millis(250)), "250ms");
        assert_eq!(humanize(Duration::from_secs(10)), "10s");
        assert_eq!(humanize(Duration::from_secs(120)), "2m");
        assert_eq!(humanize(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn formats_elapsed() {
        assert_eq!(fmt_elapsed(Duration::from_micros(412)), "412µs");
        assert_eq!(fmt_elapsed(Duration::from_millis(3)), "3ms");
        assert_eq!(fmt_elapsed(Duration::from_millis(1234)), "1.2s");
    }

    #[test]
    fn startup_times_have_two_decimals() {
        assert_eq!(fmt_duration(Duration::from_millis(1250)), "1.25s");
        assert_eq!(fmt_duration(Duration::from_millis(300)), "300ms");
    }
}
