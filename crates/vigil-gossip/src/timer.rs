//! The node's periodic deadlines: one per kind of recurring work, in a table.

use std::time::Instant;

/// A kind of recurring work a node does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Heartbeats to this node's observers.
    Heartbeat,
    /// A gossip round of pending updates.
    Gossip,
    /// The phi check of the members this node observes.
    Check,
    /// A full state exchange with a random member.
    PushPull,
    /// Dialling the seeds that are not active members.
    Redial,
    /// Forgetting old tombstones.
    Reap,
    /// Relaxing the local health multiplier.
    HealthDecay,
}

impl Timer {
    /// Every timer, in the order due ones fire within one call.
    pub(crate) const ALL: [Timer; 7] = [
        Timer::Heartbeat,
        Timer::Gossip,
        Timer::Check,
        Timer::PushPull,
        Timer::Redial,
        Timer::Reap,
        Timer::HealthDecay,
    ];
}

/// When each [`Timer`] is next due.
#[derive(Clone, Debug)]
pub(crate) struct Timers([Instant; Timer::ALL.len()]);

impl Timers {
    /// A table with each timer first due at `first(timer)`.
    pub(crate) fn new(first: impl Fn(Timer) -> Instant) -> Timers {
        Timers(Timer::ALL.map(first))
    }

    /// When `timer` is due.
    pub(crate) fn at(&self, timer: Timer) -> Instant {
        self.0[timer as usize]
    }

    /// Sets when `timer` is next due.
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.0[timer as usize] = at;
    }

    /// Whether `timer` is due at `now`.
    pub(crate) fn is_due(&self, timer: Timer, now: Instant) -> bool {
        now >= self.at(timer)
    }

    /// Makes `timer` due no later than `at`.
    pub(crate) fn no_later(&mut self, timer: Timer, at: Instant) {
        self.set(timer, self.at(timer).min(at));
    }

    /// Makes `timer` due no sooner than `at`.
    pub(crate) fn no_sooner(&mut self, timer: Timer, at: Instant) {
        self.set(timer, self.at(timer).max(at));
    }

    /// The earliest deadline of all.
    pub(crate) fn next(&self) -> Instant {
        let [first, rest @ ..] = &self.0;
        rest.iter().fold(*first, |a, b| a.min(*b))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn each_timer_keeps_its_own_deadline() {
        let start = Instant::now();
        let ms = |n| start + Duration::from_millis(n);
        let mut timers = Timers::new(|timer| ms(100 + timer as u64));
        assert_eq!(timers.next(), ms(100));
        timers.set(Timer::Heartbeat, ms(500));
        assert_eq!(timers.next(), ms(101));
        timers.no_later(Timer::Gossip, ms(50));
        timers.no_later(Timer::Check, ms(900));
        assert_eq!(
            (timers.at(Timer::Gossip), timers.at(Timer::Check)),
            (ms(50), ms(102))
        );
        timers.no_sooner(Timer::Gossip, ms(40));
        timers.no_sooner(Timer::Check, ms(300));
        assert_eq!(
            (timers.at(Timer::Gossip), timers.at(Timer::Check)),
            (ms(50), ms(300))
        );
        assert!(timers.is_due(Timer::Gossip, ms(50)) && !timers.is_due(Timer::Gossip, ms(49)));
    }
}
