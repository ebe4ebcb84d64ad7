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
    /// Its observers stopped hearing from it; it has until the suspicion timeout to refute.
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
