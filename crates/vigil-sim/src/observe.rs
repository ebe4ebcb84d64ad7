//! What a simulation lets a test see: every membership event with its virtual time, traffic
//! counters, and the questions a user would ask ("does everyone know?", "how long did it take?",
//! "was a healthy node ever accused?").

use std::collections::HashSet;
use std::time::Duration;

use vigil_gossip::{MemberState, Node};

use crate::sim::Sim;

/// A simulated host's process, as the simulator left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Its start time has not come yet.
    NotStarted,
    /// Running normally.
    Running,
    /// Frozen (SIGSTOP): alive, but neither its timers nor its socket are served.
    Paused,
    /// Left gracefully and still lingering to spread the news.
    Leaving,
    /// Killed: gone until restarted.
    Killed,
    /// Left gracefully and exited.
    Left,
    /// Not a node of the simulation (an id nobody has).
    Unknown,
}

impl Status {
    /// Alive as a process (running or paused): wrongly declared dead if anyone says so.
    pub fn is_alive(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

/// Which membership event a [`Record`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// [`Event::MemberUp`](vigil_gossip::Event::MemberUp).
    Up,
    /// [`Event::MemberUpdated`](vigil_gossip::Event::MemberUpdated).
    Updated,
    /// [`Event::MemberSuspect`](vigil_gossip::Event::MemberSuspect).
    Suspect,
    /// [`Event::MemberAlive`](vigil_gossip::Event::MemberAlive).
    Alive,
    /// [`Event::MemberDown`](vigil_gossip::Event::MemberDown).
    Down,
    /// [`Event::MemberLeft`](vigil_gossip::Event::MemberLeft).
    Left,
    /// [`Event::Refuted`](vigil_gossip::Event::Refuted): the subject is the observer itself.
    Refuted,
}

/// One membership event one node reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Virtual time.
    pub at: Duration,
    /// The node that reported it.
    pub observer: usize,
    /// What it was.
    pub kind: Kind,
    /// The member it is about, `None` if no node of the simulation has its id.
    pub subject: Option<usize>,
    /// The member's incarnation in the event (the new one for `Refuted`).
    pub incarnation: u64,
    /// The member's metadata version in the event.
    pub meta_version: u64,
    /// What the subject's process really was doing at that moment.
    pub subject_status: Status,
}

/// Traffic of one simulated host, counted by the simulator on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Datagrams sent (lost ones included).
    pub packets_sent: u64,
    /// Bytes of datagrams sent.
    pub bytes_sent: u64,
    /// Datagrams that reached the process.
    pub packets_received: u64,
    /// Bytes of datagrams that reached the process.
    pub bytes_received: u64,
    /// Push-pull exchanges opened.
    pub syncs_opened: u64,
    /// Push-pull bytes sent, both roles.
    pub sync_bytes_sent: u64,
    /// Push-pull bytes received, both roles.
    pub sync_bytes_received: u64,
    /// Frames the node refused (wrong key, malformed).
    pub rejected: u64,
}

impl Traffic {
    /// Every byte sent, datagrams and push-pull.
    pub fn total_sent(&self) -> u64 {
        self.bytes_sent + self.sync_bytes_sent
    }
}

impl Sim {
    /// Number of hosts (every index ever used).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the simulation has no host at all.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// What host `i`'s process is doing.
    pub fn status(&self, i: usize) -> Status {
        self.slots[i].status
    }

    /// Host `i`'s state machine, while its process exists.
    pub fn node(&self, i: usize) -> Option<&Node> {
        self.slots[i].node.as_ref()
    }

    /// Host `i`'s wire traffic.
    pub fn traffic(&self, i: usize) -> Traffic {
        self.slots[i].traffic
    }

    /// Every event every node reported, in virtual-time order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The cluster's live hosts: running or paused, outsiders excluded.
    pub fn live(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| !self.slots[i].outsider && self.slots[i].status.is_alive())
            .collect()
    }

    /// What `observer` believes of `subject`: `None` if it does not know it (or is not running).
    pub fn view(&self, observer: usize, subject: usize) -> Option<MemberState> {
        let node = self.slots[observer].node.as_ref()?;
        node.member(&self.slots[subject].id).map(|m| m.state)
    }

    /// Live nodes whose set of active members (alive or suspect) is not exactly the other live
    /// nodes, with how many they miss and how many they wrongly count.
    pub fn unconverged(&self) -> Vec<(usize, usize, usize)> {
        let live = self.live();
        let live_set: HashSet<usize> = live.iter().copied().collect();
        let mut out = Vec::new();
        for &i in &live {
            let Some(node) = self.slots[i].node.as_ref() else {
                continue;
            };
            let mut known = 0;
            let mut extra = 0;
            for m in node.members().filter(|m| m.state.is_active()) {
                match self.by_id.get(&m.id) {
                    Some(s) if live_set.contains(s) => known += 1,
                    _ => extra += 1,
                }
            }
            let missing = live.len() - 1 - known;
            if missing > 0 || extra > 0 {
                out.push((i, missing, extra));
            }
        }
        out
    }

    /// Whether every live node's active members are exactly the other live nodes, and every node
    /// of the cluster has started.
    /// Never while a node of the cluster has yet to start.
    pub fn converged(&self) -> bool {
        !self.starting() && self.every_view(|state| state.is_active())
    }

    /// Whether a node of the cluster has yet to start.
    pub fn starting(&self) -> bool {
        self.slots
            .iter()
            .any(|s| !s.outsider && s.status == Status::NotStarted)
    }

    /// Whether every live node believes every other live node is alive (not even suspect).
    pub fn all_alive(&self) -> bool {
        !self.starting() && self.every_view(|state| state == MemberState::Alive)
    }

    /// Whether every live node's active members are exactly the other live nodes, each in a
    /// state `wanted` accepts. One pass over each view that stops at the first node found
    /// wanting: joins poll this every step, and at thousands of nodes a full pairwise check
    /// would cost more than the simulation it polls.
    fn every_view(&self, wanted: impl Fn(MemberState) -> bool) -> bool {
        let live = self.live();
        let mut is_live = vec![false; self.slots.len()];
        for &i in &live {
            is_live[i] = true;
        }
        live.iter().all(|&i| {
            let Some(node) = self.slots[i].node.as_ref() else {
                // No view to check (as in `unconverged`).
                return true;
            };
            let mut known = 0;
            for m in node.members().filter(|m| m.state.is_active()) {
                match self.by_id.get(&m.id) {
                    Some(&s) if is_live[s] && wanted(m.state) => known += 1,
                    _ => return false,
                }
            }
            known == live.len() - 1
        })
    }

    /// For each live node other than `subject`, the first time at or after `since` it reported
    /// an event about `subject` that `matches`.
    pub fn first_seen(
        &self,
        subject: usize,
        since: Duration,
        matches: impl Fn(&Record) -> bool,
    ) -> Vec<(usize, Option<Duration>)> {
        let mut first: Vec<Option<Duration>> = vec![None; self.slots.len()];
        for r in self
            .records
            .iter()
            .filter(|r| r.at >= since && r.subject == Some(subject))
        {
            if first[r.observer].is_none() && matches(r) {
                first[r.observer] = Some(r.at);
            }
        }
        self.live()
            .into_iter()
            .filter(|&i| i != subject)
            .map(|i| (i, first[i].map(|t| t - since)))
            .collect()
    }

    /// How long after `since` every live node other than `subject` had reported an event about
    /// it that `matches` (e.g. `Down`); `None` if some have not yet.
    pub fn time_until_all(
        &self,
        subject: usize,
        since: Duration,
        matches: impl Fn(&Record) -> bool,
    ) -> Option<Duration> {
        let seen = self.first_seen(subject, since, matches);
        seen.iter()
            .try_fold(Duration::ZERO, |max, (_, t)| t.map(|t| max.max(t)))
    }

    /// How long after `since` a `fraction` (e.g. 0.99) of the live nodes other than `subject`
    /// had reported an event about it that `matches`; `None` if too few have yet.
    pub fn time_until_fraction(
        &self,
        subject: usize,
        since: Duration,
        fraction: f64,
        matches: impl Fn(&Record) -> bool,
    ) -> Option<Duration> {
        let seen = self.first_seen(subject, since, matches);
        let needed = ((seen.len() as f64) * fraction).ceil() as usize;
        let mut times: Vec<Duration> = seen.iter().filter_map(|(_, t)| *t).collect();
        if needed == 0 {
            return Some(Duration::ZERO);
        }
        if times.len() < needed {
            return None;
        }
        times.sort();
        Some(times[needed - 1])
    }

    /// Suspicions and failures reported, at or after `since`, about a member whose process was
    /// running and not paused at that moment: false alarms a user would notice. Outsiders'
    /// reports are left out.
    pub fn false_suspicions(&self, since: Duration) -> Vec<Record> {
        self.records
            .iter()
            .filter(|r| r.at >= since && !self.slots[r.observer].outsider)
            .filter(|r| {
                matches!(r.kind, Kind::Suspect | Kind::Down) && r.subject_status == Status::Running
            })
            .copied()
            .collect()
    }

    /// `Down` reported, at or after `since`, about a member whose process was alive (running or
    /// paused) at that moment: a live node wrongly declared failed.
    pub fn wrongly_down(&self, since: Duration) -> Vec<Record> {
        self.records
            .iter()
            .filter(|r| r.at >= since && !self.slots[r.observer].outsider)
            .filter(|r| r.kind == Kind::Down && r.subject_status.is_alive())
            .copied()
            .collect()
    }

    /// Records of one kind at or after `since`.
    pub fn count(&self, kind: Kind, since: Duration) -> usize {
        self.records
            .iter()
            .filter(|r| r.at >= since && r.kind == kind)
            .count()
    }
}
