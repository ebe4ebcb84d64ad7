//! What the protocol tells its user: membership changes, each fired exactly when described.

use crate::member::Member;

/// A change in this node's view of the cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A member joined, or rejoined after being dead or gone (with a higher incarnation).
    MemberUp(Member),
    /// A member's metadata (role, tags, API address, health, score) changed.
    MemberUpdated(Member),
    /// A member's observers stopped hearing from it; it is suspect until it refutes or times out.
    MemberSuspect(Member),
    /// A suspect member refuted the suspicion and is alive again.
    MemberAlive(Member),
    /// A member was declared failed.
    MemberDown(Member),
    /// A member left on purpose.
    MemberLeft(Member),
    /// This node was suspected or declared dead and refuted it with a higher incarnation.
    Refuted {
        /// The new incarnation.
        incarnation: u64,
    },
}

/// Counters of what the node has done, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Heartbeats sent.
    pub heartbeats_sent: u64,
    /// Heartbeats received.
    pub heartbeats_received: u64,
    /// Datagrams sent.
    pub packets_sent: u64,
    /// Datagrams received and accepted.
    pub packets_received: u64,
    /// Bytes sent, datagrams and push-pull payloads.
    pub bytes_sent: u64,
    /// Bytes received, datagrams and push-pull payloads.
    pub bytes_received: u64,
    /// Members this node saw turn suspect.
    pub suspicions: u64,
    /// Times this node refuted a suspicion of itself.
    pub refutations: u64,
    /// Members this node saw declared dead.
    pub failures_detected: u64,
    /// Frames refused: wrong key, unencrypted, malformed or from another wire version.
    pub rejected: u64,
    /// Probes started because a member's phi crossed the threshold.
    pub probes: u64,
}
