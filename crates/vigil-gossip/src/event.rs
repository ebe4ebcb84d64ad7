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
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Heartbeats sent.
    pub heartbeats_sent: u64,
    /// Push-pull exchanges started because a heartbeat's membership digest kept differing from
    /// this node's.
    pub digest_syncs: u64,
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
    /// Phi of observed members at the moment their heartbeats arrived, per bucket of
    /// [`PHI_BUCKETS`] (non-cumulative; the last slot is above every bound): how close healthy
    /// members come to being suspected.
    pub phi_at_heartbeat: [u64; PHI_BUCKETS.len() + 1],
    /// Sum of the phi values counted in `phi_at_heartbeat`.
    pub phi_sum: f64,
}

/// Upper bounds of the phi histogram buckets.
pub const PHI_BUCKETS: [f64; 8] = [0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 16.0];

impl Stats {
    pub(crate) fn record_phi(&mut self, phi: f64) {
        let slot = PHI_BUCKETS
            .iter()
            .position(|&bound| phi <= bound)
            .unwrap_or(PHI_BUCKETS.len());
        self.phi_at_heartbeat[slot] += 1;
        self.phi_sum += phi;
    }
}
