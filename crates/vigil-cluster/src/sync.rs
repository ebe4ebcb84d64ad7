//! Push-pull exchanges over TCP: an authenticated hello, then one state each way, every step under
//! a timeout.
//!
//! ```text
//! dialler → acceptor: [u32 length][hello][state]   hello = Node::sync_hello(state length)
//! acceptor → dialler: [u32 length][state]          state = Node::sync_payload() (sealed if keyed)
//! dialler:   connect → write hello and state → read the reply
//! acceptor:  read the hello (small, within HELLO_TIMEOUT) → driver: handle_sync_hello
//!            → read the state of the announced length → driver: handle_sync, sync_payload
//!            → write the reply
//! ```
//!
//! The acceptor buffers nothing large before the driver has authenticated the hello, and a peer
//! that does not send a valid hello at once is dropped after [`HELLO_TIMEOUT`]. The framing is
//! `vigil_gossip::stream`'s, shared with its fuzz target. These functions run in their own tasks,
//! never in the driver; a slow or silent peer costs a task and a socket for a bounded time.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task;
use tokio::time::timeout;
use vigil_gossip::stream::{self, FrameError, MAX_HELLO, MAX_STATE, PREFIX_LEN};

/// How long a dialler waits for the TCP connection.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long each later read or write (and the driver's answer) may take.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an accepted connection may take to deliver its whole hello. A member sends it at once
/// after connecting; a peer that does not is not worth a slot.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(1);

/// What an accepted connection asks of the driver.
pub(crate) enum SyncRequest {
    /// Check a dialler's hello; the answer is the length of the state to read next, or nothing
    /// (`reply` dropped) if the hello did not check out.
    Hello {
        /// The peer's TCP address.
        from: SocketAddr,
        /// The serving task, so the driver can count the connection as authenticated.
        task: task::Id,
        /// The hello frame.
        frame: Vec<u8>,
        /// Where the driver sends the announced state length.
        reply: oneshot::Sender<usize>,
    },
    /// Merge a dialler's state and answer with this node's, or drop `reply` to refuse (the state
    /// did not decode: wrong key, not vigil, a replay).
    State {
        /// The peer's TCP address.
        from: SocketAddr,
        /// Its state frame.
        frame: Vec<u8>,
        /// Where the driver sends this node's state.
        reply: oneshot::Sender<Vec<u8>>,
    },
}

/// Runs the dialler's side of an exchange with `addr`: the reply state.
pub(crate) async fn exchange(
    addr: SocketAddr,
    hello: Vec<u8>,
    state: Vec<u8>,
) -> io::Result<Vec<u8>> {
    let mut stream = timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| timed_out("connecting"))??;
    let _ = stream.set_nodelay(true);
    let mut message = stream::prefix(hello.len(), MAX_HELLO)
        .map_err(invalid_input)?
        .to_vec();
    message.extend_from_slice(&hello);
    message.extend_from_slice(&state);
    timeout(IO_TIMEOUT, async {
        stream.write_all(&message).await?;
        stream.flush().await
    })
    .await
    .map_err(|_| timed_out("sending our state"))??;
    timeout(IO_TIMEOUT, read_frame(&mut stream, MAX_STATE))
        .await
        .map_err(|_| timed_out("waiting for the peer's state"))?
}

/// Runs the acceptor's side of an exchange on `stream`, asking the driver to check the hello and
/// then for the reply.
pub(crate) async fn serve(
    mut stream: TcpStream,
    from: SocketAddr,
    driver: mpsc::Sender<SyncRequest>,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let frame = timeout(HELLO_TIMEOUT, read_frame(&mut stream, MAX_HELLO))
        .await
        .map_err(|_| timed_out("waiting for the peer's hello"))??;
    let hello = |reply| SyncRequest::Hello {
        from,
        task: task::id(),
        frame,
        reply,
    };
    let Some(state_len) = ask_driver(&driver, hello, "the hello").await? else {
        // Not authenticated, or no answer: close without a word.
        return Ok(());
    };
    // Authenticated: the announced length is worth buffering.
    let mut frame = vec![0u8; state_len];
    timeout(IO_TIMEOUT, stream.read_exact(&mut frame))
        .await
        .map_err(|_| timed_out("waiting for the peer's state"))??;
    let state = |reply| SyncRequest::State { from, frame, reply };
    let Some(ours) = ask_driver(&driver, state, "the state").await? else {
        return Ok(());
    };
    timeout(IO_TIMEOUT, write_frame(&mut stream, &ours))
        .await
        .map_err(|_| timed_out("sending our state"))?
}

/// Hands the driver the request `ask` makes around a reply channel and waits for its answer:
/// `None` when the driver refused (dropped the reply) or did not answer in time.
async fn ask_driver<T>(
    driver: &mpsc::Sender<SyncRequest>,
    ask: impl FnOnce(oneshot::Sender<T>) -> SyncRequest,
    what: &str,
) -> io::Result<Option<T>> {
    let (reply, answer) = oneshot::channel();
    timeout(IO_TIMEOUT, driver.send(ask(reply)))
        .await
        .map_err(|_| timed_out(&format!("handing {what} to the driver")))?
        .map_err(|_| io::Error::other("the driver has stopped"))?;
    Ok(timeout(IO_TIMEOUT, answer).await.ok().and_then(Result::ok))
}

/// Reads one frame of at most `limit` bytes. The buffer grows with the bytes that actually
/// arrive, so a peer that announces a large frame and sends little costs little memory.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> io::Result<Vec<u8>> {
    let mut prefix = [0u8; PREFIX_LEN];
    reader.read_exact(&mut prefix).await?;
    let len = stream::frame_len(prefix, limit).map_err(invalid_data)?;
    let mut payload = Vec::with_capacity(len.min(64 * 1024));
    reader.take(len as u64).read_to_end(&mut payload).await?;
    if payload.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            FrameError::Truncated {
                got: payload.len(),
                len,
            },
        ));
    }
    Ok(payload)
}

/// Writes one length-prefixed frame.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    payload: &[u8],
) -> io::Result<()> {
    let prefix = stream::prefix(payload.len(), MAX_STATE).map_err(invalid_input)?;
    writer.write_all(&prefix).await?;
    writer.write_all(payload).await?;
    writer.flush().await
}

fn invalid_data(error: FrameError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

fn invalid_input(error: FrameError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, error)
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
        assert_eq!(
            read_frame(&mut reader, MAX_STATE).await.expect("read"),
            b"state"
        );
        assert_eq!(read_frame(&mut reader, MAX_HELLO).await.expect("read"), b"");
        assert!(read_frame(&mut reader, MAX_STATE).await.is_err());
    }

    #[tokio::test]
    async fn oversized_and_truncated_frames_are_refused() {
        let mut wire = ((MAX_STATE + 1) as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(&[0; 16]);
        let err = read_frame(&mut wire.as_slice(), MAX_STATE)
            .await
            .expect_err("oversized");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // A hello may not be large: refused before anything is allocated.
        let wire = ((MAX_HELLO + 1) as u32).to_be_bytes();
        let err = read_frame(&mut wire.as_slice(), MAX_HELLO)
            .await
            .expect_err("oversized hello");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let mut wire = 100u32.to_be_bytes().to_vec();
        wire.extend_from_slice(&[0; 10]);
        let err = read_frame(&mut wire.as_slice(), MAX_STATE)
            .await
            .expect_err("truncated");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
