//! Fault injection on the demo compose cluster (three voters, three members) on real docker:
//! a killed member, short and long pauses, a stranger with the wrong key, a partitioned voter
//! under writes, a rolling restart under writes. Each scenario asserts what users rely on and
//! prints its figures as `FIGURE scenario: name = value` lines (`cargo test --test faults --
//! --nocapture` shows them).

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;
#[path = "faults/dsl.rs"]
mod dsl;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::cluster::instance_ids;
use common::get_json;
use common::tools::docker_available;
use dsl::{figure, seconds, Cluster, MEMBERS, SETTLE, VOTERS};

/// Bringing the cluster up costs more than most scenarios, so they run in turn on one cluster,
/// each leaving it whole for the next.
#[test]
fn the_cluster_keeps_its_promises_under_faults() {
    if !docker_available() {
        return;
    }
    let cluster = Cluster::up();
    a_stranger_with_the_wrong_key_never_joins(&cluster);
    a_killed_member_is_declared_dead_by_everyone(&cluster);
    a_short_pause_goes_unpunished(&cluster);
    a_long_pause_is_declared_dead_and_rejoins(&cluster);
    a_partitioned_voter_refuses_writes_and_loses_none(&cluster);
    a_rolling_restart_keeps_quorum_and_every_write(&cluster);
    // Last: it leaves the cluster with other voters than the compose file's.
    a_voter_is_replaced_under_writes(&cluster);
}

fn a_stranger_with_the_wrong_key_never_joins(c: &Cluster) {
    let wrong = "d3JvbmctZ29zc2lwLWtleS13cm9uZy1nb3NzaXAta2U=";
    c.start_stranger("x1", wrong);
    // It dials the seeds at once and again every 5 s: the window covers both.
    c.hold("no node lists the stranger", Duration::from_secs(8), |c| {
        c.all_nodes().iter().all(|n| {
            c.listed(n)
                .is_some_and(|ids| !ids.iter().any(|id| id == "x1"))
        })
    });
    figure("wrong key", "nodes listing the stranger after 8 s", 0);
}

fn a_killed_member_is_declared_dead_by_everyone(c: &Cluster) {
    c.kill("m3");
    let detected = c.wait("every live node reports m3 dead", SETTLE, |c| {
        c.others("m3")
            .iter()
            .all(|n| c.state(n, "m3").as_deref() == Some("dead"))
    });
    figure(
        "kill",
        "time until every live node reports it dead",
        seconds(detected, 2),
    );
    let back = c.start("m3");
    figure("kill", "restart until all see it alive", seconds(back, 1));
}

fn a_short_pause_goes_unpunished(c: &Cluster) {
    let pause = Duration::from_millis(1500);
    c.pause("m2");
    c.hold("nobody declares the paused m2 dead", pause, |c| {
        c.others("m2")
            .iter()
            .all(|n| c.state(n, "m2").as_deref() != Some("dead"))
    });
    c.unpause("m2");
    // Anything a frozen node's observers decided while it slept lands within a few gossip rounds.
    c.hold(
        "nobody declares m2 dead after it wakes",
        Duration::from_secs(5),
        |c| {
            c.all_nodes()
                .iter()
                .all(|n| c.state(n, "m2").as_deref() != Some("dead"))
        },
    );
    figure(
        "short pause",
        "paused for, with nobody declaring it dead",
        seconds(pause, 1),
    );
}

fn a_long_pause_is_declared_dead_and_rejoins(c: &Cluster) {
    let pause = Duration::from_secs(12);
    c.pause("m2");
    let frozen = Instant::now();
    let detected = c.wait("every other node reports the paused m2 dead", pause, |c| {
        c.others("m2")
            .iter()
            .all(|n| c.state(n, "m2").as_deref() == Some("dead"))
    });
    figure(
        "long pause",
        "time until every other node reports it dead",
        seconds(detected, 2),
    );
    if let Some(rest) = pause.checked_sub(frozen.elapsed()) {
        std::thread::sleep(rest); // the rest of the fault itself, not a wait for an outcome
    }
    c.unpause("m2");
    let rejoined = c.wait("m2 rejoins: every node sees all alive", SETTLE, |c| {
        c.all_nodes().iter().all(|n| c.sees_all_alive(n))
    });
    figure(
        "long pause",
        "time from resume until all see it alive",
        seconds(rejoined, 2),
    );
}

fn a_partitioned_voter_refuses_writes_and_loses_none(c: &Cluster) {
    let mut acked = BTreeSet::new();
    assert_eq!(c.write("v1", "orders", "before"), 201);
    acked.insert("before".to_owned());
    c.partition("v3");
    let cut = Instant::now();
    let refused = c.wait(
        "the minority voter v3 refuses writes with 503",
        SETTLE,
        |c| c.write("v3", "orders", "minority") == 503,
    );
    figure(
        "partition",
        "time until the minority refuses writes",
        seconds(refused, 2),
    );
    let leader = c.wait("the majority keeps a leader", SETTLE, |c| {
        ["v1", "v2"].iter().all(|v| c.has_quorum(v))
    });
    figure(
        "partition",
        "majority with a leader after",
        seconds(leader, 2),
    );
    for i in 0..10 {
        let id = format!("majority-{i}");
        c.wait(&format!("the majority acknowledges {id}"), SETTLE, |c| {
            c.write("v1", "orders", &id) == 201
        });
        acked.insert(id);
    }
    assert_eq!(
        c.write("v3", "orders", "minority-late"),
        503,
        "the minority still refuses"
    );
    figure(
        "partition",
        "writes acknowledged by the majority while cut",
        acked.len() - 1,
    );
    c.heal("v3");
    let converged = c.wait(
        "v3 back with quorum and every acknowledged write",
        SETTLE,
        |c| {
            c.has_quorum("v3")
                && VOTERS.iter().all(|v| {
                    c.instances(v, "orders")
                        .is_some_and(|ids| acked.iter().all(|a| ids.contains(a)))
                })
        },
    );
    figure(
        "partition",
        "heal until converged",
        format!(
            "{} (cut for {})",
            seconds(converged, 2),
            seconds(cut.elapsed(), 1)
        ),
    );
    c.wait("every node sees all alive after the heal", SETTLE, |c| {
        c.all_nodes().iter().all(|n| c.sees_all_alive(n))
    });
}

fn a_rolling_restart_keeps_quorum_and_every_write(c: &Cluster) {
    let mut acked = BTreeSet::new();
    let (mut samples, mut without_quorum, mut refused) = (0, 0, 0);
    let mut slowest = Duration::ZERO;
    let mut lost = Vec::new();
    for node in c.all_nodes() {
        // Writes and quorum samples go on through the voters that stay up, for as long as the
        // node takes to stop and come back.
        let via: Vec<&str> = VOTERS.iter().copied().filter(|v| *v != node).collect();
        let began = Instant::now();
        std::thread::scope(|s| {
            let restart = s.spawn(|| c.restart(&node));
            while !restart.is_finished() {
                assert!(began.elapsed() < 2 * SETTLE, "{node} restarts in time");
                // A client's pace, not a flood: every write is a Raft entry synced to disk.
                std::thread::sleep(Duration::from_millis(100));
                samples += 1;
                if !MEMBERS.iter().any(|m| *m != node && c.gossip_quorum(m)) {
                    lost.push(format!("while restarting {node}"));
                }
                if !via.iter().any(|v| c.has_quorum(v)) {
                    without_quorum += 1;
                }
                let id = format!("roll-{node}-{samples}");
                match c.write(via[samples % via.len()], "rolling", &id) {
                    201 => {
                        acked.insert(id);
                    }
                    _ => refused += 1,
                }
            }
        });
        slowest = slowest.max(began.elapsed());
        c.wait(&format!("{node} back and seen alive by all"), SETTLE, |c| {
            c.all_nodes().iter().all(|n| c.sees_all_alive(n))
        });
        c.wait("a leader every voter agrees on", SETTLE, |c| {
            c.leader().is_some()
        });
    }
    assert!(lost.is_empty(), "quorum lost: {lost:?}");
    assert!(
        !acked.is_empty(),
        "writes were acknowledged during the restarts"
    );
    c.wait("every voter holds every acknowledged write", SETTLE, |c| {
        VOTERS.iter().all(|v| {
            c.instances(v, "rolling")
                .is_some_and(|ids| acked.iter().all(|a| ids.contains(a)))
        })
    });
    figure(
        "rolling restart",
        "writes acknowledged, all kept",
        acked.len(),
    );
    figure(
        "rolling restart",
        "slowest restart, while writing",
        seconds(slowest, 1),
    );
    figure(
        "rolling restart",
        "writes refused (retried by clients)",
        refused,
    );
    figure(
        "rolling restart",
        "samples with no voter in touch with a Raft leader (elections)",
        format!("{without_quorum} of {samples}"),
    );
}

/// A voter's machine is replaced while writes go on: a new container with role voter is added
/// (learner, caught up, promoted), then v3 dies for good and is removed by the remaining voters.
fn a_voter_is_replaced_under_writes(c: &Cluster) {
    let api = c.start_newcomer("v4", "voter", 41);
    let leader_before = c.leader();
    let mut acked = BTreeSet::new();
    let mut n = 0;
    let mut write = |c: &Cluster, acked: &mut BTreeSet<String>| {
        n += 1;
        let id = format!("replace-{n}");
        if c.write(["v1", "v2"][n % 2], "replace", &id) == 201 {
            acked.insert(id);
        }
    };
    c.wait("every voter knows v4", SETTLE, |c| {
        VOTERS
            .iter()
            .all(|v| c.state(v, "v4").as_deref() == Some("alive"))
    });
    write(c, &mut acked);
    let began = Instant::now();
    let (code, body) = c.change_voters("v2", "POST", "v4");
    let added = began.elapsed();
    assert_eq!(code, 200, "{body}");
    write(c, &mut acked);

    c.kill("v3");
    let (code, body) = c.change_voters("v1", "DELETE", "v3");
    assert_eq!(code, 200, "{body}");
    let names: Vec<&str> = body["members"]
        .as_array()
        .map(|members| members.iter().filter_map(|m| m["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["v1", "v2", "v4"], "{body}");
    for _ in 0..10 {
        write(c, &mut acked);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(acked.len() >= 10, "writes went on: {}", acked.len());
    c.wait(
        "v1, v2 and the new voter hold every acknowledged write",
        SETTLE,
        |c| {
            ["v1", "v2"].iter().all(|v| {
                c.instances(v, "replace")
                    .is_some_and(|ids| acked.iter().all(|a| ids.contains(a)))
            }) && get_json(api, "/v1/services/replace").is_some_and(|(code, body)| {
                instance_ids(code, &body).is_some_and(|ids| acked.iter().all(|a| ids.contains(a)))
            })
        },
    );
    c.wait("a leader after the replacement", SETTLE, |c| {
        c.leader().is_some()
    });
    let leader_after = c.leader();
    if leader_before.as_deref() != Some("v3") {
        assert_eq!(leader_after, leader_before, "leadership kept");
    }
    figure(
        "voter replacement",
        "add to promoted voter",
        seconds(added, 2),
    );
    figure(
        "voter replacement",
        "writes acknowledged, all kept",
        acked.len(),
    );
}
