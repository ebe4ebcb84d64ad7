//! What a node knows of its members' TCP reachability: the connection attempts it asked its
//! driver for, and how fast each observed member's host has answered one.
//!
//! A connection attempt to a member's gossip port tells three failures apart. A refusal comes
//! from a live host whose process is gone. A handshake completed by the member's kernel means a
//! frozen or slow process on a live host. Silence, from a host that has answered this node
//! before, means the host itself is gone or cut off: a container killed on a bridge network
//! takes its address with it, and nothing refuses anything. That last verdict is only worth
//! something if the host answers quickly when it is there, so each member is asked once after
//! this node has watched it for a few heartbeats (a baseline), and the time its handshake took
//! sets how long a later attempt waits before calling the host silent.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::id::NodeId;
use crate::output::{Reachability, ReachabilityCheck};

/// How long an attempt waits for a host not known to answer: a refusal comes back within a round
/// trip, and a silent host never answers, so waiting longer tells the node nothing.
const PATIENT_WAIT: Duration = Duration::from_secs(1);
/// The shortest wait after which a host known to answer is called silent. Its kernel completes a
/// handshake in well under a millisecond on a LAN, even with the process frozen; the floor is
/// for a loaded machine's scheduling.
const SILENCE_FLOOR: Duration = Duration::from_millis(250);
/// A host known to answer is called silent after this many of its last handshake times (with
/// the floor above); one whose handshakes are too slow for that to fit in [`PATIENT_WAIT`] is
/// never called silent.
const SILENCE_FACTOR: u32 = 8;
/// Attempts whose answer has not come back are forgotten after this long (a driver that never
/// answers must not make the table grow).
const FORGET_AFTER: Duration = Duration::from_secs(5);
/// The least time between two baseline attempts on one member, for a host that did not answer
/// one (firewalled, or too slow).
const BASELINE_RETRY: Duration = Duration::from_secs(60);

/// Why a connection attempt was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CheckKind {
    /// Learning how fast a member's host answers, when this node starts watching it.
    Baseline,
    /// Part of the probe of a member that went silent.
    Probe,
}

/// An attempt the driver has not answered yet.
struct Pending {
    target: NodeId,
    addr: SocketAddr,
    asked: Instant,
    kind: CheckKind,
}

/// The attempts in flight and each member's last handshake time.
#[derive(Default)]
pub(crate) struct Reach {
    /// By the sequence number the attempt carries; ordered, so that pruning is deterministic.
    pending: BTreeMap<u32, Pending>,
    /// The last handshake time of each member's host, at the address it was measured at.
    handshakes: HashMap<NodeId, (SocketAddr, Duration)>,
    /// When each member's last baseline attempt was asked for.
    baselines: HashMap<NodeId, Instant>,
}

impl Reach {
    /// Records an attempt to reach `target` at `addr` and returns what to ask the driver.
    pub(crate) fn ask(
        &mut self,
        now: Instant,
        seq: u32,
        target: &NodeId,
        addr: SocketAddr,
        kind: CheckKind,
    ) -> ReachabilityCheck {
        self.pending
            .retain(|_, p| now.saturating_duration_since(p.asked) < FORGET_AFTER);
        self.pending.insert(
            seq,
            Pending {
                target: target.clone(),
                addr,
                asked: now,
                kind,
            },
        );
        let silence = match kind {
            CheckKind::Probe => self.silence_after(target, addr),
            CheckKind::Baseline => {
                self.baselines.insert(target.clone(), now);
                None
            }
        };
        match silence {
            Some(wait) => ReachabilityCheck {
                probe: seq,
                addr,
                wait,
                on_silence: Reachability::Silent,
            },
            None => ReachabilityCheck {
                probe: seq,
                addr,
                wait: PATIENT_WAIT,
                on_silence: Reachability::Unknown,
            },
        }
    }

    /// Takes the answer to attempt `seq`: the member it was about and why it was asked, or
    /// `None` for an attempt this node no longer waits for. A host that answered (accepting or
    /// refusing) has its handshake time recorded.
    pub(crate) fn answer(
        &mut self,
        now: Instant,
        seq: u32,
        outcome: Reachability,
    ) -> Option<(NodeId, CheckKind)> {
        let pending = self.pending.remove(&seq)?;
        if matches!(outcome, Reachability::Accepting | Reachability::Refused) {
            let took = now.saturating_duration_since(pending.asked);
            self.handshakes
                .insert(pending.target.clone(), (pending.addr, took));
        }
        Some((pending.target, pending.kind))
    }

    /// Whether attempt `seq` is still awaited.
    pub(crate) fn awaits(&self, seq: u32) -> bool {
        self.pending.contains_key(&seq)
    }

    /// Whether to measure how fast `target`'s host answers at `addr`: not known yet, and not
    /// asked for within [`BASELINE_RETRY`].
    pub(crate) fn baseline_due(&self, now: Instant, target: &NodeId, addr: SocketAddr) -> bool {
        if matches!(self.handshakes.get(target), Some((known, _)) if *known == addr) {
            return false;
        }
        self.baselines
            .get(target)
            .is_none_or(|asked| now.saturating_duration_since(*asked) >= BASELINE_RETRY)
    }

    /// Forgets what it knows of members `keep` rejects (gone from the cluster).
    pub(crate) fn retain(&mut self, keep: impl Fn(&NodeId) -> bool) {
        self.handshakes.retain(|id, _| keep(id));
        self.baselines.retain(|id, _| keep(id));
    }

    /// How long to wait before calling `target`'s host silent, if it has answered at `addr`
    /// quickly enough before.
    fn silence_after(&self, target: &NodeId, addr: SocketAddr) -> Option<Duration> {
        let (known_addr, took) = self.handshakes.get(target)?;
        if *known_addr != addr {
            return None;
        }
        let wait = took.saturating_mul(SILENCE_FACTOR).max(SILENCE_FLOOR);
        (wait < PATIENT_WAIT).then_some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "10.0.0.2:7946".parse().unwrap()
    }

    #[test]
    fn a_host_is_called_silent_only_after_it_answered_a_baseline() {
        let now = Instant::now();
        let mut reach = Reach::default();
        let id = NodeId::new("b");
        let first = reach.ask(now, 1, &id, addr(), CheckKind::Probe);
        assert_eq!(first.on_silence, Reachability::Unknown);
        assert_eq!(first.wait, PATIENT_WAIT);

        let baseline = reach.ask(now, 2, &id, addr(), CheckKind::Baseline);
        assert_eq!(baseline.on_silence, Reachability::Unknown);
        let answered = now + Duration::from_millis(2);
        assert_eq!(
            reach.answer(answered, 2, Reachability::Accepting),
            Some((id.clone(), CheckKind::Baseline))
        );

        let probe = reach.ask(answered, 3, &id, addr(), CheckKind::Probe);
        assert_eq!(probe.on_silence, Reachability::Silent);
        assert_eq!(probe.wait, SILENCE_FLOOR);
        let moved = reach.ask(
            answered,
            4,
            &id,
            "10.0.0.9:7946".parse().unwrap(),
            CheckKind::Probe,
        );
        assert_eq!(
            moved.on_silence,
            Reachability::Unknown,
            "a new address is not known"
        );
    }

    #[test]
    fn the_wait_follows_a_slow_hosts_handshake_and_a_too_slow_one_is_never_called_silent() {
        let now = Instant::now();
        let mut reach = Reach::default();
        let id = NodeId::new("b");
        reach.ask(now, 1, &id, addr(), CheckKind::Baseline);
        reach.answer(now + Duration::from_millis(50), 1, Reachability::Refused);
        let probe = reach.ask(now, 2, &id, addr(), CheckKind::Probe);
        assert_eq!(probe.wait, Duration::from_millis(400));
        assert_eq!(probe.on_silence, Reachability::Silent);

        reach.answer(now + Duration::from_millis(200), 2, Reachability::Accepting);
        let probe = reach.ask(now, 3, &id, addr(), CheckKind::Probe);
        assert_eq!(probe.on_silence, Reachability::Unknown);
    }

    #[test]
    fn a_baseline_is_due_once_until_answered_and_again_only_after_a_while() {
        let now = Instant::now();
        let mut reach = Reach::default();
        let id = NodeId::new("b");
        assert!(reach.baseline_due(now, &id, addr()));
        reach.ask(now, 1, &id, addr(), CheckKind::Baseline);
        assert!(!reach.baseline_due(now, &id, addr()));
        reach.answer(now, 1, Reachability::Unknown);
        assert!(!reach.baseline_due(now + Duration::from_secs(1), &id, addr()));
        assert!(reach.baseline_due(now + BASELINE_RETRY, &id, addr()));
        reach.ask(now + BASELINE_RETRY, 2, &id, addr(), CheckKind::Baseline);
        reach.answer(now + BASELINE_RETRY, 2, Reachability::Accepting);
        assert!(!reach.baseline_due(now + BASELINE_RETRY * 3, &id, addr()));
    }

    #[test]
    fn unanswered_attempts_are_forgotten() {
        let now = Instant::now();
        let mut reach = Reach::default();
        let id = NodeId::new("b");
        reach.ask(now, 1, &id, addr(), CheckKind::Probe);
        reach.ask(now + FORGET_AFTER, 2, &id, addr(), CheckKind::Probe);
        assert!(!reach.awaits(1));
        assert!(reach.awaits(2));
        assert_eq!(reach.answer(now, 1, Reachability::Accepting), None);
    }
}
