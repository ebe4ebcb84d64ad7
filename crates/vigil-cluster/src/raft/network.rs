//! Raft RPCs between voters over TCP: each frame is a 4-byte big-endian length and a payload
//! sealed with the cluster keyring (XChaCha20-Poly1305, as gossip uses) when one is set, so a
//! process without the key can neither read nor forge Raft traffic. A client keeps one
//! connection per peer and sends one request at a time on it; the server answers every frame
//! on a connection in order. Frames are capped in size and every exchange in time.
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

use super::types::{Raft, TypeConfig, Voter};

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

async fn write_frame(
    stream: &mut TcpStream,
    keyring: Option<&Keyring>,
    payload: &[u8],
) -> std::io::Result<()> {
    let frame = seal(keyring, payload, &mut rand::rng());
    let len = u32::try_from(frame.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    let mut out = Vec::with_capacity(4 + frame.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&frame);
    stream.write_all(&out).await
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

/// Serves Raft RPCs arriving on `listener` to `raft` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
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
            if let Err(e) = connection(stream, raft, keys, contact, healthy).await {
                debug!(%peer, error = %e, "raft connection closed");
            }
        });
    }
}

async fn connection(
    mut stream: TcpStream,
    raft: Raft,
    keys: Keys,
    contact: Arc<LeaderContact>,
    healthy: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    loop {
        let payload =
            match tokio::time::timeout(IDLE, read_frame(&mut stream, keys().as_ref())).await {
                Ok(Ok(payload)) => payload,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(()),
            };
        let request: Request = serde_json::from_slice(&payload)
            .map_err(|e| std::io::Error::other(format!("undecodable request: {e}")))?;
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
        let bytes = serde_json::to_vec(&reply).map_err(std::io::Error::other)?;
        write_frame(&mut stream, keys().as_ref(), &bytes).await?;
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
            stream: None,
        }
    }
}

/// The client side of one voter-to-voter link.
pub struct Peer {
    target: NodeId,
    name: String,
    network: Network,
    stream: Option<TcpStream>,
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
                self.stream = None;
                Err(Failure::Network(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer from voter {} within {ttl:?}", self.name),
                )))
            }
        }
    }

    async fn exchange_within(&mut self, payload: &[u8]) -> Result<Reply, Failure> {
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => self.dial().await.map_err(Failure::Unreachable)?,
        };
        let keyring = (self.network.keys)();
        write_frame(&mut stream, keyring.as_ref(), payload)
            .await
            .map_err(Failure::Network)?;
        let answer = read_frame(&mut stream, keyring.as_ref())
            .await
            .map_err(Failure::Network)?;
        let reply = serde_json::from_slice(&answer)
            .map_err(|e| Failure::Network(std::io::Error::other(e)))?;
        self.stream = Some(stream);
        Ok(reply)
    }

    async fn dial(&self) -> std::io::Result<TcpStream> {
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
        Ok(stream)
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
        target: 0,
        name: name.to_owned(),
        network: network.clone(),
        stream: None,
    };
    match peer.exchange(&Request::Campaign, DIAL * 2).await {
        Ok(Reply::Campaign(started)) => Ok(started),
        Ok(_) => Err(std::io::Error::other("reply of the wrong kind")),
        Err(Failure::Unreachable(e) | Failure::Network(e)) => Err(e),
    }
}
