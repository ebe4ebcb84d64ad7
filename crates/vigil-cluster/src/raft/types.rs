//! The Raft type configuration: what the log carries, how voters are named, and the mapping
//! from vigil's node ids (names) to the numeric ids openraft works with.

use serde::{Deserialize, Serialize};
use std::fmt;

use super::state::{Applied, Command};

openraft::declare_raft_types!(
    /// vigil's Raft: registry commands in, [`Applied`] out, voters named by node id.
    pub TypeConfig:
        D = Command,
        R = Applied,
        NodeId = u64,
        Node = Voter,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A voter as Raft's membership records it: by its vigil node id. Its transport address is
/// looked up in the gossip view at dial time, so a voter that moves needs no membership change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voter {
    /// The voter's vigil node id.
    pub name: String,
}

impl fmt::Display for Voter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The numeric Raft id of a vigil node id: its 64-bit FNV-1a hash. Stable across versions and
/// platforms, which it must be since it is written to every voter's log.
pub fn raft_id(name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The Raft handle of this crate's configuration.
pub type Raft = openraft::Raft<TypeConfig>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_ids_are_fnv1a() {
        assert_eq!(raft_id(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(raft_id("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(raft_id("node-1"), raft_id("node-2"));
    }
}
