//! A falsely suspected member refutes with a higher incarnation and ends alive everywhere.

use vigil_gossip::MemberState;
use vigil_sim::Kind;

use crate::common::{assert_none, cluster, ms, secs};

#[test]
fn a_member_paused_long_enough_to_be_suspected_refutes_and_stays_alive() {
    let mut sim = cluster(7, 50);
    let x = 13;
    let before = sim.node(x).expect("running").incarnation();
    let since = sim.now();
    sim.pause(x);
    // Suspected once its observers' phi crosses the threshold and the probes time out (at most
    // ~1.8 s into the pause), but resumed before the suspicion can time out even with every observer
    // confirming (at the earliest ~2.4 s into the pause, when it fell silent a full heartbeat
    // interval before pausing).
    let suspected = sim.run_until_true(secs(3), ms(50), |sim| {
        sim.records()
            .iter()
            .any(|r| r.at >= since && r.subject == Some(x) && r.kind == Kind::Suspect)
    });
    let suspected = suspected.expect("a silent member is suspected");
    eprintln!("suspected {suspected:?} into the pause");
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
