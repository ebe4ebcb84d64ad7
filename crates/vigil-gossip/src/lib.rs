//! vigil's membership protocol, as a pure state machine.
//!
//! `vigil-gossip` decides which members of a cluster are alive, suspect, dead or gone, and spreads
//! each member's metadata (role, tags, API address, health status and score). It combines:
//!
//! - heartbeats to `k` observers per member, judged by a **phi-accrual** detector;
//! - **indirect probes** through `m` other members before anyone is suspected;
//! - **Lifeguard** suspicion, refutable by incarnation, whose timeout shrinks from a maximum to a
//!   minimum as independent observers confirm it, and local health that makes a slow node
//!   stretch its own timeouts instead of accusing others;
//! - **gossip** dissemination piggybacked on every datagram plus `fanout` rounds, and periodic
//!   **push-pull** full syncs that heal partitions;
//! - an authenticated, encrypted wire format with a **keyring** for key rotation, whose frames
//!   carry a stamp inside the seal so recorded frames replayed later are refused.
//!
//! It is Bring Your Own I/O: a [`Node`] is fed datagrams, push-pull payloads and the time, and
//! hands back, one [`Output`] at a time, datagrams to send, exchanges to open, connections to try
//! and [`Event`]s. No sockets, clocks, threads or
//! async runtime inside; `vigil-cluster` drives it with tokio, `vigil-sim` in virtual time.
//!
//! Guarantees: no panic on any input from the network (decoding is property-tested and fuzzed);
//! memory bounded by the number of members. `ALGORITHM.md` explains the detector with its formulas.
//!
//! ```
//! use std::time::Instant;
//! use vigil_gossip::{Config, Exchange, Identity, Metadata, Node, NodeId, Output};
//!
//! let now = Instant::now();
//! let identity = Identity { id: NodeId::new("n1"), addr: "127.0.0.1:7946".parse().unwrap(), incarnation: 1 };
//! let mut node = Node::new(identity, Metadata::default(), Config::default(), None, [7; 32], now);
//! node.join(now, &["127.0.0.1:7947".parse().unwrap()]);
//! let peer = "127.0.0.1:7947".parse().unwrap();
//! assert_eq!(node.poll(), Some(Output::Exchange(Exchange { id: 1, peer })));
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod broadcast;
mod config;
pub mod crypto;
mod event;
#[cfg(test)]
mod harness;
mod id;
mod member;
mod message;
mod node;
mod output;
mod phi;
mod reach;
mod replay;
pub mod stream;
mod timer;
pub mod version;

pub use config::Config;
pub use event::{Event, Stats, PHI_BUCKETS};
pub use id::NodeId;
pub use member::{Health, Member, MemberState, Metadata, Role};
pub use message::{fuzz_decode_hello, fuzz_decode_packet, fuzz_decode_sync, DecodeError};
pub use node::{Identity, Node};
pub use output::{Exchange, Output, Reachability, ReachabilityCheck, Transmit};
pub use replay::Replay;
