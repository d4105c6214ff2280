//! Port (link) state shared between the runtime, which follows the kernel's
//! operstate, and the workers, which read it per frame; and the per-flow
//! hash that spreads flows over the two trunk links of a circuit.
//!
//! Flows are hashed on the IP 5-tuple (addresses, protocol, ports; ports
//! only for unfragmented TCP/UDP), or on the MACs for non-IP frames, so one
//! flow always takes one link while both are up (no reordering), as the
//! MSEEs do with their active/active pair.

use crate::wire::{FrameInfo, L3};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Up/down state per port, shared by all workers.
#[derive(Clone, Debug)]
pub struct LinkState {
    up: Arc<[AtomicBool]>,
}

impl LinkState {
    /// All `ports` ports up.
    pub fn new(ports: usize) -> LinkState {
        LinkState {
            up: (0..ports).map(|_| AtomicBool::new(true)).collect(),
        }
    }

    /// Is the port up? Unknown ports are down.
    #[inline(always)]
    pub fn is_up(&self, port: u16) -> bool {
        self.up
            .get(port as usize)
            .is_some_and(|a| a.load(Ordering::Relaxed))
    }

    /// The state of every port read once: the pipeline takes one per batch,
    /// so a batch sees one consistent state and each frame tests a bit.
    #[inline]
    pub fn snapshot(&self) -> LinkSnapshot<'_> {
        let mut mask = 0u64;
        for (i, a) in self.up.iter().take(64).enumerate() {
            mask |= (a.load(Ordering::Relaxed) as u64) << i;
        }
        LinkSnapshot { mask, state: self }
    }

    /// Set a port up or down.
    pub fn set(&self, port: u16, up: bool) {
        if let Some(a) = self.up.get(port as usize) {
            a.store(up, Ordering::Relaxed);
        }
    }

    /// Number of ports tracked.
    pub fn len(&self) -> usize {
        self.up.len()
    }

    /// True if no ports are tracked.
    pub fn is_empty(&self) -> bool {
        self.up.is_empty()
    }
}

/// Link state read once (see [`LinkState::snapshot`]): ports 0..64 from a
/// bit mask, any others live.
#[derive(Clone, Copy, Debug)]
pub struct LinkSnapshot<'a> {
    mask: u64,
    state: &'a LinkState,
}

impl LinkSnapshot<'_> {
    /// Was the port up when the snapshot was taken? Unknown ports are down.
    #[inline(always)]
    pub fn is_up(&self, port: u16) -> bool {
        if port < 64 {
            (self.mask >> port) & 1 != 0
        } else {
            self.state.is_up(port)
        }
    }
}

#[inline(always)]
fn word(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(w) => u32::from_ne_bytes([w[0], w[1], w[2], w[3]]),
        None => 0,
    }
}

/// The flow hash of a parsed frame (see the module header).
#[inline(always)]
pub fn flow_hash(info: &FrameInfo, frame: &[u8]) -> u32 {
    let l3 = info.l3_offset as usize;
    let mut h: u32 = match info.l3 {
        // One bounds check for both addresses (a parsed IPv4 header has them).
        L3::Ipv4 => match frame.get(l3 + 12..).and_then(|a| a.first_chunk::<8>()) {
            Some(&[s0, s1, s2, s3, d0, d1, d2, d3]) => {
                u32::from_ne_bytes([s0, s1, s2, s3])
                    ^ u32::from_ne_bytes([d0, d1, d2, d3]).rotate_left(16)
            }
            None => word(frame, l3 + 12) ^ word(frame, l3 + 16).rotate_left(16),
        },
        L3::Ipv6 => {
            let mut x = 0u32;
            for i in 0..4 {
                x ^= word(frame, l3 + 8 + 4 * i) ^ word(frame, l3 + 24 + 4 * i).rotate_left(16);
            }
            x
        }
        _ => word(frame, 0) ^ word(frame, 4) ^ word(frame, 8),
    };
    if info.is_ip() {
        h ^= (info.protocol as u32) << 8;
        if info.has_ports {
            h ^= ((info.src_port as u32) << 16 | info.dst_port as u32).rotate_left(5);
        }
    }
    // Finalise (murmur3 fmix32) so the top bit depends on every input bit.
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_defaults_up_and_toggles() {
        let s = LinkState::new(2);
        assert!(s.is_up(0) && s.is_up(1));
        s.set(1, false);
        assert!(!s.is_up(1));
        assert!(!s.is_up(7));
        let snap = s.snapshot();
        assert!(snap.is_up(0) && !snap.is_up(1) && !snap.is_up(7) && !snap.is_up(100));
    }

    #[test]
    fn hash_spreads_ports() {
        let f = crate::wire::frame::tests::QINQ_UDP;
        let mut info = crate::wire::parse(&f).unwrap();
        let mut ones = 0;
        for p in 0..1000u16 {
            info.src_port = 40000 + p;
            ones += flow_hash(&info, &f) >> 31;
        }
        assert!((350..650).contains(&ones), "{ones} of 1000 on link 1");
    }
}
