//! A rolling upgrade under writes, as an operator runs one: three voters and a member all pinned
//! to the previous protocol (`protocol_version = 3`, which is how the previous build speaks) are
//! restarted one at a time without the pin. While any member still speaks only the old version
//! every agent writes it, so nobody refuses a frame and nobody is declared dead; once the last one
//! is upgraded the cluster moves to the new version. No acknowledged write is lost.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::member_states;
use common::raft::{agreed_leader, scratch, Node, SETTLE, VOTERS};
use common::{free_port, get_json, http, wait_for, TOKEN};

const PIN: &str = "protocol_version = 3";

/// A value of `metric` (without labels) in the agent's `/metrics`.
fn metric(api: SocketAddr, name: &str) -> Option<u64> {
    let (_, text) = http(api, "GET", "/metrics", None, "").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Whether every agent sees all four alive.
fn all_alive(apis: &[SocketAddr]) -> bool {
    apis.iter().all(|api| {
        get_json(*api, "/v1/members").is_some_and(|(_, members)| {
            let states = member_states(&members);
            states.len() == 4 && states.iter().all(|(_, state)| state == "alive")
        })
    })
}

#[test]
fn a_rolling_upgrade_under_writes_loses_nothing_and_kills_nobody() {
    let dir = scratch("upgrade");
    let gossip: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let mut nodes: Vec<Node> = VOTERS
        .iter()
        .enumerate()
        .map(|(i, id)| Node::start_with(id, &dir, gossip[i], &gossip, true, &VOTERS, PIN))
        .collect();
    nodes.push(Node::start_with(
        "m1", &dir, gossip[3], &gossip, false, &VOTERS, PIN,
    ));
    agreed_leader(&nodes[..3]);
    let apis: Vec<SocketAddr> = nodes.iter().map(|n| n.api).collect();
    assert!(wait_for(SETTLE, || all_alive(&apis).then_some(())).is_some());
    assert_eq!(metric(apis[0], "vigil_cluster_protocol_version"), Some(3));

    // Writes through any agent that answers, and a watch on every agent's view and refusals.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let seen_dead = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let (stop, acked, apis) = (stop.clone(), acked.clone(), apis.clone());
        std::thread::spawn(move || {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) && i < 5_000 {
                let id = format!("u-{i}");
                let body = format!(
                    r#"{{"name": "api", "id": "{id}", "address": "10.0.0.1", "port": 80, "checks": []}}"#
                );
                if let Ok((200 | 201, _)) = http(
                    apis[i % apis.len()],
                    "POST",
                    "/v1/services",
                    Some(TOKEN),
                    &body,
                ) {
                    acked.lock().unwrap().push(id);
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let watcher = {
        let (stop, seen_dead, apis) = (stop.clone(), seen_dead.clone(), apis.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for api in &apis {
                    if let Some((_, members)) = get_json(*api, "/v1/members") {
                        for (id, state) in member_states(&members) {
                            if state == "dead" {
                                seen_dead
                                    .lock()
                                    .unwrap()
                                    .push(format!("{api} saw {id} dead"));
                            }
                        }
                    }
                    if let Some(refused) = metric(*api, "vigil_cluster_packets_rejected_total") {
                        if refused > 0 {
                            seen_dead
                                .lock()
                                .unwrap()
                                .push(format!("{api} refused {refused} frames"));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    // One at a time: stopped (it leaves), restarted on the new build without the pin.
    for i in 0..nodes.len() {
        let node = &mut nodes[i];
        node.signal("-TERM");
        if let Some(mut child) = node.child.take() {
            let _ = child.wait();
        }
        let config = std::fs::read_to_string(&node.config).unwrap();
        std::fs::write(&node.config, config.replace(PIN, "")).unwrap();
        node.spawn();
        assert!(
            wait_for(SETTLE, || all_alive(&apis).then_some(())).is_some(),
            "all four alive again after upgrading {}",
            nodes[i].id
        );
        let expected = if i + 1 == nodes.len() { 4 } else { 3 };
        assert!(
            wait_for(SETTLE, || apis
                .iter()
                .all(|api| { metric(*api, "vigil_cluster_protocol_version") == Some(expected) })
                .then_some(()))
            .is_some(),
            "every agent speaks version {expected} after upgrading {}",
            nodes[i].id
        );
    }
    agreed_leader(&nodes[..3]);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    watcher.join().unwrap();

    let seen_dead = seen_dead.lock().unwrap().clone();
    assert!(
        seen_dead.is_empty(),
        "no false death, no refused frame: {seen_dead:?}"
    );
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 10, "writes went on: {}", acked.len());
    for node in &nodes {
        let held = wait_for(SETTLE, || {
            let ids = node.instances("api", false)?;
            acked.iter().all(|id| ids.contains(id)).then_some(())
        });
        assert!(held.is_some(), "{} holds every acknowledged write", node.id);
    }
}
