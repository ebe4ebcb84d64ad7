//! Bounded history of one check's results: a ring capped both by count and by age.
//!
//! Entries are small (no message) so that 1,000 entries for each of thousands of checks stay cheap;
//! the latest full result lives in the check's view.

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
#[derive(Clone, Debug)]
pub struct History {
    entries: VecDeque<HistoryEntry>,
    max_len: usize,
    max_age: Duration,
}

impl History {
    /// An empty history with the given bounds.
    pub fn new(max_len: usize, max_age: Duration) -> Self {
        History {
            entries: VecDeque::with_capacity(max_len.min(16)),
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
        self.entries.push_back(entry);
        self.prune(entry.timestamp);
    }

    /// Drops entries older than `max_age` as seen from `now`.
    pub fn prune(&mut self, now: OffsetDateTime) {
        let oldest_kept = now - self.max_age;
        while self
            .entries
            .front()
            .is_some_and(|e| e.timestamp < oldest_kept)
        {
            self.entries.pop_front();
        }
    }

    /// The entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &HistoryEntry> {
        self.entries.iter()
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
