//! The neighbour table of a managed Layer 3 peering: one slot per
//! adjacency (the one peer on each point-to-point link), shared by every
//! worker without locks.
//!
//! Contract: a slot is one `AtomicU64` holding the MAC (48 bits) and a valid
//! bit, plus the time it was last confirmed and the time a resolution
//! request was last sent. Workers read it per frame (one relaxed load),
//! learn into it from ARP/ND (one store), and claim the right to send a
//! request with one compare-exchange, so at most one request per
//! [`REQUEST_INTERVAL_MS`] leaves per neighbour whatever the worker count.
//! A learned entry expires [`REACHABLE_MS`] after its last confirmation;
//! static entries never expire.

use crate::wire::ethernet::Mac;
use std::sync::atomic::{AtomicU64, Ordering};

/// A learned neighbour is used for this long after its last confirmation.
pub const REACHABLE_MS: u64 = 300_000;
/// At most one ARP request / neighbour solicitation per neighbour per this.
pub const REQUEST_INTERVAL_MS: u64 = 500;

const VALID: u64 = 1 << 48;
const STATIC: u64 = 1 << 49;

/// One neighbour slot.
#[derive(Debug, Default)]
struct Slot {
    mac: AtomicU64,
    confirmed_ms: AtomicU64,
    requested_ms: AtomicU64,
}

/// The neighbours of one peering, indexed by adjacency.
#[derive(Debug, Default)]
pub struct NeighborTable {
    slots: Box<[Slot]>,
}

fn pack(mac: &Mac) -> u64 {
    let mut v = 0u64;
    for b in mac {
        v = v << 8 | *b as u64;
    }
    v
}

fn unpack(v: u64) -> Mac {
    let b = v.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

impl NeighborTable {
    /// `n` empty slots.
    pub fn new(n: usize) -> NeighborTable {
        NeighborTable {
            slots: (0..n).map(|_| Slot::default()).collect(),
        }
    }

    /// Configure a static neighbour (never expires, never overwritten by learning).
    pub fn set_static(&self, slot: usize, mac: &Mac) {
        if let Some(s) = self.slots.get(slot) {
            s.mac.store(pack(mac) | VALID | STATIC, Ordering::Relaxed);
        }
    }

    /// Learn (or confirm) a neighbour's MAC at time `now_ms`.
    #[inline]
    pub fn learn(&self, slot: usize, mac: &Mac, now_ms: u64) {
        if let Some(s) = self.slots.get(slot) {
            if s.mac.load(Ordering::Relaxed) & STATIC != 0 {
                return;
            }
            s.mac.store(pack(mac) | VALID, Ordering::Relaxed);
            s.confirmed_ms.store(now_ms, Ordering::Relaxed);
        }
    }

    /// The MAC to send to, if resolved and not expired at `now_ms`.
    #[inline(always)]
    pub fn lookup(&self, slot: usize, now_ms: u64) -> Option<Mac> {
        let s = self.slots.get(slot)?;
        let v = s.mac.load(Ordering::Relaxed);
        if v & VALID == 0 {
            return None;
        }
        if v & STATIC == 0
            && now_ms.saturating_sub(s.confirmed_ms.load(Ordering::Relaxed)) > REACHABLE_MS
        {
            return None;
        }
        Some(unpack(v))
    }

    /// Claim the right to send a resolution request for `slot` now; `true`
    /// for at most one caller per [`REQUEST_INTERVAL_MS`].
    pub fn claim_request(&self, slot: usize, now_ms: u64) -> bool {
        let Some(s) = self.slots.get(slot) else {
            return false;
        };
        let last = s.requested_ms.load(Ordering::Relaxed);
        if last != 0 && now_ms.saturating_sub(last) < REQUEST_INTERVAL_MS {
            return false;
        }
        s.requested_ms
            .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Forget every learned neighbour and every request time; static
    /// neighbours stay. (A cached plan reused by the fuzz targets starts
    /// each input as a fresh one would.)
    pub fn forget_learned(&self) {
        for s in self.slots.iter() {
            if s.mac.load(Ordering::Relaxed) & STATIC == 0 {
                s.mac.store(0, Ordering::Relaxed);
            }
            s.confirmed_ms.store(0, Ordering::Relaxed);
            s.requested_ms.store(0, Ordering::Relaxed);
        }
    }

    /// (MAC, static) of every resolved slot, for reports.
    pub fn entries(&self, now_ms: u64) -> Vec<Option<(Mac, bool)>> {
        (0..self.slots.len())
            .map(|i| {
                let st = self.slots[i].mac.load(Ordering::Relaxed) & STATIC != 0;
                self.lookup(i, now_ms).map(|m| (m, st))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learn_expire_static_and_rate_limit() {
        let t = NeighborTable::new(3);
        let m = [2, 0, 0, 0, 0, 9];
        assert_eq!(t.lookup(0, 10), None);
        t.learn(0, &m, 1000);
        assert_eq!(t.lookup(0, 1000 + REACHABLE_MS), Some(m));
        assert_eq!(t.lookup(0, 1001 + REACHABLE_MS), None);
        t.set_static(1, &m);
        t.learn(1, &[2, 0, 0, 0, 0, 1], 5);
        assert_eq!(t.lookup(1, u64::MAX / 2), Some(m));
        assert!(t.claim_request(2, 100));
        assert!(!t.claim_request(2, 100 + REQUEST_INTERVAL_MS - 1));
        assert!(t.claim_request(2, 100 + REQUEST_INTERVAL_MS));
        assert_eq!(t.lookup(9, 0), None);
        assert!(!t.claim_request(9, 0));
        assert_eq!(t.entries(2000)[0], Some((m, false)));
        t.forget_learned();
        assert_eq!(t.lookup(0, 2000), None, "learned entry forgotten");
        assert_eq!(t.lookup(1, 2000), Some(m), "static entry kept");
        assert!(t.claim_request(2, 101), "request times forgotten");
    }
}
