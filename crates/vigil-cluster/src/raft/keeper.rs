//! The leader's watch over sessions: when each was last renewed, and which session ends,
//! is given up or must yield a role now. Pure logic over the registry and the time it is
//! given; the leader writes what [`Keeper::due`] returns.
//!
//! Renewal times live only in the leader's memory, as etcd's leases and Consul's sessions do:
//! a renewal is not a log entry. A new leader starts every session's clock when it first sees
//! the session, which is no earlier than any renewal its predecessor acknowledged (a renewal is
//! acknowledged only once a majority confirmed that predecessor after the renewal arrived, and
//! this leader was elected by a majority after that), so a session never ends sooner than its
//! holder was promised. See DESIGN.md, "Sessions, elections and locks", for the holder's side.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::coordination::RoleKind;
use super::state::{Command, Registry};

/// A holder asked to yield: the role, its name and the candidate.
type Yielding = (RoleKind, String, String);

/// The leader's renewal times and yield clocks.
#[derive(Debug, Default)]
pub struct Keeper {
    renewed: HashMap<String, Instant>,
    yielding: HashMap<Yielding, Instant>,
}

impl Keeper {
    /// Records a renewal of session `id` received at `at` (and confirmed since).
    pub fn renewed(&mut self, id: &str, at: Instant) {
        let last = self.renewed.entry(id.to_owned()).or_insert(at);
        *last = (*last).max(at);
    }

    /// The writes due at `now` (`at_ms` on the wall clock): sessions whose TTL lapsed end,
    /// sessions whose instance or node failed are given up, and holders asked to yield a role
    /// resign once a whole TTL of their session has passed since (a holder renewing in that time
    /// was told to yield and stops believing it holds the role within its lease).
    pub fn due(&mut self, registry: &Registry, now: Instant, at_ms: u64) -> Vec<Command> {
        let coordination = &registry.coordination;
        self.renewed
            .retain(|id, _| coordination.sessions.contains_key(id));
        let mut due = Vec::new();
        for (id, session) in &coordination.sessions {
            let last = *self.renewed.entry(id.clone()).or_insert(now);
            let ttl = Duration::from_millis(session.ttl_ms);
            if now.saturating_duration_since(last) >= ttl {
                due.push(Command::SessionEnd {
                    id: id.clone(),
                    reason: format!("not renewed for its TTL of {} ms", session.ttl_ms),
                    at_ms,
                });
            } else if session.invalidated.is_none() {
                if let Some(reason) = registry.session_problem(session) {
                    due.push(Command::SessionInvalidate {
                        id: id.clone(),
                        reason,
                        at_ms,
                    });
                }
            }
        }
        let mut asked = Vec::new();
        for kind in [RoleKind::Election, RoleKind::Lock] {
            for (name, role) in coordination.roles(kind) {
                for (candidate, c, held) in role.holders() {
                    if !held.yielding {
                        continue;
                    }
                    let key = (kind, name.clone(), candidate.clone());
                    let since = *self.yielding.entry(key.clone()).or_insert(now);
                    asked.push(key);
                    let ttl = coordination
                        .sessions
                        .get(&c.session)
                        .map_or(Duration::ZERO, |s| Duration::from_millis(s.ttl_ms));
                    if now.saturating_duration_since(since) >= ttl {
                        due.push(Command::Resign {
                            kind,
                            role: name.clone(),
                            candidate: candidate.clone(),
                            session: c.session.clone(),
                            at_ms,
                        });
                    }
                }
            }
        }
        self.yielding.retain(|key, _| asked.contains(key));
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::coordination::{Campaign, Policy, Session};

    fn session(id: &str, ttl_ms: u64) -> Command {
        Command::SessionCreate(Session {
            id: id.into(),
            holder: id.into(),
            node: "n1".into(),
            ttl_ms,
            instance: None,
            created_ms: 0,
            invalidated: None,
        })
    }

    fn campaign(candidate: &str, session: &str) -> Command {
        Command::Campaign(Campaign {
            kind: RoleKind::Election,
            role: "head".into(),
            candidate: candidate.into(),
            session: session.into(),
            value: String::new(),
            policy: Policy::LowestId,
            preempt: true,
            limit: 1,
            at_ms: 0,
        })
    }

    #[test]
    fn a_session_ends_one_ttl_after_its_last_renewal_and_not_before() {
        let t0 = Instant::now();
        let mut registry = Registry::default();
        registry.apply(1, &session("a", 1_000));
        let mut keeper = Keeper::default();
        assert!(keeper.due(&registry, t0, 0).is_empty());
        keeper.renewed("a", t0 + Duration::from_millis(600));
        assert!(keeper
            .due(&registry, t0 + Duration::from_millis(1_599), 0)
            .is_empty());
        let due = keeper.due(&registry, t0 + Duration::from_millis(1_600), 0);
        assert!(matches!(&due[..], [Command::SessionEnd { id, .. }] if id == "a"));
    }

    #[test]
    fn a_preempted_holder_resigns_one_ttl_after_it_was_asked() {
        let t0 = Instant::now();
        let mut registry = Registry::default();
        registry.apply(1, &session("s2", 1_000));
        registry.apply(2, &campaign("head-2", "s2"));
        let mut keeper = Keeper::default();
        keeper.due(&registry, t0, 0);
        registry.apply(3, &session("s1", 1_000));
        registry.apply(4, &campaign("head-1", "s1"));
        let later = t0 + Duration::from_millis(500);
        keeper.renewed("s2", later);
        keeper.renewed("s1", later);
        assert!(keeper.due(&registry, later, 0).is_empty());
        keeper.renewed("s2", later + Duration::from_millis(900));
        keeper.renewed("s1", later + Duration::from_millis(900));
        let due = keeper.due(&registry, later + Duration::from_millis(1_000), 0);
        assert!(
            matches!(&due[..], [Command::Resign { candidate, .. }] if candidate == "head-2"),
            "{due:?}"
        );
        registry.apply(5, &due[0]);
        let holders = registry.coordination.elections["head"].holders();
        assert_eq!(holders[0].0, "head-1");
        assert_eq!(holders[0].2.token, 5);
    }
}
