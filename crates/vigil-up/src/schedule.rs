//! The scheduling core: which service may start now, what each event means for the services and
//! groups waiting on it, and whether the stack is up, up but degraded, or failed.
//!
//! It does no I/O and reads no clock: the driver feeds it events stamped with the time since the
//! start, and asks it which services to launch. A service is launched the moment its own
//! dependencies are satisfied and a concurrency slot is free ([`Mode::Graph`]); [`Mode::Waves`]
//! instead holds each dependency level back until every earlier level has settled, the schedule
//! that vigil is compared against.
//!
//! ```
//! use std::path::Path;
//! use std::time::Duration;
//! use vigil_up::schedule::{Event, Mode, Scheduler};
//!
//! let stack = vigil_up::parse::parse(
//!     "[services.db]\ncommand = [\"db\"]\n[services.api]\ncommand = [\"api\"]\ndepends_on = [\"db\"]\n",
//!     "stack.toml",
//!     Path::new("."),
//! )?;
//! let mut scheduler = Scheduler::new(stack, Mode::Graph, None);
//! let first = scheduler.startable(Duration::ZERO);
//! assert_eq!(first.len(), 1); // db only: api waits for it
//! scheduler.record(first[0], Duration::from_millis(5), Event::Started);
//! assert_eq!(scheduler.startable(Duration::from_millis(5)).len(), 1); // now api
//! # Ok::<(), vigil_up::StackErrors>(())
//! ```

use std::time::Duration;

use crate::graph;
use crate::stack::{Condition, GroupId, GroupPolicy, ServiceId, Stack, Target};

/// How services are released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Each service as soon as its own dependencies are satisfied.
    Graph,
    /// Level by level: a level starts when every service of the levels before it has settled.
    Waves,
}

/// What happened to a service, as its runner reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Its process (or container) is running (each attempt).
    Started,
    /// It passed its health probe.
    Healthy,
    /// It failed its health probe `retries` times in a row after it had been healthy.
    Unhealthy {
        /// The last probe's message.
        reason: String,
    },
    /// Its process (or container) exited, with any status; `Completed` follows a status 0.
    Exited {
        /// `status 1`, `signal 9`, ...
        description: String,
    },
    /// It exited with status 0.
    Completed,
    /// It exited or turned unhealthy and will be started again after a backoff.
    Restarting {
        /// Why, for people.
        reason: String,
    },
    /// It will not be started again: its restarts are used up or its policy says no.
    Failed {
        /// Why, for people.
        reason: String,
    },
}

/// Where a service stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for its dependencies (or a free slot).
    Waiting,
    /// Launched, not running yet (or between restarts).
    Starting,
    /// Running, not healthy yet.
    Started,
    /// Ready: healthy, or running when it has no health probe.
    Ready,
    /// Exited with status 0.
    Completed,
    /// Gave up.
    Failed,
}

impl Phase {
    /// The name shown in progress lines and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Starting => "starting",
            Phase::Started => "started",
            Phase::Ready => "ready",
            Phase::Completed => "completed",
            Phase::Failed => "failed",
        }
    }
}

/// What the scheduler saw of one service; times are since the start of `vigil up`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// When its dependencies were first all satisfied (it was ready to launch).
    pub eligible: Option<Duration>,
    /// When it was first launched (its dependencies were satisfied and a slot was free).
    pub launched: Option<Duration>,
    /// When it first ran.
    pub started: Option<Duration>,
    /// When it was first ready (healthy, or started without a probe).
    pub ready: Option<Duration>,
    /// When it first passed its health probe.
    pub healthy: Option<Duration>,
    /// When it exited with status 0.
    pub completed: Option<Duration>,
    /// When it gave up.
    pub failed: Option<Duration>,
    /// Starts attempted (1 + restarts).
    pub attempts: u32,
    /// Restarts, with the reason of each.
    pub restarts: Vec<String>,
    /// Why it failed.
    pub failure: Option<String>,
}

impl Record {
    /// When it settled: ready, completed or failed, whichever came first.
    pub fn settled(&self) -> Option<Duration> {
        [self.ready, self.completed, self.failed]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Something the person watching must be told, beyond a service's own progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A service failed, but the groups it belongs to still meet their policy: dependants go on.
    Degraded {
        /// The service that failed.
        service: String,
        /// What still holds, for people.
        message: String,
    },
    /// The start cannot succeed any more.
    Fatal {
        /// Why, for people.
        message: String,
    },
}

/// How a start ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every service settled; `degraded` lists what failed without failing the start.
    Up {
        /// One message per tolerated failure.
        degraded: Vec<String>,
    },
    /// The start failed.
    Failed {
        /// Why, for people (the first fatal problem first).
        reasons: Vec<String>,
    },
}

/// The scheduling state of one `vigil up`.
#[derive(Debug)]
pub struct Scheduler {
    stack: Stack,
    mode: Mode,
    limit: Option<usize>,
    levels: Vec<usize>,
    phases: Vec<Phase>,
    records: Vec<Record>,
    reached_started: Vec<bool>,
    reached_healthy: Vec<bool>,
    degraded: Vec<String>,
    fatal: Vec<String>,
}

impl Scheduler {
    /// A scheduler for `stack`. `limit` caps the services starting at once; without it the
    /// stack's own `concurrency` applies, if any.
    pub fn new(stack: Stack, mode: Mode, limit: Option<usize>) -> Self {
        let n = stack.services.len();
        let limit = limit.or(stack.concurrency);
        Scheduler {
            levels: graph::levels(&stack),
            stack,
            mode,
            limit,
            phases: vec![Phase::Waiting; n],
            records: vec![Record::default(); n],
            reached_started: vec![false; n],
            reached_healthy: vec![false; n],
            degraded: Vec::new(),
            fatal: Vec::new(),
        }
    }

    /// Most services starting at once, if limited.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// The stack being started.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// Where a service stands.
    pub fn phase(&self, id: ServiceId) -> Phase {
        self.phases[id.0]
    }

    /// What was seen of each service, in stack order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Services launched and not yet settled: they hold a concurrency slot.
    pub fn in_flight(&self) -> usize {
        self.phases
            .iter()
            .filter(|p| matches!(p, Phase::Starting | Phase::Started))
            .count()
    }

    /// The services to launch now, in stack order; each is marked launched at `at`. Nothing is
    /// released once the start has failed.
    pub fn startable(&mut self, at: Duration) -> Vec<ServiceId> {
        let mut launch = Vec::new();
        if !self.fatal.is_empty() {
            return launch;
        }
        let mut in_flight = self.in_flight();
        for i in 0..self.stack.services.len() {
            let id = ServiceId(i);
            if self.phases[i] != Phase::Waiting || !self.may_start(id) {
                continue;
            }
            // Held back by the limit from here on, which the report's hints tell.
            self.records[i].eligible.get_or_insert(at);
            if self.limit.is_some_and(|limit| in_flight >= limit) {
                continue;
            }
            self.phases[i] = Phase::Starting;
            self.records[i].launched = Some(at);
            self.records[i].attempts = 1;
            in_flight += 1;
            launch.push(id);
        }
        launch
    }

    fn may_start(&self, id: ServiceId) -> bool {
        let deps_met = self
            .stack
            .service(id)
            .depends_on
            .iter()
            .all(|d| self.satisfied(d.target, d.condition));
        match self.mode {
            Mode::Graph => deps_met,
            Mode::Waves => {
                let level = self.levels[id.0];
                deps_met
                    && (0..self.stack.services.len())
                        .filter(|&j| self.levels[j] < level)
                        .all(|j| self.settled(ServiceId(j)))
            }
        }
    }

    fn meets(&self, id: ServiceId, condition: Condition) -> bool {
        match condition {
            Condition::Started => self.reached_started[id.0],
            Condition::Healthy => self.reached_healthy[id.0],
            Condition::Completed => self.records[id.0].completed.is_some(),
        }
    }

    /// Whether the service can still come to meet `condition`.
    fn can_meet(&self, id: ServiceId, condition: Condition) -> bool {
        if self.meets(id, condition) {
            return true;
        }
        match self.phases[id.0] {
            Phase::Failed => false,
            // A service that exited cleanly is never healthy afterwards.
            Phase::Completed => condition != Condition::Healthy,
            _ => true,
        }
    }

    fn settled(&self, id: ServiceId) -> bool {
        matches!(
            self.phases[id.0],
            Phase::Ready | Phase::Completed | Phase::Failed
        )
    }

    fn satisfied(&self, target: Target, condition: Condition) -> bool {
        match target {
            Target::Service(id) => self.meets(id, condition),
            Target::Group(id) => {
                let group = self.stack.group(id);
                if group.policy == GroupPolicy::Optional {
                    return group
                        .members
                        .iter()
                        .all(|&m| self.meets(m, condition) || !self.can_meet(m, condition));
                }
                let met = group
                    .members
                    .iter()
                    .filter(|&&m| self.meets(m, condition))
                    .count();
                met >= group.policy.needed(group.members.len())
            }
        }
    }

    /// Records what a service's runner reported at `at`, and returns what must be said about it.
    pub fn record(&mut self, id: ServiceId, at: Duration, event: Event) -> Vec<Notice> {
        let i = id.0;
        let has_health = self.stack.service(id).has_health();
        let record = &mut self.records[i];
        match event {
            Event::Started => {
                record.started.get_or_insert(at);
                self.reached_started[i] = true;
                if !has_health {
                    self.reached_healthy[i] = true;
                    record.ready.get_or_insert(at);
                    self.phases[i] = Phase::Ready;
                } else if self.phases[i] != Phase::Ready {
                    self.phases[i] = Phase::Started;
                }
            }
            Event::Healthy => {
                record.healthy.get_or_insert(at);
                record.ready.get_or_insert(at);
                self.reached_healthy[i] = true;
                self.phases[i] = Phase::Ready;
            }
            Event::Completed => {
                record.completed.get_or_insert(at);
                if self.phases[i] != Phase::Ready {
                    self.phases[i] = Phase::Completed;
                }
            }
            // What follows (a restart, a failure) is what the start is decided on.
            Event::Unhealthy { .. } | Event::Exited { .. } => {}
            Event::Restarting { reason } => {
                record.attempts += 1;
                record.restarts.push(reason);
                if !matches!(self.phases[i], Phase::Ready | Phase::Completed) {
                    self.phases[i] = Phase::Starting;
                }
            }
            Event::Failed { reason } => {
                let was_ready = self.phases[i] == Phase::Ready;
                record.failed.get_or_insert(at);
                record.failure = Some(reason);
                if !was_ready {
                    self.phases[i] = Phase::Failed;
                }
            }
        }
        self.check_consequences(id)
    }

    /// After a service changed: is the start now impossible, or degraded?
    fn check_consequences(&mut self, id: ServiceId) -> Vec<Notice> {
        let mut notices = Vec::new();
        let name = self.stack.service(id).name.clone();
        let phase = self.phases[id.0];
        if !matches!(phase, Phase::Failed | Phase::Completed) {
            return notices;
        }
        let reason = self.records[id.0]
            .failure
            .clone()
            .unwrap_or_else(|| "it exited".to_owned());

        // Dependants that name this service directly and can never be satisfied.
        let mut fatal = Vec::new();
        for dependant in &self.stack.services {
            for d in &dependant.depends_on {
                if d.target == Target::Service(id) && !self.can_meet(id, d.condition) {
                    fatal.push(if phase == Phase::Completed {
                        format!(
                            "{} cannot start: {name} exited before it was {} (it waits for {name} to be {})",
                            dependant.name,
                            d.condition.as_str(),
                            d.condition.as_str()
                        )
                    } else {
                        format!(
                            "{} cannot start: its dependency {name} failed: {reason}",
                            dependant.name
                        )
                    });
                }
            }
        }
        if phase == Phase::Failed {
            let groups: Vec<(GroupId, String, GroupPolicy, usize)> = self
                .stack
                .groups_of(id)
                .map(|(gid, g)| (gid, g.name.clone(), g.policy, g.members.len()))
                .collect();
            if groups.is_empty() {
                fatal.push(format!("{name} failed: {reason}"));
            }
            let mut still = Vec::new();
            for (gid, group_name, policy, members) in groups {
                let failed: Vec<&str> = self
                    .stack
                    .group(gid)
                    .members
                    .iter()
                    .filter(|&&m| self.phases[m.0] == Phase::Failed)
                    .map(|&m| self.stack.service(m).name.as_str())
                    .collect();
                let needed = policy.needed(members);
                if members - failed.len() < needed {
                    fatal.push(format!(
                        "group {group_name} needs {} but {} of {members} failed ({}); last: {name}: {reason}",
                        policy.describe(members),
                        failed.len(),
                        failed.join(", ")
                    ));
                } else {
                    still.push(format!(
                        "group {group_name} ({}) still holds with {} of {members} left",
                        policy.describe(members),
                        members - failed.len()
                    ));
                }
            }
            if fatal.is_empty() {
                let message = format!("{name} failed ({reason}); {}", still.join("; "));
                self.degraded.push(message.clone());
                notices.push(Notice::Degraded {
                    service: name,
                    message,
                });
            }
        }
        for message in fatal {
            if !self.fatal.contains(&message) {
                self.fatal.push(message.clone());
                notices.push(Notice::Fatal { message });
            }
        }
        notices
    }

    /// `None` while services are still on their way; then how the start ended.
    pub fn outcome(&self) -> Option<Outcome> {
        if !self.fatal.is_empty() {
            return Some(Outcome::Failed {
                reasons: self.fatal.clone(),
            });
        }
        let all_settled = (0..self.phases.len()).all(|i| self.settled(ServiceId(i)));
        all_settled.then(|| Outcome::Up {
            degraded: self.degraded.clone(),
        })
    }

    /// Services that were launched at least once, in stack order (what must be stopped).
    pub fn launched(&self) -> Vec<ServiceId> {
        (0..self.phases.len())
            .filter(|&i| self.records[i].launched.is_some())
            .map(ServiceId)
            .collect()
    }
}
