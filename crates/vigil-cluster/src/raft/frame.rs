//! Raft frames on the wire: a 4-byte big-endian length, then a payload sealed with the cluster
//! keyring (XChaCha20-Poly1305, as gossip uses) when one is set, in the clear otherwise.
//!
//! Reading never trusts the announced length: it is checked against the cap that applies at
//! that point of the connection (a hello is small; only later frames may be large), and the
//! buffer grows as bytes actually arrive instead of being reserved up front, so announcing
//! 16 MiB and sending nothing costs the reader nothing. The pure steps ([`frame_len`],
//! [`open_frame`]) are separate from the I/O so that they can be fuzzed.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use vigil_gossip::crypto::{open, seal, CryptoError, Keyring};

use super::session::Refused;

/// Largest frame accepted once a connection is past its hellos: snapshot chunks and entry
/// batches stay far below it.
pub const MAX_FRAME: usize = 16 << 20;

/// Largest hello accepted, either way: a hello and a client hello are a few dozen bytes, plus
/// the seal's overhead.
pub const MAX_HELLO_FRAME: usize = 256;

/// Why bytes on a Raft connection were refused.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The announced length exceeds what is accepted at this point of the connection.
    #[error("a frame of {len} bytes exceeds the {limit}-byte cap at this point")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The cap.
        limit: usize,
    },
    /// The bytes ended inside a frame.
    #[error("the connection ended {got} bytes into a frame of {len}")]
    Truncated {
        /// The announced length (with its 4-byte prefix).
        len: usize,
        /// What arrived of it.
        got: usize,
    },
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
            WireError::Truncated { .. } => {
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, e)
            }
            e => std::io::Error::other(e),
        }
    }
}

/// The length a frame header announces, if within `limit`.
pub fn frame_len(header: [u8; 4], limit: usize) -> Result<usize, WireError> {
    let len = usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
    if len > limit {
        return Err(WireError::TooLarge { len, limit });
    }
    Ok(len)
}

/// The payload inside one sealed frame.
pub fn open_frame(keyring: Option<&Keyring>, sealed: &[u8]) -> Result<Vec<u8>, WireError> {
    Ok(open(keyring, sealed)?)
}

/// `payload` as it goes on the wire: sealed, behind its length.
pub fn encode_frame(keyring: Option<&Keyring>, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    let frame = seal(keyring, payload, &mut rand::rng());
    let len = u32::try_from(frame.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    let mut out = Vec::with_capacity(4 + frame.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&frame);
    Ok(out)
}

/// Seals `payload` and sends it.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    stream: &mut W,
    keyring: Option<&Keyring>,
    payload: &[u8],
) -> std::io::Result<()> {
    stream.write_all(&encode_frame(keyring, payload)?).await
}

/// Reads the next frame's header: its length, if within `limit`.
pub async fn read_len<R: AsyncRead + Unpin>(
    stream: &mut R,
    limit: usize,
) -> std::io::Result<usize> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    Ok(frame_len(header, limit)?)
}

/// Reads the `len` sealed bytes of a frame whose header was read. The buffer grows with what
/// arrives (at most twice that), never to the announced length ahead of the bytes.
pub async fn read_sealed<R: AsyncRead + Unpin>(
    stream: &mut R,
    len: usize,
) -> std::io::Result<Vec<u8>> {
    let mut sealed = Vec::new();
    let want = u64::try_from(len).unwrap_or(u64::MAX);
    let got = (&mut *stream).take(want).read_to_end(&mut sealed).await?;
    if got != len {
        return Err(WireError::Truncated {
            len: len.saturating_add(4),
            got: got.saturating_add(4),
        }
        .into());
    }
    Ok(sealed)
}

/// Reads one whole frame of at most `limit` sealed bytes and opens it.
pub async fn read_frame<R: AsyncRead + Unpin>(
    stream: &mut R,
    keyring: Option<&Keyring>,
    limit: usize,
) -> std::io::Result<Vec<u8>> {
    let len = read_len(stream, limit).await?;
    let sealed = read_sealed(stream, len).await?;
    Ok(open_frame(keyring, &sealed)?)
}

/// A frame's sealed bytes, and the bytes after it.
pub type Split<'a> = (&'a [u8], &'a [u8]);

/// Splits the next length-prefixed frame off `bytes`: its sealed bytes and the rest. What a
/// reader does with a stream, on a buffer; `None` once `bytes` is empty.
pub fn split_frame(bytes: &[u8], limit: usize) -> Result<Option<Split<'_>>, WireError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let Some((header, rest)) = bytes.split_first_chunk::<4>() else {
        return Err(WireError::Truncated {
            len: 4,
            got: bytes.len(),
        });
    };
    let len = frame_len(*header, limit)?;
    if rest.len() < len {
        return Err(WireError::Truncated {
            len: len.saturating_add(4),
            got: bytes.len(),
        });
    }
    Ok(Some(rest.split_at(len)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vigil_gossip::crypto::Key;

    use super::*;

    #[test]
    fn lengths_above_the_cap_are_refused() {
        assert_eq!(frame_len(100u32.to_be_bytes(), 100).ok(), Some(100));
        assert!(matches!(
            frame_len(101u32.to_be_bytes(), 100),
            Err(WireError::TooLarge {
                len: 101,
                limit: 100
            })
        ));
        assert!(frame_len([0xff; 4], MAX_FRAME).is_err());
    }

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
                    Err(WireError::Truncated { .. })
                ),
                "{cut}"
            );
        }
    }

    #[tokio::test]
    async fn an_announced_length_reserves_nothing_before_the_bytes_come() {
        let (mut client, mut server) = tokio::io::duplex(64);
        client
            .write_all(&(MAX_FRAME as u32).to_be_bytes())
            .await
            .expect("header");
        client.write_all(&[7; 10]).await.expect("some bytes");
        let len = read_len(&mut server, MAX_FRAME).await.expect("within cap");
        assert_eq!(len, MAX_FRAME);
        let mut sealed = Vec::new();
        let read = tokio::time::timeout(
            Duration::from_millis(50),
            (&mut server).take(len as u64).read_to_end(&mut sealed),
        )
        .await;
        assert!(read.is_err(), "still waiting for the rest");
        assert_eq!(sealed.len(), 10);
        assert!(
            sealed.capacity() < 4096,
            "the buffer follows the bytes: {} bytes reserved",
            sealed.capacity()
        );
        drop(client);
        let cut = read_sealed(&mut server, 100)
            .await
            .expect_err("ended early");
        assert_eq!(cut.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
