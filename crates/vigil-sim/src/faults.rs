//! Fault patterns built from the simulator's primitives, shared by tests and the bench.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::sim::{Action, Sim};

impl Sim {
    /// Schedules pauses of `pause` for each of `nodes` at random times in `[from, until)`: the
    /// gap from one resume to a node's next pause is uniform in `[pause, 2 × every − pause)`,
    /// so a node pauses about once per `every` and never twice at once. Drawn from `seed` alone,
    /// so the pattern is the same whatever the simulation's seed. Returns how many pauses.
    pub fn random_pauses(
        &mut self,
        seed: u64,
        nodes: &[usize],
        pause: Duration,
        every: Duration,
        from: Duration,
        until: Duration,
    ) -> usize {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut count = 0;
        for &node in nodes {
            let mut t = from + every.mul_f64(rng.random::<f64>());
            while t < until {
                self.schedule(t, Action::Pause(node));
                self.schedule(t + pause, Action::Resume(node));
                count += 1;
                let gap = (every * 2).saturating_sub(pause * 2);
                t += pause * 2 + gap.mul_f64(rng.random::<f64>());
            }
        }
        count
    }
}
