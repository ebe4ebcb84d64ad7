//! The validated stack: services, how each is launched and judged healthy, what it waits for, how
//! it is restarted, and the groups services may depend on as a whole.
//!
//! A [`Stack`] is only ever built by a parser ([`crate::parse`] for stack files, [`crate::compose`]
//! for compose files) that has already checked every name, duration and condition and proven the
//! dependency graph acyclic, so the scheduler can index it without checks.

use std::path::PathBuf;
use std::time::Duration;

use vigil_probe::ProbeSpec;

use crate::register::Registration;

/// Index of a service in [`Stack::services`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId(pub usize);

/// Index of a group in [`Stack::groups`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub usize);

/// A whole stack, services in file order.
#[derive(Clone, Debug)]
pub struct Stack {
    /// Every service, in the order of the file.
    pub services: Vec<Service>,
    /// Every group, in the order of the file.
    pub groups: Vec<Group>,
    /// Most services starting at once (launched but not yet ready); `None` = no limit.
    pub concurrency: Option<usize>,
}

impl Stack {
    /// The service with this name.
    pub fn service_id(&self, name: &str) -> Option<ServiceId> {
        self.services
            .iter()
            .position(|s| s.name == name)
            .map(ServiceId)
    }

    /// The service behind an id.
    pub fn service(&self, id: ServiceId) -> &Service {
        &self.services[id.0]
    }

    /// The group behind an id.
    pub fn group(&self, id: GroupId) -> &Group {
        &self.groups[id.0]
    }

    /// Every group that has this service as a member.
    pub fn groups_of(&self, id: ServiceId) -> impl Iterator<Item = (GroupId, &Group)> {
        self.groups
            .iter()
            .enumerate()
            .filter(move |(_, g)| g.members.contains(&id))
            .map(|(i, g)| (GroupId(i), g))
    }
}

/// One service of the stack.
#[derive(Clone, Debug)]
pub struct Service {
    /// Unique name.
    pub name: String,
    /// How it is started.
    pub launch: Launch,
    /// How it is judged healthy; `None`: ready as soon as it has started.
    pub health: Option<Health>,
    /// What must be true before it starts.
    pub depends_on: Vec<Dependency>,
    /// What happens when it exits or turns unhealthy.
    pub restart: RestartPolicy,
    /// How long it gets between SIGTERM and SIGKILL when stopped (default 10s).
    pub stop_grace: Duration,
    /// The service instance it is registered as while it runs, if any.
    pub register: Option<Registration>,
    /// What happens to it, after startup, when something it depends on stops meeting its
    /// condition (default [`OnDependencyUnhealthy::Wait`]).
    pub on_dependency_unhealthy: OnDependencyUnhealthy,
}

/// What a running service does when one of its dependencies turns unhealthy or exits after
/// startup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnDependencyUnhealthy {
    /// Restart it once every dependency meets its condition again.
    Restart,
    /// Leave it running, marked as waiting until every dependency meets its condition again.
    #[default]
    Wait,
    /// Nothing.
    Ignore,
}

impl OnDependencyUnhealthy {
    /// The name used in stack files.
    pub fn as_str(self) -> &'static str {
        match self {
            OnDependencyUnhealthy::Restart => "restart",
            OnDependencyUnhealthy::Wait => "wait",
            OnDependencyUnhealthy::Ignore => "ignore",
        }
    }

    /// The policy written `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Restart, Self::Wait, Self::Ignore]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

impl Service {
    /// Whether the service reports health (so `healthy` means more than `started`).
    pub fn has_health(&self) -> bool {
        self.health.is_some()
    }
}

/// How a service is started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Launch {
    /// A local process.
    Command(CommandSpec),
    /// A service of a compose file, started through docker compose.
    Compose {
        /// The service's name in the compose file.
        service: String,
    },
}

/// A local process: argv, extra environment and working directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    /// Program and arguments; never empty. No shell is involved.
    pub argv: Vec<String>,
    /// Variables added to vigil's own environment.
    pub env: Vec<(String, String)>,
    /// Working directory (relative paths in the stack file are relative to the file's directory).
    pub workdir: Option<PathBuf>,
}

/// How a service's health is judged.
#[derive(Clone, Debug)]
pub struct Health {
    /// What is looked at.
    pub check: HealthCheck,
    /// Time between probes once the service has been healthy (default 5s).
    pub interval: Duration,
    /// Longest a probe may take (default 2s).
    pub timeout: Duration,
    /// Consecutive failures, once the start period is over, that make the service unhealthy
    /// (default 3).
    pub retries: u32,
    /// Failures in this time after each start do not count (default 30s).
    pub start_period: Duration,
    /// Time between probes until the service is first healthy (default 100ms).
    pub start_interval: Duration,
}

/// What a health probe looks at.
#[derive(Clone, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per service, built once and never moved in a hot path"
)]
pub enum HealthCheck {
    /// A vigil probe target.
    Probe(ProbeSpec),
    /// The container's own health status, as `docker inspect` reports it (compose services).
    Container,
}

/// What a dependant waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Condition {
    /// The dependency's process (or container) is running.
    Started,
    /// The dependency passed its health probe (or started, when it has none).
    Healthy,
    /// The dependency exited with status 0.
    Completed,
}

impl Condition {
    /// The name used in stack files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Started => "started",
            Condition::Healthy => "healthy",
            Condition::Completed => "completed",
        }
    }
}

/// What a dependency points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// One service.
    Service(ServiceId),
    /// A group, satisfied according to its policy.
    Group(GroupId),
}

/// One `depends_on` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// The service or group waited for.
    pub target: Target,
    /// What it must reach.
    pub condition: Condition,
}

/// When a service is started again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartMode {
    /// Never: an exit or a failed start is final.
    No,
    /// After a non-zero exit, or turning unhealthy.
    OnFailure,
    /// After any exit, or turning unhealthy.
    Always,
}

impl RestartMode {
    /// The name used in stack files.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartMode::No => "no",
            RestartMode::OnFailure => "on-failure",
            RestartMode::Always => "always",
        }
    }
}

/// A restart policy with exponential backoff and jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    /// When to restart.
    pub mode: RestartMode,
    /// Most restarts in a row, without the service staying ready for `backoff_max` in between,
    /// before it counts as failed (default 3).
    pub max_restarts: u32,
    /// Delay before the first restart (default 200ms); doubles each time.
    pub backoff: Duration,
    /// Longest delay between restarts (default 10s).
    pub backoff_max: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            mode: RestartMode::OnFailure,
            max_restarts: 3,
            backoff: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
        }
    }
}

impl RestartPolicy {
    /// The delay before restart number `restart` (1-based): `backoff × 2^(restart-1)` capped at
    /// `backoff_max`, then scaled by `jitter` in `0.5..=1.0` so restarts of many services spread out.
    pub fn delay(&self, restart: u32, jitter: f64) -> Duration {
        let doubling = 2u32.saturating_pow(restart.saturating_sub(1).min(20));
        let delay = self.backoff.saturating_mul(doubling).min(self.backoff_max);
        delay.mul_f64(jitter.clamp(0.5, 1.0))
    }
}

/// A named set of services depended on as a whole.
#[derive(Clone, Debug)]
pub struct Group {
    /// Unique name (shared with no service).
    pub name: String,
    /// Its services, in the order written.
    pub members: Vec<ServiceId>,
    /// How many members must meet a dependant's condition.
    pub policy: GroupPolicy,
}

/// How many members of a group must meet a dependant's condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupPolicy {
    /// Every member; one failure fails the start.
    All,
    /// A strict majority (2 of 3, 3 of 5); failures beyond that fail the start.
    Quorum,
    /// At least this many.
    MinHealthy(usize),
    /// None: dependants wait until every member is ready or has failed, and go on either way.
    Optional,
}

impl GroupPolicy {
    /// Members that must meet the condition, out of `members`.
    pub fn needed(self, members: usize) -> usize {
        match self {
            GroupPolicy::All => members,
            GroupPolicy::Quorum => members / 2 + 1,
            GroupPolicy::MinHealthy(n) => n,
            GroupPolicy::Optional => 0,
        }
    }

    /// How the policy is written in reports.
    pub fn describe(self, members: usize) -> String {
        match self {
            GroupPolicy::All => format!("all {members}"),
            GroupPolicy::Quorum => format!("quorum, {} of {members}", self.needed(members)),
            GroupPolicy::MinHealthy(n) => format!("min_healthy = {n} of {members}"),
            GroupPolicy::Optional => "optional".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_shortens_it() {
        let policy = RestartPolicy {
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_millis(500),
            ..RestartPolicy::default()
        };
        assert_eq!(policy.delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(policy.delay(2, 1.0), Duration::from_millis(200));
        assert_eq!(policy.delay(3, 1.0), Duration::from_millis(400));
        assert_eq!(policy.delay(4, 1.0), Duration::from_millis(500));
        assert_eq!(policy.delay(40, 1.0), Duration::from_millis(500));
        assert_eq!(policy.delay(2, 0.5), Duration::from_millis(100));
        assert_eq!(policy.delay(2, 0.0), Duration::from_millis(100));
    }

    #[test]
    fn quorum_is_a_strict_majority() {
        assert_eq!(GroupPolicy::Quorum.needed(3), 2);
        assert_eq!(GroupPolicy::Quorum.needed(4), 3);
        assert_eq!(GroupPolicy::Quorum.needed(5), 3);
        assert_eq!(GroupPolicy::Optional.needed(3), 0);
    }
}
