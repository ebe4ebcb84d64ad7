//! A leader whose process is gone. When a process dies, its kernel closes its connections and
//! refuses new ones on its ports while the host goes on answering: a follower sees the leader's
//! Raft connection close, dials the leader's Raft port, and a refusal proves that no leader
//! runs there any more. A lease protects a leader that may still be acting; a process that
//! exited acts no more, so the followers stand for election as soon as openraft's own (short)
//! lease lets their votes count, instead of waiting out vigil's.
//!
//! A leader that hangs (SIGSTOP, a full disk) or is cut off keeps its port: its kernel still
//! accepts, or the network drops the dial, and nothing is refused. Those still take the lease,
//! as they must: such a leader may wake and act. Only a refusal, never a timeout, counts.
//!
//! [`LeaderExit`] holds what this voter found: it ties a finding to the leader contact it was
//! made after, so a leader heard from again (a restarted process, a new leader) ends it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::network::LeaderContact;

/// What this voter found out about its leader's process.
#[derive(Debug, Default)]
pub struct LeaderExit {
    /// The [`LeaderContact::reading`] after which the leader's port refused a connection; 0
    /// for none.
    gone_after: AtomicU64,
    /// The Raft id of the leader found gone.
    leader: AtomicU64,
    /// The contact reading last probed for a silent leader, so one silence is probed once.
    probed_after: AtomicU64,
    /// A connection a leader spoke on closed: worth a probe at once.
    link_closed: Notify,
    /// A leader was found gone: worth an election at once.
    found_gone: Notify,
}

impl LeaderExit {
    /// Nothing found yet.
    pub fn new() -> LeaderExit {
        LeaderExit::default()
    }

    /// Tells the probe that a connection a leader spoke on closed.
    pub fn link_closed(&self) {
        self.link_closed.notify_one();
    }

    /// Waits until a connection a leader spoke on closes (at once if one closed since the last
    /// wait).
    pub async fn next_link_closed(&self) {
        self.link_closed.notified().await
    }

    /// Waits until a leader is found gone (at once if one was since the last wait).
    pub async fn next_found_gone(&self) {
        self.found_gone.notified().await
    }

    /// Whether the leader heard from last is to be probed after a silence of `silent`: once
    /// per silence, after two missed heartbeats. A closed connection is probed whatever this
    /// says.
    pub fn probe_due(&self, contact: &LeaderContact, heartbeat: Duration) -> bool {
        let reading = contact.reading();
        let silent = contact.since().unwrap_or_default();
        if reading == 0 || silent < heartbeat.saturating_mul(2) {
            return false;
        }
        self.probed_after.swap(reading, Ordering::Relaxed) != reading
    }

    /// Records that the leader `leader`, last heard at `reading`, has no process any more.
    /// Ignored if a leader spoke since `reading`: the finding would be about an older one.
    pub fn found(&self, contact: &LeaderContact, reading: u64, leader: u64) {
        if reading == 0 || contact.reading() != reading {
            return;
        }
        self.leader.store(leader, Ordering::Relaxed);
        self.gone_after.store(reading, Ordering::Relaxed);
        self.found_gone.notify_one();
    }

    /// The Raft id of the leader found gone, while nobody led since.
    pub fn gone(&self, contact: &LeaderContact) -> Option<u64> {
        let reading = contact.reading();
        (reading != 0 && self.gone_after.load(Ordering::Relaxed) == reading)
            .then(|| self.leader.load(Ordering::Relaxed))
    }

    /// The lease the leader heard from last holds on this voter: `lease`, or `short` once
    /// its process is gone.
    pub fn lease(&self, contact: &LeaderContact, lease: Duration, short: Duration) -> Duration {
        if self.gone(contact).is_some() {
            short
        } else {
            lease
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_holds_until_a_leader_speaks_again() {
        let contact = LeaderContact::new();
        let exit = LeaderExit::new();
        let lease = Duration::from_millis(500);
        let short = Duration::from_millis(85);
        assert_eq!(exit.gone(&contact), None, "nobody was heard yet");
        exit.found(&contact, contact.reading(), 7);
        assert_eq!(
            exit.gone(&contact),
            None,
            "no contact, no leader to be gone"
        );

        contact.touch_at(10);
        exit.found(&contact, 10, 7);
        assert_eq!(exit.gone(&contact), Some(7));
        assert_eq!(exit.lease(&contact, lease, short), short);

        contact.touch_at(20);
        assert_eq!(
            exit.gone(&contact),
            None,
            "a leader spoke since the finding"
        );
        assert_eq!(exit.lease(&contact, lease, short), lease);
        exit.found(&contact, 10, 7);
        assert_eq!(
            exit.gone(&contact),
            None,
            "a finding about an older contact counts not"
        );
    }

    #[test]
    fn a_silence_is_probed_once() {
        let contact = LeaderContact::new();
        let exit = LeaderExit::new();
        let heartbeat = Duration::from_millis(0);
        assert!(
            !exit.probe_due(&contact, heartbeat),
            "never heard: nothing to probe"
        );
        contact.touch_at(10);
        assert!(exit.probe_due(&contact, heartbeat));
        assert!(!exit.probe_due(&contact, heartbeat));
        contact.touch_at(11);
        assert!(exit.probe_due(&contact, heartbeat));
        assert!(!exit.probe_due(&contact, Duration::from_secs(3600)));
    }
}
