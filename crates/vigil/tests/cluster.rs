//! Agents forming a cluster over real UDP and TCP on 127.0.0.1, seen through their API and CLI.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::time::Duration;

use common::cluster::{member_states, three_voters, voter_table, EventStream, ABC, FAST_GOSSIP};
use common::{free_port, http, node_config, vigil, Agent};
use serde_json::Value;

/// The config of a voter among a, b, c (or a stranger naming them) with cluster key `key`.
fn config(id: &str, cluster: &str, key: &str) -> String {
    node_config(id, &format!("{cluster}key = \"{key}\"\n{FAST_GOSSIP}"))
}

/// Whether a `/v1/members` body lists exactly a, b and c, all alive.
fn abc_alive(members: &Value) -> bool {
    member_states(members) == ABC.map(|id| (id.to_owned(), "alive".to_owned()))
}

#[test]
fn three_agents_form_a_cluster_and_see_a_killed_one_dead() {
    let key = vigil(&["keygen"]);
    let key = String::from_utf8(key.stdout).unwrap().trim().to_owned();
    let seed = free_port();
    let [a, b, mut c] = three_voters(seed, |id, cluster| config(id, cluster, &key));

    for agent in [&a, &b, &c] {
        agent.wait_until(
            "/v1/members",
            Duration::from_secs(20),
            "converged",
            |_, m| abc_alive(m),
        );
    }
    // On voters, `hasQuorum` is Raft's: true once a leader is in touch with a majority.
    let (_, status) = b.wait_until(
        "/cluster/status",
        Duration::from_secs(20),
        "the voters elect a leader and b hears from it",
        |_, status| status["hasQuorum"] == true,
    );
    assert_eq!(status["totalNodes"], 3);
    let member = &status["membership"]["a"];
    for field in [
        "nodeId",
        "status",
        "healthScore",
        "phiScore",
        "lastHeartbeatTime",
        "incarnation",
        "address",
        "role",
        "tags",
    ] {
        assert!(!member[field].is_null(), "membership.a.{field} in {member}");
    }
    assert_eq!(member["role"], "voter");

    let (_, leader) = a.wait_until(
        "/v1/leader",
        Duration::from_secs(20),
        "a knows the leader",
        |code, leader| code == 200 && leader["leader_id"].is_string(),
    );
    let table = vigil(&["members", "--addr", &format!("http://{}", a.addr)]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.lines().filter(|l| l.contains(" alive ")).count() == 3,
        "{table}"
    );
    let marked: Vec<&str> = table.lines().filter(|l| l.contains("(leader)")).collect();
    assert!(
        marked.len() == 1 && marked[0].starts_with(leader["leader_id"].as_str().unwrap()),
        "the leader {leader} marked once in\n{table}"
    );

    // A node with another key never shows up.
    let stranger_key = String::from_utf8(vigil(&["keygen"]).stdout)
        .unwrap()
        .trim()
        .to_owned();
    let stranger = Agent::start(&config(
        "stranger",
        &voter_table(free_port(), seed),
        &stranger_key,
    ));

    // The key rotates on every member with no downtime.
    let new_key = String::from_utf8(vigil(&["keygen"]).stdout)
        .unwrap()
        .trim()
        .to_owned();
    let addr = format!("http://{}", a.addr);
    for step in ["install", "use"] {
        let out = vigil(&["keyring", step, &new_key, "--addr", &addr, "--all"]);
        assert!(
            out.status.success(),
            "keyring {step}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = vigil(&["keyring", "remove", &key, "--addr", &addr, "--all"]);
    assert!(
        out.status.success(),
        "keyring remove: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = vigil(&["keyring", "list", "--addr", &addr, "--all"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(
        listed.lines().filter(|l| l.ends_with("yes")).count(),
        3,
        "one primary key per agent: {listed}"
    );
    assert_eq!(
        listed.lines().count(),
        4,
        "header and one key per agent: {listed}"
    );
    for agent in [&a, &b, &c] {
        let (_, members) = agent.get("/v1/members");
        assert!(
            abc_alive(&members),
            "nobody was lost while rotating: {members}"
        );
    }

    let mut events = EventStream::open(a.addr);
    c.child.kill().unwrap();
    c.child.wait().unwrap();
    let want = [("a", "alive"), ("b", "alive"), ("c", "dead")]
        .map(|(id, state)| (id.to_owned(), state.to_owned()));
    for agent in [&a, &b] {
        agent.wait_until(
            "/v1/members",
            Duration::from_secs(20),
            "c declared dead",
            |_, m| member_states(m) == want,
        );
    }
    // What a dead member last said of its health is stale: the CLI shows none.
    let members = vigil(&["members", "--addr", &addr]);
    let watch = vigil(&["watch", "--addr", &addr, "--count", "1"]);
    for (command, out) in [("members", members), ("watch", watch)] {
        let table = String::from_utf8_lossy(&out.stdout);
        let dead = table
            .lines()
            .find(|l| l.starts_with("c ") && l.contains(" dead "))
            .unwrap_or_else(|| panic!("vigil {command} lists c dead:\n{table}"));
        let cells: Vec<&str> = dead.split_whitespace().collect();
        assert_eq!(
            &cells[1..4],
            ["dead", "–", "–"],
            "vigil {command}: no health nor score for a dead member: {dead}"
        );
    }

    let (_, status) = a.get("/cluster/status");
    assert_eq!(status["hasQuorum"], true, "2 of 3 voters remain");
    assert_eq!(status["membership"]["c"]["status"], "DEAD");
    let (_, strangers_view) = stranger.get("/v1/members");
    assert!(
        member_states(&strangers_view)
            .iter()
            .all(|(id, _)| id == "stranger"),
        "{strangers_view}"
    );
    assert!(
        events.wait_for("event: member_down", Duration::from_secs(10)),
        "member_down streamed to /v1/events"
    );
    let (_, metrics) = http(a.addr, "GET", "/metrics", None, "").unwrap();
    assert!(
        metrics.contains("vigil_cluster_failures_detected_total 1"),
        "metrics count the failure"
    );
}
