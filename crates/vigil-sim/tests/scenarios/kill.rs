//! A killed node is declared dead by every live node.

use vigil_sim::{percentile, Kind};

use crate::common::{assert_none, cluster, secs};

#[test]
fn a_killed_node_is_declared_dead_by_every_live_node() {
    let mut sim = cluster(3, 100);
    let mut all = Vec::new();
    let mut per_node = Vec::new();
    for victim in [10, 42, 77] {
        let killed_at = sim.now();
        sim.kill(victim);
        sim.run_for(secs(20));
        let seen = sim.first_seen(victim, killed_at, |r| r.kind == Kind::Down);
        let everyone = sim
            .time_until_all(victim, killed_at, |r| r.kind == Kind::Down)
            .unwrap_or_else(|| {
                panic!(
                    "node {victim} not seen dead by everyone: {:?}",
                    seen.iter().filter(|s| s.1.is_none()).collect::<Vec<_>>()
                )
            });
        per_node.extend(seen.iter().filter_map(|s| s.1));
        all.push(everyone);
        // Down and not Left: it did not say goodbye.
        assert_eq!(sim.count(Kind::Left, killed_at), 0);
    }
    eprintln!(
        "kill detected by every live node after {all:?}; per node p50 {:?} p99 {:?}",
        percentile(&per_node, 50.0),
        percentile(&per_node, 99.0)
    );
    for t in all {
        assert!(t <= secs(10), "detection by everyone took {t:?}");
    }
    assert_none("live nodes declared dead", &sim.wrongly_down(secs(0)));
}
