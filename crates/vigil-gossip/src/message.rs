//! The wire format: what nodes say to each other, and its versioned, compact encoding.
//!
//! A datagram is `seal([version, kind, postcard(Packet)])`; a push-pull exchange is a
//! `seal([version, kind, postcard(SyncHello)])` announcing the length of the
//! `seal([version, kind, postcard(SyncState)])` that follows over TCP (see
//! [`stream`](crate::stream)). The version is the protocol version the frame is written in (see
//! [`version`](crate::version)); version 4 adds [`Body::HeartbeatDigest`] to version 3's messages,
//! and a node writes it only to a cluster that speaks 4. The kind byte keeps a message of one kind from being taken for
//! another, and every message carries its sender and a [`Stamp`] for replay protection inside the
//! seal. postcard gives varint integers and no field names, so a heartbeat is a few dozen bytes.
//! Decoding goes through serde, which bounds allocations by the input's length; any byte string
//! decodes to a value or an error, never a panic (property-tested, and fuzzed by `fuzz/`).

use std::net::SocketAddr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::crypto::{self, CryptoError, Keyring};
use crate::id::NodeId;
use crate::member::{Claim, Metadata};
use crate::replay::{Replay, Stamp};
use crate::version::Versions;

/// A message as it crosses the wire: its kind byte, and who sealed it when.
pub(crate) trait Message: Serialize + DeserializeOwned {
    /// The byte after the version that names the kind.
    const KIND: u8;
    /// What the kind is called in errors.
    const NAME: &'static str;
    /// The sender's id.
    fn sender(&self) -> &NodeId;
    /// The sender's replay-protection stamp.
    fn stamp(&self) -> Stamp;
}

/// One datagram.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Packet {
    pub sender: NodeId,
    pub stamp: Stamp,
    pub body: Body,
    pub updates: Vec<Update>,
}

impl Message for Packet {
    const KIND: u8 = 1;
    const NAME: &'static str = "datagram";
    fn sender(&self) -> &NodeId {
        &self.sender
    }
    fn stamp(&self) -> Stamp {
        self.stamp
    }
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
    /// A heartbeat that also carries the sender's membership digest (protocol 4 on): a receiver
    /// whose own digest stays different asks the sender for a push-pull exchange.
    HeartbeatDigest { digest: u32 },
}

impl Body {
    /// Whether this is a heartbeat, with or without a digest.
    pub(crate) fn is_heartbeat(&self) -> bool {
        matches!(self, Body::Heartbeat | Body::HeartbeatDigest { .. })
    }
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

    /// What the fact claims, as the precedence rules weigh it.
    pub(crate) fn claim(&self) -> Claim {
        match *self {
            Update::Alive {
                incarnation,
                meta_version,
                ..
            } => Claim::Alive {
                incarnation,
                meta_version,
            },
            Update::Suspect { incarnation, .. } => Claim::Suspect { incarnation },
            Update::Dead { incarnation, .. } => Claim::Dead { incarnation },
            Update::Left { incarnation, .. } => Claim::Left { incarnation },
        }
    }
}

/// A full state exchange (push-pull): everything the sender knows, itself included.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SyncState {
    pub sender: NodeId,
    pub stamp: Stamp,
    pub members: Vec<Update>,
}

impl Message for SyncState {
    const KIND: u8 = 2;
    const NAME: &'static str = "push-pull state";
    fn sender(&self) -> &NodeId {
        &self.sender
    }
    fn stamp(&self) -> Stamp {
        self.stamp
    }
}

/// The first, small frame of a push-pull exchange: it authenticates the dialler and announces the
/// length of its state, before the acceptor reads (and buffers) anything large.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SyncHello {
    pub sender: NodeId,
    pub stamp: Stamp,
    /// Length of the state frame that follows.
    pub state_len: u32,
}

impl Message for SyncHello {
    const KIND: u8 = 3;
    const NAME: &'static str = "push-pull hello";
    fn sender(&self) -> &NodeId {
        &self.sender
    }
    fn stamp(&self) -> Stamp {
        self.stamp
    }
}

/// A frame that could not be turned into a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Decryption or authentication failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A protocol version this node does not speak.
    #[error("protocol version {got} is not one this node speaks ({min} to {max}); is the sender a much newer or older vigil, or not vigil at all?")]
    Version {
        /// The version byte of the frame.
        got: u8,
        /// The oldest version this node speaks.
        min: u8,
        /// The newest.
        max: u8,
    },
    /// The bytes are not a valid message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A valid message of another kind than expected.
    #[error("a message of kind {found} where a {expected} was expected")]
    WrongKind {
        /// The kind byte found.
        found: u8,
        /// What was expected.
        expected: &'static str,
    },
    /// A push-pull frame this node sealed itself, reflected back to it.
    #[error("a push-pull frame from this node itself, reflected back")]
    FromSelf,
    /// An authentic message received before, or sealed too long ago: a replay.
    #[error("refused a replayed frame: {0}")]
    Replayed(#[from] Replay),
}

/// Encodes a message without sealing it, in protocol `version`: `[version, kind,
/// postcard(message)]`.
pub(crate) fn encode<T: Message>(message: &T, version: u8) -> Vec<u8> {
    let mut out = vec![version, T::KIND];
    // Serializing plain data into a Vec cannot fail: postcard only errors on full fixed buffers
    // and on types it cannot represent, which these are not.
    if let Ok(body) = postcard::to_allocvec(message) {
        out.extend_from_slice(&body);
    }
    out
}

/// Opens and decodes a frame written in one of the protocol `versions`.
pub(crate) fn decode<T: Message>(
    keyring: Option<&Keyring>,
    frame: &[u8],
    versions: Versions,
) -> Result<T, DecodeError> {
    let plain = crypto::open(keyring, frame)?;
    match plain.as_slice() {
        [] => Err(DecodeError::Malformed("empty message".to_owned())),
        [version, ..] if !versions.speaks(*version) => Err(DecodeError::Version {
            got: *version,
            min: versions.min,
            max: versions.max,
        }),
        [_] => Err(DecodeError::Malformed("no message kind".to_owned())),
        [_, kind, body @ ..] if *kind == T::KIND => {
            postcard::from_bytes(body).map_err(|e| DecodeError::Malformed(e.to_string()))
        }
        [_, kind, ..] => Err(DecodeError::WrongKind {
            found: *kind,
            expected: T::NAME,
        }),
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
    decode::<Packet>(keyring, frame, Versions::default()).map(drop)
}

/// Decodes an arbitrary frame as a push-pull state, for fuzzing and property tests.
pub fn fuzz_decode_sync(keyring: Option<&Keyring>, frame: &[u8]) -> Result<(), DecodeError> {
    decode::<SyncState>(keyring, frame, Versions::default()).map(drop)
}

/// Decodes an arbitrary frame as a push-pull hello, for fuzzing and property tests.
pub fn fuzz_decode_hello(keyring: Option<&Keyring>, frame: &[u8]) -> Result<(), DecodeError> {
    decode::<SyncHello>(keyring, frame, Versions::default()).map(drop)
}
