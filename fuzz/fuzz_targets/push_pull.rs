//! Arbitrary bytes as what a dialler writes on a push-pull connection: the acceptor's framing,
//! hello check and state decoding must never panic, with or without a keyring.
#![no_main]

use std::net::SocketAddr;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use vigil_cluster::frame;
use vigil_gossip::crypto::{Key, Keyring};
use vigil_gossip::stream::{MAX_HELLO, MAX_STATE};
use vigil_gossip::{Config, Identity, Metadata, Node, NodeId};

/// What the acceptor does with the bytes a dialler sent: split off the hello, have it checked,
/// then decode the state of the announced length and answer.
fn accept(node: &mut Node, now: Instant, from: SocketAddr, bytes: &[u8]) {
    let Ok(Some((hello, rest))) = frame::split_frame(bytes, MAX_HELLO) else {
        return;
    };
    let Ok(len) = node.handle_sync_hello(now, from, hello) else {
        return;
    };
    assert!(len <= MAX_STATE, "a hello may not announce more than MAX_STATE");
    let Some(state) = rest.get(..len) else {
        return;
    };
    if node.handle_sync(now, from, state).is_ok() {
        let reply = node.sync_payload();
        let _ = frame::encode(&reply, MAX_STATE);
    }
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let addr: SocketAddr = ([127, 0, 0, 1], 7946).into();
    let from: SocketAddr = ([127, 0, 0, 2], 50000).into();
    let keyring = Keyring::new(Key::from_bytes([7; 32]));
    for keyring in [None, Some(keyring)] {
        let identity = Identity { id: NodeId::new("fuzz"), addr, incarnation: 1 };
        let mut node = Node::new(identity, Metadata::default(), Config::default(), keyring, [1; 32], now);
        accept(&mut node, now, from, data);
    }
    // The same bytes as a plain message behind a genuine hello, so the fuzzer reaches the
    // decoding of states at once.
    let peer = Identity { id: NodeId::new("peer"), addr: from, incarnation: 1 };
    let mut peer = Node::new(peer, Metadata::default(), Config::default(), None, [2; 32], now);
    let mut state = vec![0x00, vigil_gossip::version::PROTOCOL_MAX];
    state.extend_from_slice(data);
    let hello = peer.sync_hello(state.len());
    let Ok(mut bytes) = frame::encode(&hello, MAX_HELLO) else {
        return;
    };
    bytes.extend_from_slice(&state);
    let identity = Identity { id: NodeId::new("fuzz"), addr, incarnation: 1 };
    let mut node = Node::new(identity, Metadata::default(), Config::default(), None, [1; 32], now);
    accept(&mut node, now, from, &bytes);
});
