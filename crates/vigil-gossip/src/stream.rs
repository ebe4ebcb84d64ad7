//! Push-pull framing over TCP, as pure functions: the async reader in the driver and the fuzz
//! target share them.
//!
//! ```text
//! dialler → acceptor: [u32 big-endian length][hello frame][state frame, of the length the hello announced]
//! acceptor → dialler: [u32 big-endian length][state frame]
//! ```
//!
//! The hello ([`Node::sync_hello`](crate::Node::sync_hello)) is small and capped at
//! [`MAX_HELLO`]: the acceptor reads it under a short timeout and has it authenticated
//! ([`Node::handle_sync_hello`](crate::Node::handle_sync_hello)) before it reads, or buffers, the
//! state, so a peer without the key costs a few hundred bytes and a short wait at most.

/// Largest hello frame: a sealed node id, stamp and length.
pub const MAX_HELLO: usize = 4096;

/// Largest state frame accepted or sent. A state is a few hundred bytes per member, so this allows
/// clusters of several thousand members.
pub const MAX_STATE: usize = 4 << 20;

/// Bytes of a length prefix.
pub const PREFIX_LEN: usize = 4;

/// A push-pull stream that breaks the framing rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A frame longer than its limit was announced or given.
    #[error("push-pull frame of {len} bytes exceeds the {limit}-byte limit")]
    TooLong {
        /// The length announced or given.
        len: u64,
        /// The limit.
        limit: usize,
    },
    /// The stream ended inside a frame.
    #[error("push-pull frame truncated: {got} of {len} bytes")]
    Truncated {
        /// Bytes present.
        got: usize,
        /// Bytes announced.
        len: usize,
    },
}

/// The length a prefix announces, if within `limit`.
pub fn frame_len(prefix: [u8; PREFIX_LEN], limit: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(prefix);
    usize::try_from(len)
        .ok()
        .filter(|&len| len <= limit)
        .ok_or(FrameError::TooLong {
            len: u64::from(len),
            limit,
        })
}

/// The prefix announcing a frame of `len` bytes, if within `limit`.
pub fn prefix(len: usize, limit: usize) -> Result<[u8; PREFIX_LEN], FrameError> {
    u32::try_from(len)
        .ok()
        .filter(|_| len <= limit)
        .map(u32::to_be_bytes)
        .ok_or(FrameError::TooLong {
            len: len as u64,
            limit,
        })
}

/// Splits a length-prefixed frame off the front of `bytes`: the frame, and what follows it.
pub fn split_frame(bytes: &[u8], limit: usize) -> Result<(&[u8], &[u8]), FrameError> {
    let Some((head, rest)) = bytes.split_first_chunk::<PREFIX_LEN>() else {
        return Err(FrameError::Truncated {
            got: bytes.len(),
            len: PREFIX_LEN,
        });
    };
    let len = frame_len(*head, limit)?;
    if rest.len() < len {
        return Err(FrameError::Truncated {
            got: rest.len(),
            len,
        });
    }
    Ok(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_limits_hold() {
        let mut wire = prefix(5, MAX_HELLO).expect("prefix").to_vec();
        wire.extend_from_slice(b"hellostate");
        let (frame, rest) = split_frame(&wire, MAX_HELLO).expect("split");
        assert_eq!((frame, rest), (&b"hello"[..], &b"state"[..]));
        assert_eq!(
            split_frame(&wire, 4),
            Err(FrameError::TooLong { len: 5, limit: 4 })
        );
        assert_eq!(
            split_frame(&wire[..7], MAX_HELLO),
            Err(FrameError::Truncated { got: 3, len: 5 })
        );
        assert_eq!(
            split_frame(&[0, 0], MAX_HELLO),
            Err(FrameError::Truncated { got: 2, len: 4 })
        );
        assert_eq!(
            frame_len(u32::MAX.to_be_bytes(), MAX_STATE),
            Err(FrameError::TooLong {
                len: u64::from(u32::MAX),
                limit: MAX_STATE
            })
        );
        assert!(prefix(MAX_STATE + 1, MAX_STATE).is_err());
        assert_eq!(frame_len(prefix(0, 0).expect("empty"), 0), Ok(0));
    }
}
