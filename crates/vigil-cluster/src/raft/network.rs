//! Raft RPCs between voters over TCP, in frames (see [`super::frame`]) sealed with the cluster
//! keyring when one is set, so a process without the key can neither read nor forge Raft
//! traffic. Inside the seal, every frame is bound to its connection and its place in it (see
//! [`super::session`]): the server opens each connection with a hello carrying a fresh nonce,
//! the client answers with a client hello, and the server refuses, closing the connection, any
//! request recorded elsewhere or replayed; the client refuses any reply that does not answer
//! the request it just sent. A client keeps one connection per peer and sends one request at a
//! time on it; the server answers every frame on a connection in order.
//!
//! What a peer can make the server hold is bounded before it proves anything: connections per
//! address and in total (see [`super::limits`]); until the client hello, which must come within
//! [`HELLO_WITHIN`] of the accept, only a hello-sized frame is read; after it, frames up to
//! [`MAX_FRAME`], each within [`FRAME_WITHIN`] of its header and within a byte budget shared by
//! all connections. With a keyring, only a key holder gets past the client hello.
//!
//! Besides openraft's RPCs, two requests of vigil's own: `Campaign`, which an unhealthy leader
//! sends a healthy, up-to-date follower so that it stands for election at once (see
//! [`ask_to_campaign`]), and `PreVote`, which a voter sends before it stands for election at all
//! (see [`pre_vote`]): it asks whether the others would vote for it, and raises no term.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_gossip::version::{Versions, PROTOCOL_MAX};

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::RaftLogStorage;
use openraft::{AnyError, LogId, ServerState};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tracing::debug;
use vigil_gossip::crypto::Keyring;

use super::binding::{ClientSession, Exchange, Nonce, ServerSession};
use super::exit::LeaderExit;
use super::frame::{open_frame, read_frame, write_frame, WireError, MAX_FRAME, MAX_HELLO_FRAME};
use super::limits::{Budget, Slots, FRAME_BUDGET, MAX_CONNECTIONS, MAX_PER_ADDRESS};
use super::store::LogStore;
use super::types::{raft_id, Raft, TypeConfig, Voter};
use crate::frame::{read_body, read_len, split_frame};

type NodeId = u64;

/// How long an idle server connection is kept once its client hello came.
const IDLE: Duration = Duration::from_secs(60);
/// How long a dial may take.
const DIAL: Duration = Duration::from_millis(500);
/// How long after the accept the client hello may come: a client sends it as soon as it has
/// read the server's hello, so this only has to cover a slow network.
pub const HELLO_WITHIN: Duration = Duration::from_secs(2);
/// How long a frame's body may take after its header: at least 1.6 MB/s for the largest.
pub const FRAME_WITHIN: Duration = Duration::from_secs(10);

/// A Raft request on the wire.
#[derive(Serialize, Deserialize)]
enum Request {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// Stand for election now, if healthy.
    Campaign,
    /// Would you vote for a candidate whose log ends at `last_log_id`?
    PreVote {
        /// The candidate's last log id.
        last_log_id: Option<LogId<NodeId>>,
    },
}

/// A Raft reply on the wire.
#[derive(Serialize, Deserialize)]
enum Reply {
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    /// Whether the voter started an election.
    Campaign(bool),
    /// Whether the voter would grant its vote.
    PreVote(bool),
}

/// Finds a voter's Raft address (from the gossip view).
pub type Resolver = Arc<dyn Fn(&str) -> Option<SocketAddr> + Send + Sync>;

/// The cluster keyring as it is now (it rotates while Raft runs); `None` without encryption.
pub type Keys = Arc<dyn Fn() -> Option<Keyring> + Send + Sync>;

/// The protocol version a voter's hellos name now: the one the cluster speaks, from gossip.
pub type Version = Arc<dyn Fn() -> u8 + Send + Sync>;

/// When something last happened on this voter's Raft transport, in milliseconds after `base`;
/// 0 means never. One records when it last accepted entries or a heartbeat from a leader,
/// another when it last granted a vote.
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

    /// The last contact as an opaque reading (0: never), to tell one contact from the next.
    pub fn reading(&self) -> u64 {
        self.millis.load(Ordering::Relaxed)
    }

    /// Records a contact `millis` after `base`.
    #[cfg(test)]
    pub fn touch_at(&self, millis: u64) {
        self.millis.store(millis.max(1), Ordering::Relaxed);
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

/// What a voter's Raft server answers requests from.
#[derive(Clone)]
pub struct Service {
    /// This voter's Raft id.
    pub voter: NodeId,
    /// This voter's Raft.
    pub raft: Raft,
    /// The keyring frames are sealed with.
    pub keys: Keys,
    /// The protocol version each connection's hello names.
    pub version: Version,
    /// When this voter last heard from a leader.
    pub contact: Arc<LeaderContact>,
    /// When this voter last granted a vote.
    pub voted: Arc<LeaderContact>,
    /// Whether this voter's critical checks pass.
    pub healthy: Arc<AtomicBool>,
    /// This voter's log, read for the last log id a pre-vote is compared with.
    pub log: LogStore,
    /// The leader's lease, the longest election timeout: a voter that heard from a leader more
    /// recently refuses pre-votes.
    pub lease: Duration,
    /// openraft's own lease, after which it grants votes: the whole lease once the leader's
    /// process is found gone.
    pub raft_lease: Duration,
    /// What this voter found out about its leader's process.
    pub exit: Arc<LeaderExit>,
}

impl Service {
    /// Whether this voter would vote for a candidate whose log ends at `last_log_id`: not while
    /// it leads in good health, nor while a leader's lease on it runs or the candidate it just
    /// voted for may still win, nor for a log behind its own. What openraft would answer a
    /// vote, less the term: nothing changes here.
    async fn pre_vote(&self, last_log_id: Option<LogId<NodeId>>) -> bool {
        let leads = self.raft.metrics().borrow().state == ServerState::Leader;
        if leads && self.healthy.load(Ordering::Relaxed) {
            return false;
        }
        let lease = self.exit.lease(&self.contact, self.lease, self.raft_lease);
        let recent = |moment: &LeaderContact| moment.since().is_some_and(|s| s <= lease);
        if recent(&self.contact) || recent(&self.voted) {
            return false;
        }
        match self.log.clone().get_log_state().await {
            Ok(state) => last_log_id >= state.last_log_id,
            Err(e) => {
                debug!(error = %e, "cannot read the log for a pre-vote; refusing it");
                false
            }
        }
    }
}

/// Serves Raft RPCs arriving on `listener` with `service`, until the task is dropped, which
/// closes every connection it accepted too: a voter that stopped must look to its peers like a
/// process that exited, not keep answering on connections they already hold.
pub async fn serve(listener: TcpListener, service: Service) {
    let slots = Slots::new(MAX_PER_ADDRESS, MAX_CONNECTIONS);
    let budget = Budget::new(FRAME_BUDGET);
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                debug!(error = %e, "raft accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match slots.take(peer.ip()) {
            Ok(slot) => slot,
            Err(full) => {
                debug!(%peer, %full, "raft connection refused");
                continue;
            }
        };
        let service = service.clone();
        let budget = budget.clone();
        connections.spawn(async move {
            let _slot = slot;
            if let Err(e) = connection(stream, service, budget).await {
                debug!(%peer, error = %e, "raft connection closed");
            }
        });
    }
}

async fn connection(stream: TcpStream, service: Service, budget: Budget) -> std::io::Result<()> {
    let version = (service.version)();
    let mut inbound =
        Inbound::accept(stream, service.voter, service.keys.clone(), version, budget).await?;
    let mut leader_spoke = false;
    let served = serve_requests(&mut inbound, &service, &mut leader_spoke).await;
    // The leader's connection closing is the first sign that its process may be gone.
    if leader_spoke {
        service.exit.link_closed();
    }
    served
}

/// Answers the requests on one connection; `leader_spoke` tells whether a current leader sent
/// entries or a heartbeat on it.
async fn serve_requests(
    inbound: &mut Inbound,
    service: &Service,
    leader_spoke: &mut bool,
) -> std::io::Result<()> {
    let Service {
        raft,
        contact,
        healthy,
        ..
    } = service;
    while let Some((exchange, request)) = inbound.request().await? {
        let reply = match request {
            Request::Append(rpc) => {
                let answer = raft.append_entries(rpc).await;
                // Any answer but "I have seen a higher vote" means a current leader spoke.
                if matches!(&answer, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_))) {
                    contact.touch();
                    *leader_spoke = true;
                }
                Reply::Append(answer)
            }
            Request::Vote(rpc) => {
                let answer = raft.vote(rpc).await;
                if matches!(&answer, Ok(r) if r.vote_granted) {
                    service.voted.touch();
                }
                Reply::Vote(answer)
            }
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
            Request::PreVote { last_log_id } => Reply::PreVote(service.pre_vote(last_log_id).await),
        };
        inbound.reply(exchange, &reply).await?;
    }
    Ok(())
}

/// What the server makes of the frames a client sends on one connection: the client hello
/// first, then requests bound to the connection in order. No I/O: [`Inbound`] hands it each
/// frame it reads, and [`fuzz_decode_inbound`] a whole recorded stream.
struct InboundDecoder {
    session: ServerSession,
}

impl InboundDecoder {
    /// A decoder for a fresh connection of the voter `voter` in protocol `version`; `server`
    /// must be fresh random bytes.
    fn new(server: Nonce, voter: NodeId, version: u8) -> InboundDecoder {
        InboundDecoder {
            session: ServerSession::new(server, voter, version),
        }
    }

    /// The largest sealed frame due next: a hello until the client hello came.
    fn limit(&self) -> usize {
        if self.session.greeted() {
            MAX_FRAME
        } else {
            MAX_HELLO_FRAME
        }
    }

    /// Opens and checks one sealed frame: `None` for the client hello, else the request.
    fn decode(
        &mut self,
        keyring: Option<&Keyring>,
        sealed: &[u8],
    ) -> Result<Option<(Exchange, Request)>, WireError> {
        let frame = open_frame(keyring, sealed)?;
        if !self.session.greeted() {
            self.session.open_client_hello(&frame)?;
            return Ok(None);
        }
        let (exchange, body) = self.session.open_request(&frame)?;
        let request =
            serde_json::from_slice(body).map_err(|e| WireError::Undecodable(e.to_string()))?;
        Ok(Some((exchange, request)))
    }
}

/// Decodes `bytes` as the whole stream a client sent on one connection to the voter `voter`,
/// whose hello carried `server_nonce`, exactly as the Raft server does frame by frame (caps,
/// seal, client hello, bindings, request bodies): how many requests it would serve, or why it
/// would close the connection. For fuzzing and property tests.
pub fn fuzz_decode_inbound(
    keyring: Option<&Keyring>,
    server_nonce: [u8; 16],
    voter: u64,
    bytes: &[u8],
) -> Result<usize, WireError> {
    let mut decoder = InboundDecoder::new(server_nonce, voter, PROTOCOL_MAX);
    let mut served = 0usize;
    let mut rest = bytes;
    while let Some((sealed, after)) = split_frame(rest, decoder.limit())? {
        if decoder.decode(keyring, sealed)?.is_some() {
            served = served.saturating_add(1);
        }
        rest = after;
    }
    Ok(served)
}

/// The server's end of one accepted connection, past both hellos: reads requests bound to the
/// connection and answers each in turn.
struct Inbound {
    stream: TcpStream,
    keys: Keys,
    budget: Budget,
    decoder: InboundDecoder,
}

fn timed_out(what: &str, within: Duration) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what} did not come within {within:?}"),
    )
}

impl Inbound {
    /// Sends the hello, naming this voter, that requests on the connection must be bound to,
    /// and reads the client hello, all within [`HELLO_WITHIN`].
    async fn accept(
        mut stream: TcpStream,
        voter: NodeId,
        keys: Keys,
        version: u8,
        budget: Budget,
    ) -> std::io::Result<Inbound> {
        let _ = stream.set_nodelay(true);
        let mut decoder = InboundDecoder::new(rand::random(), voter, version);
        let greet = async {
            let keyring = keys();
            write_frame(&mut stream, keyring.as_ref(), &decoder.session.hello()).await?;
            let len = read_len(&mut stream, decoder.limit()).await?;
            let sealed = read_body(&mut stream, len).await?;
            match decoder.decode(keyring.as_ref(), &sealed)? {
                None => Ok(()),
                Some(_) => Err(std::io::Error::other("a request before the client hello")),
            }
        };
        tokio::time::timeout(HELLO_WITHIN, greet)
            .await
            .map_err(|_| timed_out("the client hello", HELLO_WITHIN))??;
        Ok(Inbound {
            stream,
            keys,
            budget,
            decoder,
        })
    }

    /// The next request, or `None` once the client has closed the connection or left it idle.
    /// A frame that is too large or too slow, cannot be opened, is not bound to this
    /// connection in order, or does not decode is an error: the caller closes the connection.
    async fn request(&mut self) -> std::io::Result<Option<(Exchange, Request)>> {
        let len = match tokio::time::timeout(IDLE, read_len(&mut self.stream, self.decoder.limit()))
            .await
        {
            Ok(Ok(len)) => len,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(None),
        };
        let body = async {
            let share = self.budget.share(len).await.ok_or_else(|| {
                std::io::Error::other(format!("a frame of {len} bytes exceeds the byte budget"))
            })?;
            let sealed = read_body(&mut self.stream, len).await?;
            std::io::Result::Ok((share, sealed))
        };
        let (_share, sealed) = tokio::time::timeout(FRAME_WITHIN, body)
            .await
            .map_err(|_| timed_out("the frame's body", FRAME_WITHIN))??;
        match self.decoder.decode((self.keys)().as_ref(), &sealed)? {
            Some(request) => Ok(Some(request)),
            None => Err(std::io::Error::other("a second client hello")),
        }
    }

    /// Sends the reply to the request `exchange` stands for.
    async fn reply(&mut self, exchange: Exchange, reply: &Reply) -> std::io::Result<()> {
        let body = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
        let frame = self.decoder.session.reply(exchange, &body);
        write_frame(&mut self.stream, (self.keys)().as_ref(), &frame).await
    }
}

/// Makes one [`Peer`] per target voter.
#[derive(Clone)]
pub struct Network {
    resolve: Resolver,
    keys: Keys,
    /// The protocol versions this voter reads hellos in.
    speaks: Versions,
    source: Option<IpAddr>,
}

impl Network {
    /// A network that finds voters with `resolve`, seals frames with the keyring `keys` gives
    /// at the time, and refuses a voter whose hello names a version not among `speaks`. With a
    /// `source`, the address this voter's Raft port listens on,
    /// connections leave from it where it can reach the target (loopback to loopback, or
    /// neither), so that the other voters' per-address caps see this voter as one address.
    pub fn new(resolve: Resolver, keys: Keys, speaks: Versions, source: Option<IpAddr>) -> Network {
        let source = source.filter(|ip| !ip.is_unspecified());
        Network {
            resolve,
            keys,
            speaks,
            source,
        }
    }

    /// Whether the voter `name`'s Raft port refuses a connection within `within`: its process
    /// is gone while its host answers. Not found, accepted or silent all say no.
    pub async fn refuses(&self, name: &str, within: Duration) -> bool {
        let Some(addr) = (self.resolve)(name) else {
            return false;
        };
        matches!(
            tokio::time::timeout(within, self.connect(addr)).await,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused
        )
    }

    /// Connects to `addr`, from the source address where it applies.
    async fn connect(&self, addr: SocketAddr) -> std::io::Result<TcpStream> {
        let source = self.source.filter(|ip| {
            ip.is_ipv4() == addr.is_ipv4() && ip.is_loopback() == addr.ip().is_loopback()
        });
        let Some(source) = source else {
            return TcpStream::connect(addr).await;
        };
        let socket = if source.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.bind(SocketAddr::new(source, 0))?;
        socket.connect(addr).await
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &Voter) -> Peer {
        Peer::new(self.clone(), target, node.name.clone())
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
    /// Reads the hello of the voter `target` on a fresh connection, binds this end to it, and
    /// answers with the client hello.
    async fn open(
        mut stream: TcpStream,
        target: NodeId,
        keyring: Option<&Keyring>,
        speaks: Versions,
    ) -> std::io::Result<Outbound> {
        let hello = read_frame(&mut stream, keyring, MAX_HELLO_FRAME).await?;
        let session = ClientSession::from_hello(&hello, rand::random(), target, speaks)
            .map_err(|e| std::io::Error::other(format!("refused hello: {e}")))?;
        write_frame(&mut stream, keyring, &session.hello()).await?;
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
        let answer = read_frame(&mut self.stream, keyring, MAX_FRAME).await?;
        let body = self
            .session
            .open_reply(exchange, &answer)
            .map_err(|e| std::io::Error::other(format!("refused reply: {e}")))?;
        Ok(body.to_vec())
    }
}

/// How an exchange failed: before anything was sent (the peer is unreachable), after, or with a
/// reply of another kind than the request asked for.
enum Failure {
    Unreachable(std::io::Error),
    Network(std::io::Error),
    WrongKind,
}

impl Failure {
    fn into_rpc<E: std::error::Error>(self) -> RPCError<NodeId, Voter, E> {
        match self {
            Failure::Unreachable(e) => RPCError::Unreachable(Unreachable::new(&e)),
            Failure::Network(e) => RPCError::Network(NetworkError::new(&e)),
            Failure::WrongKind => RPCError::Network(NetworkError::new(&AnyError::error(
                "reply of the wrong kind",
            ))),
        }
    }

    fn into_io(self) -> std::io::Error {
        match self {
            Failure::Unreachable(e) | Failure::Network(e) => e,
            Failure::WrongKind => std::io::Error::other("reply of the wrong kind"),
        }
    }
}

/// Takes out of a reply what the request asked for; `None` for a reply of another kind.
type Expect<T> = fn(Reply) -> Option<T>;

impl Peer {
    /// A link to the voter `name` (Raft id `target`), not dialled yet.
    fn new(network: Network, target: NodeId, name: String) -> Peer {
        Peer {
            target,
            name,
            network,
            link: None,
        }
    }

    /// Sends `request` and takes out of its reply what `expect` finds, all within `ttl`.
    async fn call<T>(
        &mut self,
        request: &Request,
        ttl: Duration,
        expect: Expect<T>,
    ) -> Result<T, Failure> {
        let reply = self.exchange(request, ttl).await?;
        expect(reply).ok_or(Failure::WrongKind)
    }

    /// One of openraft's RPCs, within the time it allows: the remote's answer, or why there is
    /// none.
    async fn rpc<T, E: std::error::Error>(
        &mut self,
        request: Request,
        option: RPCOption,
        expect: Expect<Result<T, E>>,
    ) -> Result<T, RPCError<NodeId, Voter, E>> {
        let answer = self
            .call(&request, option.hard_ttl(), expect)
            .await
            .map_err(Failure::into_rpc)?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

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
        let stream = tokio::time::timeout(DIAL, self.network.connect(addr))
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("dialling {addr} timed out"),
                )
            })??;
        let _ = stream.set_nodelay(true);
        Outbound::open(
            stream,
            self.target,
            (self.network.keys)().as_ref(),
            self.network.speaks,
        )
        .await
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Voter, RaftError<NodeId>>> {
        self.rpc(Request::Append(rpc), option, |reply| match reply {
            Reply::Append(answer) => Some(answer),
            _ => None,
        })
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Voter, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.rpc(Request::Snapshot(rpc), option, |reply| match reply {
            Reply::Snapshot(answer) => Some(answer),
            _ => None,
        })
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Voter, RaftError<NodeId>>> {
        self.rpc(Request::Vote(rpc), option, |reply| match reply {
            Reply::Vote(answer) => Some(answer),
            _ => None,
        })
        .await
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
    let mut peer = Peer::new(network.clone(), raft_id(name), name.to_owned());
    let campaign = |reply| match reply {
        Reply::Campaign(started) => Some(started),
        _ => None,
    };
    peer.call(&Request::Campaign, DIAL * 2, campaign)
        .await
        .map_err(Failure::into_io)
}

/// Asks each of `voters` (this voter's peers) whether it would vote for a candidate whose log
/// ends at `last_log_id`, all at once and within `within`: how many said yes, counted until
/// `enough` did (then the rest are not waited for).
pub async fn pre_vote(
    network: &Network,
    voters: &[String],
    last_log_id: Option<LogId<NodeId>>,
    enough: usize,
    within: Duration,
) -> usize {
    let mut asked = tokio::task::JoinSet::new();
    for name in voters {
        let mut peer = Peer::new(network.clone(), raft_id(name), name.clone());
        let vote = |reply| match reply {
            Reply::PreVote(granted) => Some(granted),
            _ => None,
        };
        asked.spawn(async move {
            match peer
                .call(&Request::PreVote { last_log_id }, within, vote)
                .await
            {
                Ok(granted) => granted,
                Err(Failure::WrongKind) => false,
                Err(Failure::Unreachable(e) | Failure::Network(e)) => {
                    debug!(voter = %peer.name, error = %e, "no pre-vote");
                    false
                }
            }
        });
    }
    let mut granted = 0;
    while granted < enough {
        match asked.join_next().await {
            Some(Ok(true)) => granted += 1,
            Some(_) => {}
            None => break,
        }
    }
    granted
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use vigil_gossip::crypto::Key;

    use super::super::frame::encode_frame;
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
                    let mut inbound = Inbound::accept(
                        stream,
                        raft_id(PEER),
                        keys,
                        PROTOCOL_MAX,
                        Budget::new(FRAME_BUDGET),
                    )
                    .await?;
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
        let mut outbound =
            Outbound::open(stream, raft_id(PEER), keys().as_ref(), Versions::default())
                .await
                .expect("hello");
        let body = serde_json::to_vec(&Request::Campaign).expect("encode");
        let (exchange, payload) = outbound.session.request(&body);
        let recorded = encode_frame(keys().as_ref(), &payload).expect("frame");
        outbound.stream.write_all(&recorded).await.expect("send");
        let answer = read_frame(&mut outbound.stream, keys().as_ref(), MAX_FRAME)
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
        let _hello = read_frame(&mut stream, keys().as_ref(), MAX_HELLO_FRAME)
            .await
            .expect("hello");
        stream.write_all(&recorded).await.expect("replay");
        assert!(closes(&mut stream).await, "a replay on a fresh connection");

        // A client still gets through on a fresh connection.
        let network = Network::new(
            Arc::new(move |_| Some(addr)),
            keys,
            Versions::default(),
            None,
        );
        assert!(ask_to_campaign(&network, PEER).await.expect("campaign"));
    }
}
