//! A killed node restarted with the same id rejoins and is alive everywhere.

use vigil_sim::Kind;

use crate::common::{cluster, ms, secs, settle};

#[test]
fn a_restarted_node_rejoins_and_is_up_everywhere() {
    let mut sim = cluster(10, 100);
    let x = 33;
    let old = sim.node(x).expect("running").incarnation();
    let killed_at = sim.now();
    sim.kill(x);
    sim.run_until_true(secs(20), ms(250), |sim| {
        sim.time_until_all(x, killed_at, |r| r.kind == Kind::Down)
            .is_some()
    })
    .expect("declared dead first");
    sim.run_for(secs(3));
    let restarted_at = sim.now();
    sim.restart(x);
    let new = sim.node(x).expect("running").incarnation();
    assert!(new > old, "a restart outranks the past life: {old} → {new}");
    let took = settle(&mut sim, secs(30));
    let up = sim
        .time_until_all(x, restarted_at, |r| {
            r.kind == Kind::Up && r.incarnation == new
        })
        .expect("MemberUp everywhere");
    eprintln!("restarted node up everywhere after {up:?}, all alive after {took:?}");
    assert!(up <= secs(5), "{up:?}");
}
