//! A 2 s pause of a healthy member (the bench scenario used against Serf) does not get it
//! declared dead, and only its few observers show it as suspect meanwhile.

use std::collections::BTreeSet;

use vigil_sim::Kind;

use crate::common::{assert_none, cluster, secs};

/// The most views that may show a briefly paused member as suspect: its first observer (Serf:
/// 0–3 of 59).
const MAX_SUSPECT_VIEWS: usize = 1;

fn two_second_pause(seed: u64, n: usize) {
    let mut sim = cluster(seed, n);
    let pauses: Vec<usize> = (1..=10).map(|k| k * (n - 1) / 10).collect();
    for x in pauses {
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
        let suspecting: BTreeSet<usize> = sim
            .records()
            .iter()
            .filter(|r| r.at >= since && r.kind == Kind::Suspect && r.subject == Some(x))
            .map(|r| r.observer)
            .collect();
        eprintln!("pause of node {x} of {n}: shown suspect by {suspecting:?}");
        assert!(
            suspecting.len() <= MAX_SUSPECT_VIEWS,
            "node {x} of {n} shown suspect by {suspecting:?}"
        );
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

#[test]
fn a_two_second_pause_is_not_a_death_at_60_nodes() {
    two_second_pause(14, 60);
}
