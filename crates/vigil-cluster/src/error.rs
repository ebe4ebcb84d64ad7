//! What can go wrong when starting or steering a cluster node, in words meant for its operator.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use vigil_gossip::crypto::KeyringError;

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The gossip port could not be bound (UDP or TCP): in use, not a local address, or no
    /// permission.
    #[error("cannot bind the gossip port {addr} (UDP and TCP): {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// The configuration cannot work; the message says which setting and why.
    #[error("invalid cluster configuration: {0}")]
    Config(String),
    /// A keyring operation on a node that runs without encryption.
    #[error(
        "this node runs without encryption (no keyring configured), so it has no keyring to \
         list or change; start it with a key to enable encryption"
    )]
    NotEncrypted,
    /// The keyring refused the operation (unknown key, or removing the primary key).
    #[error("keyring: {0}")]
    Keyring(#[from] KeyringError),
    /// The key file could not be read or written. For a keyring change, the change is already
    /// in effect on the running node; only its persistence failed.
    #[error("key file {path}: {source}")]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The node has left the cluster or was shut down; its handle can no longer act.
    #[error("the cluster node has stopped (it left the cluster or was shut down)")]
    Stopped,
}
