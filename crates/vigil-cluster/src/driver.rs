//! The driver task: the one owner of the [`Node`], turning sockets, timers and commands into its
//! inputs and its outputs into datagrams, exchanges, snapshots and events.
//!
//! One `select!` waits on everything at once — a datagram, a TCP connection, a peer's push-pull
//! payload, the end of an exchange this node opened, a command, a health change, the node's next
//! deadline, the snapshot refresh. After each input the driver carries out every [`Output`] the
//! node hands it, in one exhaustive `match`; which peers, how many exchanges at once and when are
//! the node's decisions, not the driver's.
//! Nothing in the loop waits on a peer: TCP exchanges run in their own tasks (owned by
//! [`JoinSet`]s, so they end with the driver) and datagrams are sent with `try_send_to`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinError, JoinSet};
use tokio::time::{interval, sleep_until, MissedTickBehavior};
use tracing::{debug, info, warn};
use vigil_gossip::crypto::Keyring;
use vigil_gossip::{Event, Exchange, Health, Node, Output, Reachability, ReachabilityCheck};

use crate::error::ClusterError;
use crate::keyring::{self, KeyInfo, KeyringOp};
use crate::sync::{self, SyncRequest};
use crate::view::{ClusterView, MemberView, MembershipEvent};

/// The snapshot is rebuilt at least this often: phi and last-heard times move continuously.
pub(crate) const VIEW_REFRESH: Duration = Duration::from_millis(500);
/// Largest datagram the driver reads; the protocol sends at most `max_packet` (1,400) bytes.
const RECV_BUFFER: usize = 64 * 1024;
/// Push-pull connections served at once past their hello; more are closed at once (the peer
/// retries later). Only key holders get this far.
const MAX_INCOMING: usize = 64;
/// Accepted connections whose hello has not been checked yet, from all hosts together. Beyond
/// this a new connection takes the place of the oldest one of the host holding the most places,
/// strangers' hosts first (see [`Origin`]).
const MAX_UNVERIFIED: usize = 64;
/// Accepted connections whose hello has not been checked yet, per host. Beyond this a new
/// connection takes the place of its host's oldest one, which has had the most time to send its
/// hello: a member sends it right after connecting, so only peers that stall lose their place,
/// and a host that floods the port only churns its own places.
const MAX_UNVERIFIED_PER_HOST: usize = 4;
/// Reachability checks (TCP connection attempts to silent members) running at once; more are
/// skipped, which only means those members take the suspicion path.
const MAX_CHECKS: usize = 32;
/// The shortest sleep between two `handle_timeout` calls.
const MIN_TIMER_STEP: Duration = Duration::from_millis(1);
/// How long accepting pauses after an accept error (out of file descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How far (in points of 100) a node's health score moves before the change is spread.
const SCORE_STEP: u8 = 5;

/// What the handle asks of the driver.
pub(crate) enum Command {
    /// Leave gracefully, then stop; `done` fires when the driver has stopped.
    Leave {
        within: Duration,
        done: oneshot::Sender<()>,
    },
    /// A keyring operation.
    Keyring {
        op: KeyringOp,
        reply: oneshot::Sender<Result<KeyringChange, ClusterError>>,
    },
    /// The voters quorum is counted over, from now on.
    SetVoters(Vec<String>),
}

/// The result of a keyring operation: the keys now installed, and the keyring to persist if it
/// changed.
pub(crate) struct KeyringChange {
    pub keys: Vec<KeyInfo>,
    pub changed: Option<Keyring>,
}

/// What the driver shares with the handles.
pub(crate) struct Shared {
    pub view: ArcSwap<ClusterView>,
    pub events: broadcast::Sender<MembershipEvent>,
}

/// The sockets and channels the driver waits on.
pub(crate) struct Io {
    pub udp: UdpSocket,
    pub listener: TcpListener,
    pub commands: mpsc::Receiver<Command>,
    pub health: watch::Receiver<(Health, u8)>,
}

/// Where an accepted connection comes from: when every place for unverified connections is
/// taken, strangers give theirs up first, so they cannot crowd out the members' own exchanges.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Origin {
    /// The host of a known member.
    MemberHost,
    /// A host where no known member lives (a member joining for the first time comes from one).
    Stranger,
}

/// An accepted connection still waiting for its hello to be checked.
struct Unverified {
    task: AbortHandle,
    host: IpAddr,
    origin: Origin,
}

type ExchangeResult = (Exchange, io::Result<Vec<u8>>);

/// A graceful leave in progress.
struct Leaving {
    deadline: tokio::time::Instant,
    done: Vec<oneshot::Sender<()>>,
}

/// Whether the driver goes on after an input.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    /// The node has departed: stop.
    Stop,
}

/// One input to the node, as the `select!` returned it.
enum Input {
    Datagram(io::Result<(usize, SocketAddr)>),
    Connection(io::Result<(tokio::net::TcpStream, SocketAddr)>),
    SyncRequest(SyncRequest),
    Exchanged(Result<ExchangeResult, JoinError>),
    Reached(Result<(u32, Reachability), JoinError>),
    Served,
    Command(Option<Command>),
    Health(bool),
    Timer,
    Refresh,
    LeaveDeadline,
}

/// The driver's state.
pub(crate) struct Driver {
    node: Node,
    shared: Arc<Shared>,
    voters: Vec<String>,
    leaving: Option<Leaving>,
    outgoing: JoinSet<ExchangeResult>,
    incoming: JoinSet<()>,
    /// The tasks of `incoming` whose hello has not been checked yet, oldest first.
    unverified: VecDeque<Unverified>,
    /// The hosts of the active members, as of the last snapshot.
    member_hosts: HashSet<IpAddr>,
    checks: JoinSet<(u32, Reachability)>,
    sync_tx: mpsc::Sender<SyncRequest>,
    /// Whether the snapshot must be republished even without an event.
    dirty: bool,
    /// When `handle_timeout` last ran. The timer never fires sooner than a millisecond after it,
    /// so a deadline the node keeps reporting as overdue cannot spin the loop.
    last_timeout: Instant,
}

impl Driver {
    pub(crate) fn new(
        node: Node,
        shared: Arc<Shared>,
        voters: Vec<String>,
        sync_tx: mpsc::Sender<SyncRequest>,
    ) -> Driver {
        Driver {
            node,
            shared,
            voters,
            leaving: None,
            outgoing: JoinSet::new(),
            incoming: JoinSet::new(),
            unverified: VecDeque::new(),
            member_hosts: HashSet::new(),
            checks: JoinSet::new(),
            sync_tx,
            dirty: false,
            last_timeout: Instant::now(),
        }
    }

    /// Runs until the node has left, or every handle is gone.
    pub(crate) async fn run(mut self, mut io: Io, mut sync_rx: mpsc::Receiver<SyncRequest>) {
        let mut buf = vec![0u8; RECV_BUFFER];
        let mut refresh = interval(VIEW_REFRESH);
        refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut health_open = true;
        let mut accept_paused_until: Option<tokio::time::Instant> = None;
        // Nothing can have departed before the first input.
        self.after_input(&io.udp, Instant::now());
        loop {
            let far = tokio::time::Instant::now() + Duration::from_secs(3600);
            let timer = self.node.poll_timeout().map(|at| {
                tokio::time::Instant::from_std(at.max(self.last_timeout + MIN_TIMER_STEP))
            });
            let leave_deadline = self.leaving.as_ref().map(|l| l.deadline);
            let accepting =
                accept_paused_until.is_none_or(|until| tokio::time::Instant::now() >= until);
            let input = tokio::select! {
                r = io.udp.recv_from(&mut buf) => Input::Datagram(r),
                r = io.listener.accept(), if accepting => Input::Connection(r),
                Some(request) = sync_rx.recv() => Input::SyncRequest(request),
                Some(r) = self.outgoing.join_next(), if !self.outgoing.is_empty() => Input::Exchanged(r),
                Some(_) = self.incoming.join_next(), if !self.incoming.is_empty() => Input::Served,
                Some(r) = self.checks.join_next(), if !self.checks.is_empty() => Input::Reached(r),
                command = io.commands.recv() => Input::Command(command),
                r = io.health.changed(), if health_open => Input::Health(r.is_ok()),
                () = sleep_until(timer.unwrap_or(far)), if timer.is_some() => Input::Timer,
                () = sleep_until(leave_deadline.unwrap_or(far)), if leave_deadline.is_some() => Input::LeaveDeadline,
                _ = refresh.tick() => Input::Refresh,
            };
            let now = Instant::now();
            match input {
                Input::Datagram(Ok((len, from))) => {
                    if let Err(e) = self.node.handle_packet(now, from, &buf[..len]) {
                        debug!(%from, error = %e, "dropped a datagram that did not decode");
                    }
                }
                Input::Datagram(Err(e)) => debug!(error = %e, "receiving a datagram failed"),
                Input::Connection(Ok((stream, from))) => {
                    accept_paused_until = None;
                    self.serve(stream, from);
                }
                Input::Connection(Err(e)) => {
                    warn!(error = %e, "accepting a push-pull connection failed; pausing accepts briefly");
                    accept_paused_until = Some(tokio::time::Instant::now() + ACCEPT_BACKOFF);
                }
                Input::SyncRequest(request) => self.answer(now, request),
                Input::Exchanged(Ok((exchange, result))) => self.exchanged(now, exchange, result),
                Input::Exchanged(Err(e)) => debug!(error = %e, "a push-pull task ended abnormally"),
                Input::Reached(Ok((probe, outcome))) => {
                    self.node.handle_reachability(now, probe, outcome)
                }
                Input::Reached(Err(e)) => {
                    debug!(error = %e, "a reachability check ended abnormally")
                }
                Input::Served | Input::Timer => {}
                Input::Refresh => self.dirty = true,
                Input::Command(None) => {
                    debug!("every cluster handle is gone; stopping the driver");
                    return;
                }
                Input::Command(Some(command)) => self.command(now, command),
                Input::Health(true) => {
                    let (health, score) = *io.health.borrow_and_update();
                    self.set_health(now, health, score);
                }
                Input::Health(false) => health_open = false,
                Input::LeaveDeadline => {
                    debug!("leave deadline reached; stopping");
                    break;
                }
            }
            if self.after_input(&io.udp, now) == Flow::Stop {
                break;
            }
        }
        self.finish();
    }

    /// Serves an accepted connection in its own task, if it can have a place among the
    /// connections (see [`MAX_UNVERIFIED_PER_HOST`] and [`MAX_UNVERIFIED`] for whose place it
    /// takes while they wait for their hello).
    fn serve(&mut self, stream: tokio::net::TcpStream, from: SocketAddr) {
        self.unverified.retain(|c| !c.task.is_finished());
        // Tasks just aborted count until the loop reaps them, a moment later.
        let verified = self.incoming.len().saturating_sub(self.unverified.len());
        if verified >= MAX_INCOMING {
            debug!(%from, "too many push-pull connections at once; closing this one");
            return;
        }
        let host = from.ip().to_canonical();
        let origin = if self.member_hosts.contains(&host) {
            Origin::MemberHost
        } else {
            Origin::Stranger
        };
        let from_host = self.unverified.iter().filter(|c| c.host == host).count();
        let evict = if from_host >= MAX_UNVERIFIED_PER_HOST {
            Some(host)
        } else if self.unverified.len() >= MAX_UNVERIFIED {
            self.greediest_host()
        } else {
            None
        };
        if let Some(greedy) = evict {
            if let Some(oldest) = self.unverified.iter().position(|c| c.host == greedy) {
                if let Some(evicted) = self.unverified.remove(oldest) {
                    debug!(%from, host = %greedy, "too many push-pull connections without a hello; closing the oldest");
                    evicted.task.abort();
                }
            }
        }
        let driver = self.sync_tx.clone();
        let task = self.incoming.spawn(async move {
            if let Err(e) = sync::serve(stream, from, driver).await {
                debug!(%from, error = %e, "push-pull exchange (accepted) failed");
            }
        });
        self.unverified.push_back(Unverified { task, host, origin });
    }

    /// The host holding the most places among the unverified connections, strangers first.
    fn greediest_host(&self) -> Option<IpAddr> {
        let mut held: HashMap<IpAddr, (Origin, usize)> = HashMap::new();
        for connection in &self.unverified {
            held.entry(connection.host)
                .or_insert((connection.origin, 0))
                .1 += 1;
        }
        held.into_iter()
            .max_by_key(|&(_, (origin, count))| (origin, count))
            .map(|(host, _)| host)
    }

    /// Tries two TCP connections at once to a member's gossip port, in a task of their own: two
    /// handshakes, so that one lost packet does not pass for a silent host.
    fn check(&mut self, check: ReachabilityCheck) {
        if self.checks.len() >= MAX_CHECKS {
            debug!(addr = %check.addr, "too many reachability checks at once; skipping this one");
            return;
        }
        self.checks.spawn(async move {
            let outcome = match tokio::time::timeout(check.wait, first_answer(check.addr)).await {
                Ok(Some(outcome)) => outcome,
                Ok(None) => Reachability::Unknown,
                Err(_) => check.on_silence,
            };
            (check.probe, outcome)
        });
    }

    /// An accepted connection's hello or state: check the hello, or merge the state and answer
    /// with ours; refuse (drop the reply) what does not decode.
    fn answer(&mut self, now: Instant, request: SyncRequest) {
        match request {
            SyncRequest::Hello {
                from,
                task,
                frame,
                reply,
            } => match self.node.handle_sync_hello(now, from, &frame) {
                Ok(state_len) => {
                    self.unverified.retain(|c| c.task.id() != task);
                    let _ = reply.send(state_len);
                }
                Err(e) => debug!(%from, error = %e, "refused a push-pull hello"),
            },
            SyncRequest::State { from, frame, reply } => {
                match self.node.handle_sync(now, from, &frame) {
                    Ok(()) => {
                        let ours = self.node.sync_payload();
                        let _ = reply.send(ours);
                    }
                    Err(e) => {
                        debug!(%from, error = %e, "refused a push-pull state that did not decode")
                    }
                }
            }
        }
    }

    /// The end of an exchange this node opened.
    fn exchanged(&mut self, now: Instant, exchange: Exchange, result: io::Result<Vec<u8>>) {
        let peer = exchange.peer;
        match result {
            Ok(payload) => {
                if let Err(e) = self.node.handle_sync_answer(now, exchange.id, &payload) {
                    debug!(%peer, error = %e, "push-pull answer did not decode");
                }
            }
            Err(e) => {
                debug!(%peer, error = %e, "push-pull exchange failed");
                self.node.handle_sync_failed(now, exchange.id);
            }
        }
    }

    fn command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Leave { within, done } => self.leave(now, within, done),
            Command::SetVoters(mut voters) => {
                voters.sort();
                voters.dedup();
                if voters != self.voters {
                    self.voters = voters;
                    self.publish(now);
                }
            }
            Command::Keyring { op, reply } => {
                let result = match self.node.keyring_mut() {
                    None => Err(ClusterError::NotEncrypted),
                    Some(ring) => keyring::apply(ring, op)
                        .map(|changed| KeyringChange {
                            keys: keyring::infos(ring),
                            changed: changed.then(|| ring.clone()),
                        })
                        .map_err(ClusterError::from),
                };
                if let Ok(KeyringChange {
                    changed: Some(ring),
                    ..
                }) = &result
                {
                    info!(primary = %ring.primary().fingerprint(), keys = ring.keys().count(), "keyring changed");
                }
                let _ = reply.send(result);
            }
        }
    }

    /// Spreads a new health at once, and a new score only once it moved [`SCORE_STEP`] points
    /// from the one spread last: a score follows measurements (memory, disk, load) that wander by
    /// a point from one second to the next, and every change is an update every member receives,
    /// so spreading each wobble would make each member's traffic grow with the cluster.
    fn set_health(&mut self, now: Instant, health: Health, score: u8) {
        let score = score.min(100);
        let current = self.node.metadata();
        if current.health == health && current.score.abs_diff(score) < SCORE_STEP {
            return;
        }
        let mut meta = current.clone();
        meta.health = health;
        meta.score = score;
        self.node.set_metadata(now, meta);
        self.dirty = true;
    }

    /// Starts a graceful leave: the node announces it, over UDP and in push-pull exchanges whose
    /// answers confirm the peers know. The driver stops when the node says it has departed, or
    /// at `within`.
    fn leave(&mut self, now: Instant, within: Duration, done: oneshot::Sender<()>) {
        if let Some(leaving) = self.leaving.as_mut() {
            leaving.done.push(done);
            return;
        }
        info!(id = %self.node.id(), "leaving the cluster");
        self.node.leave(now);
        self.leaving = Some(Leaving {
            deadline: tokio::time::Instant::now() + within,
            done: vec![done],
        });
        self.dirty = true;
    }

    /// Runs an exchange the node asked for, in its own task.
    fn open(&mut self, exchange: Exchange) {
        let state = self.node.sync_payload();
        let hello = self.node.sync_hello(state.len());
        self.outgoing.spawn(async move {
            let result = sync::exchange(exchange.peer, hello, state).await;
            (exchange, result)
        });
    }

    /// Carries out what the node asks after an input, and publishes what changed.
    fn after_input(&mut self, udp: &UdpSocket, now: Instant) -> Flow {
        // Inputs may keep the select busy; never let the node's deadlines starve behind them.
        if self.node.poll_timeout().is_some_and(|at| at <= now) {
            self.node.handle_timeout(now);
            self.last_timeout = now;
        }
        let mut events = Vec::new();
        let mut flow = Flow::Continue;
        while let Some(output) = self.node.poll() {
            match output {
                Output::Transmit(transmit) => {
                    if let Err(e) = udp.try_send_to(&transmit.payload, transmit.to) {
                        debug!(to = %transmit.to, error = %e, "dropped a datagram that could not be sent");
                    }
                }
                Output::Exchange(exchange) => self.open(exchange),
                Output::Reachability(check) => self.check(check),
                Output::Event(event) => events.push(event),
                Output::Departed => flow = Flow::Stop,
            }
        }
        if events.is_empty() && !self.dirty {
            return flow;
        }
        self.publish(now);
        let wall = SystemTime::now();
        for event in events {
            if let Some(event) = self.membership_event(event, now, wall) {
                let _ = self.shared.events.send(event);
            }
        }
        flow
    }

    /// Rebuilds and swaps in the snapshot.
    fn publish(&mut self, now: Instant) {
        self.member_hosts = self
            .node
            .members()
            .filter(|m| m.state.is_active())
            .map(|m| m.addr.ip().to_canonical())
            .collect();
        let view = ClusterView::of(&mut self.node, &self.voters, now, SystemTime::now());
        self.shared.view.store(Arc::new(view));
        self.dirty = false;
    }

    fn membership_event(
        &self,
        event: Event,
        now: Instant,
        wall: SystemTime,
    ) -> Option<MembershipEvent> {
        let view = |m| MemberView::of(&self.node, &m, now, wall);
        let event = match event {
            Event::MemberUp(m) => MembershipEvent::Up(view(m)),
            Event::MemberUpdated(m) => MembershipEvent::Updated(view(m)),
            Event::MemberSuspect(m) => MembershipEvent::Suspect(view(m)),
            Event::MemberAlive(m) => MembershipEvent::Alive(view(m)),
            Event::MemberDown(m) => MembershipEvent::Down(view(m)),
            Event::MemberLeft(m) => MembershipEvent::Left(view(m)),
            Event::Refuted { incarnation } => {
                info!(incarnation, "refuted a suspicion of this node");
                return None;
            }
        };
        let m = event.member();
        match &event {
            MembershipEvent::Updated(_) => {
                debug!(id = %m.id, health = m.health.as_str(), score = m.score, "member updated");
            }
            _ => info!(id = %m.id, addr = %m.addr, incarnation = m.incarnation, "{}", event.kind()),
        }
        Some(event)
    }

    /// Publishes the last snapshot and tells whoever waits for the leave.
    fn finish(mut self) {
        self.publish(Instant::now());
        if let Some(leaving) = self.leaving.take() {
            info!(id = %self.node.id(), "left the cluster");
            for done in leaving.done {
                let _ = done.send(());
            }
        }
    }
}

/// Two connection attempts to `addr` at once: what the host answered to the first one it
/// answered, a handshake or a refusal; `None` when both failed otherwise, which says nothing.
async fn first_answer(addr: SocketAddr) -> Option<Reachability> {
    let mut first = pin!(attempt(addr));
    let mut second = pin!(attempt(addr));
    tokio::select! {
        answer = &mut first => match answer {
            Some(answer) => Some(answer),
            None => second.await,
        },
        answer = &mut second => match answer {
            Some(answer) => Some(answer),
            None => first.await,
        },
    }
}

async fn attempt(addr: SocketAddr) -> Option<Reachability> {
    match TcpStream::connect(addr).await {
        Ok(_) => Some(Reachability::Accepting),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Some(Reachability::Refused),
        Err(_) => None,
    }
}
