//! 1,000 nodes join through 3 seeds and converge.

use vigil_sim::{Kind, Sim, SimConfig};

use crate::common::{assert_none, ms, secs};

#[test]
fn a_thousand_nodes_join_through_three_seeds_and_converge() {
    let mut config = SimConfig::new(1, 1000);
    config.join_spread = secs(5);
    let mut sim = Sim::new(config);
    // Every node has started by 5 s; a join is one push-pull with the seeds, then gossip.
    let took = sim.run_until_true(secs(30), ms(500), Sim::all_alive);
    let took = took.unwrap_or_else(|| {
        panic!(
            "not converged in 30 s: {} nodes disagree",
            sim.unconverged().len()
        )
    });
    eprintln!("1,000 nodes converged {took:?} after the first start");
    assert_none(
        "false suspicions while joining",
        &sim.false_suspicions(secs(0)),
    );
    // Every node saw every other come up exactly once.
    assert_eq!(sim.count(Kind::Up, secs(0)), 1000 * 999);
}

#[test]
fn a_small_cluster_converges_within_seconds() {
    let mut sim = Sim::new(SimConfig::new(2, 50));
    let took = sim
        .run_until_true(secs(10), ms(100), Sim::all_alive)
        .expect("50 nodes converge");
    assert!(took <= secs(3), "{took:?}");
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = |seed| {
        let mut sim = Sim::new(SimConfig::new(seed, 30));
        sim.run_for(secs(5));
        sim.kill(7);
        sim.run_for(secs(10));
        (
            sim.records().to_vec(),
            (0..30).map(|i| sim.traffic(i)).collect::<Vec<_>>(),
        )
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9).1, run(10).1);
}
