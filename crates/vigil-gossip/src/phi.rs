//! The phi-accrual failure detector (Hayashibara et al.), one per observed member.
//!
//! Instead of a yes/no timeout, the detector gives a suspicion level that grows with the time
//! since the last heartbeat, scaled by how regular the heartbeats have been:
//!
//! ```text
//! phi(t) = -log10( P(next heartbeat arrives later than t) )
//! ```
//!
//! with inter-arrival times modelled as a normal distribution of the observed mean and standard
//! deviation (floored at `min_std_dev`, and shifted by `acceptable_pause`). Phi 8 means a one in
//! 10⁸ chance that a heartbeat this late is still coming. The tail probability uses the logistic
//! approximation of the normal CDF that Akka and Cassandra use.
//!
//! Only heartbeats make the distribution: they come on a fixed period, so their intervals are
//! regular and a silence stands out after a fraction of a period. Other datagrams from the member
//! (gossip, acks, state exchanges) come whenever there is news; counted as heartbeats they would
//! add short, irregular intervals that widen the distribution, and a dead member would take
//! longer to cross the threshold the more it had been talking. They still prove it alive: the
//! time since the last one is what phi weighs.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Arrival history of one member's heartbeats.
#[derive(Clone, Debug)]
pub(crate) struct PhiDetector {
    intervals: VecDeque<f64>,
    window: usize,
    sum: f64,
    sum_squares: f64,
    /// When the last heartbeat arrived: the start of the next interval.
    last_heartbeat: Instant,
    /// When the last datagram of any kind arrived: the start of the silence phi weighs.
    last_heard: Instant,
    /// Heartbeats recorded since the detector started.
    heartbeats: u64,
    min_std_dev: f64,
    acceptable_pause: f64,
}

impl PhiDetector {
    /// A detector that starts watching at `now`, assuming heartbeats every `expected`.
    pub(crate) fn new(
        now: Instant,
        expected: Duration,
        window: usize,
        min_std_dev: Duration,
        acceptable_pause: Duration,
    ) -> Self {
        let mut detector = PhiDetector {
            intervals: VecDeque::with_capacity(window.min(64)),
            window: window.max(2),
            sum: 0.0,
            sum_squares: 0.0,
            last_heartbeat: now,
            last_heard: now,
            heartbeats: 0,
            min_std_dev: min_std_dev.as_secs_f64(),
            acceptable_pause: acceptable_pause.as_secs_f64(),
        };
        // Two bootstrap samples around the expected interval give a usable mean and deviation
        // before real heartbeats have been seen.
        let expected = expected.as_secs_f64();
        detector.push(expected - expected / 4.0);
        detector.push(expected + expected / 4.0);
        detector
    }

    fn push(&mut self, interval: f64) {
        if self.intervals.len() == self.window {
            if let Some(old) = self.intervals.pop_front() {
                self.sum -= old;
                self.sum_squares -= old * old;
            }
        }
        self.intervals.push_back(interval);
        self.sum += interval;
        self.sum_squares += interval * interval;
    }

    /// Records a heartbeat arriving at `now`.
    pub(crate) fn heartbeat(&mut self, now: Instant) {
        let interval = now
            .saturating_duration_since(self.last_heartbeat)
            .as_secs_f64();
        self.last_heartbeat = now;
        self.heard(now);
        self.heartbeats = self.heartbeats.saturating_add(1);
        self.push(interval);
    }

    /// Records any other sign of life arriving at `now`: it restarts the silence without being
    /// an interval of the heartbeat period.
    pub(crate) fn heard(&mut self, now: Instant) {
        self.last_heard = self.last_heard.max(now);
    }

    /// Heartbeats recorded since the detector started.
    pub(crate) fn heartbeats(&self) -> u64 {
        self.heartbeats
    }

    /// Forgets the time since the last heartbeat without recording it as an interval: used when
    /// this node itself was stalled and could not have heard anyone.
    pub(crate) fn restart_clock(&mut self, now: Instant) {
        self.last_heartbeat = now;
        self.last_heard = now;
    }

    /// The suspicion level at `now`.
    pub(crate) fn phi(&self, now: Instant) -> f64 {
        let n = self.intervals.len() as f64;
        let mean = self.sum / n;
        let variance = (self.sum_squares / n - mean * mean).max(0.0);
        let std_dev = variance.sqrt().max(self.min_std_dev);
        let elapsed = now.saturating_duration_since(self.last_heard).as_secs_f64();
        phi(elapsed, mean + self.acceptable_pause, std_dev)
    }
}

/// Phi of a heartbeat `elapsed` seconds late against a normal distribution of `mean`, `std_dev`.
pub(crate) fn phi(elapsed: f64, mean: f64, std_dev: f64) -> f64 {
    let y = (elapsed - mean) / std_dev;
    let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
    let p_later = if elapsed > mean {
        e / (1.0 + e)
    } else {
        1.0 - 1.0 / (1.0 + e)
    };
    -p_later.max(f64::MIN_POSITIVE).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phi_grows_with_lateness_and_is_small_on_time() {
        assert!(phi(0.5, 1.0, 0.1) < 0.01);
        assert!(
            (phi(1.0, 1.0, 0.1) - 0.301).abs() < 0.01,
            "half the mass is later than the mean"
        );
        assert!(phi(1.3, 1.0, 0.1) > 2.0);
        assert!(phi(1.6, 1.0, 0.1) > 8.0);
        assert!(phi(100.0, 1.0, 0.1).is_finite());
    }

    #[test]
    fn regular_heartbeats_keep_phi_low_and_silence_raises_it() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = PhiDetector::new(t0, ms(500), 1000, ms(100), Duration::ZERO);
        for i in 1..=20 {
            d.heartbeat(t0 + ms(500 * i));
        }
        let last = t0 + ms(500 * 20);
        assert!(d.phi(last + ms(500)) < 1.0);
        assert!(d.phi(last + ms(1200)) > 8.0, "{}", d.phi(last + ms(1200)));
    }

    #[test]
    fn other_datagrams_restart_the_silence_without_widening_the_distribution() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut chatty = PhiDetector::new(t0, ms(1000), 1000, ms(100), Duration::ZERO);
        let mut quiet = chatty.clone();
        for i in 1..=20 {
            let beat = t0 + ms(1000 * i);
            chatty.heartbeat(beat);
            quiet.heartbeat(beat);
            chatty.heard(beat + ms(200));
            chatty.heard(beat + ms(300));
        }
        let last = t0 + ms(20_000);
        // Gossip heard 300 ms after the last heartbeat delays the threshold by those 300 ms.
        assert!(quiet.phi(last + ms(1600)) > 8.0);
        assert!(chatty.phi(last + ms(1600)) < 5.0);
        assert!(chatty.phi(last + ms(1900)) > 8.0);
        assert_eq!(chatty.intervals, quiet.intervals);
    }

    #[test]
    fn acceptable_pause_shifts_the_curve() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let d = PhiDetector::new(t0, ms(500), 1000, ms(100), ms(1000));
        assert!(d.phi(t0 + ms(1200)) < 1.0);
    }

    #[test]
    fn the_window_is_bounded() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = PhiDetector::new(t0, ms(500), 4, ms(10), Duration::ZERO);
        for i in 1..=100 {
            d.heartbeat(t0 + ms(100 * i));
        }
        assert_eq!(d.intervals.len(), 4);
        assert!((d.sum - 0.4).abs() < 1e-9);
    }
}
