//! The discrete-event loop: nodes, their timers, datagrams and push-pull exchanges in flight,
//! and the faults a test injects.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::{ChaCha20Rng, ChaCha8Rng};
use vigil_gossip::crypto::Keyring;
use vigil_gossip::{
    Event, Exchange, Identity, Metadata, Node, NodeId, Output, Reachability, ReachabilityCheck,
    Transmit,
};

use crate::config::{Link, NodeOptions, SimConfig};
use crate::net::{Network, RuleId};
use crate::observe::{Kind, Record, Status, Traffic};

/// The gossip address of node `index`: `10.a.b.c:7946` from `index + 1`. Purely virtual: the
/// simulator never opens a socket.
pub fn addr_of(index: usize) -> SocketAddr {
    let n = (index + 1) as u32;
    let ip = Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8);
    SocketAddr::V4(SocketAddrV4::new(ip, 7946))
}

/// The id of node `index`: `node-<index>`.
pub fn id_of(index: usize) -> NodeId {
    NodeId::new(format!("node-{index}"))
}

/// A fault or command to carry out at a virtual time, see [`Sim::schedule`].
#[derive(Clone, Debug)]
pub enum Action {
    /// [`Sim::pause`].
    Pause(usize),
    /// [`Sim::resume`].
    Resume(usize),
    /// [`Sim::kill`].
    Kill(usize),
    /// [`Sim::crash`].
    Crash(usize),
    /// [`Sim::restart`].
    Restart(usize),
    /// [`Sim::leave`].
    Leave(usize),
    /// [`Sim::set_metadata`].
    SetMetadata(usize, Metadata),
    /// [`Sim::heal`].
    Heal,
}

/// Something that happens at a virtual time.
enum Ev {
    Start(usize),
    Timer {
        node: usize,
        token: u64,
    },
    /// Something reaches node `to`'s sockets.
    Arrive {
        to: usize,
        what: Inbound,
    },
    StopLeaving(usize),
    Action(Action),
}

struct Entry {
    at: Duration,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed: the heap pops the earliest entry, the first scheduled among equals.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Where the answer to a push-pull exchange goes: the exchange, in the life of the process that
/// opened it (a restarted process never reads its past life's connections).
#[derive(Clone, Copy)]
struct Reply {
    exchange: u32,
    life: u64,
}

/// What reaches a node's sockets, and waits in their buffers while it is paused.
enum Inbound {
    Datagram {
        from: usize,
        payload: Vec<u8>,
    },
    SyncRequest {
        from: usize,
        payload: Vec<u8>,
        opened: Duration,
        reply: Reply,
    },
    SyncReply {
        payload: Vec<u8>,
        reply: Reply,
    },
    /// The end, without an answer, of an exchange the node opened: refused, or timed out (a
    /// no-op if its answer came first).
    SyncFailed {
        reply: Reply,
    },
    Reachability {
        probe: u32,
        outcome: Reachability,
    },
}

/// Whether a host whose node is not running answers connections to the node's port.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Host {
    /// Up: it refuses them (TCP reset) — the process is gone, the machine is not.
    Up,
    /// Down or cut off: nothing answers.
    Down,
}

/// One simulated host: a node's address and id, and the node while its process runs.
pub(crate) struct Slot {
    pub(crate) id: NodeId,
    pub(crate) addr: SocketAddr,
    pub(crate) keyring: Option<Keyring>,
    pub(crate) outsider: bool,
    pub(crate) status: Status,
    pub(crate) node: Option<Node>,
    pub(crate) traffic: Traffic,
    host: Host,
    lives: u64,
    join: bool,
    inbox: VecDeque<Inbound>,
    inbox_bytes: usize,
    timer_token: u64,
    timer_at: Option<Duration>,
}

/// A deterministic simulation of a vigil cluster in virtual time. See the crate documentation.
pub struct Sim {
    pub(crate) config: SimConfig,
    base: Instant,
    pub(crate) now: Duration,
    queue: BinaryHeap<Entry>,
    seq: u64,
    rng: ChaCha8Rng,
    net: Network,
    pub(crate) slots: Vec<Slot>,
    by_addr: HashMap<SocketAddr, usize>,
    pub(crate) by_id: HashMap<NodeId, usize>,
    pub(crate) records: Vec<Record>,
    seeds: Vec<SocketAddr>,
    events_handled: u64,
}

impl Sim {
    /// A cluster of `config.nodes` nodes, each starting (and joining through the seeds) at its
    /// start time; nothing runs until [`Sim::run_for`].
    pub fn new(config: SimConfig) -> Sim {
        let mut sim = Sim {
            base: Instant::now(),
            now: Duration::ZERO,
            queue: BinaryHeap::new(),
            seq: 0,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            net: Network::new(config.link),
            slots: Vec::with_capacity(config.nodes),
            by_addr: HashMap::new(),
            by_id: HashMap::new(),
            records: Vec::new(),
            seeds: (0..config.seeds.min(config.nodes)).map(addr_of).collect(),
            events_handled: 0,
            config,
        };
        for i in 0..sim.config.nodes {
            let keyring = sim.config.keyring.clone();
            let index = sim.push_slot(id_of(i), keyring, false, true);
            let start = if i < sim.config.seeds || sim.config.join_spread.is_zero() {
                Duration::ZERO
            } else {
                sim.config.join_spread.mul_f64(sim.rng.random::<f64>())
            };
            sim.push(start, Ev::Start(index));
        }
        sim
    }

    fn push_slot(
        &mut self,
        id: NodeId,
        keyring: Option<Keyring>,
        outsider: bool,
        join: bool,
    ) -> usize {
        let index = self.slots.len();
        let addr = addr_of(index);
        self.by_addr.insert(addr, index);
        self.by_id.insert(id.clone(), index);
        self.slots.push(Slot {
            id,
            addr,
            keyring,
            outsider,
            status: Status::NotStarted,
            node: None,
            traffic: Traffic::default(),
            host: Host::Up,
            lives: 0,
            join,
            inbox: VecDeque::new(),
            inbox_bytes: 0,
            timer_token: 0,
            timer_at: None,
        });
        index
    }

    /// Adds a node (index `len()` before the call) that starts now, with its own keyring; the
    /// way to bring in an intruder or a node with the wrong key.
    pub fn add_node(&mut self, options: NodeOptions) -> usize {
        let index = self.slots.len();
        let index = self.push_slot(
            NodeId::new(format!("node-{index}")),
            options.keyring,
            options.outsider,
            options.join,
        );
        self.start(index);
        index
    }

    // ----- time -----

    /// Virtual time since the start.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The `Instant` nodes are given for virtual time `at`.
    pub fn instant(&self, at: Duration) -> Instant {
        self.base + at
    }

    /// Runs every event due within the next `d`.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs every event due up to virtual time `t`.
    pub fn run_until(&mut self, t: Duration) {
        while self.queue.peek().is_some_and(|e| e.at <= t) {
            let Some(entry) = self.queue.pop() else { break };
            self.now = entry.at;
            self.events_handled += 1;
            self.dispatch(entry.ev);
        }
        self.now = self.now.max(t);
    }

    /// Runs in steps of `step` until `done` holds (checked after each step) or `max` has passed;
    /// returns the virtual time it took, `None` if it never held.
    pub fn run_until_true(
        &mut self,
        max: Duration,
        step: Duration,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> Option<Duration> {
        let start = self.now;
        while self.now - start < max {
            self.run_for(step);
            if done(self) {
                return Some(self.now - start);
            }
        }
        None
    }

    /// Events handled so far (timers, datagrams, exchanges), for throughput figures.
    pub fn events_handled(&self) -> u64 {
        self.events_handled
    }

    /// Carries out `action` at virtual time `at` (now if `at` has passed).
    pub fn schedule(&mut self, at: Duration, action: Action) {
        self.push(at.max(self.now), Ev::Action(action));
    }

    fn push(&mut self, at: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.push(Entry {
            at,
            seq: self.seq,
            ev,
        });
    }

    // ----- faults and commands -----

    /// Freezes a node as SIGSTOP would: its timers stop and inbound datagrams queue in its
    /// socket buffer (up to [`SimConfig::socket_buffer`] bytes) until [`Sim::resume`].
    pub fn pause(&mut self, i: usize) {
        if self.slots[i].status == Status::Running {
            self.slots[i].status = Status::Paused;
        }
    }

    /// Thaws a paused node. Like a driver's `select!` over its socket and its timer, it handles a
    /// random number of the queued datagrams (geometric, mean one), then its overdue timer, then
    /// the rest of the burst, all at the current time.
    pub fn resume(&mut self, i: usize) {
        if self.slots[i].status != Status::Paused {
            return;
        }
        self.slots[i].status = Status::Running;
        let inbox = std::mem::take(&mut self.slots[i].inbox);
        self.slots[i].inbox_bytes = 0;
        let mut before_timer = 0;
        while self.rng.random::<bool>() {
            before_timer += 1;
        }
        let mut timer_done = false;
        for (n, inbound) in inbox.into_iter().enumerate() {
            if n == before_timer {
                self.fire_timer(i);
                timer_done = true;
            }
            self.receive(i, inbound);
        }
        if !timer_done {
            self.fire_timer(i);
        }
    }

    /// Kills a node's process: it stops at once, and whatever was queued for it is lost. Its host
    /// stays up, so connections to the node's port are refused from then on.
    pub fn kill(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        if slot.status == Status::NotStarted {
            // Its start is cancelled: a process killed before it ran never runs.
            slot.status = Status::Killed;
            return;
        }
        if slot.node.is_none() {
            return;
        }
        slot.node = None;
        slot.status = Status::Killed;
        slot.inbox.clear();
        slot.inbox_bytes = 0;
        slot.timer_token += 1;
        slot.timer_at = None;
    }

    /// Kills a node's host: like [`Sim::kill`], but nothing answers on its address any more (a
    /// power cut, a kernel panic, a host cut off by the network) until [`Sim::restart`].
    pub fn crash(&mut self, i: usize) {
        self.kill(i);
        self.slots[i].host = Host::Down;
    }

    /// Starts a new process for a killed or departed node: same id and address, a new
    /// incarnation (the wall-clock second), joining through the seeds.
    pub fn restart(&mut self, i: usize) {
        if self.slots[i].node.is_some() {
            self.kill(i);
        }
        self.start(i);
    }

    /// Makes a node leave gracefully; its process exits once the members it handed its
    /// departure to have answered ([`Output::Departed`]), or [`SimConfig::leave_linger`] later.
    pub fn leave(&mut self, i: usize) {
        let now = self.instant(self.now);
        let Some(node) = self.slots[i].node.as_mut() else {
            return;
        };
        node.leave(now);
        self.slots[i].status = Status::Leaving;
        self.after_call(i);
        self.push(self.now + self.config.leave_linger, Ev::StopLeaving(i));
    }

    /// Changes a node's metadata, which it then spreads.
    pub fn set_metadata(&mut self, i: usize, meta: Metadata) {
        let now = self.instant(self.now);
        let Some(node) = self.slots[i].node.as_mut() else {
            return;
        };
        node.set_metadata(now, meta);
        self.after_call(i);
    }

    /// Runs `f` on a node's state machine (if its process runs), then carries out whatever it
    /// asked for. The escape hatch for commands the simulator has no helper for.
    pub fn with_node<T>(&mut self, i: usize, f: impl FnOnce(&mut Node, Instant) -> T) -> Option<T> {
        let now = self.instant(self.now);
        let out = f(self.slots[i].node.as_mut()?, now);
        self.after_call(i);
        Some(out)
    }

    /// Blocks every datagram and stream from any node of `from` to any node of `to` (a one-way
    /// partition; streams need both directions, so push-pull between them fails too).
    pub fn block(&mut self, from: &[usize], to: &[usize]) -> RuleId {
        self.net.block(from, to)
    }

    /// Splits `a` from `b` both ways.
    pub fn partition(&mut self, a: &[usize], b: &[usize]) -> [RuleId; 2] {
        [self.net.block(a, b), self.net.block(b, a)]
    }

    /// Lifts one blocking rule.
    pub fn unblock(&mut self, rule: RuleId) {
        self.net.unblock(rule);
    }

    /// Lifts every blocking rule.
    pub fn heal(&mut self) {
        self.net.heal();
    }

    /// Sets the link every pair uses unless overridden.
    pub fn set_default_link(&mut self, link: Link) {
        self.net.set_default(link);
    }

    /// Overrides the directed link `from → to`.
    pub fn set_link(&mut self, from: usize, to: usize, link: Link) {
        self.net.set_link(from, to, link);
    }

    // ----- the loop -----

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Start(i) => {
                if self.slots[i].status == Status::NotStarted {
                    self.start(i);
                }
            }
            Ev::Timer { node, token } => {
                let slot = &mut self.slots[node];
                if slot.timer_token == token {
                    slot.timer_at = None;
                    if slot.status == Status::Running {
                        self.fire_timer(node);
                    }
                }
            }
            Ev::Arrive { to, what } => match self.slots[to].status {
                Status::Running | Status::Leaving => self.receive(to, what),
                Status::Paused => self.buffer(to, what),
                _ => {}
            },
            Ev::StopLeaving(i) => {
                if self.slots[i].status == Status::Leaving {
                    self.kill(i);
                    self.slots[i].status = Status::Left;
                }
            }
            Ev::Action(action) => match action {
                Action::Pause(i) => self.pause(i),
                Action::Resume(i) => self.resume(i),
                Action::Kill(i) => self.kill(i),
                Action::Crash(i) => self.crash(i),
                Action::Restart(i) => self.restart(i),
                Action::Leave(i) => self.leave(i),
                Action::SetMetadata(i, meta) => self.set_metadata(i, meta),
                Action::Heal => self.heal(),
            },
        }
    }

    /// Starts a node's process: a new state machine with a fresh seed and incarnation.
    fn start(&mut self, i: usize) {
        let now = self.instant(self.now);
        let slot = &mut self.slots[i];
        slot.lives += 1;
        let mut seeder = ChaCha20Rng::seed_from_u64(self.config.seed);
        seeder.set_stream(((i as u64) << 20) | slot.lives);
        let identity = Identity {
            id: slot.id.clone(),
            addr: slot.addr,
            incarnation: self.config.epoch_secs + self.now.as_secs(),
        };
        let mut node = Node::new(
            identity,
            Metadata::default(),
            self.config.gossip.clone(),
            slot.keyring.clone(),
            seeder.random(),
            now,
        );
        if slot.join {
            node.join(now, &self.seeds);
        }
        slot.node = Some(node);
        slot.host = Host::Up;
        slot.status = Status::Running;
        slot.inbox.clear();
        slot.inbox_bytes = 0;
        slot.timer_token += 1;
        slot.timer_at = None;
        self.after_call(i);
    }

    /// Hands what reached node `i` to its node.
    fn receive(&mut self, i: usize, what: Inbound) {
        match what {
            Inbound::Datagram { from, payload } => self.deliver_datagram(i, from, payload),
            Inbound::SyncRequest {
                from,
                payload,
                opened,
                reply,
            } => self.serve_sync(i, from, payload, opened, reply),
            Inbound::SyncReply { payload, reply } => self.deliver_sync_reply(i, payload, reply),
            Inbound::SyncFailed { reply } => self.deliver_sync_failed(i, reply),
            Inbound::Reachability { probe, outcome } => {
                self.deliver_reachability(i, probe, outcome)
            }
        }
    }

    /// Keeps what reached paused node `i` for when it resumes; datagrams beyond the socket
    /// buffer are dropped.
    fn buffer(&mut self, i: usize, what: Inbound) {
        let slot = &mut self.slots[i];
        if let Inbound::Datagram { payload, .. } = &what {
            if slot.inbox_bytes + payload.len() > self.config.socket_buffer {
                return;
            }
            slot.inbox_bytes += payload.len();
        }
        slot.inbox.push_back(what);
    }

    fn fire_timer(&mut self, i: usize) {
        let now = self.instant(self.now);
        if let Some(node) = self.slots[i].node.as_mut() {
            node.handle_timeout(now);
            self.after_call(i);
        }
    }

    fn deliver_datagram(&mut self, to: usize, from: usize, payload: Vec<u8>) {
        let now = self.instant(self.now);
        let from_addr = self.slots[from].addr;
        let slot = &mut self.slots[to];
        slot.traffic.packets_received += 1;
        slot.traffic.bytes_received += payload.len() as u64;
        if let Some(node) = slot.node.as_mut() {
            if node.handle_packet(now, from_addr, &payload).is_err() {
                slot.traffic.rejected += 1;
            }
            self.after_call(to);
        }
    }

    fn deliver_reachability(&mut self, to: usize, probe: u32, outcome: Reachability) {
        let now = self.instant(self.now);
        if let Some(node) = self.slots[to].node.as_mut() {
            node.handle_reachability(now, probe, outcome);
            self.after_call(to);
        }
    }

    /// The accepting side of a push-pull: reads the initiator's state, answers with its own
    /// (taken before merging, as memberlist does), then merges. A payload it cannot open closes
    /// the connection without an answer.
    fn serve_sync(
        &mut self,
        to: usize,
        from: usize,
        payload: Vec<u8>,
        opened: Duration,
        reply: Reply,
    ) {
        if self.now.saturating_sub(opened) > self.config.sync_timeout {
            return;
        }
        let now = self.instant(self.now);
        let from_addr = self.slots[from].addr;
        let slot = &mut self.slots[to];
        let Some(node) = slot.node.as_mut() else {
            return;
        };
        slot.traffic.sync_bytes_received += payload.len() as u64;
        let answer = node.sync_payload();
        let accepted = node.handle_sync(now, from_addr, &payload).is_ok();
        if !accepted {
            slot.traffic.rejected += 1;
        } else {
            slot.traffic.sync_bytes_sent += answer.len() as u64;
        }
        self.after_call(to);
        if accepted {
            if let Some(delay) = self.net.stream(&mut self.rng, to, from) {
                self.push(
                    self.now + delay,
                    Ev::Arrive {
                        to: from,
                        what: Inbound::SyncReply {
                            payload: answer,
                            reply,
                        },
                    },
                );
            }
        }
    }

    fn deliver_sync_reply(&mut self, to: usize, payload: Vec<u8>, reply: Reply) {
        let now = self.instant(self.now);
        let slot = &mut self.slots[to];
        if slot.lives != reply.life {
            return;
        }
        let Some(node) = slot.node.as_mut() else {
            return;
        };
        slot.traffic.sync_bytes_received += payload.len() as u64;
        if node
            .handle_sync_answer(now, reply.exchange, &payload)
            .is_err()
        {
            slot.traffic.rejected += 1;
        }
        self.after_call(to);
    }

    fn deliver_sync_failed(&mut self, to: usize, reply: Reply) {
        let now = self.instant(self.now);
        let slot = &mut self.slots[to];
        if slot.lives != reply.life {
            return;
        }
        if let Some(node) = slot.node.as_mut() {
            node.handle_sync_failed(now, reply.exchange);
            self.after_call(to);
        }
    }

    /// Carries out what node `i` asked for after a call — datagrams, exchanges, connection
    /// attempts, events, the end of a leave — and sets its next timer.
    fn after_call(&mut self, i: usize) {
        // Out of its slot while its outputs are carried out, which needs the whole simulation.
        let Some(mut node) = self.slots[i].node.take() else {
            return;
        };
        while let Some(output) = node.poll() {
            match output {
                Output::Transmit(transmit) => self.send_datagram(i, transmit),
                Output::Exchange(exchange) => {
                    let payload = node.sync_payload();
                    self.open_exchange(i, exchange, payload);
                }
                Output::Reachability(check) => self.check_reachability(i, check),
                Output::Event(event) => self.record(i, event),
                // Stopped from the queue: the process exits once this call is over.
                Output::Departed => self.push(self.now, Ev::StopLeaving(i)),
            }
        }
        let deadline = node
            .poll_timeout()
            .map(|t| t.saturating_duration_since(self.base));
        self.slots[i].node = Some(node);
        if let Some(deadline) = deadline {
            let deadline = deadline.max(self.now);
            let slot = &mut self.slots[i];
            if slot.timer_at != Some(deadline) {
                slot.timer_token += 1;
                slot.timer_at = Some(deadline);
                let token = slot.timer_token;
                self.push(deadline, Ev::Timer { node: i, token });
            }
        }
    }

    fn send_datagram(&mut self, i: usize, transmit: Transmit) {
        let slot = &mut self.slots[i];
        slot.traffic.packets_sent += 1;
        slot.traffic.bytes_sent += transmit.payload.len() as u64;
        let Some(&to) = self.by_addr.get(&transmit.to) else {
            return;
        };
        if let Some(delay) = self.net.datagram(&mut self.rng, i, to) {
            self.push(
                self.now + delay,
                Ev::Arrive {
                    to,
                    what: Inbound::Datagram {
                        from: i,
                        payload: transmit.payload,
                    },
                },
            );
        }
    }

    /// A push-pull exchange node `i` opens: the handshake's round trip, then the payload. Like
    /// the driver, the node gives up after [`SimConfig::sync_timeout`] whatever became of it,
    /// or after the round trip if the connection is refused.
    fn open_exchange(&mut self, i: usize, exchange: Exchange, payload: Vec<u8>) {
        self.slots[i].traffic.sync_bytes_sent += payload.len() as u64;
        self.slots[i].traffic.syncs_opened += 1;
        let reply = Reply {
            exchange: exchange.id,
            life: self.slots[i].lives,
        };
        self.push(
            self.now + self.config.sync_timeout,
            Ev::Arrive {
                to: i,
                what: Inbound::SyncFailed { reply },
            },
        );
        let Some((to, round_trip)) = self.handshake(i, exchange.peer) else {
            return;
        };
        let Some(c) = self.net.stream(&mut self.rng, i, to) else {
            return;
        };
        if self.slots[to].node.is_none() {
            // Connection refused: nothing listens.
            let what = Inbound::SyncFailed { reply };
            self.push(self.now + round_trip, Ev::Arrive { to: i, what });
            return;
        }
        self.push(
            self.now + round_trip + c,
            Ev::Arrive {
                to,
                what: Inbound::SyncRequest {
                    from: i,
                    payload,
                    opened: self.now,
                    reply,
                },
            },
        );
    }

    /// A TCP handshake from node `i` to `addr`: the node there and the round trip, if the network
    /// carries both ways.
    fn handshake(&mut self, i: usize, addr: SocketAddr) -> Option<(usize, Duration)> {
        let to = *self.by_addr.get(&addr)?;
        let there = self.net.stream(&mut self.rng, i, to)?;
        let back = self.net.stream(&mut self.rng, to, i)?;
        Some((to, there + back))
    }

    /// A TCP connection attempt from node `i`: the handshake's round trip decides, if the network
    /// carries it and it comes within the attempt's wait. What does not (a lost link, a host that
    /// is down) is the driver's timeout: silence from a host known to answer, which is delivered,
    /// or nothing the node can use, which is not.
    fn check_reachability(&mut self, i: usize, check: ReachabilityCheck) {
        let answer = self.handshake(i, check.addr).and_then(|(to, round_trip)| {
            let outcome = match (&self.slots[to].node, self.slots[to].host) {
                (Some(_), _) => Reachability::Accepting,
                (None, Host::Up) => Reachability::Refused,
                (None, Host::Down) => return None,
            };
            (round_trip <= check.wait).then_some((outcome, round_trip))
        });
        let (outcome, after) = match answer {
            Some(answer) => answer,
            None if check.on_silence == Reachability::Unknown => return,
            None => (check.on_silence, check.wait),
        };
        self.push(
            self.now + after,
            Ev::Arrive {
                to: i,
                what: Inbound::Reachability {
                    probe: check.probe,
                    outcome,
                },
            },
        );
    }

    fn record(&mut self, observer: usize, event: Event) {
        let (kind, member) = match event {
            Event::MemberUp(m) => (Kind::Up, m),
            Event::MemberUpdated(m) => (Kind::Updated, m),
            Event::MemberSuspect(m) => (Kind::Suspect, m),
            Event::MemberAlive(m) => (Kind::Alive, m),
            Event::MemberDown(m) => (Kind::Down, m),
            Event::MemberLeft(m) => (Kind::Left, m),
            Event::Refuted { incarnation } => {
                self.records.push(Record {
                    at: self.now,
                    observer,
                    kind: Kind::Refuted,
                    subject: Some(observer),
                    incarnation,
                    meta_version: 0,
                    subject_status: self.slots[observer].status,
                });
                return;
            }
        };
        let subject = self.by_id.get(&member.id).copied();
        self.records.push(Record {
            at: self.now,
            observer,
            kind,
            subject,
            incarnation: member.incarnation,
            meta_version: member.meta_version,
            subject_status: subject.map_or(Status::Unknown, |s| self.slots[s].status),
        });
    }
}
