//! Health scores: success rate over a sliding window per check, weighted into component and
//! system scores.
//!
//! Scores are kept in integer parts-per-million and updated incrementally, so a result costs O(1)
//! however many checks there are, and sums never drift the way repeated float additions would.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use crate::probe::Verdict;

const PPM: u64 = 1_000_000;

/// Points a verdict earns: a warning is half a success.
fn points(verdict: Verdict) -> u64 {
    match verdict {
        Verdict::Pass => 2,
        Verdict::Warn => 1,
        Verdict::Fail => 0,
    }
}

/// The last `capacity` verdicts of one check.
#[derive(Clone, Debug)]
pub(crate) struct ScoreWindow {
    verdicts: VecDeque<Verdict>,
    capacity: usize,
    points: u64,
}

impl ScoreWindow {
    pub(crate) fn new(capacity: usize) -> Self {
        ScoreWindow {
            verdicts: VecDeque::new(),
            capacity: capacity.max(1),
            points: 0,
        }
    }

    pub(crate) fn push(&mut self, verdict: Verdict) {
        if self.verdicts.len() == self.capacity {
            if let Some(old) = self.verdicts.pop_front() {
                self.points -= points(old);
            }
        }
        self.verdicts.push_back(verdict);
        self.points += points(verdict);
    }

    /// Score in parts per million; `None` before the first counted result.
    pub(crate) fn ppm(&self) -> Option<u64> {
        let len = self.verdicts.len() as u64;
        (len > 0).then(|| self.points * PPM / (2 * len))
    }
}

/// Converts parts per million to the 0.0–1.0 scale shown to users.
pub(crate) fn to_ratio(ppm: u64) -> f64 {
    ppm as f64 / PPM as f64
}

/// A weighted sum of check scores.
#[derive(Clone, Copy, Debug, Default)]
struct Weighted {
    sum: u64,
    weight: u64,
}

impl Weighted {
    fn score(&self) -> Option<f64> {
        (self.weight > 0).then(|| to_ratio(self.sum / self.weight))
    }
}

/// One check's contribution to the board: its weight, component and current score.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Contribution {
    pub(crate) component: Option<Arc<str>>,
    pub(crate) weight: u64,
    pub(crate) ppm: u64,
}

/// Component and system scores, maintained incrementally from per-check contributions.
#[derive(Debug, Default)]
pub(crate) struct ScoreBoard {
    system: Weighted,
    components: HashMap<Arc<str>, Weighted>,
}

impl ScoreBoard {
    pub(crate) fn add(&mut self, c: &Contribution) {
        self.system.sum += c.weight * c.ppm;
        self.system.weight += c.weight;
        if let Some(component) = &c.component {
            let w = self.components.entry(component.clone()).or_default();
            w.sum += c.weight * c.ppm;
            w.weight += c.weight;
        }
    }

    pub(crate) fn remove(&mut self, c: &Contribution) {
        self.system.sum -= c.weight * c.ppm;
        self.system.weight -= c.weight;
        if let Some(component) = &c.component {
            if let Some(w) = self.components.get_mut(component) {
                w.sum -= c.weight * c.ppm;
                w.weight -= c.weight;
                if w.weight == 0 {
                    self.components.remove(component);
                }
            }
        }
    }

    /// The system score; 1.0 while nothing has been scored.
    pub(crate) fn system(&self) -> f64 {
        self.system.score().unwrap_or(1.0)
    }

    pub(crate) fn components(&self) -> BTreeMap<Arc<str>, f64> {
        self.components
            .iter()
            .filter_map(|(name, w)| Some((name.clone(), w.score()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_a_sliding_success_rate() {
        let mut w = ScoreWindow::new(4);
        assert_eq!(w.ppm(), None);
        for v in [Verdict::Pass, Verdict::Fail, Verdict::Pass, Verdict::Warn] {
            w.push(v);
        }
        assert_eq!(w.ppm(), Some(625_000));
        w.push(Verdict::Pass);
        w.push(Verdict::Pass);
        assert_eq!(w.ppm(), Some(875_000), "the two oldest fell out");
    }

    #[test]
    fn critical_checks_weigh_double_and_components_are_separate() {
        let mut board = ScoreBoard::default();
        let db = Contribution {
            component: Some("db".into()),
            weight: 2,
            ppm: 500_000,
        };
        let cache = Contribution {
            component: Some("cache".into()),
            weight: 1,
            ppm: PPM,
        };
        board.add(&db);
        board.add(&cache);
        assert!((board.system() - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(board.components().get("db"), Some(&0.5));
        board.remove(&db);
        assert_eq!(board.system(), 1.0);
        assert_eq!(board.components().get("db"), None);
    }
}
