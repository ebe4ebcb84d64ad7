//! Elections and locks for users' services, across real `vigil agent` processes on 127.0.0.1
//! (three voters) and real `vigil elect` processes beside them, each in a process group of its
//! own that the tests kill or stop as a whole, the way a machine loses a service.
//!
//! What a user would notice: one leader at a time, the command run only by the leader with its
//! fencing token, each handover to the next candidate with a higher token — on a killed leader
//! (through its closed connection, long before its TTL), a stopped one (after its TTL), and one
//! whose instance turns critical — and `lowest-id` with and without preemption.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::cluster::EventStream;
use common::raft::{agreed_leader, three_voters, Node, SETTLE, VOTERS};
use common::{free_port, http, wait_for, TOKEN};
use serde_json::Value;

/// A `vigil elect` process.
struct Candidate {
    child: Child,
}

impl Candidate {
    /// Starts `vigil elect head --id ID` against `node`'s agent, its command appending
    /// `start ID TOKEN` to `record` when it starts and `stop ID TOKEN` when it is stopped.
    fn start(node: &Node, id: &str, record: &Path, flags: &[&str]) -> Candidate {
        let script = format!(
            r#"echo "start $VIGIL_CANDIDATE_ID $VIGIL_FENCING_TOKEN" >> {record}
trap 'echo "stop $VIGIL_CANDIDATE_ID $VIGIL_FENCING_TOKEN" >> {record}; exit 0' TERM
while true; do sleep 0.05; done"#,
            record = record.display()
        );
        let log = std::fs::File::create(record.with_extension(format!("{id}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["elect", "head", "--id", id, "--grace", "2s"])
            .args(flags)
            .args(["--addr", &format!("http://{}", node.api), "--token", TOKEN])
            .args(["--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own group, so the test can stop or kill it with its command, as a machine
            // would lose both.
            .process_group(0)
            .spawn()
            .unwrap();
        Candidate { child }
    }

    /// Sends `signal` (`-STOP`, `-KILL`...) to the candidate's whole group.
    fn signal_group(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .status()
            .unwrap();
        assert!(
            status.success(),
            "kill {signal} of group {}",
            self.child.id()
        );
    }

    fn kill(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal_group("-KILL");
        }
        let _ = self.child.wait();
    }
}

impl Drop for Candidate {
    fn drop(&mut self) {
        self.kill();
    }
}

fn record(dir: &Path) -> PathBuf {
    dir.join("record")
}

/// The lines of the record.
fn lines(record: &Path) -> Vec<String> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The fencing token of the last `start` line of `id`, once there is one.
fn started(record: &Path, id: &str) -> Option<u64> {
    lines(record)
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix(&format!("start {id} ")))
        .and_then(|t| t.parse().ok())
}

/// The election as `node` answers it.
fn election(node: &Node) -> Option<Value> {
    let (code, body) = node.get("/v1/elections/head")?;
    (code == 200).then_some(body)
}

/// The leader's id and token as `node` answers, once there is one.
fn leader_of(node: &Node) -> Option<(String, u64)> {
    let body = election(node)?;
    let leader = &body["leader"];
    Some((leader["id"].as_str()?.to_owned(), leader["token"].as_u64()?))
}

/// Waits until every node names `id` as the leader; its token.
fn wait_leader(nodes: &[Node], id: &str, what: &str) -> u64 {
    let mut token = 0;
    for node in nodes.iter().filter(|n| n.child.is_some()) {
        token = wait_for(SETTLE, || {
            let (leader, token) = leader_of(node)?;
            (leader == id).then_some(token)
        })
        .unwrap_or_else(|| panic!("{what}: {} names {:?}", node.id, election(node)));
    }
    token
}

/// Only one candidate's command runs at a time: every `start` after the first follows the
/// `stop` of the one before it, or that one's process was killed with it (`killed`).
fn one_at_a_time(record: &Path, killed: &[&str]) {
    let mut running: Option<String> = None;
    let mut tokens = Vec::new();
    for line in lines(record) {
        let mut words = line.split(' ');
        let (what, id, token) = (words.next(), words.next(), words.next());
        match (what, id) {
            (Some("start"), Some(id)) => {
                if let Some(other) = &running {
                    assert!(
                        killed.contains(&other.as_str()),
                        "{id} started while {other} ran: {:?}",
                        lines(record)
                    );
                }
                running = Some(id.to_owned());
                tokens.push(token.and_then(|t| t.parse::<u64>().ok()).unwrap());
            }
            (Some("stop"), Some(id)) if running.as_deref() == Some(id) => running = None,
            _ => {}
        }
    }
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "tokens strictly increase: {tokens:?}"
    );
}

#[test]
fn a_killed_leader_hands_over_at_once_and_a_stopped_one_after_its_ttl() {
    let (nodes, _, dir) = three_voters("elect-kill");
    agreed_leader(&nodes);
    let record = record(&dir);
    // A TTL of a minute: a handover within the test's bound can only come from the closed
    // connection of the killed candidate, not from its TTL running out.
    let mut first = Candidate::start(&nodes[0], "head-a", &record, &["--ttl", "60s"]);
    let t1 = wait_leader(&nodes, "head-a", "the only candidate leads");
    wait_for(SETTLE, || started(&record, "head-a")).expect("head-a's command runs");
    let second = Candidate::start(&nodes[1], "head-b", &record, &["--ttl", "2s"]);
    wait_for(SETTLE, || {
        let body = election(&nodes[2])?;
        (body["candidates"].as_array()?.len() == 2).then_some(())
    })
    .expect("head-b waits in line");
    assert_eq!(leader_of(&nodes[1]).unwrap(), ("head-a".to_owned(), t1));

    first.kill();
    let t2 = wait_leader(&nodes, "head-b", "head-a's connection closed");
    assert!(t2 > t1, "a new leader has a higher token: {t1} then {t2}");
    assert_eq!(
        wait_for(SETTLE, || started(&record, "head-b")),
        Some(t2),
        "head-b's command runs with its token"
    );

    // A third candidate waits behind head-b; head-b stops (a hung machine): after its TTL of
    // 2 s without renewals, head-c leads, and head-b, resumed, stops its command.
    let third = Candidate::start(&nodes[2], "head-c", &record, &["--ttl", "2s"]);
    wait_for(SETTLE, || {
        (election(&nodes[0])?["candidates"].as_array()?.len() == 2).then_some(())
    })
    .expect("head-c waits in line");
    second.signal_group("-STOP");
    let t3 = wait_leader(&nodes, "head-c", "head-b stopped renewing");
    assert!(t3 > t2, "{t2} then {t3}");
    second.signal_group("-CONT");
    wait_for(SETTLE, || {
        lines(&record)
            .contains(&format!("stop head-b {t2}"))
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "head-b stops its command once resumed: {:?}",
            lines(&record)
        )
    });
    one_at_a_time(&record, &["head-a", "head-b"]);
    drop(third);
}

#[test]
fn lowest_id_takes_over_only_with_preempt_and_a_critical_instance_hands_over() {
    let (nodes, _, dir) = three_voters("elect-lowest");
    agreed_leader(&nodes);
    let record = record(&dir);
    for (node, id) in [(&nodes[0], "1"), (&nodes[1], "2")] {
        let body = format!(
            r#"{{"name": "head", "id": "{id}", "address": "127.0.0.1", "port": 9, "checks": [{{"name": "alive", "probe": "ttl", "ttl": "1h"}}]}}"#
        );
        let (code, answer) = http(node.api, "POST", "/v1/services", Some(TOKEN), &body).unwrap();
        assert!(code == 201 || code == 200, "{code} {answer}");
        pass(node, id, "pass");
    }
    let flags = |instance: &'static str| {
        [
            "--policy",
            "lowest-id",
            "--preempt",
            "--ttl",
            "3s",
            "--instance",
            instance,
        ]
    };
    let _two = Candidate::start(&nodes[1], "head_server_2", &record, &flags("head/2"));
    let t1 = wait_leader(&nodes, "head_server_2", "the only candidate leads");
    let _one = Candidate::start(&nodes[0], "head_server_1", &record, &flags("head/1"));
    let t2 = wait_leader(&nodes, "head_server_1", "a lower id preempts");
    assert!(t2 > t1);

    // head/1's check fails: its session is given up, head_server_1 yields at once (before its
    // TTL) and head_server_2 leads.
    pass(&nodes[0], "1", "fail");
    let t3 = wait_leader(&nodes, "head_server_2", "head/1 turned critical");
    assert!(t3 > t2);
    // It passes again: head_server_1 stands again and, with preempt, takes over.
    pass(&nodes[0], "1", "pass");
    let t4 = wait_leader(&nodes, "head_server_1", "head/1 is healthy again");
    assert!(t4 > t3);
    one_at_a_time(&record, &[]);
}

/// Sends `verdict` to the TTL check of instance `head/ID` through `node`, once `node` has applied
/// its registration (a registration is acknowledged by the leader before every agent has it).
fn pass(node: &Node, id: &str, verdict: &str) {
    let path = format!("/v1/services/head/{id}/{verdict}");
    let answered = wait_for(SETTLE, || {
        let (code, body) = http(node.api, "PUT", &path, Some(TOKEN), "").ok()?;
        (code != 404).then_some((code, body))
    });
    let (code, body) = answered.unwrap_or_else(|| panic!("{} never knew head/{id}", node.id));
    assert_eq!(code, 200, "{body}");
}

#[test]
fn locks_grant_in_order_with_tokens_and_bad_input_is_named() {
    let (mut nodes, _, _dir) = three_voters("locks");
    agreed_leader(&nodes);
    let mut events = EventStream::open(nodes[2].api);
    let call = |node: &Node, method: &str, path: &str, body: &str| -> (u16, Value) {
        let (code, body) = http(node.api, method, path, Some(TOKEN), body).unwrap();
        (code, serde_json::from_str(&body).unwrap_or(Value::Null))
    };
    let session = |node: &Node| -> String {
        let (code, body) = call(node, "POST", "/v1/sessions", r#"{"ttl": "30s"}"#);
        assert_eq!(code, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    };
    let (a, b) = (session(&nodes[0]), session(&nodes[1]));
    let (code, got) = call(
        &nodes[0],
        "POST",
        "/v1/locks/db",
        &format!(r#"{{"session": "{a}"}}"#),
    );
    assert_eq!(code, 200, "{got}");
    assert_eq!(got["holding"], true);
    let first = got["token"].as_u64().unwrap();
    let (code, got) = call(
        &nodes[1],
        "POST",
        "/v1/locks/db",
        &format!(r#"{{"session": "{b}"}}"#),
    );
    assert_eq!(code, 200, "{got}");
    assert_eq!(got["holding"], false, "one holder at a time: {got}");
    let (code, _) = call(&nodes[2], "DELETE", &format!("/v1/sessions/{a}"), "");
    assert_eq!(code, 200);
    let token = wait_for(SETTLE, || {
        let (_, body) = nodes[2].get("/v1/locks/db")?;
        let holder = &body["holders"][0];
        (holder["id"] == b.as_str()).then(|| holder["token"].as_u64())?
    })
    .expect("ending a session releases what it holds: b holds the lock");
    assert!(token > first);
    assert!(
        events.wait_for(&format!("\"token\":{token}"), SETTLE),
        "a lock_changed event tells of the new holder: {}",
        events.seen
    );
    assert!(
        events.seen.contains("event: lock_changed"),
        "{}",
        events.seen
    );

    for (path, body, what) in [
        ("/v1/sessions", r#"{"ttl": "1ms"}"#, "ttl"),
        ("/v1/sessions", r#"{"instance": "nope"}"#, "instance"),
        (
            "/v1/elections/head/campaign",
            r#"{"candidate": "", "session": "x"}"#,
            "candidate",
        ),
        (
            "/v1/elections/head/campaign",
            r#"{"candidate": "c", "session": "unknown"}"#,
            "no session",
        ),
        ("/v1/locks/db", r#"{"session": "x", "limit": 0}"#, "limit"),
    ] {
        let (code, answer) = call(&nodes[0], "POST", path, body);
        assert_eq!(code, 400, "{path} {body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(what), "{path} {body}: {error}");
    }
    let long = "x".repeat(201);
    let (code, _) = call(
        &nodes[0],
        "POST",
        &format!("/v1/elections/{long}/campaign"),
        &format!(r#"{{"candidate": "c", "session": "{b}"}}"#),
    );
    assert_eq!(code, 400, "a name over 200 characters");

    // Two voters gone: the one left has no quorum and grants nothing.
    let leader = agreed_leader(&nodes);
    let survivor = (leader + 1) % 3;
    for (i, node) in nodes.iter_mut().enumerate() {
        if i != survivor {
            node.kill();
        }
    }
    let refused = wait_for(SETTLE, || {
        let (code, body) = call(
            &nodes[survivor],
            "POST",
            "/v1/elections/head/campaign",
            &format!(r#"{{"candidate": "c", "session": "{b}"}}"#),
        );
        (code == 503).then_some(body)
    })
    .expect("a minority refuses campaigns");
    assert!(
        refused["error"].as_str().unwrap().contains("no quorum"),
        "{refused}"
    );
}

#[test]
fn vigil_lock_runs_one_holder_at_a_time() {
    let (nodes, _, dir) = three_voters("lock-cli");
    agreed_leader(&nodes);
    let record = record(&dir);
    let lock = |node: &Node, holder: &str| {
        let script = format!(
            r#"echo "start {holder} $VIGIL_FENCING_TOKEN" >> {record}; while true; do sleep 0.05; done"#,
            record = record.display()
        );
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["lock", "db-migration", "--holder", holder, "--ttl", "60s"])
            .args(["--addr", &format!("http://{}", node.api), "--token", TOKEN])
            .args(["--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map(|child| Candidate { child })
            .unwrap()
    };
    let mut first = lock(&nodes[0], "a");
    let t1 = wait_for(SETTLE, || started(&record, "a")).expect("a holds the lock");
    let _second = lock(&nodes[1], "b");
    wait_for(SETTLE, || {
        let (_, body) = nodes[2].get("/v1/locks/db-migration")?;
        (body["candidates"].as_array()?.len() == 2).then_some(())
    })
    .expect("b waits for the lock");
    assert_eq!(started(&record, "b"), None, "one holder at a time");
    first.kill();
    let t2 = wait_for(SETTLE, || started(&record, "b")).expect("b holds it once a is gone");
    assert!(t2 > t1, "{t1} then {t2}");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["locks", "--addr", &format!("http://{}", nodes[2].api)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("db-migration") && stdout.contains(&t2.to_string()),
        "vigil locks shows the holder's token: {stdout}"
    );
}

#[test]
fn a_leader_whose_node_dies_stops_at_once_and_the_next_leads_after_its_ttl() {
    let (nodes, ports, dir) = three_voters("elect-node-dies");
    agreed_leader(&nodes);
    let mut member = Node::start("m1", &dir, free_port(), &ports, false, &VOTERS);
    let record = record(&dir);
    let _first = Candidate::start(&member, "head-a", &record, &["--ttl", "5s"]);
    let t1 = wait_leader(&nodes, "head-a", "the candidate beside the member leads");
    wait_for(SETTLE, || started(&record, "head-a")).expect("head-a's command runs");
    let _second = Candidate::start(&nodes[0], "head-b", &record, &["--ttl", "5s"]);
    wait_for(SETTLE, || {
        (election(&nodes[1])?["candidates"].as_array()?.len() == 2).then_some(())
    })
    .expect("head-b waits in line");

    // The member's agent dies: head-a's connection to it breaks, so head-a stops its command at
    // once; the cluster hands over once head-a's session can no longer have been renewed.
    member.kill();
    wait_for(SETTLE, || {
        lines(&record)
            .contains(&format!("stop head-a {t1}"))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("head-a stops its command: {:?}", lines(&record)));
    let t2 = wait_leader(&nodes, "head-b", "head-a's node died");
    assert!(t2 > t1, "{t1} then {t2}");
    one_at_a_time(&record, &[]);
}
