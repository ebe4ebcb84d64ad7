//! Sessions, elections and locks for users' services, as the Raft log carries them.
//!
//! A *session* is a holder's claim to be alive: created by the holder, renewed by it (the
//! leader keeps the renewal times, see `keeper`), and ended by it or by the cluster. A *role*
//! is an election (one holder) or a lock (up to `limit` holders); its candidates are bound to
//! sessions, and ending a session withdraws every candidacy it has. Who holds a role is decided
//! here, when an entry is applied, so every voter grants the same holders with the same fencing
//! tokens: a token is the larger of the log index of the granting entry and one more than the
//! last token issued anywhere, so it strictly increases for every role, for ever (the log index
//! never goes back, even when a role is dropped and started again).
//!
//! A holder the cluster wants gone while it may still be running — its session invalidated (its
//! instance turned critical, its node died), or preempted by a lower id — keeps the role until
//! it resigns or its lease runs out (the keeper writes the resignation then): the cluster never
//! grants a role while a holder may still believe it holds it.

use std::cmp::Ordering;

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

/// Most sessions the registry holds.
pub const MAX_SESSIONS: usize = 65_536;
/// Most roles (elections and locks together).
pub const MAX_ROLES: usize = 65_536;
/// Most candidates of one role.
pub const MAX_CANDIDATES: usize = 1_024;

/// Whether a role is an election or a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleKind {
    /// One leader among candidates.
    Election,
    /// Mutual exclusion (or a semaphore of `limit` holders).
    Lock,
}

impl RoleKind {
    /// `election` or `lock`.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleKind::Election => "election",
            RoleKind::Lock => "lock",
        }
    }
}

/// How the next holder of a role is chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// The candidate that has waited longest (as etcd's and ZooKeeper's recipes do).
    #[default]
    First,
    /// The lowest candidate id, compared as text with numbers by value (`head-2` < `head-10`).
    LowestId,
}

impl Policy {
    /// `first` or `lowest-id`.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::First => "first",
            Policy::LowestId => "lowest-id",
        }
    }
}

/// A registered service instance a session is bound to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRef {
    /// The service.
    pub service: String,
    /// The instance id.
    pub id: String,
}

/// A holder's session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Random, chosen by the agent that created it.
    pub id: String,
    /// Who holds it, as the holder named itself.
    pub holder: String,
    /// The node whose agent created it; the session is invalidated when the node dies.
    pub node: String,
    /// How long the session lives without a renewal, in milliseconds.
    pub ttl_ms: u64,
    /// The instance whose checks it follows: invalidated when they turn critical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceRef>,
    /// When it was created, milliseconds since the Unix epoch (the creating agent's clock).
    pub created_ms: u64,
    /// Why the cluster gave it up, once it did: renewals are refused, what it waits for is
    /// withdrawn, and what it holds is released when it ends or its lease runs out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalidated: Option<String>,
}

/// A role held by a candidate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The fencing token of this grant.
    pub token: u64,
    /// When it was granted, milliseconds since the Unix epoch (the leader's clock).
    pub since_ms: u64,
    /// Whether the holder is asked to give the role up (a lower id preempts it).
    #[serde(default)]
    pub yielding: bool,
}

/// A candidate for a role, waiting or holding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The session the candidacy is bound to.
    pub session: String,
    /// What the candidate publishes with it (an address, say).
    #[serde(default)]
    pub value: String,
    /// The log index of its campaign: the order of `first`.
    pub joined: u64,
    /// The grant, while it holds the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
}

/// An election or a lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// How the next holder is chosen.
    pub policy: Policy,
    /// Whether a lower id takes the role over from a higher one (`lowest-id` only).
    #[serde(default)]
    pub preempt: bool,
    /// Most holders at once: 1 for an election or a lock, more for a semaphore.
    pub limit: u32,
    /// Candidates by id.
    pub candidates: OrdMap<String, Candidate>,
    /// The log index of its last change.
    pub index: u64,
}

impl Role {
    /// The holders, lowest token first.
    pub fn holders(&self) -> Vec<(&String, &Candidate, &Held)> {
        let mut holders: Vec<_> = self
            .candidates
            .iter()
            .filter_map(|(id, c)| c.held.as_ref().map(|h| (id, c, h)))
            .collect();
        holders.sort_by_key(|(_, _, held)| held.token);
        holders
    }

    /// The waiting candidates, in the order the policy would grant them.
    pub fn waiting(&self) -> Vec<(&String, &Candidate)> {
        let mut waiting: Vec<_> = self
            .candidates
            .iter()
            .filter(|(_, c)| c.held.is_none())
            .collect();
        match self.policy {
            Policy::First => waiting.sort_by(|a, b| a.1.joined.cmp(&b.1.joined).then(a.0.cmp(b.0))),
            Policy::LowestId => waiting.sort_by(|a, b| natural_cmp(a.0, b.0)),
        }
        waiting
    }
}

/// A campaign for a role (or a request for a lock).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    /// Election or lock.
    pub kind: RoleKind,
    /// The role's name.
    pub role: String,
    /// The candidate's id.
    pub candidate: String,
    /// Its session.
    pub session: String,
    /// What it publishes.
    pub value: String,
    /// The role's policy; a role keeps the one it was started with.
    pub policy: Policy,
    /// The role's preemption.
    pub preempt: bool,
    /// The role's limit.
    pub limit: u32,
    /// When, milliseconds since the Unix epoch (the leader's clock).
    pub at_ms: u64,
}

/// Why a session or role command was not carried out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The session it names does not exist (any more).
    #[error("no session {0}")]
    NoSession(String),
    /// It contradicts what is there: a candidate id taken by another session, a role's
    /// settings, an invalidated session, a full table.
    #[error("{0}")]
    Conflict(String),
}

/// What a change did: whether anything changed, or why it was refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the state changed.
    pub changed: bool,
    /// Why nothing was done, when the request could not be carried out.
    pub refused: Option<Refusal>,
}

impl Outcome {
    fn changed(changed: bool) -> Outcome {
        Outcome {
            changed,
            refused: None,
        }
    }

    fn refused(why: String) -> Outcome {
        Outcome {
            changed: false,
            refused: Some(Refusal::Conflict(why)),
        }
    }

    fn no_session(id: &str) -> Outcome {
        Outcome {
            changed: false,
            refused: Some(Refusal::NoSession(id.to_owned())),
        }
    }
}

/// Sessions and roles.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coordination {
    /// Sessions by id.
    pub sessions: OrdMap<String, Session>,
    /// Elections by name.
    pub elections: OrdMap<String, Role>,
    /// Locks by name.
    pub locks: OrdMap<String, Role>,
    /// The last fencing token issued.
    pub last_token: u64,
    /// The log index of the last change to any session or role.
    pub index: u64,
}

impl Coordination {
    /// The roles of `kind`.
    pub fn roles(&self, kind: RoleKind) -> &OrdMap<String, Role> {
        match kind {
            RoleKind::Election => &self.elections,
            RoleKind::Lock => &self.locks,
        }
    }

    /// After a backup was restored at log index `index` over a state whose last token was
    /// `last_token_before`: every role's index moves to `index`, so blocking reads of them wake,
    /// and the last token stays the highest ever issued.
    pub(crate) fn restored(&mut self, index: u64, last_token_before: u64) {
        self.last_token = self.last_token.max(last_token_before);
        self.index = index;
        for kind in [RoleKind::Election, RoleKind::Lock] {
            let roles = self.roles_mut(kind);
            *roles = roles
                .iter()
                .map(|(name, role)| {
                    let mut role = role.clone();
                    role.index = index;
                    (name.clone(), role)
                })
                .collect();
        }
    }

    fn roles_mut(&mut self, kind: RoleKind) -> &mut OrdMap<String, Role> {
        match kind {
            RoleKind::Election => &mut self.elections,
            RoleKind::Lock => &mut self.locks,
        }
    }

    /// Every role a session is a candidate of, with whether it holds it.
    pub fn roles_of(&self, session: &str) -> Vec<(RoleKind, &String, &String, &Candidate)> {
        [RoleKind::Election, RoleKind::Lock]
            .into_iter()
            .flat_map(|kind| {
                self.roles(kind).iter().flat_map(move |(name, role)| {
                    role.candidates
                        .iter()
                        .filter(move |(_, c)| c.session == session)
                        .map(move |(id, c)| (kind, name, id, c))
                })
            })
            .collect()
    }

    /// Whether `session` holds any role.
    pub fn holds_any(&self, session: &str) -> bool {
        self.roles_of(session)
            .iter()
            .any(|(_, _, _, c)| c.held.is_some())
    }

    /// Adds a session.
    pub fn create(&mut self, index: u64, session: &Session) -> Outcome {
        if self.sessions.contains_key(&session.id) {
            return Outcome::refused(format!("session {} exists", session.id));
        }
        if self.sessions.len() >= MAX_SESSIONS {
            return Outcome::refused(format!("the cluster holds {MAX_SESSIONS} sessions already"));
        }
        self.sessions.insert(session.id.clone(), session.clone());
        self.index = index;
        Outcome::changed(true)
    }

    /// Gives a session up: what it waits for is withdrawn at once, and it ends at once when it
    /// holds nothing; what it holds stays until it ends (its holder may still be running).
    pub fn invalidate(&mut self, index: u64, id: &str, reason: &str, at_ms: u64) -> Outcome {
        match self.sessions.get_mut(id) {
            None => return Outcome::no_session(id),
            Some(session) if session.invalidated.is_some() => return Outcome::changed(false),
            Some(session) => session.invalidated = Some(reason.to_owned()),
        }
        self.index = index;
        self.withdraw_session(index, id, at_ms, |c| c.held.is_none());
        if !self.holds_any(id) {
            self.sessions.remove(id);
            return Outcome::changed(true);
        }
        let held: Vec<(RoleKind, String)> = self
            .roles_of(id)
            .into_iter()
            .map(|(kind, name, _, _)| (kind, name.clone()))
            .collect();
        for (kind, name) in held {
            self.settle(index, kind, &name, at_ms);
        }
        Outcome::changed(true)
    }

    /// Ends a session and releases everything it holds.
    pub fn end(&mut self, index: u64, id: &str, at_ms: u64) -> Outcome {
        if self.sessions.remove(id).is_none() {
            return Outcome::no_session(id);
        }
        self.index = index;
        self.withdraw_session(index, id, at_ms, |_| true);
        Outcome::changed(true)
    }

    /// Withdraws the candidacies of session `id` that `which` picks, and settles their roles.
    fn withdraw_session(
        &mut self,
        index: u64,
        id: &str,
        at_ms: u64,
        which: impl Fn(&Candidate) -> bool,
    ) {
        let touched: Vec<(RoleKind, String, String)> = self
            .roles_of(id)
            .into_iter()
            .filter(|(_, _, _, c)| which(c))
            .map(|(kind, name, candidate, _)| (kind, name.clone(), candidate.clone()))
            .collect();
        for (kind, name, candidate) in touched {
            self.withdraw(index, kind, &name, &candidate, at_ms);
        }
    }

    /// Adds a candidate to a role (started with the campaign's settings if new), and grants
    /// what can be granted.
    pub fn campaign(&mut self, index: u64, campaign: &Campaign) -> Outcome {
        match self.sessions.get(&campaign.session) {
            None => return Outcome::no_session(&campaign.session),
            Some(session) => {
                if let Some(why) = &session.invalidated {
                    return Outcome::refused(format!(
                        "session {} is invalidated: {why}",
                        campaign.session
                    ));
                }
            }
        }
        let total = self.elections.len() + self.locks.len();
        let kind = campaign.kind.as_str();
        let roles = self.roles_mut(campaign.kind);
        if !roles.contains_key(&campaign.role) && total >= MAX_ROLES {
            return Outcome::refused(format!("the cluster holds {MAX_ROLES} roles already"));
        }
        let role = roles.entry(campaign.role.clone()).or_insert_with(|| Role {
            policy: campaign.policy,
            preempt: campaign.preempt,
            limit: campaign.limit,
            candidates: OrdMap::new(),
            index,
        });
        if (role.policy, role.preempt, role.limit)
            != (campaign.policy, campaign.preempt, campaign.limit)
        {
            return Outcome::refused(format!(
                "{kind} {} runs with policy {}, preempt {}, limit {}",
                campaign.role,
                role.policy.as_str(),
                role.preempt,
                role.limit
            ));
        }
        let full = role.candidates.len() >= MAX_CANDIDATES;
        match role.candidates.get_mut(&campaign.candidate) {
            Some(c) if c.session != campaign.session => {
                return Outcome::refused(format!(
                    "candidate {} is in {kind} {} with another session",
                    campaign.candidate, campaign.role
                ))
            }
            Some(c) if c.value == campaign.value => return Outcome::changed(false),
            Some(c) => c.value.clone_from(&campaign.value),
            None if full => {
                return Outcome::refused(format!(
                    "{kind} {} has {MAX_CANDIDATES} candidates already",
                    campaign.role
                ))
            }
            None => {
                role.candidates.insert(
                    campaign.candidate.clone(),
                    Candidate {
                        session: campaign.session.clone(),
                        value: campaign.value.clone(),
                        joined: index,
                        held: None,
                    },
                );
            }
        }
        role.index = index;
        self.index = index;
        self.settle(index, campaign.kind, &campaign.role, campaign.at_ms);
        Outcome::changed(true)
    }

    /// A candidate leaves a role (waiting or holding), as long as `session` is its session.
    pub fn resign(
        &mut self,
        index: u64,
        kind: RoleKind,
        role: &str,
        candidate: &str,
        session: &str,
        at_ms: u64,
    ) -> Outcome {
        let known = self
            .roles(kind)
            .get(role)
            .and_then(|r| r.candidates.get(candidate))
            .is_some_and(|c| c.session == session);
        if !known {
            return Outcome::refused(format!(
                "{candidate} with session {session} is no candidate in {} {role}",
                kind.as_str()
            ));
        }
        self.index = index;
        self.withdraw(index, kind, role, candidate, at_ms);
        Outcome::changed(true)
    }

    fn withdraw(&mut self, index: u64, kind: RoleKind, name: &str, candidate: &str, at_ms: u64) {
        let roles = self.roles_mut(kind);
        let Some(role) = roles.get_mut(name) else {
            return;
        };
        role.candidates.remove(candidate);
        role.index = index;
        if role.candidates.is_empty() {
            roles.remove(name);
            return;
        }
        self.settle(index, kind, name, at_ms);
    }

    /// Grants free places to waiting candidates, in the policy's order, and marks as yielding
    /// the holders a lower id preempts and those whose session was given up.
    fn settle(&mut self, index: u64, kind: RoleKind, name: &str, at_ms: u64) {
        let mut last_token = self.last_token;
        let sessions = &self.sessions;
        let roles = match kind {
            RoleKind::Election => &mut self.elections,
            RoleKind::Lock => &mut self.locks,
        };
        let Some(role) = roles.get_mut(name) else {
            return;
        };
        let limit = usize::try_from(role.limit).unwrap_or(usize::MAX);
        let holding = role.holders().len();
        let next: Vec<String> = role
            .waiting()
            .into_iter()
            .take(limit.saturating_sub(holding))
            .map(|(id, _)| id.clone())
            .collect();
        for id in next {
            if let Some(candidate) = role.candidates.get_mut(&id) {
                last_token = index.max(last_token.saturating_add(1));
                candidate.held = Some(Held {
                    token: last_token,
                    since_ms: at_ms,
                    yielding: false,
                });
                role.index = index;
            }
        }
        let preempting = role.policy == Policy::LowestId && role.preempt;
        let mut ids: Vec<String> = role.candidates.keys().cloned().collect();
        ids.sort_by(|a, b| natural_cmp(a, b));
        let keep: Vec<String> = ids.into_iter().take(limit).collect();
        let holders: Vec<(String, bool)> = role
            .holders()
            .iter()
            .map(|(id, c, _)| {
                let given_up = sessions
                    .get(&c.session)
                    .is_none_or(|s| s.invalidated.is_some());
                ((*id).clone(), given_up)
            })
            .collect();
        {
            for (id, given_up) in holders {
                let yielding = given_up || (preempting && !keep.contains(&id));
                let held = role.candidates.get_mut(&id).and_then(|c| c.held.as_mut());
                if let Some(held) = held.filter(|h| h.yielding != yielding) {
                    held.yielding = yielding;
                    role.index = index;
                }
            }
        }
        self.last_token = last_token;
    }
}

/// Orders ids as text, with runs of digits compared by their value: `a2` < `a10`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        let (run_a, rest_a) = leading_run(a);
        let (run_b, rest_b) = leading_run(b);
        let both_digits = run_a.starts_with(|c: char| c.is_ascii_digit())
            && run_b.starts_with(|c: char| c.is_ascii_digit());
        let order = if both_digits {
            let (na, nb) = (run_a.trim_start_matches('0'), run_b.trim_start_matches('0'));
            na.len().cmp(&nb.len()).then_with(|| na.cmp(nb))
        } else {
            run_a.cmp(run_b)
        };
        if order != Ordering::Equal {
            return order;
        }
        (a, b) = (rest_a, rest_b);
    }
}

/// The leading run of digits, or of anything else, and the rest.
fn leading_run(s: &str) -> (&str, &str) {
    let digits = s.starts_with(|c: char| c.is_ascii_digit());
    let end = s
        .find(|c: char| c.is_ascii_digit() != digits)
        .unwrap_or(s.len());
    s.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str) -> Session {
        Session {
            id: id.into(),
            holder: id.into(),
            node: "n1".into(),
            ttl_ms: 1_000,
            instance: None,
            created_ms: 0,
            invalidated: None,
        }
    }

    fn campaign(candidate: &str, session: &str, policy: Policy, preempt: bool) -> Campaign {
        Campaign {
            kind: RoleKind::Election,
            role: "head".into(),
            candidate: candidate.into(),
            session: session.into(),
            value: String::new(),
            policy,
            preempt,
            limit: 1,
            at_ms: 5,
        }
    }

    fn leader(c: &Coordination) -> Option<(String, u64)> {
        c.elections
            .get("head")?
            .holders()
            .first()
            .map(|(id, _, held)| ((*id).clone(), held.token))
    }

    #[test]
    fn first_grants_in_campaign_order_and_every_grant_has_a_higher_token() {
        let mut c = Coordination::default();
        for (i, s) in ["a", "b", "c"].iter().enumerate() {
            c.create(i as u64 + 1, &session(s));
        }
        c.campaign(10, &campaign("z", "a", Policy::First, false));
        c.campaign(11, &campaign("y", "b", Policy::First, false));
        c.campaign(12, &campaign("x", "c", Policy::First, false));
        assert_eq!(leader(&c), Some(("z".into(), 10)));
        c.end(20, "a", 9);
        assert_eq!(leader(&c), Some(("y".into(), 20)));
        assert!(
            c.resign(21, RoleKind::Election, "head", "y", "b", 9)
                .changed
        );
        assert_eq!(leader(&c), Some(("x".into(), 21)));
        c.end(22, "c", 9);
        assert!(
            c.elections.is_empty(),
            "a role with no candidates is dropped"
        );
        c.create(23, &session("d"));
        c.campaign(24, &campaign("w", "d", Policy::First, false));
        assert_eq!(leader(&c), Some(("w".into(), 24)));
    }

    #[test]
    fn lowest_id_waits_for_the_holder_unless_it_preempts() {
        for preempt in [false, true] {
            let mut c = Coordination::default();
            c.create(1, &session("s2"));
            c.create(2, &session("s1"));
            c.campaign(3, &campaign("head-2", "s2", Policy::LowestId, preempt));
            c.campaign(4, &campaign("head-10", "s1", Policy::LowestId, preempt));
            c.create(5, &session("s0"));
            c.campaign(6, &campaign("head-1", "s0", Policy::LowestId, preempt));
            let role = &c.elections["head"];
            let (holder, _, held) = role.holders()[0];
            assert_eq!(holder, "head-2");
            assert_eq!(held.yielding, preempt);
            c.resign(7, RoleKind::Election, "head", "head-2", "s2", 9);
            assert_eq!(leader(&c), Some(("head-1".into(), 7)));
        }
    }

    #[test]
    fn an_invalidated_session_keeps_what_it_holds_until_it_ends() {
        let mut c = Coordination::default();
        c.create(1, &session("a"));
        c.create(2, &session("b"));
        c.campaign(3, &campaign("x", "a", Policy::First, false));
        c.campaign(4, &campaign("y", "b", Policy::First, false));
        c.invalidate(5, "a", "instance api/1 is critical", 9);
        assert_eq!(leader(&c), Some(("x".into(), 3)));
        let role = &c.elections["head"];
        assert!(role.holders()[0].2.yielding, "the holder is asked to yield");
        assert_eq!(role.index, 5, "watchers of the election are told");
        assert!(c
            .campaign(6, &campaign("q", "a", Policy::First, false))
            .refused
            .is_some());
        c.invalidate(7, "b", "node n2 is dead", 9);
        assert!(
            !c.sessions.contains_key("b"),
            "a session holding nothing ends at once"
        );
        c.end(8, "a", 9);
        assert!(c.elections.is_empty());
    }

    #[test]
    fn a_candidate_id_belongs_to_one_session_and_settings_to_the_first_campaign() {
        let mut c = Coordination::default();
        c.create(1, &session("a"));
        c.create(2, &session("b"));
        c.campaign(3, &campaign("x", "a", Policy::First, false));
        assert!(c
            .campaign(4, &campaign("x", "b", Policy::First, false))
            .refused
            .is_some());
        assert!(c
            .campaign(5, &campaign("y", "b", Policy::LowestId, false))
            .refused
            .is_some());
        assert!(
            !c.campaign(6, &campaign("x", "a", Policy::First, false))
                .changed
        );
        assert!(c
            .resign(7, RoleKind::Election, "head", "x", "b", 9)
            .refused
            .is_some());
    }

    #[test]
    fn a_semaphore_grants_up_to_its_limit() {
        let mut c = Coordination::default();
        let mut tokens = Vec::new();
        for i in 0..4u64 {
            let s = format!("s{i}");
            c.create(i + 1, &session(&s));
            let mut lock = campaign(&s, &s, Policy::First, false);
            lock.kind = RoleKind::Lock;
            lock.limit = 2;
            c.campaign(10 + i, &lock);
        }
        let holders = c.locks["head"].holders();
        assert_eq!(holders.len(), 2);
        tokens.extend(holders.iter().map(|h| h.2.token));
        c.end(20, "s0", 9);
        c.end(20, "s1", 9);
        let holders = c.locks["head"].holders();
        assert_eq!(holders.len(), 2);
        assert_eq!(
            holders.iter().map(|h| h.2.token).collect::<Vec<_>>(),
            vec![20, 21],
            "two grants in one entry take two tokens"
        );
        assert!(tokens.iter().all(|t| *t < 20));
    }

    #[test]
    fn ids_compare_with_numbers_by_value() {
        let mut ids = vec!["head-10", "head-2", "head-1", "alpha", "head-01a", "h"];
        ids.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            ids,
            ["alpha", "h", "head-1", "head-01a", "head-2", "head-10"]
        );
    }
}
