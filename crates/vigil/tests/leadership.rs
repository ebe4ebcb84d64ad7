//! Leadership and the service registry across real `vigil agent` processes on 127.0.0.1:
//! three voters running Raft, killed with SIGKILL, restarted on their stores, made unhealthy,
//! cut down to a minority; a plain member registering ephemeral instances; a voter's Raft port
//! flooded by strangers.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::EventStream;
use common::raft::{agreed_leader, scratch, three_voters, Node, SETTLE, VOTERS};
use common::tools::{feed, promtool_accepts};
use common::{free_port, http, http_head, vigil, wait_for, TOKEN, VIGIL};
use serde_json::Value;

#[test]
fn three_voters_elect_one_leader_and_replicate_the_registry() {
    let (nodes, _, _) = three_voters("elect");
    let leader = agreed_leader(&nodes);
    let follower = &nodes[(leader + 1) % 3];

    let body = nodes[leader].leader().unwrap();
    assert_eq!(body["api_address"], nodes[leader].api.to_string());
    assert!(
        body["since"].is_string()
            || wait_for(SETTLE, || nodes[leader]
                .leader()
                .filter(|l| l["since"].is_string()))
            .is_some()
    );

    // A write sent to a follower is passed on to the leader and acknowledged.
    let (code, reply) = follower.register("api", "api-1", r#", "tags": ["blue"]"#);
    assert_eq!(code, 201, "{reply}");
    assert_eq!(reply["registered"]["node"], follower.id.as_str());
    // A consistent read anywhere sees it at once; plain reads on every voter soon after.
    assert_eq!(
        follower.instances("api", true),
        Some(vec!["api-1".to_owned()])
    );
    for node in &nodes {
        wait_for(SETTLE, || {
            (node.instances("api", false)? == ["api-1"]).then_some(())
        })
        .unwrap_or_else(|| panic!("{} replicates the registration", node.id));
        let (code, body) = node.get("/v1/services").unwrap();
        assert_eq!(code, 200);
        let instance = &body["services"]["api"][0];
        assert_eq!(instance["port"], 8080);
        assert_eq!(instance["tags"][0], "blue");
        assert!(instance["health"]["status"].is_string(), "{instance}");
    }
    let (code, headers) = http_head(follower.api, "/v1/services").unwrap();
    assert_eq!(code, 200);
    assert!(
        headers.to_ascii_lowercase().contains("x-vigil-stale-ms: "),
        "{headers}"
    );

    // Writes need the token, and a bad body is a 400 naming the problem.
    let (code, _) = http(follower.api, "POST", "/v1/services", None, "{}").unwrap();
    assert_eq!(code, 401);
    let (code, body) = http(
        follower.api,
        "POST",
        "/v1/services",
        Some(TOKEN),
        r#"{"name": "x"}"#,
    )
    .unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("missing field"), "{body}");

    // A deregistration goes through once; the same one again finds nothing.
    let deregister = || {
        http(
            follower.api,
            "DELETE",
            "/v1/services/api/api-1",
            Some(TOKEN),
            "",
        )
        .unwrap()
    };
    let (code, body) = deregister();
    assert_eq!(code, 200, "{body}");
    let (code, _) = deregister();
    assert_eq!(code, 404);
    assert_eq!(nodes[leader].instances("api", true), Some(vec![]));

    // The CLI: `vigil leader`, and the console driven through a pipe.
    let base = format!("http://{}", follower.api);
    let out = vigil(&["leader", "--addr", &base, "--json"]);
    assert!(out.status.success());
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["leader_id"], nodes[leader].id.as_str());
    let out = vigil(&["leader", "--addr", &base]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&nodes[leader].id));
    let (stdout, stderr) = console(
        &base,
        "help\nregister web 10.0.0.9 80\nregister web nowhere\nservices\nleader\nmembers\nstatus\nfrobnicate\nquit\n",
    );
    assert!(stdout.contains("register NAME ADDR PORT"), "{stdout}");
    assert!(
        stdout.contains("registered web instance 10.0.0.9:80"),
        "{stdout}"
    );
    assert!(stdout.contains("10.0.0.9:80"), "{stdout}");
    assert!(stdout.contains(&nodes[leader].id), "{stdout}");
    assert!(
        stderr.contains("usage: register NAME ADDR PORT"),
        "{stderr}"
    );
    assert!(
        stderr.contains("unknown command \"frobnicate\""),
        "{stderr}"
    );
    assert_eq!(
        nodes[leader].instances("web", true),
        Some(vec!["10.0.0.9:80".to_owned()])
    );

    let (_, metrics) = http(nodes[leader].api, "GET", "/metrics", None, "").unwrap();
    assert!(
        metrics.contains("vigil_leader_is_leader 1"),
        "metrics mark the leader"
    );
    assert!(
        metrics.contains("vigil_leader_changes_total"),
        "metrics count leader changes"
    );
    promtool_accepts(&metrics);
}

/// Runs `vigil console` against `base` with `script` on its stdin; returns (stdout, stderr).
fn console(base: &str, script: &str) -> (String, String) {
    let home = scratch("console-home");
    let out = feed(
        Command::new(VIGIL)
            .args(["console", "--addr", base, "--token", TOKEN])
            .env("HOME", &home),
        script,
    );
    let _ = std::fs::remove_dir_all(&home);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn killing_the_leader_elects_another_that_takes_writes() {
    let (mut nodes, _, _) = three_voters("failover");
    let first = agreed_leader(&nodes);
    let (code, body) = nodes[first].register("db", "db-1", "");
    assert_eq!(code, 201, "{body}");
    let old_term = nodes[first].leader().unwrap()["term"].as_u64().unwrap();

    nodes[first].kill();
    let second = agreed_leader(&nodes);
    assert_ne!(second, first);
    let new = nodes[second].leader().unwrap();
    assert!(new["term"].as_u64().unwrap() > old_term, "{new}");
    // The survivors learned that the leader's process was gone (its Raft port refused them)
    // rather than waiting out its lease, and the new leader stood for election on that.
    let said = |node: &Node, what: &str| {
        std::fs::read_to_string(&node.log).is_ok_and(|log| log.contains(what))
    };
    for survivor in (0..3).filter(|i| *i != first) {
        assert!(
            said(
                &nodes[survivor],
                "the leader's Raft port refuses connections: its process is gone"
            ),
            "{} did not find the leader's process gone",
            nodes[survivor].id
        );
    }
    assert!(
        said(
            &nodes[second],
            "the leader's process is gone and a majority would vote"
        ),
        "the new leader stood for election after the lease instead"
    );
    let (code, body) = nodes[second].register("db", "db-2", "");
    assert_eq!(code, 201, "{body}");
    let survivor = &nodes[3 - first - second];
    assert_eq!(
        survivor.instances("db", true),
        Some(vec!["db-1".to_owned(), "db-2".to_owned()]),
        "acknowledged writes survive the leader"
    );
}

/// A voter whose store is lost comes back empty under its own id while the others still count it
/// (a lost Kubernetes volume, say): the leader's openraft then stops for good, as it refuses to see
/// a follower's log go back. That leader exits with a failure, for its supervisor to start it
/// again, instead of going on telling clients that it leads; the other two elect a leader that
/// takes writes, and the one restarted rejoins with everything acknowledged.
#[test]
fn a_leader_whose_raft_stops_exits_and_the_others_go_on() {
    let (mut nodes, _, dir) = three_voters("raft-stops");
    let first = agreed_leader(&nodes);
    for i in 0..3 {
        let (code, body) = nodes[first].register("db", &format!("db-{i}"), "");
        assert_eq!(code, 201, "{body}");
    }
    let wiped = (first + 1) % 3;
    nodes[wiped].kill();
    std::fs::remove_dir_all(dir.join(&nodes[wiped].id).join("raft")).unwrap();
    nodes[wiped].spawn();

    let exited = wait_for(SETTLE, || {
        nodes[first]
            .child
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    })
    .expect("the leader whose Raft server stopped exits");
    assert!(!exited.success(), "it exits with a failure: {exited}");
    let log = std::fs::read_to_string(&nodes[first].log).unwrap_or_default();
    assert!(
        log.contains("this node's Raft server stopped"),
        "the leader says why it stops"
    );
    nodes[first].child = None;

    let second = agreed_leader(&nodes);
    assert_ne!(second, first);
    let (code, body) = nodes[second].register("db", "db-3", "");
    assert_eq!(code, 201, "{body}");
    nodes[first].spawn();
    let want: Vec<String> = (0..4).map(|i| format!("db-{i}")).collect();
    wait_for(SETTLE, || {
        (nodes[first].instances("db", false)? == want).then_some(())
    })
    .expect("the restarted leader has every acknowledged write");
}

#[test]
fn an_unhealthy_leader_hands_over_to_a_healthy_voter() {
    let (nodes, _, _) = three_voters("handover");
    let first = agreed_leader(&nodes);
    let mut events = EventStream::open(nodes[(first + 1) % 3].api);

    nodes[first].put_check("fail");
    let second = wait_for(SETTLE, || {
        let i = agreed_leader(&nodes);
        (i != first).then_some(i)
    })
    .expect("a healthy voter takes over");
    assert_eq!(nodes[first].leader().unwrap()["is_leader"], false);
    assert!(
        events.wait_for(
            &format!("\"leader_id\":\"{}\"", nodes[second].id),
            Duration::from_secs(10)
        ),
        "leader_changed streamed: {}",
        events.seen
    );
    // While it stays unhealthy it does not campaign: it is never the leader again.
    let (code, body) = nodes[first].register("web", "w1", "");
    assert_eq!(code, 201, "the unhealthy voter passes writes on: {body}");
    assert_eq!(agreed_leader(&nodes), second);
}

#[test]
fn a_minority_voter_rejects_writes_and_serves_stale_reads() {
    let (mut nodes, _, _) = three_voters("minority");
    let leader = agreed_leader(&nodes);
    let (code, _) = nodes[leader].register("cache", "c1", "");
    assert_eq!(code, 201);
    let lone = (leader + 1) % 3;
    wait_for(SETTLE, || {
        (nodes[lone].instances("cache", false)? == ["c1"]).then_some(())
    })
    .expect("replicated");
    for (i, node) in nodes.iter_mut().enumerate() {
        if i != lone {
            node.kill();
        }
    }
    let lone = &nodes[lone];
    let (code, body) = wait_for(SETTLE, || {
        let (code, body) = lone.register("cache", "c2", "");
        (code == 503).then_some((code, body))
    })
    .expect("writes fail once the majority is gone");
    assert_eq!(code, 503);
    assert!(
        body["error"].as_str().unwrap().starts_with("no quorum: "),
        "{body}"
    );
    assert_eq!(
        lone.instances("cache", false),
        Some(vec!["c1".to_owned()]),
        "reads still served, nothing half-applied"
    );
    let (code, headers) = http_head(lone.api, "/v1/services/cache").unwrap();
    assert_eq!(code, 200);
    assert!(
        headers.to_ascii_lowercase().contains("x-vigil-stale-ms: "),
        "{headers}"
    );
    let (code, body) = lone.get("/v1/services/cache?consistent").unwrap();
    assert_eq!(code, 503, "{body}");
    wait_for(SETTLE, || {
        (lone.get("/cluster/status")?.1["hasQuorum"] == false).then_some(())
    })
    .expect("hasQuorum turns false with Raft's view");
}

#[test]
fn voters_killed_and_restarted_keep_what_they_acknowledged() {
    let (mut nodes, _, _) = three_voters("restart");
    let leader = agreed_leader(&nodes);
    for i in 0..5 {
        let (code, body) = nodes[leader].register("queue", &format!("q{i}"), "");
        assert_eq!(code, 201, "{body}");
    }
    for node in nodes.iter_mut() {
        node.kill();
    }
    for node in nodes.iter_mut() {
        node.spawn();
    }
    let leader = agreed_leader(&nodes);
    let want: Vec<String> = (0..5).map(|i| format!("q{i}")).collect();
    assert_eq!(nodes[leader].instances("queue", true), Some(want.clone()));
    for node in &nodes {
        wait_for(SETTLE, || {
            (node.instances("queue", false)? == want).then_some(())
        })
        .unwrap_or_else(|| panic!("{} recovered its registry", node.id));
    }
}

#[test]
fn an_ephemeral_instance_goes_with_its_node() {
    let (nodes, ports, dir) = three_voters("ephemeral");
    agreed_leader(&nodes);
    let mut member = Node::start("m1", &dir, free_port(), &ports, false, &VOTERS);
    let (code, body) = member.register("worker", "w-eph", r#", "ephemeral": true"#);
    assert_eq!(
        code, 201,
        "a member's write is passed on to the leader: {body}"
    );
    let (code, body) = member.register("worker", "w-kept", "");
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        member.instances("worker", true),
        Some(vec!["w-eph".to_owned(), "w-kept".to_owned()])
    );

    member.kill();
    for node in &nodes {
        wait_for(SETTLE, || {
            (node.instances("worker", false)? == ["w-kept"]).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "{} dropped the ephemeral instance: {:?}",
                node.id,
                node.instances("worker", false)
            )
        });
    }
    let (_, body) = nodes[0].get("/v1/services").unwrap();
    assert_eq!(body["nodes"]["m1"]["status"], "dead", "{body}");
}

/// The resident set of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Keeps one connection to `target`, from the loopback address `from`, announcing the largest
/// Raft frame and sending its bytes as fast as they are taken, until `until`; dials again
/// whenever the agent drops it.
async fn flood_raft(from: std::net::IpAddr, target: SocketAddr, until: tokio::time::Instant) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let junk = vec![0x5a_u8; 64 << 10];
    while tokio::time::Instant::now() < until {
        let attack = async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(from, 0))?;
            let mut stream = socket.connect(target).await?;
            stream.write_all(&(16u32 << 20).to_be_bytes()).await?;
            for _ in 0..(16 << 20) / junk.len() - 1 {
                stream.write_all(&junk).await?;
            }
            let mut sink = [0u8; 512];
            while stream.read(&mut sink).await? > 0 {}
            std::io::Result::Ok(())
        };
        if tokio::time::timeout_at(until, attack).await.is_ok() {
            // Straight back, as a real attacker would, but not in a hot loop.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[test]
fn a_flood_on_the_raft_port_pins_no_memory_and_stops_no_write() {
    let (nodes, _, _) = three_voters("raft-flood");
    let leader = agreed_leader(&nodes);
    let target = &nodes[leader];
    let (_, status) = target.get("/cluster/status").unwrap();
    let raft: SocketAddr = status["membership"][&target.id]["tags"]["raft"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let pid = target.child.as_ref().unwrap().id();
    let before = rss_kib(pid);

    // 128 strangers without the key, from loopback addresses of their own, for 5 s.
    let flood = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let until = tokio::time::Instant::now() + Duration::from_secs(5);
            let attackers: Vec<_> = (0..128u8)
                .map(|n| {
                    let from = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 1, n % 4 + 2));
                    tokio::spawn(flood_raft(from, raft, until))
                })
                .collect();
            for attacker in attackers {
                attacker.await.unwrap();
            }
        })
    });
    let mut peak = before;
    let mut written = 0;
    while !flood.is_finished() {
        let (code, body) = target.register("flooded", &format!("f{written}"), "");
        assert_eq!(code, 201, "a write during the flood: {body}");
        written += 1;
        peak = peak.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(50));
    }
    flood.join().unwrap();
    peak = peak.max(rss_kib(pid));
    println!(
        "FIGURE raft flood on an agent: resident set {before} KiB before, {peak} KiB at the peak; \
         {written} writes, all acknowledged"
    );
    assert!(written > 10, "only {written} writes");
    assert!(
        peak < before + (64 << 10),
        "the flood pinned memory: {before} KiB before, {peak} KiB at the peak"
    );
    assert_eq!(agreed_leader(&nodes), leader, "the leader kept office");
}

/// A small deterministic generator (xorshift64*), so a failing seed replays the same schedule.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// What a node can be put through.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Fate {
    Running,
    Killed,
    Paused,
}

/// Kills, restarts, pauses and resumes voters in a random order for a bounded time while
/// writing to whichever node is up; checks that no term ever had two leaders, that every
/// acknowledged write survives, and that all registries end identical.
fn faults(seed: u64) {
    let (mut nodes, _, _) = three_voters(&format!("faults-{seed}"));
    agreed_leader(&nodes);
    let mut dice = Dice(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut fates = [Fate::Running; 3];
    let mut acknowledged = BTreeSet::new();
    let mut leaders: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    let mut schedule = Vec::new();
    let mut next_fault = Instant::now();
    let end = Instant::now() + Duration::from_secs(12);
    let mut n = 0;
    while Instant::now() < end {
        let up: Vec<usize> = (0..3).filter(|i| fates[*i] == Fate::Running).collect();
        if !up.is_empty() {
            let at = up[dice.below(up.len() as u64) as usize];
            n += 1;
            let id = format!("k{n}");
            let (code, _) = nodes[at].register("ledger", &id, "");
            if code == 201 {
                acknowledged.insert(id);
            }
            for &i in &up {
                if let Some(l) = nodes[i].leader() {
                    if l["is_leader"] == true {
                        let term = l["term"].as_u64().unwrap();
                        leaders.entry(term).or_default().insert(nodes[i].id.clone());
                    }
                }
            }
        }
        if Instant::now() >= next_fault {
            next_fault = Instant::now() + Duration::from_millis(300 + dice.below(900));
            let i = dice.below(3) as usize;
            let fault = match (fates[i], dice.below(2)) {
                (Fate::Running, 0) => {
                    nodes[i].kill();
                    Fate::Killed
                }
                (Fate::Running, _) if !fates.contains(&Fate::Paused) => {
                    nodes[i].signal("-STOP");
                    Fate::Paused
                }
                (Fate::Running, _) => Fate::Running,
                (Fate::Killed, _) => {
                    nodes[i].spawn();
                    Fate::Running
                }
                (Fate::Paused, _) => {
                    nodes[i].signal("-CONT");
                    Fate::Running
                }
            };
            if fault != fates[i] {
                schedule.push(format!("{}: {:?} -> {fault:?}", nodes[i].id, fates[i]));
                fates[i] = fault;
            }
        }
    }
    for (i, fate) in fates.iter().enumerate() {
        match fate {
            Fate::Killed => nodes[i].spawn(),
            Fate::Paused => nodes[i].signal("-CONT"),
            Fate::Running => {}
        }
    }
    for (term, claimed) in &leaders {
        assert!(
            claimed.len() == 1,
            "seed {seed}: term {term} had leaders {claimed:?}; faults {schedule:?}"
        );
    }
    let leader = agreed_leader(&nodes);
    let everything = nodes[leader].instances("ledger", true).unwrap_or_default();
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !everything.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "seed {seed}: acknowledged writes lost: {missing:?}; faults {schedule:?}"
    );
    let registries = wait_for(SETTLE, || {
        let all: Vec<Value> = nodes
            .iter()
            .map(|node| {
                node.get("/v1/services")
                    .map(|(_, body)| body["services"].clone())
            })
            .collect::<Option<_>>()?;
        all.iter()
            .all(|r| *r == all[0] && r["ledger"].as_array().map(Vec::len) == Some(everything.len()))
            .then_some(all)
    });
    assert!(
        registries.is_some(),
        "seed {seed}: the registries converge; faults {schedule:?}"
    );
    assert!(
        !acknowledged.is_empty(),
        "seed {seed}: some writes got through"
    );
    eprintln!(
        "seed {seed}: {n} writes tried, {} acknowledged, {} terms with a leader, faults {schedule:?}",
        acknowledged.len(),
        leaders.len()
    );
}

#[test]
fn random_faults_seed_1() {
    faults(1);
}

#[test]
fn random_faults_seed_2() {
    faults(2);
}

#[test]
fn random_faults_seed_3() {
    faults(3);
}
