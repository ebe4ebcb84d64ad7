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
//! Messages are parsed and written by hickory (`hickory-proto`), and answered through its
//! [`RequestHandler`] trait. The socket loops are this module's own rather than hickory's
//! `Server`, which spawns a task per UDP query and does not bound TCP connections: here a UDP
//! query is answered on the task that received it (a few tasks share the socket), TCP
//! connections are limited to [`MAX_TCP_CONNECTIONS`] (one over the limit is closed at once),
//! and a connection idle for [`TCP_IDLE`] or slow to send a message is closed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SOA, SRV};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::net::runtime::{Time, TokioTime};
use hickory_server::net::xfer::Protocol;
use hickory_server::net::NetError;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};
use rand::seq::SliceRandom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, warn};
use vigil_cluster::raft::{InstanceState, Registry};
use vigil_cluster::Cluster;

use crate::catalog::Catalog;
use crate::discovery::{discover, Filter, Wanted};

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
    loop {
        let (len, src) = tokio::select! {
            received = socket.recv_from(&mut buffer) => match received {
                Ok(received) => received,
                Err(e) => {
                    // An ICMP error from an earlier answer, or a short-lived resource shortage.
                    debug!(error = %e, "dns: udp receive failed");
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        if src.port() == 0 {
            continue;
        }
        let Some(answer) = handler
            .answer_bytes(&buffer[..len], src, Protocol::Udp)
            .await
        else {
            continue;
        };
        if let Err(e) = socket.send_to(&answer, src).await {
            debug!(error = %e, %src, "dns: udp send failed");
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
        let Some(answer) = handler.answer_bytes(&message, src, Protocol::Tcp).await else {
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
    async fn answer_bytes(
        &self,
        message: &[u8],
        src: SocketAddr,
        protocol: Protocol,
    ) -> Option<Vec<u8>> {
        let request = match Request::from_bytes(message.to_vec(), src, protocol) {
            Ok(request) => request,
            Err(_) => return form_error(message, protocol),
        };
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        let reply = Reply::new(protocol);
        self.handle_request::<_, TokioTime>(&request, reply.clone())
            .await;
        reply.take()
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

    /// Answers one question.
    fn answer(&self, qname: &Name, qtype: RecordType, registry: &Registry) -> Answer {
        let labels: Vec<&[u8]> = qname.iter().collect();
        match parse(&labels, &self.domain_labels) {
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
                    return Answer::code(ResponseCode::NXDomain);
                };
                let member = view
                    .member(id)
                    .or_else(|| view.members.iter().find(|m| m.id.eq_ignore_ascii_case(id)));
                match member {
                    Some(m) => {
                        self.records(self.addresses(qname, qtype, &[m.addr.ip()]), Vec::new())
                    }
                    None => Answer::code(ResponseCode::NXDomain),
                }
            }
            Target::Service { name, tag } => {
                let Some(service) = service_named(registry, name) else {
                    return Answer::code(ResponseCode::NXDomain);
                };
                let filter = Filter {
                    wanted: Wanted::Passing,
                    tag: None,
                    node: None,
                };
                let mut instances: Vec<_> =
                    discover(registry, self.cluster.as_ref(), service, &filter)
                        .into_iter()
                        .filter(|(_, state)| *state == InstanceState::Passing)
                        .map(|(i, _)| i)
                        .filter(|i| {
                            tag.is_none_or(|tag| i.tags.iter().any(|t| t.eq_ignore_ascii_case(tag)))
                        })
                        .collect();
                instances.shuffle(&mut rand::rng());
                match qtype {
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
                            answers.push(Record::from_rdata(
                                qname.clone(),
                                self.ttl,
                                RData::SRV(srv),
                            ));
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
                }
            }
        }
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

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let response_edns = request.edns.as_ref().map(|asked| {
            let mut edns = Edns::new();
            edns.set_max_payload(asked.max_payload().max(512));
            edns.set_version(0);
            edns
        });
        let builder = MessageResponseBuilder::new(&request.queries, response_edns.as_ref());
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        let published;
        let answer = if request.metadata.op_code != OpCode::Query {
            Answer::code(ResponseCode::NotImp)
        } else {
            match request.request_info() {
                Err(_) => Answer::code(ResponseCode::FormErr),
                Ok(info) if info.query.query_class() != DNSClass::IN => {
                    Answer::code(ResponseCode::Refused)
                }
                Ok(info) => {
                    published = self.catalog.current();
                    let mut answer = self.answer(
                        info.query.original().name(),
                        info.query.query_type(),
                        &published.registry,
                    );
                    if answer.code == ResponseCode::Refused {
                        metadata.authoritative = false;
                    }
                    if answer.soa {
                        answer.soa = false;
                        answer.additionals.clear();
                        let soa = self.soa(serial(&published.registry));
                        return send(&mut response_handle, builder, metadata, answer, Some(soa))
                            .await;
                    }
                    answer
                }
            }
        };
        if answer.code != ResponseCode::NoError && answer.code != ResponseCode::NXDomain {
            metadata.authoritative = false;
        }
        send(&mut response_handle, builder, metadata, answer, None).await
    }
}

/// Sends `answer` (the SOA, if any, in the authority section).
async fn send<R: ResponseHandler>(
    handle: &mut R,
    builder: MessageResponseBuilder<'_>,
    mut metadata: Metadata,
    answer: Answer,
    soa: Option<Record>,
) -> ResponseInfo {
    metadata.response_code = answer.code;
    let response = builder.build(
        metadata,
        answer.answers.iter(),
        std::iter::empty(),
        soa.iter(),
        answer.additionals.iter(),
    );
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(e) => {
            warn!(error = %e, "dns: cannot send an answer");
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
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

/// Keeps the answer the handler sends, for the socket loop to write.
#[derive(Clone)]
struct Reply {
    protocol: Protocol,
    bytes: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Reply {
    fn new(protocol: Protocol) -> Reply {
        Reply {
            protocol,
            bytes: Arc::new(Mutex::new(None)),
        }
    }

    fn take(&self) -> Option<Vec<u8>> {
        self.bytes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

#[async_trait::async_trait]
impl ResponseHandler for Reply {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let (info, bytes) = encode(response, self.protocol, None)?;
        *self.bytes.lock().unwrap_or_else(PoisonError::into_inner) = Some(bytes);
        Ok(info)
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
