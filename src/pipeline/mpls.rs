//! The label edge of the pipeline: labelled frames from a backbone port
//! are classified by their label and taken out of their labels before
//! the service stage ([`label_key`], [`take_in`]); frames leaving toward
//! the backbone get their labels in the egress tail ([`push`]).
//!
//! Contract:
//! - A received stack is one label (the VPN or pseudowire label, the
//!   penultimate hop having popped the transport label) or two (the
//!   port's own transport label on top, then that label). Anything else
//!   is `unknown-label`; a stack cut short is `malformed`.
//! - [`take_in`] leaves the frame as if it had arrived plain on the
//!   attachment: an L3VPN packet untagged with the IP ethertype (uniform
//!   TTL model: the IP TTL becomes the smaller of it and the label's, the
//!   IPv4 checksum patched), a pseudowire's inner Ethernet frame as sent
//!   by the remote site; `meta.info` is re-parsed for it.
//! - [`push`] writes labels with TC from the DSCP's class (by the map)
//!   or, for a non-IP pseudowire frame, the PCP of the received outer tag;
//!   TTL the IP TTL (uniform) or 255 (pipe, and every pseudowire).
//! - Nothing here allocates, locks or panics; every failure is a
//!   [`DropReason`].

use super::egress::Out;
use crate::frame::{DropReason, Meta, PortId, Verdict};
use crate::plan::{classify, MplsIn, MplsPush, Plan, TtlModel};
use crate::wire::ethernet::{ethertype, Mac};
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::Ipv6Packet;
use crate::wire::mpls::ETHERTYPE_MPLS;
use crate::wire::{self, FrameInfo, PacketBuf};

/// Bottom-of-stack bit of a label stack entry word.
const BOS: u32 = 0x100;

#[inline(always)]
fn word_at(frame: &[u8], at: usize) -> Option<u32> {
    frame
        .get(at..)
        .and_then(|b| b.first_chunk::<4>())
        .map(|b| u32::from_be_bytes(*b))
}

/// The classification key of a labelled frame received on `port` (its
/// label stack starts at `at`), see the module contract, and the stack's
/// top entry (for [`take_in`]).
#[inline]
pub fn label_key(
    plan: &Plan,
    port: PortId,
    frame: &[u8],
    at: usize,
) -> Result<(u64, u32), DropReason> {
    let top = word_at(frame, at).ok_or(DropReason::Malformed)?;
    let label = if top & BOS != 0 {
        top >> 12
    } else {
        let second = word_at(frame, at + 4).ok_or(DropReason::Malformed)?;
        let transport = plan
            .ports
            .get(port as usize)
            .and_then(|p| p.transport_label);
        if transport != Some(top >> 12) || second & BOS == 0 {
            return Err(DropReason::UnknownLabel);
        }
        second >> 12
    };
    Ok((classify::label_key(port, label), top))
}

/// A labelled frame dropped for `why` before it left its labels: its
/// metadata gets the outer parse (the pipeline skipped it), for the
/// reports that read it.
#[cold]
pub fn refuse(why: DropReason, buf: &PacketBuf, meta: &mut Meta) -> Verdict {
    if wire::parse_into(buf.frame(), &mut meta.info).is_err() {
        meta.info = FrameInfo::default();
    }
    Verdict::Drop(why)
}

/// Take a labelled frame (classified to an attachment with `m`; its label
/// stack at `at`, `top` its first entry as [`label_key`] read it) out of
/// its labels, see the module contract; `meta.info` is the parse of what
/// is left.
#[inline]
pub fn take_in(
    m: &MplsIn,
    buf: &mut PacketBuf,
    meta: &mut Meta,
    at: usize,
    top: u32,
) -> Result<(), DropReason> {
    let under = at + if top & BOS != 0 { 4 } else { 8 };
    let label_ttl = top as u8;
    if m.pseudowire {
        let mut skip = under;
        if m.control_word {
            match buf.frame().get(under) {
                Some(b) if b >> 4 == 0 => skip += 4,
                _ => return Err(DropReason::Malformed),
            }
        }
        if !buf.strip_front(skip) {
            return Err(DropReason::Malformed);
        }
        return wire::parse_into(buf.frame(), &mut meta.info).map_err(|_| DropReason::Malformed);
    }
    let et = match buf.frame().get(under).map(|b| b >> 4) {
        Some(4) => ethertype::IPV4,
        Some(6) => ethertype::IPV6,
        Some(_) => return Err(DropReason::NotIp),
        None => return Err(DropReason::Malformed),
    };
    if !buf.replace_after_macs_with_ethertype(under - 12, et) {
        return Err(DropReason::Malformed);
    }
    wire::parse_into(buf.frame(), &mut meta.info).map_err(|_| DropReason::Malformed)?;
    if m.ttl == TtlModel::Uniform && label_ttl < meta.info.ttl {
        let l3 = meta.info.l3_offset as usize;
        let Some(h) = buf.frame_mut().get_mut(l3..) else {
            return Err(DropReason::Malformed);
        };
        // The parse checked the header is there.
        if et == ethertype::IPV4 {
            Ipv4Packet::new_unchecked(h).set_ttl(label_ttl);
        } else {
            Ipv6Packet::new_unchecked(h).set_hop_limit(label_ttl);
        }
        meta.info.ttl = label_ttl;
    }
    Ok(())
}

/// Put the frame behind `m`'s labels for `out` (see the module contract):
/// pop `pop` tags; an L3VPN packet is addressed to `dst` (its next hop)
/// from `out.src_mac`, a pseudowire frame gets `m`'s outer Ethernet
/// header. `info` is the frame's parse (DSCP after marking, TTL after
/// routing).
#[inline]
pub fn push(
    out: &Out,
    m: &MplsPush,
    pop: u8,
    dst: Option<Mac>,
    buf: &mut PacketBuf,
    info: &FrameInfo,
) -> Verdict {
    let tc = if info.is_ip() {
        m.tc_of_dscp(info.dscp().get())
    } else {
        info.tags.outer().map_or(0, |t| t.pcp)
    };
    let ttl = match m.ttl {
        TtlModel::Uniform if info.is_ip() && !m.pseudowire => info.ttl,
        _ => 255,
    };
    let per_packet = (u32::from(tc) & 7) << 9 | u32::from(ttl);
    let mut hdr = [0u8; 14 + 8 + 4];
    let labels_at = if m.pseudowire { 14 } else { 2 };
    if m.pseudowire {
        hdr[..6].copy_from_slice(&m.peer_mac);
        hdr[6..12].copy_from_slice(&m.own_mac);
    }
    hdr[labels_at - 2..labels_at].copy_from_slice(&ETHERTYPE_MPLS.to_be_bytes());
    for (k, w) in m.words.iter().take(m.count as usize).enumerate() {
        let at = labels_at + 4 * k;
        hdr[at..at + 4].copy_from_slice(&(w | per_packet).to_be_bytes());
    }
    // The control word stays all zero (no flags, no sequencing).
    let len = labels_at + 4 * m.count as usize + 4 * usize::from(m.pseudowire && m.control_word);
    let ok = if m.pseudowire {
        buf.rewrite_tags_words(pop as usize, [0; 3], 0) && buf.prepend(&hdr[..len])
    } else {
        buf.splice_after_macs(4 * pop as usize + 2, &hdr[..len])
            && dst.is_none_or(|d| buf.set_macs(&d, &out.src_mac))
    };
    if ok {
        Verdict::Forward(out.port)
    } else {
        Verdict::Drop(DropReason::TagRewrite)
    }
}

/// A reply the `l3` stage built in place of a frame that came in by an
/// L3VPN attachment (`Forward` to that link's port, MACs already swapped)
/// goes back behind the link's labels; every other verdict stands.
pub fn reply_over_labels(v: Verdict, link: &Out, buf: &mut PacketBuf) -> Verdict {
    let (Verdict::Forward(port), Some(m)) = (v, link.mpls.as_ref()) else {
        return v;
    };
    if port != link.port || m.pseudowire {
        return v;
    }
    match wire::parse(buf.frame()) {
        Ok(info) => push(link, m, 0, None, buf, &info),
        Err(_) => Verdict::Drop(DropReason::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::FrameSpec;
    use crate::plan::mpls::TC_MAP_CLASS_SELECTOR;
    use crate::plan::TagPush;

    fn l3vpn() -> MplsPush {
        let (words, count) = MplsPush::words_of(&[3001, 2001]);
        MplsPush {
            words,
            count,
            pseudowire: false,
            control_word: false,
            ttl: TtlModel::Uniform,
            tc_map: TC_MAP_CLASS_SELECTOR,
            peer_mac: [2, 0, 0, 0, 0, 0xbb],
            own_mac: [2, 0, 0, 0, 0, 0xaa],
        }
    }

    fn ip_frame(tags: &[crate::wire::VlanTag], tos: u8, ttl: u8) -> Vec<u8> {
        let mut s = FrameSpec::udp(
            tags,
            "192.0.2.1".parse().unwrap(),
            "198.51.100.1".parse().unwrap(),
            (1000, 2000),
            tos,
            100,
        );
        if let crate::gen::Payload::Ip { ttl: t, .. } = &mut s.payload {
            *t = ttl;
        }
        s.build()
    }

    #[test]
    fn l3vpn_push_then_take_in_gives_the_packet_back() {
        let plain = ip_frame(&[], 46 << 2, 20);
        let mut buf = PacketBuf::new();
        assert!(buf.load(&plain));
        let info = wire::parse(buf.frame()).unwrap();
        let out = Out::bridged(&TagPush::new(3, &[]).with_mpls(l3vpn()));
        let dst = [2, 0, 0, 0, 0, 0xbb];
        let v = push(
            &out,
            out.mpls.as_ref().unwrap(),
            0,
            Some(dst),
            &mut buf,
            &info,
        );
        assert_eq!(v, Verdict::Forward(3));
        let f = buf.frame();
        assert_eq!(&f[12..14], &[0x88, 0x47]);
        // Transport 3001, TC 5 (EF's class), TTL 20; then VPN 2001 with S.
        assert_eq!(
            u32::from_be_bytes(f[14..18].try_into().unwrap()),
            3001 << 12 | 5 << 9 | 20
        );
        assert_eq!(
            u32::from_be_bytes(f[18..22].try_into().unwrap()),
            2001 << 12 | 5 << 9 | 0x100 | 20
        );
        assert_eq!(&f[22..], &plain[14..]);
        // Back in, under a pipe-less uniform model with a smaller label TTL.
        let mut f2 = f.to_vec();
        f2[17] = 7;
        let mut plan_port = crate::plan::PortPlan {
            name: "wan".into(),
            mac: [0; 6],
            backbone: true,
            transport_label: Some(3001),
        };
        let plan = crate::plan::Plan::new(
            vec![plan_port.clone()],
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        let mut meta = Meta::default();
        assert!(buf.load(&f2));
        wire::parse_into(buf.frame(), &mut meta.info).unwrap();
        assert_eq!(
            label_key(&plan, 0, buf.frame(), 14),
            Ok((
                classify::label_key(0, 2001),
                u32::from_be_bytes(f2[14..18].try_into().unwrap())
            ))
        );
        let m = MplsIn {
            label: 2001,
            pseudowire: false,
            control_word: false,
            ttl: TtlModel::Uniform,
        };
        let top = u32::from_be_bytes(buf.frame()[14..18].try_into().unwrap());
        take_in(&m, &mut buf, &mut meta, 14, top).unwrap();
        assert_eq!(meta.info.ttl, 7);
        let ip = Ipv4Packet::new_checked(&buf.frame()[14..], 14).unwrap();
        assert!(ip.verify_checksum(), "TTL patched with the checksum");
        assert_eq!(&buf.frame()[12..14], &[8, 0]);
        // Another transport label on top is not ours.
        plan_port.transport_label = Some(3002);
        let plan = crate::plan::Plan::new(
            vec![plan_port],
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        assert!(buf.load(&f2));
        wire::parse_into(buf.frame(), &mut meta.info).unwrap();
        assert_eq!(
            label_key(&plan, 0, buf.frame(), 14),
            Err(DropReason::UnknownLabel)
        );
        // Cut inside the stack.
        assert!(buf.load(&f2[..16]));
        wire::parse_into(buf.frame(), &mut meta.info).unwrap();
        assert_eq!(
            label_key(&plan, 0, buf.frame(), 14),
            Err(DropReason::Malformed)
        );
    }

    #[test]
    fn pseudowire_push_then_take_in_gives_the_frame_back() {
        let tags = [
            crate::wire::VlanTag {
                tpid: crate::wire::Tpid::DOT1AD,
                pcp: 3,
                dei: false,
                vid: 100,
            },
            crate::wire::VlanTag {
                tpid: crate::wire::Tpid::DOT1Q,
                pcp: 3,
                dei: false,
                vid: 200,
            },
        ];
        let tagged = ip_frame(&tags, 26 << 2, 64);
        // The same frame without its tags (built frames are padded alike).
        let plain: Vec<u8> = [&tagged[..12], &tagged[20..]].concat();
        for cw in [false, true] {
            let mut m = l3vpn();
            (m.words, m.count) = MplsPush::words_of(&[2101]);
            m.pseudowire = true;
            m.control_word = cw;
            let out = Out::bridged(&TagPush::new(3, &[]).with_mpls(m));
            let mut buf = PacketBuf::new();
            assert!(buf.load(&tagged));
            let info = wire::parse(buf.frame()).unwrap();
            assert_eq!(
                push(&out, &m, 2, None, &mut buf, &info),
                Verdict::Forward(3)
            );
            let f = buf.frame().to_vec();
            assert_eq!(f.len(), plain.len() + 18 + 4 * usize::from(cw));
            assert_eq!(&f[..12], &[2, 0, 0, 0, 0, 0xbb, 2, 0, 0, 0, 0, 0xaa]);
            assert_eq!(
                u32::from_be_bytes(f[14..18].try_into().unwrap()),
                2101 << 12 | 3 << 9 | 0x100 | 255
            );
            assert_eq!(&f[18 + 4 * usize::from(cw)..], &plain[..]);
            let mut meta = Meta::default();
            wire::parse_into(buf.frame(), &mut meta.info).unwrap();
            let min = MplsIn {
                label: 2101,
                pseudowire: true,
                control_word: cw,
                ttl: TtlModel::Uniform,
            };
            let top = u32::from_be_bytes(buf.frame()[14..18].try_into().unwrap());
            take_in(&min, &mut buf, &mut meta, 14, top).unwrap();
            assert_eq!(buf.frame(), &plain[..]);
            assert_eq!(meta.info, wire::parse(&plain).unwrap());
        }
    }
}
