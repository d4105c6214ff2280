//! The invariants that the property tests, the fuzz targets and the corpus
//! replay all check — one body each, so a fuzz finding and a test failure
//! mean the same thing.
//!
//! Every function here panics (with a message saying which invariant broke
//! and on what input) when xconnect violates its contract, and returns
//! normally otherwise, whatever the input.
//!
//! - [`wire_parse`]: every wire view over arbitrary bytes; where both our
//!   parse and etherparse accept a frame they agree on every field.
//! - [`tag_rewrite`]: in-place push/pop/translate equals a plain `Vec` model.
//! - [`pipeline`]: a configuration from a small grammar and a batch of
//!   frames through `io::mem`: every frame counted once, every output parses,
//!   nothing crosses peerings, the DSCP policy holds, IPv4 checksums stay
//!   valid, bytes beyond the tags change only in the DSCP bits and checksum.
//! - [`config_text`]: arbitrary text → a config or located diagnostics.
//! - [`lpm_diff`]: inserts, removes, replaces and atomic batches of IPv4
//!   and IPv6 prefixes on the LPM writers and on the plain oracles give
//!   the same answers through the writer, readers, views and batches.
//! - [`trace_capture`]: arbitrary bytes as a capture file through
//!   `io::pcap` and the tracer: frames numbered in order, every frame
//!   described (text and JSON) and counted once, a corrupt file located
//!   inside the input.
//! - [`fpm_decode`]: an FPM byte stream through the framing, decoding and
//!   sync layers of `control` into a peering's table, against a plain
//!   model: routes change only through valid messages.

use crate::config;
use crate::driver::{Driver, Observer, Ports};
use crate::frame::{Batch, DropReason, Outgoing, PortId, Verdict};
use crate::gen::FrameSpec;
use crate::lpm::oracle::{Oracle4, Oracle6};
use crate::lpm::{Lpm4Writer, Lpm6Writer, LpmError, NextHop, Update, MAX_NEXT_HOP};
use crate::pipeline::{LinkState, Pipeline};
use crate::plan::{classify, Plan, Service, Side};
use crate::wire::{self, checksum, FrameInfo, PacketBuf, Tpid, VlanTag, L3};
use arbitrary::Arbitrary;
use etherparse::{LinkExtSlice, NetSlice, SlicedPacket, TransportSlice};
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

/// Our parse against etherparse on one frame: when both accept it, every
/// field must agree. Returns a description of the first disagreement.
pub fn compare_with_etherparse(frame: &[u8]) -> Result<(), String> {
    let (Ok(o), Ok(t)) = (wire::parse(frame), SlicedPacket::from_ethernet(frame)) else {
        return Ok(());
    };
    compare_fields(&o, &t, frame)
}

/// Field-by-field comparison of two accepted parses.
pub fn compare_fields(o: &FrameInfo, t: &SlicedPacket<'_>, frame: &[u8]) -> Result<(), String> {
    macro_rules! same {
        ($a:expr, $b:expr, $what:expr) => {
            if $a != $b {
                return Err(format!("{}: ours {:?}, etherparse {:?}", $what, $a, $b));
            }
        };
    }
    let mut tpid = u16::from_be_bytes([frame[12], frame[13]]);
    // xconnect treats MACsec (0x88e5) as an opaque ethertype: compare the
    // tags in front of it, then nothing further.
    let macsec = t
        .link_exts
        .iter()
        .any(|e| matches!(e, LinkExtSlice::Macsec(_)));
    let vlans: Vec<_> = t
        .link_exts
        .iter()
        .map_while(|e| match e {
            LinkExtSlice::Vlan(v) => Some(v.clone()),
            _ => None,
        })
        .collect();
    same!(o.tags.len(), vlans.len(), "tag count");
    for (i, v) in vlans.iter().enumerate() {
        let Some(ot) = o.tags.get(i) else {
            return Err(format!("tag {i} missing"));
        };
        same!(ot.tpid.0, tpid, format!("tag {i} tpid"));
        same!(ot.vid, v.vlan_identifier().value(), format!("tag {i} vid"));
        same!(
            ot.pcp,
            v.priority_code_point().value(),
            format!("tag {i} pcp")
        );
        same!(ot.dei, v.drop_eligible_indicator(), format!("tag {i} dei"));
        tpid = v.ether_type().0;
    }
    same!(o.ethertype, tpid, "ethertype");
    if macsec {
        same!(o.l3, L3::Other, "l3 after MACsec");
        return Ok(());
    }
    let addrs = crate::qos::marker::addresses(o, frame);
    match &t.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            same!(o.l3, L3::Ipv4, "l3");
            same!(o.dscp().get(), h.dcp().value(), "dscp");
            same!(o.ecn(), h.ecn().value(), "ecn");
            same!(o.ttl, h.ttl(), "ttl");
            same!(o.fragment, ip.is_payload_fragmented(), "fragment");
            same!(
                addrs,
                Some((
                    IpAddr::V4(h.source_addr()),
                    IpAddr::V4(h.destination_addr())
                )),
                "addresses"
            );
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            same!(o.l3, L3::Ipv6, "l3");
            same!(o.tos, h.traffic_class(), "traffic class");
            same!(o.ttl, h.hop_limit(), "hop limit");
            same!(o.fragment, ip.is_payload_fragmented(), "fragment");
            same!(
                addrs,
                Some((
                    IpAddr::V6(h.source_addr()),
                    IpAddr::V6(h.destination_addr())
                )),
                "addresses"
            );
        }
        Some(NetSlice::Arp(_)) => same!(o.l3, L3::Arp, "l3"),
        None => same!(o.l3, L3::Other, "l3"),
    }
    let ports = match &t.transport {
        Some(TransportSlice::Udp(u)) => Some((u.source_port(), u.destination_port())),
        Some(TransportSlice::Tcp(tc)) => Some((tc.source_port(), tc.destination_port())),
        _ => None,
    };
    same!(
        o.has_ports.then_some((o.src_port, o.dst_port)),
        ports,
        "ports"
    );
    Ok(())
}

/// An MPLS label stack and a pseudowire control word read from `data`
/// (at its start and after an Ethernet header): a stack ends with its only
/// bottom-of-stack entry, within the bytes and [`wire::mpls::MAX_LABELS`],
/// and emits back to the same bytes; so does a control word.
pub fn mpls_round_trip(data: &[u8]) {
    use wire::mpls::{ControlWord, LabelStack, MAX_LABELS};
    for at in [0, 14] {
        let Some(rest) = data.get(at..) else { continue };
        match LabelStack::parse(rest, at) {
            Ok(stack) => {
                assert!((1..=MAX_LABELS).contains(&stack.len()), "depth");
                assert!(stack.header_len() <= rest.len(), "stack past the bytes");
                let bottoms: Vec<bool> = stack.as_slice().iter().map(|e| e.bottom).collect();
                assert!(
                    bottoms.last() == Some(&true) && bottoms.iter().filter(|b| **b).count() == 1,
                    "bottom of stack on the last entry only: {bottoms:?}"
                );
                let mut out = [0u8; 4 * MAX_LABELS];
                let n = stack.emit(&mut out).expect("room for the stack");
                assert_eq!(&out[..n], &rest[..n], "stack emits back to its bytes");
                let _ = (format!("{stack:?}"), stack.top().map(|e| e.to_string()));
            }
            Err(e) => {
                assert!(e.offset >= at, "error offset before the stack");
                let _ = e.to_string();
            }
        }
        if let Ok(cw) = ControlWord::parse(rest, at) {
            let mut out = [0u8; 4];
            assert_eq!(cw.emit(&mut out), Ok(4));
            assert_eq!(&out[..], &rest[..4], "control word emits back to its bytes");
        }
    }
}

/// Every wire view over arbitrary bytes (see the module header).
pub fn wire_parse(data: &[u8]) {
    if let Ok(info) = wire::parse(data) {
        assert!(
            info.l3_offset as usize <= data.len(),
            "l3 offset past the frame"
        );
        assert!(
            info.l4_offset as usize <= data.len(),
            "l4 offset past the frame"
        );
        assert_eq!(
            info.l3_offset as usize,
            14 + 4 * info.tags.len(),
            "l3 offset vs tags"
        );
    }
    if let Err(e) = compare_with_etherparse(data) {
        panic!("parse disagrees with etherparse on {:02x?}: {e}", data);
    }
    match wire::parse(data) {
        Ok(info) => {
            let _ = (
                format!("{}", info.tags),
                format!("{:?}", info.tags),
                info.tags.outer(),
            );
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let _ = wire::parse_tags(data);
    mpls_round_trip(data);
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    // Every accessor and setter of every view, on whatever bytes these are.
    let mut owned = data.to_vec();
    if let Ok(mut e) = wire::ethernet::EthernetFrame::new_checked(&mut owned[..]) {
        let (d, s, t) = (e.dst(), e.src(), e.ethertype());
        let _ = (e.payload().len(), wire::ethernet::mac_to_string(&d));
        e.set_dst(&s);
        e.set_src(&d);
        e.set_ethertype(t);
        assert_eq!((e.dst(), e.src(), e.ethertype()), (s, d, t));
    }
    let mut owned = data.to_vec();
    if let Ok(mut p) = wire::ipv4::Ipv4Packet::new_checked(&mut owned[..], 0) {
        let valid = p.verify_checksum();
        let _ = (
            p.options().len(),
            p.payload().len(),
            p.src(),
            p.dst(),
            p.frag_offset(),
            p.ident(),
        );
        let _ = (
            p.dont_frag(),
            p.more_frags(),
            p.is_fragment(),
            p.total_len(),
            p.protocol(),
            p.checksum(),
        );
        let (ecn, dscp) = (p.ecn(), wire::Dscp::from_tos(byte(0)));
        p.set_dscp(dscp);
        assert_eq!((p.dscp(), p.ecn()), (dscp, ecn), "set_dscp");
        p.set_ttl(byte(1));
        assert_eq!(p.ttl(), byte(1), "set_ttl");
        assert_eq!(
            p.verify_checksum(),
            valid,
            "incremental update changed checksum validity"
        );
        let (s, d) = (p.src(), p.dst());
        p.set_src(d);
        p.set_dst(s);
        p.fill_checksum();
        assert!(p.verify_checksum(), "fill_checksum");
    }
    let mut owned = data.to_vec();
    if let Ok(mut p) = wire::ipv6::Ipv6Packet::new_checked(&mut owned[..], 0) {
        let _ = wire::ipv6::upper_layer(p.next_header(), p.payload(), 40);
        let (fl, s, d, plen) = (p.flow_label(), p.src(), p.dst(), p.payload_len());
        let ecn = p.ecn();
        let dscp = wire::Dscp::from_tos(byte(2));
        p.set_dscp(dscp);
        assert_eq!(
            (p.dscp(), p.ecn(), p.flow_label()),
            (dscp, ecn, fl),
            "ipv6 set_dscp"
        );
        p.set_hop_limit(byte(3));
        assert_eq!(
            (p.hop_limit(), p.src(), p.dst(), p.payload_len()),
            (byte(3), s, d, plen)
        );
    }
    if let Ok(a) = wire::arp::ArpPacket::new_checked(data, 0) {
        let mut b = [0u8; wire::arp::PACKET_LEN];
        let n = wire::ArpRepr::parse(&a).emit(&mut b);
        assert_eq!(n, Ok(wire::arp::PACKET_LEN), "arp emit");
        assert_eq!(
            &b[..],
            &data[..wire::arp::PACKET_LEN],
            "arp emit round trip"
        );
    }
    let d = wire::Dscp::from_tos(byte(0));
    let _ = (d.to_string(), d.name().map(wire::Dscp::parse));
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = wire::Dscp::parse(text);
    }
    if data.len() >= 2 {
        let c = checksum::checksum(data);
        let word = u16::from_be_bytes([data[0], data[1]]);
        let _ = checksum::update16(c, word, !word);
    }
    let _ =
        wire::l4::UdpHeader::new_checked(data, 0).map(|u| (u.src_port(), u.len(), u.checksum()));
    let _ = wire::l4::TcpHeader::new_checked(data, 0).map(|t| (t.header_len(), t.flags()));
    let _ = wire::icmp::IcmpHeader::new_checked(data, 0, false).map(|i| (i.msg_type(), i.rest()));
}

/// A received super-frame through [`Batch::push_super`] and back: the
/// first 10 bytes of `data` are its `virtio_net_hdr`, the rest the frame.
/// Whatever the bytes: no panic; a split frame's headers are a frame of
/// their own (IP length counting only them) with the payload out of line;
/// rejoined unchanged it is the received frame again, byte for byte, with
/// the received metadata; and cutting the rejoined frame gives the same
/// segments as cutting the received one.
pub fn super_frame(data: &[u8]) {
    use crate::wire::gso::{Offload, Segmenter, VirtioNetHdr};
    let Some((hdr, frame)) = data.split_first_chunk::<{ VirtioNetHdr::LEN }>() else {
        return;
    };
    let Ok(h) = VirtioNetHdr::parse(hdr) else {
        return;
    };
    let Ok(offload) = Offload::from_virtio(&h) else {
        return;
    };
    let mut batch = Batch::new();
    match batch.push_super(frame, offload) {
        Err(_) => return,
        Ok(pushed) => assert!(pushed, "an empty batch took nothing"),
    }
    let buf = batch.buf(0);
    let Some(sf) = batch.super_frame(0) else {
        // Kept as an ordinary frame: it fits one segment.
        assert_eq!(batch.super_mask(), 0);
        assert_eq!(buf.tail(), 0);
        assert!(buf.len() <= frame.len().max(60));
        return;
    };
    assert_eq!(buf.len() + buf.tail(), frame.len(), "headers and payload");
    assert_eq!(
        sf.payload(),
        &frame[buf.len()..],
        "payload kept as received"
    );
    let info = wire::parse(buf.frame()).expect("split headers parse as a frame");
    let transport = match sf.kind() {
        crate::wire::gso::GsoKind::Udp => 8,
        _ => 20,
    };
    assert!(
        info.l4_offset as usize + transport <= buf.len(),
        "transport header in the headers"
    );
    let mut whole = vec![0u8; frame.len() + 64];
    let (n, back) = sf
        .rejoin_whole(buf.frame(), &mut whole)
        .expect("unchanged headers rejoin");
    assert_eq!(&whole[..n], frame, "rejoined as received");
    assert_eq!(
        Offload {
            header_len: offload.header_len,
            ..back
        },
        offload,
        "metadata as received"
    );
    let cut = |f: &[u8], o: &Offload| -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if let Ok(mut s) = Segmenter::new(f, o, None) {
            let mut seg = vec![0u8; s.max_segment_len()];
            while let Ok(Some(len)) = s.write_next(&mut seg) {
                out.push(seg[..len].to_vec());
            }
        }
        out
    };
    assert_eq!(
        cut(&whole[..n], &back),
        cut(frame, &offload),
        "same segments"
    );
}

/// One in-place tag operation.
#[derive(Arbitrary, Debug, Clone)]
pub enum TagOp {
    /// Pop this many tags (mod 4).
    Pop(u8),
    /// Push these tags (at most 3 used).
    Push(Vec<(u16, u16)>),
    /// Pop then push in one rewrite.
    Translate(u8, Vec<(u16, u16)>),
    /// The label edge's rewrite: replace this many bytes after the MACs
    /// (mod 40) with these (an ethertype and labels; too many is refused).
    Splice(u8, Vec<u8>),
    /// The L3VPN pop: replace this many bytes after the MACs (mod 40) with
    /// this ethertype.
    Unlabel(u8, u16),
    /// The pseudowire's outer header: put these bytes in front.
    Prepend(Vec<u8>),
    /// Take the pseudowire's outer header off: drop this many bytes.
    Strip(u8),
}

/// Apply `ops` to `frame` in a [`PacketBuf`] and to a plain `Vec` model;
/// they must agree after every operation, and a failed operation must leave
/// the frame unchanged.
pub fn tag_rewrite(frame: &[u8], ops: &[TagOp]) {
    let mut buf = PacketBuf::new();
    if !buf.load(frame) {
        assert!(frame.len() > wire::packet::MAX_FRAME);
        return;
    }
    let mut model = frame.to_vec();
    for op in ops.iter().take(16) {
        if label_op(&mut buf, &mut model, op) {
            continue;
        }
        let (pop, push): (usize, Vec<u8>) = match op {
            TagOp::Pop(n) => ((*n % 4) as usize, vec![]),
            TagOp::Splice(..) | TagOp::Unlabel(..) | TagOp::Prepend(_) | TagOp::Strip(_) => {
                continue
            }
            TagOp::Push(t) | TagOp::Translate(_, t) => {
                let pop = if let TagOp::Translate(n, _) = op {
                    (*n % 4) as usize
                } else {
                    0
                };
                let bytes = t
                    .iter()
                    .take(3)
                    .flat_map(|(tpid, tci)| VlanTag::from_tci(Tpid(*tpid), *tci).to_bytes())
                    .collect();
                (pop, bytes)
            }
        };
        let before = buf.frame().to_vec();
        let ok = buf.rewrite_tags(pop, &push);
        if ok {
            assert!(
                model.len() >= 12 + pop * 4,
                "rewrite accepted a frame too short to pop {pop}"
            );
            model.splice(12..12 + pop * 4, push.iter().copied());
            assert_eq!(
                buf.frame(),
                &model[..],
                "rewrite(pop {pop}, push {} bytes) differs from the model",
                push.len()
            );
            // Undo must restore the previous bytes.
            let popped = before[12..12 + pop * 4].to_vec();
            let mut undo = buf.clone();
            assert!(
                undo.rewrite_tags(push.len() / 4, &popped) || undo.headroom() < popped.len(),
                "undo refused"
            );
        } else {
            assert_eq!(
                buf.frame(),
                &before[..],
                "a refused rewrite changed the frame"
            );
        }
    }
}

/// Apply a label-edge operation of [`tag_rewrite`] to `buf` and `model`
/// (they must agree; a refused one changes nothing, and is refused exactly
/// when the model says it cannot be done). `false` for a tag operation.
fn label_op(buf: &mut PacketBuf, model: &mut Vec<u8>, op: &TagOp) -> bool {
    let before = buf.frame().to_vec();
    let headroom = buf.headroom();
    let (ok, possible, what) = match op {
        TagOp::Splice(remove, insert) => {
            let remove = (*remove % 40) as usize;
            let possible = insert.len() <= wire::packet::MAX_SPLICE
                && model.len() >= 12 + remove
                && headroom + remove >= insert.len();
            let ok = buf.splice_after_macs(remove, insert);
            if possible {
                model.splice(12..12 + remove, insert.iter().copied());
            }
            (ok, possible, "splice")
        }
        TagOp::Unlabel(remove, et) => {
            let remove = (*remove % 40) as usize;
            let possible = remove >= 2 && model.len() >= 12 + remove;
            let ok = buf.replace_after_macs_with_ethertype(remove, *et);
            if possible {
                model.splice(12..12 + remove, et.to_be_bytes());
            }
            (ok, possible, "unlabel")
        }
        TagOp::Prepend(header) => {
            let possible = header.len() <= headroom;
            let ok = buf.prepend(header);
            if possible {
                model.splice(0..0, header.iter().copied());
            }
            (ok, possible, "prepend")
        }
        TagOp::Strip(n) => {
            let n = *n as usize;
            let possible = n <= model.len();
            let ok = buf.strip_front(n);
            if possible {
                model.drain(..n);
            }
            (ok, possible, "strip")
        }
        _ => return false,
    };
    assert_eq!(
        ok, possible,
        "{what} accepted {ok}, the model says {possible}"
    );
    if ok {
        assert_eq!(buf.frame(), &model[..], "{what} differs from the model");
    } else {
        assert_eq!(
            buf.frame(),
            &before[..],
            "a refused {what} changed the frame"
        );
    }
    true
}

/// One of the [`PIPELINE_CONFIGS`] configurations of the pipeline target
/// ([`pipeline_config_text`]), a link state, and frames to send through it.
///
/// The configurations are a fixed family, each compiled once per process:
/// compiling an `l3` peering costs about a millisecond (its route tables'
/// memory), which bounded the target to a few hundred inputs a second
/// when every input described a configuration of its own. The loader and
/// the rules are fuzzed by the `config` target.
#[derive(Arbitrary, Debug, Clone)]
pub struct PipelineCase {
    /// Which configuration (modulo [`PIPELINE_CONFIGS`]).
    pub config: u8,
    /// Bit i: port i down.
    pub down: u8,
    /// Frames.
    pub frames: Vec<CaseFrame>,
}

/// A frame of a [`PipelineCase`].
#[derive(Arbitrary, Debug, Clone)]
pub enum CaseFrame {
    /// Arbitrary bytes on a port.
    Raw(u8, Vec<u8>),
    /// A well-formed frame carrying the tags of attachment `attachment`
    /// (modulo the count), possibly truncated.
    Crafted {
        /// Attachment pick.
        attachment: u8,
        /// IPv6 (else IPv4).
        v6: bool,
        /// TOS / traffic class.
        tos: u8,
        /// Source port (flow).
        src_port: u16,
        /// Wire length pick.
        len: u16,
        /// Truncate to this many bytes.
        truncate: Option<u16>,
        /// Keep the generator's destination MAC (another station's)
        /// instead of addressing the ingress port: `l3` drops it as
        /// `not-our-mac`, `l2` forwards it as any frame.
        foreign_mac: bool,
    },
}

/// Configurations of the pipeline target.
pub const PIPELINE_CONFIGS: u8 = 128;

/// Configuration `k` (modulo [`PIPELINE_CONFIGS`]) of the pipeline target:
/// four `mem` ports (two access, two trunks), one circuit with a private
/// and a Microsoft peering. Bit 0: role MSEE (else provider edge); bit 1:
/// QinQ (else Dot1Q); bit 2: the private peering is `l3`; bit 3:
/// `pcp_from_dscp`; bits 4-5: one of four sets of TPID, S-tag, peering
/// tags, per-link outer tags, access VLANs (none, one, two; shared or own
/// access port) and DSCP policies; bit 6: the any-to-any model instead of
/// VLAN access: port `c0` is a backbone port and both peerings' access
/// sides are MPLS attachments on it (an `l3` peering's an L3VPN, an `l2`
/// one's a pseudowire; transport label pushed with bit 0, control word
/// with bit 3, `pipe` TTL with bit 1, a TC map with bit 4). Every one
/// loads (a test checks).
pub fn pipeline_config_text(k: u8) -> String {
    let k = k % PIPELINE_CONFIGS;
    let (msee, qinq, l3_first, pcp) = (k & 1 != 0, k & 2 != 0, k & 4 != 0, k & 8 != 0);
    let mpls = k & 64 != 0;
    type Access = (u8, &'static [u16]);
    #[allow(clippy::type_complexity)]
    let (tpid, s_tag, tags, outer, access, dscp): (
        &str,
        u16,
        [u16; 2],
        [Option<u16>; 2],
        [Access; 2],
        [&str; 2],
    ) = match k >> 4 {
        0 => (
            "0x8100",
            100,
            [200, 300],
            [None, None],
            [(0, &[]), (1, &[])],
            ["\"preserve\"", "\"expressroute\""],
        ),
        1 => (
            "0x88a8",
            4094,
            [1, 4094],
            [Some(10), Some(11)],
            [(0, &[10]), (0, &[20, 30])],
            ["\"reset\"", "\"EF\""],
        ),
        2 => (
            "0x9100",
            7,
            [200, 201],
            [None, None],
            [(0, &[10]), (1, &[])],
            ["\"AF41\"", "\"CS0\""],
        ),
        _ => (
            "0x8100",
            100,
            [300, 200],
            [Some(5), None],
            [(1, &[10, 20]), (0, &[5])],
            ["46", "\"expressroute\""],
        ),
    };
    let mut t = format!(
        "role = \"{}\"\n[[port]]\nname = \"c0\"\nbackend = \"mem\"\n{}[[port]]\nname = \"c1\"\nbackend = \"mem\"\n[[port]]\nname = \"ta\"\nbackend = \"mem\"\n[[port]]\nname = \"tb\"\nbackend = \"mem\"\n",
        if msee { "msee" } else { "provider-edge" },
        if mpls {
            "role = \"backbone\"\ntransport_label = 16001\n"
        } else {
            ""
        }
    );
    t += &format!(
        "[[circuit]]\nname = \"fz\"\nencapsulation = \"{}\"\n{}outer_tpid = {tpid}\n",
        if qinq { "qinq" } else { "dot1q" },
        if qinq {
            format!("s_tag = {s_tag}\n")
        } else {
            String::new()
        }
    );
    for (name, port, o) in [("primary", "ta", outer[0]), ("secondary", "tb", outer[1])] {
        match o {
            Some(v) => t += &format!("{name} = {{ port = \"{port}\", outer_tag = {v} }}\n"),
            None => t += &format!("{name} = {{ port = \"{port}\" }}\n"),
        }
    }
    let nets = [
        ("192.0.2.0/29", "2001:db8:0:1::/125"),
        ("198.51.100.0/29", "2001:db8:0:2::/125"),
    ];
    for (i, net) in nets.iter().enumerate() {
        let (port, vlans) = access[i];
        let vlans: Vec<String> = vlans.iter().map(u16::to_string).collect();
        let l3 = i == 0 && l3_first;
        let mode = if l3 { "l3" } else { "l2" };
        let addrs = if l3 {
            ", ipv4 = \"203.0.113.1/30\", ipv6 = \"2001:db8:ff::1/126\""
        } else {
            ""
        };
        let access = if mpls {
            format!(
                "port = \"c0\"{addrs}, mpls = {{ label = {}, remote_label = {}, next_hop_mac = \"02:00:00:00:00:b1\"{}{}{}{} }}",
                1001 + i,
                2001 + i,
                if msee { ", transport_label = 16002" } else { "" },
                match (l3, pcp) {
                    (false, false) => ", control_word = false",
                    _ => "",
                },
                if qinq { ", ttl = \"pipe\"" } else { "" },
                if k & 16 != 0 {
                    ", tc_map = [1, 1, 2, 2, 4, 5, 6, 6]"
                } else {
                    ""
                },
            )
        } else {
            format!("port = \"c{port}\", vlans = [{}]{addrs}", vlans.join(", "))
        };
        t += &format!(
            "[[circuit.peering]]\nkind = \"{}\"\ntag = {}\nmode = \"{mode}\"\naccess = {{ {access} }}\nipv4 = \"{}\"\nipv6 = \"{}\"\ndscp = {}\npcp_from_dscp = {pcp}\n",
            if i == 0 { "private" } else { "microsoft" },
            tags[i],
            net.0,
            net.1,
            dscp[i],
        );
    }
    t
}

/// The frames of a case in arrival order, served to the driver one run of
/// the same ingress port at a time (as a port's queue would).
struct Arrivals {
    frames: Vec<(PortId, Vec<u8>)>,
    next: usize,
}

impl Ports for Arrivals {
    fn recv(&mut self, port: PortId, batch: &mut Batch) -> std::io::Result<usize> {
        while let Some((p, f)) = self.frames.get(self.next) {
            if *p != port || batch.is_full() {
                break;
            }
            if !batch.push(f) {
                batch.count_oversize(f.len());
            }
            self.next += 1;
        }
        Ok(batch.len())
    }

    fn send(&mut self, out: Outgoing<'_>) -> std::io::Result<usize> {
        Ok(out.len())
    }
}

/// Checks every frame of each batch: the input as received, the output
/// and verdict as processed; released packets (held for a neighbour, sent
/// later) as sent.
struct Checker<'a> {
    plan: &'a Plan,
    /// Forwarded frames that came in labelled, and frames sent labelled.
    labelled: (u64, u64),
    /// The received batch's frames, back to back, and where each ends.
    inputs: &'a mut Vec<u8>,
    ends: &'a mut Vec<usize>,
}

impl Observer for Checker<'_> {
    fn received(&mut self, batch: &Batch) {
        self.inputs.clear();
        self.ends.clear();
        for i in 0..batch.len() {
            self.inputs.extend_from_slice(batch.buf(i).frame());
            self.ends.push(self.inputs.len());
        }
    }

    fn processed(&mut self, batch: &Batch) {
        let mut start = 0;
        for (k, &end) in self.ends.iter().enumerate() {
            let (lin, lout) = check_output(
                self.plan,
                batch.port,
                &self.inputs[start..end],
                batch.meta(k).verdict,
                batch.meta(k).attachment,
                batch.buf(k).frame(),
            );
            self.labelled.0 += u64::from(lin);
            self.labelled.1 += u64::from(lout);
            start = end;
        }
    }

    fn released(&mut self, batch: &Batch) {
        for k in 0..batch.len() {
            let v = batch.meta(k).verdict;
            assert!(
                matches!(
                    v,
                    Verdict::Forward(_) | Verdict::Resolve(_) | Verdict::Drop(_)
                ),
                "a released packet with verdict {v:?}"
            );
            let Some(out_port) = v.egress() else { continue };
            let out = batch.buf(k).frame();
            let oi =
                wire::parse(out).unwrap_or_else(|e| panic!("released frame does not parse: {e}"));
            let back = self
                .plan
                .classify(classify::key_of(out_port, &oi.tags))
                .unwrap_or_else(|| {
                    panic!(
                        "released frame's tags {:?} on port {out_port} match no attachment",
                        oi.tags
                    )
                });
            let att = &self.plan.attachments[back as usize];
            assert!(
                matches!(att.service, Service::L3 { .. }),
                "a released packet left by an l2 attachment"
            );
            if oi.l3 == L3::Ipv4 {
                let l3 = oi.l3_offset as usize;
                let hl = ((out[l3] & 0x0f) as usize) * 4;
                assert_eq!(
                    checksum::checksum(&out[l3..l3 + hl]),
                    0,
                    "released IPv4 checksum"
                );
            }
        }
    }
}

/// What the pipeline target keeps from one input to the next on a thread:
/// each configuration's plan and pipeline (built the first time it is
/// used), the driver and the checker's buffers.
struct Rig {
    pipelines: Vec<Option<(Arc<Plan>, Pipeline, LinkState)>>,
    driver: Driver,
    inputs: Vec<u8>,
    ends: Vec<usize>,
}

thread_local! {
    static RIG: std::cell::RefCell<Option<Rig>> = const { std::cell::RefCell::new(None) };
}

/// The plan of pipeline configuration `k`.
fn pipeline_plan(k: u8) -> Arc<Plan> {
    let text = pipeline_config_text(k);
    let cfg = config::load_str(&text, Path::new("fuzz.toml"))
        .unwrap_or_else(|d| panic!("pipeline configuration {k} does not load: {d}"));
    Arc::new(config::compile(&cfg))
}

/// Run a [`PipelineCase`] and check every invariant of the module header.
///
/// The configuration's plan and pipeline are built the first time a
/// thread meets it and reset before each case (counters, held packets,
/// rate limits, learned neighbours, link state): a case runs the same
/// whether or not it is the first, and costs only its frames.
pub fn pipeline(case: &PipelineCase) -> PipelineOutcome {
    RIG.with(|rig| {
        let mut rig = rig.borrow_mut();
        let rig = rig.get_or_insert_with(|| Rig {
            pipelines: (0..PIPELINE_CONFIGS).map(|_| None).collect(),
            driver: Driver::new(),
            inputs: Vec::new(),
            ends: Vec::new(),
        });
        let k = (case.config % PIPELINE_CONFIGS) as usize;
        let (plan, pl, links) = rig.pipelines[k].get_or_insert_with(|| {
            let plan = pipeline_plan(k as u8);
            let links = LinkState::new(plan.ports.len());
            (plan.clone(), Pipeline::new(plan, links.clone()), links)
        });
        pl.reset();
        for l3 in &plan.l3 {
            l3.neighbors.forget_learned();
        }
        for p in 0..plan.ports.len() {
            links.set(p as u16, case.down & (1 << p) == 0);
        }
        run_case(
            case,
            plan,
            pl,
            &mut rig.driver,
            &mut rig.inputs,
            &mut rig.ends,
        )
    })
}

/// What a [`PipelineCase`] did: the tests of the seed corpus check that
/// its inputs reach the paths they were made for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PipelineOutcome {
    /// Frames sent.
    pub tx: u64,
    /// Frames that came in labelled and were forwarded.
    pub labelled_in: u64,
    /// Frames sent labelled.
    pub labelled_out: u64,
    /// Drops by reason ([`DropReason::index`]).
    pub drops: [u64; DropReason::COUNT],
}

/// Frames of `case` through `pl`, every invariant checked.
fn run_case(
    case: &PipelineCase,
    plan: &Plan,
    pl: &mut Pipeline,
    driver: &mut Driver,
    inputs: &mut Vec<u8>,
    ends: &mut Vec<usize>,
) -> PipelineOutcome {
    // Frames in arrival order, batched per ingress port.
    let frames: Vec<(u16, Vec<u8>)> = case
        .frames
        .iter()
        .take(256)
        .map(|f| match f {
            CaseFrame::Raw(p, b) => ((*p % 4) as u16, b.clone()),
            CaseFrame::Crafted {
                attachment,
                v6,
                tos,
                src_port,
                len,
                truncate,
                foreign_mac,
            } => {
                let a = &plan.attachments[*attachment as usize % plan.attachments.len()];
                let tags: Vec<VlanTag> = a
                    .vids
                    .iter()
                    .map(|v| VlanTag::from_tci(Tpid::DOT1Q, *v))
                    .collect();
                let (s, d): (IpAddr, IpAddr) = if *v6 {
                    (
                        "2001:db8::1".parse().expect("literal"),
                        "2001:db8::2".parse().expect("literal"),
                    )
                } else {
                    (
                        "192.0.2.9".parse().expect("literal"),
                        "203.0.113.9".parse().expect("literal"),
                    )
                };
                let mut f = FrameSpec::udp(
                    &tags,
                    s,
                    d,
                    (*src_port, 443),
                    *tos,
                    64 + (*len as usize % 1600),
                )
                .build();
                if !*foreign_mac {
                    // Addressed to the port, as a peer that resolved us
                    // sends (what an l3 attachment routes).
                    if let Some(mac) = plan.ports.get(a.port as usize) {
                        f[..6].copy_from_slice(&mac.mac);
                    }
                }
                if let Some(m) = &a.mpls {
                    f = labelled_input(&f, m, *src_port);
                }
                if let Some(t) = truncate {
                    f.truncate(*t as usize);
                }
                (a.port, f)
            }
        })
        .collect();
    let received = frames.len() as u64;
    let mut arrivals = Arrivals { frames, next: 0 };
    let mut checker = Checker {
        plan,
        labelled: (0, 0),
        inputs,
        ends,
    };
    while let Some((port, _)) = arrivals.frames.get(arrivals.next) {
        let port = *port;
        driver.step(pl, &mut arrivals, port, &mut checker);
    }
    let labelled = checker.labelled;
    let c = pl.counters();
    assert_eq!(c.total_rx(), received, "every input counted as received");
    assert_eq!(c.held, pl.held() as u64, "held gauge vs the hold queue");
    assert_eq!(
        c.total_rx(),
        c.total_tx() + c.total_drops() + c.local + c.held,
        "rx = tx + drops + local + held"
    );
    PipelineOutcome {
        tx: c.total_tx(),
        labelled_in: labelled.0,
        labelled_out: labelled.1,
        drops: c.drops,
    }
}

/// Check one frame's verdict and output; returns whether it was forwarded
/// having come in labelled, and whether it left labelled.
fn check_output(
    plan: &Plan,
    in_port: u16,
    input: &[u8],
    verdict: Verdict,
    att: u32,
    out: &[u8],
) -> (bool, bool) {
    assert_ne!(verdict, Verdict::Pending, "frame left pending");
    if verdict == Verdict::Drop(DropReason::NotOurMac) {
        let ours = plan.ports.get(in_port as usize).map(|p| p.mac);
        assert_ne!(
            input.get(..6),
            ours.as_ref().map(|m| &m[..]),
            "a frame to the ingress port's own MAC dropped as not-our-mac"
        );
    }
    let Some(out_port) = verdict.egress() else {
        return (false, false);
    };
    let ingress = &plan.attachments[att as usize];
    assert_eq!(ingress.port, in_port);
    // Labelled frames are checked as the services see them: out of their
    // labels (the ingress attachment says how), and a labelled output
    // belongs to the attachment whose push carries its bottom label.
    let input_plain;
    let input = match &ingress.mpls {
        Some(m) => {
            input_plain = unlabel(input, m.pseudowire, m.control_word)
                .unwrap_or_else(|| panic!("a forwarded labelled input does not unlabel"));
            &input_plain[..]
        }
        None => input,
    };
    let labelled_back = labelled_output(plan, out_port, out);
    let out_plain;
    let out = match &labelled_back {
        Some((_, plain)) => {
            out_plain = plain.clone();
            &out_plain[..]
        }
        None => out,
    };
    let seen = (ingress.mpls.is_some(), labelled_back.is_some());
    let oi = wire::parse(out).unwrap_or_else(|e| panic!("output frame does not parse: {e}"));
    let classify_back = |what: &str| match &labelled_back {
        Some((back, _)) => *back,
        None => plan
            .classify(classify::key_of(out_port, &oi.tags))
            .unwrap_or_else(|| {
                panic!(
                    "{what} tags {:?} on port {out_port} match no attachment",
                    oi.tags
                )
            }),
    };
    if let Service::L3 { .. } = ingress.service {
        // Routed, answered or turned into a request: it stays in its peering.
        let back = classify_back("l3 output");
        assert_eq!(
            plan.attachments[back as usize].peering, ingress.peering,
            "l3 frame crossed peerings"
        );
        if oi.l3 == L3::Ipv4 {
            let l3 = oi.l3_offset as usize;
            let hl = ((out[l3] & 0x0f) as usize) * 4;
            assert_eq!(
                checksum::checksum(&out[l3..l3 + hl]),
                0,
                "l3 output with a bad IPv4 checksum"
            );
        }
        return seen;
    }
    let ii = wire::parse(input).expect("a forwarded frame parsed on input");
    // The output classifies, on its egress port, to the same peering's other side.
    let back = classify_back("output");
    let egress = &plan.attachments[back as usize];
    assert_eq!(
        egress.peering, ingress.peering,
        "frame crossed from one peering to another"
    );
    assert_ne!(
        egress.side == Side::Access,
        ingress.side == Side::Access,
        "l2 frame did not cross the cross-connect"
    );
    // Beyond the tags, only the DSCP bits (and the IPv4 checksum) change.
    let (a, b) = (
        &input[ii.l3_offset as usize..],
        &out[oi.l3_offset as usize..],
    );
    assert_eq!(a.len(), b.len(), "payload length changed");
    assert_eq!(oi.ethertype, ii.ethertype);
    if let Service::L2 { marker, .. } = ingress.service {
        if ii.is_ip() {
            let want = plan.markers[marker as usize].decide(&ii, input);
            assert_eq!(oi.dscp(), want, "DSCP policy not applied");
            assert_eq!(oi.ecn(), ii.ecn(), "ECN changed");
        }
    }
    for (k, (x, y)) in a.iter().zip(b.iter()).enumerate() {
        let allowed = match ii.l3 {
            L3::Ipv4 => k == 1 || k == 10 || k == 11,
            L3::Ipv6 => k == 0 || k == 1,
            _ => false,
        };
        assert!(x == y || allowed, "byte {k} after the tags changed");
    }
    if ii.l3 == L3::Ipv4 {
        let hl = ((a[0] & 0x0f) as usize) * 4;
        if checksum::checksum(&a[..hl]) == 0 {
            assert_eq!(
                checksum::checksum(&b[..hl]),
                0,
                "IPv4 checksum broken by the pipeline"
            );
        }
    }
    seen
}

/// `frame` (untagged) as the backbone delivers it to attachment `m`: an
/// L3VPN's IP packet under its label, a pseudowire's whole frame behind
/// an outer Ethernet header, the label and the control word. An odd
/// `flow` puts a transport label on top: the port's (16001), or with bit
/// 1 set another PE's (16009, `unknown-label`).
fn labelled_input(frame: &[u8], m: &crate::plan::MplsIn, flow: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(frame.len() + 26);
    f.extend_from_slice(frame.get(..12).unwrap_or_default());
    f.extend_from_slice(&wire::mpls::ETHERTYPE_MPLS.to_be_bytes());
    if flow & 1 == 1 {
        let transport: u32 = if flow & 2 == 0 { 16001 } else { 16009 };
        f.extend_from_slice(&(transport << 12 | 64).to_be_bytes());
    }
    f.extend_from_slice(&(m.label << 12 | 0x100 | u32::from(flow >> 8)).to_be_bytes());
    if m.pseudowire {
        if m.control_word {
            f.extend_from_slice(&[0; 4]);
        }
        f.extend_from_slice(frame);
    } else {
        f.extend_from_slice(frame.get(14..).unwrap_or_default());
    }
    f
}

/// A labelled frame out of its labels, as the pipeline takes it in: an
/// L3VPN packet behind its MACs and the IP ethertype, a pseudowire's inner
/// frame; `None` if it is not a labelled frame whose stack (at most four
/// entries) ends.
fn unlabel(frame: &[u8], pseudowire: bool, control_word: bool) -> Option<Vec<u8>> {
    if frame.get(12..14)? != wire::mpls::ETHERTYPE_MPLS.to_be_bytes() {
        return None;
    }
    let stack = wire::mpls::LabelStack::parse(frame.get(14..)?, 14).ok()?;
    let under = 14 + stack.header_len();
    if pseudowire {
        let skip = under + 4 * usize::from(control_word);
        return Some(frame.get(skip..)?.to_vec());
    }
    let et = match frame.get(under)? >> 4 {
        4 => wire::ethernet::ethertype::IPV4,
        6 => wire::ethernet::ethertype::IPV6,
        _ => return None,
    };
    let mut out = frame.get(..12)?.to_vec();
    out.extend_from_slice(&et.to_be_bytes());
    out.extend_from_slice(frame.get(under..)?);
    Some(out)
}

/// The attachment a labelled output on `port` was sent to (the MPLS
/// attachment whose push carries the frame's bottom label) and the frame
/// out of its labels; `None` for a frame that is not labelled.
fn labelled_output(plan: &Plan, port: PortId, out: &[u8]) -> Option<(u32, Vec<u8>)> {
    if out.get(12..14)? != wire::mpls::ETHERTYPE_MPLS.to_be_bytes() {
        return None;
    }
    let stack = wire::mpls::LabelStack::parse(out.get(14..).unwrap_or_default(), 14)
        .unwrap_or_else(|e| panic!("a labelled output with a broken stack: {e}"));
    let bottom = stack.bottom().map(|e| e.label.value());
    let push_of = |a: &crate::plan::Attachment| match a.service {
        Service::L3 { peering, .. } => plan
            .l3
            .get(peering as usize)
            .and_then(|p| p.link(Side::Access))
            .and_then(|l| l.push.mpls),
        Service::L2 { .. } => plan.attachments.iter().find_map(|b| match b.service {
            Service::L2 {
                egress: crate::plan::Egress::Access(t),
                ..
            } if b.peering == a.peering => t.mpls,
            _ => None,
        }),
    };
    let (i, m) = plan.attachments.iter().enumerate().find_map(|(i, a)| {
        let push = push_of(a).filter(|_| a.port == port && a.mpls.is_some())?;
        let words = push.words.get(..push.count as usize)?;
        (words.last().map(|w| w >> 12) == bottom).then_some((i, push))
    })?;
    let plain = unlabel(out, m.pseudowire, m.control_word)
        .unwrap_or_else(|| panic!("a labelled output that does not unlabel"));
    Some((i as u32, plain))
}

/// Arbitrary text through the loader: a config, or diagnostics that each
/// carry a file, a 1-based line and column inside the text, and a rule.
pub fn config_text(text: &str) {
    match config::load_str(text, Path::new("fuzz.toml")) {
        Ok(cfg) => {
            let _ = config::compile(&cfg);
        }
        Err(d) => {
            assert!(!d.is_empty(), "an error without a diagnostic");
            let lines = text.split('\n').count();
            for x in d.iter() {
                assert!(
                    x.line >= 1 && x.column >= 1,
                    "diagnostic without a location: {x}"
                );
                assert!(
                    x.line <= lines + 1,
                    "diagnostic line {} past the text ({lines} lines)",
                    x.line
                );
                assert!(!x.rule.is_empty());
                assert_eq!(x.file, Path::new("fuzz.toml"));
            }
        }
    }
}

/// An IPv4 prefix of an [`LpmOp`]: the length byte maps to 8..=32 except
/// for the top 8 values, which give /0../7 (those rewrite up to the whole
/// 64 MiB first level, so the fuzzer gets them, but rarely).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Prefix4 {
    /// Any address; host bits are ignored.
    pub addr: u32,
    /// Length selector (see the type).
    pub len: u8,
}

impl Prefix4 {
    /// The prefix, truncated.
    pub fn net(self) -> Ipv4Net {
        let len = if self.len >= 248 {
            self.len - 248
        } else {
            8 + self.len % 25
        };
        Ipv4Net::new(Ipv4Addr::from(self.addr), len)
            .expect("len <= 32")
            .trunc()
    }
}

/// An IPv6 prefix of an [`LpmOp`]: lengths 8..=128, or /0../7 for the top
/// 8 values of the length byte.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Prefix6 {
    /// Any address; host bits are ignored.
    pub addr: u128,
    /// Length selector (see the type).
    pub len: u8,
}

impl Prefix6 {
    /// The prefix, truncated.
    pub fn net(self) -> Ipv6Net {
        let len = if self.len >= 248 {
            self.len - 248
        } else {
            8 + self.len % 121
        };
        Ipv6Net::new(Ipv6Addr::from(self.addr), len)
            .expect("len <= 128")
            .trunc()
    }
}

/// One operation of [`lpm_diff`]. Next hops are small; 254 stands for
/// [`MAX_NEXT_HOP`] and 255 for `MAX_NEXT_HOP + 1`, which must be refused.
#[derive(Arbitrary, Debug, Clone)]
pub enum LpmOp {
    /// Insert (or replace) an IPv4 prefix.
    Insert4(Prefix4, u8),
    /// Remove an IPv4 prefix (usually absent).
    Remove4(Prefix4),
    /// Give the n-th IPv4 prefix touched so far (mod their count) a new
    /// next hop.
    Replace4(u8, u8),
    /// Remove the n-th IPv4 prefix touched so far.
    RemoveTouched4(u8),
    /// An atomic IPv4 batch: `(insert?, prefix, next hop)` (at most 16
    /// used; at most 2 batches per input, each copies the table).
    Batch4(Vec<(bool, Prefix4, u8)>),
    /// Insert (or replace) an IPv6 prefix.
    Insert6(Prefix6, u8),
    /// Remove an IPv6 prefix.
    Remove6(Prefix6),
    /// Give the n-th IPv6 prefix touched so far a new next hop.
    Replace6(u8, u8),
    /// Remove the n-th IPv6 prefix touched so far.
    RemoveTouched6(u8),
    /// An atomic IPv6 batch, as [`LpmOp::Batch4`].
    Batch6(Vec<(bool, Prefix6, u8)>),
    /// Look up an IPv4 address now and at the end.
    Lookup4(u32),
    /// Look up an IPv6 address now and at the end.
    Lookup6(u128),
}

/// Operations of one [`lpm_diff`] input that are applied.
pub const LPM_MAX_OPS: usize = 64;
const LPM_MAX_BATCHES: usize = 2;
const LPM_MAX_BATCH_LEN: usize = 16;
/// Group capacities of the fuzzed writers: small, so that exhaustion (a
/// refused update) is reachable.
const LPM_V4_GROUPS: u32 = 128;
const LPM_V6_GROUPS: u32 = 1024;

fn lpm_next_hop(nh: u8) -> NextHop {
    match nh {
        255 => MAX_NEXT_HOP + 1,
        254 => MAX_NEXT_HOP,
        n => NextHop::from(n),
    }
}

/// The address family half of [`lpm_diff`]: a writer, a reader on it, the
/// oracle, and the prefixes and addresses touched so far.
struct LpmTwin<W, O, P, A> {
    w: W,
    o: O,
    touched: Vec<P>,
    lookups: Vec<A>,
    batches: usize,
}

macro_rules! lpm_twin_impl {
    ($writer:ty, $oracle:ty, $net:ty, $addr:ty, $ip:ty, $reader_lookup:ident) => {
        impl LpmTwin<$writer, $oracle, $net, $addr> {
            fn touch(&mut self, p: $net) {
                if !self.touched.contains(&p) {
                    self.touched.push(p);
                }
            }

            /// Network, last address, and both neighbours of `p`.
            fn boundaries(p: &$net) -> [$addr; 4] {
                let net = <$addr>::from(p.network());
                let last = <$addr>::from(p.broadcast());
                [net, last, net.wrapping_sub(1), last.wrapping_add(1)]
            }

            /// The writer, a fresh reader, a pinned view and batch lookups
            /// all answer as the oracle for `addrs`.
            fn check(&self, addrs: &[$addr], what: &dyn std::fmt::Debug) {
                let r = self.w.reader();
                let view = r.pin();
                let mut batch = vec![crate::lpm::Route::NONE; addrs.len()];
                r.lookup_batch(addrs, &mut batch);
                let mut vbatch = vec![crate::lpm::Route::NONE; addrs.len()];
                view.lookup_batch(addrs, &mut vbatch);
                for (i, &a) in addrs.iter().enumerate() {
                    let ip = <$ip>::from(a);
                    let want = self.o.lookup(ip);
                    let got = [
                        self.w.lookup(ip),
                        r.$reader_lookup(a),
                        view.lookup(a),
                        batch[i].next_hop(),
                        vbatch[i].next_hop(),
                    ];
                    assert!(
                        got.iter().all(|g| *g == want),
                        "lookup {ip} after {what:?}: writer, reader, view, batch, view batch \
                         answer {got:?}, oracle {want:?}"
                    );
                }
            }

            fn check_prefixes(&self, ps: &[$net], what: &dyn std::fmt::Debug) {
                let addrs: Vec<$addr> = ps.iter().flat_map(Self::boundaries).collect();
                self.check(&addrs, what);
            }

            fn insert(&mut self, p: $net, nh: u8, what: &dyn std::fmt::Debug) {
                self.touch(p);
                let nh = lpm_next_hop(nh);
                match self.w.insert(p, nh) {
                    Ok(prev) => {
                        assert!(nh <= MAX_NEXT_HOP, "next hop {nh} accepted");
                        let want = self.o.insert(p, nh);
                        assert_eq!(prev, want, "insert {p}: previous next hop");
                    }
                    Err(LpmError::NextHopTooLarge(n)) => {
                        assert!(n == nh && nh > MAX_NEXT_HOP, "next hop {nh} refused")
                    }
                    Err(LpmError::GroupsExhausted { .. }) => {}
                }
                self.check_prefixes(&[p], what);
            }

            fn remove(&mut self, p: $net, what: &dyn std::fmt::Debug) {
                self.touch(p);
                let got = self.w.remove(p);
                assert_eq!(got, self.o.remove(p), "remove {p}: removed next hop");
                self.check_prefixes(&[p], what);
            }

            fn nth(&self, n: u8) -> Option<$net> {
                (!self.touched.is_empty())
                    .then(|| self.touched[usize::from(n) % self.touched.len()])
            }

            fn batch(&mut self, items: Vec<(bool, $net, u8)>, what: &dyn std::fmt::Debug) {
                if self.batches >= LPM_MAX_BATCHES {
                    return;
                }
                self.batches += 1;
                let items = &items[..items.len().min(LPM_MAX_BATCH_LEN)];
                let mut o = self.o.clone();
                let mut updates = Vec::new();
                for &(ins, p, nh) in items {
                    self.touch(p);
                    if ins {
                        let nh = lpm_next_hop(nh);
                        o.insert(p, nh);
                        updates.push(Update::Insert(p, nh));
                    } else {
                        o.remove(p);
                        updates.push(Update::Remove(p));
                    }
                }
                let too_large = updates
                    .iter()
                    .any(|u| matches!(u, Update::Insert(_, nh) if *nh > MAX_NEXT_HOP));
                match self.w.apply(&updates) {
                    Ok(()) => {
                        assert!(!too_large, "a batch with a too large next hop was applied");
                        self.o = o;
                    }
                    Err(LpmError::NextHopTooLarge(_)) => {
                        assert!(too_large, "batch refused for a next hop")
                    }
                    Err(LpmError::GroupsExhausted { .. }) => {}
                }
                let ps: Vec<$net> = items.iter().map(|i| i.1).collect();
                self.check_prefixes(&ps, what);
            }

            /// Every touched boundary, every looked-up address, and the
            /// rule set itself.
            fn finish(&self) {
                self.check_prefixes(&self.touched, &"the end");
                self.check(&self.lookups, &"the end");
                assert_eq!(self.w.len(), self.o.len(), "prefix count");
                for (p, nh) in self.o.routes() {
                    assert_eq!(self.w.get(p), Some(nh), "get {p}");
                }
            }
        }
    };
}

lpm_twin_impl!(Lpm4Writer, Oracle4, Ipv4Net, u32, Ipv4Addr, lookup_u32);
lpm_twin_impl!(Lpm6Writer, Oracle6, Ipv6Net, u128, Ipv6Addr, lookup_u128);

/// Apply `ops` (the first [`LPM_MAX_OPS`]) to [`Lpm4Writer`] /
/// [`Lpm6Writer`] and to [`Oracle4`] / [`Oracle6`]: the writer, readers,
/// pinned views and batch lookups must answer as the oracle for the
/// boundary addresses (network, last address, ±1) of every touched prefix
/// after each operation and at the end, and for every looked-up address;
/// inserts and removes must return the oracle's previous next hop; a
/// refused update (next hop too large, groups exhausted) changes nothing.
pub fn lpm_diff(ops: &[LpmOp]) {
    let ops = &ops[..ops.len().min(LPM_MAX_OPS)];
    let v4 = ops.iter().any(|o| {
        matches!(
            o,
            LpmOp::Insert4(..)
                | LpmOp::Remove4(_)
                | LpmOp::Replace4(..)
                | LpmOp::RemoveTouched4(_)
                | LpmOp::Batch4(_)
                | LpmOp::Lookup4(_)
        )
    });
    let v6 = ops.iter().any(|o| {
        matches!(
            o,
            LpmOp::Insert6(..)
                | LpmOp::Remove6(_)
                | LpmOp::Replace6(..)
                | LpmOp::RemoveTouched6(_)
                | LpmOp::Batch6(_)
                | LpmOp::Lookup6(_)
        )
    });
    // Writers only for the families used: each maps a 64 MiB first level.
    let mut t4 = v4.then(|| LpmTwin {
        w: Lpm4Writer::with_tbl8_groups(LPM_V4_GROUPS),
        o: Oracle4::new(),
        touched: Vec::<Ipv4Net>::new(),
        lookups: Vec::<u32>::new(),
        batches: 0,
    });
    let mut t6 = v6.then(|| LpmTwin {
        w: Lpm6Writer::with_groups(LPM_V6_GROUPS),
        o: Oracle6::new(),
        touched: Vec::<Ipv6Net>::new(),
        lookups: Vec::<u128>::new(),
        batches: 0,
    });
    for (i, op) in ops.iter().enumerate() {
        let what = (i, op);
        match (op, t4.as_mut(), t6.as_mut()) {
            (LpmOp::Insert4(p, nh), Some(t), _) => t.insert(p.net(), *nh, &what),
            (LpmOp::Remove4(p), Some(t), _) => t.remove(p.net(), &what),
            (LpmOp::Replace4(n, nh), Some(t), _) => {
                if let Some(p) = t.nth(*n) {
                    t.insert(p, *nh, &what);
                }
            }
            (LpmOp::RemoveTouched4(n), Some(t), _) => {
                if let Some(p) = t.nth(*n) {
                    t.remove(p, &what);
                }
            }
            (LpmOp::Batch4(items), Some(t), _) => {
                let items = items.iter().map(|&(b, p, nh)| (b, p.net(), nh)).collect();
                t.batch(items, &what);
            }
            (LpmOp::Lookup4(a), Some(t), _) => {
                t.lookups.push(*a);
                t.check(&[*a], &what);
            }
            (LpmOp::Insert6(p, nh), _, Some(t)) => t.insert(p.net(), *nh, &what),
            (LpmOp::Remove6(p), _, Some(t)) => t.remove(p.net(), &what),
            (LpmOp::Replace6(n, nh), _, Some(t)) => {
                if let Some(p) = t.nth(*n) {
                    t.insert(p, *nh, &what);
                }
            }
            (LpmOp::RemoveTouched6(n), _, Some(t)) => {
                if let Some(p) = t.nth(*n) {
                    t.remove(p, &what);
                }
            }
            (LpmOp::Batch6(items), _, Some(t)) => {
                let items = items.iter().map(|&(b, p, nh)| (b, p.net(), nh)).collect();
                t.batch(items, &what);
            }
            (LpmOp::Lookup6(a), _, Some(t)) => {
                t.lookups.push(*a);
                t.check(&[*a], &what);
            }
            _ => unreachable!("a writer exists for every family used"),
        }
    }
    if let Some(t) = &t4 {
        t.finish();
    }
    if let Some(t) = &t6 {
        t.finish();
    }
    drop((t4, t6));
    settle_epoch();
}

/// Bring the epoch collector (crossbeam's global one, which the tables
/// retire old subtrees and tables to) to the same state at the end of
/// every [`lpm_diff`] input, having run what this input retired.
///
/// Why: a retired table is freed two epochs after it was retired, by
/// whichever later `pin` collects it, so without this an input ends with
/// more `malloc`s than `free`s (its frees happen in a later input).
/// libFuzzer reads that as a possible leak: it runs the input again and
/// then a full LeakSanitizer pass over the heap, which took about a third
/// of the fuzzer's time. Settled, every input frees what it allocated, so
/// an input that does not is a real leak and is still reported.
///
/// How: each step moves this thread to the current epoch, defers a no-op
/// (so the bag is never empty) and flushes: that pushes one bag, advances
/// the epoch (this thread is the only one pinned) and frees the bags two
/// epochs old. From any state, after a few steps each step pushes one bag
/// and frees one, and what is left queued is the same every time.
fn settle_epoch() {
    /// Enough steps for the bags of one input (measured: 4 already left
    /// the same state at every input; see docs/lpm.md).
    const STEPS: usize = 8;
    let mut guard = crossbeam::epoch::pin();
    for _ in 0..STEPS {
        guard.repin();
        guard.defer(|| ());
        guard.flush();
    }
}

/// Arbitrary bytes as a capture file, traced on each port of the bench
/// configuration (see the module header).
pub fn trace_capture(data: &[u8]) {
    use crate::io::pcap::PcapSource;
    use crate::trace::{FrameTrace, Summary, Tracer};
    static PLAN: std::sync::OnceLock<Arc<Plan>> = std::sync::OnceLock::new();
    let plan = PLAN.get_or_init(|| Arc::new(config::compile(&crate::bench::cases::config())));
    let Ok(mut source) = PcapSource::from_bytes("fuzz.pcap", data.to_vec()) else {
        return;
    };
    for port in 0..plan.ports.len() as u16 {
        source.rewind();
        let links = LinkState::new(plan.ports.len());
        let mut tracer = Tracer::new(plan.clone(), links, port, true);
        let mut summary = Summary::default();
        let mut last = 0u64;
        let visited = tracer.run(&mut source, Some(256), |r| {
            assert!(
                r.number > last,
                "frame numbers not increasing: {} after {last}",
                r.number
            );
            last = r.number;
            assert_eq!(
                r.input.len(),
                r.captured_len,
                "record input vs captured length"
            );
            if let Some(sf) = r.super_frame {
                // Read back from the bytes: a super-frame of TCP, more
                // than one segment's payload.
                let o = sf.received;
                assert!(o.is_super_frame() && o.segment_size > 0, "{o:?}");
                assert!(r.captured_len > o.header_len as usize + o.segment_size as usize);
                if let (Some(Ok(sent)), Some(out)) = (sf.sent, r.output) {
                    // Only the headers moved; the metadata moved with them.
                    assert_eq!((sent.gso, sent.segment_size), (o.gso, o.segment_size));
                    assert_eq!(
                        out.len() as isize - r.captured_len as isize,
                        sent.header_len as isize - o.header_len as isize,
                        "{o:?} -> {sent:?}"
                    );
                }
            }
            let t = FrameTrace::of(r);
            assert_eq!(t.frame, r.number);
            assert!(t.text().starts_with(&format!("frame {} on ", r.number)));
            serde_json::to_string(&t).expect("a frame trace serialises");
            summary.count(r);
        });
        assert_eq!(summary.frames, visited, "frames visited vs counted");
        let c = tracer.pipeline().counters();
        assert_eq!(
            c.total_rx(),
            visited,
            "every traced frame received once by the pipeline"
        );
        if let Some(e) = source.error() {
            assert!(e.offset <= data.len(), "error offset past the input: {e}");
            assert!(
                e.frame > last,
                "error frame {} not after the last frame {last}",
                e.frame
            );
        }
    }
}

/// A frame the l3 service built (a reply, an error, a request) is valid:
/// our parse and etherparse accept it and agree on every field, the IPv4
/// header checksum verifies, and so does the ICMP (over the message) or
/// ICMPv6 checksum (over the pseudo-header too) of an unfragmented packet.
/// Returns what is wrong.
pub fn reply_is_valid(frame: &[u8]) -> Result<(), String> {
    use crate::wire::icmp::IcmpHeader;
    let info = wire::parse(frame).map_err(|e| format!("ours: {e}"))?;
    SlicedPacket::from_ethernet(frame).map_err(|e| format!("etherparse: {e}"))?;
    compare_with_etherparse(frame)?;
    let l3 = frame.get(info.l3_offset as usize..).unwrap_or(&[]);
    let l4 = frame.get(info.l4_offset as usize..).unwrap_or(&[]);
    match info.l3 {
        L3::Ipv4 => {
            let ip = wire::ipv4::Ipv4Packet::new_checked(l3, 0).map_err(|e| e.to_string())?;
            if !ip.verify_checksum() {
                return Err("IPv4 header checksum".into());
            }
            if info.protocol == wire::l4::protocol::ICMP && !info.fragment {
                let end = ip.total_len() as usize - (info.l4_offset - info.l3_offset) as usize;
                let msg = IcmpHeader::new_checked(l4.get(..end).unwrap_or(&[]), 0, false)
                    .map_err(|e| e.to_string())?;
                if !msg.verify_checksum_v4() {
                    return Err("ICMPv4 checksum".into());
                }
            }
        }
        L3::Ipv6 => {
            let ip = wire::ipv6::Ipv6Packet::new_checked(l3, 0).map_err(|e| e.to_string())?;
            if info.protocol == wire::l4::protocol::ICMPV6 && !info.fragment {
                let end = info.l3_len as usize - (info.l4_offset - info.l3_offset) as usize;
                let msg = IcmpHeader::new_checked(l4.get(..end).unwrap_or(&[]), 0, true)
                    .map_err(|e| e.to_string())?;
                if !msg.verify_checksum_v6(&ip.src(), &ip.dst()) {
                    return Err("ICMPv6 checksum".into());
                }
            }
        }
        L3::Arp | L3::Other => {}
    }
    Ok(())
}

/// The builders of `l3::reply` that [`l3_reply`] drives, by the first
/// byte of its input (mod their number).
pub const L3_REPLY_BUILDERS: [&str; 10] = [
    "arp_reply",
    "arp_request",
    "icmp4_error",
    "icmp4_echo_reply",
    "icmp6_error",
    "icmp6_echo_reply",
    "nd_advert",
    "nd_solicit",
    "nd_lladdr",
    "ethernet",
];

/// The `l3_reply` input for `frame`: the builder at `builder` in
/// [`L3_REPLY_BUILDERS`], a buffer of `capacity` bytes, the network header
/// at `l3`, error choice `kind` and `code` (see [`l3_reply`]).
pub fn l3_reply_input(
    builder: usize,
    capacity: u16,
    l3: u8,
    kind: u8,
    code: u8,
    frame: &[u8],
) -> Vec<u8> {
    let mut d = vec![builder as u8];
    d.extend_from_slice(&capacity.to_be_bytes());
    d.extend_from_slice(&[l3, kind, code]);
    d.extend_from_slice(frame);
    d
}

/// The old hand-indexed `nd_lladdr`, kept as the plain oracle of the
/// checked options walker.
fn nd_lladdr_oracle(opts: &[u8], kind: u8) -> Option<[u8; 6]> {
    let mut o = opts;
    while o.len() >= 8 {
        let len = o[1] as usize * 8;
        if len == 0 || len > o.len() {
            return None;
        }
        if o[0] == kind {
            return o.get(2..8).map(|m| [m[0], m[1], m[2], m[3], m[4], m[5]]);
        }
        o = &o[len..];
    }
    None
}

/// Arbitrary bytes through the frame builders of `l3::reply`. The input
/// is byte 0 the builder ([`L3_REPLY_BUILDERS`]), bytes 1-2 the buffer
/// capacity (big-endian, at most 4096), byte 3 the `l3` offset, bytes 4-5
/// the ICMP error's type choice and code, and the rest the received frame
/// (cut to the capacity). Whatever the input: no panic; `Some(n)` has
/// `n ≤` the buffer; `None` leaves the buffer as it was; the tags between
/// the MACs and `l3 - 2` never change. When the frame is what the
/// builder's caller in `l3` hands it (it parses, its network header is at
/// `l3` and of the builder's kind; for the requests, only its tags must
/// parse), the builder answers whenever the buffer is large enough, and
/// what it builds is [`reply_is_valid`] and says what it should.
pub fn l3_reply(data: &[u8]) {
    use crate::pipeline::l3::reply;
    use crate::wire::nd::{NdMessage, NdRepr};
    let [builder, c0, c1, l3, kind_sel, code, frame @ ..] = data else {
        return;
    };
    let what = L3_REPLY_BUILDERS[*builder as usize % L3_REPLY_BUILDERS.len()];
    let capacity = (u16::from_be_bytes([*c0, *c1]) as usize).min(4096);
    let l3 = *l3 as usize;
    let len = frame.len().min(capacity);
    let mut buf = vec![0u8; capacity];
    buf[..len].copy_from_slice(&frame[..len]);
    let before = buf.clone();
    const US: [u8; 6] = [0x02, 0x78, 0x63, 0, 0, 1];
    let us4 = Ipv4Addr::new(192, 0, 2, 1);
    let peer4 = Ipv4Addr::new(192, 0, 2, 2);
    let us6: Ipv6Addr = "2001:db8::1".parse().expect("literal");
    let peer6: Ipv6Addr = "2001:db8::2".parse().expect("literal");
    let received = &before[..len];
    let info = wire::parse(received).ok();
    let at_l3 = |kind: L3| info.is_some_and(|i| i.l3 == kind && i.l3_offset as usize == l3);
    let tags_end_at_l3 =
        matches!(wire::parse_tags(received), Ok((_, at)) if at + 2 == l3 && l3 <= len);
    // The builder's result, whether the input met its precondition, and
    // the smallest buffer that must then get an answer.
    let (built, precondition, needs) = match what {
        "arp_reply" => (
            reply::arp_reply(&mut buf[..len], l3, &US, us4),
            at_l3(L3::Arp),
            0,
        ),
        "arp_request" => (
            reply::arp_request(&mut buf, l3, &US, us4, peer4),
            tags_end_at_l3,
            l3 + 28,
        ),
        "icmp4_error" => {
            let (kind, code) = if kind_sel & 1 == 0 {
                (3, code % 16)
            } else {
                (11, code % 2)
            };
            let quote = info.map_or(0, |i| {
                let hl = (received.get(l3).copied().unwrap_or(0) & 0x0f) as usize * 4;
                (hl + 8).min(i.l3_len as usize)
            });
            (
                reply::icmp4_error(&mut buf, len, l3, kind, code, &US, us4),
                at_l3(L3::Ipv4),
                l3 + 28 + quote,
            )
        }
        "icmp4_echo_reply" => {
            let direct_icmp = received.get(l3 + 9) == Some(&wire::l4::protocol::ICMP);
            let ok = at_l3(L3::Ipv4)
                && info.is_some_and(|i| !i.fragment && i.protocol == 1)
                && direct_icmp;
            (reply::icmp4_echo_reply(&mut buf, len, l3, &US), ok, 0)
        }
        "icmp6_error" => {
            let (kind, code) = if kind_sel & 1 == 0 {
                (1, code % 7)
            } else {
                (3, code % 2)
            };
            (
                reply::icmp6_error(&mut buf, len, l3, kind, code, &US, us6),
                at_l3(L3::Ipv6),
                l3 + 48 + (len.saturating_sub(l3)).min(1280 - 48),
            )
        }
        "icmp6_echo_reply" => {
            let direct_icmp = received.get(l3 + 6) == Some(&wire::l4::protocol::ICMPV6);
            (
                reply::icmp6_echo_reply(&mut buf, len, l3, &US),
                at_l3(L3::Ipv6) && direct_icmp,
                0,
            )
        }
        "nd_advert" => (
            reply::nd_advert(&mut buf[..len], l3, &US, us6),
            at_l3(L3::Ipv6),
            l3 + 72,
        ),
        "nd_solicit" => (
            reply::nd_solicit(&mut buf, l3, &US, us6, peer6),
            tags_end_at_l3,
            l3 + 72,
        ),
        "nd_lladdr" => {
            let opts = frame.get(l3.min(frame.len())..).unwrap_or(&[]);
            for kind in [1, 2, *kind_sel] {
                assert_eq!(
                    reply::nd_lladdr(opts, kind),
                    nd_lladdr_oracle(opts, kind),
                    "nd_lladdr({opts:02x?}, {kind}) differs from the plain walk"
                );
            }
            return;
        }
        _ => {
            reply::set_macs(&mut buf, &US, &[2, 0, 0, 0, 0, 9]);
            if capacity >= 14 {
                assert_eq!(
                    &buf[..12],
                    &[US, [2, 0, 0, 0, 0, 9]].concat()[..],
                    "set_macs"
                );
            }
            reply::reply_to_sender(&mut buf, &US);
            if capacity >= 14 {
                assert_eq!(
                    &buf[..12],
                    &[[2, 0, 0, 0, 0, 9], US].concat()[..],
                    "reply_to_sender"
                );
            }
            reply::set_ethertype(&mut buf, l3, 0x86dd);
            if l3 >= 2 && l3 <= capacity {
                assert_eq!(&buf[l3 - 2..l3], &[0x86, 0xdd], "set_ethertype");
            }
            return;
        }
    };
    let Some(n) = built else {
        assert_eq!(buf, before, "{what} refused but wrote to the buffer");
        let buffer = if matches!(what, "arp_reply" | "nd_advert") {
            len
        } else {
            capacity
        };
        assert!(
            !precondition || (needs != 0 && buffer < needs),
            "{what} refused a valid input (l3 {l3}, buffer {buffer}, needs {needs})"
        );
        return;
    };
    assert!(
        n <= buf.len(),
        "{what}: length {n} past the buffer ({})",
        buf.len()
    );
    if l3 >= 14 {
        assert_eq!(
            buf.get(12..l3 - 2),
            before.get(12..l3 - 2),
            "{what} changed the tags"
        );
    }
    if !precondition {
        return;
    }
    let out = &buf[..n];
    if let Err(e) = reply_is_valid(out) {
        panic!("{what} built an invalid frame ({e}): {out:02x?}");
    }
    let i = wire::parse(out).expect("checked by reply_is_valid");
    assert_eq!(i.l3_offset as usize, l3, "{what} moved the network header");
    assert_eq!(&out[6..12], &US, "{what}: source MAC");
    match what {
        "arp_reply" | "arp_request" => {
            let a = wire::arp::ArpPacket::new_checked(&out[l3..], l3).expect("parsed as ARP");
            let want = if what == "arp_reply" { 2 } else { 1 };
            assert_eq!((a.operation(), a.sender_mac()), (want, US), "{what} ARP");
        }
        "icmp4_error" | "icmp4_echo_reply" => {
            assert_eq!((i.l3, i.protocol), (L3::Ipv4, 1), "{what}");
        }
        "nd_advert" | "nd_solicit" => {
            assert_eq!((i.l3, i.protocol, i.ttl), (L3::Ipv6, 58, 255), "{what}");
            let m = NdMessage::new_checked(&out[l3 + 40..], l3 + 40).expect("an ND message");
            let nd = NdRepr::parse(&m).expect("well-formed options");
            let (target, lladdr) = match nd {
                NdRepr::NeighborSolicit { target, lladdr } if what == "nd_solicit" => {
                    (target, lladdr)
                }
                NdRepr::NeighborAdvert { target, lladdr, .. } if what == "nd_advert" => {
                    (target, lladdr)
                }
                other => panic!("{what} built {other:?}"),
            };
            let want = if what == "nd_solicit" { peer6 } else { us6 };
            assert_eq!(
                (target, lladdr),
                (want, Some(US)),
                "{what} target and option"
            );
            let kind = if what == "nd_solicit" { 1 } else { 2 };
            assert_eq!(reply::nd_lladdr(&out[l3 + 64..], kind), Some(US));
        }
        _ => {
            assert_eq!((i.l3, i.protocol), (L3::Ipv6, 58), "{what}");
        }
    }
}

/// The peers of the [`fpm_decode`] table: two trunk links, both families
/// (the IPv6 peers of the built seeds and of `tests/fpm_frr.rs`).
pub const FPM_PEERS: [(&str, Side); 6] = [
    ("192.0.2.2", Side::Primary),
    ("192.0.2.6", Side::Secondary),
    ("2001:db8::2", Side::Primary),
    ("2001:db8::6", Side::Secondary),
    ("2001:db8:1::2", Side::Primary),
    ("2001:db8:1::6", Side::Secondary),
];

/// `fpm_decode`: `data[0]` picks the read size (1..=256 bytes), the rest
/// is an FPM byte stream fed to `control::Ingest` into a peering's table
/// in reads of that size, until the first error (a connection reset).
/// Checked against a plain model built from the same stream's complete,
/// well-framed frames: routes change only through valid messages — the
/// table holds exactly the model's prefixes (every next hop that is a
/// link peer; a route left with none is gone), each address of them
/// answers the path of its longest model prefix, nothing else is
/// installed, a frame with a framing error changes nothing; every
/// message decodes the same through the fast path and the crate alone
/// (`RouteDecoder::decode_reference`) — and after a
/// disconnection's grace time every route is withdrawn. Returns how many
/// routes the stream left installed (before the grace ran out).
pub fn fpm_decode(data: &[u8]) -> usize {
    use crate::control::decode::Decoded;
    use crate::control::fpm::FrameDecoder;
    use crate::control::{Ingest, RouteDecoder, RouteSync};
    use crate::plan::{RouteTable, PATH_ECMP, PATH_PRIMARY, PATH_SECONDARY};
    use ipnet::IpNet;
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};
    let [sel, stream @ ..] = data else {
        return 0;
    };
    let chunk = *sel as usize + 1;
    let peers: Vec<(IpAddr, Side)> = FPM_PEERS
        .iter()
        .filter_map(|(a, s)| Some((a.parse().ok()?, *s)))
        .collect();
    let Ok(mut t) = RouteTable::new(false, (1 << 20, 1 << 20), &[], peers.clone(), vec![]) else {
        panic!("fpm_decode: the table cannot be built");
    };
    let _ = t.reader_v4();
    let _ = t.reader_v6();
    let table = Arc::new(std::sync::Mutex::new(t));
    let grace = Duration::from_secs(1);
    let mut sync = RouteSync::new("fuzz", table.clone(), grace);
    let t0 = Instant::now();
    sync.connected(t0);
    let mut ingest = Ingest::new();
    for c in stream.chunks(chunk) {
        if ingest.push(c, &mut sync, &mut |_| {}).is_err() {
            break;
        }
    }
    // The model: every complete frame before the first error, in order.
    let mut model: BTreeMap<IpNet, Vec<Side>> = BTreeMap::new();
    let mut frames = FrameDecoder::new();
    let mut routes = RouteDecoder::new();
    // The crate-only decoding beside it: the fast path must agree.
    let mut reference = RouteDecoder::new();
    let mut failed = false;
    for c in stream.chunks(chunk) {
        if frames.feed(c).is_err() {
            break;
        }
        loop {
            let frame = match frames.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            };
            let Ok(msgs) = frame.messages().collect::<Result<Vec<_>, _>>() else {
                failed = true;
                break;
            };
            for m in msgs {
                let decoded = routes.decode(m.message_type, m.payload);
                assert_eq!(
                    decoded,
                    reference.decode_reference(m.message_type, m.payload),
                    "fpm_decode: the fast path and the crate decode a message differently"
                );
                let Decoded::Route(u) = decoded else {
                    continue;
                };
                let sides: Vec<Side> = u
                    .next_hops
                    .iter()
                    .flatten()
                    .filter_map(|h| peers.iter().find(|(a, _)| a == h).map(|(_, s)| *s))
                    .collect();
                if sides.is_empty() {
                    model.remove(&u.prefix);
                } else {
                    model.insert(u.prefix, sides);
                }
            }
        }
        if failed {
            break;
        }
    }
    let mut installed: Vec<IpNet> = sync.installed().collect();
    installed.sort();
    let expect: Vec<IpNet> = model.keys().copied().collect();
    assert_eq!(
        installed, expect,
        "fpm_decode: installed prefixes differ from the model"
    );
    let path = |sides: &[Side]| {
        let p = sides.contains(&Side::Primary);
        let s = sides.contains(&Side::Secondary);
        match (p, s) {
            (true, true) => PATH_ECMP,
            (true, false) => PATH_PRIMARY,
            _ => PATH_SECONDARY,
        }
    };
    {
        let tl = table.lock().unwrap_or_else(|e| e.into_inner());
        for p in model.keys() {
            assert!(tl.has_route(*p), "fpm_decode: {p} missing from the table");
            let a = p.addr();
            let longest = model
                .iter()
                .filter(|(q, _)| q.contains(&a))
                .max_by_key(|(q, _)| q.prefix_len());
            let want = longest.map(|(_, s)| path(s) as NextHop);
            assert_eq!(tl.lookup(a), want, "fpm_decode: {a} answers the wrong path");
        }
        let st = tl.state();
        assert_eq!(
            st.v4_routes + st.v6_routes,
            model.len(),
            "fpm_decode: the table holds routes the model does not"
        );
    }
    sync.disconnected(t0);
    sync.tick(t0 + grace, &mut |_| {});
    assert_eq!(
        sync.installed().count(),
        0,
        "fpm_decode: grace did not withdraw"
    );
    let tl = table.lock().unwrap_or_else(|e| e.into_inner());
    for p in model.keys() {
        assert_eq!(
            tl.lookup(p.addr()),
            None,
            "fpm_decode: {p} outlived its grace"
        );
    }
    model.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pipeline_configuration_loads_and_covers_the_grammar() {
        let mut l3 = 0;
        let mut modes = std::collections::BTreeSet::new();
        for k in 0..PIPELINE_CONFIGS {
            let text = pipeline_config_text(k);
            let cfg = config::load_str(&text, Path::new("fuzz.toml"))
                .unwrap_or_else(|d| panic!("configuration {k}:\n{text}\n{d}"));
            let plan = config::compile(&cfg);
            assert!(plan.warnings.is_empty(), "{k}: {:?}", plan.warnings);
            l3 += usize::from(!plan.l3.is_empty());
            let c = &cfg.circuits[0];
            let qinq = c.encapsulation == config::Encapsulation::QinQ;
            modes.insert((cfg.role == config::Role::Msee, qinq, c.outer_tpid));
        }
        assert_eq!(l3, PIPELINE_CONFIGS as usize / 2);
        let labelled = (0..PIPELINE_CONFIGS)
            .filter(|k| {
                let cfg = config::load_str(&pipeline_config_text(*k), Path::new("fuzz.toml"))
                    .unwrap_or_else(|d| panic!("{d}"));
                cfg.circuits[0]
                    .peerings
                    .iter()
                    .all(|p| p.access.mpls.is_some())
            })
            .count();
        assert_eq!(labelled, PIPELINE_CONFIGS as usize / 2, "half are IPVPN");
        assert!(
            modes.len() >= 8,
            "roles × encapsulations × TPIDs: {modes:?}"
        );
        assert_eq!(
            pipeline_config_text(3),
            pipeline_config_text(3 + PIPELINE_CONFIGS)
        );
    }
}
