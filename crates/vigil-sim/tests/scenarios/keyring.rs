//! Keyrings: nodes sharing a key form a cluster; a node without the key, or with a wrong one,
//! never appears in anyone's membership and cannot inject an update.

use std::time::Instant;

use vigil_gossip::crypto::{Key, Keyring};
use vigil_gossip::{Identity, Metadata, Node};
use vigil_sim::{addr_of, id_of, NodeOptions, SimConfig};

use crate::common::{assert_none, cluster_with, secs};

fn keyring(byte: u8) -> Keyring {
    Keyring::new(Key::from_bytes([byte; 32]))
}

#[test]
fn only_nodes_with_the_key_are_members_and_outsiders_cannot_inject() {
    let n = 20;
    let mut config = SimConfig::new(14, n);
    config.keyring = Some(keyring(1));
    let mut sim = cluster_with(config);
    let since = sim.now();

    // Two would-be members join through the seeds: one without a key, one with the wrong key.
    let keyless = sim.add_node(NodeOptions {
        keyring: None,
        outsider: true,
        join: true,
    });
    let wrong = sim.add_node(NodeOptions {
        keyring: Some(keyring(2)),
        outsider: true,
        join: true,
    });

    // An intruder with the wrong key that knows every member (as if it had sniffed their
    // addresses): it heartbeats them, gossips, probes them, and — hearing nothing back — suspects
    // them and declares them dead, all in frames sealed with its own key. It also impersonates
    // node 3 leaving.
    let intruder = sim.add_node(NodeOptions {
        keyring: Some(keyring(2)),
        outsider: true,
        join: false,
    });
    for j in 0..n {
        let incarnation = if j == 3 { u64::MAX / 2 } else { 1 };
        let identity = Identity {
            id: id_of(j),
            addr: addr_of(j),
            incarnation,
        };
        let mut fake = Node::new(
            identity,
            Metadata::default(),
            Default::default(),
            Some(keyring(2)),
            [j as u8; 32],
            Instant::now(),
        );
        if j == 3 {
            fake.leave(Instant::now());
        }
        let payload = fake.sync_payload();
        sim.with_node(intruder, |node, now| {
            node.handle_sync(now, addr_of(j), &payload)
        })
        .expect("intruder runs")
        .expect("same key");
    }
    sim.with_node(intruder, |node, now| {
        let mut meta = Metadata::default();
        meta.tags.insert("evil".into(), "yes".into());
        node.set_metadata(now, meta);
    });
    sim.run_for(secs(60));

    assert!(
        sim.all_alive(),
        "the keyed cluster is whole: {:?}",
        sim.unconverged()
    );
    for i in 0..n {
        let node = sim.node(i).expect("running");
        for outsider in [keyless, wrong, intruder] {
            assert!(
                node.member(&id_of(outsider)).is_none(),
                "node {i} knows outsider {outsider}"
            );
        }
        assert!(
            node.members().all(|m| m
                .meta
                .tags
                .keys()
                .all(|tag| tag == vigil_gossip::version::PROTOCOL_TAG)),
            "node {i} took injected metadata"
        );
    }
    for seed in 0..3 {
        // The keyless and wrong-key joiners push-pull with every seed, every 5 s.
        assert!(
            sim.traffic(seed).rejected > 0,
            "seed {seed} refused no frame"
        );
    }
    let rejected: u64 = (0..n).map(|i| sim.traffic(i).rejected).sum();
    eprintln!("cluster refused {rejected} frames from outsiders");
    assert!(
        sim.node(intruder).expect("running").stats().probes > 0,
        "the intruder did attack"
    );
    assert_none(
        "accusations inside the cluster",
        &sim.false_suspicions(since),
    );
    let about_outsiders = sim
        .records()
        .iter()
        .filter(|r| r.observer < n && r.subject.is_some_and(|s| s >= n))
        .count();
    assert_eq!(about_outsiders, 0);
}
