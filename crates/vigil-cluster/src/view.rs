//! What the driver publishes: the membership snapshot, quorum, and membership events.
//!
//! JSON names are camelCase, like `/cluster/status`; states, roles and health are their
//! lowercase words (`"alive"`, `"voter"`, `"healthy"`) and times RFC 3339.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use vigil_gossip::{Health, Member, MemberState, Node, Role, Stats};

/// One member as this node sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    /// Its node id.
    pub id: String,
    /// Its gossip address.
    pub addr: SocketAddr,
    /// Its liveness as this node believes it.
    #[serde(serialize_with = "state_word")]
    pub state: MemberState,
    /// Its incarnation (bumped on restart and to refute suspicion).
    pub incarnation: u64,
    /// Voter or plain member.
    #[serde(serialize_with = "role_word")]
    pub role: Role,
    /// Its labels.
    pub tags: BTreeMap<String, String>,
    /// Its HTTP API address, if it published one.
    pub api_addr: Option<SocketAddr>,
    /// Its own health status, as it last spread it.
    #[serde(serialize_with = "health_word")]
    pub health: Health,
    /// Its health score in percent, as it last spread it.
    pub score: u8,
    /// Phi from this node's failure detector, when this node is one of the member's observers.
    pub phi: Option<f64>,
    /// Wall-clock time of the last datagram from it; for this node itself, the time of the
    /// snapshot.
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_heard: Option<SystemTime>,
}

impl MemberView {
    /// The view of `member`, with phi from `node`'s detector; `now` and `wall` are the same
    /// moment on the monotonic and the wall clock.
    pub(crate) fn of(node: &Node, member: &Member, now: Instant, wall: SystemTime) -> MemberView {
        MemberView {
            id: member.id.as_str().to_owned(),
            addr: member.addr,
            state: member.state,
            incarnation: member.incarnation,
            role: member.meta.role,
            tags: member.meta.tags.clone(),
            api_addr: member.meta.api_addr,
            health: member.meta.health,
            score: member.meta.score,
            phi: node.phi(&member.id, now),
            last_heard: member
                .last_heard
                .and_then(|at| wall.checked_sub(now.saturating_duration_since(at))),
        }
    }
}

/// A snapshot of the cluster as this node sees it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    /// This node's id.
    pub local_id: String,
    /// Every member, this node included, sorted by id. Dead and left members stay, as
    /// tombstones, until the protocol reaps them.
    pub members: Vec<MemberView>,
    /// Whether the reachable voters form a strict majority of [`ClusterView::voters_total`]:
    /// `2 × voters_reachable > voters_total`. Always false when there are no voters.
    pub has_quorum: bool,
    /// The voter count quorum is taken of: the configured voter ids when there are any, else the
    /// voter-role members known (alive, suspect or dead; not those that left).
    pub voters_total: usize,
    /// Voters that are active members (alive or suspect), this node included: the configured
    /// voter ids that are active, or, with no voters configured, the active voter-role members.
    pub voters_reachable: usize,
    /// This node's protocol counters.
    #[serde(serialize_with = "stats_json")]
    pub stats: Stats,
    /// Lifeguard local health multiplier: 0 when this node keeps up; its timeouts are
    /// stretched by `1 + local_health`.
    pub local_health: u32,
    /// The protocol version this node speaks to the cluster now: the lowest of every active
    /// member's newest (see [`vigil_gossip::version`]).
    pub protocol_version: u8,
}

impl ClusterView {
    /// The snapshot of `node` at `now` / `wall`, with quorum over `voters`.
    pub(crate) fn of(
        node: &mut Node,
        voters: &[String],
        now: Instant,
        wall: SystemTime,
    ) -> ClusterView {
        let protocol_version = node.protocol_version();
        let node = &*node;
        let mut me = MemberView::of(node, &node.local_member(now), now, wall);
        me.phi = None;
        me.last_heard = Some(wall);
        let mut members: Vec<MemberView> = node
            .members()
            .map(|m| MemberView::of(node, m, now, wall))
            .chain(std::iter::once(me))
            .collect();
        members.sort_by(|a, b| a.id.cmp(&b.id));
        let (voters_total, voters_reachable) = quorum(&members, voters);
        ClusterView {
            local_id: node.id().as_str().to_owned(),
            members,
            has_quorum: voters_reachable * 2 > voters_total,
            voters_total,
            voters_reachable,
            stats: node.stats().clone(),
            local_health: node.local_health(),
            protocol_version,
        }
    }

    /// A member by id.
    pub fn member(&self, id: &str) -> Option<&MemberView> {
        self.members
            .binary_search_by(|m| m.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.members[i])
    }

    /// This node as a member.
    pub fn local(&self) -> Option<&MemberView> {
        self.member(&self.local_id)
    }
}

/// `(voters_total, voters_reachable)`; see the fields of [`ClusterView`].
pub(crate) fn quorum(members: &[MemberView], voters: &[String]) -> (usize, usize) {
    if voters.is_empty() {
        let voting = members.iter().filter(|m| m.role == Role::Voter);
        let total = voting
            .clone()
            .filter(|m| m.state != MemberState::Left)
            .count();
        let reachable = voting.filter(|m| m.state.is_active()).count();
        (total, reachable)
    } else {
        let reachable = members
            .iter()
            .filter(|m| m.state.is_active() && voters.contains(&m.id))
            .count();
        (voters.len(), reachable)
    }
}

/// A change in this node's view of the cluster, carrying the member as it is after the change.
///
/// In JSON the variant is the `type` field (`member_up`, `member_updated`, …) beside the
/// member's fields.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum MembershipEvent {
    /// A member joined, or rejoined after being dead or gone.
    #[serde(rename = "member_up")]
    Up(MemberView),
    /// A member's metadata (role, tags, API address, health, score) changed.
    #[serde(rename = "member_updated")]
    Updated(MemberView),
    /// A member's observers stopped hearing from it; it may still refute.
    #[serde(rename = "member_suspect")]
    Suspect(MemberView),
    /// A suspect member refuted the suspicion.
    #[serde(rename = "member_alive")]
    Alive(MemberView),
    /// A member was declared failed.
    #[serde(rename = "member_down")]
    Down(MemberView),
    /// A member left on purpose.
    #[serde(rename = "member_left")]
    Left(MemberView),
}

impl MembershipEvent {
    /// The member the event is about.
    pub fn member(&self) -> &MemberView {
        match self {
            MembershipEvent::Up(m)
            | MembershipEvent::Updated(m)
            | MembershipEvent::Suspect(m)
            | MembershipEvent::Alive(m)
            | MembershipEvent::Down(m)
            | MembershipEvent::Left(m) => m,
        }
    }

    /// The event's JSON `type`, e.g. `member_up`.
    pub fn kind(&self) -> &'static str {
        match self {
            MembershipEvent::Up(_) => "member_up",
            MembershipEvent::Updated(_) => "member_updated",
            MembershipEvent::Suspect(_) => "member_suspect",
            MembershipEvent::Alive(_) => "member_alive",
            MembershipEvent::Down(_) => "member_down",
            MembershipEvent::Left(_) => "member_left",
        }
    }
}

fn state_word<S: Serializer>(state: &MemberState, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(state.as_str())
}

fn role_word<S: Serializer>(role: &Role, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(role.as_str())
}

fn health_word<S: Serializer>(health: &Health, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(health.as_str())
}

fn rfc3339_opt<S: Serializer>(at: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => {
            let text = OffsetDateTime::from(*at)
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(serde::ser::Error::custom)?;
            s.serialize_some(&text)
        }
        None => s.serialize_none(),
    }
}

fn stats_json<S: Serializer>(stats: &Stats, s: S) -> Result<S::Ok, S::Error> {
    let mut out = s.serialize_struct("Stats", 13)?;
    out.serialize_field("heartbeatsSent", &stats.heartbeats_sent)?;
    out.serialize_field("heartbeatsReceived", &stats.heartbeats_received)?;
    out.serialize_field("packetsSent", &stats.packets_sent)?;
    out.serialize_field("packetsReceived", &stats.packets_received)?;
    out.serialize_field("bytesSent", &stats.bytes_sent)?;
    out.serialize_field("bytesReceived", &stats.bytes_received)?;
    out.serialize_field("suspicions", &stats.suspicions)?;
    out.serialize_field("refutations", &stats.refutations)?;
    out.serialize_field("failuresDetected", &stats.failures_detected)?;
    out.serialize_field("rejected", &stats.rejected)?;
    out.serialize_field("probes", &stats.probes)?;
    out.serialize_field("phiAtHeartbeat", &stats.phi_at_heartbeat[..])?;
    out.serialize_field("phiSum", &stats.phi_sum)?;
    out.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, role: Role, state: MemberState) -> MemberView {
        MemberView {
            id: id.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], 7946)),
            state,
            incarnation: 1,
            role,
            tags: BTreeMap::new(),
            api_addr: None,
            health: Health::Healthy,
            score: 100,
            phi: None,
            last_heard: None,
        }
    }

    #[test]
    fn configured_voters_set_the_count() {
        use MemberState::*;
        let voters: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let members = vec![
            member("a", Role::Voter, Alive),
            member("b", Role::Voter, Suspect),
            member("c", Role::Voter, Dead),
            member("d", Role::Voter, Alive), // not a configured voter
        ];
        assert_eq!(quorum(&members, &voters), (3, 2));
        let members = vec![
            member("a", Role::Voter, Alive),
            member("b", Role::Voter, Left),
        ];
        assert_eq!(quorum(&members, &voters), (3, 1));
    }

    #[test]
    fn without_configured_voters_known_voters_count() {
        use MemberState::*;
        let members = vec![
            member("a", Role::Voter, Alive),
            member("b", Role::Voter, Dead),
            member("c", Role::Voter, Left),
            member("d", Role::Member, Alive),
        ];
        assert_eq!(quorum(&members, &[]), (2, 1));
        assert_eq!(quorum(&[member("d", Role::Member, Alive)], &[]), (0, 0));
    }

    #[test]
    fn events_serialize_with_their_type_and_words() {
        let mut m = member("a", Role::Voter, MemberState::Alive);
        m.last_heard = Some(SystemTime::UNIX_EPOCH);
        m.tags.insert("zone".into(), "a".into());
        let json = serde_json::to_value(MembershipEvent::Down(m)).expect("serialize");
        assert_eq!(json["type"], "member_down");
        assert_eq!(json["id"], "a");
        assert_eq!(json["state"], "alive");
        assert_eq!(json["role"], "voter");
        assert_eq!(json["health"], "healthy");
        assert_eq!(json["apiAddr"], serde_json::Value::Null);
        assert_eq!(json["lastHeard"], "1970-01-01T00:00:00Z");
        assert_eq!(json["tags"]["zone"], "a");
    }
}
