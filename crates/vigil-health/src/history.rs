//! Bounded history of one check's results: a ring capped both by count and by age.
//!
//! Entries are small (no message, and packed) so that 100 entries for each of thousands of checks
//! stay cheap; the latest full result lives in the check's view.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::check::nanos;
use crate::probe::Verdict;

/// One past run of a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEntry {
    /// When the run started.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub timestamp: OffsetDateTime,
    /// Its verdict.
    pub verdict: Verdict,
    /// How long it took (nanoseconds in JSON).
    #[serde(serialize_with = "nanos")]
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub latency: Duration,
    /// False for failures ignored because they happened inside the start period.
    pub counted: bool,
}

/// A ring of the most recent entries, never longer than `max_len` nor older than `max_age`.
///
/// Entries are stored packed (16 bytes instead of 40), since a node may hold 100 results for each
/// of 10,000 checks: the timestamp as nanoseconds since the Unix epoch, the latency in whole
/// microseconds.
#[derive(Clone, Debug)]
pub struct History {
    entries: VecDeque<Packed>,
    max_len: usize,
    max_age: Duration,
}

/// One [`HistoryEntry`] as it is stored.
#[derive(Clone, Copy, Debug)]
struct Packed {
    unix_nanos: i64,
    latency_micros: u32,
    verdict: Verdict,
    counted: bool,
}

impl Packed {
    fn pack(entry: &HistoryEntry) -> Packed {
        Packed {
            unix_nanos: unix_nanos(entry.timestamp),
            latency_micros: u32::try_from(entry.latency.as_micros()).unwrap_or(u32::MAX),
            verdict: entry.verdict,
            counted: entry.counted,
        }
    }

    fn unpack(self) -> HistoryEntry {
        HistoryEntry {
            timestamp: OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.unix_nanos))
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            verdict: self.verdict,
            latency: Duration::from_micros(u64::from(self.latency_micros)),
            counted: self.counted,
        }
    }
}

/// Nanoseconds since the Unix epoch, saturated to what an `i64` holds (years 1678 to 2262).
fn unix_nanos(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos()).unwrap_or(if at < OffsetDateTime::UNIX_EPOCH {
        i64::MIN
    } else {
        i64::MAX
    })
}

impl History {
    /// An empty history with the given bounds.
    pub fn new(max_len: usize, max_age: Duration) -> Self {
        History {
            entries: VecDeque::new(),
            max_len,
            max_age,
        }
    }

    /// Appends an entry, dropping what falls outside either bound.
    pub fn push(&mut self, entry: HistoryEntry) {
        if self.max_len == 0 {
            return;
        }
        while self.entries.len() >= self.max_len {
            self.entries.pop_front();
        }
        if self.entries.len() == self.entries.capacity() {
            // Grown by doubling, but never past `max_len`: the ring is full for good soon.
            let room = self
                .entries
                .capacity()
                .max(4)
                .min(self.max_len - self.entries.len());
            self.entries.reserve_exact(room);
        }
        self.entries.push_back(Packed::pack(&entry));
        self.prune(entry.timestamp);
    }

    /// Drops entries older than `max_age` as seen from `now`.
    pub fn prune(&mut self, now: OffsetDateTime) {
        let oldest_kept = unix_nanos(now - self.max_age);
        while self
            .entries
            .front()
            .is_some_and(|e| e.unix_nanos < oldest_kept)
        {
            self.entries.pop_front();
        }
    }

    /// The entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = HistoryEntry> + '_ {
        self.entries.iter().map(|p| p.unpack())
    }

    /// Number of entries kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at: OffsetDateTime) -> HistoryEntry {
        HistoryEntry {
            timestamp: at,
            verdict: Verdict::Pass,
            latency: Duration::from_millis(1),
            counted: true,
        }
    }

    #[test]
    fn keeps_at_most_max_len_newest_entries() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let mut h = History::new(3, Duration::from_secs(3600));
        for i in 0..10 {
            h.push(entry(t0 + Duration::from_secs(i)));
        }
        let kept: Vec<_> = h
            .iter()
            .map(|e| (e.timestamp - t0).whole_seconds())
            .collect();
        assert_eq!(kept, [7, 8, 9]);
    }

    #[test]
    fn drops_entries_older_than_max_age() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let mut h = History::new(100, Duration::from_secs(60));
        h.push(entry(t0));
        h.push(entry(t0 + Duration::from_secs(30)));
        h.push(entry(t0 + Duration::from_secs(61)));
        assert_eq!(h.len(), 2);
        h.prune(t0 + Duration::from_secs(200));
        assert!(h.is_empty());
    }
}
