//! The protocol state machine: one node's view of the cluster, driven by packets and time.
//!
//! A driver feeds it datagrams ([`Node::handle_packet`]), push-pull payloads
//! ([`Node::handle_sync`], [`Node::handle_sync_answer`]) and the passing of time
//! ([`Node::handle_timeout`] when [`Node::poll_timeout`] is due), and carries out each
//! [`Output`] that [`Node::poll`] hands it: datagrams to send, push-pull exchanges and connection
//! attempts to make, membership events to report, the end of a graceful leave. Every protocol
//! decision — which peers, how many exchanges at once, when — is taken here, with the node's
//! seeded RNG. Nothing here reads a clock, opens a socket or draws from the OS: the same node
//! runs under tokio in the agent and in virtual time in the simulator.
//!
//! Failure detection, in order:
//! 1. each member heartbeats to its `k` observers (its successors on a hash ring), every
//!    `heartbeat_interval`; any datagram from a member counts as a heartbeat;
//! 2. an observer's phi-accrual detector crosses `phi_threshold` → the observer pings the member
//!    directly and through `m` others;
//! 3. no ack within `probe_timeout` → the observer gossips `Suspect`; other observers that agree
//!    add independent confirmations;
//! 4. the member refutes with a higher incarnation, or its suspicion times out (Lifeguard: from
//!    `suspicion_max` down to `suspicion_min` as confirmations arrive) → `Dead`.
//!
//! A node that finds itself stalled (its timers fire late) stretches its own timeouts and does
//! not accuse others of the silence it caused (Lifeguard's local health).

use crate::version::{cluster_version, Advertised, Versions, DIGEST_SINCE, PROTOCOL_TAG};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::broadcast::Broadcasts;
use crate::config::Config;
use crate::crypto::{self, Keyring, SEAL_OVERHEAD};
use crate::event::{Event, Stats};
use crate::id::NodeId;
use crate::member::{must_refute, transition, Member, MemberState, Metadata, Transition};
use crate::message::{self, Body, DecodeError, Message, Packet, SyncHello, SyncState, Update};
use crate::output::{Exchange, Output, Reachability, Transmit};
use crate::phi::PhiDetector;
use crate::reach::{CheckKind, Reach};
use crate::replay::{ReplayGuard, Stamp};
use crate::stream::MAX_STATE;
use crate::timer::{Timer, Timers};

/// Who a node is, as its driver starts it.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Its unique name.
    pub id: NodeId,
    /// The address other members reach its gossip socket at.
    pub addr: SocketAddr,
    /// Its starting incarnation. Drivers use the wall-clock seconds at start, so a restarted node
    /// outranks what the cluster remembers of its previous life at once.
    pub incarnation: u64,
}

/// What a datagram from an observed member tells its failure detector.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SignOfLife {
    /// One of its periodic heartbeats: an interval of the period phi models.
    Heartbeat,
    /// Anything else it sent: it is alive, at no particular time.
    Other,
}

/// An indirect or direct probe this node runs against a member whose phi crossed the threshold.
struct Probe {
    target: NodeId,
    deadline: Instant,
}

/// A ping this node sends on behalf of another member's indirect probe.
struct Relay {
    origin: SocketAddr,
    origin_seq: u32,
    deadline: Instant,
}

/// A suspicion this node holds about a member, with Lifeguard's shrinking timeout.
struct Suspicion {
    started: Instant,
    incarnation: u64,
    confirmations: HashSet<NodeId>,
    deadline: Instant,
    /// This node's connection attempts found the member's host silent: with one more observer
    /// agreeing, it is dead without waiting out the timeout.
    host_silent: bool,
}

impl Suspicion {
    /// A suspicion raised at `now` by `from`, its first confirmation.
    fn new(now: Instant, incarnation: u64, from: NodeId, deadline: Instant) -> Suspicion {
        Suspicion {
            started: now,
            incarnation,
            confirmations: HashSet::from([from]),
            deadline,
            host_silent: false,
        }
    }
}

/// Why this node runs a push-pull exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// A periodic full sync, a join or a seed redial.
    Sync,
    /// Handing this node's departure to a member, whose answer confirms it knows.
    Leave,
}

/// A push-pull exchange this node asked for and whose end has not been reported.
struct Open {
    peer: SocketAddr,
    purpose: Purpose,
}

/// Where this node is in leaving the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Departure {
    /// Taking part.
    Staying,
    /// Left; waiting for the members it handed its departure to.
    Confirming,
    /// Left, and [`Output::Departed`] given.
    Departed,
}

/// Push-pull exchanges a node runs at once; periodic syncs beyond this are skipped (the next
/// round makes up for them).
const MAX_EXCHANGES: usize = 32;
/// How long a heartbeat's digest may differ from this node's, with nothing changing here, before
/// the two are made to sync: longer than news takes to reach every member.
const DIGEST_GRACE: Duration = Duration::from_millis(500);
/// The least time between two push-pull exchanges started over differing digests.
const DIGEST_SYNC_BACKOFF: Duration = Duration::from_secs(5);
/// Heartbeats an observer hears from a member before it measures how fast the member's host
/// answers a connection attempt (see [`crate::reach`]).
const BASELINE_AFTER_HEARTBEATS: u64 = 3;

/// One node of the membership protocol. See the module documentation.
pub struct Node {
    config: Config,
    me: NodeId,
    addr: SocketAddr,
    incarnation: u64,
    meta: Metadata,
    meta_version: u64,
    /// The highest protocol version each active member advertises (see [`crate::version`]).
    advertised: Advertised<NodeId>,
    departure: Departure,
    // Iteration order must never reach the outputs, or a node would behave differently between
    // runs with the same seed: std's `HashMap` iterates in a per-process random order. So
    // `members` (a hash map, for fast lookups) is never iterated where order matters — random
    // choices walk the ordered `ring`, push-pull payloads are sorted — and the small maps that
    // are iterated (detectors, probes, suspicions) are ordered.
    members: HashMap<NodeId, Member>,
    ring: BTreeSet<(u64, NodeId)>,
    detectors: BTreeMap<NodeId, PhiDetector>,
    probes: BTreeMap<u32, Probe>,
    probing: HashSet<NodeId>,
    suspected_by_me: HashSet<(NodeId, u64)>,
    relays: HashMap<u32, Relay>,
    suspicions: BTreeMap<NodeId, Suspicion>,
    reach: Reach,
    broadcasts: Broadcasts,
    keyring: Option<Keyring>,
    /// Refuses replayed frames; used only with a keyring, since without one anybody can forge
    /// frames and refusing replays would protect nothing.
    replay: ReplayGuard,
    /// This process's session: random, stamped on every message with [`Node::sent`] and the
    /// session clock (time since [`Node::born`]).
    session: u64,
    /// [`Node::digest`], until the members change.
    digest: Option<u32>,
    /// Since when heartbeats have carried a digest other than this node's, with this node's
    /// members unchanged.
    disagreeing_since: Option<Instant>,
    /// No push-pull exchange is started over differing digests before this.
    digest_sync_after: Instant,
    /// When this node's last periodic push-pull was due; `None` before the first.
    last_push_pull: Option<Instant>,
    /// Where in its first interval this node's first periodic push-pull falls (0.5–1.5).
    push_pull_phase: f64,
    sent: u64,
    born: Instant,
    /// The latest time an input brought: messages are stamped with it.
    clock: Instant,
    rng: ChaCha20Rng,
    seq: u32,
    seeds: Vec<SocketAddr>,
    timers: Timers,
    /// When the last gossip round ran: news of a failure brings the next round forward, but
    /// never closer than [`URGENT_GOSSIP_GAP`] to the last one.
    last_gossip: Instant,
    expected_wake: Option<Instant>,
    local_health: u32,
    outputs: VecDeque<Output>,
    /// Exchanges in flight, by id; ordered, as their purposes are counted.
    exchanges: BTreeMap<u32, Open>,
    exchange_seq: u32,
    stats: Stats,
}

impl Node {
    /// A node that knows only itself. Call [`Node::join`] to meet the cluster.
    ///
    /// `seed` feeds the node's random choices and encryption nonces: use 32 bytes from the OS in
    /// production, a fixed value in simulations.
    pub fn new(
        identity: Identity,
        meta: Metadata,
        config: Config,
        keyring: Option<Keyring>,
        seed: [u8; 32],
        now: Instant,
    ) -> Node {
        let mut node = Node {
            me: identity.id.clone(),
            addr: identity.addr,
            incarnation: identity.incarnation,
            meta: advertising(meta, config.versions),
            meta_version: 0,
            advertised: Advertised::default(),
            departure: Departure::Staying,
            members: HashMap::new(),
            ring: BTreeSet::new(),
            detectors: BTreeMap::new(),
            probes: BTreeMap::new(),
            probing: HashSet::new(),
            suspected_by_me: HashSet::new(),
            relays: HashMap::new(),
            suspicions: BTreeMap::new(),
            reach: Reach::default(),
            broadcasts: Broadcasts::default(),
            keyring,
            replay: ReplayGuard::new(now, config.max_frame_age),
            session: 0,
            digest: None,
            disagreeing_since: None,
            digest_sync_after: now,
            last_push_pull: None,
            push_pull_phase: 1.0,
            sent: 0,
            born: now,
            clock: now,
            rng: ChaCha20Rng::from_seed(seed),
            seq: 0,
            seeds: Vec::new(),
            timers: Timers::new(|timer| match timer {
                Timer::Heartbeat => now,
                Timer::Gossip => now + config.gossip_interval,
                Timer::Check => now + config.check_interval,
                Timer::PushPull => now + config.push_pull_interval,
                Timer::Redial => now + config.seed_redial_interval,
                Timer::Reap => now + config.reap_after,
                Timer::HealthDecay => now + HEALTH_DECAY,
            }),
            last_gossip: now,
            expected_wake: None,
            local_health: 0,
            outputs: VecDeque::new(),
            exchanges: BTreeMap::new(),
            exchange_seq: 0,
            stats: Stats::default(),
            config,
        };
        node.ring.insert((identity.id.ring_hash(), identity.id));
        // 32 random bits tell one process start from another as well as 64 do (the same draw
        // comes back once in four billion restarts), and a varint of them is 5 bytes instead of
        // 10 in every datagram: a fifth of an idle heartbeat.
        node.session = u64::from(node.rng.random::<u32>());
        // Nodes started together (a deploy, a simulation) would otherwise all push-pull at once,
        // forever: start each one's cycle at a random point.
        node.push_pull_phase = node.rng.random_range(0.5..1.5);
        let first_push_pull = now + node.config.push_pull_interval.mul_f64(node.push_pull_phase);
        node.timers.set(Timer::PushPull, first_push_pull);
        node
    }

    // ----- commands -----

    /// Meets the cluster through `seeds` (gossip addresses): a push-pull with each, now and again
    /// every `seed_redial_interval` while they are not active members.
    pub fn join(&mut self, now: Instant, seeds: &[SocketAddr]) {
        self.tick(now);
        self.seeds = seeds.iter().copied().filter(|s| *s != self.addr).collect();
        for seed in self.seeds.clone() {
            self.sync_with(seed);
        }
    }

    /// Leaves the cluster gracefully: tells `fanout` × 2 members at once over datagrams, hands
    /// its state (which now says "left") to `fanout` members in push-pull exchanges whose
    /// answers confirm they know, and stops heartbeating. Keep driving the node until
    /// [`Output::Departed`] (or a deadline of the driver's) so the news spreads before the process
    /// exits.
    pub fn leave(&mut self, now: Instant) {
        self.tick(now);
        if self.leaving() {
            return;
        }
        self.departure = Departure::Confirming;
        self.incarnation += 1;
        self.broadcasts.push(Update::Left {
            id: self.me.clone(),
            incarnation: self.incarnation,
        });
        let targets = self.random_active(self.config.fanout * 2, None);
        for target in targets {
            self.send(target, Body::Gossip);
        }
        for peer in self.random_active(self.config.fanout.max(1), None) {
            self.open_exchange(peer, Purpose::Leave);
        }
        self.check_departed();
    }

    /// Replaces this node's metadata and spreads it if it changed.
    pub fn set_metadata(&mut self, now: Instant, meta: Metadata) {
        self.tick(now);
        let meta = advertising(meta, self.config.versions);
        if meta == self.meta {
            return;
        }
        self.meta = meta;
        self.meta_version += 1;
        self.broadcasts.push(self.alive_update());
    }

    /// The keyring, for rotating keys while running.
    pub fn keyring_mut(&mut self) -> Option<&mut Keyring> {
        self.keyring.as_mut()
    }

    // ----- inputs -----

    /// Processes one datagram received from `from`.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        frame: &[u8],
    ) -> Result<(), DecodeError> {
        self.tick(now);
        let packet: Packet = self.open(now, frame)?;
        self.stats.packets_received += 1;
        if packet.sender == self.me {
            return Ok(());
        }
        let sign = match packet.body {
            Body::Heartbeat | Body::HeartbeatDigest { .. } => SignOfLife::Heartbeat,
            _ => SignOfLife::Other,
        };
        self.heard_from(now, &packet.sender, sign);
        for update in packet.updates {
            self.apply(now, update);
        }
        match packet.body {
            Body::Heartbeat => self.stats.heartbeats_received += 1,
            Body::HeartbeatDigest { digest } => {
                self.stats.heartbeats_received += 1;
                self.compare_digest(now, &packet.sender, from, digest);
            }
            Body::Gossip => {}
            Body::Ping { seq } => self.send(from, Body::Ack { seq }),
            Body::Ack { seq } => self.acked(now, seq),
            Body::PingReq {
                seq,
                target,
                target_addr,
            } => {
                if target == self.me {
                    self.send(from, Body::Ack { seq });
                } else {
                    let relay_seq = self.next_seq();
                    self.relays.insert(
                        relay_seq,
                        Relay {
                            origin: from,
                            origin_seq: seq,
                            deadline: now + self.probe_timeout(),
                        },
                    );
                    self.send(target_addr, Body::Ping { seq: relay_seq });
                }
            }
        }
        Ok(())
    }

    /// The answer to a [`ReachabilityCheck`](crate::ReachabilityCheck).
    ///
    /// A member whose heartbeats stopped and whose host refuses connections on its gossip port
    /// has lost its process (crashed, killed, exited without leaving): it is declared dead at once
    /// instead of after the suspicion timeout, which exists to tell a slow member from a silent
    /// one — a refused connection already has. A frozen process's socket still accepts (the
    /// kernel completes the handshake), so a paused member is not affected.
    ///
    /// A host that answered this node's attempts quickly before and is now silent is gone or cut
    /// off (a killed container's address goes with it, and nothing refuses). That alone could be
    /// this node's own trouble, so the member is declared dead once one more observer confirms
    /// the suspicion, instead of after the timeout; a node whose own health is in doubt does not
    /// take this shortcut.
    pub fn handle_reachability(&mut self, now: Instant, probe: u32, outcome: Reachability) {
        self.tick(now);
        let Some((target, kind)) = self.reach.answer(now, probe, outcome) else {
            return;
        };
        if kind != CheckKind::Probe {
            return;
        }
        match outcome {
            Reachability::Refused => self.process_gone(now, probe),
            Reachability::Silent => self.host_silent(now, probe, &target),
            Reachability::Accepting | Reachability::Unknown => {}
        }
    }

    /// A probed member's host refused the connection: its process is gone.
    fn process_gone(&mut self, now: Instant, probe: u32) {
        let Some(probe) = self.probes.remove(&probe) else {
            return;
        };
        self.probing.remove(&probe.target);
        let Some(member) = self.members.get(&probe.target) else {
            return;
        };
        if member.state.is_active() {
            let update = Update::Dead {
                id: probe.target,
                incarnation: member.incarnation,
                from: self.me.clone(),
            };
            self.apply(now, update);
        }
    }

    /// A probed member's host, known to answer, is silent.
    fn host_silent(&mut self, now: Instant, probe: u32, target: &NodeId) {
        if self.local_health > 0 {
            return;
        }
        // The probe itself may still be waiting (its timeout is stretched with local health, or
        // set long): the host's silence answers it.
        if let Some(probe) = self.probes.get_mut(&probe) {
            probe.deadline = now;
            self.expire_probes(now);
        }
        let Some(incarnation) = self
            .members
            .get(target)
            .filter(|m| m.state.is_active())
            .map(|m| m.incarnation)
        else {
            return;
        };
        let Some(suspicion) = self.suspicions.get_mut(target) else {
            return;
        };
        if suspicion.incarnation != incarnation {
            return;
        }
        suspicion.host_silent = true;
        if suspicion.confirmations.len() >= 2 {
            suspicion.deadline = now;
            self.expire_suspicions(now);
        }
    }

    /// The payload of a push-pull exchange: everything this node knows, itself included. It is
    /// stamped with the time of the latest input.
    pub fn sync_payload(&mut self) -> Vec<u8> {
        let mut members = vec![self.alive_update()];
        if self.leaving() {
            members[0] = Update::Left {
                id: self.me.clone(),
                incarnation: self.incarnation,
            };
        }
        let start = members.len();
        members.extend(self.members.values().map(member_update));
        members[start..].sort_by(|a, b| a.subject().cmp(b.subject()));
        let state = SyncState {
            sender: self.me.clone(),
            stamp: self.stamp(),
            members,
        };
        let encoded = message::encode(&state, self.protocol_version());
        let frame = crypto::seal(self.keyring.as_ref(), &encoded, &mut self.rng);
        self.stats.bytes_sent += frame.len() as u64;
        frame
    }

    /// The first frame of a push-pull exchange this node opens, sent before its
    /// [`Node::sync_payload`]: it authenticates this node and announces the payload's length
    /// (`state_len`), so the acceptor reads nothing large from a peer it has not authenticated. See
    /// [`stream`](crate::stream).
    pub fn sync_hello(&mut self, state_len: usize) -> Vec<u8> {
        let hello = SyncHello {
            sender: self.me.clone(),
            stamp: self.stamp(),
            state_len: u32::try_from(state_len).unwrap_or(u32::MAX),
        };
        let encoded = message::encode(&hello, self.protocol_version());
        let frame = crypto::seal(self.keyring.as_ref(), &encoded, &mut self.rng);
        self.stats.bytes_sent += frame.len() as u64;
        frame
    }

    /// Checks the hello that opens a push-pull exchange accepted from `from`: authentic (with a
    /// keyring), not a replay, and announcing a state of at most [`MAX_STATE`] bytes. Returns
    /// that length, the number of bytes to read next.
    pub fn handle_sync_hello(
        &mut self,
        now: Instant,
        _from: SocketAddr,
        frame: &[u8],
    ) -> Result<usize, DecodeError> {
        self.tick(now);
        let hello: SyncHello = self.open(now, frame)?;
        self.refuse_own(&hello)?;
        usize::try_from(hello.state_len)
            .ok()
            .filter(|&len| len <= MAX_STATE)
            .ok_or_else(|| {
                self.stats.rejected += 1;
                DecodeError::Malformed(format!(
                    "push-pull hello announces {} bytes of state, more than the {MAX_STATE} accepted",
                    hello.state_len
                ))
            })
    }

    /// Merges the state received from `from` in a push-pull exchange it opened.
    pub fn handle_sync(
        &mut self,
        now: Instant,
        _from: SocketAddr,
        frame: &[u8],
    ) -> Result<(), DecodeError> {
        self.tick(now);
        self.merge_state(now, frame)
    }

    /// The end of an [`Exchange`] this node asked for: the peer's answer, merged as
    /// [`Node::handle_sync`] merges a state.
    pub fn handle_sync_answer(
        &mut self,
        now: Instant,
        exchange: u32,
        frame: &[u8],
    ) -> Result<(), DecodeError> {
        self.tick(now);
        self.close_exchange(exchange);
        self.merge_state(now, frame)
    }

    /// The end of an [`Exchange`] this node asked for that brought no answer: the connection
    /// failed, timed out or was closed.
    pub fn handle_sync_failed(&mut self, now: Instant, exchange: u32) {
        self.tick(now);
        self.close_exchange(exchange);
    }

    fn merge_state(&mut self, now: Instant, frame: &[u8]) -> Result<(), DecodeError> {
        let state: SyncState = self.open(now, frame)?;
        self.refuse_own(&state)?;
        self.heard_from(now, &state.sender, SignOfLife::Other);
        for update in state.members {
            // A full state carries the sender's *opinion* that a member is dead, possibly formed
            // on the far side of a partition that has just healed. Taken as a fact it would kill
            // healthy members that nobody here has stopped hearing from, and spread: the sender
            // of a push-pull says every member of the other side is dead. So, as memberlist
            // does, it only makes this node suspect the member, which the member refutes if it
            // is alive and which times out into `Dead` if it is not.
            let update = match update {
                Update::Dead {
                    id, incarnation, ..
                } => Update::Suspect {
                    id,
                    incarnation,
                    from: state.sender.clone(),
                },
                other => other,
            };
            self.apply(now, update);
        }
        Ok(())
    }

    /// Does whatever is due at `now`. Call when [`Node::poll_timeout`] passes (calling early or
    /// often is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        self.notice_stall(now);
        if self.leaving() {
            self.expected_wake = self.poll_timeout();
            return;
        }
        for timer in Timer::ALL {
            if timer == Timer::PushPull {
                // Probes and suspicions run out before a push-pull partner is picked, so that a
                // member declared dead at this moment is not picked.
                self.expire_probes(now);
                self.expire_suspicions(now);
            }
            if self.timers.is_due(timer, now) {
                let next = self.fire(timer, now);
                self.timers.set(timer, next);
            }
        }
        self.expected_wake = self.poll_timeout();
    }

    // ----- outputs -----

    /// When [`Node::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.leaving() {
            return None;
        }
        let periodic = self.timers.next();
        std::iter::once(periodic)
            .chain(self.probes.values().map(|p| p.deadline))
            .chain(self.relays.values().map(|r| r.deadline))
            .chain(self.suspicions.values().map(|s| s.deadline))
            .min()
    }

    /// The next thing to do, in the order the node asked for them; `None` when there is
    /// nothing more until the next input. Drain it after every input.
    pub fn poll(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    // ----- views -----

    /// This node's id.
    pub fn id(&self) -> &NodeId {
        &self.me
    }

    /// This node's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// This node's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// This node as a member.
    pub fn local_member(&self, now: Instant) -> Member {
        Member {
            id: self.me.clone(),
            addr: self.addr,
            incarnation: self.incarnation,
            state: if self.leaving() {
                MemberState::Left
            } else {
                MemberState::Alive
            },
            meta: self.meta.clone(),
            meta_version: self.meta_version,
            state_since: now,
            last_heard: Some(now),
        }
    }

    /// Every other member known, tombstones (dead, left) included until reaped.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// One member.
    pub fn member(&self, id: &NodeId) -> Option<&Member> {
        self.members.get(id)
    }

    /// Phi of a member this node observes; `None` for members it does not observe.
    pub fn phi(&self, id: &NodeId, now: Instant) -> Option<f64> {
        self.detectors.get(id).map(|d| d.phi(now))
    }

    /// Lifeguard local health multiplier: 0 when this node keeps up, higher when it finds itself
    /// slow; its own timeouts are stretched by `1 + local_health`.
    pub fn local_health(&self) -> u32 {
        self.local_health
    }

    /// Updates waiting to be spread.
    pub fn pending_updates(&self) -> usize {
        self.broadcasts.len()
    }

    /// The protocol version this node writes now: the one every active member it knows speaks
    /// (see [`crate::version`]).
    pub fn protocol_version(&self) -> u8 {
        cluster_version(self.config.versions, self.advertised.lowest())
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    // ----- internals -----

    /// Decrypts and decodes a received frame and, with a keyring, refuses replays; counts it as
    /// received or rejected.
    fn open<T: Message>(&mut self, now: Instant, frame: &[u8]) -> Result<T, DecodeError> {
        let versions = self.config.versions;
        let opened =
            message::decode::<T>(self.keyring.as_ref(), frame, versions).and_then(|message| {
                // Our own frames reflected back carry our own stamps and are ignored further on; they
                // must not take a place in the replay guard.
                if self.keyring.is_some() && *message.sender() != self.me {
                    self.replay.check(now, message.sender(), message.stamp())?;
                }
                Ok(message)
            });
        match opened {
            Ok(message) => {
                self.stats.bytes_received += frame.len() as u64;
                Ok(message)
            }
            Err(e) => {
                self.stats.rejected += 1;
                Err(e)
            }
        }
    }

    /// Refuses a push-pull frame this node sealed itself: a node never exchanges with itself, so
    /// it was reflected back (and its own frames bypass the replay guard).
    fn refuse_own<T: Message>(&mut self, message: &T) -> Result<(), DecodeError> {
        if *message.sender() == self.me {
            self.stats.rejected += 1;
            return Err(DecodeError::FromSelf);
        }
        Ok(())
    }

    /// Moves this node's clock to `now` (never backwards).
    fn tick(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
    }

    /// The stamp for the next message sealed.
    fn stamp(&mut self) -> Stamp {
        self.sent += 1;
        let elapsed = self.clock.saturating_duration_since(self.born);
        Stamp {
            session: self.session,
            seq: self.sent,
            sent_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Whether this node has left (or is leaving) the cluster.
    fn leaving(&self) -> bool {
        self.departure != Departure::Staying
    }

    /// Asks for a push-pull exchange with `peer`, unless one is in flight with it already or
    /// [`MAX_EXCHANGES`] are.
    fn sync_with(&mut self, peer: SocketAddr) {
        let busy = self
            .exchanges
            .values()
            .any(|open| open.peer == peer && open.purpose == Purpose::Sync);
        if busy || self.exchanges.len() >= MAX_EXCHANGES {
            return;
        }
        self.open_exchange(peer, Purpose::Sync);
    }

    fn open_exchange(&mut self, peer: SocketAddr, purpose: Purpose) {
        self.exchange_seq = self.exchange_seq.wrapping_add(1);
        let id = self.exchange_seq;
        self.exchanges.insert(id, Open { peer, purpose });
        self.outputs
            .push_back(Output::Exchange(Exchange { id, peer }));
    }

    /// Forgets an exchange whose end was reported (an unknown id is one already ended).
    fn close_exchange(&mut self, id: u32) {
        if self.exchanges.remove(&id).is_some() {
            self.check_departed();
        }
    }

    /// Gives [`Output::Departed`] once a leave has no confirmation left to wait for.
    fn check_departed(&mut self) {
        let waiting = self
            .exchanges
            .values()
            .any(|open| open.purpose == Purpose::Leave);
        if self.departure == Departure::Confirming && !waiting {
            self.departure = Departure::Departed;
            self.outputs.push_back(Output::Departed);
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn stretch(&self, d: Duration) -> Duration {
        d * (1 + self.local_health)
    }

    fn probe_timeout(&self) -> Duration {
        self.stretch(self.config.probe_timeout)
    }

    fn active_count(&self) -> usize {
        self.ring.len()
    }

    /// Each update is sent `mult × ⌈log10(n + 1)⌉` times.
    fn retransmit_limit(&self) -> u32 {
        let n = self.active_count() as f64 + 1.0;
        self.config.retransmit_mult * (n.log10().ceil() as u32).max(1)
    }

    /// Full syncs grow rarer as the cluster grows, keeping their bandwidth per node flat: a
    /// payload carries every member, so the interval grows in proportion to the members above 32.
    /// (memberlist's `log2(n / 32) + 1` scaling leaves the bandwidth growing as `n / log n`.)
    fn push_pull_interval(&self) -> Duration {
        let n = self.active_count().max(1) as f64;
        let scale = (n / 32.0).max(1.0);
        self.config.push_pull_interval.mul_f64(scale)
    }

    fn alive_update(&self) -> Update {
        Update::Alive {
            id: self.me.clone(),
            addr: self.addr,
            incarnation: self.incarnation,
            meta: self.meta.clone(),
            meta_version: self.meta_version,
        }
    }

    /// Seals and queues one datagram, piggybacking as many pending updates as fit.
    fn send(&mut self, to: SocketAddr, body: Body) {
        let mut packet = Packet {
            sender: self.me.clone(),
            stamp: self.stamp(),
            body,
            updates: Vec::new(),
        };
        let version = self.protocol_version();
        let base = message::encode(&packet, version).len();
        // Two bytes for the varint length of the update list.
        let budget = self
            .config
            .max_packet
            .saturating_sub(SEAL_OVERHEAD + base + 2);
        packet.updates = if packet.body.is_heartbeat() {
            self.broadcasts.peek(budget)
        } else {
            let limit = self.retransmit_limit();
            self.broadcasts.take(budget, limit)
        };
        let payload = crypto::seal(
            self.keyring.as_ref(),
            &message::encode(&packet, version),
            &mut self.rng,
        );
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += payload.len() as u64;
        self.outputs
            .push_back(Output::Transmit(Transmit { to, payload }));
    }

    /// Members on the ring after (observers) or before (observed) this node, at most `k`.
    fn ring_neighbours(&self, successors: bool) -> Vec<NodeId> {
        let k = self.config.observers.min(self.ring.len().saturating_sub(1));
        let mut out = Vec::with_capacity(k);
        if successors {
            out.extend(self.ring_after(&self.me).take(k).cloned());
        } else {
            let key = (self.me.ring_hash(), self.me.clone());
            let before = self.ring.range(..key).rev();
            for (_, id) in before.chain(self.ring.iter().rev()).take(k) {
                out.push(id.clone());
            }
        }
        out
    }

    /// The active members after `id` on the ring, in ring order, wrapping around to the start
    /// (`id` itself comes up again once the walk has gone round).
    fn ring_after(&self, id: &NodeId) -> impl Iterator<Item = &NodeId> {
        let key = (id.ring_hash(), id.clone());
        self.ring
            .range((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded))
            .chain(self.ring.iter())
            .map(|(_, next)| next)
    }

    /// Whether this node is `id`'s first observer: the next active member after it on the ring.
    fn is_first_observer_of(&self, id: &NodeId) -> bool {
        self.ring_after(id)
            .find(|next| *next != id)
            .is_some_and(|next| *next == self.me)
    }

    fn addr_of(&self, id: &NodeId) -> Option<SocketAddr> {
        self.members.get(id).map(|m| m.addr)
    }

    /// Does the recurring work of `timer`, due at `now`; when it is next due.
    fn fire(&mut self, timer: Timer, now: Instant) -> Instant {
        let due = self.timers.at(timer);
        match timer {
            Timer::Heartbeat => {
                self.heartbeat();
                advance(due, self.config.heartbeat_interval, now)
            }
            Timer::Gossip => {
                self.gossip();
                self.last_gossip = now;
                advance(due, self.config.gossip_interval, now)
            }
            Timer::Check => {
                self.check_observed(now);
                advance(due, self.config.check_interval, now)
            }
            Timer::PushPull => {
                // The interval stretches with the cluster, which a node starting knew nothing
                // of: its first exchange is put off to the same point of the interval of the
                // cluster it has joined since, or a cluster started at once would run every
                // first exchange, each as large as the cluster, within the unstretched interval.
                let due = match self.last_push_pull {
                    Some(last) => last + self.push_pull_interval(),
                    None => self.born + self.push_pull_interval().mul_f64(self.push_pull_phase),
                };
                if now < due {
                    return due;
                }
                self.last_push_pull = Some(now);
                if let Some(peer) = self.random_active(1, None).pop() {
                    self.sync_with(peer);
                }
                now + self.push_pull_interval()
            }
            Timer::Redial => {
                self.redial_seeds();
                now + self.config.seed_redial_interval
            }
            Timer::Reap => {
                self.reap(now);
                now + self.config.reap_after / 4
            }
            Timer::HealthDecay => {
                self.local_health = self.local_health.saturating_sub(1);
                now + HEALTH_DECAY
            }
        }
    }

    fn heartbeat(&mut self) {
        let body = if self.protocol_version() >= DIGEST_SINCE {
            Body::HeartbeatDigest {
                digest: self.digest(),
            }
        } else {
            Body::Heartbeat
        };
        for observer in self.ring_neighbours(true) {
            if let Some(addr) = self.addr_of(&observer) {
                self.stats.heartbeats_sent += 1;
                self.send(addr, body.clone());
            }
        }
    }

    /// Who this node knows to be in the cluster, in 32 bits: every active member's id and
    /// incarnation (its own included) combined independently of order, so two nodes that know
    /// the same members at the same incarnations have the same digest. Kept until the members
    /// change.
    fn digest(&mut self) -> u32 {
        if let Some(digest) = self.digest {
            return digest;
        }
        let digest = self
            .members
            .values()
            .filter(|m| m.state.is_active())
            .fold(member_digest(&self.me, self.incarnation), |acc, m| {
                acc ^ member_digest(&m.id, m.incarnation)
            });
        self.digest = Some(digest);
        digest
    }

    /// Weighs a heartbeat's digest against this node's own. News takes a few hundred
    /// milliseconds to reach everyone, so a difference is only acted on once it has lasted
    /// [`DIGEST_GRACE`] with nothing changing here: then one of the two missed something (a
    /// join, a death, a refutation that gossip did not bring it), and a push-pull exchange with
    /// the sender mends both within a round trip instead of at the next periodic one, which can
    /// be minutes away in a large cluster. At most one such exchange per [`DIGEST_SYNC_BACKOFF`].
    fn compare_digest(&mut self, now: Instant, sender: &NodeId, from: SocketAddr, theirs: u32) {
        if theirs == self.digest() {
            return;
        }
        let since = *self.disagreeing_since.get_or_insert(now);
        if now.saturating_duration_since(since) < DIGEST_GRACE || now < self.digest_sync_after {
            return;
        }
        // A sender this node does not know (its join is what was missed) is reached at the
        // address its datagram came from, which is its gossip socket's.
        let peer = self.addr_of(sender).unwrap_or(from);
        self.digest_sync_after = now + DIGEST_SYNC_BACKOFF;
        self.disagreeing_since = None;
        self.stats.digest_syncs += 1;
        self.sync_with(peer);
    }

    /// Forgets the digest and any difference seen against it: a member joined, changed state or
    /// incarnation, or this node's own incarnation changed.
    fn membership_changed(&mut self) {
        self.digest = None;
        self.disagreeing_since = None;
    }

    fn gossip(&mut self) {
        if self.broadcasts.is_empty() {
            return;
        }
        for addr in self.random_active(self.config.fanout, None) {
            self.send(addr, Body::Gossip);
            if self.broadcasts.is_empty() {
                break;
            }
        }
    }

    /// Up to `count` random active members' addresses, never `except`. Walks the ring (the
    /// active members, in a fixed order) so the choice depends on the seed alone.
    fn random_active(&mut self, count: usize, except: Option<&NodeId>) -> Vec<SocketAddr> {
        // Ring keys compare their hash first, sparing a string comparison per member.
        let me = (self.me.ring_hash(), self.me.clone());
        let except = except.map(|id| (id.ring_hash(), id.clone()));
        let candidates: Vec<&NodeId> = self
            .ring
            .iter()
            .filter(|key| **key != me && Some(*key) != except.as_ref())
            .map(|(_, id)| id)
            .collect();
        candidates
            .choose_multiple(&mut self.rng, count)
            .filter_map(|id| self.members.get(*id).map(|m| m.addr))
            .collect()
    }

    fn redial_seeds(&mut self) {
        let active: HashSet<SocketAddr> = self
            .members
            .values()
            .filter(|m| m.state.is_active())
            .map(|m| m.addr)
            .collect();
        let mut missing: Vec<SocketAddr> = self
            .seeds
            .iter()
            .copied()
            .filter(|s| !active.contains(s))
            .collect();
        if active.is_empty() {
            for seed in missing {
                self.sync_with(seed);
            }
        } else if let Some(seed) = {
            missing.shuffle(&mut self.rng);
            missing.first().copied()
        } {
            self.sync_with(seed);
        }
    }

    /// A datagram from `sender`: a heartbeat is an interval of its detector's distribution, any
    /// other sign of life only restarts the silence the detector weighs.
    fn heard_from(&mut self, now: Instant, sender: &NodeId, sign: SignOfLife) {
        if let Some(member) = self.members.get_mut(sender) {
            member.last_heard = Some(now);
        }
        let Some(detector) = self.detectors.get_mut(sender) else {
            return;
        };
        if sign == SignOfLife::Other {
            detector.heard(now);
            return;
        }
        self.stats.record_phi(detector.phi(now));
        detector.heartbeat(now);
        // Learn how fast the member's host answers once it has been watched for a while: not
        // when the detector starts, which at a cluster's start is a storm of attempts on members
        // the ring soon hands to other observers.
        if detector.heartbeats() < BASELINE_AFTER_HEARTBEATS {
            return;
        }
        let Some(addr) = self.members.get(sender).map(|m| m.addr) else {
            return;
        };
        if self.reach.baseline_due(now, sender, addr) {
            let seq = self.next_seq();
            let sender = sender.clone();
            self.ask_reachability(now, seq, &sender, addr, CheckKind::Baseline);
        }
    }

    /// Keeps one phi detector per member this node observes (its ring predecessors).
    fn refresh_observed(&mut self, now: Instant) {
        let observed: HashSet<NodeId> = self.ring_neighbours(false).into_iter().collect();
        self.detectors.retain(|id, _| observed.contains(id));
        for id in observed {
            let config = &self.config;
            self.detectors.entry(id).or_insert_with(|| {
                PhiDetector::new(
                    now,
                    config.heartbeat_interval,
                    config.phi_window,
                    config.phi_min_std_dev,
                    config.phi_acceptable_pause,
                )
            });
        }
    }

    /// Asks the driver for a connection attempt to `target`.
    fn ask_reachability(
        &mut self,
        now: Instant,
        seq: u32,
        target: &NodeId,
        addr: SocketAddr,
        kind: CheckKind,
    ) {
        let check = self.reach.ask(now, seq, target, addr, kind);
        // A driver that never asks must not make the queue grow: drop checks no longer awaited.
        let reach = &self.reach;
        self.outputs.retain(|output| match output {
            Output::Reachability(check) => reach.awaits(check.probe),
            _ => true,
        });
        self.outputs.push_back(Output::Reachability(check));
    }

    fn check_observed(&mut self, now: Instant) {
        let due: Vec<NodeId> = self
            .detectors
            .iter()
            .filter(|(id, d)| !self.probing.contains(*id) && d.phi(now) > self.config.phi_threshold)
            .map(|(id, _)| id.clone())
            .collect();
        for target in due {
            self.start_probe(now, target);
        }
    }

    fn start_probe(&mut self, now: Instant, target: NodeId) {
        let Some(member) = self.members.get(&target) else {
            return;
        };
        if !member.state.is_active()
            || self
                .suspected_by_me
                .contains(&(target.clone(), member.incarnation))
        {
            return;
        }
        let target_addr = member.addr;
        let seq = self.next_seq();
        self.stats.probes += 1;
        self.probing.insert(target.clone());
        self.probes.insert(
            seq,
            Probe {
                target: target.clone(),
                deadline: now + self.probe_timeout(),
            },
        );
        self.send(target_addr, Body::Ping { seq });
        self.ask_reachability(now, seq, &target, target_addr, CheckKind::Probe);
        for relay in self.random_active(self.config.indirect_probes, Some(&target)) {
            self.send(
                relay,
                Body::PingReq {
                    seq,
                    target: target.clone(),
                    target_addr,
                },
            );
        }
    }

    fn acked(&mut self, now: Instant, seq: u32) {
        if let Some(relay) = self.relays.remove(&seq) {
            self.send(
                relay.origin,
                Body::Ack {
                    seq: relay.origin_seq,
                },
            );
            return;
        }
        if let Some(probe) = self.probes.remove(&seq) {
            self.probing.remove(&probe.target);
            if let Some(detector) = self.detectors.get_mut(&probe.target) {
                detector.heard(now);
            }
            self.local_health = self.local_health.saturating_sub(1);
        }
    }

    fn expire_probes(&mut self, now: Instant) {
        self.relays.retain(|_, r| r.deadline > now);
        let failed: Vec<u32> = self
            .probes
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(s, _)| *s)
            .collect();
        for seq in failed {
            let Some(probe) = self.probes.remove(&seq) else {
                continue;
            };
            self.probing.remove(&probe.target);
            let Some(member) = self.members.get(&probe.target) else {
                continue;
            };
            if member.state.is_active() {
                let incarnation = member.incarnation;
                let target_addr = member.addr;
                self.suspected_by_me
                    .insert((probe.target.clone(), incarnation));
                let update = Update::Suspect {
                    id: probe.target.clone(),
                    incarnation,
                    from: self.me.clone(),
                };
                self.apply(now, update);
                self.report_suspicion(now, &probe.target);
                // Tell the suspect itself: if it is alive but slow, it refutes on reading this,
                // without waiting for the gossip to find it.
                self.send(target_addr, Body::Gossip);
            }
        }
    }

    fn expire_suspicions(&mut self, now: Instant) {
        let expired: Vec<(NodeId, u64)> = self
            .suspicions
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(id, s)| (id.clone(), s.incarnation))
            .collect();
        for (id, incarnation) in expired {
            let update = Update::Dead {
                id,
                incarnation,
                from: self.me.clone(),
            };
            self.apply(now, update);
        }
    }

    /// Lifeguard: a node whose timers fire far too late was stalled (paused, starved of CPU). The
    /// silence it saw was its own doing, so it restarts its detectors' clocks, gives pending probes
    /// and suspicions time to hear the datagrams queued while it stalled, and trusts itself less.
    fn notice_stall(&mut self, now: Instant) {
        let Some(expected) = self.expected_wake else {
            return;
        };
        let tolerance = (self.config.check_interval * 4).max(Duration::from_millis(500));
        if now <= expected + tolerance {
            return;
        }
        self.local_health = (self.local_health + 1).min(self.config.max_local_health);
        for detector in self.detectors.values_mut() {
            detector.restart_clock(now);
        }
        let grace = now + self.probe_timeout();
        for probe in self.probes.values_mut() {
            probe.deadline = probe.deadline.max(grace);
        }
        for suspicion in self.suspicions.values_mut() {
            suspicion.deadline = suspicion.deadline.max(grace);
        }
        self.timers
            .no_sooner(Timer::Check, now + self.config.check_interval);
        // After a long silence its observers may be suspecting it right now, and the suspicion is
        // queued somewhere in the datagrams it has yet to read — or was gossiped to others only —
        // so rather than wait to hear it, the node refutes at once. After a shorter one the
        // overdue heartbeats, sent in this same step, arrive before any observer's detector
        // fires (phi 8 needs more than 1.5 intervals of silence), and a refutation would only
        // cost every member a datagram: a starved host stalls often.
        let next_heartbeat = self.timers.at(Timer::Heartbeat);
        let last_heartbeat = next_heartbeat
            .checked_sub(self.config.heartbeat_interval)
            .unwrap_or(next_heartbeat);
        let silence = now.saturating_duration_since(last_heartbeat);
        if !self.leaving() && silence >= self.config.heartbeat_interval.mul_f64(1.5) {
            self.announce_alive(now, self.incarnation);
        }
    }

    fn reap(&mut self, now: Instant) {
        let reap_after = self.config.reap_after;
        self.members.retain(|_, m| {
            m.state.is_active() || now.saturating_duration_since(m.state_since) < reap_after
        });
        let members = &self.members;
        self.reach.retain(|id| members.contains_key(id));
    }

    /// Lifeguard's timeout: from `max` with no confirmation down to `min` once the expected
    /// number of independent observers agree. `confirmations` counts the first suspector too;
    /// the formula counts the confirmations beyond it, of which at most `observers − 1` (the
    /// other observers) or `n − 2` (every member but the suspect and the first suspector) can come.
    fn suspicion_timeout(&self, confirmations: usize) -> Duration {
        let min = self.stretch(self.config.suspicion_min);
        let max = self.stretch(self.config.suspicion_max).max(min);
        let expected = self
            .config
            .observers
            .saturating_sub(1)
            .min(self.active_count().saturating_sub(2));
        if expected == 0 {
            return min;
        }
        let extra = confirmations.saturating_sub(1) as f64;
        let fraction = ((extra + 1.0).ln() / (expected as f64 + 1.0).ln()).min(1.0);
        max.saturating_sub((max - min).mul_f64(fraction)).max(min)
    }

    /// Answers a suspicion, death or departure of this node that it heard about.
    fn refute(&mut self, now: Instant, incarnation: u64) {
        if self.leaving() {
            return;
        }
        self.local_health = (self.local_health + 1).min(self.config.max_local_health);
        self.announce_alive(now, incarnation);
    }

    /// Spreads an `Alive` with an incarnation above `incarnation` and this node's own, which
    /// overrides every suspicion of it.
    fn announce_alive(&mut self, now: Instant, incarnation: u64) {
        self.incarnation = self.incarnation.max(incarnation) + 1;
        self.membership_changed();
        self.stats.refutations += 1;
        self.broadcasts.push(self.alive_update());
        self.hurry_gossip(now);
        self.outputs.push_back(Output::Event(Event::Refuted {
            incarnation: self.incarnation,
        }));
    }

    fn set_state(&mut self, now: Instant, id: &NodeId, state: MemberState) {
        let Some(member) = self.members.get_mut(id) else {
            return;
        };
        member.state = state;
        member.state_since = now;
        self.membership_changed();
        let key = (id.ring_hash(), id.clone());
        let changed = if state.is_active() {
            self.ring.insert(key)
        } else {
            self.suspicions.remove(id);
            self.ring.remove(&key)
        };
        if changed {
            self.refresh_observed(now);
        }
    }

    /// Applies one fact by SWIM's precedence rules (see [`transition`]); facts that change
    /// something are passed on.
    fn apply(&mut self, now: Instant, update: Update) {
        let claim = update.claim();
        let subject = update.subject().clone();
        if subject == self.me {
            if must_refute(self.incarnation, claim) {
                self.refute(now, claim.incarnation());
            }
            return;
        }
        let previous_standing = self.standing_state(&subject);
        let suspected = self.suspicions.contains_key(&subject);
        let member = self.members.get_mut(&subject);
        let changed = match (
            transition(member.as_ref().map(|m| m.standing(suspected)), claim),
            member,
        ) {
            (Transition::Ignore, _) => false,
            (Transition::Confirm, _) => match &update {
                Update::Suspect { from, .. } => self.confirm(&subject, from),
                _ => false,
            },
            (Transition::Join, _) => {
                if let Update::Alive {
                    id,
                    addr,
                    incarnation,
                    meta,
                    meta_version,
                } = &update
                {
                    // Inserted as a tombstone so that turning alive puts it on the ring.
                    self.members.insert(
                        id.clone(),
                        Member {
                            id: id.clone(),
                            addr: *addr,
                            incarnation: *incarnation,
                            state: MemberState::Dead,
                            meta: meta.clone(),
                            meta_version: *meta_version,
                            state_since: now,
                            last_heard: None,
                        },
                    );
                }
                self.set_state(now, &subject, MemberState::Alive);
                self.emit(&subject, Event::MemberUp);
                true
            }
            (transition, Some(member)) => {
                let meta_changed = take_claim(member, &update);
                self.enter(now, &subject, transition, &update, meta_changed);
                true
            }
            (_, None) => false,
        };
        if changed {
            self.membership_changed();
            self.broadcasts.push(update);
            if self.standing_state(&subject) != previous_standing {
                self.hurry_gossip(now);
            }
        }
    }

    /// Moves a known member into the state `transition` leads to, its claim already taken.
    fn enter(
        &mut self,
        now: Instant,
        id: &NodeId,
        transition: Transition,
        update: &Update,
        meta_changed: bool,
    ) {
        match transition {
            Transition::Refresh => {
                if meta_changed {
                    self.emit(id, Event::MemberUpdated);
                }
            }
            Transition::Refuted => {
                self.suspicions.remove(id);
                let reported = self.members.get(id).map(|m| m.state);
                if reported == Some(MemberState::Suspect) {
                    self.set_state(now, id, MemberState::Alive);
                    self.emit(id, Event::MemberAlive);
                } else if meta_changed {
                    self.emit(id, Event::MemberUpdated);
                }
            }
            Transition::Join | Transition::Rejoin => {
                self.set_state(now, id, MemberState::Alive);
                self.emit(id, Event::MemberUp);
            }
            Transition::Suspect | Transition::Resuspect => {
                if let Update::Suspect {
                    incarnation, from, ..
                } = update
                {
                    let deadline = now + self.suspicion_timeout(1);
                    let suspicion = Suspicion::new(now, *incarnation, from.clone(), deadline);
                    self.suspicions.insert(id.clone(), suspicion);
                    if transition == Transition::Suspect {
                        self.stats.suspicions += 1;
                    }
                }
            }
            Transition::Die => {
                self.set_state(now, id, MemberState::Dead);
                self.stats.failures_detected += 1;
                self.emit(id, Event::MemberDown);
            }
            Transition::Leave => {
                self.set_state(now, id, MemberState::Left);
                self.emit(id, Event::MemberLeft);
            }
            Transition::Ignore | Transition::Confirm => {}
        }
    }

    /// A member joined or changed state (suspected, dead, left, back alive): that is news every
    /// member should have at once, not one gossip round per hop later, and a refutation must
    /// overtake the suspicion's timers. So the next gossip round is brought forward to now,
    /// rate-limited so that a burst of news (a healed partition, a whole cluster starting) costs
    /// a round per [`URGENT_GOSSIP_GAP`] at most. Each forwarded fact still counts against its retransmit
    /// limit, so this spends the same datagrams sooner rather than more of them.
    fn hurry_gossip(&mut self, now: Instant) {
        let earliest = (self.last_gossip + URGENT_GOSSIP_GAP).max(now);
        self.timers.no_later(Timer::Gossip, earliest);
    }

    /// Counts an independent confirmation of a suspicion; the timeout shrinks accordingly.
    fn confirm(&mut self, id: &NodeId, from: &NodeId) -> bool {
        let Some(suspicion) = self.suspicions.get_mut(id) else {
            return false;
        };
        if !suspicion.confirmations.insert(from.clone()) {
            return false;
        }
        let count = suspicion.confirmations.len();
        let started = suspicion.started;
        let host_silent = suspicion.host_silent;
        let deadline = if host_silent {
            self.clock
        } else {
            started + self.suspicion_timeout(count)
        };
        if let Some(suspicion) = self.suspicions.get_mut(id) {
            suspicion.deadline = deadline;
        }
        true
    }

    /// Shows a member this node's own probe found silent as suspect to its users: only the
    /// member's first observer does, as Lifeguard intends, whoever raised the suspicion. The others,
    /// observers whose probes fail too included, hold the suspicion with its timer and
    /// confirmations but go on showing the member alive: a pause of a second or two, refuted
    /// before any timeout, is then seen by one node instead of flagged by the whole cluster, and
    /// a member that does not refute is declared dead everywhere all the same. Raising it is not
    /// enough: a member's observers hear the same heartbeats, so their probes fail together.
    fn report_suspicion(&mut self, now: Instant, id: &NodeId) {
        if !self.suspicions.contains_key(id) || !self.is_first_observer_of(id) {
            return;
        }
        if self.members.get(id).map(|m| m.state) == Some(MemberState::Alive) {
            self.set_state(now, id, MemberState::Suspect);
            self.emit(id, Event::MemberSuspect);
        }
    }

    /// A member's state as the protocol weighs claims against it: suspect while this node holds
    /// a suspicion of it, whether or not it shows it.
    fn standing_state(&self, id: &NodeId) -> Option<MemberState> {
        let member = self.members.get(id)?;
        let suspected = self.suspicions.contains_key(id);
        Some(member.standing(suspected).state)
    }

    fn emit(&mut self, id: &NodeId, event: fn(Member) -> Event) {
        // Every change of a member's state or metadata comes through here: the versions the
        // cluster speaks may have changed with it.
        let member = self.members.get(id);
        let highest = member
            .filter(|member| member.state.is_active())
            .map(|member| Versions::advertised(&member.meta.tags).max);
        self.advertised.set(id, highest);
        if let Some(member) = member {
            self.outputs.push_back(Output::Event(event(member.clone())));
        }
    }
}

/// `meta` with the protocol versions this node speaks in its tags, for the others to see.
fn advertising(mut meta: Metadata, versions: Versions) -> Metadata {
    meta.tags.insert(PROTOCOL_TAG.to_owned(), versions.tag());
    meta
}

#[cfg(test)]
mod tests;

/// How often the local health multiplier relaxes by one when nothing raises it.
const HEALTH_DECAY: Duration = Duration::from_secs(5);

/// The shortest time between two gossip rounds brought forward by news of a failure.
const URGENT_GOSSIP_GAP: Duration = Duration::from_millis(20);

/// The next periodic deadline after `now`, skipping rounds that were missed.
fn advance(deadline: Instant, period: Duration, now: Instant) -> Instant {
    let next = deadline + period;
    if next <= now {
        now + period
    } else {
        next
    }
}

/// Records in `member` what a winning claim says: the incarnation and, from an `Alive`, the
/// address and metadata. Whether the metadata changed.
fn take_claim(member: &mut Member, update: &Update) -> bool {
    match update {
        Update::Alive {
            addr,
            incarnation,
            meta,
            meta_version,
            ..
        } => {
            let meta_changed = member.meta != *meta;
            member.addr = *addr;
            member.incarnation = *incarnation;
            member.meta = meta.clone();
            member.meta_version = *meta_version;
            meta_changed
        }
        Update::Suspect { incarnation, .. }
        | Update::Dead { incarnation, .. }
        | Update::Left { incarnation, .. } => {
            member.incarnation = *incarnation;
            false
        }
    }
}

/// One member's share of a [`Node::digest`]: its id and incarnation, mixed (splitmix64's
/// finaliser) so that nearby incarnations give unrelated bits.
fn member_digest(id: &NodeId, incarnation: u64) -> u32 {
    let mut x = id.ring_hash() ^ incarnation.rotate_left(32);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let [a, b, c, d, e, f, g, h] = x.to_le_bytes();
    u32::from_le_bytes([a ^ e, b ^ f, c ^ g, d ^ h])
}

/// A member's state as the update that would recreate it elsewhere.
fn member_update(m: &Member) -> Update {
    match m.state {
        // A suspicion is this node's opinion, not a fact to hand over: the receiver forms its own.
        MemberState::Alive | MemberState::Suspect => Update::Alive {
            id: m.id.clone(),
            addr: m.addr,
            incarnation: m.incarnation,
            meta: m.meta.clone(),
            meta_version: m.meta_version,
        },
        MemberState::Dead => Update::Dead {
            id: m.id.clone(),
            incarnation: m.incarnation,
            from: m.id.clone(),
        },
        MemberState::Left => Update::Left {
            id: m.id.clone(),
            incarnation: m.incarnation,
        },
    }
}
