//! What the Raft server lets any peer hold: connections, per peer address and in total, and
//! bytes of frames being read, across all connections. Every accepted connection takes a
//! [`Slot`] first (none free: the connection is closed at once), and every frame body a
//! [`Budget`] share of its length before a byte of it is buffered, so the memory the port can
//! be made to hold is bounded whatever peers announce or how slowly they send.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections open at once to the Raft port, from all peers.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections open at once from one peer address. A voter keeps one link to each other voter
/// and opens a few short-lived ones for votes and pre-votes; several voters may share a host.
pub const MAX_PER_ADDRESS: usize = 32;
/// Bytes of frame bodies being read at once, across all connections: a few of the largest
/// frames.
pub const FRAME_BUDGET: usize = 64 << 20;

/// Why a connection was refused a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    /// The address holds its share already.
    #[error("{0} connections from this address are open already")]
    Address(usize),
    /// The port holds its total already.
    #[error("{0} connections are open already")]
    Total(usize),
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// The connection slots of one Raft port.
#[derive(Clone, Debug)]
pub struct Slots {
    counts: Arc<Mutex<Counts>>,
    per_address: usize,
    total: usize,
}

/// One taken connection slot, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    counts: Arc<Mutex<Counts>>,
    address: IpAddr,
}

impl Slots {
    /// Slots for at most `per_address` connections from one address and `total` in all.
    pub fn new(per_address: usize, total: usize) -> Slots {
        Slots {
            counts: Arc::default(),
            per_address,
            total,
        }
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        lock(&self.counts).total
    }

    /// A slot for a connection from `address`, if both its share and the total allow one. An
    /// IPv4 peer reaching an IPv6 socket counts as its IPv4 address.
    pub fn take(&self, address: IpAddr) -> Result<Slot, Full> {
        let address = address.to_canonical();
        let mut counts = lock(&self.counts);
        if counts.total >= self.total {
            return Err(Full::Total(counts.total));
        }
        let mine = counts.by_address.entry(address).or_insert(0);
        if *mine >= self.per_address {
            return Err(Full::Address(*mine));
        }
        *mine += 1;
        counts.total += 1;
        Ok(Slot {
            counts: self.counts.clone(),
            address,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        counts.total = counts.total.saturating_sub(1);
        if let Some(mine) = counts.by_address.get_mut(&self.address) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                counts.by_address.remove(&self.address);
            }
        }
    }
}

fn lock(counts: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
    match counts.lock() {
        Ok(counts) => counts,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Bytes of frame bodies being read, shared by all connections of one port.
#[derive(Clone, Debug)]
pub struct Budget {
    bytes: Arc<Semaphore>,
    size: usize,
}

impl Budget {
    /// A budget of `size` bytes.
    pub fn new(size: usize) -> Budget {
        Budget {
            bytes: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// Waits for `len` bytes of the budget; they are given back when the share is dropped. A
    /// length beyond the whole budget is never granted (the frame cap keeps below it).
    pub async fn share(&self, len: usize) -> Option<OwnedSemaphorePermit> {
        if len > self.size {
            return None;
        }
        let len = u32::try_from(len).ok()?;
        self.bytes.clone().acquire_many_owned(len).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));

    #[test]
    fn each_address_gets_its_share_and_all_together_the_total() {
        let slots = Slots::new(2, 3);
        let a1 = slots.take(A).expect("first");
        let _a2 = slots.take(A).expect("second");
        assert_eq!(slots.take(A).map(drop), Err(Full::Address(2)));
        let _b1 = slots.take(B).expect("another address");
        assert_eq!(slots.take(B).map(drop), Err(Full::Total(3)));
        drop(a1);
        assert_eq!(slots.open(), 2);
        let _a3 = slots.take(A).expect("a slot given back is free again");
        let mapped = "::ffff:127.0.0.2".parse::<IpAddr>().expect("address");
        assert!(
            slots.take(mapped).is_err(),
            "an IPv4-mapped address counts as the IPv4 one"
        );
    }

    #[tokio::test]
    async fn the_budget_holds_back_what_exceeds_it_until_bytes_are_given_back() {
        let budget = Budget::new(100);
        assert!(budget.share(101).await.is_none(), "never fits");
        let sixty = budget.share(60).await.expect("fits");
        let waiting = tokio::time::timeout(Duration::from_millis(20), budget.share(50)).await;
        assert!(waiting.is_err(), "60 + 50 exceed 100");
        drop(sixty);
        assert!(budget.share(100).await.is_some());
    }
}
