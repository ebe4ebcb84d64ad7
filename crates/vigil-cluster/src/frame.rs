//! The length-prefixed frame codec of every TCP stream vigil runs, push-pull exchanges and Raft
//! alike: a frame is a 4-byte big-endian length, then that many bytes.
//!
//! Reading never trusts the announced length: it is checked against the cap that applies at
//! that point of the stream (a hello is small; only later frames may be large), and the buffer
//! grows as bytes actually arrive instead of being reserved up front, so a peer that announces a
//! large frame and sends nothing costs the reader nothing. The pure steps ([`frame_len`],
//! [`prefix`], [`split_frame`]) are separate from the I/O ([`read_len`], [`read_body`],
//! [`read_frame`], [`write_frame`]) so that the fuzz targets run them on recorded streams.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes of a length prefix.
pub const PREFIX_LEN: usize = 4;

/// Bytes that break the framing rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A frame longer than the cap that applies was announced or given.
    #[error("a frame of {len} bytes exceeds the {limit}-byte cap at this point")]
    TooLong {
        /// The length announced or given.
        len: u64,
        /// The cap.
        limit: usize,
    },
    /// The bytes ended inside a frame.
    #[error("the stream ended {got} bytes into a frame of {len}")]
    Truncated {
        /// Bytes present.
        got: usize,
        /// Bytes announced.
        len: usize,
    },
}

impl From<FrameError> for io::Error {
    fn from(error: FrameError) -> io::Error {
        let kind = match error {
            FrameError::TooLong { .. } => io::ErrorKind::InvalidData,
            FrameError::Truncated { .. } => io::ErrorKind::UnexpectedEof,
        };
        io::Error::new(kind, error)
    }
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

/// `payload` behind its prefix, if within `limit`.
pub fn encode(payload: &[u8], limit: usize) -> Result<Vec<u8>, FrameError> {
    let mut frame = Vec::with_capacity(PREFIX_LEN + payload.len());
    frame.extend_from_slice(&prefix(payload.len(), limit)?);
    frame.extend_from_slice(payload);
    Ok(frame)
}

/// A frame's bytes, and the bytes after it.
pub type Split<'a> = (&'a [u8], &'a [u8]);

/// Splits the next frame of at most `limit` bytes off `bytes`: what a reader does with a stream,
/// on a buffer. `None` once `bytes` is empty.
pub fn split_frame(bytes: &[u8], limit: usize) -> Result<Option<Split<'_>>, FrameError> {
    if bytes.is_empty() {
        return Ok(None);
    }
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
    Ok(Some(rest.split_at(len)))
}

/// Reads the next prefix: the length of the frame behind it, if within `limit`.
pub async fn read_len<R: AsyncRead + Unpin>(reader: &mut R, limit: usize) -> io::Result<usize> {
    let mut head = [0u8; PREFIX_LEN];
    reader.read_exact(&mut head).await?;
    Ok(frame_len(head, limit)?)
}

/// Reads `len` bytes whose length is already known (from a prefix, or announced earlier). The
/// buffer grows with what arrives (at most twice that), never to `len` ahead of the bytes.
pub async fn read_body<R: AsyncRead + Unpin>(reader: &mut R, len: usize) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let want = u64::try_from(len).unwrap_or(u64::MAX);
    let got = (&mut *reader).take(want).read_to_end(&mut body).await?;
    if got != len {
        return Err(FrameError::Truncated { got, len }.into());
    }
    Ok(body)
}

/// Reads one whole frame of at most `limit` bytes.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, limit: usize) -> io::Result<Vec<u8>> {
    let len = read_len(reader, limit).await?;
    read_body(reader, len).await
}

/// Writes `payload` as one frame, if within `limit`.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    payload: &[u8],
    limit: usize,
) -> io::Result<()> {
    writer
        .write_all(&encode(payload, limit).map_err(invalid_input)?)
        .await?;
    writer.flush().await
}

/// A frame this end would send that breaks the rules: the caller's mistake, not the peer's.
fn invalid_input(error: FrameError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, error)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SMALL: usize = 4096;
    const LARGE: usize = 4 << 20;

    #[test]
    fn frames_round_trip_and_limits_hold() {
        let mut wire = prefix(5, SMALL).expect("prefix").to_vec();
        wire.extend_from_slice(b"hellostate");
        let (frame, rest) = split_frame(&wire, SMALL).expect("split").expect("a frame");
        assert_eq!((frame, rest), (&b"hello"[..], &b"state"[..]));
        assert_eq!(
            split_frame(&wire, 4),
            Err(FrameError::TooLong { len: 5, limit: 4 })
        );
        assert_eq!(
            split_frame(&wire[..7], SMALL),
            Err(FrameError::Truncated { got: 3, len: 5 })
        );
        assert_eq!(
            split_frame(&[0, 0], SMALL),
            Err(FrameError::Truncated { got: 2, len: 4 })
        );
        assert_eq!(split_frame(&[], SMALL), Ok(None));
        assert_eq!(
            frame_len(u32::MAX.to_be_bytes(), LARGE),
            Err(FrameError::TooLong {
                len: u64::from(u32::MAX),
                limit: LARGE
            })
        );
        assert!(prefix(LARGE + 1, LARGE).is_err());
        assert_eq!(frame_len(prefix(0, 0).expect("empty"), 0), Ok(0));
    }

    #[test]
    fn lengths_above_the_cap_are_refused() {
        assert_eq!(frame_len(100u32.to_be_bytes(), 100).ok(), Some(100));
        assert_eq!(
            frame_len(101u32.to_be_bytes(), 100),
            Err(FrameError::TooLong {
                len: 101,
                limit: 100
            })
        );
        assert!(frame_len([0xff; 4], 16 << 20).is_err());
    }

    #[tokio::test]
    async fn frames_round_trip() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"state", LARGE)
            .await
            .expect("write");
        write_frame(&mut wire, b"", LARGE).await.expect("write");
        let mut reader = wire.as_slice();
        assert_eq!(
            read_frame(&mut reader, LARGE).await.expect("read"),
            b"state"
        );
        assert_eq!(read_frame(&mut reader, SMALL).await.expect("read"), b"");
        assert!(read_frame(&mut reader, LARGE).await.is_err());
    }

    #[tokio::test]
    async fn oversized_and_truncated_frames_are_refused() {
        let mut wire = ((LARGE + 1) as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(&[0; 16]);
        let err = read_frame(&mut wire.as_slice(), LARGE)
            .await
            .expect_err("oversized");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // A hello may not be large: refused before anything is allocated.
        let wire = ((SMALL + 1) as u32).to_be_bytes();
        let err = read_frame(&mut wire.as_slice(), SMALL)
            .await
            .expect_err("oversized hello");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let mut wire = 100u32.to_be_bytes().to_vec();
        wire.extend_from_slice(&[0; 10]);
        let err = read_frame(&mut wire.as_slice(), LARGE)
            .await
            .expect_err("truncated");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn an_announced_length_reserves_nothing_before_the_bytes_come() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let max = 16 << 20;
        client
            .write_all(&(max as u32).to_be_bytes())
            .await
            .expect("header");
        client.write_all(&[7; 10]).await.expect("some bytes");
        let len = read_len(&mut server, max).await.expect("within cap");
        assert_eq!(len, max);
        let mut body = Vec::new();
        let read = tokio::time::timeout(
            Duration::from_millis(50),
            (&mut server).take(len as u64).read_to_end(&mut body),
        )
        .await;
        assert!(read.is_err(), "still waiting for the rest");
        assert_eq!(body.len(), 10);
        assert!(
            body.capacity() < 4096,
            "the buffer follows the bytes: {} bytes reserved",
            body.capacity()
        );
        drop(client);
        let cut = read_body(&mut server, 100).await.expect_err("ended early");
        assert_eq!(cut.kind(), io::ErrorKind::UnexpectedEof);
    }
}
