//! Members as a node sees them: identity, liveness state, and the metadata they spread.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::id::NodeId;

/// A member's liveness as this node believes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MemberState {
    /// Heard from, or vouched for, recently.
    Alive,
    /// This node raised a suspicion of it (its own probe went unanswered); it has until the
    /// suspicion timeout to refute. Suspicions heard from others, or only confirmed here, are
    /// held (and time out the same) while the member is still shown alive.
    Suspect,
    /// Declared failed. Kept as a tombstone until reaped so stale gossip cannot revive it.
    Dead,
    /// Left on purpose. Kept as a tombstone until reaped.
    Left,
}

impl MemberState {
    /// The lowercase name used in JSON, metrics and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Alive => "alive",
            MemberState::Suspect => "suspect",
            MemberState::Dead => "dead",
            MemberState::Left => "left",
        }
    }

    /// Whether the member is still taking part (alive or suspect).
    pub fn is_active(self) -> bool {
        matches!(self, MemberState::Alive | MemberState::Suspect)
    }
}

/// Whether a member takes part in leader election.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Votes in leader elections and counts towards quorum.
    Voter,
    /// Follows the cluster without voting.
    #[default]
    Member,
}

impl Role {
    /// The lowercase name used in config, JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Voter => "voter",
            Role::Member => "member",
        }
    }
}

/// A member's own health, as its health engine reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Health {
    /// Critical checks have not reported yet.
    #[default]
    Starting,
    /// Everything passes.
    Healthy,
    /// Serving, with a non-critical problem.
    Degraded,
    /// A critical check fails.
    Unhealthy,
    /// Shutting down.
    Stopping,
}

impl Health {
    /// The lowercase name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Unhealthy => "unhealthy",
            Health::Stopping => "stopping",
        }
    }
}

/// What a member tells the cluster about itself; spread whenever it changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Voter or plain member.
    pub role: Role,
    /// Free-form labels (`zone = "a"`, `service = "chunkserver"`).
    pub tags: BTreeMap<String, String>,
    /// Where the member's HTTP API listens.
    pub api_addr: Option<SocketAddr>,
    /// Its health status.
    pub health: Health,
    /// Its system health score in percent, 0–100.
    pub score: u8,
}

/// One member of the cluster as this node sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// Its name.
    pub id: NodeId,
    /// Its gossip address.
    pub addr: SocketAddr,
    /// Incarnation: bumped by the member to refute suspicion and on restart.
    pub incarnation: u64,
    /// Liveness.
    pub state: MemberState,
    /// What it says about itself.
    pub meta: Metadata,
    /// Version of `meta` within this incarnation; the higher wins.
    pub meta_version: u64,
    /// When this node saw the state change.
    pub state_since: Instant,
    /// When this node last received a packet from it.
    pub last_heard: Option<Instant>,
}

impl Member {
    /// What a claim about this member is weighed against; `suspected` when the node holds a
    /// suspicion of it, shown or not.
    pub(crate) fn standing(&self, suspected: bool) -> Standing {
        Standing {
            state: match self.state {
                MemberState::Alive if suspected => MemberState::Suspect,
                state => state,
            },
            incarnation: self.incarnation,
            meta_version: self.meta_version,
        }
    }
}

/// What a piece of gossip claims about a member, reduced to what decides whether it wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Alive at this incarnation, with this version of its metadata.
    Alive { incarnation: u64, meta_version: u64 },
    /// Suspected at this incarnation.
    Suspect { incarnation: u64 },
    /// Declared dead at this incarnation.
    Dead { incarnation: u64 },
    /// Departed at this incarnation.
    Left { incarnation: u64 },
}

impl Claim {
    /// The incarnation the claim is about.
    pub(crate) fn incarnation(self) -> u64 {
        match self {
            Claim::Alive { incarnation, .. }
            | Claim::Suspect { incarnation }
            | Claim::Dead { incarnation }
            | Claim::Left { incarnation } => incarnation,
        }
    }
}

/// Where a node stands on a member it knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Standing {
    /// Its liveness.
    pub state: MemberState,
    /// Its incarnation.
    pub incarnation: u64,
    /// Its metadata version.
    pub meta_version: u64,
}

/// What a claim does to a member, by SWIM's precedence rules; the event each one fires is named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Stale, or nothing new: nothing changes and nothing is passed on.
    Ignore,
    /// A member not known before, alive: it joins (`MemberUp`).
    Join,
    /// An alive member at a higher incarnation or with newer metadata: recorded
    /// (`MemberUpdated` if the metadata differs).
    Refresh,
    /// A suspect member alive at a higher incarnation or with newer metadata: the suspicion is
    /// over (`MemberAlive`).
    Refuted,
    /// A dead or departed member alive at a higher incarnation: it is back (`MemberUp`).
    Rejoin,
    /// An alive member suspected at its incarnation or a higher one (`MemberSuspect`).
    Suspect,
    /// A suspect member suspected at a higher incarnation: its suspicion starts over (no event).
    Resuspect,
    /// A suspect member suspected again at the same incarnation: one more observer may confirm.
    Confirm,
    /// An alive or suspect member declared dead at its incarnation or a higher one
    /// (`MemberDown`).
    Die,
    /// A member that had not left, departed at its incarnation or a higher one (`MemberLeft`).
    Leave,
}

/// SWIM's precedence rules: what `claim` does to a member this node stands on as `known`
/// (`None`: a member it does not know). A higher incarnation always wins; at the same one,
/// `Suspect` beats `Alive` and `Dead` or `Left` beat both; metadata versions only order
/// metadata within one incarnation of an active member. Tombstones (dead, left) are revived only
/// by an `Alive` at a higher incarnation, and members never known are learnt only from an
/// `Alive`.
pub(crate) fn transition(known: Option<Standing>, claim: Claim) -> Transition {
    let Some(known) = known else {
        return match claim {
            Claim::Alive { .. } => Transition::Join,
            _ => Transition::Ignore,
        };
    };
    let incarnation = claim.incarnation();
    match claim {
        Claim::Alive { meta_version, .. } => {
            let newer = incarnation > known.incarnation;
            let newer_meta = incarnation == known.incarnation
                && meta_version > known.meta_version
                && known.state.is_active();
            match known.state {
                _ if !newer && !newer_meta => Transition::Ignore,
                MemberState::Alive => Transition::Refresh,
                MemberState::Suspect => Transition::Refuted,
                MemberState::Dead | MemberState::Left => Transition::Rejoin,
            }
        }
        Claim::Suspect { .. } => match known.state {
            MemberState::Alive if incarnation >= known.incarnation => Transition::Suspect,
            MemberState::Suspect if incarnation == known.incarnation => Transition::Confirm,
            MemberState::Suspect if incarnation > known.incarnation => Transition::Resuspect,
            _ => Transition::Ignore,
        },
        Claim::Dead { .. } if known.state.is_active() && incarnation >= known.incarnation => {
            Transition::Die
        }
        Claim::Left { .. }
            if known.state != MemberState::Left && incarnation >= known.incarnation =>
        {
            Transition::Leave
        }
        Claim::Dead { .. } | Claim::Left { .. } => Transition::Ignore,
    }
}

/// Whether a claim about a node itself, which is at incarnation `own`, must be refuted: any
/// suspicion, death or departure at its incarnation or above, or an `Alive` from a past life
/// at a higher incarnation than it knows (a restarted node must outrank it).
pub(crate) fn must_refute(own: u64, claim: Claim) -> bool {
    match claim {
        Claim::Alive { incarnation, .. } => incarnation > own,
        Claim::Suspect { incarnation }
        | Claim::Dead { incarnation }
        | Claim::Left { incarnation } => incarnation >= own,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MemberState::{Alive, Dead, Left, Suspect};
    use Transition::*;

    fn at(state: MemberState, incarnation: u64, meta_version: u64) -> Option<Standing> {
        Some(Standing {
            state,
            incarnation,
            meta_version,
        })
    }

    fn alive(incarnation: u64, meta_version: u64) -> Claim {
        Claim::Alive {
            incarnation,
            meta_version,
        }
    }

    fn suspect(incarnation: u64) -> Claim {
        Claim::Suspect { incarnation }
    }

    fn dead(incarnation: u64) -> Claim {
        Claim::Dead { incarnation }
    }

    fn left(incarnation: u64) -> Claim {
        Claim::Left { incarnation }
    }

    /// Each row: where a node stands on a member, a claim, and what the claim does.
    fn check(rows: &[(Option<Standing>, Claim, Transition)]) {
        for &(known, claim, expected) in rows {
            assert_eq!(transition(known, claim), expected, "{known:?} {claim:?}");
        }
    }

    #[test]
    fn only_an_alive_introduces_a_member() {
        check(&[
            (None, alive(1, 0), Join),
            (None, suspect(1), Ignore),
            (None, dead(1), Ignore),
            (None, left(1), Ignore),
        ]);
    }

    #[test]
    fn alive_wins_with_a_higher_incarnation_or_newer_metadata() {
        check(&[
            (at(Alive, 5, 2), alive(6, 0), Refresh),
            (at(Alive, 5, 2), alive(5, 3), Refresh),
            (at(Alive, 5, 2), alive(5, 2), Ignore),
            (at(Alive, 5, 2), alive(4, 9), Ignore),
            (at(Suspect, 5, 2), alive(6, 0), Refuted),
            (at(Suspect, 5, 2), alive(5, 3), Refuted),
            (at(Suspect, 5, 2), alive(5, 2), Ignore),
        ]);
    }

    #[test]
    fn a_tombstone_is_revived_only_by_a_higher_incarnation() {
        for state in [Dead, Left] {
            check(&[
                (at(state, 5, 2), alive(6, 0), Rejoin),
                (at(state, 5, 2), alive(5, 3), Ignore),
                (at(state, 5, 2), alive(4, 9), Ignore),
            ]);
        }
    }

    #[test]
    fn suspicion_starts_confirms_and_starts_over() {
        check(&[
            (at(Alive, 5, 0), suspect(5), Transition::Suspect),
            (at(Alive, 5, 0), suspect(6), Transition::Suspect),
            (at(Alive, 5, 0), suspect(4), Ignore),
            (at(Suspect, 5, 0), suspect(5), Confirm),
            (at(Suspect, 5, 0), suspect(6), Resuspect),
            (at(Suspect, 5, 0), suspect(4), Ignore),
            (at(Dead, 5, 0), suspect(9), Ignore),
            (at(Left, 5, 0), suspect(9), Ignore),
        ]);
    }

    #[test]
    fn death_and_departure_beat_alive_at_the_same_incarnation() {
        for state in [Alive, Suspect] {
            check(&[
                (at(state, 5, 0), dead(5), Die),
                (at(state, 5, 0), dead(4), Ignore),
                (at(state, 5, 0), left(5), Leave),
                (at(state, 5, 0), left(4), Ignore),
            ]);
        }
        check(&[
            (at(Dead, 5, 0), dead(6), Ignore),
            (at(Dead, 5, 0), left(5), Leave),
            (at(Left, 5, 0), left(6), Ignore),
            (at(Left, 5, 0), dead(6), Ignore),
        ]);
    }

    #[test]
    fn a_node_refutes_what_would_outrank_it() {
        assert!(must_refute(5, suspect(5)));
        assert!(must_refute(5, dead(7)));
        assert!(must_refute(5, left(5)));
        assert!(!must_refute(5, suspect(4)));
        assert!(must_refute(5, alive(6, 0)));
        assert!(!must_refute(5, alive(5, 9)));
    }
}
