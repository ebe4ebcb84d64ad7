//! The simulated network: per-link latency and loss, and partitions as blocking rules.

use std::collections::HashMap;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::config::Link;

/// Identifies a blocking rule, to lift it with [`Sim::unblock`](crate::Sim::unblock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RuleId(u64);

/// "Nothing from these nodes reaches those": one direction of a partition.
struct Rule {
    id: RuleId,
    from: Vec<bool>,
    to: Vec<bool>,
}

fn set_of(nodes: &[usize]) -> Vec<bool> {
    let mut set = vec![false; nodes.iter().max().map_or(0, |m| m + 1)];
    for &n in nodes {
        set[n] = true;
    }
    set
}

/// Links and partitions between node indices.
pub(crate) struct Network {
    default: Link,
    links: HashMap<(usize, usize), Link>,
    rules: Vec<Rule>,
    next_rule: u64,
}

impl Network {
    pub(crate) fn new(default: Link) -> Network {
        Network {
            default,
            links: HashMap::new(),
            rules: Vec::new(),
            next_rule: 0,
        }
    }

    pub(crate) fn set_default(&mut self, link: Link) {
        self.default = link;
    }

    pub(crate) fn set_link(&mut self, from: usize, to: usize, link: Link) {
        self.links.insert((from, to), link);
    }

    pub(crate) fn link(&self, from: usize, to: usize) -> Link {
        if self.links.is_empty() {
            return self.default;
        }
        self.links.get(&(from, to)).copied().unwrap_or(self.default)
    }

    /// Blocks everything from any node of `from` to any node of `to`.
    pub(crate) fn block(&mut self, from: &[usize], to: &[usize]) -> RuleId {
        let id = RuleId(self.next_rule);
        self.next_rule += 1;
        self.rules.push(Rule {
            id,
            from: set_of(from),
            to: set_of(to),
        });
        id
    }

    pub(crate) fn unblock(&mut self, id: RuleId) {
        self.rules.retain(|r| r.id != id);
    }

    pub(crate) fn heal(&mut self) {
        self.rules.clear();
    }

    pub(crate) fn blocked(&self, from: usize, to: usize) -> bool {
        self.rules.iter().any(|r| {
            r.from.get(from).copied().unwrap_or(false) && r.to.get(to).copied().unwrap_or(false)
        })
    }

    /// A datagram's fate: `None` if lost or blocked, else its one-way delay.
    pub(crate) fn datagram(
        &self,
        rng: &mut ChaCha8Rng,
        from: usize,
        to: usize,
    ) -> Option<Duration> {
        if self.blocked(from, to) {
            return None;
        }
        let link = self.link(from, to);
        if link.loss > 0.0 && rng.random::<f64>() < link.loss {
            return None;
        }
        Some(delay(rng, link))
    }

    /// One leg of a reliable stream: `None` if blocked either way (a TCP connection needs both
    /// directions), else its delay.
    pub(crate) fn stream(&self, rng: &mut ChaCha8Rng, from: usize, to: usize) -> Option<Duration> {
        if self.blocked(from, to) || self.blocked(to, from) {
            return None;
        }
        Some(delay(rng, self.link(from, to)))
    }
}

fn delay(rng: &mut ChaCha8Rng, link: Link) -> Duration {
    if link.jitter.is_zero() {
        link.latency
    } else {
        link.latency + link.jitter.mul_f64(rng.random::<f64>())
    }
}
