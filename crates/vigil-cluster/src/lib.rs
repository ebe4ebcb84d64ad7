//! vigil's cluster driver: the membership protocol on real sockets.
//!
//! `vigil-cluster` runs one [`vigil_gossip::Node`] inside a tokio task and carries out what it
//! asks: datagrams over UDP, push-pull state exchanges over TCP (both on one port, like
//! memberlist), timers, and key rotation on the running node. What it learns it publishes two
//! ways: a [`ClusterView`] snapshot that readers load without locking (republished after every
//! membership change and at least every 500 ms, since phi and last-heard times move), and a
//! broadcast stream of [`MembershipEvent`]s.
//!
//! What it is not: the protocol itself (which member is alive, suspect or dead is decided by
//! `vigil-gossip`, a pure state machine) or an HTTP surface (`vigil-api` renders the view).
//! Leader election and the service registry among voters are the [`raft`] module's.
//!
//! What it guarantees: the driver never waits on a peer — every TCP exchange runs in its own
//! task, bounded by timeouts and a frame cap, reads nothing large before the peer's hello is
//! authenticated, and connections that stall give way to new ones — and a full UDP socket drops
//! the datagram rather than
//! stall; nothing a peer sends is fatal (undecodable input is counted, logged at debug and
//! dropped); memory is bounded by the number of members plus capped connection counts.
//!
//! ```no_run
//! use vigil_cluster::{Cluster, ClusterConfig};
//! use vigil_gossip::Health;
//!
//! # async fn run() -> Result<(), vigil_cluster::ClusterError> {
//! let mut config = ClusterConfig::new("node-1", "127.0.0.1:7946".parse().unwrap());
//! config.seeds = vec!["127.0.0.1:7947".parse().unwrap()];
//! let cluster = Cluster::start(config).await?;
//! cluster.set_health(Health::Healthy, 100);
//! let mut events = cluster.subscribe();
//! while let Ok(event) = events.recv().await {
//!     println!("{event:?}; {} members", cluster.view().members.len());
//! }
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cluster;
mod config;
mod driver;
mod error;
pub mod frame;
mod keyring;
pub mod raft;
mod sync;
mod view;

pub use cluster::Cluster;
pub use config::ClusterConfig;
pub use error::ClusterError;
pub use keyring::{load_key_file, write_key_file, KeyInfo, KeyringOp};
pub use view::{ClusterView, MemberView, MembershipEvent};
