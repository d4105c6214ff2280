//! The egress tail: the one way a frame leaves the pipeline, whatever
//! service sent it. Every `l2` cross-connect and every routed `l3` packet
//! ends in [`Tail::run`]:
//!
//! MTU check → DSCP **mark** (the policy of the direction) → **link pick**
//! (the flow hash over the links that were up in the batch's
//! [`LinkSnapshot`]) → next-hop MAC (`l3`: the neighbour on the picked
//! link; `l2`: none) → **encap** (pop the ingress attachment's tags, push
//! the egress tags with their PCP, or toward an MPLS backbone the labels:
//! [`super::mpls::push`]) → **MAC rewrite** (`l3` only).
//!
//! Contract: the tail never panics, allocates or locks; it changes only the
//! tags, the DSCP bits (with the IPv4 checksum patched) and, for routed
//! frames, the MACs. PCP of the pushed tags: DSCP >> 3 when the peering
//! sets `pcp_from_dscp` and the frame is IP, else the PCP of the received
//! outer tag (0 for an untagged frame). A routed frame whose next hop is
//! unresolved stops after the link pick, marked but not encapsulated
//! ([`Step::Unresolved`]); [`finish`] completes it once the neighbour
//! answers.

use super::links::{flow_hash, LinkSnapshot};
use crate::frame::{DropReason, Meta, PortId, Verdict};
use crate::plan::{neighbor_slot, Adjacency, Family, MplsPush, NeighborTable, TagPush};
use crate::qos::{pcp_from_dscp, Marker};
use crate::wire::ethernet::Mac;
use crate::wire::{FrameInfo, PacketBuf};

/// One egress link: the tags to push (as words, PCP zero) on a port, and
/// for a routed frame this forwarder's MAC there and the neighbour slot of
/// the next hop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Out {
    /// Tags as words (TPID << 16 | TCI), outermost first, PCP bits zero.
    pub words: [u32; 3],
    /// Tags used of `words` (0..=3).
    pub count: u8,
    /// The egress port.
    pub port: PortId,
    /// Source MAC of routed frames (our MAC on the port).
    pub src_mac: Mac,
    /// Neighbour slot of the next hop (routed frames).
    pub slot: u8,
    /// Toward an MPLS backbone: the labels to push ([`super::mpls::push`]).
    pub mpls: Option<MplsPush>,
}

impl Out {
    /// A cross-connect egress: push `p`'s tags on its port.
    #[inline(always)]
    pub fn bridged(p: &TagPush) -> Out {
        Out {
            words: p.words(),
            count: p.count,
            port: p.port,
            src_mac: [0; 6],
            slot: 0,
            mpls: p.mpls,
        }
    }

    /// A routed egress by link `a` for a packet of family `fam`.
    #[inline(always)]
    pub fn routed(a: &Adjacency, fam: Family) -> Out {
        Out {
            words: a.push.words(),
            count: a.push.count,
            port: a.port,
            src_mac: a.mac,
            slot: neighbor_slot(a.side, fam) as u8,
            mpls: a.push.mpls,
        }
    }
}

/// How the frames of one attachment (`l2`) or one route path (`l3`) leave,
/// resolved once per batch against its link snapshot.
#[derive(Clone, Copy, Debug)]
pub struct Tail<'p> {
    /// IP MTU (for non-IP frames: the bytes after the ethertype).
    pub mtu: u16,
    /// Pushed tags take PCP = DSCP >> 3.
    pub pcp_from_dscp: bool,
    /// The marker of the direction; `None` when it never changes a packet.
    pub marker: Option<&'p Marker>,
    /// The egress, or (`by_flow`) the two picked per flow.
    pub out: [Out; 2],
    /// Both links up: the flow hash picks `out[0]` or `out[1]`.
    pub by_flow: bool,
    /// Some egress is toward an MPLS backbone: run the frames through
    /// [`Tail::run_labelled`]. Decided once per tail, so the tag path of
    /// [`Tail::run`] holds no label code (a label check per frame there cost
    /// the VLAN cases 5-15 %, measured).
    pub labelled: bool,
}

impl<'p> Tail<'p> {
    /// A tail over one link or, when both are up, a pair picked per flow;
    /// `None` when none of the candidates is up (the caller names why).
    #[inline(always)]
    pub fn over(
        links: &LinkSnapshot<'_>,
        pair: [Out; 2],
        mtu: u16,
        pcp_from_dscp: bool,
        marker: Option<&'p Marker>,
    ) -> Option<Tail<'p>> {
        let (out, by_flow) = match (links.is_up(pair[0].port), links.is_up(pair[1].port)) {
            (true, true) => (pair, pair[0] != pair[1]),
            (true, false) => ([pair[0]; 2], false),
            (false, true) => ([pair[1]; 2], false),
            (false, false) => return None,
        };
        Some(Tail {
            mtu,
            pcp_from_dscp,
            marker: marker.filter(|m| !m.is_identity()),
            labelled: out[0].mpls.is_some() || out[1].mpls.is_some(),
            out,
            by_flow,
        })
    }

    /// Run a classified frame through the tail (see the module header).
    /// `pop` is the number of tags of its ingress attachment; `next_hop`
    /// gives the destination MAC of the picked link.
    #[inline(always)]
    pub fn run<N: NextHopMac>(
        &self,
        pop: u8,
        rewritten: &mut u64,
        buf: &mut PacketBuf,
        meta: &mut Meta,
        next_hop: &N,
    ) -> Step {
        self.run_as::<N, false>(pop, rewritten, buf, meta, next_hop)
    }

    /// [`Tail::run`] for a tail with an egress toward an MPLS backbone
    /// ([`Tail::labelled`]): the same stages, labels put on by
    /// [`super::mpls::push`].
    #[inline(never)]
    pub fn run_labelled<N: NextHopMac>(
        &self,
        pop: u8,
        rewritten: &mut u64,
        buf: &mut PacketBuf,
        meta: &mut Meta,
        next_hop: &N,
    ) -> Step {
        self.run_as::<N, true>(pop, rewritten, buf, meta, next_hop)
    }

    #[inline(always)]
    fn run_as<N: NextHopMac, const LABELS: bool>(
        &self,
        pop: u8,
        rewritten: &mut u64,
        buf: &mut PacketBuf,
        meta: &mut Meta,
        next_hop: &N,
    ) -> Step {
        // MTU: the IP packet (padding excluded) or, for non-IP, the L2 payload.
        if meta.info.l3_len > self.mtu as u32 {
            return Step::Done(Verdict::Drop(DropReason::OverMtu));
        }
        mark(self.marker, rewritten, buf, meta);
        // Link pick. With both links up the flow hash picks one without a
        // branch: its top bit indexes the pair (a branch on it would be
        // mispredicted on every other flow).
        let out = if self.by_flow {
            &self.out[(flow_hash(&meta.info, buf.frame()) >> 31) as usize & 1]
        } else {
            &self.out[0]
        };
        let dst = match next_hop.mac(out) {
            Dest::Keep => None,
            Dest::To(mac) => Some(mac),
            Dest::Unresolved => return Step::Unresolved(*out),
        };
        if LABELS {
            return Step::Done(finish_any(
                out,
                pop,
                self.pcp_from_dscp,
                dst.as_ref(),
                buf,
                &meta.info,
            ));
        }
        Step::Done(finish(
            out,
            pop,
            self.pcp_from_dscp,
            dst.as_ref(),
            buf,
            &meta.info,
        ))
    }
}

/// What the tail did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The frame's verdict.
    Done(Verdict),
    /// A routed frame whose next hop on this link is not resolved: marked,
    /// not yet encapsulated; [`finish`] it once the neighbour is known.
    Unresolved(Out),
}

/// The destination MAC of a frame leaving by a picked link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// Keep the frame's MACs (a cross-connect).
    Keep,
    /// Address it to this MAC, from the link's `src_mac` (routed).
    To(Mac),
    /// The next hop is not resolved.
    Unresolved,
}

/// Where the destination MAC of a picked link comes from.
pub trait NextHopMac {
    /// The destination of a frame leaving by `out`.
    fn mac(&self, out: &Out) -> Dest;
}

/// A cross-connect: frames keep their MACs.
pub struct Bridged;

impl NextHopMac for Bridged {
    #[inline(always)]
    fn mac(&self, _out: &Out) -> Dest {
        Dest::Keep
    }
}

/// A routed frame: the neighbour of the picked link, from the peering's
/// neighbour table at the batch's time.
pub struct Neighbors<'a> {
    /// The peering's neighbours.
    pub table: &'a NeighborTable,
    /// The batch's time.
    pub now_ms: u64,
}

impl NextHopMac for Neighbors<'_> {
    #[inline(always)]
    fn mac(&self, out: &Out) -> Dest {
        match self.table.lookup(out.slot as usize, self.now_ms) {
            Some(mac) => Dest::To(mac),
            None => Dest::Unresolved,
        }
    }
}

/// Mark an IP frame by `marker` (when it can change anything), recording
/// the DSCP before and after in `meta` and counting a change.
#[inline(always)]
pub fn mark(marker: Option<&Marker>, rewritten: &mut u64, buf: &mut PacketBuf, meta: &mut Meta) {
    let info = &mut meta.info;
    if info.is_ip() {
        let before = info.dscp();
        let mut after = before;
        if let Some(m) = marker {
            if let Some((_, a)) = m.apply(info, buf.frame_mut()) {
                after = a;
            }
        }
        meta.dscp_before = before.get();
        meta.dscp_after = after.get();
        *rewritten += (before != after) as u64;
    }
}

/// The PCP a frame's pushed tags carry (see the module header).
#[inline(always)]
pub fn pcp_of(info: &FrameInfo, from_dscp: bool) -> u8 {
    if from_dscp && info.is_ip() {
        pcp_from_dscp(info.dscp())
    } else {
        info.tags.outer().map_or(0, |t| t.pcp)
    }
}

/// Encapsulate for `out` and, for a routed frame, address it: pop `pop`
/// tags, push `out`'s tags with the PCP of [`pcp_of`], then set the MACs
/// to (`dst`, `out.src_mac`) when `dst` is given. `info` is the frame's
/// parse (tags as received, DSCP after marking).
#[inline(always)]
pub fn finish(
    out: &Out,
    pop: u8,
    pcp_from_dscp: bool,
    dst: Option<&Mac>,
    buf: &mut PacketBuf,
    info: &FrameInfo,
) -> Verdict {
    let pcp = (pcp_of(info, pcp_from_dscp) as u32) << 13;
    if !encap(out, pop, pcp, buf) {
        return Verdict::Drop(DropReason::TagRewrite);
    }
    if let Some(dst) = dst {
        if !buf.set_macs(dst, &out.src_mac) {
            return Verdict::Drop(DropReason::TagRewrite);
        }
    }
    Verdict::Forward(out.port)
}

/// [`finish`] for an egress that may be toward an MPLS backbone: labels
/// by [`super::mpls::push`] when `out` has them, else tags.
pub fn finish_any(
    out: &Out,
    pop: u8,
    pcp_from_dscp: bool,
    dst: Option<&Mac>,
    buf: &mut PacketBuf,
    info: &FrameInfo,
) -> Verdict {
    match &out.mpls {
        Some(m) => super::mpls::push(out, m, pop, dst.copied(), buf, info),
        None => finish(out, pop, pcp_from_dscp, dst, buf, info),
    }
}

/// Pop `pop` tags and push `out`'s with `pcp` (already shifted into TCI
/// position) written into every word (words past `count` are not written).
#[inline(always)]
pub fn encap(out: &Out, pop: u8, pcp: u32, buf: &mut PacketBuf) -> bool {
    let [w0, w1, w2] = out.words;
    let words = [w0 | pcp, w1 | pcp, w2 | pcp];
    buf.rewrite_tags_words(pop as usize, words, out.count as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::LinkState;
    use crate::qos::{DscpAction, DscpPolicy};
    use crate::wire::{Dscp, Tpid, VlanTag};

    fn frame(tos: u8, outer_pcp: u8) -> (PacketBuf, Meta) {
        let tags = [VlanTag {
            tpid: Tpid::DOT1Q,
            pcp: outer_pcp,
            dei: false,
            vid: 10,
        }];
        let f = crate::gen::FrameSpec::udp(
            &tags,
            "192.0.2.1".parse().unwrap(),
            "198.51.100.1".parse().unwrap(),
            (1000, 2000),
            tos,
            100,
        )
        .build();
        let mut buf = PacketBuf::new();
        assert!(buf.load(&f));
        let mut meta = Meta::default();
        crate::wire::parse_into(buf.frame(), &mut meta.info).unwrap();
        (buf, meta)
    }

    fn push(port: PortId, vid: u8) -> TagPush {
        TagPush::new(port, &[[0x88, 0xa8, 0, 100], [0x81, 0, 0, vid]])
    }

    #[test]
    fn pcp_from_dscp_or_from_the_received_tag() {
        let links = LinkState::new(3);
        let snap = links.snapshot();
        for (from_dscp, want) in [(true, 46 >> 3), (false, 5)] {
            let (mut buf, mut meta) = frame(46 << 2, 5);
            let pair = [Out::bridged(&push(1, 7)); 2];
            let t = Tail::over(&snap, pair, 1500, from_dscp, None).unwrap();
            let mut n = 0;
            let s = t.run(1, &mut n, &mut buf, &mut meta, &Bridged);
            assert_eq!(s, Step::Done(Verdict::Forward(1)));
            let info = crate::wire::parse(buf.frame()).unwrap();
            assert_eq!(info.tags.len(), 2);
            for i in 0..2 {
                assert_eq!(info.tags.get(i).unwrap().pcp, want, "from_dscp {from_dscp}");
            }
        }
    }

    #[test]
    fn marks_picks_the_live_link_and_addresses_routed_frames() {
        let links = LinkState::new(3);
        links.set(1, false);
        let snap = links.snapshot();
        let marker = Marker::new(&DscpPolicy::plain(DscpAction::ExpressRoute));
        let mut a = Out::bridged(&push(1, 7));
        let mut b = Out::bridged(&push(2, 7));
        a.src_mac = [2, 0, 0, 0, 0, 1];
        b.src_mac = [2, 0, 0, 0, 0, 2];
        let t = Tail::over(&snap, [a, b], 1500, false, Some(&marker)).unwrap();
        assert!(!t.by_flow, "one link down: no flow pick");
        let (mut buf, mut meta) = frame(26 << 2 | 1, 0);
        let mut n = 0;
        let table = NeighborTable::new(6);
        let nh = Neighbors {
            table: &table,
            now_ms: 1,
        };
        assert_eq!(
            t.run(1, &mut n, &mut buf, &mut meta, &nh),
            Step::Unresolved(b)
        );
        assert_eq!(n, 1, "marked before the next hop is known");
        assert_eq!((meta.dscp_before, meta.dscp_after), (26, 0));
        table.learn(b.slot as usize, &[2, 0, 0, 0, 0, 9], 1);
        let Dest::To(mac) = nh.mac(&b) else {
            panic!("learned neighbour not found");
        };
        let v = finish(&b, 1, false, Some(&mac), &mut buf, &meta.info);
        assert_eq!(v, Verdict::Forward(2));
        let f = buf.frame();
        assert_eq!(&f[..12], &[2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 2]);
        let info = crate::wire::parse(f).unwrap();
        assert_eq!(info.dscp(), Dscp::CS0);
        assert_eq!(info.ecn(), 1, "ECN kept");
        links.set(2, false);
        assert!(Tail::over(&links.snapshot(), [a, b], 1500, false, None).is_none());
    }

    #[test]
    fn over_mtu_is_dropped_before_anything_changes() {
        let links = LinkState::new(2);
        let (mut buf, mut meta) = frame(0, 0);
        let before = buf.frame().to_vec();
        let t = Tail::over(
            &links.snapshot(),
            [Out::bridged(&push(1, 7)); 2],
            50,
            false,
            None,
        )
        .unwrap();
        let mut n = 0;
        assert_eq!(
            t.run(1, &mut n, &mut buf, &mut meta, &Bridged),
            Step::Done(Verdict::Drop(DropReason::OverMtu))
        );
        assert_eq!(buf.frame(), &before[..]);
    }
}
