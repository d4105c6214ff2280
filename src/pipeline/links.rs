//! Port (link) state shared between the runtime, which follows the kernel's
//! operstate, and the workers, which read it per frame; and the per-flow
//! hash that spreads flows over the two trunk links of a circuit.
//!
//! Flows are hashed on the IP 5-tuple (addresses, protocol, ports; ports
//! only for unfragmented TCP/UDP), or on the MACs for non-IP frames, so one
//! flow always takes one link while both are up (no reordering), as the
//! MSEEs do with their active/active pair.

use crate::wire::{FrameInfo, L3};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

/// The link is down in the kernel (operstate, carrier, or being reopened).
const OPER_DOWN: u8 = 1;
/// The operator took the port down (`xconnect ctl link PORT down`).
const ADMIN_DOWN: u8 = 2;

/// Up/down state per port, shared by all workers: a port forwards when it
/// is neither down in the kernel (set by the link monitor) nor taken down
/// by the operator (`ctl link`). The two are bits of one atomic per port,
/// each writer changing only its own bit, so neither undoes the other.
#[derive(Clone, Debug)]
pub struct LinkState {
    down: Arc<[AtomicU8]>,
    /// Times each port went from forwarding to not (failovers).
    downs: Arc<[AtomicU64]>,
    /// Ports in use (ids below it); the slots above wait for ports a
    /// reload adds ([`LinkState::grow`]).
    active: Arc<AtomicUsize>,
}

impl LinkState {
    /// All `ports` ports up.
    pub fn new(ports: usize) -> LinkState {
        LinkState::with_capacity(ports, ports)
    }

    /// `ports` ports up, room for `capacity` in all; the ports beyond
    /// `ports` are down in the kernel's terms until the link monitor says
    /// otherwise.
    pub fn with_capacity(ports: usize, capacity: usize) -> LinkState {
        let capacity = capacity.max(ports);
        LinkState {
            down: (0..capacity)
                .map(|i| AtomicU8::new(if i < ports { 0 } else { OPER_DOWN }))
                .collect(),
            downs: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            active: Arc::new(AtomicUsize::new(ports)),
        }
    }

    /// Take ports up to `ports` in use (a reload added ports); `false` if
    /// that is beyond the capacity.
    pub fn grow(&self, ports: usize) -> bool {
        if ports > self.down.len() {
            return false;
        }
        self.active.fetch_max(ports, Ordering::Release);
        true
    }

    /// Ports this state can hold.
    pub fn capacity(&self) -> usize {
        self.down.len()
    }

    /// Is the port up (in the kernel and for the operator)? Unknown ports
    /// are down.
    #[inline(always)]
    pub fn is_up(&self, port: u16) -> bool {
        self.down
            .get(port as usize)
            .is_some_and(|a| a.load(Ordering::Relaxed) == 0)
    }

    /// Did the operator take the port down?
    pub fn is_admin_down(&self, port: u16) -> bool {
        self.down
            .get(port as usize)
            .is_some_and(|a| a.load(Ordering::Relaxed) & ADMIN_DOWN != 0)
    }

    /// Is the port up in the kernel (whatever the operator said)?
    pub fn is_oper_up(&self, port: u16) -> bool {
        self.down
            .get(port as usize)
            .is_some_and(|a| a.load(Ordering::Relaxed) & OPER_DOWN == 0)
    }

    /// Take the port down for the operator, or give it back to the kernel's
    /// state.
    pub fn set_admin(&self, port: u16, up: bool) {
        self.set_bit(port, ADMIN_DOWN, !up);
    }

    /// How many times the port stopped forwarding (went down in the kernel
    /// or was taken down, from up).
    pub fn down_events(&self, port: u16) -> u64 {
        self.downs
            .get(port as usize)
            .map_or(0, |a| a.load(Ordering::Relaxed))
    }

    fn set_bit(&self, port: u16, bit: u8, on: bool) {
        if let Some(a) = self.down.get(port as usize) {
            if on {
                if a.fetch_or(bit, Ordering::Relaxed) == 0 {
                    if let Some(n) = self.downs.get(port as usize) {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                }
            } else {
                a.fetch_and(!bit, Ordering::Relaxed);
            }
        }
    }

    /// The state of every port read once: the pipeline takes one per batch,
    /// so a batch sees one consistent state and each frame tests a bit.
    #[inline]
    pub fn snapshot(&self) -> LinkSnapshot<'_> {
        let mut mask = 0u64;
        let active = self.active.load(Ordering::Acquire).min(64);
        for (i, a) in self.down.iter().take(active).enumerate() {
            mask |= ((a.load(Ordering::Relaxed) == 0) as u64) << i;
        }
        LinkSnapshot { mask, state: self }
    }

    /// Set a port up or down in the kernel's terms (the link monitor).
    pub fn set(&self, port: u16, up: bool) {
        self.set_bit(port, OPER_DOWN, !up);
    }

    /// Number of ports in use.
    pub fn len(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// True if no ports are in use.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
    fn room_for_more_ports_starts_down_and_grows() {
        let s = LinkState::with_capacity(2, 4);
        assert_eq!((s.len(), s.capacity()), (2, 4));
        assert!(s.is_up(1) && !s.is_up(2) && !s.is_oper_up(3));
        // The snapshot reads the ports in use only.
        s.set(2, true);
        assert!(s.is_up(2) && !s.snapshot().is_up(2));
        assert!(s.grow(3));
        assert!(s.snapshot().is_up(2) && !s.snapshot().is_up(3));
        assert_eq!(s.down_events(2), 0, "starting down is no failover");
        assert!(!s.grow(5));
        assert!(s.grow(2), "never shrinks");
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn admin_and_kernel_state_do_not_undo_each_other() {
        let s = LinkState::new(1);
        s.set_admin(0, false);
        assert!(!s.is_up(0) && s.is_admin_down(0) && s.is_oper_up(0));
        // The kernel says up again (a flap): still down for the operator.
        s.set(0, false);
        s.set(0, true);
        assert!(!s.is_up(0) && !s.snapshot().is_up(0));
        s.set_admin(0, true);
        assert!(s.is_up(0) && s.snapshot().is_up(0));
        // Operator up while the kernel has it down: down.
        s.set(0, false);
        s.set_admin(0, true);
        assert!(!s.is_up(0) && !s.is_oper_up(0) && !s.is_admin_down(0));
        // Down from forwarding twice: held down, then kernel down (the
        // kernel flap while held down stopped nothing that forwarded).
        assert_eq!(s.down_events(0), 2);
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
