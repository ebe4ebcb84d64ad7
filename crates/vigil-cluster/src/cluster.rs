//! The handle: starts a node (sockets, `Node`, driver task) and steers it.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use vigil_gossip::version::Versions;

use arc_swap::ArcSwap;
use rand::Rng;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tracing::info;
use vigil_gossip::crypto::Keyring;
use vigil_gossip::{Health, Identity, Metadata, Node, NodeId};

use crate::config::ClusterConfig;
use crate::driver::{Command, Driver, Io, Shared};
use crate::error::ClusterError;
use crate::keyring::{write_key_file, KeyInfo, KeyringOp};
use crate::view::{ClusterView, MembershipEvent};

/// Events kept for a slow subscriber before it starts missing them (it then gets
/// `RecvError::Lagged` and can resynchronise from [`Cluster::view`]).
const EVENT_BUFFER: usize = 1024;
/// Commands queued for the driver.
const COMMAND_BUFFER: usize = 64;
/// Peers' push-pull payloads queued for the driver.
const SYNC_BUFFER: usize = 64;
/// Attempts at finding a port free for both UDP and TCP when the bind port is 0.
const BIND_ATTEMPTS: usize = 16;

/// A running cluster node. Cheap to clone: every clone steers the same node.
///
/// Dropping every handle stops the node without leaving, as [`Cluster::shutdown_now`] does.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    health: watch::Sender<(Health, u8)>,
    driver: Mutex<Option<JoinHandle<()>>>,
    abort: AbortHandle,
    key_file: Option<PathBuf>,
    /// Serialises keyring operations, so the key file is written in the order they happened.
    keyring_lock: tokio::sync::Mutex<()>,
    /// The keyring as last changed, for other traffic sealed with the cluster key (Raft).
    current_keys: ArcSwap<Option<Keyring>>,
    /// The protocol versions this node speaks, for other traffic that names one (Raft).
    versions: Versions,
}

impl Cluster {
    /// Binds the gossip port (UDP and TCP), starts the driver task and joins through the seeds.
    /// The node's incarnation is the wall-clock millisecond it starts at, so a restarted node
    /// outranks what the cluster remembers of its previous life, even one that began the same
    /// second (a process restarted at once by its supervisor, whose new Raft port the others
    /// would otherwise never learn).
    ///
    /// Returns once the sockets are bound; joining goes on in the background (watch
    /// [`Cluster::subscribe`] or [`Cluster::view`]). Must be called within a tokio runtime.
    pub async fn start(config: ClusterConfig) -> Result<Cluster, ClusterError> {
        config.validate()?;
        let (udp, listener) = bind(config.bind).await?;
        let local_addr = udp.local_addr().map_err(|source| ClusterError::Bind {
            addr: config.bind,
            source,
        })?;
        let advertise = config.advertise_addr(local_addr);
        let incarnation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(1)
            .max(1);
        let identity = Identity {
            id: NodeId::new(&config.node_id),
            addr: advertise,
            incarnation,
        };
        let meta = Metadata {
            role: config.role,
            tags: config.tags.clone(),
            api_addr: config.api_addr,
            ..Metadata::default()
        };
        let encrypted = config.keyring.is_some();
        let current_keys = ArcSwap::from_pointee(config.keyring.clone());
        let versions = config.protocol.versions;
        let seed: [u8; 32] = rand::rng().random();
        let now = Instant::now();
        let mut node = Node::new(
            identity,
            meta.clone(),
            config.protocol,
            config.keyring,
            seed,
            now,
        );
        node.join(now, &config.seeds);

        let mut voters = config.voters;
        voters.sort();
        voters.dedup();
        let shared = Arc::new(Shared {
            view: ArcSwap::from_pointee(ClusterView::of(
                &mut node,
                &voters,
                now,
                SystemTime::now(),
            )),
            events: broadcast::channel(EVENT_BUFFER).0,
        });
        let (commands, commands_rx) = mpsc::channel(COMMAND_BUFFER);
        let (health, health_rx) = watch::channel((meta.health, meta.score));
        let (sync_tx, sync_rx) = mpsc::channel(SYNC_BUFFER);
        let driver = Driver::new(node, shared.clone(), voters, sync_tx);
        let io = Io {
            udp,
            listener,
            commands: commands_rx,
            health: health_rx,
        };
        info!(
            id = %config.node_id,
            bind = %local_addr,
            advertise = %advertise,
            seeds = config.seeds.len(),
            encrypted,
            "cluster membership starting"
        );
        let task = tokio::spawn(driver.run(io, sync_rx));
        let abort = task.abort_handle();
        Ok(Cluster {
            inner: Arc::new(Inner {
                local_addr,
                shared,
                commands,
                health,
                driver: Mutex::new(Some(task)),
                abort,
                key_file: config.key_file,
                keyring_lock: tokio::sync::Mutex::new(()),
                current_keys,
                versions,
            }),
        })
    }

    /// The latest snapshot of the cluster: republished after every membership change and at
    /// least every 500 ms. After the node stops it stays as it was last published.
    pub fn view(&self) -> Arc<ClusterView> {
        self.inner.shared.view.load_full()
    }

    /// Membership changes from now on. A subscriber that falls more than 1,024 events behind
    /// gets `RecvError::Lagged` and should reread [`Cluster::view`].
    pub fn subscribe(&self) -> broadcast::Receiver<MembershipEvent> {
        self.inner.shared.events.subscribe()
    }

    /// Sets this node's health and score (percent, capped at 100) in its gossiped metadata.
    /// A new health spreads at once, a new score once it is 5 points from the one spread last;
    /// calling it often is cheap. Never blocks.
    pub fn set_health(&self, health: Health, score: u8) {
        self.inner.health.send_if_modified(|current| {
            let new = (health, score.min(100));
            let changed = *current != new;
            *current = new;
            changed
        });
    }

    /// Leaves the cluster gracefully: tells the members this node is leaving (over UDP to
    /// several, and over TCP to up to `fanout` of them, whose answers confirm they know), keeps
    /// answering peers meanwhile, then stops the driver and closes the sockets. Returns when the
    /// TCP announcements are answered, or after `within` at the latest. Does nothing if the node
    /// has already stopped.
    pub async fn leave(&self, within: Duration) {
        let (done, stopped) = oneshot::channel();
        if self
            .inner
            .commands
            .send(Command::Leave { within, done })
            .await
            .is_ok()
        {
            let _ = stopped.await;
        }
        self.join_driver().await;
    }

    /// The protocol versions this node reads and writes (its own and the previous one, or a
    /// pin); the one it writes now is [`ClusterView::protocol_version`].
    pub fn protocol_versions(&self) -> Versions {
        self.inner.versions
    }

    /// Counts quorum over `voters` from now on (the Raft group's voters, as they change at run
    /// time); does nothing once the node has stopped.
    pub async fn set_voters(&self, voters: Vec<String>) {
        let _ = self.inner.commands.send(Command::SetVoters(voters)).await;
    }

    /// Stops the node at once without leaving, as a crash would: no goodbye is sent, the
    /// sockets close, and the other members find out through failure detection. The last
    /// snapshot stays readable.
    pub async fn shutdown_now(&self) {
        self.inner.abort.abort();
        self.join_driver().await;
    }

    /// Runs a keyring operation on the running node and returns the keys then installed,
    /// primary first. A change is written to the configured `key_file`, if any; if that write
    /// fails the change still holds on the running node and the error says so
    /// ([`ClusterError::KeyFile`]).
    ///
    /// Fails with [`ClusterError::NotEncrypted`] on a node started without a keyring, with
    /// [`ClusterError::Keyring`] when the keyring refuses (using or removing a key that is not
    /// installed, removing the primary), and with [`ClusterError::Stopped`] once the node has
    /// stopped.
    pub async fn keyring(&self, op: KeyringOp) -> Result<Vec<KeyInfo>, ClusterError> {
        let _serialised = self.inner.keyring_lock.lock().await;
        let (reply, answer) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Keyring { op, reply })
            .await
            .map_err(|_| ClusterError::Stopped)?;
        let change = answer.await.map_err(|_| ClusterError::Stopped)??;
        if let Some(ring) = &change.changed {
            self.inner.current_keys.store(Arc::new(Some(ring.clone())));
        }
        if let (Some(path), Some(ring)) = (self.inner.key_file.clone(), change.changed) {
            let target = path.clone();
            tokio::task::spawn_blocking(move || write_key_file(&target, &ring))
                .await
                .map_err(|e| ClusterError::KeyFile {
                    path,
                    source: io::Error::other(e.to_string()),
                })??;
        }
        Ok(change.keys)
    }

    /// The keyring as it is now, after every change made through [`Cluster::keyring`]; `None`
    /// on a node without encryption. Other traffic between members (Raft) is sealed with it.
    pub fn current_keyring(&self) -> Option<Keyring> {
        self.inner.current_keys.load().as_ref().clone()
    }

    /// The address the gossip sockets (UDP and TCP) are bound to, with the port actually bound
    /// when the configured port was 0. It is also the advertised address unless `advertise` was
    /// configured.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Waits for the driver task to end, if no other caller is already waiting for it.
    async fn join_driver(&self) {
        let task = match self.inner.driver.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("local_id", &self.view().local_id)
            .field("local_addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

/// Binds UDP and TCP on the same port. With port 0, the OS picks the UDP port and TCP follows;
/// if that port is taken for TCP, another is tried.
async fn bind(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), ClusterError> {
    let error = |source| ClusterError::Bind { addr, source };
    let attempts = if addr.port() == 0 { BIND_ATTEMPTS } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(addr).await.map_err(error)?;
        let port = udp.local_addr().map_err(error)?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(listener) => return Ok((udp, listener)),
            Err(e) => last = Some(e),
        }
    }
    Err(error(last.unwrap_or_else(|| {
        io::Error::other("no port was free for both UDP and TCP")
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent keeps the handle in axum state and awaits its methods in spawned tasks.
    #[test]
    fn the_handle_and_its_futures_can_cross_threads() {
        fn send_sync<T: Send + Sync + 'static>() {}
        fn send<T: Send>(_: T) {}
        send_sync::<Cluster>();
        let _never_called = |cluster: Cluster| {
            send(async move {
                cluster.leave(Duration::ZERO).await;
                cluster.shutdown_now().await;
                let _ = cluster.keyring(KeyringOp::List).await;
            })
        };
    }
}
