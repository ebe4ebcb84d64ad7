//! The DNS interface: every agent answers "where is a healthy `api`?" over DNS, on UDP and TCP,
//! from the same catalog and with the same states as `GET /v1/services/{name}?healthy`.
//!
//! This module owns the names under the configured domain (`vigil` by default) and their
//! answers, and the two socket loops that serve them:
//!
//! | name | answers |
//! | --- | --- |
//! | `NAME.service.DOMAIN` | A/AAAA of the passing instances, shuffled per answer; SRV with their ports |
//! | `TAG.NAME.service.DOMAIN` | the same, only instances with the tag |
//! | `_NAME._tcp.service.DOMAIN` | the same (RFC 2782); `_NAME._TAG.service.DOMAIN` filters by `TAG` |
//! | `NODE.node.DOMAIN` | A/AAAA of the member's gossip address |
//! | `HEX.addr.DOMAIN` | A (8 hex digits) or AAAA (32): the targets SRV answers point to |
//! | `DOMAIN` | SOA |
//!
//! Service names, tags and node ids are matched ignoring ASCII case, as DNS names are. A
//! registered service with no passing instance answers NOERROR with no records; an unknown
//! name under the domain NXDOMAIN; both with the domain's SOA in the authority section, whose
//! minimum (the negative-caching TTL) is the configured TTL. A name outside the domain is
//! REFUSED: this server is no resolver. An instance whose address is a host name, not an IP
//! address, is left out of A/AAAA answers (one name may hold only one CNAME) and appears in SRV
//! answers with that host name as its target.
//!
//! Messages are parsed and written by hickory (`hickory-proto`, `hickory-server`'s request and
//! response types). The socket loops are this module's own rather than hickory's `Server`,
//! which spawns a task per UDP query and does not bound TCP connections: here a UDP query is
//! answered on the task that received it (a few tasks share the socket, reading while queries
//! wait with no wake-up in between), TCP connections are limited to [`MAX_TCP_CONNECTIONS`]
//! (one over the limit is closed at once), and a connection idle for [`TCP_IDLE`] or slow to
//! send a message is closed.
//!
//! Each UDP task keeps the answers it wrote (at most [`CACHE_ENTRIES`]), by the query's bytes
//! after its ID: one asked again is answered from them, with its ID and the answer records
//! shuffled afresh, while the registry is the one they were built from and this agent's
//! membership holds the nodes of the service's instances dead or gone as it did then. A
//! registry change empties the cache; a node's liveness changing makes the answers that
//! depend on it be built again. Answers whose records cannot be reordered as written (SRV,
//! whose targets' names point into each other; truncated ones) and node answers are not kept.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SOA, SRV};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::net::NetError;
use hickory_server::server::{Request, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};
use rand::seq::SliceRandom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, warn};
use vigil_cluster::raft::{InstanceState, Published, Registry};
use vigil_cluster::{Cluster, ClusterView};

use crate::catalog::Catalog;
use crate::discovery::{discover_in, gone_here, Filter, Wanted};

/// The port DNS listens on unless configured otherwise (Consul's too).
pub const DEFAULT_PORT: u16 = 8600;
/// The domain answered unless configured otherwise.
pub const DEFAULT_DOMAIN: &str = "vigil";
/// The most TCP connections open at once; one more is closed as soon as it is accepted.
pub const MAX_TCP_CONNECTIONS: usize = 256;
/// How long a TCP connection may wait for its next message before it is closed.
pub const TCP_IDLE: Duration = Duration::from_secs(5);
/// How long a TCP client may take to send a message once its length arrived, and to take the
/// answer.
const TCP_TRANSFER: Duration = Duration::from_secs(5);
/// Tasks receiving on the UDP socket, each answering what it received.
const UDP_WORKERS: usize = 2;
/// UDP queries a receive task answers in a row before it gives way to other tasks.
const UDP_RUN: u32 = 64;
/// Largest UDP query read; EDNS clients announce at most 4096 bytes in practice.
const UDP_BUFFER: usize = 4096;

/// Where and what DNS answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsConfig {
    /// The UDP and TCP address (default `127.0.0.1:8600`).
    pub bind: SocketAddr,
    /// The domain answered (default `vigil`), without its final dot.
    pub domain: String,
    /// The TTL of every record, and the negative-caching TTL (default 0: never cached).
    pub ttl: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_PORT),
            domain: DEFAULT_DOMAIN.to_owned(),
            ttl: Duration::ZERO,
        }
    }
}

/// Why DNS could not start.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The domain is not a DNS name.
    #[error("domain {domain:?} is not a DNS name: {reason}")]
    Domain {
        /// The domain as given.
        domain: String,
        /// Why not.
        reason: String,
    },
    /// A socket could not be bound.
    #[error("cannot listen on {addr} ({protocol}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// `udp` or `tcp`.
        protocol: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

/// Checks that `domain` can be the domain DNS answers: a DNS name of one or more labels.
pub fn check_domain(domain: &str) -> Result<(), String> {
    let trimmed = domain.strip_suffix('.').unwrap_or(domain);
    if trimmed.is_empty() {
        return Err("the domain is empty; write one like \"vigil\" or \"vigil.example\"".into());
    }
    for label in trimmed.split('.') {
        if label.is_empty() {
            return Err("a label is empty (two dots in a row, or a leading dot)".into());
        }
        if label.len() > 63 {
            return Err(format!("the label {label:?} is longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "the label {label:?} may hold only letters, digits, '-' and '_'"
            ));
        }
    }
    if trimmed.len() > 200 {
        return Err(
            "the domain is longer than 200 characters, which leaves no room for names under it"
                .into(),
        );
    }
    Ok(())
}

/// A running DNS server; stopped by [`Dns::stop`] or when dropped.
#[derive(Debug)]
pub struct Dns {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Dns {
    /// Binds `config.bind` on UDP and TCP (the same port) and answers from `catalog`, with the
    /// states `cluster`'s membership adds. Must be called inside a tokio runtime.
    pub async fn start(
        config: &DnsConfig,
        catalog: Catalog,
        cluster: Option<Cluster>,
    ) -> Result<Dns, DnsError> {
        let handler = Arc::new(Handler::new(config, catalog, cluster)?);
        let udp = UdpSocket::bind(config.bind)
            .await
            .map_err(|source| DnsError::Bind {
                addr: config.bind,
                protocol: "udp",
                source,
            })?;
        let addr = udp.local_addr().map_err(|source| DnsError::Bind {
            addr: config.bind,
            protocol: "udp",
            source,
        })?;
        // Port 0 asks for any port: TCP takes the one UDP got.
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|source| DnsError::Bind {
                addr,
                protocol: "tcp",
                source,
            })?;
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let udp = Arc::new(udp);
        for _ in 0..UDP_WORKERS {
            tasks.spawn(serve_udp(udp.clone(), handler.clone(), stopped.clone()));
        }
        tasks.spawn(serve_tcp(tcp, handler, stopped));
        Ok(Dns { addr, stop, tasks })
    }

    /// The address answered on, UDP and TCP.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops answering: the sockets close and open TCP connections are dropped.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Answers UDP queries received on `socket` until `stopped`.
async fn serve_udp(
    socket: Arc<UdpSocket>,
    handler: Arc<Handler>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; UDP_BUFFER];
    let mut answer = Vec::with_capacity(512);
    let mut cache = AnswerCache::new(&handler.catalog);
    // Queries answered since this task last gave way to others.
    let mut run = 0;
    loop {
        // While queries wait, they are read with no wait registered (and nothing else polled);
        // this task gives way every UDP_RUN of them.
        let (len, src) = match socket.try_recv_from(&mut buffer) {
            Ok(received) => received,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                run = 0;
                tokio::select! {
                    ready = socket.readable() => {
                        if let Err(e) = ready {
                            debug!(error = %e, "dns: udp socket failed");
                        }
                        continue;
                    }
                    _ = stopped.changed() => return,
                }
            }
            Err(e) => {
                // An ICMP error from an earlier answer, or a short-lived resource shortage.
                debug!(error = %e, "dns: udp receive failed");
                continue;
            }
        };
        run += 1;
        if run >= UDP_RUN {
            run = 0;
            if stopped.has_changed().unwrap_or(true) {
                return;
            }
            tokio::task::yield_now().await;
        }
        if src.port() == 0 {
            continue;
        }
        if !handler.answer_udp(&buffer[..len], src, &mut cache, &mut answer) {
            continue;
        }
        match socket.try_send_to(&answer, src) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Err(e) = socket.send_to(&answer, src).await {
                    debug!(error = %e, %src, "dns: udp send failed");
                }
            }
            Err(e) => debug!(error = %e, %src, "dns: udp send failed"),
        }
    }
}

/// Accepts TCP connections until `stopped`, at most [`MAX_TCP_CONNECTIONS`] at once.
async fn serve_tcp(
    listener: TcpListener,
    handler: Arc<Handler>,
    mut stopped: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    // Dropped with this loop: open connections end with it.
    let mut connections = JoinSet::new();
    loop {
        let (stream, src) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    debug!(error = %e, "dns: tcp accept failed");
                    // Out of descriptors, most likely: give connections time to close.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        while connections.try_join_next().is_some() {}
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            debug!(%src, "dns: {MAX_TCP_CONNECTIONS} tcp connections open, closing a new one");
            continue;
        };
        let handler = handler.clone();
        connections.spawn(async move {
            let _permit = permit;
            serve_connection(stream, src, &handler).await;
        });
    }
}

/// Answers the messages of one TCP connection (RFC 1035 4.2.2: each after its length in two
/// bytes) until it closes, idles for [`TCP_IDLE`], stalls or sends something unreadable.
async fn serve_connection(mut stream: TcpStream, src: SocketAddr, handler: &Handler) {
    let _ = stream.set_nodelay(true);
    loop {
        let mut length = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut length)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => return,
        }
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
        match tokio::time::timeout(TCP_TRANSFER, stream.read_exact(&mut message)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => return,
        }
        let Some(answer) = handler.answer_bytes(&message, src, Protocol::Tcp) else {
            return;
        };
        let Ok(length) = u16::try_from(answer.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(answer.len() + 2);
        framed.extend_from_slice(&length.to_be_bytes());
        framed.extend_from_slice(&answer);
        match tokio::time::timeout(TCP_TRANSFER, stream.write_all(&framed)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

/// What a query name asks for, read from its labels.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    /// Not under the domain.
    Outside,
    /// The domain itself.
    Apex,
    /// `service.DOMAIN`, `node.DOMAIN`, `addr.DOMAIN`: names that exist, with no records.
    Empty,
    /// A service's instances, with a tag or not.
    Service {
        /// The service, as asked.
        name: &'a str,
        /// Only instances with this tag.
        tag: Option<&'a str>,
    },
    /// A member of the cluster, by id.
    Node(&'a str),
    /// An address, as SRV targets name it.
    Addr(IpAddr),
    /// Anything else under the domain.
    Unknown,
}

/// Reads `labels` (left to right) against `domain`'s (lowercase, left to right).
fn parse<'a>(labels: &[&'a [u8]], domain: &[Vec<u8>]) -> Target<'a> {
    let Some(split) = labels.len().checked_sub(domain.len()) else {
        return Target::Outside;
    };
    let (rest, tail) = labels.split_at(split);
    if !tail
        .iter()
        .zip(domain)
        .all(|(label, d)| label.eq_ignore_ascii_case(d))
    {
        return Target::Outside;
    }
    let Some(rest) = rest
        .iter()
        .map(|l| std::str::from_utf8(l).ok())
        .collect::<Option<Vec<&str>>>()
    else {
        return Target::Unknown;
    };
    let Some((kind, rest)) = rest.split_last() else {
        return Target::Apex;
    };
    let kind = kind.to_ascii_lowercase();
    match (kind.as_str(), rest) {
        ("service" | "node" | "addr", []) => Target::Empty,
        ("service", [name]) => Target::Service { name, tag: None },
        ("service", [first, second]) => match (first.strip_prefix('_'), second.strip_prefix('_')) {
            (Some(name), Some(proto)) if !name.is_empty() && !proto.is_empty() => Target::Service {
                name,
                tag: (!proto.eq_ignore_ascii_case("tcp")).then_some(proto),
            },
            _ => Target::Service {
                name: second,
                tag: Some(first),
            },
        },
        ("node", [id]) => Target::Node(id),
        ("addr", [hex]) => parse_hex_addr(hex).map_or(Target::Unknown, Target::Addr),
        _ => Target::Unknown,
    }
}

/// An IPv4 address from 8 hex digits, an IPv6 one from 32.
fn parse_hex_addr(hex: &str) -> Option<IpAddr> {
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    match hex.len() {
        8 => u32::from_str_radix(hex, 16)
            .ok()
            .map(|n| IpAddr::V4(Ipv4Addr::from(n))),
        32 => u128::from_str_radix(hex, 16)
            .ok()
            .map(|n| IpAddr::V6(Ipv6Addr::from(n))),
        _ => None,
    }
}

/// The hex label [`parse_hex_addr`] reads back.
fn hex_addr(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{:08x}", u32::from(v4)),
        IpAddr::V6(v6) => format!("{:032x}", u128::from(v6)),
    }
}

/// What one query is answered with.
#[derive(Debug, Default)]
struct Answer {
    code: ResponseCode,
    answers: Vec<Record>,
    additionals: Vec<Record>,
    /// The SOA goes in the authority section (a negative answer).
    soa: bool,
}

impl Answer {
    fn code(code: ResponseCode) -> Answer {
        Answer {
            code,
            soa: code == ResponseCode::NXDomain,
            ..Answer::default()
        }
    }
}

/// Answers queries from the catalog.
struct Handler {
    catalog: Catalog,
    cluster: Option<Cluster>,
    /// The domain's labels, lowercase.
    domain_labels: Vec<Vec<u8>>,
    /// The domain as a name.
    domain: Name,
    ttl: u32,
}

impl Handler {
    fn new(
        config: &DnsConfig,
        catalog: Catalog,
        cluster: Option<Cluster>,
    ) -> Result<Handler, DnsError> {
        let bad = |reason: String| DnsError::Domain {
            domain: config.domain.clone(),
            reason,
        };
        check_domain(&config.domain).map_err(bad)?;
        let lower = config.domain.to_ascii_lowercase();
        let lower = lower.strip_suffix('.').unwrap_or(&lower);
        let mut domain = Name::from_ascii(lower).map_err(|e| bad(e.to_string()))?;
        domain.set_fqdn(true);
        Ok(Handler {
            catalog,
            cluster,
            domain_labels: lower.split('.').map(|l| l.as_bytes().to_vec()).collect(),
            domain,
            ttl: u32::try_from(config.ttl.as_secs()).unwrap_or(u32::MAX),
        })
    }

    /// The answer to `message` (a query as received) in wire form; `None` when it is not to be
    /// answered (shorter than a header, or itself an answer).
    fn answer_bytes(&self, message: &[u8], src: SocketAddr, protocol: Protocol) -> Option<Vec<u8>> {
        let published = self.catalog.current();
        self.answer_fresh(message, src, protocol, &published)
            .map(|(bytes, _)| bytes)
    }

    /// [`Handler::answer_bytes`] from `published`, with what else the answer depends on.
    fn answer_fresh(
        &self,
        message: &[u8],
        src: SocketAddr,
        protocol: Protocol,
        published: &Published,
    ) -> Option<(Vec<u8>, Option<Liveness>)> {
        let request = match Request::from_bytes(message.to_vec(), src, protocol) {
            Ok(request) => request,
            Err(_) => return form_error(message, protocol).map(|bytes| (bytes, None)),
        };
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        self.respond(&request, protocol, published)
    }

    /// The answer to `message`, a UDP query, written to `out`: from `cache` when the same
    /// query was answered from the same registry and liveness (shuffled afresh), else answered
    /// and kept. False when it is not to be answered.
    fn answer_udp(
        &self,
        message: &[u8],
        src: SocketAddr,
        cache: &mut AnswerCache,
        out: &mut Vec<u8>,
    ) -> bool {
        cache.follow();
        if let Some(kept) = cache.get(message) {
            if self.still(&kept.liveness) {
                kept.write(message, out);
                return true;
            }
        }
        let published = cache.published.clone();
        let Some((bytes, liveness)) = self.answer_fresh(message, src, Protocol::Udp, &published)
        else {
            return false;
        };
        if let Some(kept) = liveness.and_then(|liveness| cache.keep(message, &bytes, liveness)) {
            kept.write(message, out);
            return true;
        }
        out.clear();
        out.extend_from_slice(&bytes);
        true
    }

    /// Whether this agent's membership holds every node of `liveness` dead or gone as it did.
    fn still(&self, liveness: &Liveness) -> bool {
        if liveness.is_empty() {
            return true;
        }
        let view = self.cluster.as_ref().map(Cluster::view);
        still_live(view.as_deref(), liveness)
    }

    fn soa(&self, serial: u32) -> Record {
        let name = |label: &str| {
            Name::from_ascii(label)
                .and_then(|n| n.append_domain(&self.domain))
                .unwrap_or_else(|_| self.domain.clone())
        };
        let soa = SOA::new(
            name("ns"),
            name("hostmaster"),
            serial,
            3600,
            600,
            86400,
            self.ttl,
        );
        Record::from_rdata(self.domain.clone(), self.ttl, RData::SOA(soa))
    }

    /// The name an SRV answer gives as target for an instance at `ip`.
    fn addr_name(&self, ip: IpAddr) -> Option<Name> {
        Name::from_ascii(format!("{}.addr", hex_addr(ip)))
            .and_then(|n| n.append_domain(&self.domain))
            .ok()
    }

    fn address_record(&self, owner: &Name, ip: IpAddr) -> Record {
        let data = match ip {
            IpAddr::V4(v4) => RData::A(A(v4)),
            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
        };
        Record::from_rdata(owner.clone(), self.ttl, data)
    }

    /// Address records of `ips` that `qtype` asks for.
    fn addresses(&self, owner: &Name, qtype: RecordType, ips: &[IpAddr]) -> Vec<Record> {
        ips.iter()
            .filter(|ip| match qtype {
                RecordType::A => ip.is_ipv4(),
                RecordType::AAAA => ip.is_ipv6(),
                RecordType::ANY => true,
                _ => false,
            })
            .map(|ip| self.address_record(owner, *ip))
            .collect()
    }

    /// Answers one question; with the answer, what else than the registry it depends on:
    /// `Some` nodes, each with whether this agent's membership held it dead or gone then, when
    /// only that; `None` when more (the answer is not to be kept).
    fn answer(
        &self,
        qname: &Name,
        qtype: RecordType,
        registry: &Registry,
    ) -> (Answer, Option<Liveness>) {
        let labels: Vec<&[u8]> = qname.iter().collect();
        let answer = match parse(&labels, &self.domain_labels) {
            Target::Outside => Answer::code(ResponseCode::Refused),
            Target::Unknown => Answer::code(ResponseCode::NXDomain),
            Target::Empty => Answer {
                soa: true,
                ..Answer::default()
            },
            Target::Apex => match qtype {
                RecordType::SOA | RecordType::ANY => Answer {
                    answers: vec![self.soa(serial(registry))],
                    ..Answer::default()
                },
                _ => Answer {
                    soa: true,
                    ..Answer::default()
                },
            },
            Target::Addr(ip) => self.records(self.addresses(qname, qtype, &[ip]), Vec::new()),
            Target::Node(id) => {
                let Some(view) = self.cluster.as_ref().map(Cluster::view) else {
                    return (Answer::code(ResponseCode::NXDomain), Some(Vec::new()));
                };
                let member = view
                    .member(id)
                    .or_else(|| view.members.iter().find(|m| m.id.eq_ignore_ascii_case(id)));
                let answer = match member {
                    Some(m) => {
                        self.records(self.addresses(qname, qtype, &[m.addr.ip()]), Vec::new())
                    }
                    None => Answer::code(ResponseCode::NXDomain),
                };
                // Membership changes it, not the registry: not kept.
                return (answer, None);
            }
            Target::Service { name, tag } => {
                return self.service(qname, qtype, registry, name, tag);
            }
        };
        (answer, Some(Vec::new()))
    }

    /// The passing instances of the service `name` stands for (only those with `tag`, if
    /// given), shuffled, as `qtype` asks for them; with the liveness of their nodes.
    fn service(
        &self,
        qname: &Name,
        qtype: RecordType,
        registry: &Registry,
        name: &str,
        tag: Option<&str>,
    ) -> (Answer, Option<Liveness>) {
        let Some(service) = service_named(registry, name) else {
            return (Answer::code(ResponseCode::NXDomain), Some(Vec::new()));
        };
        // One view for the states and for the liveness kept with the answer.
        let view = self.cluster.as_ref().map(Cluster::view);
        let view = view.as_deref();
        let filter = Filter {
            wanted: Wanted::Passing,
            tag: None,
            node: None,
        };
        let mut instances: Vec<_> = discover_in(registry, view, service, &filter)
            .into_iter()
            .filter(|(_, state)| *state == InstanceState::Passing)
            .map(|(i, _)| i)
            .filter(|i| tag.is_none_or(|tag| i.tags.iter().any(|t| t.eq_ignore_ascii_case(tag))))
            .collect();
        instances.shuffle(&mut rand::rng());
        let answer = match qtype {
            RecordType::SRV => {
                let mut answers = Vec::with_capacity(instances.len());
                let mut additionals = Vec::new();
                for instance in instances {
                    let target = match instance.address.parse::<IpAddr>() {
                        Ok(ip) => {
                            let Some(target) = self.addr_name(ip) else {
                                continue;
                            };
                            additionals.push(self.address_record(&target, ip));
                            target
                        }
                        Err(_) => match Name::from_ascii(&instance.address) {
                            Ok(mut host) => {
                                host.set_fqdn(true);
                                host
                            }
                            Err(_) => continue,
                        },
                    };
                    let srv = SRV::new(1, 1, instance.port, target);
                    answers.push(Record::from_rdata(qname.clone(), self.ttl, RData::SRV(srv)));
                }
                self.records(answers, additionals)
            }
            _ => {
                let mut ips: Vec<IpAddr> = Vec::with_capacity(instances.len());
                for ip in instances.iter().filter_map(|i| i.address.parse().ok()) {
                    if !ips.contains(&ip) {
                        ips.push(ip);
                    }
                }
                self.records(self.addresses(qname, qtype, &ips), Vec::new())
            }
        };
        (answer, Some(liveness(registry, view, service)))
    }

    /// NOERROR with these records; with none, the SOA in the authority section.
    fn records(&self, answers: Vec<Record>, additionals: Vec<Record>) -> Answer {
        Answer {
            soa: answers.is_empty(),
            answers,
            additionals,
            code: ResponseCode::NoError,
        }
    }
}

/// The nodes an answer's instance states depend on, each with whether this agent's membership
/// held it dead or gone when the answer was written.
type Liveness = Vec<(String, bool)>;

/// The liveness of the nodes of `service`'s instances in `view`.
fn liveness(registry: &Registry, view: Option<&ClusterView>, service: &str) -> Liveness {
    let Some(view) = view else {
        return Vec::new();
    };
    let mut nodes: Vec<&str> = registry
        .services
        .get(service)
        .map(|of| of.values().map(|i| i.node.as_str()).collect())
        .unwrap_or_default();
    nodes.sort_unstable();
    nodes.dedup();
    nodes
        .into_iter()
        .map(|node| (node.to_owned(), gone_here(view, node)))
        .collect()
}

/// Whether `view` holds every node of `liveness` dead or gone as it was (no view: none is).
fn still_live(view: Option<&ClusterView>, liveness: &Liveness) -> bool {
    liveness
        .iter()
        .all(|(node, gone)| view.is_some_and(|v| gone_here(v, node)) == *gone)
}

/// The most answers a UDP task keeps; once full it starts over empty.
pub const CACHE_ENTRIES: usize = 512;
/// The longest query whose answer is kept (most are under 100 bytes).
const CACHE_QUERY_MAX: usize = 512;

/// Answers as written, by the query they answer (its bytes after the ID), for the registry
/// they were built from: emptied when the registry changes, each kept with the liveness of the
/// nodes it depends on, checked before it is used again. One per UDP receive task.
struct AnswerCache {
    changes: watch::Receiver<Arc<Published>>,
    published: Arc<Published>,
    entries: HashMap<Box<[u8]>, Kept>,
}

/// One answer in an [`AnswerCache`].
struct Kept {
    /// The answer as written, with the ID of the query it was written for.
    bytes: Vec<u8>,
    /// Where its answer records lie, to be shuffled; empty when fewer than two.
    records: Vec<Range<usize>>,
    liveness: Liveness,
}

impl AnswerCache {
    fn new(catalog: &Catalog) -> AnswerCache {
        let mut changes = catalog.changes();
        let published = changes.borrow_and_update().clone();
        AnswerCache {
            changes,
            published,
            entries: HashMap::new(),
        }
    }

    /// Catches up with the registry, forgetting every answer if it changed.
    fn follow(&mut self) {
        if self.changes.has_changed().unwrap_or(false) {
            self.published = self.changes.borrow_and_update().clone();
            self.entries.clear();
        }
    }

    fn get(&self, query: &[u8]) -> Option<&Kept> {
        self.entries.get(query.get(2..)?)
    }

    /// Keeps `answer` to `query`, if it can be shuffled as kept; what it keeps, to be written.
    fn keep(&mut self, query: &[u8], answer: &[u8], liveness: Liveness) -> Option<&Kept> {
        let key = query.get(2..).filter(|k| k.len() <= CACHE_QUERY_MAX)?;
        let (bytes, records) = movable(answer)?;
        if self.entries.len() >= CACHE_ENTRIES {
            self.entries.clear();
        }
        let kept = Kept {
            bytes,
            records,
            liveness,
        };
        Some(match self.entries.entry(key.into()) {
            Entry::Occupied(mut old) => {
                old.insert(kept);
                old.into_mut()
            }
            Entry::Vacant(new) => new.insert(kept),
        })
    }
}

impl Kept {
    /// Writes the answer to `query` to `out`: its ID, and the answer records shuffled.
    fn write(&self, query: &[u8], out: &mut Vec<u8>) {
        out.clear();
        let (Some(first), Some(last)) = (self.records.first(), self.records.last()) else {
            out.extend_from_slice(&self.bytes);
            copy_id(query, out);
            return;
        };
        out.extend_from_slice(&self.bytes[..first.start]);
        let mut order: Vec<&Range<usize>> = self.records.iter().collect();
        order.shuffle(&mut rand::rng());
        for record in order {
            out.extend_from_slice(&self.bytes[record.clone()]);
        }
        out.extend_from_slice(&self.bytes[last.end..]);
        copy_id(query, out);
    }
}

/// Gives `answer` the ID of `query`.
fn copy_id(query: &[u8], answer: &mut [u8]) {
    if let (Some(id), Some(to)) = (query.get(..2), answer.get_mut(..2)) {
        to.copy_from_slice(id);
    }
}

/// `message` (an answer as written here) in a form whose answer records can be reordered,
/// and where they lie (none when fewer than two); `None` when it does not read, or when two or
/// more cannot be reordered. That takes one question; every answer an A or AAAA record named
/// as the question, which it is made to point to; nothing truncated; and no other section but
/// an OPT record, so that no other name points into them.
fn movable(message: &[u8]) -> Option<(Vec<u8>, Vec<Range<usize>>)> {
    let u16_at = |at: usize| -> Option<usize> {
        let bytes = message.get(at..at + 2)?;
        Some(usize::from(u16::from_be_bytes([bytes[0], bytes[1]])))
    };
    let (questions, answers) = (u16_at(4)?, u16_at(6)?);
    let (authority, additional) = (u16_at(8)?, u16_at(10)?);
    if answers < 2 {
        return (message.len() >= 12).then(|| (message.to_vec(), Vec::new()));
    }
    let truncated = message.get(2)? & 0x02 != 0;
    if truncated || questions != 1 || authority != 0 {
        return None;
    }
    let question = name_at(message, 12)?;
    let mut at = skip_name(message, 12)? + 4;
    let mut bytes = message.get(..at)?.to_vec();
    let mut records = Vec::with_capacity(answers);
    for _ in 0..answers {
        if name_at(message, at)? != question {
            return None;
        }
        at = skip_name(message, at)?;
        let length = 10 + u16_at(at + 8)?;
        if !matches!(u16_at(at)?, 1 | 28) {
            return None;
        }
        let start = bytes.len();
        // A pointer to the question's name, at offset 12.
        bytes.extend_from_slice(&[0xC0, 0x0C]);
        bytes.extend_from_slice(message.get(at..at + length)?);
        at += length;
        records.push(start..bytes.len());
    }
    let rest = at;
    for _ in 0..additional {
        // OPT: the root name, then type 41.
        if message.get(at) != Some(&0) || u16_at(at + 1)? != 41 {
            return None;
        }
        at += 11 + u16_at(at + 9)?;
    }
    bytes.extend_from_slice(message.get(rest..at)?);
    (at == message.len()).then_some((bytes, records))
}

/// The name at `at` in `message`, its labels as written (pointers followed), or `None` when it
/// does not read.
fn name_at(message: &[u8], mut at: usize) -> Option<Vec<u8>> {
    let mut name = Vec::new();
    // A name has at most 127 labels; more jumps than that is a loop.
    for _ in 0..256 {
        let length = *message.get(at)?;
        match length & 0xC0 {
            0x00 if length == 0 => return Some(name),
            0x00 => {
                let end = at + 1 + usize::from(length);
                name.extend_from_slice(message.get(at..end)?);
                at = end;
            }
            0xC0 => {
                let low = *message.get(at + 1)?;
                at = usize::from(u16::from_be_bytes([length & 0x3F, low]));
            }
            _ => return None,
        }
    }
    None
}

/// Where the name at `at` in `message` ends.
fn skip_name(message: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let length = *message.get(at)?;
        match length & 0xC0 {
            0x00 if length == 0 => return Some(at + 1),
            0x00 => at += 1 + usize::from(length),
            0xC0 => return Some(at + 2),
            _ => return None,
        }
    }
}

/// The serial of the domain's SOA: the registry's last change, in 32 bits.
fn serial(registry: &Registry) -> u32 {
    // Wrapping is what SOA serials do (RFC 1982).
    (registry.modified.values().copied().max().unwrap_or(0) & u64::from(u32::MAX)) as u32
}

/// The registered service `name` stands for: the one spelled so, else one spelled so ignoring
/// ASCII case.
fn service_named<'r>(registry: &'r Registry, name: &str) -> Option<&'r str> {
    if let Some((found, _)) = registry.services.get_key_value(name) {
        return Some(found);
    }
    registry
        .services
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .map(String::as_str)
}

impl Handler {
    /// The answer to `request` in wire form (`None` when even a SERVFAIL cannot be written),
    /// answered from `published`; with it, what else it depends on ([`Handler::answer`]).
    fn respond(
        &self,
        request: &Request,
        protocol: Protocol,
        published: &Published,
    ) -> Option<(Vec<u8>, Option<Liveness>)> {
        let response_edns = request.edns.as_ref().map(|asked| {
            let mut edns = Edns::new();
            edns.set_max_payload(asked.max_payload().max(512));
            edns.set_version(0);
            edns
        });
        let builder = MessageResponseBuilder::new(&request.queries, response_edns.as_ref());
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        let mut soa = None;
        let mut liveness = None;
        let mut answer = if request.metadata.op_code != OpCode::Query {
            Answer::code(ResponseCode::NotImp)
        } else {
            match request.request_info() {
                Err(_) => Answer::code(ResponseCode::FormErr),
                Ok(info) if info.query.query_class() != DNSClass::IN => {
                    Answer::code(ResponseCode::Refused)
                }
                Ok(info) => {
                    let (mut answer, depends) = self.answer(
                        info.query.original().name(),
                        info.query.query_type(),
                        &published.registry,
                    );
                    liveness = depends;
                    if answer.soa {
                        answer.additionals.clear();
                        soa = Some(self.soa(serial(&published.registry)));
                    }
                    answer
                }
            }
        };
        if answer.code != ResponseCode::NoError && answer.code != ResponseCode::NXDomain {
            metadata.authoritative = false;
        }
        metadata.response_code = answer.code;
        answer.soa = false;
        let response = builder.build(
            metadata,
            answer.answers.iter(),
            std::iter::empty(),
            soa.iter(),
            answer.additionals.iter(),
        );
        match encode(response, protocol, None) {
            Ok((_, bytes)) => Some((bytes, liveness)),
            Err(e) => {
                warn!(error = %e, "dns: cannot send an answer");
                None
            }
        }
    }
}

/// FORMERR for a message whose header reads but whose rest does not; `None` when not even
/// the header does, or the message is an answer.
fn form_error(message: &[u8], protocol: Protocol) -> Option<Vec<u8>> {
    let header = Header::read(&mut BinDecoder::new(message)).ok()?;
    if header.metadata.message_type != MessageType::Query {
        return None;
    }
    let queries = Queries::read(&mut BinDecoder::new(&[]), 0).ok()?;
    let response = MessageResponseBuilder::new(&queries, None)
        .error_msg(&header.metadata, ResponseCode::FormErr);
    encode(response, protocol, None)
        .ok()
        .map(|(_, bytes)| bytes)
}

/// Writes `response` for `protocol`: on UDP within the client's EDNS size, or 512 bytes
/// without EDNS (records that do not fit are left out and TC set, and the client asks again
/// over TCP).
fn encode<'a>(
    response: MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    protocol: Protocol,
    edns_payload: Option<u16>,
) -> Result<(ResponseInfo, Vec<u8>), NetError> {
    let limit = match protocol {
        Protocol::Udp => response
            .edns()
            .map(Edns::max_payload)
            .or(edns_payload)
            .unwrap_or(512),
        _ => u16::MAX,
    };
    let id = response.metadata().id;
    let mut bytes = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(limit);
    match response.destructive_emit(&mut encoder) {
        Ok(info) => Ok((info, bytes)),
        Err(e) => {
            debug!(error = %e, "dns: cannot write an answer, sending SERVFAIL");
            let mut metadata = Metadata::new(id, MessageType::Response, OpCode::Query);
            metadata.response_code = ResponseCode::ServFail;
            let header = Header {
                metadata,
                counts: HeaderCounts::default(),
            };
            let mut bytes = Vec::with_capacity(12);
            let mut encoder = BinEncoder::new(&mut bytes);
            use hickory_proto::serialize::binary::BinEncodable;
            header.emit(&mut encoder).map_err(NetError::from)?;
            Ok((ResponseInfo::from(header), bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, domain: &str) -> String {
        let labels: Vec<&[u8]> = name
            .trim_end_matches('.')
            .split('.')
            .filter(|l| !l.is_empty())
            .map(str::as_bytes)
            .collect();
        let domain: Vec<Vec<u8>> = domain.split('.').map(|l| l.as_bytes().to_vec()).collect();
        format!("{:?}", parse(&labels, &domain))
    }

    #[test]
    fn service_names_with_and_without_tags() {
        assert_eq!(
            target("api.service.vigil", "vigil"),
            r#"Service { name: "api", tag: None }"#
        );
        assert_eq!(
            target("blue.api.service.vigil.", "vigil"),
            r#"Service { name: "api", tag: Some("blue") }"#
        );
        assert_eq!(
            target("_api._tcp.service.vigil", "vigil"),
            r#"Service { name: "api", tag: None }"#
        );
        assert_eq!(
            target("_api._TCP.service.vigil", "vigil"),
            r#"Service { name: "api", tag: None }"#
        );
        assert_eq!(
            target("_api._blue.service.vigil", "vigil"),
            r#"Service { name: "api", tag: Some("blue") }"#
        );
        // One underscore form only: the plain TAG.NAME reading.
        assert_eq!(
            target("_x.api.service.vigil", "vigil"),
            r#"Service { name: "api", tag: Some("_x") }"#
        );
        assert_eq!(target("a.b.api.service.vigil", "vigil"), "Unknown");
    }

    #[test]
    fn the_domain_is_matched_whole_and_ignoring_case() {
        assert_eq!(
            target("API.SERVICE.VIGIL", "vigil"),
            r#"Service { name: "API", tag: None }"#
        );
        assert_eq!(
            target("api.service.dc1.example", "dc1.example"),
            r#"Service { name: "api", tag: None }"#
        );
        assert_eq!(target("api.service.example", "dc1.example"), "Outside");
        assert_eq!(target("api.service.notvigil", "vigil"), "Outside");
        assert_eq!(target("example.com", "vigil"), "Outside");
        assert_eq!(target("", "vigil"), "Outside");
        assert_eq!(target("vigil", "vigil"), "Apex");
        assert_eq!(target("VIGIL.", "vigil"), "Apex");
    }

    #[test]
    fn nodes_addresses_and_the_rest() {
        assert_eq!(target("v1.node.vigil", "vigil"), r#"Node("v1")"#);
        assert_eq!(target("service.vigil", "vigil"), "Empty");
        assert_eq!(target("node.vigil", "vigil"), "Empty");
        assert_eq!(target("addr.vigil", "vigil"), "Empty");
        assert_eq!(target("7f000001.addr.vigil", "vigil"), "Addr(127.0.0.1)");
        assert_eq!(
            target("00000000000000000000000000000001.addr.vigil", "vigil"),
            "Addr(::1)"
        );
        assert_eq!(target("7f00001.addr.vigil", "vigil"), "Unknown");
        assert_eq!(target("zz000001.addr.vigil", "vigil"), "Unknown");
        assert_eq!(target("a.b.node.vigil", "vigil"), "Unknown");
        assert_eq!(target("foo.vigil", "vigil"), "Unknown");
        assert_eq!(target("api.services.vigil", "vigil"), "Unknown");
        let bad = [b"\xff".as_slice(), b"service", b"vigil"];
        assert_eq!(parse(&bad, &[b"vigil".to_vec()]), Target::Unknown);
    }

    #[test]
    fn hex_addresses_round_trip() {
        for ip in ["10.0.0.1", "255.255.255.255", "::1", "2001:db8::8:1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(parse_hex_addr(&hex_addr(ip)), Some(ip));
        }
    }

    fn instance(id: &str, address: &str, tags: &[&str]) -> vigil_cluster::raft::ServiceInstance {
        vigil_cluster::raft::ServiceInstance {
            name: "api".into(),
            id: id.into(),
            address: address.into(),
            port: 8080,
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            node: "n1".into(),
            ephemeral: false,
            checks: Default::default(),
            deregister_critical_after_ms: None,
        }
    }

    fn published(index: u64, instances: &[vigil_cluster::raft::ServiceInstance]) -> Published {
        let mut registry = Registry::default();
        for i in instances {
            registry
                .services
                .entry(i.name.clone())
                .or_default()
                .insert(i.id.clone(), i.clone());
            registry.modified.insert(i.name.clone(), index);
        }
        Published {
            registry,
            applied_index: Some(index),
        }
    }

    /// A query for `name` `qtype` with `id`, as dig writes it (EDNS with 1232 bytes).
    fn query(id: u16, name: &str, qtype: RecordType) -> Vec<u8> {
        use hickory_proto::op::{Message, Query};
        let mut message = Message::query();
        message.metadata.id = id;
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        message.edns = Some(edns);
        message.to_vec().unwrap()
    }

    /// The answer records of `bytes` as text, and the response code.
    fn read(bytes: &[u8]) -> (ResponseCode, Vec<String>) {
        let message = hickory_proto::op::Message::from_vec(bytes).unwrap();
        let mut records: Vec<String> = message
            .answers
            .iter()
            .map(|r| format!("{} {}", r.record_type(), r.data))
            .collect();
        records.sort();
        (message.metadata.response_code, records)
    }

    #[tokio::test]
    async fn kept_answers_follow_the_registry_and_are_shuffled() {
        let a = |n: u8| instance(&format!("api-{n}"), &format!("10.0.0.{n}"), &[]);
        let (send, current) = watch::channel(Arc::new(published(1, &[a(1), a(2), a(3)])));
        let handler =
            Handler::new(&DnsConfig::default(), Catalog::of_watch(current), None).unwrap();
        let mut cache = AnswerCache::new(&handler.catalog);
        let src: SocketAddr = "127.0.0.1:5300".parse().unwrap();
        let ask = |id: u16, name: &str, qtype, cache: &mut AnswerCache| {
            let mut out = Vec::new();
            assert!(handler.answer_udp(&query(id, name, qtype), src, cache, &mut out));
            assert_eq!(&out[..2], &id.to_be_bytes(), "the ID of the query");
            out
        };
        let three: Vec<String> = (1..=3).map(|n| format!("A 10.0.0.{n}")).collect();
        let first = ask(1, "api.service.vigil", RecordType::A, &mut cache);
        assert_eq!(read(&first), (ResponseCode::NoError, three.clone()));
        assert_eq!(cache.entries.len(), 1);
        // Kept: the same records, in every order over enough answers.
        let mut orders = std::collections::HashSet::new();
        for id in 2..200 {
            let again = ask(id, "api.service.vigil", RecordType::A, &mut cache);
            assert_eq!(again.len(), first.len());
            assert_eq!(read(&again), (ResponseCode::NoError, three.clone()));
            orders.insert(again[again.len() - 3 * 16 - 11..].to_vec());
        }
        assert_eq!(cache.entries.len(), 1);
        assert_eq!(orders.len(), 6, "all orders of three records");

        // The registry changes: so does the answer.
        send.send_replace(Arc::new(published(
            2,
            &[a(1), instance("api-4", "10.0.0.4", &["blue"])],
        )));
        let changed = ask(300, "api.service.vigil", RecordType::A, &mut cache);
        assert_eq!(
            read(&changed).1,
            vec!["A 10.0.0.1".to_owned(), "A 10.0.0.4".to_owned()]
        );
        let blue = ask(301, "blue.api.service.vigil", RecordType::A, &mut cache);
        assert_eq!(read(&blue).1, vec!["A 10.0.0.4".to_owned()]);

        // SRV answers are not kept (their names point into each other), but answered.
        let srv = ask(302, "_api._tcp.service.vigil", RecordType::SRV, &mut cache);
        assert_eq!(read(&srv).1.len(), 2);
        assert!(cache
            .get(&query(303, "_api._tcp.service.vigil", RecordType::SRV))
            .is_none());

        // NXDOMAIN is kept, and the SOA with it, until the service is registered.
        let (code, _) = read(&ask(304, "db.service.vigil", RecordType::A, &mut cache));
        assert_eq!(code, ResponseCode::NXDomain);
        let (code, _) = read(&ask(305, "db.service.vigil", RecordType::A, &mut cache));
        assert_eq!(code, ResponseCode::NXDomain);
        let mut db = a(9);
        db.name = "db".into();
        send.send_replace(Arc::new(published(3, &[db])));
        let (code, records) = read(&ask(306, "db.service.vigil", RecordType::A, &mut cache));
        assert_eq!(
            (code, records),
            (ResponseCode::NoError, vec!["A 10.0.0.9".to_owned()])
        );
    }

    fn view(states: &[(&str, vigil_gossip::MemberState)]) -> ClusterView {
        let mut members: Vec<vigil_cluster::MemberView> = states
            .iter()
            .map(|(id, state)| vigil_cluster::MemberView {
                id: (*id).to_owned(),
                addr: "127.0.0.1:7946".parse().unwrap(),
                state: *state,
                incarnation: 1,
                role: vigil_gossip::Role::Member,
                tags: Default::default(),
                api_addr: None,
                health: vigil_gossip::Health::Healthy,
                score: 100,
                phi: None,
                last_heard: None,
            })
            .collect();
        members.sort_by(|a, b| a.id.cmp(&b.id));
        ClusterView {
            local_id: "n0".into(),
            members,
            has_quorum: true,
            voters_total: 1,
            voters_reachable: 1,
            stats: Default::default(),
            local_health: 0,
            protocol_version: vigil_gossip::version::PROTOCOL_MAX,
        }
    }

    #[test]
    fn kept_answers_depend_on_the_liveness_of_their_nodes() {
        use vigil_gossip::MemberState::{Alive, Dead, Left, Suspect};
        let mut other = instance("api-2", "10.0.0.2", &[]);
        other.node = "n2".into();
        let registry = published(1, &[instance("api-1", "10.0.0.1", &[]), other]).registry;
        let alive = view(&[("n1", Alive), ("n2", Alive)]);
        let kept = liveness(&registry, Some(&alive), "api");
        assert_eq!(kept, vec![("n1".into(), false), ("n2".into(), false)]);
        assert!(still_live(Some(&alive), &kept));
        assert!(still_live(
            Some(&view(&[("n1", Suspect), ("n2", Alive)])),
            &kept
        ));
        assert!(still_live(None, &kept));
        // A node of the service found dead or gone here: the answer is built again, and the
        // instances on it are no longer passing.
        for state in [Dead, Left] {
            let changed = view(&[("n1", Alive), ("n2", state)]);
            assert!(!still_live(Some(&changed), &kept));
            let passing: Vec<&str> =
                discover_in(&registry, Some(&changed), "api", &Filter::default())
                    .into_iter()
                    .filter(|(_, s)| *s == InstanceState::Passing)
                    .map(|(i, _)| i.id.as_str())
                    .collect();
            assert_eq!(passing, ["api-1"]);
            let gone = liveness(&registry, Some(&changed), "api");
            assert!(still_live(Some(&changed), &gone));
            assert!(!still_live(Some(&alive), &gone));
        }
        assert!(liveness(&registry, None, "api").is_empty());
    }

    #[test]
    fn only_movable_answers_are_reordered() {
        assert_eq!(movable(&[0; 5]), None);
        // A header with two answers and one question cut short.
        assert_eq!(movable(&[0, 0, 0x81, 0, 0, 1, 0, 2, 0, 0, 0, 0, 3]), None);
        // A pointer loop.
        assert_eq!(name_at(&[0xC0, 0], 0), None);
    }

    #[test]
    fn domains_are_checked() {
        assert!(check_domain("vigil").is_ok());
        assert!(check_domain("dc1.example.").is_ok());
        assert!(check_domain("").is_err());
        assert!(check_domain(".").is_err());
        assert!(check_domain("a..b").is_err());
        assert!(check_domain("with space").is_err());
        assert!(check_domain(&"x".repeat(64)).is_err());
    }
}
