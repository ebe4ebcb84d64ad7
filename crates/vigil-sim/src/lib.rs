//! A deterministic discrete-event simulator for vigil's membership protocol.
//!
//! `vigil-sim` drives many [`vigil_gossip::Node`]s in virtual time, the way the agent drives one
//! with sockets and a clock: it feeds each node the datagrams, push-pull payloads and timeouts it
//! is due, and carries out the datagrams and exchanges the node asks for. Between them sits a
//! simulated network — per-link latency with jitter, datagram loss, symmetric and one-way
//! partitions — and the faults a test injects: pause (SIGSTOP: timers stop, datagrams queue in
//! the socket buffer and arrive in a burst on resume), kill, restart with a new incarnation,
//! graceful leave.
//!
//! Everything is a pure function of the seed: one event queue ordered by virtual time and then by
//! insertion, one `ChaCha` stream for the network, and each node's seed derived from the sim seed,
//! its index and its life. No thread, no socket, no clock: a thousand nodes run for a minute of
//! virtual time in seconds of real time (`cargo run -p vigil-sim --release --bin sim-bench`).
//!
//! What it models and what it does not: datagrams are delivered whole or not at all (no
//! truncation, no duplication); push-pull runs over a reliable stream that needs both directions
//! open, costs a handshake round trip plus the payload's trip, fails at once towards a dead node,
//! and waits for a paused peer at most [`SimConfig::sync_timeout`]. Processing takes no virtual
//! time.
//!
//! Every membership event is recorded with its virtual time and what its subject's process was
//! really doing ([`Record`]), so tests ask what a user would: did everyone see the dead node go
//! down, and how fast ([`Sim::time_until_all`]); did an update reach 99 % of members
//! ([`Sim::time_until_fraction`]); was a healthy node ever accused ([`Sim::false_suspicions`],
//! [`Sim::wrongly_down`]); does every live node see exactly the live nodes ([`Sim::converged`]).
//!
//! ```
//! use std::time::Duration;
//! use vigil_sim::{Kind, Sim, SimConfig};
//!
//! let mut sim = Sim::new(SimConfig::new(7, 8));
//! let joined = sim.run_until_true(Duration::from_secs(30), Duration::from_millis(100), Sim::converged);
//! assert!(joined.is_some());
//! let killed_at = sim.now();
//! sim.kill(5);
//! sim.run_for(Duration::from_secs(20));
//! assert!(sim.time_until_all(5, killed_at, |r| r.kind == Kind::Down).is_some());
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::time::Duration;

mod config;
mod faults;
mod net;
mod observe;
mod sim;

pub use config::{Link, NodeOptions, SimConfig};
pub use net::RuleId;
pub use observe::{Kind, Record, Status, Traffic};
pub use sim::{addr_of, id_of, Action, Sim};

/// Percentile `p` (0–100) of `values` by nearest rank; `None` when empty.
pub fn percentile(values: &[Duration], p: f64) -> Option<Duration> {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()).checked_sub(1)?).copied()
}
