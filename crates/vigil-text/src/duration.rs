//! Durations as people write them: in check options, stack files, config and command-line flags.
//! One parser ([`parse_duration`], and [`HumanDuration`] for serde), so `"500ms"` means the same everywhere and a bare number is refused everywhere, and
//! one table of limits ([`limits`]), so every duration setting is held to a range that timers and
//! clocks can add without overflowing, and that a person could have meant.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// Why a duration was refused; the message says what was written and how to write it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// A number without a unit.
    #[error("invalid duration \"{0}\": add a unit, e.g. \"{0}s\" or \"{0}ms\"")]
    NoUnit(String),
    /// Anything else the parser refused.
    #[error("invalid duration \"{text}\": {reason} (write e.g. \"500ms\", \"30s\", \"1m30s\")")]
    Invalid {
        /// What was written, trimmed.
        text: String,
        /// Why it is not a duration, in plain words.
        reason: String,
    },
}

/// Parses `"500ms"`, `"30s"`, `"1m30s"`, `"2h"`; a bare number is refused because its unit would
/// be a guess.
///
/// The result is not bounded; a setting should go through its [`DurationLimit`] instead.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DurationError::NoUnit(text.to_owned()));
    }
    humantime::parse_duration(text).map_err(|e| DurationError::Invalid {
        text: text.to_owned(),
        reason: plain_reason(&e),
    })
}

/// The parser's error in words that need no knowledge of its byte offsets.
fn plain_reason(error: &humantime::DurationError) -> String {
    use humantime::DurationError as E;
    match error {
        E::Empty => "it is empty".to_owned(),
        E::NumberOverflow => "the number is too large or too precise".to_owned(),
        E::UnknownUnit { unit, .. } => {
            format!("unknown unit \"{unit}\" (units: ns, us, ms, s, m, h, d, w)")
        }
        E::InvalidCharacter(_) | E::NumberExpected(_) => {
            "not a number followed by a unit".to_owned()
        }
    }
}

/// A duration written the way people write them: `"500ms"`, `"30s"`, `"1m30s"`. Its range is the
/// setting's, checked where the setting is known ([`limits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"500ms\", \"30s\" or \"1m30s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                parse_duration(v).map(HumanDuration).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(DurationVisitor)
    }
}

/// The range a duration setting accepts, with the setting's name for error messages.
///
/// ```
/// use std::time::Duration;
/// use vigil_text::limits;
///
/// assert_eq!(limits::CHECK_INTERVAL.parse("5s"), Ok(Duration::from_secs(5)));
/// assert_eq!(
///     limits::CHECK_INTERVAL.parse("1ns").unwrap_err().to_string(),
///     "interval must be from 100ms to 24h, found \"1ns\""
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurationLimit {
    /// The setting, as written in files (`interval`, `history_max_age`, ...).
    pub setting: &'static str,
    /// The shortest accepted value.
    pub min: Duration,
    /// The longest accepted value.
    pub max: Duration,
}

/// A duration setting refused by its [`DurationLimit`]; the message names the setting.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The text is not a duration.
    #[error("{setting}: {source}")]
    Invalid {
        /// The setting, as written in files.
        setting: &'static str,
        /// Why the text is not a duration.
        source: DurationError,
    },
    /// A duration outside the setting's range.
    #[error("{setting} must be from {} to {}, found {found}", Written(*min), Written(*max))]
    OutOfRange {
        /// The setting, as written in files.
        setting: &'static str,
        /// The shortest accepted value.
        min: Duration,
        /// The longest accepted value.
        max: Duration,
        /// What was found: the text as written (quoted) or the duration.
        found: String,
    },
}

impl DurationLimit {
    /// Parses `text` as a duration and checks it against the range.
    pub fn parse(&self, text: &str) -> Result<Duration, LimitError> {
        let value = parse_duration(text).map_err(|source| LimitError::Invalid {
            setting: self.setting,
            source,
        })?;
        if self.contains(value) {
            Ok(value)
        } else {
            Err(self.out_of_range(format!("\"{}\"", text.trim())))
        }
    }

    /// Checks a parsed duration against the range.
    pub fn check(&self, value: Duration) -> Result<Duration, LimitError> {
        if self.contains(value) {
            Ok(value)
        } else {
            Err(self.out_of_range(Written(value).to_string()))
        }
    }

    /// Whether `value` is in the range.
    pub fn contains(&self, value: Duration) -> bool {
        (self.min..=self.max).contains(&value)
    }

    fn out_of_range(&self, found: String) -> LimitError {
        LimitError::OutOfRange {
            setting: self.setting,
            min: self.min,
            max: self.max,
            found,
        }
    }
}

impl fmt::Display for DurationLimit {
    /// `interval (100ms to 24h)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} to {})",
            self.setting,
            Written(self.min),
            Written(self.max)
        )
    }
}

/// A duration in the largest unit that writes it exactly, the way the config files write them.
struct Written(Duration);

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MINUTE: u64 = 60;
        const HOUR: u64 = 60 * MINUTE;
        const DAY: u64 = 24 * HOUR;
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        if d.subsec_nanos() != 0 {
            return if d.subsec_nanos().is_multiple_of(1_000_000) {
                write!(f, "{}ms", d.as_millis())
            } else {
                write!(f, "{}ns", d.as_nanos())
            };
        }
        let secs = d.as_secs();
        // Days only past two of them: "24h" reads better than "1d".
        if secs.is_multiple_of(DAY) && secs >= 2 * DAY {
            write!(f, "{}d", secs / DAY)
        } else if secs.is_multiple_of(HOUR) {
            write!(f, "{}h", secs / HOUR)
        } else if secs.is_multiple_of(MINUTE) {
            write!(f, "{}m", secs / MINUTE)
        } else {
            write!(f, "{secs}s")
        }
    }
}

/// Every duration setting of vigil and the range it accepts, in one place.
///
/// The upper bounds keep `Instant + duration`, the multiples the protocols take of their
/// settings and clock arithmetic on history far from overflow; the lower bounds keep a check
/// or a protocol timer from spinning.
pub mod limits {
    use std::time::Duration;

    use super::DurationLimit;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
    const fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }
    const MINUTE: Duration = secs(60);
    const HOUR: Duration = secs(3600);
    const DAY: Duration = secs(24 * 3600);

    const fn limit(setting: &'static str, min: Duration, max: Duration) -> DurationLimit {
        DurationLimit { setting, min, max }
    }

    /// A check's or a neighbour's time between runs.
    pub const CHECK_INTERVAL: DurationLimit = limit("interval", ms(100), DAY);
    /// A check's or a neighbour's limit on one run.
    pub const CHECK_TIMEOUT: DurationLimit = limit("timeout", ms(10), HOUR);
    /// A check's grace for failures before its first pass.
    pub const START_PERIOD: DurationLimit = limit("start_period", Duration::ZERO, DAY);
    /// How long a TTL check stays passing without a report.
    pub const TTL: DurationLimit = limit("ttl", secs(1), secs(7 * 24 * 3600));
    /// `[[webhooks]] timeout`: one delivery attempt.
    pub const WEBHOOK_TIMEOUT: DurationLimit = limit("timeout", ms(100), MINUTE);
    /// `vigil probe --timeout`.
    pub const PROBE_TIMEOUT: DurationLimit = limit("--timeout", ms(10), HOUR);

    /// `vigil watch --interval`.
    pub const WATCH_INTERVAL: DurationLimit = limit("--interval", ms(100), HOUR);
    /// `vigil fake-service --ready-after`.
    pub const READY_AFTER: DurationLimit = limit("--ready-after", Duration::ZERO, DAY);
    /// `vigil fake-service --fail-after`.
    pub const FAIL_AFTER: DurationLimit = limit("--fail-after", Duration::ZERO, HOUR);
    /// `vigil fake-service --exit-after`.
    pub const EXIT_AFTER: DurationLimit = limit("--exit-after", Duration::ZERO, DAY);
    /// `vigil fake-service --sick-before-exit`.
    pub const SICK_BEFORE_EXIT: DurationLimit = limit("--sick-before-exit", Duration::ZERO, HOUR);

    /// `[health] history_max_age`.
    pub const HISTORY_MAX_AGE: DurationLimit =
        limit("history_max_age", secs(1), secs(30 * 24 * 3600));
    /// `[shutdown] timeout`.
    pub const SHUTDOWN_TIMEOUT: DurationLimit = limit("timeout", ms(1), HOUR);
    /// `[shutdown] drain`.
    pub const SHUTDOWN_DRAIN: DurationLimit = limit("drain", Duration::ZERO, HOUR);
    /// `[shutdown] on_critical`.
    pub const SHUTDOWN_ON_CRITICAL: DurationLimit = limit("on_critical", Duration::ZERO, DAY);

    /// `[cluster] heartbeat_interval`.
    pub const HEARTBEAT_INTERVAL: DurationLimit = limit("heartbeat_interval", ms(10), MINUTE);
    /// `[cluster] phi_min_std_dev`.
    pub const PHI_MIN_STD_DEV: DurationLimit = limit("phi_min_std_dev", ms(1), MINUTE);
    /// `[cluster] phi_acceptable_pause`.
    pub const PHI_ACCEPTABLE_PAUSE: DurationLimit =
        limit("phi_acceptable_pause", Duration::ZERO, MINUTE);
    /// `[cluster] probe_timeout`.
    pub const GOSSIP_PROBE_TIMEOUT: DurationLimit = limit("probe_timeout", ms(10), MINUTE);
    /// `[cluster] suspicion_min`.
    pub const SUSPICION_MIN: DurationLimit = limit("suspicion_min", ms(100), HOUR);
    /// `[cluster] suspicion_max`.
    pub const SUSPICION_MAX: DurationLimit = limit("suspicion_max", ms(100), HOUR);
    /// `[cluster] gossip_interval`.
    pub const GOSSIP_INTERVAL: DurationLimit = limit("gossip_interval", ms(10), MINUTE);
    /// `[cluster] push_pull_interval`.
    pub const PUSH_PULL_INTERVAL: DurationLimit = limit("push_pull_interval", secs(1), HOUR);
    /// `[cluster] reap_after`.
    pub const REAP_AFTER: DurationLimit = limit("reap_after", secs(1), secs(7 * 24 * 3600));
    /// `[cluster] election_timeout`: heartbeats go every sixth of it, so not below 60ms.
    pub const ELECTION_TIMEOUT: DurationLimit = limit("election_timeout", ms(60), MINUTE);

    /// `[dns] ttl`: the TTL of DNS answers; past an hour, answers outlive the changes they
    /// describe for too long.
    pub const DNS_TTL: DurationLimit = limit("ttl", Duration::ZERO, HOUR);

    /// A service instance's `deregister_critical_after`.
    pub const DEREGISTER_CRITICAL_AFTER: DurationLimit =
        limit("deregister_critical_after", secs(1), secs(30 * 24 * 3600));
    /// A session's `ttl`: renewals come every third of it, so the shortest is one a loaded
    /// machine still keeps.
    pub const SESSION_TTL: DurationLimit = limit("ttl", ms(100), DAY);
    /// A blocking query's `wait` (Consul's longest too).
    pub const QUERY_WAIT: DurationLimit = limit("wait", Duration::ZERO, secs(600));

    /// Stack files: `[services.X.health] interval`.
    pub const STACK_INTERVAL: DurationLimit = limit("interval", ms(10), DAY);
    /// Stack files: `[services.X.health] timeout`.
    pub const STACK_TIMEOUT: DurationLimit = limit("timeout", ms(10), HOUR);
    /// Stack files: `[services.X.health] start_period`.
    pub const STACK_START_PERIOD: DurationLimit = limit("start_period", Duration::ZERO, DAY);
    /// Stack files: `[services.X.health] start_interval`.
    pub const STACK_START_INTERVAL: DurationLimit = limit("start_interval", ms(10), HOUR);
    /// Stack files: `backoff`, the first restart's delay.
    pub const BACKOFF: DurationLimit = limit("backoff", Duration::ZERO, HOUR);
    /// Stack files: `backoff_max`, the longest restart delay.
    pub const BACKOFF_MAX: DurationLimit = limit("backoff_max", Duration::ZERO, DAY);
    /// Stack files: `stop_grace`, the wait between SIGTERM and SIGKILL.
    pub const STOP_GRACE: DurationLimit = limit("stop_grace", Duration::ZERO, HOUR);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("30")
            .unwrap_err()
            .to_string()
            .contains("add a unit"));
        assert!(parse_duration("5x")
            .unwrap_err()
            .to_string()
            .contains("invalid duration \"5x\""));
    }

    #[test]
    fn a_number_too_large_for_any_clock_is_worded_plainly() {
        let error = parse_duration("100000000000000000000000s")
            .unwrap_err()
            .to_string();
        assert!(error.contains("the number is too large"), "{error}");
        for text in ["abc", "5 x", "", "1.5.5s"] {
            let error = parse_duration(text).unwrap_err().to_string();
            assert!(!error.contains(" at "), "no parser offsets: {error}");
        }
    }

    #[test]
    fn limits_name_the_setting_and_the_range() {
        let ttl = limits::TTL;
        assert_eq!(ttl.parse("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(ttl.parse("7d"), Ok(Duration::from_secs(7 * 24 * 3600)));
        assert_eq!(
            ttl.parse("10000000000000000000s").unwrap_err().to_string(),
            "ttl must be from 1s to 7d, found \"10000000000000000000s\""
        );
        assert_eq!(
            ttl.check(Duration::from_millis(500))
                .unwrap_err()
                .to_string(),
            "ttl must be from 1s to 7d, found 500ms"
        );
        assert!(ttl
            .parse("5x")
            .unwrap_err()
            .to_string()
            .starts_with("ttl: invalid duration"));
        assert_eq!(
            limits::HISTORY_MAX_AGE
                .parse("20000y")
                .unwrap_err()
                .to_string(),
            "history_max_age must be from 1s to 30d, found \"20000y\""
        );
        assert_eq!(
            limits::SHUTDOWN_DRAIN.to_string(),
            "drain (0s to 1h)",
            "zero is written with a unit"
        );
    }

    #[test]
    fn bounds_are_written_in_their_largest_exact_unit() {
        let written = |d: Duration| Written(d).to_string();
        assert_eq!(written(Duration::from_millis(100)), "100ms");
        assert_eq!(written(Duration::from_millis(1500)), "1500ms");
        assert_eq!(written(Duration::from_secs(90)), "90s");
        assert_eq!(written(Duration::from_secs(120)), "2m");
        assert_eq!(written(Duration::from_secs(86_400)), "24h");
        assert_eq!(written(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(written(Duration::from_nanos(1)), "1ns");
    }

    /// Every upper bound leaves room for the arithmetic done on it: an `Instant` a few
    /// multiples of it ahead, and a wall clock this far back.
    #[test]
    fn every_limit_is_far_from_overflow() {
        let all = [
            limits::CHECK_INTERVAL,
            limits::CHECK_TIMEOUT,
            limits::START_PERIOD,
            limits::TTL,
            limits::PROBE_TIMEOUT,
            limits::WATCH_INTERVAL,
            limits::READY_AFTER,
            limits::FAIL_AFTER,
            limits::EXIT_AFTER,
            limits::SICK_BEFORE_EXIT,
            limits::HISTORY_MAX_AGE,
            limits::SHUTDOWN_TIMEOUT,
            limits::SHUTDOWN_DRAIN,
            limits::SHUTDOWN_ON_CRITICAL,
            limits::HEARTBEAT_INTERVAL,
            limits::PHI_MIN_STD_DEV,
            limits::PHI_ACCEPTABLE_PAUSE,
            limits::GOSSIP_PROBE_TIMEOUT,
            limits::SUSPICION_MIN,
            limits::SUSPICION_MAX,
            limits::GOSSIP_INTERVAL,
            limits::PUSH_PULL_INTERVAL,
            limits::REAP_AFTER,
            limits::ELECTION_TIMEOUT,
            limits::STACK_INTERVAL,
            limits::STACK_TIMEOUT,
            limits::STACK_START_PERIOD,
            limits::STACK_START_INTERVAL,
            limits::BACKOFF,
            limits::BACKOFF_MAX,
            limits::STOP_GRACE,
        ];
        let now = std::time::Instant::now();
        for limit in all {
            assert!(limit.min <= limit.max, "{limit}");
            assert!(limit.max <= Duration::from_secs(30 * 86_400), "{limit}");
            assert!(now.checked_add(limit.max * 1000).is_some(), "{limit}");
        }
    }
}
