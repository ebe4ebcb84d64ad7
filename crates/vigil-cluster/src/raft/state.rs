//! The replicated registry: service instances with their checks' last results, each node's
//! last health report, and the leader's record, with the commands that change them. Applying a
//! command is deterministic and total, so every voter that applies the same log holds the same
//! registry. Each service remembers the log index of its last change, the index blocking
//! discovery queries wait on.

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use super::coordination::{Campaign, Coordination, Outcome, Refusal, RoleKind, Session};
use super::instance::{
    compacted, CheckBody, CheckMap, InstanceHealth, InstanceReport, InstanceState,
};

/// One registered instance of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInstance {
    /// The service's name (`api`, `db`, ...).
    pub name: String,
    /// The instance's id, unique within its service.
    pub id: String,
    /// Host or IP clients dial.
    pub address: String,
    /// Port clients dial.
    pub port: u16,
    /// Free-form labels.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The cluster node the instance runs on; its health is reported beside the instance.
    pub node: String,
    /// Removed by the leader once membership declares `node` dead or gone, or once a TTL check
    /// of the instance lapses.
    #[serde(default)]
    pub ephemeral: bool,
    /// The instance's checks by name, run by the agent of `node`; none means always passing.
    #[serde(default, skip_serializing_if = "CheckMap::is_empty")]
    pub checks: CheckMap<CheckBody>,
    /// Removed by the leader once a check has been critical this long, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregister_critical_after_ms: Option<u64>,
}

impl ServiceInstance {
    /// Whether a check of this instance is a TTL the instance renews itself.
    pub fn has_ttl_check(&self, check: &str) -> bool {
        self.checks
            .get(check)
            .and_then(CheckBody::probe)
            .is_some_and(|probe| probe.trim() == "ttl")
    }
}

/// A node's health as last recorded in the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// `healthy`, `degraded`, `unhealthy`, `starting`, `stopping`, or `dead` / `left` once
    /// membership has given the node up.
    pub status: String,
    /// Health score in percent.
    pub score: u8,
    /// When the report was recorded, in milliseconds since the Unix epoch (the leader's clock).
    pub at_ms: u64,
}

/// Who leads, as the leader recorded it on taking office.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderRecord {
    /// The leader's node id.
    pub node: String,
    /// The Raft term it leads in.
    pub term: u64,
    /// When it took office, in milliseconds since the Unix epoch (its own clock).
    pub since_ms: u64,
    /// Its HTTP API address, where writes are forwarded.
    pub api_address: Option<String>,
}

/// A change to the registry, as carried by the Raft log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Adds an instance, or replaces the one with the same service name and id.
    Register(ServiceInstance),
    /// Removes one instance.
    Deregister {
        /// Service name.
        name: String,
        /// Instance id.
        id: String,
    },
    /// Removes every ephemeral instance on `node` and records the node as `status`.
    NodeGone {
        /// The node membership gave up.
        node: String,
        /// `dead` or `left`.
        status: String,
        /// When, in milliseconds since the Unix epoch.
        at_ms: u64,
    },
    /// Records a node's health.
    ReportHealth {
        /// The node.
        node: String,
        /// Its report.
        report: HealthReport,
    },
    /// Records the leader taking office.
    Leader(LeaderRecord),
    /// Records the checks of instances on `node`, as its agent ran them; reports about
    /// instances that are not (or no longer) on `node`, or about checks they do not have, are
    /// ignored.
    ReportInstances {
        /// The reporting node.
        node: String,
        /// When, in milliseconds since the Unix epoch (the reporter's clock).
        at_ms: u64,
        /// One report per instance whose checks changed.
        instances: Vec<InstanceReport>,
    },
    /// Puts an instance in maintenance (`reason` set) or takes it out (`None`).
    Maintenance {
        /// Service name.
        name: String,
        /// Instance id.
        id: String,
        /// Why, while in maintenance.
        reason: Option<String>,
    },
    /// Puts every instance on a node in maintenance (`reason` set) or takes the node out
    /// (`None`); instances keep their own maintenance flags.
    NodeMaintenance {
        /// The node.
        node: String,
        /// Why, while in maintenance.
        reason: Option<String>,
    },
    /// Replaces the whole registry with a backup's (`vigil snapshot restore`), but for the
    /// leader's record, which stays the current one.
    Restore(Box<Registry>),
    /// Adds a holder's session.
    SessionCreate(Session),
    /// The cluster gives a session up (see [`Coordination::invalidate`]).
    SessionInvalidate {
        /// The session.
        id: String,
        /// Why.
        reason: String,
        /// When, milliseconds since the Unix epoch.
        at_ms: u64,
    },
    /// Ends a session, releasing everything it holds.
    SessionEnd {
        /// The session.
        id: String,
        /// Why: ended by its holder, its TTL lapsed, its connection closed...
        reason: String,
        /// When, milliseconds since the Unix epoch.
        at_ms: u64,
    },
    /// A candidate joins an election or asks for a lock.
    Campaign(Campaign),
    /// A candidate leaves an election or a lock, holding it or not.
    Resign {
        /// Election or lock.
        kind: RoleKind,
        /// The role's name.
        role: String,
        /// The candidate.
        candidate: String,
        /// Its session, which must match.
        session: String,
        /// When, milliseconds since the Unix epoch.
        at_ms: u64,
    },
}

impl Command {
    /// Whether applying the command a second time changes nothing the first did not and
    /// answers alike: a write that the leader it was passed to may or may not have taken can
    /// then be passed on again, to its successor.
    pub fn replays_safely(&self) -> bool {
        matches!(
            self,
            Command::Register(_)
                | Command::ReportHealth { .. }
                | Command::ReportInstances { .. }
                | Command::Maintenance { .. }
                | Command::NodeMaintenance { .. }
        )
    }
}

/// What applying a command did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Whether the registry changed: false for deregistering an unknown instance or recording
    /// what was already there.
    pub changed: bool,
    /// Instances removed (by `Deregister` or `NodeGone`).
    pub removed: usize,
    /// Why a session or role command was not carried out (an unknown session, a candidate id
    /// taken by another session...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
}

impl From<Outcome> for Applied {
    fn from(outcome: Outcome) -> Applied {
        Applied {
            changed: outcome.changed,
            removed: 0,
            refused: outcome.refused,
        }
    }
}

/// The instances of one service by id.
pub type Instances = OrdMap<String, ServiceInstance>;

/// The registry's content.
///
/// Its maps are persistent (structure shared between copies), since every applied entry
/// publishes a copy to readers: a copy costs no more than the path to what changed, and two
/// copies are compared by skipping what they share ([`OrdMap::diff`]), whatever the number of
/// instances.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    /// Instances by service name, then instance id.
    pub services: OrdMap<String, Instances>,
    /// Last health report of each node.
    pub health: OrdMap<String, HealthReport>,
    /// The latest leader record.
    pub leader: Option<LeaderRecord>,
    /// The health of instances by service name, then instance id.
    #[serde(default)]
    pub instance_health: OrdMap<String, OrdMap<String, InstanceHealth>>,
    /// The log index of each service's last change (registration, checks, its nodes' liveness);
    /// a service no longer registered has none (see [`Registry::service_index`]).
    #[serde(default)]
    pub modified: OrdMap<String, u64>,
    /// The log index of the last change to any service.
    #[serde(default)]
    pub services_index: u64,
    /// Sessions, elections and locks of users' services.
    #[serde(default)]
    pub coordination: Coordination,
    /// Nodes an operator put in maintenance, with why: every instance on them is in
    /// maintenance.
    #[serde(default)]
    pub node_maintenance: OrdMap<String, String>,
}

/// Whether a node status (as recorded in [`HealthReport::status`]) means the node is gone.
pub fn is_gone(status: &str) -> bool {
    matches!(status, "dead" | "left")
}

impl Registry {
    /// Applies `command`, the log's entry at `index`, and says what it did.
    pub fn apply(&mut self, index: u64, command: &Command) -> Applied {
        let touched = self.services_touched_by(command);
        let applied = self.apply_command(index, command);
        if applied.changed {
            for name in touched {
                self.services_index = index;
                if self.services.contains_key(&name) {
                    self.modified.insert(name, index);
                } else {
                    // A gone service answers with the index of the last change to any, so
                    // names once used do not pile up.
                    self.modified.remove(&name);
                }
            }
        }
        applied
    }

    /// The services whose answer `command` may change, judged before it is applied.
    fn services_touched_by(&self, command: &Command) -> Vec<String> {
        match command {
            Command::Register(ServiceInstance { name, .. })
            | Command::Deregister { name, .. }
            | Command::Maintenance { name, .. } => vec![name.clone()],
            Command::ReportInstances { instances, .. } => {
                let mut names: Vec<String> = instances.iter().map(|i| i.name.clone()).collect();
                names.dedup();
                names
            }
            // A node's health moves its instances only by its going or coming back.
            Command::ReportHealth { node, report }
                if !self.liveness_changes(node, &report.status) =>
            {
                Vec::new()
            }
            Command::NodeGone { node, .. }
            | Command::ReportHealth { node, .. }
            | Command::NodeMaintenance { node, .. } => self
                .services
                .iter()
                .filter(|(_, of)| of.values().any(|i| &i.node == node))
                .map(|(name, _)| name.clone())
                .collect(),
            Command::Restore(backup) => self
                .services
                .keys()
                .chain(backup.services.keys())
                .cloned()
                .collect(),
            Command::Leader(_)
            | Command::SessionCreate(_)
            | Command::SessionInvalidate { .. }
            | Command::SessionEnd { .. }
            | Command::Campaign(_)
            | Command::Resign { .. } => Vec::new(),
        }
    }

    /// Whether recording `status` for `node` moves it between gone and not gone.
    fn liveness_changes(&self, node: &str, status: &str) -> bool {
        let was_gone = self.health.get(node).is_some_and(|r| is_gone(&r.status));
        was_gone != is_gone(status)
    }

    fn apply_command(&mut self, index: u64, command: &Command) -> Applied {
        let coordination = &mut self.coordination;
        match command {
            Command::SessionCreate(session) => coordination.create(index, session).into(),
            Command::SessionInvalidate { id, reason, at_ms } => {
                coordination.invalidate(index, id, reason, *at_ms).into()
            }
            Command::SessionEnd { id, at_ms, .. } => coordination.end(index, id, *at_ms).into(),
            Command::Campaign(campaign) => coordination.campaign(index, campaign).into(),
            Command::Resign {
                kind,
                role,
                candidate,
                session,
                at_ms,
            } => coordination
                .resign(index, *kind, role, candidate, session, *at_ms)
                .into(),
            Command::Register(instance) => {
                let slot = self
                    .services
                    .entry(instance.name.clone())
                    .or_default()
                    .insert(instance.id.clone(), instance.clone());
                self.keep_health_of(instance, slot.as_ref());
                Applied {
                    changed: slot.as_ref() != Some(instance),
                    removed: 0,
                    refused: None,
                }
            }
            Command::Deregister { name, id } => {
                let removed = match self.services.get_mut(name) {
                    Some(instances) => {
                        let gone = instances.remove(id).is_some();
                        if instances.is_empty() {
                            self.services.remove(name);
                        }
                        usize::from(gone)
                    }
                    None => 0,
                };
                self.forget_health(name, id);
                Applied {
                    changed: removed > 0,
                    removed,
                    refused: None,
                }
            }
            Command::NodeGone {
                node,
                status,
                at_ms,
            } => {
                let gone: Vec<(String, String)> = self
                    .instances()
                    .filter(|i| i.ephemeral && &i.node == node)
                    .map(|i| (i.name.clone(), i.id.clone()))
                    .collect();
                let removed = gone.len();
                for (name, id) in gone {
                    self.apply_command(index, &Command::Deregister { name, id });
                }
                let report = HealthReport {
                    status: status.clone(),
                    score: 0,
                    at_ms: *at_ms,
                };
                let recorded = self.health.get(node).map(|r| &r.status) == Some(status);
                self.health.insert(node.clone(), report);
                Applied {
                    changed: removed > 0 || !recorded,
                    removed,
                    refused: None,
                }
            }
            Command::ReportHealth { node, report } => {
                let old = self.health.insert(node.clone(), report.clone());
                Applied {
                    changed: old.as_ref() != Some(report),
                    removed: 0,
                    refused: None,
                }
            }
            Command::Leader(record) => {
                let changed = self.leader.as_ref() != Some(record);
                self.leader = Some(record.clone());
                Applied {
                    changed,
                    removed: 0,
                    refused: None,
                }
            }
            Command::ReportInstances {
                node,
                at_ms,
                instances,
            } => {
                let mut changed = false;
                for report in instances {
                    changed |= self.record_checks(node, *at_ms, report);
                }
                Applied {
                    changed,
                    removed: 0,
                    refused: None,
                }
            }
            Command::Restore(backup) => {
                let leader = self.leader.take();
                let last_token = self.coordination.last_token;
                *self = Registry {
                    leader,
                    ..(**backup).clone()
                };
                self.coordination.restored(index, last_token);
                Applied {
                    changed: true,
                    removed: 0,
                    refused: None,
                }
            }
            Command::NodeMaintenance { node, reason } => {
                let before = match reason {
                    Some(reason) => self.node_maintenance.insert(node.clone(), reason.clone()),
                    None => self.node_maintenance.remove(node),
                };
                Applied {
                    changed: before != *reason,
                    removed: 0,
                    refused: None,
                }
            }
            Command::Maintenance { name, id, reason } => {
                let known = self
                    .services
                    .get(name)
                    .is_some_and(|of| of.contains_key(id));
                let changed = known && {
                    let health = self
                        .instance_health
                        .entry(name.clone())
                        .or_default()
                        .entry(id.clone())
                        .or_default();
                    let changed = health.maintenance != *reason;
                    health.maintenance.clone_from(reason);
                    changed
                };
                Applied {
                    changed,
                    removed: 0,
                    refused: None,
                }
            }
        }
    }

    /// Records one instance's check results; whether anything changed.
    fn record_checks(&mut self, node: &str, at_ms: u64, report: &InstanceReport) -> bool {
        let Some(instance) = self
            .services
            .get(&report.name)
            .and_then(|of| of.get(&report.id))
        else {
            return false;
        };
        if instance.node != node {
            return false;
        }
        let checks: CheckMap<_> = report
            .checks
            .iter()
            .filter(|(check, _)| instance.checks.contains_key(*check))
            .map(|(check, r)| (check.clone(), r.clone()))
            .collect();
        let count = instance.checks.len();
        let health = self
            .instance_health
            .entry(report.name.clone())
            .or_default()
            .entry(report.id.clone())
            .or_default();
        if health.checks == checks {
            return false;
        }
        health.checks = compacted(checks);
        let critical = health.state(count) == InstanceState::Critical
            || (health.maintenance.is_some()
                && health
                    .checks
                    .values()
                    .any(|c| c.state == vigil_health::CheckState::Critical));
        health.critical_since_ms = match (critical, health.critical_since_ms) {
            (true, Some(since)) => Some(since),
            (true, None) => Some(at_ms),
            (false, _) => None,
        };
        true
    }

    /// After a (re-)registration: results of checks the instance no longer has are dropped,
    /// and all of them when it moved to another node.
    fn keep_health_of(&mut self, instance: &ServiceInstance, before: Option<&ServiceInstance>) {
        if before.is_some_and(|b| b.node != instance.node) {
            self.forget_health(&instance.name, &instance.id);
            return;
        }
        if let Some(health) = self
            .instance_health
            .get_mut(&instance.name)
            .and_then(|of| of.get_mut(&instance.id))
        {
            health
                .checks
                .retain(|check, _| instance.checks.contains_key(check));
        }
    }

    fn forget_health(&mut self, name: &str, id: &str) {
        if let Some(of) = self.instance_health.get_mut(name) {
            of.remove(id);
            if of.is_empty() {
                self.instance_health.remove(name);
            }
        }
    }

    /// What discovery says of `instance`: in maintenance while it or its node is, critical
    /// while its node is dead or gone, otherwise what its checks say.
    pub fn instance_state(&self, instance: &ServiceInstance) -> InstanceState {
        if self.node_maintenance.contains_key(&instance.node) {
            return InstanceState::Maintenance;
        }
        let maintenance = self
            .health_of(instance)
            .and_then(|h| h.maintenance.as_ref());
        if maintenance.is_none()
            && self
                .health
                .get(&instance.node)
                .is_some_and(|r| is_gone(&r.status))
        {
            return InstanceState::Critical;
        }
        self.health_of(instance).map_or_else(
            || InstanceHealth::default().state(instance.checks.len()),
            |h| h.state(instance.checks.len()),
        )
    }

    /// The recorded health of `instance`, once anything was recorded.
    pub fn health_of(&self, instance: &ServiceInstance) -> Option<&InstanceHealth> {
        self.instance_health
            .get(&instance.name)
            .and_then(|of| of.get(&instance.id))
    }

    /// The log index of the last change to service `name` (or to any service, for one never
    /// seen).
    pub fn service_index(&self, name: &str) -> u64 {
        self.modified
            .get(name)
            .copied()
            .unwrap_or(self.services_index)
    }

    /// Why the cluster should give `session` up now, if it should: the instance it follows is
    /// gone or critical, or its node is dead or gone.
    pub fn session_problem(&self, session: &Session) -> Option<String> {
        if let Some(r) = self.health.get(&session.node) {
            if is_gone(&r.status) {
                return Some(format!("node {} is {}", session.node, r.status));
            }
        }
        let bound = session.instance.as_ref()?;
        let Some(instance) = self
            .services
            .get(&bound.service)
            .and_then(|of| of.get(&bound.id))
        else {
            return Some(format!(
                "instance {}/{} is not registered",
                bound.service, bound.id
            ));
        };
        match self.instance_state(instance) {
            InstanceState::Critical => Some(format!(
                "instance {}/{} is critical",
                bound.service, bound.id
            )),
            InstanceState::Maintenance => Some(format!(
                "instance {}/{} is in maintenance",
                bound.service, bound.id
            )),
            _ => None,
        }
    }

    /// Every instance, by service name, then id.
    pub fn instances(&self) -> impl Iterator<Item = &ServiceInstance> {
        self.services.values().flat_map(OrdMap::values)
    }

    /// Whether `node` has ephemeral instances.
    pub fn has_ephemeral_on(&self, node: &str) -> bool {
        self.instances().any(|i| i.ephemeral && i.node == node)
    }

    /// Every node that has ephemeral instances.
    pub fn nodes_with_ephemeral(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self
            .instances()
            .filter(|i| i.ephemeral)
            .map(|i| i.node.clone())
            .collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::instance::{CheckReport, JsonObject};
    use vigil_health::CheckState;

    fn instance(name: &str, id: &str, node: &str, ephemeral: bool) -> ServiceInstance {
        ServiceInstance {
            name: name.into(),
            id: id.into(),
            address: "10.0.0.1".into(),
            port: 80,
            tags: vec![],
            node: node.into(),
            ephemeral,
            checks: CheckMap::new(),
            deregister_critical_after_ms: None,
        }
    }

    fn with_check(mut instance: ServiceInstance, check: &str) -> ServiceInstance {
        let mut body = JsonObject::new();
        body.insert("probe".into(), "tcp://10.0.0.1:80".into());
        instance.checks.insert(check.into(), CheckBody::new(&body));
        instance
    }

    fn report(node: &str, name: &str, id: &str, state: CheckState) -> Command {
        Command::ReportInstances {
            node: node.into(),
            at_ms: 7,
            instances: vec![InstanceReport {
                name: name.into(),
                id: id.into(),
                checks: [("tcp".to_owned(), CheckReport::new(state, "x"))]
                    .into_iter()
                    .collect(),
            }],
        }
    }

    #[test]
    fn a_registration_with_checks_reads_back_from_the_log_as_written() {
        let command = Command::Register(with_check(instance("api", "a", "n1", true), "tcp"));
        let written = serde_json::to_string(&command).expect("encode");
        assert!(
            written.contains(r#""checks":{"tcp":{"probe":"tcp://10.0.0.1:80"}}"#),
            "{written}"
        );
        let read: Command = serde_json::from_str(&written).expect("decode");
        assert_eq!(read, command);
        let Command::Register(read) = read else {
            unreachable!("decoded as written")
        };
        assert!(!read.has_ttl_check("tcp"));
    }

    #[test]
    fn checks_decide_the_state_and_every_change_moves_the_service_index() {
        let mut r = Registry::default();
        let api = with_check(instance("api", "1", "n1", false), "tcp");
        r.apply(3, &Command::Register(api.clone()));
        assert_eq!(r.instance_state(&api), InstanceState::Unknown);
        assert_eq!(r.service_index("api"), 3);

        r.apply(4, &report("n1", "api", "1", CheckState::Passing));
        assert_eq!(r.instance_state(&api), InstanceState::Passing);
        assert_eq!(r.service_index("api"), 4);

        let same = r.apply(5, &report("n1", "api", "1", CheckState::Passing));
        assert!(!same.changed);
        assert_eq!(r.service_index("api"), 4);

        let elsewhere = r.apply(6, &report("n2", "api", "1", CheckState::Critical));
        assert!(
            !elsewhere.changed,
            "only the instance's own node reports on it"
        );

        r.apply(7, &report("n1", "api", "1", CheckState::Critical));
        assert_eq!(r.instance_state(&api), InstanceState::Critical);
        assert_eq!(r.health_of(&api).unwrap().critical_since_ms, Some(7));

        r.apply(
            8,
            &Command::Maintenance {
                name: "api".into(),
                id: "1".into(),
                reason: Some("upgrade".into()),
            },
        );
        assert_eq!(r.instance_state(&api), InstanceState::Maintenance);
        assert_eq!(r.service_index("api"), 8);
    }

    #[test]
    fn a_restore_brings_the_backup_back_and_moves_every_service_index() {
        let mut r = Registry::default();
        let a = instance("api", "1", "n1", false);
        r.apply(1, &Command::Register(a.clone()));
        let backup = r.clone();
        r.apply(
            2,
            &Command::Deregister {
                name: "api".into(),
                id: "1".into(),
            },
        );
        r.apply(3, &Command::Register(instance("db", "1", "n1", false)));
        r.leader = Some(LeaderRecord {
            node: "n2".into(),
            term: 4,
            since_ms: 0,
            api_address: None,
        });
        r.apply(5, &Command::Restore(Box::new(backup)));
        assert!(r.services.get("api").is_some_and(|of| of.contains_key("1")));
        assert!(r.services.get("db").is_none());
        assert_eq!(r.service_index("api"), 5, "watchers of api wake");
        assert_eq!(r.service_index("db"), 5, "and those of db, now gone");
        assert_eq!(
            r.leader.as_ref().map(|l| l.term),
            Some(4),
            "the leader stays"
        );
        assert_eq!(
            r.coordination.index, 5,
            "watchers of elections and locks wake"
        );
    }

    #[test]
    fn a_node_in_maintenance_takes_every_instance_on_it_out_and_gives_them_back() {
        let mut r = Registry::default();
        let here = instance("api", "1", "n1", false);
        let there = instance("api", "2", "n2", false);
        r.apply(1, &Command::Register(here.clone()));
        r.apply(2, &Command::Register(there.clone()));
        let enter = Command::NodeMaintenance {
            node: "n1".into(),
            reason: Some("kernel upgrade".into()),
        };
        assert!(r.apply(3, &enter).changed);
        assert!(!r.apply(4, &enter).changed, "already in maintenance");
        assert_eq!(r.instance_state(&here), InstanceState::Maintenance);
        assert_eq!(r.instance_state(&there), InstanceState::Passing);
        assert_eq!(r.service_index("api"), 3);

        let gone = Command::NodeGone {
            node: "n1".into(),
            status: "dead".into(),
            at_ms: 5,
        };
        r.apply(5, &gone);
        assert_eq!(
            r.instance_state(&here),
            InstanceState::Maintenance,
            "the operator took it out already"
        );

        let leave = Command::NodeMaintenance {
            node: "n1".into(),
            reason: None,
        };
        assert!(r.apply(6, &leave).changed);
        assert_eq!(r.instance_state(&here), InstanceState::Critical);
        assert_eq!(r.service_index("api"), 6);
    }

    #[test]
    fn a_dead_node_makes_its_instances_critical() {
        let mut r = Registry::default();
        let api = instance("api", "1", "n1", false);
        r.apply(1, &Command::Register(api.clone()));
        assert_eq!(r.instance_state(&api), InstanceState::Passing);
        r.apply(
            2,
            &Command::NodeGone {
                node: "n1".into(),
                status: "dead".into(),
                at_ms: 1,
            },
        );
        assert_eq!(r.instance_state(&api), InstanceState::Critical);
        assert_eq!(r.service_index("api"), 2);
    }

    #[test]
    fn a_node_score_does_not_move_its_services_index() {
        let mut r = Registry::default();
        r.apply(1, &Command::Register(instance("api", "1", "n1", false)));
        let report = |status: &str, score| Command::ReportHealth {
            node: "n1".into(),
            report: HealthReport {
                status: status.into(),
                score,
                at_ms: 1,
            },
        };
        r.apply(2, &report("healthy", 100));
        r.apply(3, &report("degraded", 80));
        assert_eq!(r.service_index("api"), 1);
        r.apply(4, &report("dead", 0));
        assert_eq!(r.service_index("api"), 4);
        r.apply(5, &report("healthy", 100));
        assert_eq!(r.service_index("api"), 5);
    }

    #[test]
    fn a_gone_service_answers_with_the_last_index_of_any() {
        let mut r = Registry::default();
        r.apply(1, &Command::Register(instance("api", "1", "n1", false)));
        r.apply(2, &Command::Register(instance("db", "1", "n1", false)));
        r.apply(
            3,
            &Command::Deregister {
                name: "api".into(),
                id: "1".into(),
            },
        );
        assert!(!r.modified.contains_key("api"));
        assert_eq!(r.service_index("api"), 3);
        assert_eq!(r.service_index("db"), 2);
    }

    #[test]
    fn a_gone_node_takes_only_its_ephemeral_instances_with_it() {
        let mut r = Registry::default();
        r.apply(1, &Command::Register(instance("api", "1", "n1", true)));
        r.apply(1, &Command::Register(instance("api", "2", "n1", false)));
        r.apply(1, &Command::Register(instance("db", "1", "n2", true)));
        let applied = r.apply(
            1,
            &Command::NodeGone {
                node: "n1".into(),
                status: "dead".into(),
                at_ms: 1,
            },
        );
        assert_eq!(applied.removed, 1);
        assert!(r.services["api"].contains_key("2"));
        assert!(!r.services["api"].contains_key("1"));
        assert!(r.has_ephemeral_on("n2"));
        assert!(!r.has_ephemeral_on("n1"));
        assert_eq!(r.health["n1"].status, "dead");
    }

    #[test]
    fn deregistering_the_last_instance_drops_the_service() {
        let mut r = Registry::default();
        r.apply(1, &Command::Register(instance("api", "1", "n1", false)));
        let gone = r.apply(
            1,
            &Command::Deregister {
                name: "api".into(),
                id: "1".into(),
            },
        );
        assert!(gone.changed);
        assert!(r.services.is_empty());
        let again = r.apply(
            1,
            &Command::Deregister {
                name: "api".into(),
                id: "1".into(),
            },
        );
        assert!(!again.changed);
    }
}
