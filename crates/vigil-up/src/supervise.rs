//! The supervision core: what each service is doing once the stack has started (running, waiting,
//! restarting, exited, failed; healthy or not; how often it was restarted), and what its
//! dependants must do when a dependency stops meeting their condition, per their
//! `on_dependency_unhealthy` policy. Like [`crate::schedule`], it does no I/O and reads no clock:
//! the driver feeds it the runners' events and carries out the [`Action`]s it returns.
//!
//! ```
//! use std::path::Path;
//! use vigil_up::schedule::Event;
//! use vigil_up::stack::ServiceId;
//! use vigil_up::supervise::{Action, Supervisor};
//!
//! let stack = vigil_up::parse::parse(
//!     "[services.db]\ncommand = [\"db\"]\n[services.api]\ncommand = [\"api\"]\n\
//!      depends_on = [\"db\"]\non_dependency_unhealthy = \"restart\"\n",
//!     "stack.toml",
//!     Path::new("."),
//! )?;
//! let (db, api) = (ServiceId(0), ServiceId(1));
//! let mut supervisor = Supervisor::new(&stack);
//! supervisor.record(&stack, db, &Event::Started);
//! supervisor.record(&stack, api, &Event::Started);
//! supervisor.arm(&stack);
//! let exited = Event::Exited { description: "status 1".into() };
//! assert!(matches!(supervisor.record(&stack, db, &exited)[..], [Action::Wait { .. }]));
//! assert!(matches!(supervisor.record(&stack, db, &Event::Started)[..], [Action::Restart { .. }]));
//! # Ok::<(), vigil_up::StackErrors>(())
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::schedule::Event;
use crate::stack::{
    Condition, GroupPolicy, OnDependencyUnhealthy, RestartPolicy, ServiceId, Stack, Target,
};

/// What a service's process is doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Not launched yet: waiting for its dependencies or a free slot.
    #[default]
    Pending,
    /// Running.
    Running,
    /// Between a stop and the next start (a backoff, or a restart asked for).
    Restarting,
    /// Exited and not restarted (yet).
    Exited,
    /// Exited with status 0, for good.
    Completed,
    /// Given up on: its restarts are used up, or its policy says no.
    Failed,
}

impl RunState {
    /// The word `vigil ps` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Pending => "pending",
            RunState::Running => "running",
            RunState::Restarting => "restarting",
            RunState::Exited => "exited",
            RunState::Completed => "completed",
            RunState::Failed => "failed",
        }
    }
}

/// What its health probe last said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    /// It has no health probe.
    #[default]
    None,
    /// Started, not healthy yet.
    Starting,
    /// Passed its probe.
    Healthy,
    /// Failed its probe `retries` times in a row.
    Unhealthy,
}

impl HealthState {
    /// The word `vigil ps` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::None => "-",
            HealthState::Starting => "starting",
            HealthState::Healthy => "healthy",
            HealthState::Unhealthy => "unhealthy",
        }
    }
}

/// One service as supervised: what the state file records for `vigil ps`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// What its process is doing.
    pub state: RunState,
    /// What its probe says.
    pub health: HealthState,
    /// Restarts since `vigil up` began, whatever their cause.
    pub restarts: u32,
    /// The dependencies it waits for, after startup, while they do not meet its condition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_on: Vec<String>,
    /// How its last process ended (`status 1`, `signal 9`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
}

impl Status {
    /// The state as shown: `waiting` while it waits on a dependency, else its process's state.
    pub fn shown(&self) -> &'static str {
        if self.waiting_on.is_empty() {
            self.state.as_str()
        } else {
            "waiting"
        }
    }
}

/// What the driver must do about a dependant after a dependency changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The service's dependencies named in `on` no longer meet its condition: it is marked
    /// waiting (and, under the `restart` policy, restarted once they do again).
    Wait {
        /// The dependant.
        service: ServiceId,
        /// The dependencies it waits for.
        on: Vec<String>,
        /// Its policy (`wait` or `restart`).
        policy: OnDependencyUnhealthy,
    },
    /// Every dependency of a waiting service meets its condition again; it goes on as it was
    /// (policy `wait`).
    Resume {
        /// The dependant.
        service: ServiceId,
    },
    /// Every dependency of a waiting service meets its condition again: restart it now
    /// (policy `restart`).
    Restart {
        /// The dependant.
        service: ServiceId,
    },
}

impl Action {
    /// The service it is about.
    pub fn service(&self) -> ServiceId {
        match self {
            Action::Wait { service, .. }
            | Action::Resume { service }
            | Action::Restart { service } => *service,
        }
    }

    /// What to tell people about it.
    pub fn describe(&self) -> String {
        match self {
            Action::Wait { on, policy, .. } => {
                let then = match policy {
                    OnDependencyUnhealthy::Restart => "; restarts once they are back",
                    _ => "",
                };
                format!("waiting: dependency {} is down{then}", on.join(", "))
            }
            Action::Resume { .. } => "dependencies are back; no longer waiting".to_owned(),
            Action::Restart { .. } => "dependencies are back; restarting it".to_owned(),
        }
    }
}

/// The supervision state of a whole stack.
#[derive(Debug)]
pub struct Supervisor {
    statuses: Vec<Status>,
    /// Whether dependants follow their policy yet: only after the start.
    armed: bool,
}

impl Supervisor {
    /// Every service pending.
    pub fn new(stack: &Stack) -> Self {
        Supervisor {
            statuses: vec![Status::default(); stack.services.len()],
            armed: false,
        }
    }

    /// Every service's status, in stack order.
    pub fn statuses(&self) -> &[Status] {
        &self.statuses
    }

    /// The start has ended: from now on a dependency that stops meeting a dependant's condition
    /// makes the dependant follow its policy. During the start, the scheduler alone decides.
    pub fn arm(&mut self, stack: &Stack) -> Vec<Action> {
        self.armed = true;
        // A dependency that is already down when the start ends holds its dependants at once.
        let all: Vec<ServiceId> = (0..stack.services.len()).map(ServiceId).collect();
        self.follow(stack, &all)
    }

    /// Records what a service's runner reported, and returns what its dependants must do.
    pub fn record(&mut self, stack: &Stack, id: ServiceId, event: &Event) -> Vec<Action> {
        let has_health = stack.service(id).has_health();
        let status = &mut self.statuses[id.0];
        match event {
            Event::Started => {
                status.state = RunState::Running;
                status.health = if has_health {
                    HealthState::Starting
                } else {
                    HealthState::None
                };
            }
            Event::Healthy => status.health = HealthState::Healthy,
            Event::Unhealthy { .. } => status.health = HealthState::Unhealthy,
            Event::Exited { description } => {
                status.state = RunState::Exited;
                status.last_exit = Some(description.clone());
            }
            Event::Completed => status.state = RunState::Completed,
            Event::Restarting { .. } => {
                status.state = RunState::Restarting;
                status.restarts += 1;
                if has_health {
                    status.health = HealthState::Starting;
                }
            }
            Event::Failed { .. } => status.state = RunState::Failed,
        }
        if !self.armed {
            return Vec::new();
        }
        self.follow(stack, &dependants_of(stack, id))
    }

    /// What `services` must do now: each remembers what it waits on, so only a change acts.
    fn follow(&mut self, stack: &Stack, services: &[ServiceId]) -> Vec<Action> {
        let mut actions = Vec::new();
        for &d in services {
            let policy = stack.service(d).on_dependency_unhealthy;
            if policy == OnDependencyUnhealthy::Ignore
                || matches!(
                    self.statuses[d.0].state,
                    RunState::Pending | RunState::Completed | RunState::Failed
                )
            {
                continue;
            }
            let now = self.unmet(stack, d);
            let status = &mut self.statuses[d.0];
            if !now.is_empty() && status.waiting_on != now {
                status.waiting_on.clone_from(&now);
                actions.push(Action::Wait {
                    service: d,
                    on: now,
                    policy,
                });
            } else if now.is_empty() && !status.waiting_on.is_empty() {
                status.waiting_on.clear();
                actions.push(match policy {
                    OnDependencyUnhealthy::Restart => Action::Restart { service: d },
                    _ => Action::Resume { service: d },
                });
            }
        }
        actions
    }

    /// The names of a service's dependencies that do not meet its condition now.
    fn unmet(&self, stack: &Stack, id: ServiceId) -> Vec<String> {
        stack
            .service(id)
            .depends_on
            .iter()
            .filter(|d| !self.satisfied(stack, d.target, d.condition))
            .map(|d| match d.target {
                Target::Service(s) => stack.service(s).name.clone(),
                Target::Group(g) => stack.group(g).name.clone(),
            })
            .collect()
    }

    fn meets(&self, stack: &Stack, id: ServiceId, condition: Condition) -> bool {
        let status = &self.statuses[id.0];
        let running = status.state == RunState::Running;
        match condition {
            Condition::Started => running,
            Condition::Healthy => {
                running
                    && (!stack.service(id).has_health() || status.health == HealthState::Healthy)
            }
            // A one-shot job that completed once has done what its dependants waited for.
            Condition::Completed => true,
        }
    }

    fn satisfied(&self, stack: &Stack, target: Target, condition: Condition) -> bool {
        match target {
            Target::Service(id) => self.meets(stack, id, condition),
            Target::Group(g) => {
                let group = stack.group(g);
                let met = group
                    .members
                    .iter()
                    .filter(|&&m| self.meets(stack, m, condition))
                    .count();
                group.policy == GroupPolicy::Optional
                    || met >= group.policy.needed(group.members.len())
            }
        }
    }
}

/// The services that depend on `id`, directly or through a group it is a member of.
fn dependants_of(stack: &Stack, id: ServiceId) -> Vec<ServiceId> {
    (0..stack.services.len())
        .map(ServiceId)
        .filter(|&d| {
            stack
                .service(d)
                .depends_on
                .iter()
                .any(|dep| match dep.target {
                    Target::Service(s) => s == id,
                    Target::Group(g) => stack.group(g).members.contains(&id),
                })
        })
        .collect()
}

/// Restarts in a row after an attempt that stayed ready for `stayed_ready` (`None`: it never
/// was): an attempt that stayed ready for the policy's `backoff_max` starts the count afresh, so
/// a service that fails now and then is always restarted, while one that cannot stay up is given
/// up on after `max_restarts`, and its backoff keeps growing meanwhile.
pub fn restarts_in_a_row(
    previous: u32,
    stayed_ready: Option<Duration>,
    policy: &RestartPolicy,
) -> u32 {
    match stayed_ready {
        Some(ready_for) if ready_for >= policy.backoff_max => 0,
        _ => previous,
    }
}
