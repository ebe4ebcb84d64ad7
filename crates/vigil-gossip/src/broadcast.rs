//! The dissemination queue: updates waiting to be piggybacked, least-sent first.
//!
//! A newer update about a member replaces the queued one, so the queue holds at most one update
//! per member; each is sent about `mult × log10(n + 1)` times, then dropped.

use crate::id::NodeId;
use crate::message::{encoded_len, Update};

struct Pending {
    subject: NodeId,
    update: Update,
    sent: u32,
    len: usize,
}

/// Updates waiting to be spread.
#[derive(Default)]
pub(crate) struct Broadcasts {
    pending: Vec<Pending>,
}

impl Broadcasts {
    /// Queues `update`, replacing any queued update about the same member.
    pub(crate) fn push(&mut self, update: Update) {
        let subject = update.subject().clone();
        self.pending.retain(|p| p.subject != subject);
        let len = encoded_len(&update);
        self.pending.push(Pending {
            subject,
            update,
            sent: 0,
            len,
        });
    }

    /// Whether nothing waits to be sent.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Number of queued updates.
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// Takes the least-sent updates that fit in `budget` bytes, counting one transmission each;
    /// updates sent `limit` times leave the queue.
    pub(crate) fn take(&mut self, mut budget: usize, limit: u32) -> Vec<Update> {
        self.pending.sort_by_key(|p| p.sent);
        let mut out = Vec::new();
        for p in &mut self.pending {
            if p.len <= budget {
                budget -= p.len;
                p.sent += 1;
                out.push(p.update.clone());
            }
        }
        self.pending.retain(|p| p.sent < limit);
        out
    }
}

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
}
