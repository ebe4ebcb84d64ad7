//! Leadership and the service registry: the voters of a cluster run Raft (the `openraft`
//! crate) over an authenticated TCP transport, with durable storage, and replicate the
//! registry of service instances and node health. The Raft leader is the cluster leader.
//!
//! [`Leadership`] is the running group on one voter: it tells who leads and how fresh this
//! node's view is, takes registry writes (on the leader; elsewhere it says where the leader
//! is), and does the leader's chores: recording itself as leader, removing the ephemeral
//! instances of nodes membership declared dead or gone, and recording each node's health.
//!
//! Health-aware leadership: a voter marked unhealthy ([`Leadership::set_healthy`]) stops
//! campaigning, and if it leads, it stops sending heartbeats, refuses writes, and asks a
//! healthy follower that holds its whole log to stand for election at once. openraft 0.9 has
//! no leadership transfer; this is one built from what it has. The old leader grants that
//! candidate its vote (its own vote dates from its election, so no lease holds it back), and
//! the two make a majority of three. Should that fail, the followers stop hearing heartbeats
//! and elect one of themselves after their election timeout anyway.
//!
//! Pre-vote: openraft 0.9 has none, and a voter cut off from the others would raise its term at
//! every election timeout, then force the healthy majority's leader out when the cut heals. So
//! openraft's own election timer is off, and vigil starts every election itself (its election
//! watchdog): only once no leader has been heard for its lease, and only after a
//! majority of voters, asked with a `PreVote` frame that changes nothing, said they would vote.
//! A voter that cannot reach a majority never raises its term; a lone voter is its own majority
//! and needs nobody's answer.
//!
//! A leader whose process exited needs no lease: when the connection it sent heartbeats on
//! closes, or it misses two of them, a follower dials its Raft port, and a refusal (the host is
//! up, nothing listens) lets the followers stand for election as soon as openraft's own short
//! lease allows, in the order of their ids (see `exit`).

mod backup;
mod binding;
mod coordination;
mod exit;
mod frame;
mod instance;
mod keeper;
mod limits;
mod network;
mod state;
mod store;
mod types;
mod voters;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openraft::error::{ClientWriteError, RaftError};
use openraft::storage::RaftLogStorage;
use openraft::{ServerState, SnapshotPolicy};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};
use vigil_gossip::MemberState;

pub use backup::{Backup, BackupError, Header as BackupHeader};
pub use binding::{Kind, Refused};
pub use coordination::{
    natural_cmp, Campaign, Candidate, Coordination, Held, InstanceRef, Policy, Refusal, Role,
    RoleKind, Session, MAX_CANDIDATES, MAX_ROLES, MAX_SESSIONS,
};
pub use frame::{WireError, MAX_FRAME, MAX_HELLO_FRAME};
pub use instance::{
    compacted, CheckBody, CheckMap, CheckReport, InstanceHealth, InstanceReport, InstanceState,
    JsonObject, MAX_OUTPUT,
};
pub use limits::{MAX_CONNECTIONS, MAX_PER_ADDRESS};
pub use network::{fuzz_decode_inbound, FRAME_WITHIN, HELLO_WITHIN};
pub use state::{
    is_gone, Applied, Command, HealthReport, Instances, LeaderRecord, Registry, ServiceInstance,
};
pub use store::Published;
pub use voters::{GroupMember, GroupRole, MembershipError, VoterSet};

use crate::error::ClusterError;
use crate::Cluster;
use exit::LeaderExit;
use keeper::Keeper;
use network::{
    ask_to_campaign, pre_vote, Keys, LeaderContact, Network, Resolver, Service, Version,
};
use types::{raft_id, Raft, Voter};

/// The gossip tag under which a voter publishes its Raft address.
pub const RAFT_TAG: &str = "raft";

/// Leader changes kept for a slow subscriber.
const EVENT_BUFFER: usize = 256;
/// How often the leader reconciles the registry with membership.
const RECONCILE_EVERY: Duration = Duration::from_millis(250);
/// How often the leader looks for sessions whose TTL lapsed.
const SESSION_SWEEP: Duration = Duration::from_millis(25);
/// The pauses before probing a leader's port again after a closed link found it open.
const REPROBE_AFTER: [Duration; 3] = [
    Duration::from_millis(2),
    Duration::from_millis(10),
    Duration::from_millis(40),
];
/// Score change (in points) worth recording in the registry.
const SCORE_STEP: u8 = 5;

/// What a voter needs to run Raft.
#[derive(Clone, Debug)]
pub struct RaftConfig {
    /// Where the data lives (created if missing): the log, vote and snapshot.
    pub data_dir: PathBuf,
    /// The bootstrap voters' node ids: the voters a new cluster starts with (every one of them
    /// lists the same set). A node not among them starts as a learner that waits to be added
    /// ([`Leadership::add_voter`]); once the cluster runs, its voters are Raft's membership.
    pub voters: Vec<String>,
    /// The longest election timeout, which is also the leader's lease: a follower stands for
    /// election once it has heard no leader for this long plus up to a quarter of it at random
    /// (openraft's own timer, half of it to all of it after the lease, is the fallback).
    /// Heartbeats go every sixth of it.
    pub election_timeout: Duration,
}

/// The bound Raft port, before Raft starts: bound first so that its address can be published
/// in the node's gossip tags.
#[derive(Debug)]
pub struct RaftListener {
    listener: TcpListener,
    addr: SocketAddr,
}

impl RaftListener {
    /// Binds the Raft TCP port (port 0 picks one).
    pub async fn bind(addr: SocketAddr) -> Result<RaftListener, ClusterError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ClusterError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ClusterError::Bind { addr, source })?;
        Ok(RaftListener { listener, addr })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Why a registry write or a consistent read did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// This node cannot reach a majority of voters (or is the leader of a minority, or is
    /// handing leadership over); nothing was written.
    #[error("no quorum: {0}")]
    NoQuorum(String),
    /// Another voter leads: send the request there.
    #[error("not the leader; the leader is {}", leader.as_deref().unwrap_or("unknown"))]
    NotLeader {
        /// The leader's node id, when known.
        leader: Option<String>,
        /// The leader's HTTP API address, when known.
        api_address: Option<SocketAddr>,
    },
    /// Raft has stopped on this node.
    #[error("raft stopped: {0}")]
    Stopped(String),
}

/// Why a session was not renewed.
#[derive(Debug, thiserror::Error)]
pub enum RenewError {
    /// No such session (it ended, or never was).
    #[error("no session {0}")]
    Unknown(String),
    /// The cluster gave the session up; what it holds is released when it ends.
    #[error("session {id} is invalidated: {reason}")]
    Invalidated {
        /// The session.
        id: String,
        /// Why.
        reason: String,
    },
    /// Not the leader, no quorum, or stopped.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Who leads, as this node sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeaderStatus {
    /// The leader's node id, when there is one.
    pub leader_id: Option<String>,
    /// The current Raft term.
    pub term: u64,
    /// Whether this node is the leader.
    pub is_leader: bool,
    /// Whether this node is in touch with a majority: as leader, a majority acknowledged it
    /// within the election timeout; as follower, it heard from a leader within it.
    pub has_quorum: bool,
    /// When the leader took office (its own clock), milliseconds since the Unix epoch.
    pub since_ms: Option<u64>,
    /// The leader's HTTP API address, from membership.
    pub api_address: Option<SocketAddr>,
    /// How old this node's registry may be, in milliseconds: 0 on a leader with quorum, the
    /// time since the last contact with a leader otherwise (`None`: never in contact).
    pub stale_ms: Option<u64>,
}

/// A leader change this node observed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeaderEvent {
    /// The new leader's node id; `None` while an election runs.
    pub leader_id: Option<String>,
    /// The term.
    pub term: u64,
    /// When this node saw the change, milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// The Raft group as run by one voter. Cheap to clone.
#[derive(Clone)]
pub struct Leadership {
    inner: Arc<Inner>,
}

struct Inner {
    raft: Raft,
    name: String,
    cluster: Cluster,
    published: Arc<watch::Sender<Arc<Published>>>,
    contact: Arc<LeaderContact>,
    /// When this voter last granted a vote: it gives that candidate a lease to win in.
    voted: Arc<LeaderContact>,
    /// What this voter found out about its leader's process.
    exit: Arc<LeaderExit>,
    election_timeout: Duration,
    /// How often a leader sends heartbeats.
    heartbeat: Duration,
    /// openraft's lease: how long after a leader's last word a voter refuses votes in openraft
    /// itself. Short (just over a heartbeat); vigil's longer lease is kept by the pre-vote.
    raft_lease: Duration,
    healthy: Arc<AtomicBool>,
    network: Network,
    /// This voter's log, read for its last log id before a pre-vote.
    log: store::LogStore,
    changes: AtomicU64,
    /// When this voter last took office, while it leads.
    leading_since: Mutex<Option<tokio::time::Instant>>,
    /// Session renewals, while this voter leads.
    keeper: Mutex<Option<Keeper>>,
    events: broadcast::Sender<LeaderEvent>,
    tasks: Mutex<Vec<AbortHandle>>,
    /// Set when [`Leadership::shutdown`] stops Raft, so that its end is not taken for a failure.
    stopping: AtomicBool,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("node", &self.inner.name)
            .finish_non_exhaustive()
    }
}

/// The guarded value, whether or not a holder panicked: every value kept under these locks is
/// whole at all times.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// [`LeaderStatus::stale_ms`] of a node that leads or not, has quorum or not, and last knew its
/// registry current `stale` ago.
fn stale_ms(is_leader: bool, has_quorum: bool, stale: Option<Duration>) -> Option<u64> {
    if is_leader && has_quorum {
        Some(0)
    } else {
        stale.map(millis)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Leadership {
    /// Opens the store under `config.data_dir`, starts Raft on `listener` and, on a fresh
    /// store, proposes the initial membership of `config.voters` (every voter does; the log
    /// accepts it once). Voters' addresses are found through `cluster`'s gossip view, under
    /// the [`RAFT_TAG`] tag, and Raft frames are sealed with `cluster`'s current keyring.
    pub async fn start(
        config: RaftConfig,
        listener: RaftListener,
        cluster: Cluster,
    ) -> Result<Leadership, ClusterError> {
        let name = cluster.view().local_id.clone();
        let mut voters: Vec<String> = config.voters.clone();
        voters.sort();
        voters.dedup();
        let ids: BTreeSet<u64> = voters.iter().map(|v| raft_id(v)).collect();
        if ids.len() != voters.len() {
            return Err(ClusterError::Config(
                "two voter ids hash to the same Raft id; rename one".to_owned(),
            ));
        }
        let bootstrap = voters.contains(&name);
        let timeout = millis(config.election_timeout).max(60);
        let heartbeat = (timeout / 6).max(10);
        let raft_config = openraft::Config {
            cluster_name: "vigil".to_owned(),
            // openraft's election timer is off; its longest timeout is also how long it refuses
            // votes after a leader's last word. vigil's pre-vote keeps the whole lease, so this
            // one is as short as openraft allows: a leader whose process is gone is replaced
            // as soon as it runs out (see `exit`).
            election_timeout_min: heartbeat + 1,
            election_timeout_max: heartbeat + 2,
            heartbeat_interval: heartbeat,
            install_snapshot_timeout: 2_000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(1_000),
            max_in_snapshot_log_to_keep: 100,
            // Elections are vigil's, each after a pre-vote (see the watchdog).
            enable_elect: false,
            ..openraft::Config::default()
        }
        .validate()
        .map_err(|e| ClusterError::Config(format!("raft timings: {e}")))?;
        let raft_lease = Duration::from_millis(raft_config.election_timeout_max);

        let db = store::open(&config.data_dir).map_err(ClusterError::Config)?;
        let published = Arc::new(watch::Sender::new(Arc::new(Published::default())));
        let snapshots = store::SnapshotStore::new(db.clone(), &config.data_dir);
        let machine = store::StateMachine::load(snapshots, published.clone())
            .map_err(ClusterError::Config)?;
        let log = store::LogStore::new(db);
        let log_reader = log.clone();
        let view_cluster = cluster.clone();
        let resolve: Resolver = Arc::new(move |voter: &str| {
            let view = view_cluster.view();
            let member = view.member(voter)?;
            member.tags.get(RAFT_TAG)?.parse().ok()
        });
        // Raft frames are sealed with the cluster keyring as it is at each exchange, so a key
        // rotation through `vigil keyring` covers Raft too; without a key they go in the clear,
        // as gossip does.
        let keys_cluster = cluster.clone();
        let keys: Keys = Arc::new(move || keys_cluster.current_keyring());
        let network = Network::new(
            resolve,
            keys.clone(),
            cluster.protocol_versions(),
            Some(listener.addr.ip()),
        );
        let version_cluster = cluster.clone();
        let version: Version = Arc::new(move || version_cluster.view().protocol_version);
        let raft = Raft::new(
            raft_id(&name),
            Arc::new(raft_config),
            network.clone(),
            log,
            machine,
        )
        .await
        .map_err(|e| ClusterError::Config(format!("cannot start raft: {e}")))?;
        let contact = Arc::new(LeaderContact::new());
        let voted = Arc::new(LeaderContact::new());
        let exit = Arc::new(LeaderExit::new());
        let healthy = Arc::new(AtomicBool::new(true));
        let server = tokio::spawn(network::serve(
            listener.listener,
            Service {
                voter: raft_id(&name),
                raft: raft.clone(),
                keys,
                version,
                contact: contact.clone(),
                voted: voted.clone(),
                healthy: healthy.clone(),
                log: log_reader.clone(),
                lease: config.election_timeout,
                raft_lease,
                exit: exit.clone(),
            },
        ));

        let initialized = raft.is_initialized().await.unwrap_or(true);
        if !initialized && bootstrap {
            let members: BTreeMap<u64, Voter> = voters
                .iter()
                .map(|v| (raft_id(v), Voter { name: v.clone() }))
                .collect();
            if let Err(e) = raft.initialize(members).await {
                info!(error = %e, "raft membership already set");
            }
        } else if !initialized {
            info!(
                bootstrap = ?voters,
                "not a bootstrap voter: waiting to be added (`vigil voters add {name}` on any agent)"
            );
        }
        info!(addr = %listener.addr, "raft running");

        let leadership = Leadership {
            inner: Arc::new(Inner {
                raft,
                name,
                cluster,
                published,
                contact,
                voted,
                exit,
                election_timeout: config.election_timeout,
                heartbeat: Duration::from_millis(heartbeat),
                raft_lease,
                healthy,
                network,
                log: log_reader,
                changes: AtomicU64::new(0),
                leading_since: Mutex::new(None),
                keeper: Mutex::new(None),
                events: broadcast::channel(EVENT_BUFFER).0,
                tasks: Mutex::new(vec![server.abort_handle()]),
                stopping: AtomicBool::new(false),
            }),
        };
        let watcher = tokio::spawn(leadership.clone().watch_leader());
        let reconciler = tokio::spawn(leadership.clone().reconcile());
        let watchdog = tokio::spawn(leadership.clone().watchdog());
        let exit_probe = tokio::spawn(leadership.clone().probe_leader_exit());
        leadership.track(exit_probe.abort_handle());
        let sessions = tokio::spawn(leadership.clone().keep_sessions());
        let membership = tokio::spawn(leadership.clone().follow_membership());
        leadership.track(membership.abort_handle());
        leadership.track(sessions.abort_handle());
        leadership.track(watchdog.abort_handle());
        leadership.track(watcher.abort_handle());
        leadership.track(reconciler.abort_handle());
        Ok(leadership)
    }

    fn track(&self, task: AbortHandle) {
        lock(&self.inner.tasks).push(task);
    }

    /// The node id of Raft id `id`, as the membership this node last saw records it. It reads
    /// Raft's metrics: never call it while holding a borrow of them (see `ready_to_lead`).
    fn name_of(&self, id: u64) -> Option<String> {
        let metrics = self.inner.raft.metrics();
        let metrics = metrics.borrow();
        metrics
            .membership_config
            .membership()
            .get_node(&id)
            .map(|voter| voter.name.clone())
    }

    /// Waits until this node's Raft server stops without [`Leadership::shutdown`] asking it to
    /// (a fatal storage error, a panic inside openraft), and says what stopped it. Such a node
    /// can neither lead nor vote nor write again until its process starts anew.
    pub async fn failed(&self) -> String {
        let mut metrics = self.inner.raft.metrics();
        loop {
            let ended = match &metrics.borrow_and_update().running_state {
                Err(fatal) => Some(fatal.to_string()),
                Ok(()) => None,
            };
            let ended = match ended {
                Some(why) => why,
                None => match metrics.changed().await {
                    Ok(()) => continue,
                    // The server's task dropped its end: it panicked (openraft's message is in
                    // the log just before).
                    Err(_) => "its task ended (a panic inside openraft)".to_owned(),
                },
            };
            if self.inner.stopping.load(Ordering::Relaxed) {
                return std::future::pending().await;
            }
            return ended;
        }
    }

    /// Whether this node's Raft server still runs: its metrics still have a sender, and say so.
    fn raft_runs(&self) -> bool {
        let metrics = self.inner.raft.metrics();
        metrics.has_changed().is_ok() && metrics.borrow().running_state.is_ok()
    }

    /// Who leads and how fresh this node's registry is. A node whose Raft server has stopped
    /// knows of no leader: the last state it saw is not taken for the present.
    pub fn status(&self) -> LeaderStatus {
        let metrics = self.inner.raft.metrics().borrow().clone();
        let runs = self.raft_runs();
        let leader_id = metrics
            .current_leader
            .filter(|_| runs)
            .and_then(|id| self.name_of(id));
        let is_leader = runs && metrics.state == ServerState::Leader;
        let stale = self.stale(
            is_leader,
            leader_id.is_some(),
            metrics.millis_since_quorum_ack,
        );
        let has_quorum = self.has_quorum(stale);
        let record = self.inner.published.borrow().registry.leader.clone();
        let since_ms = record
            .filter(|r| Some(&r.node) == leader_id.as_ref() && r.term == metrics.current_term)
            .map(|r| r.since_ms);
        let api_address = leader_id
            .as_deref()
            .and_then(|l| self.inner.cluster.view().member(l).and_then(|m| m.api_addr));
        LeaderStatus {
            leader_id,
            term: metrics.current_term,
            is_leader,
            has_quorum,
            since_ms,
            api_address,
            stale_ms: stale_ms(is_leader, has_quorum, stale),
        }
    }

    /// [`LeaderStatus::stale_ms`] alone, without copying Raft's metrics: discovery answers
    /// carry it on every request.
    pub fn stale_ms(&self) -> Option<u64> {
        let metrics = self.inner.raft.metrics();
        let sender_alive = metrics.has_changed().is_ok();
        let metrics = metrics.borrow();
        let runs = sender_alive && metrics.running_state.is_ok();
        let is_leader = runs && metrics.state == ServerState::Leader;
        let has_leader = runs
            && metrics.current_leader.is_some_and(|id| {
                metrics
                    .membership_config
                    .membership()
                    .get_node(&id)
                    .is_some()
            });
        let stale = self.stale(is_leader, has_leader, metrics.millis_since_quorum_ack);
        stale_ms(is_leader, self.has_quorum(stale), stale)
    }

    /// How long since this node last knew its registry current: on the leader, since a majority
    /// last acknowledged it; on a follower of a known leader, since it last heard from it.
    fn stale(
        &self,
        is_leader: bool,
        has_leader: bool,
        since_quorum_ack_ms: Option<u64>,
    ) -> Option<Duration> {
        if is_leader {
            since_quorum_ack_ms.map(Duration::from_millis)
        } else if has_leader {
            self.inner.contact.since()
        } else {
            None
        }
    }

    fn has_quorum(&self, stale: Option<Duration>) -> bool {
        stale.is_some_and(|s| s <= self.inner.election_timeout)
    }

    /// The registry as this node last applied it.
    pub fn registry(&self) -> Arc<Published> {
        self.inner.published.borrow().clone()
    }

    /// The registry as this node applies it, told of every apply.
    pub fn watch_registry(&self) -> watch::Receiver<Arc<Published>> {
        self.inner.published.subscribe()
    }

    /// The registry after every write committed before the call: confirmed with a majority
    /// by the leader. Fails on any other node with [`WriteError::NotLeader`].
    pub async fn read_consistent(&self) -> Result<Arc<Published>, WriteError> {
        self.ready_to_lead()?;
        let checked = tokio::time::timeout(
            self.inner.election_timeout * 2,
            self.inner.raft.ensure_linearizable(),
        )
        .await;
        match checked {
            Ok(Ok(_)) => Ok(self.registry()),
            Ok(Err(RaftError::APIError(e))) => Err(match e {
                openraft::error::CheckIsLeaderError::ForwardToLeader(f) => {
                    self.not_leader(f.leader_id)
                }
                openraft::error::CheckIsLeaderError::QuorumNotEnough(q) => {
                    WriteError::NoQuorum(q.to_string())
                }
            }),
            Ok(Err(RaftError::Fatal(e))) => Err(WriteError::Stopped(e.to_string())),
            Err(_) => Err(WriteError::NoQuorum(format!(
                "a majority of voters did not confirm this leader within {:?}",
                self.inner.election_timeout * 2
            ))),
        }
    }

    fn not_leader(&self, leader: Option<u64>) -> WriteError {
        let leader = leader.and_then(|id| self.name_of(id));
        let api_address = leader
            .as_deref()
            .and_then(|l| self.inner.cluster.view().member(l).and_then(|m| m.api_addr));
        WriteError::NotLeader {
            leader,
            api_address,
        }
    }

    /// Refuses early what a leader could not commit: not leading, leading a minority, or
    /// handing over.
    fn ready_to_lead(&self) -> Result<(), WriteError> {
        let status = self.status();
        if !status.is_leader {
            // Read on its own: `not_leader` reads Raft's metrics again, and a second read while
            // the first is held can wait forever behind Raft's next write of them.
            let leader = self.inner.raft.metrics().borrow().current_leader;
            return match status.leader_id {
                Some(_) if status.has_quorum => Err(self.not_leader(leader)),
                // Cut off from the leader past its lease: passing the request on would wait on
                // a leader this voter cannot reach (or one that no longer leads).
                Some(leader) => Err(WriteError::NoQuorum(format!(
                    "voter {} has not heard from leader {leader} for {} ms",
                    self.inner.name,
                    status.stale_ms.map_or("ever".to_owned(), |s| s.to_string())
                ))),
                None => Err(WriteError::NoQuorum(format!(
                    "no leader is known to voter {} (term {}); an election may be under way",
                    self.inner.name, status.term
                ))),
            };
        }
        if !self.inner.healthy.load(Ordering::Relaxed) {
            return Err(WriteError::NoQuorum(
                "the leader's critical checks fail and it is handing leadership over".to_owned(),
            ));
        }
        if !status.has_quorum {
            return Err(WriteError::NoQuorum(format!(
                "leader {} has not heard from a majority of voters for {} ms",
                self.inner.name,
                status.stale_ms.map_or("ever".to_owned(), |s| s.to_string())
            )));
        }
        Ok(())
    }

    /// Commits `command` through Raft and returns what applying it did. Only the leader
    /// writes; a write that is not committed within twice the election timeout fails with
    /// [`WriteError::NoQuorum`] (it may still commit later, as with any consensus store).
    pub async fn write(&self, command: Command) -> Result<Applied, WriteError> {
        self.ready_to_lead()?;
        let limit = self.inner.election_timeout * 2;
        match tokio::time::timeout(limit, self.inner.raft.client_write(command)).await {
            Ok(Ok(response)) => Ok(response.data),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(self.not_leader(f.leader_id))
            }
            Ok(Err(RaftError::APIError(e))) => Err(WriteError::NoQuorum(e.to_string())),
            Ok(Err(RaftError::Fatal(e))) => Err(WriteError::Stopped(e.to_string())),
            Err(_) => Err(WriteError::NoQuorum(format!(
                "the write was not committed by a majority within {limit:?}"
            ))),
        }
    }

    /// Renews session `id` on the leader, once a majority confirmed this leader after the
    /// renewal arrived (so no later leader ends the session sooner than one TTL after it), and
    /// returns the session.
    pub async fn renew(&self, id: &str) -> Result<Session, RenewError> {
        self.ready_to_lead()?;
        let received = Instant::now();
        let known = |published: &Published| -> Result<Session, RenewError> {
            let session = published
                .registry
                .coordination
                .sessions
                .get(id)
                .ok_or_else(|| RenewError::Unknown(id.to_owned()))?;
            match &session.invalidated {
                Some(reason) => Err(RenewError::Invalidated {
                    id: id.to_owned(),
                    reason: reason.clone(),
                }),
                None => Ok(session.clone()),
            }
        };
        known(&self.registry())?;
        let confirmed = self.read_consistent().await?;
        let session = known(&confirmed)?;
        if let Some(keeper) = lock(&self.inner.keeper).as_mut() {
            keeper.renewed(id, received);
        }
        Ok(session)
    }

    /// Leader changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LeaderEvent> {
        self.inner.events.subscribe()
    }

    /// Leaders this node has seen elected since it started: each new (leader, term).
    pub fn leader_changes(&self) -> u64 {
        self.inner.changes.load(Ordering::Relaxed)
    }

    /// This node's own health verdict: an unhealthy voter does not campaign (the watchdog
    /// skips it), and an unhealthy leader goes quiet so that a healthy voter takes over.
    pub fn set_healthy(&self, healthy: bool) {
        if self.inner.healthy.swap(healthy, Ordering::Relaxed) == healthy {
            return;
        }
        self.inner.raft.runtime_config().heartbeat(healthy);
        if healthy {
            info!("healthy again: campaigning allowed");
        } else {
            warn!("critical checks fail: not campaigning, and handing leadership over if leading");
            if self.inner.raft.metrics().borrow().state == ServerState::Leader {
                let me = self.clone();
                tokio::spawn(async move { me.hand_over().await });
            }
        }
    }

    /// Asks the healthy followers, those furthest along the log first, one after another, to
    /// stand for election now, until one does. (A candidate missing entries would not get the
    /// old leader's vote; the next one is then asked.)
    async fn hand_over(&self) {
        // openraft has a voter grant no vote while its lease since the voter last changed its
        // vote runs; for this leader that was its election. A young leader waits it out, or
        // its vote would be refused.
        let since = *lock(&self.inner.leading_since);
        if let Some(since) = since {
            let lease_end = since + self.inner.raft_lease + self.inner.heartbeat / 4;
            tokio::time::sleep_until(lease_end).await;
        }
        let metrics = self.inner.raft.metrics().borrow().clone();
        let view = self.inner.cluster.view();
        let mut followers: Vec<(Option<u64>, String)> = metrics
            .replication
            .iter()
            .flat_map(|r| r.iter())
            .filter(|(id, _)| **id != metrics.id)
            .filter_map(|(id, matched)| Some((matched.map(|m| m.index), self.name_of(*id)?)))
            .filter(|(_, name)| {
                view.member(name).is_some_and(|m| {
                    m.state == MemberState::Alive && m.health != vigil_gossip::Health::Unhealthy
                })
            })
            .collect();
        followers.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let candidates = followers.into_iter().map(|(_, name)| name);
        for name in candidates {
            match ask_to_campaign(&self.inner.network, &name).await {
                Ok(true) => {
                    info!(to = %name, "handing leadership over");
                    return;
                }
                Ok(false) => info!(to = %name, "voter declined to campaign"),
                Err(e) => info!(to = %name, error = %e, "could not ask voter to campaign"),
            }
        }
        warn!("no healthy follower took leadership over; the others will elect one when their election timeout runs out");
    }

    /// Stops Raft and its tasks on this node (the store stays as it is).
    pub async fn shutdown(&self) {
        self.inner.stopping.store(true, Ordering::Relaxed);
        let tasks = std::mem::take(&mut *lock(&self.inner.tasks));
        for task in tasks {
            task.abort();
        }
        let _ = self.inner.raft.shutdown().await;
    }

    /// Follows Raft's metrics: counts and announces leader changes, and has a new leader
    /// record itself in the registry.
    async fn watch_leader(self) {
        let mut metrics: watch::Receiver<_> = self.inner.raft.metrics();
        let mut seen: Option<(Option<u64>, u64)> = None;
        let mut counted_term = None;
        loop {
            let (leader, term, state) = {
                let m = metrics.borrow_and_update();
                (m.current_leader, m.current_term, m.state)
            };
            if seen != Some((leader, term)) {
                seen = Some((leader, term));
                // Only an elected leader counts, once per term: the term that an election
                // begins, with no leader yet, is the same change still under way, and Raft
                // elects at most one leader per term, so a second leader seen in a term (a
                // node that started in the middle of an election sees the candidates' votes
                // settle) is not a second change.
                if leader.is_some() && counted_term.is_none_or(|counted| term > counted) {
                    counted_term = Some(term);
                    self.inner.changes.fetch_add(1, Ordering::Relaxed);
                }
                let event = LeaderEvent {
                    leader_id: leader.and_then(|id| self.name_of(id)),
                    term,
                    at_ms: now_ms(),
                };
                info!(leader = ?event.leader_id, term, "leader changed");
                let _ = self.inner.events.send(event);
                let since = (state == ServerState::Leader).then(tokio::time::Instant::now);
                *lock(&self.inner.leading_since) = since;
                *lock(&self.inner.keeper) = since.map(|_| Keeper::default());
                if state == ServerState::Leader {
                    let me = self.clone();
                    tokio::spawn(async move { me.record_leadership(term).await });
                }
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    }

    async fn record_leadership(&self, term: u64) {
        let record = LeaderRecord {
            node: self.inner.name.clone(),
            term,
            since_ms: now_ms(),
            api_address: self
                .inner
                .cluster
                .view()
                .local()
                .and_then(|m| m.api_addr)
                .map(|a| a.to_string()),
        };
        let deadline = tokio::time::Instant::now() + self.inner.election_timeout * 4;
        while tokio::time::Instant::now() < deadline {
            if self.inner.raft.metrics().borrow().current_term != term {
                return;
            }
            match self.write(Command::Leader(record.clone())).await {
                Ok(_) => return,
                Err(WriteError::NotLeader { .. }) | Err(WriteError::Stopped(_)) => return,
                Err(WriteError::NoQuorum(_)) => {
                    tokio::time::sleep(self.inner.election_timeout / 4).await
                }
            }
        }
    }

    /// Starts every election this voter stands in (openraft's own timer is off): once no
    /// leader has been heard for the lease (the longest election timeout, during which the
    /// other voters refuse pre-votes) plus up to a quarter of it at random, so that two
    /// followers rarely collide, and only after a pre-vote. Once the leader's process is found
    /// gone (see `exit`), after openraft's short lease instead, the surviving voters one after
    /// another in the order of their ids, half a heartbeat apart.
    ///
    /// The pre-vote asks the other voters whether they would vote for this one; it changes no
    /// term. A voter cut off from the majority hears too few yeses, keeps its term, and asks
    /// again a fifth of the timeout later; when the cut heals, the leader's heartbeats reach it
    /// and the healthy majority's leader is left alone. After an election that did not end with
    /// a leader (a split vote), the next one waits a whole timeout and jitter again. An
    /// unhealthy voter does not campaign at all.
    async fn watchdog(self) {
        let timeout = self.inner.election_timeout;
        let mut tick = tokio::time::interval((timeout / 25).max(Duration::from_millis(5)));
        let mut jitter = Self::jitter(timeout);
        let started = tokio::time::Instant::now();
        let mut next_try = started;
        // Once the leader's process is gone, the moment to look again, to the millisecond
        // rather than the tick.
        let mut wake = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.inner.exit.next_found_gone() => {}
                _ = tokio::time::sleep_until(wake.unwrap_or(next_try)), if wake.is_some() => {}
            }
            wake = None;
            let now = tokio::time::Instant::now();
            if !self.inner.healthy.load(Ordering::Relaxed) || now < next_try {
                continue;
            }
            let state = self.inner.raft.metrics().borrow().state;
            if !matches!(state, ServerState::Follower | ServerState::Candidate) {
                continue;
            }
            let gone = self.inner.exit.gone(&self.inner.contact);
            let patience = match gone {
                Some(leader) => self.patience_after_exit(leader),
                None => timeout + jitter,
            };
            // A vote granted gives its candidate the same lease to win in as a leader's word;
            // a voter that heard nobody yet counts its silence from its start.
            let silent = match (self.inner.contact.since(), self.inner.voted.since()) {
                (Some(contact), Some(voted)) => contact.min(voted),
                (contact, voted) => contact.or(voted).unwrap_or_else(|| started.elapsed()),
            };
            if silent <= patience {
                if gone.is_some() {
                    wake = Some(now + (patience - silent));
                }
                continue;
            }
            if !self.pre_vote().await {
                let retry = if gone.is_some() {
                    self.inner.heartbeat / 4
                } else {
                    timeout / 5
                };
                next_try = tokio::time::Instant::now() + retry;
                wake = gone.map(|_| next_try);
                continue;
            }
            match gone.and_then(|leader| self.name_of(leader)) {
                Some(leader) => info!(
                    %leader,
                    silent_ms = millis(silent),
                    "the leader's process is gone and a majority would vote: standing for election"
                ),
                None => info!(
                    silent_ms = millis(silent),
                    "no leader heard past its lease and a majority would vote: standing for election"
                ),
            }
            if self.inner.raft.trigger().elect().await.is_err() {
                return;
            }
            jitter = Self::jitter(timeout);
            next_try = tokio::time::Instant::now()
                + match gone {
                    // A split vote among the survivors: the next in line tries soon after.
                    Some(_) => self.inner.heartbeat * 2 + jitter / 4,
                    None => timeout + jitter,
                };
        }
    }

    /// How long a voter waits after the last word of a leader whose process is gone: until
    /// openraft's lease on the other voters ran out (a margin of a quarter heartbeat covers
    /// their hearing that word a little later), then half a heartbeat more for every
    /// surviving voter ahead of it in the order of ids, so that the first one in line is
    /// usually elected alone.
    fn patience_after_exit(&self, leader: u64) -> Duration {
        let me = raft_id(&self.inner.name);
        let ahead = self
            .voter_names()
            .iter()
            .filter(|(id, _)| *id != leader && *id < me)
            .count();
        let heartbeat = self.inner.heartbeat;
        self.inner.raft_lease
            + heartbeat / 4
            + (heartbeat / 2).saturating_mul(u32::try_from(ahead).unwrap_or(u32::MAX))
    }

    /// Finds out whether the leader's process is gone (see `exit`): probes its Raft port when
    /// a connection the leader spoke on closes, and once in every silence of two heartbeats.
    async fn probe_leader_exit(self) {
        let exit = self.inner.exit.clone();
        let contact = &self.inner.contact;
        let heartbeat = self.inner.heartbeat;
        let mut tick = tokio::time::interval(heartbeat / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let closed = tokio::select! {
                _ = tick.tick() => false,
                _ = exit.next_link_closed() => true,
            };
            if !closed && !exit.probe_due(contact, heartbeat) {
                continue;
            }
            let reading = contact.reading();
            let leader = {
                let metrics = self.inner.raft.metrics();
                let metrics = metrics.borrow();
                (metrics.state == ServerState::Follower)
                    .then_some(metrics.current_leader)
                    .flatten()
            };
            let Some(leader) = leader.filter(|_| exit.gone(contact).is_none()) else {
                continue;
            };
            let Some(name) = self.name_of(leader) else {
                continue;
            };
            let mut refused = self.inner.network.refuses(&name, heartbeat).await;
            // A dying process's kernel may close its connections an instant before its
            // listening socket: a closed link is probed a few times more, until a leader speaks.
            let again: &[Duration] = if closed { &REPROBE_AFTER } else { &[] };
            for pause in again {
                if refused || contact.reading() != reading {
                    break;
                }
                tokio::time::sleep(*pause).await;
                refused = self.inner.network.refuses(&name, heartbeat).await;
            }
            if refused {
                info!(
                    leader = %name,
                    "the leader's Raft port refuses connections: its process is gone"
                );
                exit.found(contact, reading, leader);
            }
        }
    }

    /// Whether a majority of voters, this one included, would vote for it now; never for a
    /// node that is not a voter (a learner catching up, a voter removed).
    async fn pre_vote(&self) -> bool {
        let me = raft_id(&self.inner.name);
        let voters = self.voter_names();
        if !voters.iter().any(|(id, _)| *id == me) {
            return false;
        }
        let peers: Vec<String> = voters
            .iter()
            .filter(|(id, _)| *id != me)
            .map(|(_, name)| name.clone())
            .collect();
        let majority = voters.len() / 2 + 1;
        let needed = majority.saturating_sub(1);
        if needed == 0 {
            return true;
        }
        let last_log_id = match self.inner.log.clone().get_log_state().await {
            Ok(state) => state.last_log_id,
            Err(e) => {
                warn!(error = %e, "cannot read the log for a pre-vote");
                return false;
            }
        };
        let within = self.inner.election_timeout;
        let granted = pre_vote(&self.inner.network, &peers, last_log_id, needed, within).await;
        if granted < needed {
            debug!(
                granted,
                needed, "pre-vote lost: a majority of voters is out of reach or hears a leader"
            );
        }
        granted >= needed
    }

    fn jitter(timeout: Duration) -> Duration {
        use rand::Rng;
        let quarter = millis(timeout / 4).max(1);
        Duration::from_millis(rand::rng().random_range(0..quarter))
    }

    /// While leading: ends the sessions whose TTL lapsed, gives up those whose instance or node
    /// failed, and has preempted holders resign in time (see [`Keeper::due`]); at every
    /// registry change and every [`SESSION_SWEEP`].
    async fn keep_sessions(self) {
        let mut registry = self.watch_registry();
        let mut tick = tokio::time::interval(SESSION_SWEEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                changed = registry.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            if self.ready_to_lead().is_err() {
                continue;
            }
            let current = self.registry();
            let due = match lock(&self.inner.keeper).as_mut() {
                Some(keeper) => keeper.due(&current.registry, Instant::now(), now_ms()),
                None => continue,
            };
            for command in due {
                if let Err(e) = self.write(command).await {
                    info!(error = %e, "session upkeep postponed");
                    break;
                }
            }
        }
    }

    /// While leading: removes the ephemeral instances of nodes membership declared dead or
    /// gone, and records each live node's health when it changed.
    async fn reconcile(self) {
        let mut members = self.inner.cluster.subscribe();
        let mut tick = tokio::time::interval(RECONCILE_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                event = members.recv() => {
                    if matches!(event, Err(broadcast::error::RecvError::Closed)) {
                        return;
                    }
                }
            }
            if self.ready_to_lead().is_err() {
                continue;
            }
            for command in self.chores() {
                if let Err(e) = self.write(command).await {
                    info!(error = %e, "registry upkeep postponed");
                    break;
                }
            }
        }
    }

    /// The writes that would bring the registry in line with membership.
    fn chores(&self) -> Vec<Command> {
        let view = self.inner.cluster.view();
        let registry = self.registry();
        let at_ms = now_ms();
        let mut chores = Vec::new();
        let mut gone = BTreeSet::new();
        for node in registry.registry.nodes_with_ephemeral() {
            if let Some(member) = view.member(&node) {
                if matches!(member.state, MemberState::Dead | MemberState::Left) {
                    gone.insert(node.clone());
                    chores.push(Command::NodeGone {
                        node,
                        status: member.state.as_str().to_owned(),
                        at_ms,
                    });
                }
            }
        }
        for member in &view.members {
            if gone.contains(&member.id) {
                continue;
            }
            let status = match member.state {
                MemberState::Alive | MemberState::Suspect => member.health.as_str(),
                state => state.as_str(),
            };
            let score = if member.state.is_active() {
                member.score
            } else {
                0
            };
            let stale = match registry.registry.health.get(&member.id) {
                None => true,
                Some(r) => r.status != status || r.score.abs_diff(score) >= SCORE_STEP,
            };
            if stale {
                chores.push(Command::ReportHealth {
                    node: member.id.clone(),
                    report: HealthReport {
                        status: status.to_owned(),
                        score,
                        at_ms,
                    },
                });
            }
        }
        chores.extend(expired_instances(&registry.registry, at_ms));
        chores
    }
}

/// Deregistrations due: instances critical for longer than their `deregister_critical_after`,
/// and ephemeral instances whose TTL lapsed (or was failed) — their process is gone.
fn expired_instances(registry: &Registry, now_ms: u64) -> Vec<Command> {
    registry
        .instances()
        .filter(|instance| {
            let Some(health) = registry.health_of(instance) else {
                return false;
            };
            let overdue = match (
                instance.deregister_critical_after_ms,
                health.critical_since_ms,
            ) {
                (Some(after), Some(since)) => now_ms.saturating_sub(since) >= after,
                _ => false,
            };
            let lapsed = instance.ephemeral
                && health.checks.iter().any(|(check, report)| {
                    report.state == vigil_health::CheckState::Critical
                        && instance.has_ttl_check(check)
                });
            overdue || lapsed
        })
        .map(|instance| Command::Deregister {
            name: instance.name.clone(),
            id: instance.id.clone(),
        })
        .collect()
}
