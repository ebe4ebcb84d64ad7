//! Arbitrary plain frames fed to a running node: decoding, precedence rules and timers must never
//! panic, whatever a peer sends.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use vigil_gossip::{Config, Identity, Metadata, Node, NodeId, Output, Reachability};

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let addr: SocketAddr = ([127, 0, 0, 1], 7946).into();
    let identity = Identity { id: NodeId::new("fuzz"), addr, incarnation: 1 };
    let mut node = Node::new(identity, Metadata::default(), Config::default(), None, [1; 32], now);
    let from: SocketAddr = ([127, 0, 0, 2], 7946).into();
    for (i, chunk) in data.split(|b| *b == 0xff).enumerate() {
        let mut frame = vec![0x00, vigil_gossip::version::PROTOCOL_MAX];
        frame.extend_from_slice(chunk);
        let at = now + Duration::from_millis(100 * i as u64);
        let _ = node.handle_packet(at, from, &frame);
        let _ = node.handle_sync(at, from, &frame);
        node.handle_timeout(at);
        while let Some(output) = node.poll() {
            match output {
                Output::Transmit(_) | Output::Event(_) | Output::Departed => {}
                Output::Exchange(exchange) => {
                    if i % 2 == 0 {
                        let _ = node.handle_sync_answer(at, exchange.id, &frame);
                    } else {
                        node.handle_sync_failed(at, exchange.id);
                    }
                }
                Output::Reachability(check) => {
                    let outcome = if i % 2 == 0 { Reachability::Refused } else { Reachability::Accepting };
                    node.handle_reachability(at, check.probe, outcome);
                }
            }
        }
    }
});
