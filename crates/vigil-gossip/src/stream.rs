//! The caps of push-pull exchanges over TCP, which the node and its driver both hold to.
//!
//! ```text
//! dialler → acceptor: [u32 big-endian length][hello frame][state frame, of the length the hello announced]
//! acceptor → dialler: [u32 big-endian length][state frame]
//! ```
//!
//! The hello ([`Node::sync_hello`](crate::Node::sync_hello)) is small and capped at
//! [`MAX_HELLO`]: the acceptor reads it under a short timeout and has it authenticated
//! ([`Node::handle_sync_hello`](crate::Node::handle_sync_hello)) before it reads, or buffers, the
//! state, so a peer without the key costs a few hundred bytes and a short wait at most. The
//! length-prefixed framing itself is the driver's (`vigil-cluster`'s frame codec, shared with
//! Raft).

/// Largest hello frame: a sealed node id, stamp and length.
pub const MAX_HELLO: usize = 4096;

/// Largest state frame accepted or sent. A state is a few hundred bytes per member, so this allows
/// clusters of several thousand members.
pub const MAX_STATE: usize = 4 << 20;
