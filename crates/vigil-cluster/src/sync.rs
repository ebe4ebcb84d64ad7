//! Push-pull exchanges over TCP: one length-prefixed frame each way, every step under a timeout.
//!
//! ```text
//! frame = [u32 big-endian length][payload]     payload = Node::sync_payload() (sealed if keyed)
//! dialler:   connect → write its frame → read the reply frame
//! acceptor:  read the dialler's frame → driver: handle_sync, sync_payload → write the reply
//! ```
//!
//! These functions run in their own tasks, never in the driver; a slow or silent peer costs a
//! task and a socket for at most a few seconds.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

/// Largest push-pull payload accepted or sent. A sync payload is a few hundred bytes per member,
/// so this allows clusters of several thousand members.
pub(crate) const MAX_FRAME: usize = 4 << 20;
/// How long a dialler waits for the TCP connection.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long each read or write of a frame (and the driver's answer) may take.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A peer's payload handed to the driver; the driver answers with its own payload, or drops
/// `reply` to refuse (the payload did not decode: wrong key, not vigil).
pub(crate) struct SyncRequest {
    /// The peer's TCP address.
    pub from: SocketAddr,
    /// Its frame's payload.
    pub payload: Vec<u8>,
    /// Where the driver sends this node's payload.
    pub reply: oneshot::Sender<Vec<u8>>,
}

/// Runs the dialler's side of an exchange with `addr`: the reply payload.
pub(crate) async fn exchange(addr: SocketAddr, payload: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut stream = timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| timed_out("connecting"))??;
    let _ = stream.set_nodelay(true);
    timeout(IO_TIMEOUT, write_frame(&mut stream, &payload))
        .await
        .map_err(|_| timed_out("sending our state"))??;
    timeout(IO_TIMEOUT, read_frame(&mut stream))
        .await
        .map_err(|_| timed_out("waiting for the peer's state"))?
}

/// Runs the acceptor's side of an exchange on `stream`, asking the driver for the reply.
pub(crate) async fn serve(
    mut stream: TcpStream,
    from: SocketAddr,
    driver: mpsc::Sender<SyncRequest>,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let payload = timeout(IO_TIMEOUT, read_frame(&mut stream))
        .await
        .map_err(|_| timed_out("waiting for the peer's state"))??;
    let (reply, answer) = oneshot::channel();
    let request = SyncRequest {
        from,
        payload,
        reply,
    };
    timeout(IO_TIMEOUT, driver.send(request))
        .await
        .map_err(|_| timed_out("handing the state to the driver"))?
        .map_err(|_| io::Error::other("the driver has stopped"))?;
    let Ok(Ok(ours)) = timeout(IO_TIMEOUT, answer).await else {
        // Refused or no answer: close without a word.
        return Ok(());
    };
    timeout(IO_TIMEOUT, write_frame(&mut stream, &ours))
        .await
        .map_err(|_| timed_out("sending our state"))?
}

/// Reads one frame. The buffer grows with the bytes that actually arrive, so a peer that
/// announces a large frame and sends little costs little memory.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Vec<u8>> {
    let len = reader.read_u32().await? as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("push-pull frame of {len} bytes exceeds the {MAX_FRAME}-byte limit"),
        ));
    }
    let mut payload = Vec::with_capacity(len.min(64 * 1024));
    reader.take(len as u64).read_to_end(&mut payload).await?;
    if payload.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "push-pull frame truncated: {} of {len} bytes",
                payload.len()
            ),
        ));
    }
    Ok(payload)
}

/// Writes one frame.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    payload: &[u8],
) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&len| len as usize <= MAX_FRAME)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "push-pull payload of {} bytes exceeds the {MAX_FRAME}-byte limit",
                    payload.len()
                ),
            )
        })?;
    writer.write_all(&len.to_be_bytes()).await?;
    writer.write_all(payload).await?;
    writer.flush().await
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("timed out {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"state").await.expect("write");
        write_frame(&mut wire, b"").await.expect("write");
        let mut reader = wire.as_slice();
        assert_eq!(read_frame(&mut reader).await.expect("read"), b"state");
        assert_eq!(read_frame(&mut reader).await.expect("read"), b"");
        assert!(read_frame(&mut reader).await.is_err());
    }

    #[tokio::test]
    async fn oversized_and_truncated_frames_are_refused() {
        let mut wire = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(&[0; 16]);
        let err = read_frame(&mut wire.as_slice())
            .await
            .expect_err("oversized");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let mut wire = 100u32.to_be_bytes().to_vec();
        wire.extend_from_slice(&[0; 10]);
        let err = read_frame(&mut wire.as_slice())
            .await
            .expect_err("truncated");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
