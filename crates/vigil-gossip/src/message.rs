//! The wire format: what nodes say to each other, and its versioned, compact encoding.
//!
//! A datagram is `seal([WIRE_VERSION, postcard(Packet)])`; a push-pull exchange is
//! `seal([WIRE_VERSION, postcard(SyncState)])` over TCP. postcard gives varint integers and no
//! field names, so a heartbeat is a few dozen bytes. Decoding goes through serde, which bounds
//! allocations by the input's length; any byte string decodes to a value or an error, never a
//! panic (property-tested, and fuzzed by `fuzz/`).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::crypto::{self, CryptoError, Keyring};
use crate::id::NodeId;
use crate::member::Metadata;

/// Version of the encoding inside the (possibly encrypted) frame.
pub const WIRE_VERSION: u8 = 1;

/// One datagram.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Packet {
    pub sender: NodeId,
    pub body: Body,
    pub updates: Vec<Update>,
}

/// What a datagram is for; every kind also carries piggybacked updates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Body {
    /// "I am alive", to each of the sender's observers.
    Heartbeat,
    /// Only the piggybacked updates.
    Gossip,
    /// A direct probe; answered by `Ack` with the same sequence number.
    Ping { seq: u32 },
    /// Answer to `Ping`, possibly relayed for an indirect probe.
    Ack { seq: u32 },
    /// "Probe `target` for me and relay its ack."
    PingReq {
        seq: u32,
        target: NodeId,
        target_addr: SocketAddr,
    },
}

/// A fact about one member, spread by gossip. Newer facts replace older ones by incarnation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Update {
    Alive {
        id: NodeId,
        addr: SocketAddr,
        incarnation: u64,
        meta: Metadata,
        meta_version: u64,
    },
    Suspect {
        id: NodeId,
        incarnation: u64,
        from: NodeId,
    },
    Dead {
        id: NodeId,
        incarnation: u64,
        from: NodeId,
    },
    Left {
        id: NodeId,
        incarnation: u64,
    },
}

impl Update {
    /// The member the fact is about.
    pub(crate) fn subject(&self) -> &NodeId {
        match self {
            Update::Alive { id, .. }
            | Update::Suspect { id, .. }
            | Update::Dead { id, .. }
            | Update::Left { id, .. } => id,
        }
    }
}

/// A full state exchange (push-pull): everything the sender knows, itself included.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SyncState {
    pub sender: NodeId,
    pub members: Vec<Update>,
}

/// A frame that could not be turned into a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Decryption or authentication failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A wire version this node does not speak.
    #[error("unsupported wire version {0} (this node speaks {WIRE_VERSION})")]
    Version(u8),
    /// The bytes are not a valid message.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Encodes a message without sealing it: `[WIRE_VERSION, postcard(message)]`.
pub(crate) fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut out = vec![WIRE_VERSION];
    // Serializing plain data into a Vec cannot fail: postcard only errors on full fixed buffers
    // and on types it cannot represent, which these are not.
    if let Ok(body) = postcard::to_allocvec(message) {
        out.extend_from_slice(&body);
    }
    out
}

/// Opens and decodes a frame.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(
    keyring: Option<&Keyring>,
    frame: &[u8],
) -> Result<T, DecodeError> {
    let plain = crypto::open(keyring, frame)?;
    match plain.split_first() {
        None => Err(DecodeError::Malformed("empty message".to_owned())),
        Some((&WIRE_VERSION, body)) => {
            postcard::from_bytes(body).map_err(|e| DecodeError::Malformed(e.to_string()))
        }
        Some((&other, _)) => Err(DecodeError::Version(other)),
    }
}

/// Encoded size of one update inside a packet.
pub(crate) fn encoded_len(update: &Update) -> usize {
    postcard::to_allocvec(update)
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
}

/// Decodes an arbitrary frame as a datagram, for fuzzing and property tests.
pub fn fuzz_decode_packet(keyring: Option<&Keyring>, frame: &[u8]) -> Result<(), DecodeError> {
    decode::<Packet>(keyring, frame).map(drop)
}

/// Decodes an arbitrary frame as a push-pull state, for fuzzing and property tests.
pub fn fuzz_decode_sync(keyring: Option<&Keyring>, frame: &[u8]) -> Result<(), DecodeError> {
    decode::<SyncState>(keyring, frame).map(drop)
}
