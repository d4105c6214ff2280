//! Property tests of software segmentation (`wire::gso`): random TCP
//! super-frames (payload 0–4000 bytes, segment size 1–1500 and an MTU
//! that may lower it, TCP options, IPv4 with options or IPv6, 0/1/2 VLAN
//! tags, any flags, a partial or an unannounced checksum) are cut, and
//! every segment is taken apart by etherparse and checked against the
//! rules Linux's software GSO follows: each parses; its IPv4 total length
//! and header checksum, or IPv6 payload length, are right; its TCP
//! checksum is right by etherparse's own computation; the IPv4 IDs count
//! up from the super-frame's; the sequence numbers are contiguous; the
//! payloads put together are the super-frame's; CWR only on the first
//! segment, FIN and PSH only on the last, every other header byte as in
//! the super-frame; no segment is longer than the headers plus the
//! segment size. A super-frame that fits in one segment leaves whole.
//!
//! Half the cases are UDP super-frames (`UDP_SEGMENT`) instead, checked by
//! the rules of `__udp_gso_segment`: every datagram parses, carries
//! exactly the segment size (the last the rest) with its own UDP length
//! and a checksum etherparse agrees with, IP fields as for TCP; and one
//! that would not fit the MTU is refused, never cut smaller.

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use proptest::prelude::*;
use xconnect::wire::checksum::{self, PseudoHeader};
use xconnect::wire::gso::{segment, ChecksumState, GsoKind, Offload, Segmenter};

#[derive(Debug, Clone)]
enum Net {
    V4 {
        tos: u8,
        ident: u16,
        df: bool,
        ttl: u8,
        options: Vec<u8>,
        src: [u8; 4],
        dst: [u8; 4],
    },
    V6 {
        tc: u8,
        flow: u32,
        hop: u8,
        src: [u8; 16],
        dst: [u8; 16],
    },
}

#[derive(Debug, Clone)]
struct Spec {
    tags: Vec<(u16, u16)>,
    net: Net,
    ports: (u16, u16),
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    urgent: u16,
    tcp_options: Vec<u8>,
    payload: Vec<u8>,
    mss: u16,
    mtu: Option<u16>,
    partial: bool,
    /// A UDP super-frame (the TCP fields are unused).
    udp: bool,
}

fn net() -> impl Strategy<Value = Net> {
    prop_oneof![
        (
            any::<u8>(),
            any::<u16>(),
            any::<bool>(),
            any::<u8>(),
            0usize..=10,
            any::<[u8; 4]>(),
            any::<[u8; 4]>()
        )
            .prop_map(|(tos, ident, df, ttl, words, src, dst)| Net::V4 {
                tos,
                ident,
                df,
                ttl,
                // NOPs then an end-of-list: a valid option area of any length.
                options: (0..words * 4)
                    .map(|i| if i + 1 == words * 4 { 0 } else { 1 })
                    .collect(),
                src,
                dst,
            }),
        (
            any::<u8>(),
            0u32..=0xfffff,
            any::<u8>(),
            any::<[u8; 16]>(),
            any::<[u8; 16]>()
        )
            .prop_map(|(tc, flow, hop, src, dst)| Net::V6 {
                tc,
                flow,
                hop,
                src,
                dst
            }),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        proptest::collection::vec(
            (prop_oneof![Just(0x8100u16), Just(0x88a8)], any::<u16>()),
            0..=2,
        ),
        net(),
        any::<(u16, u16)>(),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
        ),
        (0usize..=10).prop_map(|w| {
            // Options of any kind the kernel passes through untouched:
            // NOPs and a timestamp when there is room.
            let mut o = vec![1u8; w * 4];
            if w >= 3 {
                o[2..12].copy_from_slice(&[8, 10, 1, 2, 3, 4, 5, 6, 7, 8]);
            }
            o
        }),
        prop_oneof![0usize..100, 0usize..=4000]
            .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n)),
        prop_oneof![1u16..=16, 1u16..=1500, Just(1448)],
        proptest::option::of(60u16..=1500),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                tags,
                net,
                ports,
                (seq, ack, flags, window, urgent),
                tcp_options,
                payload,
                mss,
                mtu,
                partial,
                udp,
            )| Spec {
                tags,
                net,
                ports,
                seq,
                ack,
                flags,
                window,
                urgent,
                tcp_options,
                payload,
                mss,
                mtu,
                partial,
                udp,
            },
        )
}

struct Built {
    frame: Vec<u8>,
    offload: Offload,
    l3: usize,
    l4: usize,
    payload_at: usize,
}

fn build(s: &Spec) -> Built {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    for (tpid, tci) in &s.tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    let thl = 20 + s.tcp_options.len();
    let (proto, tcp_len) = if s.udp {
        (17u8, 8 + s.payload.len())
    } else {
        (6u8, thl + s.payload.len())
    };
    let l3 = f.len() + 2;
    let (pseudo, gso) = match &s.net {
        Net::V4 {
            tos,
            ident,
            df,
            ttl,
            options,
            src,
            dst,
        } => {
            f.extend_from_slice(&[0x08, 0x00]);
            let ihl = 20 + options.len();
            let mut h = vec![0x40 | (ihl / 4) as u8, *tos];
            h.extend_from_slice(&((ihl + tcp_len) as u16).to_be_bytes());
            h.extend_from_slice(&ident.to_be_bytes());
            h.extend_from_slice(&(if *df { 0x4000u16 } else { 0 }).to_be_bytes());
            h.extend_from_slice(&[*ttl, proto, 0, 0]);
            h.extend_from_slice(src);
            h.extend_from_slice(dst);
            h.extend_from_slice(options);
            let c = checksum::checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&h);
            (
                PseudoHeader::V4 {
                    src: (*src).into(),
                    dst: (*dst).into(),
                },
                GsoKind::TcpV4,
            )
        }
        Net::V6 {
            tc,
            flow,
            hop,
            src,
            dst,
        } => {
            f.extend_from_slice(&[0x86, 0xdd]);
            let w = 0x6000_0000u32 | (*tc as u32) << 20 | flow;
            f.extend_from_slice(&w.to_be_bytes());
            f.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            f.extend_from_slice(&[proto, *hop]);
            f.extend_from_slice(src);
            f.extend_from_slice(dst);
            (
                PseudoHeader::V6 {
                    src: (*src).into(),
                    dst: (*dst).into(),
                },
                GsoKind::TcpV6,
            )
        }
    };
    let gso = if s.udp { GsoKind::Udp } else { gso };
    let l4 = f.len();
    f.extend_from_slice(&s.ports.0.to_be_bytes());
    f.extend_from_slice(&s.ports.1.to_be_bytes());
    // The checksum field: the pseudo-header sum as NEEDS_CSUM wants it,
    // or junk a sender that announces nothing may leave.
    let field = if s.partial {
        checksum::fold(pseudo.sum(proto, tcp_len))
    } else {
        0xdead
    };
    let csum_offset = if s.udp {
        f.extend_from_slice(&(tcp_len as u16).to_be_bytes());
        f.extend_from_slice(&field.to_be_bytes());
        6
    } else {
        f.extend_from_slice(&s.seq.to_be_bytes());
        f.extend_from_slice(&s.ack.to_be_bytes());
        f.extend_from_slice(&[((thl / 4) as u8) << 4, s.flags]);
        f.extend_from_slice(&s.window.to_be_bytes());
        f.extend_from_slice(&field.to_be_bytes());
        f.extend_from_slice(&s.urgent.to_be_bytes());
        f.extend_from_slice(&s.tcp_options);
        16
    };
    let payload_at = f.len();
    f.extend_from_slice(&s.payload);
    let checksum = if s.partial {
        ChecksumState::Partial {
            start: l4 as u16,
            offset: csum_offset,
        }
    } else {
        ChecksumState::InBytes
    };
    Built {
        offload: Offload {
            gso,
            ecn: false,
            segment_size: s.mss,
            header_len: payload_at as u16,
            checksum,
        },
        frame: f,
        l3,
        l4,
        payload_at,
    }
}

/// The super-frame's header bytes with the fields segmentation rewrites
/// set to what segment `seg` should hold: compared byte for byte with the
/// segment's headers.
fn expected_headers(
    b: &Built,
    s: &Spec,
    seg: &[u8],
    k: usize,
    count: usize,
    mss: usize,
) -> Vec<u8> {
    let mut h = b.frame[..b.payload_at].to_vec();
    let len = seg.len();
    match s.net {
        Net::V4 { ident, .. } => {
            let ihl = (h[b.l3] & 0x0f) as usize * 4;
            h[b.l3 + 2..b.l3 + 4].copy_from_slice(&((len - b.l3) as u16).to_be_bytes());
            h[b.l3 + 4..b.l3 + 6].copy_from_slice(&ident.wrapping_add(k as u16).to_be_bytes());
            h[b.l3 + 10..b.l3 + 12].fill(0);
            let c = checksum::checksum(&h[b.l3..b.l3 + ihl]);
            h[b.l3 + 10..b.l3 + 12].copy_from_slice(&c.to_be_bytes());
        }
        Net::V6 { .. } => {
            h[b.l3 + 4..b.l3 + 6].copy_from_slice(&((len - b.l3 - 40) as u16).to_be_bytes());
        }
    }
    let seq = s.seq.wrapping_add((k * mss) as u32);
    h[b.l4 + 4..b.l4 + 8].copy_from_slice(&seq.to_be_bytes());
    let mut flags = s.flags;
    if k > 0 {
        flags &= !0x80;
    }
    if k + 1 < count {
        flags &= !0x09;
    }
    h[b.l4 + 13] = flags;
    // The checksum is checked with etherparse; take the segment's here.
    h[b.l4 + 16..b.l4 + 18].copy_from_slice(&seg[b.l4 + 16..b.l4 + 18]);
    h
}

/// The UDP rules (module doc).
fn check_udp(s: &Spec, b: &Built) -> Result<(), TestCaseError> {
    let headers = b.payload_at - b.l3;
    let mss = s.mss as usize;
    let mut scratch = vec![0u8; 70_000];
    let mut segs: Vec<Vec<u8>> = Vec::new();
    let r = segment(&b.frame, &b.offload, s.mtu, &mut scratch, |x| {
        segs.push(x.to_vec())
    });
    if let Some(mtu) = s.mtu {
        if headers + mss.min(s.payload.len()) > mtu as usize {
            prop_assert!(r.is_err(), "a datagram over MTU {} is refused", mtu);
            return Ok(());
        }
    }
    let n = r.map_err(|e| TestCaseError::fail(format!("refused: {e}")))?;
    prop_assert_eq!(n, segs.len());
    let count = s.payload.len().div_ceil(mss).max(1);
    prop_assert_eq!(n, count);
    if count == 1 {
        // Leaves whole; a partial checksum is completed.
        let mut want = b.frame.clone();
        if s.partial {
            want[b.l4 + 6..b.l4 + 8].copy_from_slice(&segs[0][b.l4 + 6..b.l4 + 8]);
        }
        prop_assert_eq!(&segs[0], &want);
    }
    let mut payload = Vec::new();
    for (k, seg) in segs.iter().enumerate() {
        let p = SlicedPacket::from_ethernet(seg)
            .map_err(|e| TestCaseError::fail(format!("datagram {k} does not parse: {e:?}")))?;
        prop_assert_eq!(p.link_exts.len(), s.tags.len());
        let Some(TransportSlice::Udp(udp)) = &p.transport else {
            return Err(TestCaseError::fail(format!("datagram {k}: no UDP")));
        };
        prop_assert_eq!(udp.length() as usize, seg.len() - b.l4);
        let h = udp.to_header();
        let want_csum = match &p.net {
            Some(NetSlice::Ipv4(ip)) => {
                let ih = ip.header();
                prop_assert_eq!(ih.to_header().calc_header_checksum(), ih.header_checksum());
                prop_assert_eq!(ih.total_len() as usize, seg.len() - b.l3);
                if let Net::V4 { ident, .. } = s.net {
                    if count > 1 {
                        prop_assert_eq!(ih.identification(), ident.wrapping_add(k as u16));
                    }
                }
                h.calc_checksum_ipv4_raw(ih.source(), ih.destination(), udp.payload())
                    .unwrap()
            }
            Some(NetSlice::Ipv6(ip)) => {
                let ih = ip.header();
                prop_assert_eq!(ih.payload_length() as usize, seg.len() - b.l3 - 40);
                h.calc_checksum_ipv6_raw(ih.source(), ih.destination(), udp.payload())
                    .unwrap()
            }
            other => return Err(TestCaseError::fail(format!("datagram {k}: net {other:?}"))),
        };
        if count > 1 || s.partial {
            let got = udp.checksum();
            prop_assert!(
                got == want_csum || matches!((got, want_csum), (0, 0xffff) | (0xffff, 0)),
                "datagram {} UDP checksum {:#06x}, etherparse {:#06x}",
                k,
                got,
                want_csum
            );
            prop_assert_ne!(got, 0, "a computed UDP checksum of 0 goes out as 0xffff");
        }
        prop_assert!(udp.payload().len() == mss || k + 1 == count);
        // Every byte in front of the datagram's own fields as received.
        prop_assert_eq!(&seg[..b.l3], &b.frame[..b.l3]);
        prop_assert_eq!(&seg[b.l4..b.l4 + 4], &b.frame[b.l4..b.l4 + 4]);
        payload.extend_from_slice(udp.payload());
    }
    prop_assert_eq!(payload, s.payload.clone());
    Ok(())
}

fn check(s: &Spec) -> Result<(), TestCaseError> {
    let b = build(s);
    if s.udp {
        return check_udp(s, &b);
    }
    let headers = b.payload_at - b.l3;
    let mss = match s.mtu {
        Some(mtu) if (mtu as usize) <= headers => {
            prop_assert!(Segmenter::new(&b.frame, &b.offload, s.mtu).is_err());
            return Ok(());
        }
        Some(mtu) => (s.mss as usize).min(mtu as usize - headers),
        None => s.mss as usize,
    };
    let mut scratch = vec![0u8; 70_000];
    let mut segs: Vec<Vec<u8>> = Vec::new();
    let n = segment(&b.frame, &b.offload, s.mtu, &mut scratch, |x| {
        segs.push(x.to_vec())
    })
    .map_err(|e| TestCaseError::fail(format!("refused: {e}")))?;
    prop_assert_eq!(n, segs.len());
    if s.payload.len() <= mss {
        // Leaves whole; a partial checksum is completed.
        prop_assert_eq!(segs.len(), 1);
        let mut want = b.frame.clone();
        if s.partial {
            want[b.l4 + 16..b.l4 + 18].copy_from_slice(&segs[0][b.l4 + 16..b.l4 + 18]);
        }
        prop_assert_eq!(&segs[0], &want);
    }
    let count = segs.len();
    prop_assert_eq!(count, s.payload.len().div_ceil(mss).max(1));
    let mut payload = Vec::new();
    for (k, seg) in segs.iter().enumerate() {
        prop_assert!(
            seg.len() <= b.payload_at + mss,
            "segment {} is {} bytes",
            k,
            seg.len()
        );
        let p = SlicedPacket::from_ethernet(seg)
            .map_err(|e| TestCaseError::fail(format!("segment {k} does not parse: {e:?}")))?;
        prop_assert_eq!(p.link_exts.len(), s.tags.len());
        let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
            return Err(TestCaseError::fail(format!("segment {k}: no TCP")));
        };
        let want_csum = match &p.net {
            Some(NetSlice::Ipv4(ip)) => {
                let h = ip.header();
                prop_assert_eq!(h.to_header().calc_header_checksum(), h.header_checksum());
                prop_assert_eq!(h.total_len() as usize, seg.len() - b.l3);
                tcp.calc_checksum_ipv4(h.source(), h.destination()).unwrap()
            }
            Some(NetSlice::Ipv6(ip)) => {
                let h = ip.header();
                prop_assert_eq!(h.payload_length() as usize, seg.len() - b.l3 - 40);
                tcp.calc_checksum_ipv6(h.source(), h.destination()).unwrap()
            }
            other => return Err(TestCaseError::fail(format!("segment {k}: net {other:?}"))),
        };
        if count > 1 || s.partial {
            // One's complement: 0x0000 and 0xffff are the same sum.
            let got = tcp.checksum();
            prop_assert!(
                got == want_csum || matches!((got, want_csum), (0, 0xffff) | (0xffff, 0)),
                "segment {} TCP checksum {:#06x}, etherparse {:#06x}",
                k,
                got,
                want_csum
            );
        }
        if count > 1 {
            prop_assert!(tcp.payload().len() == mss || k + 1 == count);
            prop_assert_eq!(tcp.sequence_number(), s.seq.wrapping_add((k * mss) as u32));
            prop_assert_eq!(tcp.cwr(), k == 0 && s.flags & 0x80 != 0);
            prop_assert_eq!(tcp.fin(), k + 1 == count && s.flags & 0x01 != 0);
            prop_assert_eq!(tcp.psh(), k + 1 == count && s.flags & 0x08 != 0);
            let want = expected_headers(&b, s, seg, k, count, mss);
            prop_assert_eq!(&seg[..b.payload_at], &want[..], "segment {} headers", k);
        }
        payload.extend_from_slice(tcp.payload());
    }
    prop_assert_eq!(payload, s.payload.clone());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn segments_follow_the_kernel_rules(s in spec()) {
        check(&s)?;
    }

    /// The lending iterator and the visitor give the same frames.
    #[test]
    fn segmenter_and_segment_agree(s in spec()) {
        let b = build(&s);
        let mut a = Vec::new();
        let mut scratch = vec![0u8; 70_000];
        let r = segment(&b.frame, &b.offload, None, &mut scratch, |x| a.push(x.to_vec()));
        let mut it = Segmenter::new(&b.frame, &b.offload, None).unwrap();
        prop_assert_eq!(r, Ok(it.segments()));
        let mut buf = vec![0u8; it.max_segment_len()];
        let mut c = Vec::new();
        while let Some(n) = it.write_next(&mut buf).unwrap() {
            c.push(buf[..n].to_vec());
        }
        prop_assert_eq!(a, c);
    }
}
