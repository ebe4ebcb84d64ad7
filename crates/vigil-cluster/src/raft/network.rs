//! Raft RPCs between voters over TCP: each frame is a 4-byte big-endian length and a payload
//! sealed with the cluster keyring (XChaCha20-Poly1305, as gossip uses) when one is set, so a
//! process without the key can neither read nor forge Raft traffic. Inside the seal, every
//! frame is bound to its connection and its place in it (see [`super::session`]): the server
//! opens each connection with a hello carrying a fresh nonce, and refuses, closing the
//! connection, any request recorded elsewhere or replayed; the client refuses any reply that
//! does not answer the request it just sent. A client keeps one connection per peer and sends
//! one request at a time on it; the server answers every frame on a connection in order.
//! Frames are capped in size and every exchange in time.
//!
//! Besides openraft's RPCs, one request of vigil's own: `Campaign`, which an unhealthy leader
//! sends a healthy, up-to-date follower so that it stands for election at once (see
//! [`ask_to_campaign`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::AnyError;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::debug;
use vigil_gossip::crypto::{open, seal, Keyring};

use super::session::{ClientSession, Exchange, ServerSession};
use super::types::{raft_id, Raft, TypeConfig, Voter};

type NodeId = u64;

/// Largest frame accepted: snapshot chunks and entry batches stay far below it.
const MAX_FRAME: usize = 16 << 20;
/// How long an idle server connection is kept.
const IDLE: Duration = Duration::from_secs(60);
/// How long a dial may take.
const DIAL: Duration = Duration::from_millis(500);

/// A Raft request on the wire.
#[derive(Serialize, Deserialize)]
enum Request {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// Stand for election now, if healthy.
    Campaign,
}

/// A Raft reply on the wire.
#[derive(Serialize, Deserialize)]
enum Reply {
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    /// Whether the voter started an election.
    Campaign(bool),
}

/// Finds a voter's Raft address (from the gossip view).
pub type Resolver = Arc<dyn Fn(&str) -> Option<SocketAddr> + Send + Sync>;

/// The cluster keyring as it is now (it rotates while Raft runs); `None` without encryption.
pub type Keys = Arc<dyn Fn() -> Option<Keyring> + Send + Sync>;

/// When this voter last accepted entries or a heartbeat from a leader, in milliseconds after
/// `base`; 0 means never.
#[derive(Debug)]
pub struct LeaderContact {
    base: Instant,
    millis: AtomicU64,
}

impl LeaderContact {
    /// No contact yet.
    pub fn new() -> LeaderContact {
        LeaderContact {
            base: Instant::now(),
            millis: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let millis = u64::try_from(self.base.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.millis.store(millis, Ordering::Relaxed);
    }

    /// Time since the last contact, if there was one.
    pub fn since(&self) -> Option<Duration> {
        match self.millis.load(Ordering::Relaxed) {
            0 => None,
            millis => Some(
                self.base
                    .elapsed()
                    .saturating_sub(Duration::from_millis(millis)),
            ),
        }
    }
}

/// `payload` as it goes on the wire: sealed, behind its length.
fn wire_frame(keyring: Option<&Keyring>, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    let frame = seal(keyring, payload, &mut rand::rng());
    let len = u32::try_from(frame.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    let mut out = Vec::with_capacity(4 + frame.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&frame);
    Ok(out)
}

async fn write_frame(
    stream: &mut TcpStream,
    keyring: Option<&Keyring>,
    payload: &[u8],
) -> std::io::Result<()> {
    stream.write_all(&wire_frame(keyring, payload)?).await
}

async fn read_frame(stream: &mut TcpStream, keyring: Option<&Keyring>) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "frame of {len} bytes exceeds the {MAX_FRAME}-byte cap"
        )));
    }
    let mut frame = vec![0u8; len];
    stream.read_exact(&mut frame).await?;
    open(keyring, &frame).map_err(|e| std::io::Error::other(format!("refused frame: {e}")))
}

/// Serves Raft RPCs arriving on `listener` to `raft`, the voter with Raft id `voter`, until the
/// task is dropped.
pub async fn serve(
    listener: TcpListener,
    voter: NodeId,
    raft: Raft,
    keys: Keys,
    contact: Arc<LeaderContact>,
    healthy: Arc<AtomicBool>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                debug!(error = %e, "raft accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let raft = raft.clone();
        let keys = keys.clone();
        let contact = contact.clone();
        let healthy = healthy.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, voter, raft, keys, contact, healthy).await {
                debug!(%peer, error = %e, "raft connection closed");
            }
        });
    }
}

async fn connection(
    stream: TcpStream,
    voter: NodeId,
    raft: Raft,
    keys: Keys,
    contact: Arc<LeaderContact>,
    healthy: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let mut inbound = Inbound::accept(stream, voter, keys).await?;
    while let Some((exchange, request)) = inbound.request().await? {
        let reply = match request {
            Request::Append(rpc) => {
                let answer = raft.append_entries(rpc).await;
                // Any answer but "I have seen a higher vote" means a current leader spoke.
                if matches!(&answer, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_))) {
                    contact.touch();
                }
                Reply::Append(answer)
            }
            Request::Vote(rpc) => Reply::Vote(raft.vote(rpc).await),
            Request::Snapshot(rpc) => {
                let answer = raft.install_snapshot(rpc).await;
                if answer.is_ok() {
                    contact.touch();
                }
                Reply::Snapshot(answer)
            }
            Request::Campaign => {
                let campaign =
                    healthy.load(Ordering::Relaxed) && raft.trigger().elect().await.is_ok();
                Reply::Campaign(campaign)
            }
        };
        inbound.reply(exchange, &reply).await?;
    }
    Ok(())
}

/// The server's end of one accepted connection: it has sent its hello, reads requests bound
/// to the connection and answers each in turn.
struct Inbound {
    stream: TcpStream,
    keys: Keys,
    session: ServerSession,
}

impl Inbound {
    /// Opens the connection with the hello, naming this voter, that requests on it must be
    /// bound to.
    async fn accept(mut stream: TcpStream, voter: NodeId, keys: Keys) -> std::io::Result<Inbound> {
        let _ = stream.set_nodelay(true);
        let session = ServerSession::new(rand::random(), voter);
        write_frame(&mut stream, keys().as_ref(), &session.hello()).await?;
        Ok(Inbound {
            stream,
            keys,
            session,
        })
    }

    /// The next request, or `None` once the client has closed the connection or left it idle.
    /// A frame that cannot be opened, is not bound to this connection in order, or does not
    /// decode is an error: the caller closes the connection.
    async fn request(&mut self) -> std::io::Result<Option<(Exchange, Request)>> {
        let keyring = (self.keys)();
        let frame = match tokio::time::timeout(IDLE, read_frame(&mut self.stream, keyring.as_ref()))
            .await
        {
            Ok(Ok(frame)) => frame,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(None),
        };
        let (exchange, body) = self
            .session
            .open_request(&frame)
            .map_err(|e| std::io::Error::other(format!("refused frame: {e}")))?;
        let request = serde_json::from_slice(body)
            .map_err(|e| std::io::Error::other(format!("undecodable request: {e}")))?;
        Ok(Some((exchange, request)))
    }

    /// Sends the reply to the request `exchange` stands for.
    async fn reply(&mut self, exchange: Exchange, reply: &Reply) -> std::io::Result<()> {
        let body = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
        let frame = self.session.reply(exchange, &body);
        write_frame(&mut self.stream, (self.keys)().as_ref(), &frame).await
    }
}

/// Makes one [`Peer`] per target voter.
#[derive(Clone)]
pub struct Network {
    resolve: Resolver,
    keys: Keys,
}

impl Network {
    /// A network that finds voters with `resolve` and seals frames with the keyring `keys`
    /// gives at the time.
    pub fn new(resolve: Resolver, keys: Keys) -> Network {
        Network { resolve, keys }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &Voter) -> Peer {
        Peer {
            target,
            name: node.name.clone(),
            network: self.clone(),
            link: None,
        }
    }
}

/// The client side of one voter-to-voter link.
pub struct Peer {
    target: NodeId,
    name: String,
    network: Network,
    link: Option<Outbound>,
}

/// The client's end of one dialled connection, bound to the server's hello.
struct Outbound {
    stream: TcpStream,
    session: ClientSession,
}

impl Outbound {
    /// Reads the hello of the voter `target` on a fresh connection and binds this end to it.
    async fn open(
        mut stream: TcpStream,
        target: NodeId,
        keyring: Option<&Keyring>,
    ) -> std::io::Result<Outbound> {
        let hello = read_frame(&mut stream, keyring).await?;
        let session = ClientSession::from_hello(&hello, rand::random(), target)
            .map_err(|e| std::io::Error::other(format!("refused hello: {e}")))?;
        Ok(Outbound { stream, session })
    }

    /// Sends one request and returns the body of the reply that answers it.
    async fn exchange(
        &mut self,
        keyring: Option<&Keyring>,
        payload: &[u8],
    ) -> std::io::Result<Vec<u8>> {
        let (exchange, frame) = self.session.request(payload);
        write_frame(&mut self.stream, keyring, &frame).await?;
        let answer = read_frame(&mut self.stream, keyring).await?;
        let body = self
            .session
            .open_reply(exchange, &answer)
            .map_err(|e| std::io::Error::other(format!("refused reply: {e}")))?;
        Ok(body.to_vec())
    }
}

/// How an exchange failed: before anything was sent (the peer is unreachable), or after.
enum Failure {
    Unreachable(std::io::Error),
    Network(std::io::Error),
}

impl Failure {
    fn into_rpc<E: std::error::Error>(self) -> RPCError<NodeId, Voter, E> {
        match self {
            Failure::Unreachable(e) => RPCError::Unreachable(Unreachable::new(&e)),
            Failure::Network(e) => RPCError::Network(NetworkError::new(&e)),
        }
    }
}

impl Peer {
    async fn exchange(&mut self, request: &Request, ttl: Duration) -> Result<Reply, Failure> {
        let payload =
            serde_json::to_vec(request).map_err(|e| Failure::Network(std::io::Error::other(e)))?;
        match tokio::time::timeout(ttl, self.exchange_within(&payload)).await {
            Ok(result) => result,
            Err(_) => {
                self.link = None;
                Err(Failure::Network(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer from voter {} within {ttl:?}", self.name),
                )))
            }
        }
    }

    /// One exchange on the kept connection, dialling first if there is none. The connection is
    /// kept only after a reply that answers the request, so a failed or refused exchange leaves
    /// the next one to start on a fresh connection.
    async fn exchange_within(&mut self, payload: &[u8]) -> Result<Reply, Failure> {
        let mut link = match self.link.take() {
            Some(link) => link,
            None => self.dial().await.map_err(Failure::Unreachable)?,
        };
        let keyring = (self.network.keys)();
        let answer = link
            .exchange(keyring.as_ref(), payload)
            .await
            .map_err(Failure::Network)?;
        let reply = serde_json::from_slice(&answer)
            .map_err(|e| Failure::Network(std::io::Error::other(e)))?;
        self.link = Some(link);
        Ok(reply)
    }

    /// Connects to the voter and reads its hello: nothing is sent yet, so any failure here
    /// means the voter is unreachable.
    async fn dial(&self) -> std::io::Result<Outbound> {
        let addr = (self.network.resolve)(&self.name).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no Raft address known for voter {}", self.name),
            )
        })?;
        let stream = tokio::time::timeout(DIAL, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("dialling {addr} timed out"),
                )
            })??;
        let _ = stream.set_nodelay(true);
        Outbound::open(stream, self.target, (self.network.keys)().as_ref()).await
    }

    fn unexpected<E: std::error::Error>() -> RPCError<NodeId, Voter, E> {
        RPCError::Network(NetworkError::new(&AnyError::error(
            "reply of the wrong kind",
        )))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Voter, RaftError<NodeId>>> {
        match self
            .exchange(&Request::Append(rpc), option.hard_ttl())
            .await
        {
            Ok(Reply::Append(answer)) => {
                answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(Self::unexpected()),
            Err(failure) => Err(failure.into_rpc()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Voter, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self
            .exchange(&Request::Snapshot(rpc), option.hard_ttl())
            .await
        {
            Ok(Reply::Snapshot(answer)) => {
                answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(Self::unexpected()),
            Err(failure) => Err(failure.into_rpc()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Voter, RaftError<NodeId>>> {
        match self.exchange(&Request::Vote(rpc), option.hard_ttl()).await {
            Ok(Reply::Vote(answer)) => {
                answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(Self::unexpected()),
            Err(failure) => Err(failure.into_rpc()),
        }
    }

    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(Duration::from_millis(100)))
    }
}

/// Asks the voter `name` to stand for election at once; whether it did. Used by an unhealthy
/// leader: the follower's own lease on the old leader would otherwise hold the election back,
/// but the old leader, whose vote dates from its election, grants the candidate its vote, which
/// with the candidate's own is a majority of three.
pub async fn ask_to_campaign(network: &Network, name: &str) -> std::io::Result<bool> {
    let mut peer = Peer {
        target: raft_id(name),
        name: name.to_owned(),
        network: network.clone(),
        link: None,
    };
    match peer.exchange(&Request::Campaign, DIAL * 2).await {
        Ok(Reply::Campaign(started)) => Ok(started),
        Ok(_) => Err(std::io::Error::other("reply of the wrong kind")),
        Err(Failure::Unreachable(e) | Failure::Network(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use vigil_gossip::crypto::Key;

    use super::*;

    /// The voter the test server plays.
    const PEER: &str = "peer";

    /// A server on a fresh port whose every connection answers each request with
    /// `Campaign(true)`, sealing with `keys`.
    async fn server(keys: Keys) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let keys = keys.clone();
                tokio::spawn(async move {
                    let mut inbound = Inbound::accept(stream, raft_id(PEER), keys).await?;
                    while let Some((exchange, _)) = inbound.request().await? {
                        inbound.reply(exchange, &Reply::Campaign(true)).await?;
                    }
                    std::io::Result::Ok(())
                });
            }
        });
        addr
    }

    /// Whether the server closes the connection without writing anything more.
    async fn closes(stream: &mut TcpStream) -> bool {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest));
        matches!(read.await, Ok(Ok(0)) | Ok(Err(_)))
    }

    #[tokio::test]
    async fn a_recorded_request_is_refused_on_its_connection_and_on_a_fresh_one() {
        let keyring = Keyring::new(Key::from_bytes([3; 32]));
        let keys: Keys = Arc::new(move || Some(keyring.clone()));
        let addr = server(keys.clone()).await;

        // A genuine exchange, recorded as it went on the wire.
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut outbound = Outbound::open(stream, raft_id(PEER), keys().as_ref())
            .await
            .expect("hello");
        let body = serde_json::to_vec(&Request::Campaign).expect("encode");
        let (exchange, payload) = outbound.session.request(&body);
        let recorded = wire_frame(keys().as_ref(), &payload).expect("frame");
        outbound.stream.write_all(&recorded).await.expect("send");
        let answer = read_frame(&mut outbound.stream, keys().as_ref())
            .await
            .expect("reply");
        let reply = outbound
            .session
            .open_reply(exchange, &answer)
            .expect("bound reply");
        assert!(matches!(
            serde_json::from_slice(reply),
            Ok(Reply::Campaign(true))
        ));

        // Replayed on the same connection: refused.
        outbound.stream.write_all(&recorded).await.expect("replay");
        assert!(
            closes(&mut outbound.stream).await,
            "a replay on its own connection"
        );

        // Replayed on a fresh connection, after its hello: refused.
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let _hello = read_frame(&mut stream, keys().as_ref())
            .await
            .expect("hello");
        stream.write_all(&recorded).await.expect("replay");
        assert!(closes(&mut stream).await, "a replay on a fresh connection");

        // A client still gets through on a fresh connection.
        let network = Network::new(Arc::new(move |_| Some(addr)), keys);
        assert!(ask_to_campaign(&network, PEER).await.expect("campaign"));
    }
}
