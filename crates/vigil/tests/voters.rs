//! Replacing a voter's machine while writes go on, as an operator does it: a fourth agent started
//! with role = "voter" (outside the bootstrap voters) waits as a learner until `vigil voters add`
//! promotes it; a voter then dies and `vigil voters remove` takes it out with the majority left.
//! Every acknowledged write is on every agent afterwards, the newcomer included, and leadership
//! stayed where it was (or moved once). A change that cannot happen is refused in one line.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::raft::{agreed_leader, three_voters, Node, SETTLE, VOTERS};
use common::{free_port, vigil, wait_for, TOKEN};
use serde_json::Value;

/// Runs `vigil voters ARGS --addr API --token TOKEN --json`: success, stdout, stderr.
fn voters(api: std::net::SocketAddr, args: &[&str]) -> (bool, String, String) {
    let addr = format!("http://{api}");
    let mut all = vec!["voters"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--addr", &addr, "--token", TOKEN, "--json"]);
    let out = vigil(&all);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The (name, role) of every member of the group, from `vigil voters list --json` output.
fn roles(json: &str) -> Vec<(String, String)> {
    let body: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    body["members"]
        .as_array()
        .map(|members| {
            members
                .iter()
                .map(|m| {
                    (
                        m["name"].as_str().unwrap_or_default().to_owned(),
                        m["role"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn term(node: &Node) -> u64 {
    node.leader().and_then(|l| l["term"].as_u64()).unwrap_or(0)
}

#[test]
fn a_voter_is_replaced_under_writes_without_losing_one() {
    let (mut nodes, seeds, dir) = three_voters("voters");
    let leader = agreed_leader(&nodes);
    let term_before = term(&nodes[leader]);

    // Writes through the leader, from start to end; those acknowledged are kept.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let (stop, acked) = (stop.clone(), acked.clone());
        let api = nodes[leader].api;
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 2_000 {
                let id = format!("w-{i}");
                let body = format!(
                    r#"{{"name": "api", "id": "{id}", "address": "10.0.0.1", "port": 80, "checks": []}}"#
                );
                if let Ok((200 | 201, _)) =
                    common::http(api, "POST", "/v1/services", Some(TOKEN), &body)
                {
                    acked.lock().unwrap().push(id);
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    // The newcomer runs Raft as a learner-to-be: not a voter until it is added.
    nodes.push(Node::start("v4", &dir, free_port(), &seeds, true, &VOTERS));
    let (ok, out, err) = voters(nodes[leader].api, &["list"]);
    assert!(ok, "{err}");
    assert!(!roles(&out).iter().any(|(name, _)| name == "v4"), "{out}");

    // Added through a follower, which passes the change to the leader.
    let follower = (0..3).find(|&i| i != leader).unwrap();
    let added = wait_for(SETTLE, || {
        let (ok, out, err) = voters(nodes[follower].api, &["add", "v4"]);
        // Gossip may not have told the leader of v4 yet: asked again until it has.
        (ok || !err.contains("not a live member")).then_some((ok, out, err))
    })
    .expect("the leader learns of v4");
    assert!(added.0, "{}", added.2);
    assert!(
        roles(&added.1).contains(&("v4".to_owned(), "voter".to_owned())),
        "{}",
        added.1
    );

    // A follower dies for good; the four-voter majority (three) is still there to remove it.
    let dead = (0..3).find(|&i| i != leader && i != follower).unwrap();
    let dead_id = nodes[dead].id.clone();
    nodes[dead].kill();
    let (ok, out, err) = voters(nodes[leader].api, &["remove", &dead_id]);
    assert!(ok, "{err}");
    let after = roles(&out);
    assert!(!after.iter().any(|(name, _)| *name == dead_id), "{out}");
    assert_eq!(after.len(), 3, "{out}");

    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "writes went on: {}", acked.len());

    // Every acknowledged write is on every running agent, the new voter included.
    let running: Vec<&Node> = nodes.iter().filter(|n| n.child.is_some()).collect();
    for node in &running {
        let held = wait_for(SETTLE, || {
            let ids = node.instances("api", false)?;
            acked.iter().all(|id| ids.contains(id)).then_some(ids)
        });
        assert!(held.is_some(), "{} holds every acknowledged write", node.id);
    }
    let leader_now = agreed_leader(&nodes);
    assert!(
        term(&nodes[leader_now]) <= term_before + 1,
        "leadership moved at most once: term {term_before} → {}",
        term(&nodes[leader_now])
    );
    assert!(["v1", "v2", "v3", "v4"].contains(&nodes[leader_now].id.as_str()));

    // What cannot happen is refused in one line, and changes nothing.
    for args in [["add", "nobody"], ["remove", "nobody"]] {
        let (ok, _, err) = voters(nodes[leader_now].api, &args);
        assert!(!ok, "{args:?}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("nobody"), "{err}");
    }
    let (_, out, _) = voters(nodes[leader_now].api, &["list"]);
    assert_eq!(roles(&out).len(), 3, "{out}");
}
