//! A test bench for a few [`Node`]s in virtual time, in the manner of quinn-proto's `Pair`: it
//! carries every output of every node at once — datagrams, push-pull exchanges, connection
//! attempts — and moves time forward from one deadline to the next.
//!
//! Links are instant and lossless. A host is up (its node runs, or was killed and its port
//! refuses connections) or silent: what is sent to it is lost and it sends nothing, and
//! connections to it are accepted by its kernel if only its process is frozen, or meet silence
//! if the host is cut off. Enough to hold each protocol rule to its effect; the
//! simulator (`vigil-sim`) is the place for latency, loss and scale.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::event::Event;
use crate::id::NodeId;
use crate::member::{Member, MemberState, Metadata};
use crate::node::{Identity, Node};
use crate::output::{Output, Reachability};

/// One host of the bench.
struct Host {
    addr: SocketAddr,
    /// The running process; `None` once killed.
    node: Option<Node>,
    /// Whether it takes part, and if not, whether its kernel still answers.
    presence: Presence,
    /// Every event its node reported, oldest first.
    events: Vec<Event>,
    /// Whether its node said it has departed.
    departed: bool,
}

/// What a host does for the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Presence {
    /// Its node runs and its datagrams flow.
    Running,
    /// Its process is frozen: no datagram reaches the node and it does nothing, but its kernel
    /// completes TCP handshakes.
    Frozen,
    /// The host is gone or cut off: nothing answers at its address.
    CutOff,
}

/// A few nodes on instant links, in virtual time.
pub(crate) struct Bench {
    pub(crate) now: Instant,
    hosts: Vec<Host>,
}

impl Bench {
    /// `n` nodes named `n0`, `n1`, … with default tunables, none joined yet.
    pub(crate) fn new(n: usize) -> Bench {
        let now = Instant::now();
        let mut bench = Bench {
            now,
            hosts: Vec::new(),
        };
        for i in 0..n {
            bench.hosts.push(Host {
                addr: Self::addr(i),
                node: None,
                presence: Presence::Running,
                events: Vec::new(),
                departed: false,
            });
            bench.start(i, 1);
        }
        bench
    }

    /// `n` nodes that have all joined through `n0` and see each other alive.
    pub(crate) fn joined(n: usize) -> Bench {
        let mut bench = Bench::new(n);
        for i in 1..n {
            bench.join(i);
        }
        bench.run_for(Duration::from_millis(500));
        for i in 0..n {
            for j in (0..n).filter(|&j| j != i) {
                assert_eq!(
                    bench.state(i, j),
                    Some(MemberState::Alive),
                    "n{i} sees n{j}"
                );
            }
        }
        bench.clear_events();
        bench
    }

    /// Starts a new process for host `i` at `incarnation` (not joined).
    pub(crate) fn start(&mut self, i: usize, incarnation: u64) {
        self.start_with(i, incarnation, Config::default());
    }

    /// [`Bench::start`] with `config`.
    pub(crate) fn start_with(&mut self, i: usize, incarnation: u64, config: Config) {
        let identity = Identity {
            id: Self::id(i),
            addr: self.hosts[i].addr,
            incarnation,
        };
        let seed = [i as u8 + 1; 32];
        let node = Node::new(identity, Metadata::default(), config, None, seed, self.now);
        self.hosts[i].node = Some(node);
        self.hosts[i].departed = false;
    }

    /// The id of host `i`'s node.
    pub(crate) fn id(i: usize) -> NodeId {
        NodeId::new(format!("n{i}"))
    }

    /// Host `i`'s gossip address.
    pub(crate) fn addr(i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 7000 + i as u16))
    }

    /// A member as host `i`'s node would first be seen.
    pub(crate) fn member(i: usize) -> Member {
        Member {
            id: Self::id(i),
            addr: Self::addr(i),
            incarnation: 1,
            state: MemberState::Alive,
            meta: Metadata::default(),
            meta_version: 0,
            state_since: Instant::now(),
            last_heard: None,
        }
    }

    /// Host `i`'s node joins through `n0`.
    pub(crate) fn join(&mut self, i: usize) {
        self.join_through(i, 0);
    }

    /// Host `i`'s node joins through host `seed`'s.
    pub(crate) fn join_through(&mut self, i: usize, seed: usize) {
        let (now, seed) = (self.now, self.hosts[seed].addr);
        self.node(i).join(now, &[seed]);
        self.deliver();
    }

    /// Host `i`'s running node.
    pub(crate) fn node(&mut self, i: usize) -> &mut Node {
        self.hosts[i].node.as_mut().expect("a running node")
    }

    /// Kills host `i`'s process: its host stays up and refuses connections.
    pub(crate) fn kill(&mut self, i: usize) {
        self.hosts[i].node = None;
    }

    /// Freezes host `i`'s process, cuts the host off, or brings it back.
    pub(crate) fn set_presence(&mut self, i: usize, presence: Presence) {
        self.hosts[i].presence = presence;
        if presence == Presence::Running {
            self.timeout(i);
            self.deliver();
        }
    }

    /// How host `i` sees host `j`'s member.
    pub(crate) fn state(&self, i: usize, j: usize) -> Option<MemberState> {
        let node = self.hosts[i].node.as_ref()?;
        node.member(&Self::id(j)).map(|m| m.state)
    }

    /// Host `i`'s running node, to look at.
    pub(crate) fn peek(&self, i: usize) -> &Node {
        self.hosts[i].node.as_ref().expect("a running node")
    }

    /// The events host `i` has reported since the last [`Bench::clear_events`].
    pub(crate) fn events(&self, i: usize) -> &[Event] {
        &self.hosts[i].events
    }

    /// Forgets every reported event.
    pub(crate) fn clear_events(&mut self) {
        for host in &mut self.hosts {
            host.events.clear();
        }
    }

    /// Whether host `i`'s node said it has departed.
    pub(crate) fn departed(&self, i: usize) -> bool {
        self.hosts[i].departed
    }

    /// Runs every deadline due within the next `d`.
    pub(crate) fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = (0..self.hosts.len())
                .filter_map(|i| Some((self.active(i)?.poll_timeout()?, i)))
                .min();
            match next {
                Some((at, i)) if at <= end => {
                    self.now = self.now.max(at);
                    self.timeout(i);
                    self.deliver();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    /// Runs in steps of 10 ms until `done` holds; how long that took. Panics if it does not
    /// within `max`.
    pub(crate) fn run_until(&mut self, max: Duration, done: impl Fn(&Bench) -> bool) -> Duration {
        let start = self.now;
        while !done(self) {
            assert!(self.now - start < max, "not done within {max:?}");
            self.run_for(Duration::from_millis(10));
        }
        self.now - start
    }

    /// Host `i`'s node if it runs and takes part.
    fn active(&self, i: usize) -> Option<&Node> {
        let host = &self.hosts[i];
        host.node
            .as_ref()
            .filter(|_| host.presence == Presence::Running)
    }

    fn timeout(&mut self, i: usize) {
        let now = self.now;
        if let Some(node) = self.hosts[i].node.as_mut() {
            node.handle_timeout(now);
        }
    }

    fn index_of(&self, addr: SocketAddr) -> Option<usize> {
        self.hosts.iter().position(|h| h.addr == addr)
    }

    /// Carries every output of every node until none is left.
    pub(crate) fn deliver(&mut self) {
        let now = self.now;
        loop {
            let mut pending = Vec::new();
            for i in 0..self.hosts.len() {
                if let Some(node) = self.hosts[i].node.as_mut() {
                    pending.extend(std::iter::from_fn(|| node.poll()).map(|o| (i, o)));
                }
            }
            if pending.is_empty() {
                return;
            }
            for (from, output) in pending {
                self.carry(now, from, output);
            }
        }
    }

    fn carry(&mut self, now: Instant, from: usize, output: Output) {
        let from_addr = self.hosts[from].addr;
        match output {
            Output::Transmit(transmit) => {
                let to = self.index_of(transmit.to);
                if let Some(node) = to.and_then(|to| self.reachable(from, to)) {
                    let _ = node.handle_packet(now, from_addr, &transmit.payload);
                }
            }
            Output::Exchange(exchange) => {
                let state = self.node(from).sync_payload();
                let to = self.index_of(exchange.peer);
                let answer = to.and_then(|to| self.reachable(from, to)).and_then(|peer| {
                    peer.handle_sync(now, from_addr, &state).ok()?;
                    Some(peer.sync_payload())
                });
                let node = self.node(from);
                match answer {
                    Some(answer) => {
                        let _ = node.handle_sync_answer(now, exchange.id, &answer);
                    }
                    None => node.handle_sync_failed(now, exchange.id),
                }
            }
            Output::Reachability(check) => {
                let outcome = match self.index_of(check.addr).map(|to| &self.hosts[to]) {
                    Some(host) if host.presence == Presence::CutOff => check.on_silence,
                    Some(host) if host.node.is_none() => Reachability::Refused,
                    Some(_) => Reachability::Accepting,
                    None => Reachability::Unknown,
                };
                self.node(from)
                    .handle_reachability(now, check.probe, outcome);
            }
            Output::Event(event) => self.hosts[from].events.push(event),
            Output::Departed => self.hosts[from].departed = true,
        }
    }

    /// Host `to`'s node, if what `from` sends reaches it.
    fn reachable(&mut self, from: usize, to: usize) -> Option<&mut Node> {
        if [from, to]
            .iter()
            .any(|&i| self.hosts[i].presence != Presence::Running)
        {
            return None;
        }
        self.hosts[to].node.as_mut()
    }
}
