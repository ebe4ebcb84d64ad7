//! A 2 s pause of a healthy member (the bench scenario used against Serf) does not get it
//! declared dead.

use vigil_sim::Kind;

use crate::common::{assert_none, cluster, secs};

fn two_second_pause(seed: u64, n: usize) {
    let mut sim = cluster(seed, n);
    for x in [1, n / 2, n - 1] {
        let since = sim.now();
        sim.pause(x);
        sim.run_for(secs(2));
        sim.resume(x);
        sim.run_for(secs(15));
        let downs = sim
            .records()
            .iter()
            .filter(|r| r.at >= since && r.kind == Kind::Down)
            .count();
        assert_eq!(downs, 0, "node {x} of {n}");
        assert!(sim.all_alive(), "node {x} of {n}");
    }
    assert_none("live nodes declared dead", &sim.wrongly_down(secs(0)));
}

#[test]
fn a_two_second_pause_is_not_a_death_at_10_nodes() {
    two_second_pause(12, 10);
}

#[test]
fn a_two_second_pause_is_not_a_death_at_30_nodes() {
    two_second_pause(13, 30);
}
