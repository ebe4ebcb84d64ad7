//! Raft frames on the wire: frames of the shared codec ([`crate::frame`]) whose payload is
//! sealed with the cluster keyring (XChaCha20-Poly1305, as gossip uses) when one is set, in the
//! clear otherwise; and the caps that apply to them.

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use vigil_gossip::crypto::{open, seal, CryptoError, Keyring};

use super::binding::Refused;
use crate::frame::{self, FrameError};

/// Largest frame accepted once a connection is past its hellos: snapshot chunks and entry
/// batches stay far below it.
pub const MAX_FRAME: usize = 16 << 20;

/// Largest hello accepted, either way: a hello and a client hello are a few dozen bytes, plus
/// the seal's overhead.
pub const MAX_HELLO_FRAME: usize = 256;

/// Why bytes on a Raft connection were refused.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The framing is broken: a length above the cap that applies at this point, or bytes that
    /// end inside a frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The seal does not open: another key, no key, or forged or damaged bytes.
    #[error("refused frame: {0}")]
    Seal(#[from] CryptoError),
    /// The frame is not bound to this connection, or not in its turn.
    #[error("refused frame: {0}")]
    Refused(#[from] Refused),
    /// The payload does not decode as a Raft message.
    #[error("undecodable message: {0}")]
    Undecodable(String),
}

impl From<WireError> for std::io::Error {
    fn from(e: WireError) -> std::io::Error {
        match e {
            WireError::Frame(e) => e.into(),
            e => std::io::Error::other(e),
        }
    }
}

/// The payload inside one sealed frame.
pub fn open_frame(keyring: Option<&Keyring>, sealed: &[u8]) -> Result<Vec<u8>, WireError> {
    Ok(open(keyring, sealed)?)
}

/// `payload` as it goes on the wire: sealed, behind its length.
pub fn encode_frame(keyring: Option<&Keyring>, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    let sealed = seal(keyring, payload, &mut rand::rng());
    Ok(frame::encode(&sealed, MAX_FRAME)?)
}

/// Seals `payload` and sends it.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    stream: &mut W,
    keyring: Option<&Keyring>,
    payload: &[u8],
) -> std::io::Result<()> {
    stream.write_all(&encode_frame(keyring, payload)?).await
}

/// Reads one whole frame of at most `limit` sealed bytes and opens it.
pub async fn read_frame<R: AsyncRead + Unpin>(
    stream: &mut R,
    keyring: Option<&Keyring>,
    limit: usize,
) -> std::io::Result<Vec<u8>> {
    let sealed = frame::read_frame(stream, limit).await?;
    Ok(open_frame(keyring, &sealed)?)
}

#[cfg(test)]
mod tests {
    use vigil_gossip::crypto::Key;

    use super::*;
    use crate::frame::split_frame;

    #[test]
    fn frames_split_and_open_as_they_were_sealed() {
        let keyring = Keyring::new(Key::from_bytes([4; 32]));
        let mut stream = encode_frame(Some(&keyring), b"one").expect("encode");
        stream.extend(encode_frame(Some(&keyring), b"two").expect("encode"));
        let (first, rest) = split_frame(&stream, MAX_HELLO_FRAME)
            .expect("whole")
            .expect("a frame");
        assert_eq!(open_frame(Some(&keyring), first).expect("open"), b"one");
        let (second, rest) = split_frame(rest, MAX_HELLO_FRAME)
            .expect("whole")
            .expect("a frame");
        assert_eq!(open_frame(Some(&keyring), second).expect("open"), b"two");
        assert!(matches!(split_frame(rest, MAX_HELLO_FRAME), Ok(None)));
        assert!(open_frame(None, second).is_err(), "sealed, but no key");
        for cut in 1..stream.len() / 2 {
            assert!(
                matches!(
                    split_frame(&stream[..cut], MAX_HELLO_FRAME),
                    Err(FrameError::Truncated { .. })
                ),
                "{cut}"
            );
        }
    }
}
