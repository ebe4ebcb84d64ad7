//! Helpers shared by the scenarios.

use std::time::Duration;

use vigil_sim::{Sim, SimConfig};

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Runs `sim` until every live node sees every other as alive; panics after `max`.
pub fn settle(sim: &mut Sim, max: Duration) -> Duration {
    match sim.run_until_true(max, ms(250), Sim::all_alive) {
        Some(t) => t,
        None => {
            let unconverged = sim.unconverged();
            panic!(
                "not converged after {max:?}: {} nodes disagree, e.g. {:?}",
                unconverged.len(),
                &unconverged[..unconverged.len().min(5)]
            )
        }
    }
}

/// A cluster of `n` nodes on a LAN, joined and converged.
pub fn cluster(seed: u64, n: usize) -> Sim {
    cluster_with(SimConfig::new(seed, n))
}

/// A cluster started from `config`, joined and converged.
pub fn cluster_with(config: SimConfig) -> Sim {
    let mut sim = Sim::new(config);
    settle(&mut sim, secs(60));
    sim
}

/// Fails with the first few records if `records` is not empty.
#[track_caller]
pub fn assert_none(what: &str, records: &[vigil_sim::Record]) {
    assert!(
        records.is_empty(),
        "{} {what}, e.g. {:?}",
        records.len(),
        &records[..records.len().min(5)]
    );
}
