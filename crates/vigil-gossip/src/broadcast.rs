//! The dissemination queue: updates waiting to be piggybacked, least-sent first.
//!
//! A newer update about a member replaces what is queued about it, so the queue holds one update
//! per member — except suspicions: each observer's `Suspect` is an independent confirmation that
//! shortens the Lifeguard timeout everywhere, so the suspicions of different observers travel
//! side by side until something else about the member (a refutation, its death) replaces them
//! all. Each update is sent about `mult × log10(n + 1)` times, then dropped.

use std::collections::{BTreeMap, HashMap};

use crate::id::NodeId;
use crate::message::{encoded_len, Update};

struct Pending {
    subject: NodeId,
    update: Update,
    len: usize,
}

/// Updates waiting to be spread.
///
/// Kept ordered by (times sent, age) with an index by subject, so queuing an update and filling
/// a datagram cost `O(log q)` per update rather than a scan and a sort of the whole queue: at a
/// thousand members a joining cluster queues a thousand updates on every node.
#[derive(Default)]
pub(crate) struct Broadcasts {
    /// (times sent, insertion order) → update.
    queue: BTreeMap<(u32, u64), Pending>,
    /// Subject → the keys in `queue` of the updates about it (several only for suspicions).
    by_subject: HashMap<NodeId, Vec<(u32, u64)>>,
    next: u64,
}

impl Broadcasts {
    /// Queues `update`, replacing what is queued about the same member; a `Suspect` only
    /// replaces other kinds of update and suspicions from the same observer or of an older
    /// incarnation.
    pub(crate) fn push(&mut self, update: Update) {
        let subject = update.subject().clone();
        let mut keys = self.by_subject.remove(&subject).unwrap_or_default();
        keys.retain(|key| {
            let keep = match (&update, self.queue.get(key).map(|p| &p.update)) {
                (
                    Update::Suspect {
                        incarnation, from, ..
                    },
                    Some(Update::Suspect {
                        incarnation: queued_incarnation,
                        from: queued_from,
                        ..
                    }),
                ) => queued_from != from && queued_incarnation >= incarnation,
                _ => false,
            };
            if !keep {
                self.queue.remove(key);
            }
            keep
        });
        let len = encoded_len(&update);
        let key = (0, self.next);
        self.next += 1;
        keys.push(key);
        self.by_subject.insert(subject.clone(), keys);
        self.queue.insert(
            key,
            Pending {
                subject,
                update,
                len,
            },
        );
    }

    /// Whether nothing waits to be sent.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Number of queued updates.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Copies the least-sent updates that fit in `budget` bytes without counting a transmission:
    /// for datagrams to fixed destinations (heartbeats to the ring observers), which spread
    /// nothing beyond those few members and must not use up the budget meant for random ones.
    pub(crate) fn peek(&self, budget: usize) -> Vec<Update> {
        self.fitting(budget)
            .into_iter()
            .filter_map(|key| self.queue.get(&key).map(|p| p.update.clone()))
            .collect()
    }

    /// The keys of the least-sent updates that fit in `budget` bytes.
    fn fitting(&self, mut budget: usize) -> Vec<(u32, u64)> {
        let mut taken = Vec::new();
        let mut misses = 0;
        for (key, p) in &self.queue {
            if budget < MIN_UPDATE_LEN || misses == MAX_MISSES {
                break;
            }
            if p.len <= budget {
                budget -= p.len;
                taken.push(*key);
                misses = 0;
            } else {
                misses += 1;
            }
        }
        taken
    }

    /// Takes the least-sent updates that fit in `budget` bytes, counting one transmission each;
    /// updates sent `limit` times leave the queue.
    pub(crate) fn take(&mut self, budget: usize, limit: u32) -> Vec<Update> {
        let taken = self.fitting(budget);
        let mut out = Vec::with_capacity(taken.len());
        for key in taken {
            let Some(p) = self.queue.remove(&key) else {
                continue;
            };
            out.push(p.update.clone());
            let sent = key.0 + 1;
            let new_key = (sent < limit).then_some((sent, key.1));
            if let Some(keys) = self.by_subject.get_mut(&p.subject) {
                match new_key {
                    Some(new_key) => keys
                        .iter_mut()
                        .filter(|k| **k == key)
                        .for_each(|k| *k = new_key),
                    None => keys.retain(|k| *k != key),
                }
                if keys.is_empty() {
                    self.by_subject.remove(&p.subject);
                }
            }
            if let Some(new_key) = new_key {
                self.queue.insert(new_key, p);
            }
        }
        out
    }
}

/// No encoded update is shorter than this (variant tag, one-byte id, incarnation), so a budget
/// below it cannot take anything more.
const MIN_UPDATE_LEN: usize = 3;

/// Updates in a row that did not fit after which a datagram is considered full: smaller ones
/// further down the queue wait for the next datagram rather than costing a scan of the queue.
const MAX_MISSES: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    fn left(id: &str, incarnation: u64) -> Update {
        Update::Left {
            id: id.into(),
            incarnation,
        }
    }

    #[test]
    fn a_newer_update_replaces_the_queued_one() {
        let mut b = Broadcasts::default();
        b.push(left("a", 1));
        b.push(left("a", 2));
        assert_eq!(b.take(1000, 5), [left("a", 2)]);
    }

    fn suspect(id: &str, incarnation: u64, from: &str) -> Update {
        Update::Suspect {
            id: id.into(),
            incarnation,
            from: from.into(),
        }
    }

    #[test]
    fn suspicions_from_different_observers_travel_together_until_refuted() {
        let mut b = Broadcasts::default();
        b.push(suspect("a", 1, "x"));
        b.push(suspect("a", 1, "y"));
        b.push(suspect("a", 1, "x"));
        assert_eq!(b.len(), 2, "one per observer");
        b.push(suspect("a", 2, "z"));
        assert_eq!(
            b.take(1000, 5),
            [suspect("a", 2, "z")],
            "a newer incarnation replaces older suspicions"
        );
        b.push(suspect("a", 2, "x"));
        b.push(left("a", 3));
        assert_eq!(
            b.take(1000, 5),
            [left("a", 3)],
            "anything else replaces every suspicion"
        );
        for _ in 0..4 {
            b.take(1000, 5);
        }
        assert!(b.is_empty());
        assert!(b.by_subject.is_empty());
    }

    #[test]
    fn updates_leave_after_the_limit_and_least_sent_go_first() {
        let mut b = Broadcasts::default();
        b.push(left("a", 1));
        assert_eq!(b.take(1000, 2).len(), 1);
        b.push(left("b", 1));
        let one = encoded_len(&left("b", 1));
        assert_eq!(b.take(one, 2), [left("b", 1)], "b was sent fewer times");
        assert_eq!(b.take(1000, 2).len(), 2);
        assert!(b.is_empty());
    }

    #[test]
    fn peeking_sends_nothing_of_the_budget() {
        let mut b = Broadcasts::default();
        b.push(left("a", 1));
        for _ in 0..5 {
            assert_eq!(b.peek(1000), [left("a", 1)]);
        }
        assert_eq!(b.take(1000, 1), [left("a", 1)]);
        assert!(b.is_empty());
    }
}
