//! A node whose process is killed, or whose whole host goes silent, is declared dead by every live
//! node.

use std::time::Duration;

use vigil_sim::{percentile, Kind, Sim};

use crate::common::{assert_none, cluster, ms, secs};

/// Fails `victims` one after the other with `fail`; returns how long each took to be seen dead
/// by every live node, and how many times a node reported one of them suspect.
fn detection(seed: u64, fail: fn(&mut Sim, usize)) -> (Vec<Duration>, usize) {
    let mut sim = cluster(seed, 100);
    // Long enough for every detector to have heard a few heartbeats: a cluster formed a moment
    // ago has no history to judge a silence by.
    sim.run_for(secs(5));
    let mut all = Vec::new();
    let mut per_node = Vec::new();
    let mut suspicions = 0;
    for victim in [10, 42, 77] {
        let failed_at = sim.now();
        fail(&mut sim, victim);
        sim.run_for(secs(20));
        let seen = sim.first_seen(victim, failed_at, |r| r.kind == Kind::Down);
        let everyone = sim
            .time_until_all(victim, failed_at, |r| r.kind == Kind::Down)
            .unwrap_or_else(|| {
                panic!(
                    "node {victim} not seen dead by everyone: {:?}",
                    seen.iter().filter(|s| s.1.is_none()).collect::<Vec<_>>()
                )
            });
        per_node.extend(seen.iter().filter_map(|s| s.1));
        all.push(everyone);
        // Down and not Left: it did not say goodbye.
        assert_eq!(sim.count(Kind::Left, failed_at), 0);
        suspicions += sim.count(Kind::Suspect, failed_at);
    }
    eprintln!(
        "seen dead by every live node after {all:?}; per node p50 {:?} p99 {:?}",
        percentile(&per_node, 50.0),
        percentile(&per_node, 99.0)
    );
    assert_none("live nodes declared dead", &sim.wrongly_down(secs(0)));
    (all, suspicions)
}

#[test]
fn a_silent_host_is_declared_dead_by_every_live_node() {
    // Its observers' connection attempts meet silence where the host answered before, and a
    // second observer's suspicion confirms it: no suspicion timeout to wait out. (Waiting it
    // out, this seed's three took 4.2, 3.1 and 3.6 s; with the shortcut 3.0, 1.5 and 2.2 s, the
    // slowest being phi's while gossip datagrams counted as heartbeats and widened the
    // distribution; with heartbeats alone making it, 1.6, 1.8 and 1.2 s.)
    let (times, _) = detection(3, Sim::crash);
    for t in times {
        assert!(t <= ms(2500), "detection by everyone took {t:?}");
    }
}

#[test]
fn a_killed_process_is_declared_dead_without_waiting_out_the_suspicion() {
    // Its host refuses connections to the dead process's port: the first observer whose
    // detector fires declares it dead, with no suspicion timeout to wait out.
    let (times, suspicions) = detection(4, Sim::kill);
    assert_eq!(suspicions, 0, "nobody needed to suspect it first");
    for t in times {
        assert!(t < secs(3), "detection by everyone took {t:?}");
    }
}
