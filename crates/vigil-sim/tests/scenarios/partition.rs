//! A symmetric partition into two halves, then heal.

use vigil_gossip::MemberState;
use vigil_sim::Sim;

use crate::common::{cluster, ms, secs};

#[test]
fn each_half_declares_the_other_dead_and_the_cluster_reconverges_after_healing() {
    let mut sim = cluster(5, 60);
    let a: Vec<usize> = (0..30).collect();
    let b: Vec<usize> = (30..60).collect();
    sim.partition(&a, &b);
    let sides_split = |sim: &Sim| {
        a.iter().all(|&i| {
            b.iter().all(|&j| {
                sim.view(i, j) == Some(MemberState::Dead)
                    && sim.view(j, i) == Some(MemberState::Dead)
            })
        })
    };
    // Observers are each member's ring successors, so the members watched only from their own
    // side are reached as the ring sheds the dead: a few rounds of phi, probe and unconfirmed
    // suspicion (~35 s at this size).
    let split = sim
        .run_until_true(secs(90), ms(250), sides_split)
        .expect("each side sees the other dead");
    eprintln!("each side saw the other dead after {split:?}");
    // Each side stays whole while split.
    for side in [&a, &b] {
        for &i in side.iter() {
            for &j in side.iter().filter(|&&j| j != i) {
                assert_eq!(sim.view(i, j), Some(MemberState::Alive), "{i} about {j}");
            }
        }
    }
    sim.run_for(secs(10));
    sim.heal();
    let healed = sim
        .run_until_true(secs(60), ms(250), Sim::all_alive)
        .unwrap_or_else(|| {
            panic!(
                "not reconverged 60 s after healing: {:?}",
                &sim.unconverged()[..5.min(sim.unconverged().len())]
            )
        });
    eprintln!("reconverged {healed:?} after healing");
}
