//! What a simulation starts from: the cluster, the network and the protocol tunables.

use std::time::Duration;

use vigil_gossip::crypto::Keyring;
use vigil_gossip::Config;

/// How datagrams and push-pull streams cross one directed link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    /// Smallest one-way delay.
    pub latency: Duration,
    /// Extra delay drawn uniformly from `[0, jitter)` for each datagram (so datagrams may be
    /// reordered, as on a real network).
    pub jitter: Duration,
    /// Probability that a datagram is lost, in `[0, 1]`. Push-pull streams are reliable (TCP).
    pub loss: f64,
}

impl Link {
    /// A LAN link: 0.2 ms plus up to 0.8 ms of jitter, no loss.
    pub const LAN: Link = Link {
        latency: Duration::from_micros(200),
        jitter: Duration::from_micros(800),
        loss: 0.0,
    };

    /// This link with datagram loss `loss`.
    pub fn with_loss(self, loss: f64) -> Link {
        Link { loss, ..self }
    }
}

impl Default for Link {
    fn default() -> Self {
        Link::LAN
    }
}

/// Everything a [`Sim`](crate::Sim) starts from.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seed of every random choice: the network's and, derived from it, each node's.
    pub seed: u64,
    /// Nodes started by [`Sim::new`](crate::Sim::new), indexed `0..nodes`.
    pub nodes: usize,
    /// The first `seeds` nodes are the seeds every node joins through.
    pub seeds: usize,
    /// Each non-seed node starts at a random time in `[0, join_spread)`; seeds start at 0.
    pub join_spread: Duration,
    /// The link every pair of nodes uses unless [`Sim::set_link`](crate::Sim::set_link) says otherwise.
    pub link: Link,
    /// Protocol tunables of every node.
    pub gossip: Config,
    /// Keyring of every node started by [`Sim::new`](crate::Sim::new) (`None`: plain frames).
    pub keyring: Option<Keyring>,
    /// A push-pull exchange whose peer is paused is served when the peer resumes if it resumes
    /// within this long of the connection being opened; otherwise the connection times out and
    /// the exchange is lost (the kernel would have accepted the connection, nobody answered).
    pub sync_timeout: Duration,
    /// Bytes of datagrams a paused node's socket buffers before dropping the rest (Linux's
    /// default `rmem_default`).
    pub socket_buffer: usize,
    /// How long a leaving node keeps running at most after
    /// [`Node::leave`](vigil_gossip::Node::leave) so the news spreads, as the agent does before it
    /// exits; it exits sooner once the node says it has departed.
    pub leave_linger: Duration,
    /// Wall-clock seconds at virtual time zero. A node's starting incarnation is the wall-clock
    /// second it starts at, as the real driver does, so a restarted node outranks its past life.
    pub epoch_secs: u64,
}

impl SimConfig {
    /// A LAN cluster of `nodes` with default protocol tunables, joined through 3 seeds within 1 s.
    pub fn new(seed: u64, nodes: usize) -> SimConfig {
        SimConfig {
            seed,
            nodes,
            seeds: 3,
            join_spread: Duration::from_secs(1),
            link: Link::LAN,
            gossip: Config::default(),
            keyring: None,
            sync_timeout: Duration::from_secs(2),
            socket_buffer: 212_992,
            leave_linger: Duration::from_secs(1),
            epoch_secs: 1_700_000_000,
        }
    }
}

/// A node added to a running simulation with [`Sim::add_node`](crate::Sim::add_node).
#[derive(Clone, Debug, Default)]
pub struct NodeOptions {
    /// Its keyring; `None` for plain frames.
    pub keyring: Option<Keyring>,
    /// An outsider (an intruder, a node of another cluster) is left out of every cluster-wide
    /// check: convergence, "every live node", false suspicions.
    pub outsider: bool,
    /// Whether it joins through the seeds when it starts.
    pub join: bool,
}
