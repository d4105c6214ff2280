//! Counters. Each worker owns one [`Counters`] (plain integers, no atomics
//! on the hot path); readers sum them with [`Counters::add`].

use crate::frame::{DropReason, Verdict};
use serde::Serialize;

/// Per-port packet and byte counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortCounters {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames forwarded out of this port.
    pub tx_packets: u64,
    /// Bytes forwarded out of this port.
    pub tx_bytes: u64,
}

/// Informational L3 counters (frames are counted once by their verdict;
/// these say what the L3 service did on the way).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct L3Counters {
    /// Packets routed to a neighbour.
    pub routed: u64,
    /// ICMP/ICMPv6 errors sent (time exceeded, unreachable).
    pub icmp_errors: u64,
    /// Echo replies sent.
    pub echo_replies: u64,
    /// ARP replies and neighbour advertisements sent.
    pub nd_answers: u64,
    /// ARP requests and neighbour solicitations sent.
    pub nd_requests: u64,
    /// Neighbour MACs learned or confirmed.
    pub nd_learned: u64,
    /// ARP frames handed to a host interface.
    pub punted_arp: u64,
    /// ICMPv6 (neighbour discovery and the rest the data plane does not
    /// answer) handed to a host interface.
    pub punted_nd: u64,
    /// Other packets for this forwarder (BGP, BFD, …) handed to a host
    /// interface.
    pub punted_ip: u64,
}

impl L3Counters {
    /// Add another worker's counters.
    pub fn add(&mut self, o: &L3Counters) {
        self.routed += o.routed;
        self.icmp_errors += o.icmp_errors;
        self.echo_replies += o.echo_replies;
        self.nd_answers += o.nd_answers;
        self.nd_requests += o.nd_requests;
        self.nd_learned += o.nd_learned;
        self.punted_arp += o.punted_arp;
        self.punted_nd += o.punted_nd;
        self.punted_ip += o.punted_ip;
    }
}

/// The counters of one worker (or the sum of several).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Indexed by port id.
    pub ports: Vec<PortCounters>,
    /// Indexed by [`DropReason::index`].
    pub drops: [u64; DropReason::COUNT],
    /// IP packets whose DSCP the marker changed.
    pub dscp_rewritten: u64,
    /// Frames consumed by the forwarder itself (l3: ARP/ND it learned
    /// from, packets to its own addresses it did not answer).
    pub local: u64,
    /// What the l3 service did.
    pub l3: L3Counters,
    /// Packets waiting for a neighbour now (held by the l3 stage; each is
    /// counted as sent or dropped when it leaves the queue).
    pub held: u64,
}

impl Counters {
    /// Zeroed counters for `ports` ports.
    pub fn new(ports: usize) -> Counters {
        Counters {
            ports: vec![PortCounters::default(); ports],
            drops: [0; DropReason::COUNT],
            dscp_rewritten: 0,
            local: 0,
            l3: L3Counters::default(),
            held: 0,
        }
    }

    /// Add another worker's counters to these.
    pub fn add(&mut self, other: &Counters) {
        if self.ports.len() < other.ports.len() {
            self.ports
                .resize(other.ports.len(), PortCounters::default());
        }
        for (a, b) in self.ports.iter_mut().zip(&other.ports) {
            a.rx_packets += b.rx_packets;
            a.rx_bytes += b.rx_bytes;
            a.tx_packets += b.tx_packets;
            a.tx_bytes += b.tx_bytes;
        }
        for (a, b) in self.drops.iter_mut().zip(&other.drops) {
            *a += b;
        }
        self.dscp_rewritten += other.dscp_rewritten;
        self.local += other.local;
        self.l3.add(&other.l3);
        self.held += other.held;
    }

    /// Count one frame by its verdict: forwarded frames as tx of their
    /// port, drops (and frames turned into resolution requests) by reason,
    /// local frames as local, held packets as held (until they leave).
    #[inline(always)]
    pub fn count(&mut self, verdict: Verdict, len: usize) {
        match verdict {
            Verdict::Forward(out) => {
                if let Some(c) = self.ports.get_mut(out as usize) {
                    c.tx_packets += 1;
                    c.tx_bytes += len as u64;
                }
            }
            Verdict::Drop(r) => self.drop(r),
            Verdict::Resolve(_) => self.drop(DropReason::NeighborUnresolved),
            Verdict::Local => self.local += 1,
            Verdict::Held => self.held += 1,
            Verdict::Pending => {}
        }
    }

    /// Count a drop.
    #[inline(always)]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r.index()] += 1;
    }

    /// Frames dropped for any reason.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Frames received on any port.
    pub fn total_rx(&self) -> u64 {
        self.ports.iter().map(|p| p.rx_packets).sum()
    }

    /// Frames forwarded out of any port.
    pub fn total_tx(&self) -> u64 {
        self.ports.iter().map(|p| p.tx_packets).sum()
    }

    /// Drop count for one reason.
    pub fn drops_for(&self, r: DropReason) -> u64 {
        self.drops[r.index()]
    }
}
