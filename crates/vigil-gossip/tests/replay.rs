//! A keyed node refuses recorded frames played again: datagrams, push-pull hellos and states, in
//! virtual time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use vigil_gossip::crypto::{Key, Keyring};
use vigil_gossip::{
    Config, DecodeError, Identity, Metadata, Node, NodeId, Output, Replay, Transmit,
};

fn node(id: &str, port: u16, keyring: Option<Keyring>, now: Instant) -> Node {
    started(id, port, keyring, now, [port as u8; 32])
}

fn started(id: &str, port: u16, keyring: Option<Keyring>, now: Instant, seed: [u8; 32]) -> Node {
    let identity = Identity {
        id: NodeId::new(id),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        incarnation: 1,
    };
    Node::new(
        identity,
        Metadata::default(),
        Config::default(),
        keyring,
        seed,
        now,
    )
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `b` joins `a` through one push-pull exchange; returns b's hello and state, as `a` received them.
fn join(a: &mut Node, b: &mut Node, now: Instant) -> (Vec<u8>, Vec<u8>) {
    b.join(now, &[addr(1)]);
    assert!(matches!(b.poll(), Some(Output::Exchange(e)) if e.peer == addr(1)));
    let state = b.sync_payload();
    let hello = b.sync_hello(state.len());
    assert_eq!(a.handle_sync_hello(now, addr(2), &hello), Ok(state.len()));
    a.handle_sync(now, addr(2), &state).expect("b's state");
    let reply = a.sync_payload();
    b.handle_sync(now, addr(1), &reply).expect("a's state");
    (hello, state)
}

/// The next datagram the node asks to send, skipping its other outputs.
fn poll_transmit(node: &mut Node) -> Option<Transmit> {
    std::iter::from_fn(|| node.poll()).find_map(|output| match output {
        Output::Transmit(transmit) => Some(transmit),
        _ => None,
    })
}

fn replayed(result: Result<impl std::fmt::Debug, DecodeError>) -> Replay {
    match result {
        Err(DecodeError::Replayed(why)) => why,
        other => panic!("expected a refused replay, got {other:?}"),
    }
}

#[test]
fn a_keyed_node_refuses_every_replayed_frame() {
    let start = Instant::now();
    let ring = Keyring::new(Key::from_bytes([4; 32]));
    let mut a = node("a", 1, Some(ring.clone()), start);
    let mut b = node("b", 2, Some(ring), start);
    let (hello, state) = join(&mut a, &mut b, start);

    // The push-pull frames again, a moment later: refused, and nothing counts as hearing from b.
    let later = start + Duration::from_millis(300);
    assert_eq!(
        replayed(a.handle_sync_hello(later, addr(9), &hello)),
        Replay::Duplicate
    );
    assert_eq!(
        replayed(a.handle_sync(later, addr(9), &state)),
        Replay::Duplicate
    );

    // b's datagrams to a: each passes once.
    let mut now = start;
    let mut recorded = Vec::new();
    for _ in 0..5 {
        now += Duration::from_millis(200);
        b.handle_timeout(now);
        while let Some(transmit) = poll_transmit(&mut b) {
            if transmit.to == addr(1) {
                a.handle_packet(now, addr(2), &transmit.payload)
                    .expect("fresh datagram");
                recorded.push(transmit.payload);
            }
        }
    }
    assert!(!recorded.is_empty(), "b sent nothing to a");
    for frame in &recorded {
        assert_eq!(
            replayed(a.handle_packet(now, addr(9), frame)),
            Replay::Duplicate
        );
    }

    // A frame b sealed but a never received (the attacker kept it) is refused once older than
    // `max_frame_age`.
    let mut kept = None;
    for _ in 0..50 {
        now += Duration::from_millis(100);
        b.handle_timeout(now);
        kept = kept.or(std::iter::from_fn(|| poll_transmit(&mut b)).find(|t| t.to == addr(1)));
    }
    let frame = kept.expect("a heartbeat or gossip to a").payload;
    let too_late = now + Config::default().max_frame_age + Duration::from_millis(50);
    assert!(matches!(
        replayed(a.handle_packet(too_late, addr(9), &frame)),
        Replay::TooOld { .. }
    ));
    assert!(a.stats().rejected >= recorded.len() as u64 + 3);

    // b's own push-pull frames reflected back to it are refused as well.
    let own = b.sync_payload();
    let own_hello = b.sync_hello(own.len());
    assert_eq!(
        b.handle_sync_hello(now, addr(9), &own_hello),
        Err(DecodeError::FromSelf)
    );
    assert_eq!(
        b.handle_sync(now, addr(9), &own),
        Err(DecodeError::FromSelf)
    );
}

#[test]
fn a_restarted_member_is_heard_at_once() {
    let start = Instant::now();
    let ring = Keyring::new(Key::from_bytes([4; 32]));
    let mut a = node("a", 1, Some(ring.clone()), start);
    let mut b = node("b", 2, Some(ring.clone()), start);
    join(&mut a, &mut b, start);
    // b's process restarts: a new session whose counter and clock start again.
    let restarted = start + Duration::from_secs(1);
    let mut b = started("b", 2, Some(ring), restarted, [99; 32]);
    join(&mut a, &mut b, restarted);
}

#[test]
fn without_a_keyring_duplicates_are_not_refused() {
    let start = Instant::now();
    let mut a = node("a", 1, None, start);
    let mut b = node("b", 2, None, start);
    let (hello, state) = join(&mut a, &mut b, start);
    assert_eq!(a.handle_sync_hello(start, addr(2), &hello), Ok(state.len()));
    assert!(a.handle_sync(start, addr(2), &state).is_ok());
}
