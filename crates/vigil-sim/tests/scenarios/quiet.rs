//! No false suspicion in a fault-free run.

use vigil_sim::Kind;

use crate::common::{assert_none, cluster, secs};

#[test]
fn ten_quiet_minutes_at_100_nodes_raise_no_suspicion() {
    let mut sim = cluster(4, 100);
    let converged = sim.now();
    sim.run_for(secs(600));
    assert_none("false suspicions", &sim.false_suspicions(converged));
    assert_eq!(sim.count(Kind::Suspect, converged), 0);
    assert_eq!(sim.count(Kind::Down, converged), 0);
    assert!(sim.all_alive());
}
