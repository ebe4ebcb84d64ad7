//! Agents forming a cluster over real UDP and TCP on 127.0.0.1, seen through their API and CLI.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{free_port, vigil, wait_for, Agent};

/// A client of `/v1/events` reading the stream as it comes.
struct EventStream {
    stream: TcpStream,
    seen: String,
}

impl EventStream {
    fn open(addr: SocketAddr) -> Self {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(stream, "GET /v1/events HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        EventStream {
            stream,
            seen: String::new(),
        }
    }

    /// Reads until `needle` has arrived, for at most `limit`.
    fn wait_for(&mut self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        while !self.seen.contains(needle) && Instant::now() < deadline {
            if let Ok(n) = self.stream.read(&mut buf) {
                self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
        self.seen.contains(needle)
    }
}

/// Fast protocol timings so failures are detected within a test's patience.
const FAST: &str = r#"
heartbeat_interval = "100ms"
phi_min_std_dev = "50ms"
probe_timeout = "200ms"
suspicion_min = "400ms"
suspicion_max = "2s"
gossip_interval = "50ms"
"#;

fn agent(id: &str, gossip: u16, seed: u16, key: Option<&str>) -> Agent {
    let key = key.map(|k| format!("key = \"{k}\"\n")).unwrap_or_default();
    let config = format!(
        "[node]\nid = \"{id}\"\n[api]\nbind = \"127.0.0.1:{{port}}\"\n[cluster]\nbind = \"127.0.0.1:{gossip}\"\nseeds = [\"127.0.0.1:{seed}\"]\nrole = \"voter\"\nvoters = [\"a\", \"b\", \"c\"]\n{key}{FAST}"
    );
    Agent::start(&config)
}

fn states(agent: &Agent) -> Vec<(String, String)> {
    let (_, body) = agent.get("/v1/members");
    let mut out: Vec<(String, String)> = body["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["id"].as_str().unwrap_or_default().to_owned(),
                m["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn all_alive(ids: &[&str]) -> Vec<(String, String)> {
    ids.iter()
        .map(|id| (id.to_string(), "alive".to_owned()))
        .collect()
}

#[test]
fn three_agents_form_a_cluster_and_see_a_killed_one_dead() {
    let key = vigil(&["keygen"]);
    let key = String::from_utf8(key.stdout).unwrap().trim().to_owned();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let a = agent("a", ports[0], ports[0], Some(&key));
    let b = agent("b", ports[1], ports[0], Some(&key));
    let mut c = agent("c", ports[2], ports[0], Some(&key));

    for agent in [&a, &b, &c] {
        wait_for(Duration::from_secs(20), || {
            (states(agent) == all_alive(&["a", "b", "c"])).then_some(())
        })
        .unwrap_or_else(|| panic!("converged: {:?}", states(agent)));
    }
    // On voters, `hasQuorum` is Raft's: true once a leader is in touch with a majority.
    let status = wait_for(Duration::from_secs(20), || {
        let (_, status) = b.get("/cluster/status");
        (status["hasQuorum"] == true).then_some(status)
    })
    .expect("the voters elect a leader and b hears from it");
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

    let table = vigil(&["members", "--addr", &format!("http://{}", a.addr)]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.lines().filter(|l| l.contains(" alive ")).count() == 3,
        "{table}"
    );

    // A node with another key never shows up.
    let stranger_key = String::from_utf8(vigil(&["keygen"]).stdout)
        .unwrap()
        .trim()
        .to_owned();
    let stranger = agent("stranger", free_port(), ports[0], Some(&stranger_key));

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
        assert_eq!(
            states(agent),
            all_alive(&["a", "b", "c"]),
            "nobody was lost while rotating"
        );
    }

    let mut events = EventStream::open(a.addr);
    c.child.kill().unwrap();
    c.child.wait().unwrap();
    for agent in [&a, &b] {
        let want = vec![
            ("a".to_owned(), "alive".to_owned()),
            ("b".to_owned(), "alive".to_owned()),
            ("c".to_owned(), "dead".to_owned()),
        ];
        wait_for(Duration::from_secs(20), || {
            (states(agent) == want).then_some(())
        })
        .unwrap_or_else(|| panic!("c declared dead: {:?}", states(agent)));
    }
    let (_, status) = a.get("/cluster/status");
    assert_eq!(status["hasQuorum"], true, "2 of 3 voters remain");
    assert_eq!(status["membership"]["c"]["status"], "DEAD");
    assert!(
        states(&stranger).iter().all(|(id, _)| id == "stranger"),
        "{:?}",
        states(&stranger)
    );
    assert!(
        events.wait_for("event: member_down", Duration::from_secs(10)),
        "member_down streamed to /v1/events"
    );
    let (_, metrics) = common::http(a.addr, "GET", "/metrics", None, "").unwrap();
    assert!(
        metrics.contains("vigil_cluster_failures_detected_total 1"),
        "metrics count the failure"
    );
}
