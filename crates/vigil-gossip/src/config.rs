//! Protocol tunables, with defaults chosen for LAN clusters.

use crate::version::Versions;
use std::time::Duration;

/// Every tunable of the protocol. `Config::default()` suits a LAN.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// How often a node sends a heartbeat to each of its observers.
    pub heartbeat_interval: Duration,
    /// How many observers watch each member (`k`); everyone watches everyone below `k + 1`.
    pub observers: usize,
    /// Phi at which an observer starts probing a member indirectly.
    pub phi_threshold: f64,
    /// Heartbeat intervals kept per observed member.
    pub phi_window: usize,
    /// Floor of the standard deviation of intervals, so a very regular member is not suspected
    /// on its first late heartbeat.
    pub phi_min_std_dev: Duration,
    /// Lateness tolerated before phi starts to rise (GC pauses, busy hosts).
    pub phi_acceptable_pause: Duration,
    /// How often observers evaluate phi.
    pub check_interval: Duration,
    /// How long a direct plus indirect probe waits for an ack.
    pub probe_timeout: Duration,
    /// Members asked to probe a member indirectly (`m`).
    pub indirect_probes: usize,
    /// Suspicion timeout once enough independent observers confirm it.
    ///
    /// A silent member is suspected about 1.8 s into its silence (phi crosses the threshold at
    /// 1.56 s, then the probe timeout) and, with every observer confirming, dead this much later:
    /// 1.8 s puts death near 3.6 s of silence. A member frozen for 2 s (a GC, a VM migration)
    /// has been silent for at most 3 s when it resumes — the pause plus the heartbeat interval
    /// before it — and then refutes at once; the 0.6 s left over is for a busy host to schedule
    /// it, let it read its queued datagrams and carry its refutation to every member. (A member
    /// whose process died on a live host is declared dead without this wait: its host refuses
    /// connections, see [`Node::handle_reachability`](crate::Node::handle_reachability).)
    pub suspicion_min: Duration,
    /// Suspicion timeout with no confirmation.
    pub suspicion_max: Duration,
    /// How often a node gossips pending updates.
    pub gossip_interval: Duration,
    /// Members gossiped to per round.
    pub fanout: usize,
    /// Each update is sent about `retransmit_mult × log10(n + 1)` times.
    pub retransmit_mult: u32,
    /// How often a node does a full state exchange with a random member, in clusters of up to
    /// 32; larger clusters stretch it in proportion (`× n / 32`) so that each node's share of
    /// full-sync bandwidth stays flat. The first exchange comes at a random point within
    /// 0.5–1.5 × the (stretched) interval of the cluster the node has joined, after its start.
    pub push_pull_interval: Duration,
    /// How often seeds that are not active members are dialled again.
    pub seed_redial_interval: Duration,
    /// Dead and left members are forgotten after this long.
    pub reap_after: Duration,
    /// Largest UDP payload, encryption included.
    pub max_packet: usize,
    /// Ceiling of the Lifeguard local health multiplier.
    pub max_local_health: u32,
    /// With a keyring, how old a frame may be when it arrives (by the sender's clock, measured
    /// against the freshest frame of the sender) before it is refused as a replay. It bounds how
    /// long frames recorded by an attacker can stand in for a member that has died, and must
    /// exceed the transit time of a push-pull state (connect and send). Clocks need not agree.
    pub max_frame_age: Duration,
    /// The protocol versions this node reads and writes (see [`crate::version`]): this build's
    /// by default, or pinned to the previous one's.
    pub versions: Versions,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            heartbeat_interval: Duration::from_secs(1),
            observers: 5,
            phi_threshold: 8.0,
            phi_window: 1000,
            phi_min_std_dev: Duration::from_millis(100),
            phi_acceptable_pause: Duration::ZERO,
            check_interval: Duration::from_millis(100),
            probe_timeout: Duration::from_millis(200),
            indirect_probes: 3,
            suspicion_min: Duration::from_millis(1800),
            suspicion_max: Duration::from_secs(9),
            gossip_interval: Duration::from_millis(200),
            fanout: 3,
            retransmit_mult: 4,
            push_pull_interval: Duration::from_secs(60),
            seed_redial_interval: Duration::from_secs(5),
            reap_after: Duration::from_secs(60),
            max_packet: 1400,
            max_local_health: 8,
            max_frame_age: Duration::from_secs(2),
            versions: Versions::default(),
        }
    }
}
