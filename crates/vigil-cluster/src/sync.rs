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
//! that does not send a valid hello at once is dropped after [`HELLO_TIMEOUT`], and even the
//! authenticated state is buffered as its bytes arrive. The framing is [`crate::frame`]'s, shared
//! with Raft and the fuzz targets; the caps are `vigil_gossip::stream`'s. These functions run in their own tasks,
//! never in the driver; a slow or silent peer costs a task and a socket for a bounded time.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task;
use tokio::time::timeout;
use vigil_gossip::stream::{MAX_HELLO, MAX_STATE};

use crate::frame::{self, read_body, read_frame, write_frame};

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
    let mut message = frame::encode(&hello, MAX_HELLO)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
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
    // Authenticated: the announced length is worth reading, as it arrives.
    let frame = timeout(IO_TIMEOUT, read_body(&mut stream, state_len))
        .await
        .map_err(|_| timed_out("waiting for the peer's state"))??;
    let state = |reply| SyncRequest::State { from, frame, reply };
    let Some(ours) = ask_driver(&driver, state, "the state").await? else {
        return Ok(());
    };
    timeout(IO_TIMEOUT, write_frame(&mut stream, &ours, MAX_STATE))
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

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("timed out {what}"))
}
