//! One link cut both ways between two members, everything else intact (a firewall rule, a broken
//! route between two racks). The observer on the far side of the cut finds the member's host
//! silent, where it answered at once before; that is the observer's view alone, and the others
//! still hear the member, so nobody may declare it dead.

use vigil_sim::Kind;

use crate::common::{assert_none, cluster, secs};

#[test]
fn a_member_cut_off_from_one_other_is_never_declared_dead() {
    let mut sim = cluster(11, 12);
    let since = sim.now();
    let victim = 5;
    // Every other member in turn, so that the victim's observers are among them.
    for other in (0..12).filter(|&i| i != victim) {
        let rules = sim.partition(&[victim], &[other]);
        sim.run_for(secs(8));
        for rule in rules {
            sim.unblock(rule);
        }
        sim.run_for(secs(2));
    }
    let downs: Vec<_> = sim
        .records()
        .iter()
        .filter(|r| r.at >= since && r.kind == Kind::Down)
        .copied()
        .collect();
    assert_none("members declared dead over one cut link", &downs);
}
