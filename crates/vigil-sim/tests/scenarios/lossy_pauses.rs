//! Bounded false positives under 5 % loss with random 1 s pauses.
//!
//! 100 nodes, 10 virtual minutes, every link losing 5 % of datagrams, and every node paused for
//! 1 s about once a minute at random (about 1,000 pauses). A 1 s pause is shorter than the
//! fastest a silent member can be declared dead (phi ~1.1 s + probe 0.4 s + suspicion ≥ 1.5 s,
//! more while the suspicion is unconfirmed), and the resumed node reads the suspicion from its
//! socket buffer and refutes at once; loss only delays heartbeats by one interval now and then,
//! which phi tolerates, and a lost probe is covered by `m` = 3 indirect ones. So the expected
//! number of live members wrongly declared dead is zero, and that is what is asserted.

use vigil_sim::{Link, SimConfig};

use crate::common::{assert_none, cluster_with, secs};

#[test]
fn one_second_pauses_under_five_percent_loss_get_nobody_declared_dead() {
    let mut config = SimConfig::new(8, 100);
    config.link = Link::LAN.with_loss(0.05);
    let mut sim = cluster_with(config);
    let start = sim.now();
    let nodes: Vec<usize> = (0..100).collect();
    let pauses = sim.random_pauses(8, &nodes, secs(1), secs(60), start, start + secs(600));
    sim.run_until(start + secs(610));
    let suspicions = sim
        .records()
        .iter()
        .filter(|r| r.at >= start && r.kind == vigil_sim::Kind::Suspect)
        .count();
    eprintln!(
        "{pauses} pauses: {suspicions} suspicion events, {} wrongly declared dead",
        sim.wrongly_down(start).len()
    );
    assert!(pauses >= 800, "{pauses}");
    assert_none("live members declared dead", &sim.wrongly_down(start));
    sim.run_for(secs(10));
    assert!(sim.all_alive());
}
