//! A node that leaves is seen as Left, not Dead, by all.

use vigil_gossip::MemberState;
use vigil_sim::{Kind, Status};

use crate::common::{cluster, secs};

#[test]
fn a_node_that_leaves_is_seen_as_left_by_all() {
    let mut sim = cluster(9, 100);
    let x = 21;
    let since = sim.now();
    sim.leave(x);
    sim.run_for(secs(10));
    assert_eq!(sim.status(x), Status::Left);
    let took = sim
        .time_until_all(x, since, |r| r.kind == Kind::Left)
        .expect("everyone saw it leave");
    eprintln!("everyone saw the leave after {took:?}");
    assert!(took <= secs(2), "{took:?}");
    let accused = sim
        .records()
        .iter()
        .filter(|r| {
            r.at >= since && r.subject == Some(x) && matches!(r.kind, Kind::Suspect | Kind::Down)
        })
        .count();
    assert_eq!(
        accused, 0,
        "a departed node is not suspected or declared dead"
    );
    for i in sim.live() {
        assert_eq!(sim.view(i, x), Some(MemberState::Left));
    }
    assert!(sim.all_alive());
}
