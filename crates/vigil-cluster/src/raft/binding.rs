//! Binds every Raft frame to its connection and its place in it, so that a recorded frame
//! replayed on the network is refused. Pure logic, no I/O: the transport seals and sends what
//! this module builds, and hands it what it receives.
//!
//! On accept, the server sends a hello carrying a fresh random server nonce and its own Raft id.
//! The client refuses a hello from another voter than the one it dialled (an attacker on the path
//! could otherwise hand one voter's traffic to another, and the leader would count the wrong
//! voter's answers towards a majority). The client picks a fresh random client nonce for the
//! connection and answers with a client hello, `kind ‖ server nonce ‖ client nonce`: small, and
//! (sealed) proof that the client holds the key and is live on this very connection, so the
//! server accepts no large frame before it. The client then numbers its requests 0, 1, 2, …;
//! every request starts with `kind ‖ server nonce ‖ client nonce ‖ sequence number`, and its reply
//! repeats the request's binding. So:
//! - a request recorded on one connection is refused on any other (the server nonce is fresh);
//! - a request replayed on its own connection is refused (its sequence number is spent);
//! - old replies, or an old hello with its replies, replayed to a client are refused (the
//!   client nonce is fresh, and each reply must carry the number of the request it answers);
//! - a frame reflected back to its sender is refused: the leading kind byte tells hellos,
//!   requests and replies apart, since both directions seal with the same key.
//!
//! The hello's kind byte also names the protocol version the server speaks on the connection
//! ([`hello_byte`]): 1 for version 2 (the byte of builds from before versions), then the version
//! plus 2 (5 for version 3, 6 for 4). A
//! server writes the version the cluster speaks (see `vigil_gossip::version`), and a client
//! refuses a hello of a version it does not speak, so a voter pinned to the older version is
//! never sent a newer one's frames.
//!
//! The binding is only as strong as the sealing around it. With a cluster keyring, frames are
//! sealed (XChaCha20-Poly1305), so nobody without the key can forge or alter a binding. Without
//! one, frames travel in the clear and anybody can write any binding: it is then only a
//! consistency check between two honest ends, not a defence.

use vigil_gossip::version::Versions;

/// Length of the server and client nonces.
pub const NONCE_LEN: usize = 16;

/// A connection's random nonce, chosen by one end.
pub type Nonce = [u8; NONCE_LEN];

/// Length of a hello: kind, server nonce and the server's Raft id.
pub const HELLO_LEN: usize = 1 + NONCE_LEN + 8;
/// Length of a client hello: kind and both nonces.
pub const CLIENT_HELLO_LEN: usize = 1 + 2 * NONCE_LEN;
/// Length of the binding before a request or reply body: kind, both nonces, sequence number.
const HEADER_LEN: usize = 1 + 2 * NONCE_LEN + 8;

/// The kind byte of a hello of protocol `version`.
pub fn hello_byte(version: u8) -> u8 {
    match version {
        ..=2 => 1,
        newer => newer.saturating_add(2),
    }
}

/// The protocol version a hello's kind byte names, if any.
fn hello_version(byte: u8) -> Option<u8> {
    match byte {
        1 => Some(2),
        5.. => Some(byte - 2),
        _ => None,
    }
}

/// What a frame is, its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The server's first frame on a connection.
    Hello,
    /// The client's first frame on a connection, answering the server's hello.
    ClientHello,
    /// A client's request.
    Request,
    /// The server's answer to one request.
    Reply,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Hello => 1,
            Kind::Request => 2,
            Kind::Reply => 3,
            Kind::ClientHello => 4,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Hello => "hello",
            Kind::ClientHello => "client hello",
            Kind::Request => "request",
            Kind::Reply => "reply",
        })
    }
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The frame is too short to hold its binding (or a hello is not exactly a hello).
    #[error("a {kind} of {len} bytes does not hold its binding")]
    Truncated {
        /// What the frame should have been.
        kind: Kind,
        /// Its length.
        len: usize,
    },
    /// The frame is of another kind than the one due (a reflected frame, for one).
    #[error("kind byte {got} where a {expected} was due")]
    WrongKind {
        /// What the frame should have been.
        expected: Kind,
        /// The kind byte it has.
        got: u8,
    },
    /// The hello is of a protocol version this voter does not speak.
    #[error("a hello of protocol version {got}, which this voter does not speak ({min} to {max})")]
    Version {
        /// The version the hello names.
        got: u8,
        /// The oldest this voter speaks.
        min: u8,
        /// The newest.
        max: u8,
    },
    /// The hello comes from another voter than the one dialled.
    #[error("a hello from voter {got} where voter {expected} was dialled")]
    WrongVoter {
        /// The Raft id of the voter dialled.
        expected: u64,
        /// The Raft id in the hello.
        got: u64,
    },
    /// The server nonce is not this connection's: the frame was recorded on another one.
    #[error("the server nonce is not this connection's (a frame from another connection)")]
    ServerNonce,
    /// The client nonce is not this connection's: the frame was recorded on another one.
    #[error("the client nonce is not this connection's (a frame from another connection)")]
    ClientNonce,
    /// A request came before the client hello, or a second client hello came.
    #[error("a {got} where a {expected} was due")]
    OutOfTurn {
        /// What was due.
        expected: Kind,
        /// What came.
        got: Kind,
    },
    /// The sequence number is not the one due: the frame is replayed or out of place.
    #[error("sequence number {got} where {expected} was due (a replayed frame)")]
    OutOfOrder {
        /// The number due.
        expected: u64,
        /// The number the frame has.
        got: u64,
    },
}

/// Where a request or reply belongs: its connection and its place in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Binding {
    server: Nonce,
    client: Nonce,
    seq: u64,
}

impl Binding {
    fn frame(&self, kind: Kind, body: &[u8]) -> Vec<u8> {
        let mut frame = Vec::with_capacity(HEADER_LEN + body.len());
        frame.push(kind.byte());
        frame.extend_from_slice(&self.server);
        frame.extend_from_slice(&self.client);
        frame.extend_from_slice(&self.seq.to_be_bytes());
        frame.extend_from_slice(body);
        frame
    }

    /// Splits a request or reply into its binding and its body.
    fn parse(kind: Kind, frame: &[u8]) -> Result<(Binding, &[u8]), Refused> {
        let truncated = || Refused::Truncated {
            kind,
            len: frame.len(),
        };
        let (&got, rest) = frame.split_first().ok_or_else(truncated)?;
        if got != kind.byte() {
            return Err(Refused::WrongKind {
                expected: kind,
                got,
            });
        }
        let (server, rest) = rest.split_first_chunk().ok_or_else(truncated)?;
        let (client, rest) = rest.split_first_chunk().ok_or_else(truncated)?;
        let (seq, body) = rest.split_first_chunk().ok_or_else(truncated)?;
        let binding = Binding {
            server: *server,
            client: *client,
            seq: u64::from_be_bytes(*seq),
        };
        Ok((binding, body))
    }
}

/// One request in flight: its reply must carry the same binding. Handed out for each request
/// and spent by its reply, so a request gets one reply at most.
#[derive(Debug)]
#[must_use = "a request is answered with its exchange"]
pub struct Exchange(Binding);

/// The server's end of one connection.
#[derive(Debug)]
pub struct ServerSession {
    server: Nonce,
    /// This voter's Raft id, named in the hello.
    voter: u64,
    /// The protocol version of the connection, named in the hello.
    version: u8,
    /// The client nonce of the client hello; every request must repeat it.
    client: Option<Nonce>,
    next: u64,
}

impl ServerSession {
    /// A session for a freshly accepted connection of the voter with Raft id `voter`, speaking
    /// protocol `version`; `server` must be fresh random bytes.
    pub fn new(server: Nonce, voter: u64, version: u8) -> ServerSession {
        ServerSession {
            server,
            voter,
            version,
            client: None,
            next: 0,
        }
    }

    /// The hello to send first.
    pub fn hello(&self) -> Vec<u8> {
        let mut frame = Vec::with_capacity(HELLO_LEN);
        frame.push(hello_byte(self.version));
        frame.extend_from_slice(&self.server);
        frame.extend_from_slice(&self.voter.to_be_bytes());
        frame
    }

    /// Whether the client hello has come: until then only a small frame is due.
    pub fn greeted(&self) -> bool {
        self.client.is_some()
    }

    /// Checks the client hello, the first frame a client sends, and takes its client nonce for
    /// the connection. A refused frame leaves the session as it was; the caller closes the
    /// connection.
    pub fn open_client_hello(&mut self, frame: &[u8]) -> Result<(), Refused> {
        if self.client.is_some() {
            return Err(Refused::OutOfTurn {
                expected: Kind::Request,
                got: Kind::ClientHello,
            });
        }
        let (&got, rest) = frame.split_first().ok_or(Refused::Truncated {
            kind: Kind::ClientHello,
            len: 0,
        })?;
        if got != Kind::ClientHello.byte() {
            return Err(Refused::WrongKind {
                expected: Kind::ClientHello,
                got,
            });
        }
        let truncated = Refused::Truncated {
            kind: Kind::ClientHello,
            len: frame.len(),
        };
        let Some((server, client)) = rest.split_first_chunk::<NONCE_LEN>() else {
            return Err(truncated);
        };
        let client = Nonce::try_from(client).map_err(|_| truncated)?;
        if *server != self.server {
            return Err(Refused::ServerNonce);
        }
        self.client = Some(client);
        Ok(())
    }

    /// Checks a request's binding and returns its body, or why it is refused. A refused frame
    /// leaves the session as it was; the caller closes the connection.
    pub fn open_request<'f>(&mut self, frame: &'f [u8]) -> Result<(Exchange, &'f [u8]), Refused> {
        let Some(client) = self.client else {
            return Err(Refused::OutOfTurn {
                expected: Kind::ClientHello,
                got: Kind::Request,
            });
        };
        let (binding, body) = Binding::parse(Kind::Request, frame)?;
        if binding.server != self.server {
            return Err(Refused::ServerNonce);
        }
        if client != binding.client {
            return Err(Refused::ClientNonce);
        }
        if binding.seq != self.next {
            return Err(Refused::OutOfOrder {
                expected: self.next,
                got: binding.seq,
            });
        }
        // 2^64 requests on one connection never happen; wrapping only spares a panic path.
        self.next = self.next.wrapping_add(1);
        Ok((Exchange(binding), body))
    }

    /// The reply frame answering `exchange` with `body`.
    pub fn reply(&self, exchange: Exchange, body: &[u8]) -> Vec<u8> {
        exchange.0.frame(Kind::Reply, body)
    }
}

/// The client's end of one connection.
#[derive(Debug)]
pub struct ClientSession {
    server: Nonce,
    client: Nonce,
    next: u64,
}

impl ClientSession {
    /// A session from the hello of the voter with Raft id `voter`, of a protocol version among
    /// `speaks`; `client` must be fresh random bytes.
    pub fn from_hello(
        hello: &[u8],
        client: Nonce,
        voter: u64,
        speaks: Versions,
    ) -> Result<ClientSession, Refused> {
        let (&got, rest) = hello.split_first().ok_or(Refused::Truncated {
            kind: Kind::Hello,
            len: 0,
        })?;
        let Some(version) = hello_version(got) else {
            return Err(Refused::WrongKind {
                expected: Kind::Hello,
                got,
            });
        };
        if !speaks.speaks(version) {
            return Err(Refused::Version {
                got: version,
                min: speaks.min,
                max: speaks.max,
            });
        }
        let truncated = Refused::Truncated {
            kind: Kind::Hello,
            len: hello.len(),
        };
        let Some((server, id)) = rest.split_first_chunk::<NONCE_LEN>() else {
            return Err(truncated);
        };
        let id = <[u8; 8]>::try_from(id).map_err(|_| truncated)?;
        let got = u64::from_be_bytes(id);
        if got != voter {
            return Err(Refused::WrongVoter {
                expected: voter,
                got,
            });
        }
        let server = *server;
        Ok(ClientSession {
            server,
            client,
            next: 0,
        })
    }

    /// The client hello to send first, right after the server's hello.
    pub fn hello(&self) -> Vec<u8> {
        let mut frame = Vec::with_capacity(CLIENT_HELLO_LEN);
        frame.push(Kind::ClientHello.byte());
        frame.extend_from_slice(&self.server);
        frame.extend_from_slice(&self.client);
        frame
    }

    /// The frame carrying the next request, `body`, and the exchange its reply must match.
    pub fn request(&mut self, body: &[u8]) -> (Exchange, Vec<u8>) {
        let binding = Binding {
            server: self.server,
            client: self.client,
            seq: self.next,
        };
        // As on the server: wrapping only spares a panic path that is never reached.
        self.next = self.next.wrapping_add(1);
        (Exchange(binding), binding.frame(Kind::Request, body))
    }

    /// Checks that `frame` answers `exchange` and returns its body, or why it is refused.
    pub fn open_reply<'f>(&self, exchange: Exchange, frame: &'f [u8]) -> Result<&'f [u8], Refused> {
        let (binding, body) = Binding::parse(Kind::Reply, frame)?;
        let expected = exchange.0;
        if binding.server != expected.server {
            return Err(Refused::ServerNonce);
        }
        if binding.client != expected.client {
            return Err(Refused::ClientNonce);
        }
        if binding.seq != expected.seq {
            return Err(Refused::OutOfOrder {
                expected: expected.seq,
                got: binding.seq,
            });
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_gossip::version::{PROTOCOL_MAX, PROTOCOL_MIN};

    #[test]
    fn a_hello_names_its_version_and_a_client_refuses_one_it_does_not_speak() {
        let pinned = Versions::pinned(PROTOCOL_MIN).expect("a version this build speaks");
        let old = ServerSession::new(SERVER, VOTER, PROTOCOL_MIN).hello();
        let new = ServerSession::new(SERVER, VOTER, PROTOCOL_MAX).hello();
        assert_eq!(
            hello_byte(2),
            1,
            "version 2's hello is the byte of builds before versions"
        );
        assert_eq!(old[0], hello_byte(PROTOCOL_MIN));
        for speaks in [pinned, Versions::default()] {
            assert!(ClientSession::from_hello(&old, CLIENT, VOTER, speaks).is_ok());
        }
        assert!(ClientSession::from_hello(&new, CLIENT, VOTER, Versions::default()).is_ok());
        assert_eq!(
            ClientSession::from_hello(&new, CLIENT, VOTER, pinned).map(|_| ()),
            Err(Refused::Version {
                got: PROTOCOL_MAX,
                min: PROTOCOL_MIN,
                max: PROTOCOL_MIN
            })
        );
    }

    const SERVER: Nonce = [0x5e; NONCE_LEN];
    const CLIENT: Nonce = [0xc1; NONCE_LEN];
    const VOTER: u64 = 7;

    /// A server and a client that have exchanged both hellos.
    fn pair(server: Nonce, client: Nonce) -> (ServerSession, ClientSession) {
        let mut server = ServerSession::new(server, VOTER, PROTOCOL_MAX);
        let client = ClientSession::from_hello(&server.hello(), client, VOTER, Versions::default())
            .expect("hello");
        server
            .open_client_hello(&client.hello())
            .expect("client hello");
        (server, client)
    }

    #[test]
    fn requests_need_the_client_hello_first_and_only_once() {
        let mut server = ServerSession::new(SERVER, VOTER, PROTOCOL_MAX);
        let mut client =
            ClientSession::from_hello(&server.hello(), CLIENT, VOTER, Versions::default())
                .expect("hello");
        let (_, request) = client.request(b"early");
        assert!(matches!(
            server.open_request(&request),
            Err(Refused::OutOfTurn { .. })
        ));
        assert!(!server.greeted());
        let mut other = ServerSession::new([1; NONCE_LEN], VOTER, PROTOCOL_MAX);
        assert_eq!(
            other.open_client_hello(&client.hello()),
            Err(Refused::ServerNonce),
            "a client hello recorded on another connection"
        );
        server.open_client_hello(&client.hello()).expect("hello");
        assert!(server.greeted());
        assert!(matches!(
            server.open_client_hello(&client.hello()),
            Err(Refused::OutOfTurn { .. })
        ));
        let hello = client.hello();
        for len in 0..hello.len() {
            let mut fresh = ServerSession::new(SERVER, VOTER, PROTOCOL_MAX);
            assert!(fresh.open_client_hello(&hello[..len]).is_err(), "{len}");
        }
    }

    #[test]
    fn requests_and_replies_in_order_are_accepted() {
        let (mut server, mut client) = pair(SERVER, CLIENT);
        for body in [&b"first"[..], b"second", b""] {
            let (sent, frame) = client.request(body);
            let (exchange, got) = server.open_request(&frame).expect("request");
            assert_eq!(got, body);
            let reply = server.reply(exchange, &[body, b"!"].concat());
            assert_eq!(
                client.open_reply(sent, &reply).expect("reply"),
                [body, b"!"].concat()
            );
        }
    }

    #[test]
    fn a_replayed_request_is_refused() {
        let (mut server, mut client) = pair(SERVER, CLIENT);
        let (_, first) = client.request(b"campaign");
        let _ = server.open_request(&first).expect("first time");
        assert_eq!(
            server.open_request(&first).map(|(_, body)| body),
            Err(Refused::OutOfOrder {
                expected: 1,
                got: 0
            })
        );
        // Nor may a request skip ahead, or come twice after a later one.
        let (_, second) = client.request(b"second");
        let (_, third) = client.request(b"third");
        assert!(server.open_request(&third).is_err());
        let _ = server.open_request(&second).expect("in order");
        assert!(server.open_request(&second).is_err());
    }

    #[test]
    fn a_request_from_another_connection_is_refused() {
        let (_, mut old_client) = pair([1; NONCE_LEN], CLIENT);
        let (_, recorded) = old_client.request(b"campaign");
        let (mut server, _) = pair(SERVER, CLIENT);
        assert_eq!(
            server.open_request(&recorded).map(|(_, body)| body),
            Err(Refused::ServerNonce)
        );

        // Within a connection, every request repeats the client hello's client nonce.
        let (mut server, mut client) = pair(SERVER, CLIENT);
        let (_, mut other) = pair(SERVER, [2; NONCE_LEN]);
        let _ = server
            .open_request(&client.request(b"mine").1)
            .expect("first");
        // The other client's second request: right server nonce and number, wrong client.
        let _ = other.request(b"skipped");
        let (_, foreign) = other.request(b"theirs");
        assert_eq!(
            server.open_request(&foreign).map(|(_, body)| body),
            Err(Refused::ClientNonce)
        );
    }

    #[test]
    fn a_reply_to_another_request_is_refused() {
        let (mut server, mut client) = pair(SERVER, CLIENT);
        let (first, frame) = client.request(b"first");
        let (exchange, _) = server.open_request(&frame).expect("first");
        let old_reply = server.reply(exchange, b"yes");
        let _ = client.open_reply(first, &old_reply).expect("its own reply");

        let (second, frame) = client.request(b"second");
        let _ = server.open_request(&frame).expect("second");
        assert_eq!(
            client.open_reply(second, &old_reply),
            Err(Refused::OutOfOrder {
                expected: 1,
                got: 0
            })
        );
    }

    #[test]
    fn an_old_hello_and_its_replies_are_refused_by_a_fresh_client() {
        let (mut server, mut old_client) = pair(SERVER, [1; NONCE_LEN]);
        let (_, frame) = old_client.request(b"vote");
        let (exchange, _) = server.open_request(&frame).expect("request");
        let recorded_reply = server.reply(exchange, b"granted");

        let mut client =
            ClientSession::from_hello(&server.hello(), CLIENT, VOTER, Versions::default())
                .expect("old hello");
        let (sent, _) = client.request(b"vote");
        assert_eq!(
            client.open_reply(sent, &recorded_reply),
            Err(Refused::ClientNonce)
        );
    }

    #[test]
    fn a_hello_from_another_voter_is_refused() {
        let other = ServerSession::new(SERVER, VOTER + 1, PROTOCOL_MAX);
        assert_eq!(
            ClientSession::from_hello(&other.hello(), CLIENT, VOTER, Versions::default())
                .map(|_| ()),
            Err(Refused::WrongVoter {
                expected: VOTER,
                got: VOTER + 1
            })
        );
    }

    #[test]
    fn a_frame_reflected_to_its_sender_is_refused() {
        let (mut server, mut client) = pair(SERVER, CLIENT);
        let (sent, request) = client.request(b"\"Campaign\"");
        assert_eq!(
            client.open_reply(sent, &request),
            Err(Refused::WrongKind {
                expected: Kind::Reply,
                got: Kind::Request.byte()
            })
        );
        let (exchange, _) = server.open_request(&request).expect("request");
        let reply = server.reply(exchange, b"true");
        assert!(matches!(
            server.open_request(&reply),
            Err(Refused::WrongKind { .. })
        ));
        assert!(matches!(
            ClientSession::from_hello(&request, CLIENT, VOTER, Versions::default()),
            Err(Refused::WrongKind { .. })
        ));
    }

    #[test]
    fn truncated_frames_are_refused() {
        let (mut server, mut client) = pair(SERVER, CLIENT);
        let hello = server.hello();
        for len in 0..hello.len() {
            assert!(
                ClientSession::from_hello(&hello[..len], CLIENT, VOTER, Versions::default())
                    .is_err(),
                "{len}"
            );
        }
        assert!(ClientSession::from_hello(
            &[hello.as_slice(), b"x"].concat(),
            CLIENT,
            VOTER,
            Versions::default()
        )
        .is_err());

        let (_, request) = client.request(b"");
        for len in 0..request.len() {
            assert!(
                server.open_request(&request[..len]).is_err(),
                "request cut at {len}"
            );
        }
        let (mut server, mut client) = pair(SERVER, CLIENT);
        let (sent, request) = client.request(b"");
        let (exchange, _) = server.open_request(&request).expect("whole request");
        let reply = server.reply(exchange, b"");
        for len in 0..reply.len() {
            assert!(
                client.open_reply(Exchange(sent.0), &reply[..len]).is_err(),
                "reply cut at {len}"
            );
        }
        assert_eq!(client.open_reply(sent, &reply), Ok(&b""[..]));
    }

    /// Bytes from a small xorshift generator: varied input without a seeded RNG dependency.
    fn noise(state: &mut u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *state ^= *state << 13;
                *state ^= *state >> 7;
                *state ^= *state << 17;
                (*state >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_are_refused() {
        let mut state = 0x9e37_79b9_7f4a_7c15;
        for round in 0..20_000 {
            let len = round % (HEADER_LEN + 24);
            let mut bytes = noise(&mut state, len);
            // Every fourth input gets a well-formed kind byte, to reach the deeper checks.
            if round % 4 == 0 && !bytes.is_empty() {
                bytes[0] = [Kind::Hello, Kind::ClientHello, Kind::Request, Kind::Reply]
                    [round / 4 % 4]
                    .byte();
            }
            let (mut server, mut client) = pair(SERVER, CLIENT);
            let (sent, _) = client.request(b"");
            assert!(server.open_request(&bytes).is_err(), "{bytes:?}");
            assert!(client.open_reply(sent, &bytes).is_err(), "{bytes:?}");
            let _ = ClientSession::from_hello(&bytes, CLIENT, VOTER, Versions::default());
            let mut fresh = ServerSession::new(SERVER, VOTER, PROTOCOL_MAX);
            assert!(fresh.open_client_hello(&bytes).is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn every_single_byte_change_to_a_binding_is_refused() {
        let (mut server, mut client) = pair(SERVER, CLIENT);
        // Every byte of the binding is checked, the client nonce the client hello set too.
        let _ = server
            .open_request(&client.request(b"first").1)
            .expect("first");
        let (sent, request) = client.request(b"body");
        for at in 0..HEADER_LEN {
            let mut changed = request.clone();
            changed[at] ^= 0x01;
            assert!(server.open_request(&changed).is_err(), "byte {at}");
        }
        let (exchange, _) = server.open_request(&request).expect("intact");
        let reply = server.reply(exchange, b"ok");
        for at in 0..HEADER_LEN {
            let mut changed = reply.clone();
            changed[at] ^= 0x01;
            assert!(
                client.open_reply(Exchange(sent.0), &changed).is_err(),
                "byte {at}"
            );
        }
        assert_eq!(client.open_reply(sent, &reply), Ok(&b"ok"[..]));
    }
}
