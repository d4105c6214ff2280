//! The MPLS side of an attachment, as the stages read it: what a labelled
//! frame received on a backbone port is ([`MplsIn`]: the label that
//! classifies it and how to take it out of its labels) and what a frame
//! leaving toward the backbone gets ([`MplsPush`]: labels, control word,
//! TTL model, TC map, the backbone router's MAC).
//!
//! Contract: both are plain `Copy` values built by `config::compile`; the
//! labels were checked there (16 ..= 1,048,575) and the words carry only
//! the label and bottom-of-stack bits, the per-packet TC and TTL being
//! or-ed in by the egress tail. An attachment is an **L3VPN** attachment
//! (IP under the labels; an `l3` peering's access side) or an Ethernet
//! **pseudowire** (RFC 4448: an Ethernet frame, optionally behind the
//! RFC 4385 control word; an `l2` peering's access side).

use crate::wire::ethernet::Mac;

/// How TTL crosses the label edge (RFC 3443).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TtlModel {
    /// The label's TTL is the IP TTL: copied into the label on push, and on
    /// pop the IP TTL becomes the smaller of the two (hops in the backbone
    /// count).
    #[default]
    Uniform,
    /// The backbone is one hop: pushed labels carry TTL 255, the IP TTL is
    /// left as it is on pop.
    Pipe,
}

impl TtlModel {
    /// Lower-case name as in configs and reports.
    pub const fn name(self) -> &'static str {
        match self {
            TtlModel::Uniform => "uniform",
            TtlModel::Pipe => "pipe",
        }
    }
}

/// The default TC map: TC = the DSCP's class selector (DSCP >> 3), as
/// 4-bit fields indexed by class.
pub const TC_MAP_CLASS_SELECTOR: u32 = 0x7654_3210;

/// How a labelled frame received on a backbone port is taken in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MplsIn {
    /// The bottom-of-stack label that names the attachment (VPN label or
    /// pseudowire label).
    pub label: u32,
    /// An Ethernet pseudowire (else L3VPN: IP under the labels).
    pub pseudowire: bool,
    /// The pseudowire carries the control word.
    pub control_word: bool,
    /// TTL model on pop (L3VPN).
    pub ttl: TtlModel,
}

/// What a frame leaving toward the backbone gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MplsPush {
    /// Label stack entries, outermost first, as words: label << 12, the
    /// bottom-of-stack bit (0x100) on the last; TC and TTL zero.
    pub words: [u32; 2],
    /// Entries used of `words` (1 or 2).
    pub count: u8,
    /// An Ethernet pseudowire: the whole frame (tags popped) goes behind a
    /// new Ethernet header and the labels. Else L3VPN: the IP packet goes
    /// behind the labels.
    pub pseudowire: bool,
    /// The pseudowire carries the control word (all zero: no sequencing).
    pub control_word: bool,
    /// TTL model on push.
    pub ttl: TtlModel,
    /// TC by the DSCP's class (DSCP >> 3): 4 bits per class, class 0 in
    /// the low bits ([`TC_MAP_CLASS_SELECTOR`] by default).
    pub tc_map: u32,
    /// The backbone router's MAC: destination of pseudowire frames (an
    /// L3VPN's next hop comes from the neighbour table, where compile
    /// puts the same MAC).
    pub peer_mac: Mac,
    /// This forwarder's MAC on the backbone port: source of pseudowire
    /// frames.
    pub own_mac: Mac,
}

impl MplsPush {
    /// Labels `labels` (outermost first; the first one or two are used,
    /// the last gets the bottom-of-stack bit).
    pub fn words_of(labels: &[u32]) -> ([u32; 2], u8) {
        let n = labels.len().clamp(1, 2);
        let mut w = [0u32; 2];
        for (dst, l) in w.iter_mut().zip(labels.iter().take(2)) {
            *dst = (l & 0xf_ffff) << 12;
        }
        w[n - 1] |= 0x100;
        (w, n as u8)
    }

    /// The TC of a packet of DSCP `dscp` by the map.
    #[inline(always)]
    pub fn tc_of_dscp(&self, dscp: u8) -> u8 {
        ((self.tc_map >> (4 * u32::from((dscp >> 3) & 7))) & 7) as u8
    }

    /// Bytes this push adds in front of an IP packet (L3VPN: the labels;
    /// the ethertype stays one) or a frame (pseudowire: Ethernet header,
    /// labels, control word).
    pub fn overhead(&self) -> usize {
        let labels = 4 * self.count as usize;
        if self.pseudowire {
            14 + labels + 4 * usize::from(self.control_word)
        } else {
            labels
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_carry_label_and_bottom_bit() {
        assert_eq!(MplsPush::words_of(&[1001]), ([1001 << 12 | 0x100, 0], 1));
        assert_eq!(
            MplsPush::words_of(&[3001, 1001]),
            ([3001 << 12, 1001 << 12 | 0x100], 2)
        );
    }

    #[test]
    fn tc_by_class_selector_or_map() {
        let mut p = MplsPush {
            words: [0; 2],
            count: 1,
            pseudowire: false,
            control_word: false,
            ttl: TtlModel::Uniform,
            tc_map: TC_MAP_CLASS_SELECTOR,
            peer_mac: [0; 6],
            own_mac: [0; 6],
        };
        assert_eq!(p.tc_of_dscp(46), 5);
        assert_eq!(p.tc_of_dscp(0), 0);
        assert_eq!(p.tc_of_dscp(63), 7);
        p.tc_map = 0x1111_1113;
        assert_eq!(p.tc_of_dscp(7), 3);
        assert_eq!(p.tc_of_dscp(46), 1);
        assert_eq!(p.overhead(), 4);
        p.pseudowire = true;
        p.control_word = true;
        assert_eq!(p.overhead(), 22);
    }
}
