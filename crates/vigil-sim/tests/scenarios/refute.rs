//! A falsely suspected member refutes with a higher incarnation and ends alive everywhere.

use vigil_gossip::MemberState;
use vigil_sim::Kind;

use crate::common::{assert_none, cluster, ms, secs};

#[test]
fn a_member_paused_long_enough_to_be_suspected_refutes_and_stays_alive() {
    let mut sim = cluster(7, 50);
    let x = 13;
    let before = sim.node(x).expect("running").incarnation();
    // Long enough for every detector to have heard a few heartbeats.
    sim.run_for(secs(5));
    let since = sim.now();
    sim.pause(x);
    // Suspected once its observers' phi crosses the threshold and the probes time out (about
    // 1.5–2 s into the pause), but resumed before the suspicion can time out even with every
    // observer confirming (`suspicion_min` after the first suspicion). Only its first observer
    // shows the suspicion, perhaps after the pause: the refutation tells that it was raised.
    sim.run_until(since + ms(2000));
    sim.resume(x);
    sim.run_for(secs(10));
    let refuted: Vec<_> = sim
        .records()
        .iter()
        .filter(|r| r.observer == x && r.kind == Kind::Refuted)
        .collect();
    assert!(!refuted.is_empty(), "Refuted fires on the suspected member");
    let after = sim.node(x).expect("running").incarnation();
    assert!(after > before, "incarnation {before} → {after}");
    for i in sim.live().into_iter().filter(|&i| i != x) {
        assert_eq!(sim.view(i, x), Some(MemberState::Alive), "{i} about {x}");
        assert_eq!(
            sim.node(i)
                .and_then(|n| n.member(&vigil_sim::id_of(x)))
                .map(|m| m.incarnation),
            Some(after)
        );
    }
    assert_none("live nodes declared dead", &sim.wrongly_down(since));
    assert!(sim.all_alive());
}
