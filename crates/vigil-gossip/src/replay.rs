//! Replay protection for sealed frames: a recorded frame replayed later is refused.
//!
//! Encryption proves a frame was sealed by a key holder, not that it is new: an attacker without
//! the key can record a member's frames and send them again after the member died, and every one
//! of them would count as hearing from it. So every message carries, inside the seal, a [`Stamp`]:
//! the sender's *session* (a random number drawn when its process started), a sequence number
//! counting every frame of that session, and the sender's session clock at sealing (milliseconds
//! since the session started). A receiver keeps, per (sender, session), a [`Window`]:
//!
//! - **age**: the smallest `local time − sender's clock` seen so far estimates the offset between
//!   the two clocks plus the shortest transit; a frame whose own `local time − sender's clock`
//!   exceeds it by more than `max_frame_age` is too old. No synchronised clocks are needed, and a
//!   delayed or replayed frame can only raise the difference, never lower the estimate. The
//!   estimate is allowed to creep up by [`DRIFT`] (0.1 %) of the time elapsed, so two clocks that
//!   run at slightly different rates keep agreeing; once the sender is silent, its frames therefore
//!   expire at most `max_frame_age × 1.001` after the last one was sealed.
//! - **duplicates**: the highest sequence number and a bitmap of the [`WINDOW_BITS`] below it; a
//!   number seen before, or below the bitmap, is refused.
//!
//! A frame of a session the receiver does not know starts a new window: a restarted sender is
//! heard at once. The windows are capped at [`MAX_SESSIONS`], the least recently used evicted, so
//! memory stays fixed whatever arrives. The limit of the scheme: a receiver that has never heard of
//! a session (it started after the sender died, or evicted it) cannot tell a replay of it from the
//! real thing. The full-state and failure-detection rules cover that case: a replay repeats the
//! dead member's old incarnation, which cannot override the `Dead` the cluster spreads.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::id::NodeId;

/// Sequence numbers remembered below the highest one seen, per session.
pub(crate) const WINDOW_BITS: u64 = 512;
/// Sessions remembered at most (about 130 bytes each); the least recently used goes first.
pub(crate) const MAX_SESSIONS: usize = 4096;
/// How fast the clock-offset estimate may creep up: clocks may differ in rate by this fraction.
pub(crate) const DRIFT: f64 = 0.001;

const WINDOW_WORDS: usize = (WINDOW_BITS / 64) as usize;

/// What a sender writes inside the seal of every message so receivers can refuse replays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stamp {
    /// Random per process start of the sender.
    pub session: u64,
    /// Counts the sender's messages in this session, from 1.
    pub seq: u64,
    /// The sender's session clock when it sealed the message: milliseconds since the session
    /// started.
    pub sent_ms: u64,
}

/// Why a frame was refused as a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Replay {
    /// The frame's sequence number was received before.
    #[error("frame already received (replayed or duplicated)")]
    Duplicate,
    /// The frame's sequence number is far below the highest received from its sender.
    #[error("frame too far behind its sender's newer frames")]
    BehindWindow,
    /// The frame was sealed longer ago than the receiver accepts.
    #[error("frame sealed about {age_ms} ms ago, more than the {max_ms} ms accepted")]
    TooOld {
        /// Estimated age.
        age_ms: u64,
        /// The limit.
        max_ms: u64,
    },
}

/// One session's state at the receiver.
struct Window {
    /// Lowest `local − sent` seen (nanoseconds since the guard's origin, minus the sender's clock),
    /// and when it was set.
    offset: i128,
    offset_set_at: i128,
    highest: u64,
    /// Bit `i` of the bitmap: sequence number `highest − i` was received.
    seen: [u64; WINDOW_WORDS],
    last_used: u64,
}

impl Window {
    fn was_seen(&self, seq: u64) -> Option<bool> {
        if seq > self.highest {
            return Some(false);
        }
        let behind = self.highest - seq;
        if behind >= WINDOW_BITS {
            return None;
        }
        let (word, bit) = ((behind / 64) as usize, behind % 64);
        Some(self.seen[word] & (1 << bit) != 0)
    }

    fn mark(&mut self, seq: u64) {
        if seq > self.highest {
            shift(&mut self.seen, seq - self.highest);
            self.highest = seq;
        }
        let behind = self.highest - seq;
        if behind < WINDOW_BITS {
            let (word, bit) = ((behind / 64) as usize, behind % 64);
            self.seen[word] |= 1 << bit;
        }
    }
}

/// Shifts the bitmap towards older numbers by `by` places.
fn shift(bits: &mut [u64; WINDOW_WORDS], by: u64) {
    if by >= WINDOW_BITS {
        *bits = [0; WINDOW_WORDS];
        return;
    }
    let (words, rest) = ((by / 64) as usize, by % 64);
    for i in (0..WINDOW_WORDS).rev() {
        let from = i.checked_sub(words);
        let high = from.map_or(0, |j| bits[j] << rest);
        let carry = match (from.and_then(|j| j.checked_sub(1)), rest) {
            (Some(j), r) if r > 0 => bits[j] >> (64 - r),
            _ => 0,
        };
        bits[i] = high | carry;
    }
}

/// The receiver's memory of every sender session it heard, bounded by [`MAX_SESSIONS`].
pub(crate) struct ReplayGuard {
    origin: Instant,
    max_age: Duration,
    windows: HashMap<(NodeId, u64), Window>,
    uses: u64,
}

impl ReplayGuard {
    /// A guard refusing frames older than `max_age`; `origin` is any instant not after the first
    /// frame's arrival.
    pub(crate) fn new(origin: Instant, max_age: Duration) -> ReplayGuard {
        ReplayGuard {
            origin,
            max_age,
            windows: HashMap::new(),
            uses: 0,
        }
    }

    /// Sessions remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.windows.len()
    }

    /// Accepts a frame from `sender` stamped `stamp` and received at `now`, remembering it, or
    /// says why it is a replay. Call only for frames that authenticated.
    pub(crate) fn check(
        &mut self,
        now: Instant,
        sender: &NodeId,
        stamp: Stamp,
    ) -> Result<(), Replay> {
        let now_ns = now.saturating_duration_since(self.origin).as_nanos() as i128;
        let offset = now_ns - i128::from(stamp.sent_ms) * 1_000_000;
        self.uses += 1;
        let key = (sender.clone(), stamp.session);
        let Some(window) = self.windows.get_mut(&key) else {
            if self.windows.len() >= MAX_SESSIONS {
                self.evict();
            }
            let mut window = Window {
                offset,
                offset_set_at: now_ns,
                highest: stamp.seq,
                seen: [0; WINDOW_WORDS],
                last_used: self.uses,
            };
            window.mark(stamp.seq);
            self.windows.insert(key, window);
            return Ok(());
        };
        let crept = ((now_ns - window.offset_set_at).max(0) as f64 * DRIFT) as i128;
        let expected = window.offset + crept;
        let age = offset - expected;
        let max_age = self.max_age.as_nanos() as i128;
        if age > max_age {
            return Err(Replay::TooOld {
                age_ms: u64::try_from(age / 1_000_000).unwrap_or(u64::MAX),
                max_ms: u64::try_from(max_age / 1_000_000).unwrap_or(u64::MAX),
            });
        }
        match window.was_seen(stamp.seq) {
            None => return Err(Replay::BehindWindow),
            Some(true) => return Err(Replay::Duplicate),
            Some(false) => {}
        }
        window.mark(stamp.seq);
        window.last_used = self.uses;
        if offset < expected {
            window.offset = offset;
            window.offset_set_at = now_ns;
        }
        Ok(())
    }

    /// Forgets the least recently used session.
    fn evict(&mut self) {
        let oldest = self
            .windows
            .iter()
            .min_by_key(|(_, w)| w.last_used)
            .map(|(k, _)| k.clone());
        if let Some(key) = oldest {
            self.windows.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_AGE: Duration = Duration::from_secs(2);

    fn stamp(session: u64, seq: u64, sent_ms: u64) -> Stamp {
        Stamp {
            session,
            seq,
            sent_ms,
        }
    }

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn fresh_frames_pass_and_duplicates_do_not() {
        let start = Instant::now();
        let mut guard = ReplayGuard::new(start, MAX_AGE);
        let x = NodeId::new("x");
        for seq in 1..=100 {
            let sent = seq * 10;
            assert_eq!(
                guard.check(at(start, sent + 1), &x, stamp(7, seq, sent)),
                Ok(())
            );
        }
        // Every frame again, at once: each is a duplicate.
        for seq in 1..=100 {
            assert_eq!(
                guard.check(at(start, 1002), &x, stamp(7, seq, seq * 10)),
                Err(Replay::Duplicate),
                "seq {seq}"
            );
        }
    }

    #[test]
    fn reordered_frames_pass_once() {
        let start = Instant::now();
        let mut guard = ReplayGuard::new(start, MAX_AGE);
        let x = NodeId::new("x");
        for seq in [5, 3, 9, 4, 1, 2, 8, 6, 7] {
            assert_eq!(
                guard.check(at(start, 100), &x, stamp(1, seq, 90)),
                Ok(()),
                "{seq}"
            );
        }
        for seq in 1..=9 {
            assert_eq!(
                guard.check(at(start, 100), &x, stamp(1, seq, 90)),
                Err(Replay::Duplicate)
            );
        }
        // Far below the highest: refused whether seen or not.
        let far = 10 + WINDOW_BITS + 5;
        assert_eq!(guard.check(at(start, 100), &x, stamp(1, far, 90)), Ok(()));
        assert_eq!(
            guard.check(at(start, 100), &x, stamp(1, 10, 90)),
            Err(Replay::BehindWindow)
        );
        assert_eq!(
            guard.check(at(start, 100), &x, stamp(1, far - 1, 90)),
            Ok(())
        );
    }

    #[test]
    fn frames_never_received_expire_after_the_sender_falls_silent() {
        let start = Instant::now();
        let mut guard = ReplayGuard::new(start, MAX_AGE);
        let x = NodeId::new("x");
        // The receiver hears every other frame; the others went to other members.
        for seq in (2..=200).step_by(2) {
            guard
                .check(at(start, seq * 10 + 3), &x, stamp(1, seq, seq * 10))
                .expect("fresh");
        }
        // The sender died after sealing frame 200 at 2,000 ms. An attacker replays frames 101 to
        // 199 that this receiver never saw. Within the accepted age some pass, once each...
        let mut accepted = 0;
        for seq in (101..200).step_by(2) {
            if guard
                .check(at(start, 2_500), &x, stamp(1, seq, seq * 10))
                .is_ok()
            {
                accepted += 1;
            }
        }
        assert!(accepted > 0);
        // ...and after it nothing does, whatever the attacker kept back.
        let too_late = at(start, 2_000 + 2_000 + 10);
        for seq in 1..=200 {
            assert!(
                guard.check(too_late, &x, stamp(1, seq, seq * 10)).is_err(),
                "{seq}"
            );
        }
        assert!(matches!(
            guard.check(too_late, &x, stamp(1, 199, 1_990)),
            Err(Replay::TooOld { .. })
        ));
    }

    #[test]
    fn withheld_frames_cannot_shift_the_clock_estimate() {
        let start = Instant::now();
        let mut guard = ReplayGuard::new(start, MAX_AGE);
        let x = NodeId::new("x");
        guard
            .check(at(start, 1_001), &x, stamp(1, 1, 1_000))
            .expect("fresh");
        // Frames held back, each released just within the limit, do not move the estimate: the
        // last one is as old as it really is.
        for seq in 2..=10 {
            let sent = 1_000 + seq * 100;
            let released = at(start, sent + 1_900);
            assert_eq!(guard.check(released, &x, stamp(1, seq, sent)), Ok(()));
        }
        assert!(matches!(
            guard.check(at(start, 2_100 + 2_100), &x, stamp(1, 11, 2_100)),
            Err(Replay::TooOld { .. })
        ));
    }

    #[test]
    fn clocks_need_not_agree_and_may_drift() {
        let start = Instant::now() + Duration::from_secs(3);
        let mut guard = ReplayGuard::new(start, MAX_AGE);
        let x = NodeId::new("x");
        // The sender's clock reads an hour ahead, and runs 0.05 % slow: over a day its frames
        // keep passing.
        let mut seq = 0;
        for minute in 0..(24 * 60) {
            seq += 1;
            let local_ms = minute * 60_000;
            let sent = 3_600_000 + local_ms - local_ms / 2000;
            assert_eq!(
                guard.check(at(start, local_ms + 5), &x, stamp(9, seq, sent)),
                Ok(()),
                "minute {minute}"
            );
        }
    }

    #[test]
    fn a_restarted_sender_is_heard_at_once_and_its_old_session_stays_refused() {
        let start = Instant::now();
        let mut guard = ReplayGuard::new(start, MAX_AGE);
        let x = NodeId::new("x");
        guard
            .check(at(start, 10), &x, stamp(1, 50, 10))
            .expect("first run");
        // The new process counts from 1 again, with its own clock.
        guard
            .check(at(start, 5_000), &x, stamp(2, 1, 3))
            .expect("restarted");
        guard
            .check(at(start, 5_010), &x, stamp(2, 2, 13))
            .expect("restarted");
        assert!(guard.check(at(start, 5_020), &x, stamp(1, 51, 20)).is_err());
        // Other senders have their own windows.
        let y = NodeId::new("y");
        guard
            .check(at(start, 5_020), &y, stamp(1, 51, 20))
            .expect("other sender");
    }

    #[test]
    fn memory_is_capped() {
        let start = Instant::now();
        let mut guard = ReplayGuard::new(start, MAX_AGE);
        let x = NodeId::new("x");
        let keep = NodeId::new("kept");
        for session in 0..(MAX_SESSIONS as u64 + 100) {
            guard
                .check(at(start, 1), &x, stamp(session, 1, 0))
                .expect("new session");
            // A session in use is never the least recently used.
            guard
                .check(at(start, 1), &keep, stamp(0, session + 1, 0))
                .expect("in use");
            assert!(guard.len() <= MAX_SESSIONS);
        }
        assert_eq!(guard.len(), MAX_SESSIONS);
        assert_eq!(
            guard.check(at(start, 1), &keep, stamp(0, 1, 0)),
            Err(Replay::BehindWindow)
        );
        assert_eq!(
            guard.check(at(start, 1), &keep, stamp(0, MAX_SESSIONS as u64, 0)),
            Err(Replay::Duplicate)
        );
    }

    #[test]
    fn bitmap_shifts_keep_what_was_seen() {
        let mut bits = [0u64; WINDOW_WORDS];
        bits[0] = 0b1011;
        shift(&mut bits, 65);
        assert_eq!(bits[1], 0b1011 << 1);
        assert_eq!(bits[0], 0);
        shift(&mut bits, 63);
        assert_eq!(bits[2], 0b1011);
        assert_eq!(bits[1], 0);
        shift(&mut bits, 62);
        assert_eq!(bits[2], 0b11 << 62);
        assert_eq!(bits[3], 0b10);
        shift(&mut bits, WINDOW_BITS);
        assert_eq!(bits, [0; WINDOW_WORDS]);
    }
}
