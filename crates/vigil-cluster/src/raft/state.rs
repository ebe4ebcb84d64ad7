//! The replicated registry: service instances, each node's last health report, and the
//! leader's record, with the commands that change them. Applying a command is deterministic
//! and total, so every voter that applies the same log holds the same registry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    /// Removed by the leader once membership declares `node` dead or gone.
    #[serde(default)]
    pub ephemeral: bool,
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
}

/// What applying a command did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Whether the registry changed: false for deregistering an unknown instance or recording
    /// what was already there.
    pub changed: bool,
    /// Instances removed (by `Deregister` or `NodeGone`).
    pub removed: usize,
}

/// The registry's content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    /// Instances by service name, then instance id.
    pub services: BTreeMap<String, BTreeMap<String, ServiceInstance>>,
    /// Last health report of each node.
    pub health: BTreeMap<String, HealthReport>,
    /// The latest leader record.
    pub leader: Option<LeaderRecord>,
}

impl Registry {
    /// Applies `command` and says what it did.
    pub fn apply(&mut self, command: &Command) -> Applied {
        match command {
            Command::Register(instance) => {
                let slot = self
                    .services
                    .entry(instance.name.clone())
                    .or_default()
                    .insert(instance.id.clone(), instance.clone());
                Applied {
                    changed: slot.as_ref() != Some(instance),
                    removed: 0,
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
                Applied {
                    changed: removed > 0,
                    removed,
                }
            }
            Command::NodeGone {
                node,
                status,
                at_ms,
            } => {
                let mut removed = 0;
                for instances in self.services.values_mut() {
                    let before = instances.len();
                    instances.retain(|_, i| !(i.ephemeral && &i.node == node));
                    removed += before - instances.len();
                }
                self.services.retain(|_, instances| !instances.is_empty());
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
                }
            }
            Command::ReportHealth { node, report } => {
                let old = self.health.insert(node.clone(), report.clone());
                Applied {
                    changed: old.as_ref() != Some(report),
                    removed: 0,
                }
            }
            Command::Leader(record) => {
                let changed = self.leader.as_ref() != Some(record);
                self.leader = Some(record.clone());
                Applied {
                    changed,
                    removed: 0,
                }
            }
        }
    }

    /// Whether `node` has ephemeral instances.
    pub fn has_ephemeral_on(&self, node: &str) -> bool {
        self.services
            .values()
            .flat_map(BTreeMap::values)
            .any(|i| i.ephemeral && i.node == node)
    }

    /// Every node that has ephemeral instances.
    pub fn nodes_with_ephemeral(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self
            .services
            .values()
            .flat_map(BTreeMap::values)
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

    fn instance(name: &str, id: &str, node: &str, ephemeral: bool) -> ServiceInstance {
        ServiceInstance {
            name: name.into(),
            id: id.into(),
            address: "10.0.0.1".into(),
            port: 80,
            tags: vec![],
            node: node.into(),
            ephemeral,
        }
    }

    #[test]
    fn a_gone_node_takes_only_its_ephemeral_instances_with_it() {
        let mut r = Registry::default();
        r.apply(&Command::Register(instance("api", "1", "n1", true)));
        r.apply(&Command::Register(instance("api", "2", "n1", false)));
        r.apply(&Command::Register(instance("db", "1", "n2", true)));
        let applied = r.apply(&Command::NodeGone {
            node: "n1".into(),
            status: "dead".into(),
            at_ms: 1,
        });
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
        r.apply(&Command::Register(instance("api", "1", "n1", false)));
        let gone = r.apply(&Command::Deregister {
            name: "api".into(),
            id: "1".into(),
        });
        assert!(gone.changed);
        assert!(r.services.is_empty());
        let again = r.apply(&Command::Deregister {
            name: "api".into(),
            id: "1".into(),
        });
        assert!(!again.changed);
    }
}
