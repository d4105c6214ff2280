//! A TCP super-frame through the pipeline: pushed into QinQ by the
//! provider edge, popped by the MSEE, routed by a managed-L3 peering. Each
//! time the metadata is checked before and after (checksum start and
//! header length move with the tags, segment size and kind stay), the
//! frame rejoined from its headers and out-of-line payload is the frame a
//! plain forwarder would have made, and a port that cannot send
//! super-frames gets segments that etherparse accepts, checksums and all,
//! carrying the payload in order.

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use std::path::Path;
use std::sync::Arc;
use xconnect::config;
use xconnect::driver::{transmit, Ports, SoftGso};
use xconnect::frame::{Batch, Outgoing, PortId, Verdict};
use xconnect::pipeline::{LinkState, Pipeline};
use xconnect::wire::checksum::{self, PseudoHeader};
use xconnect::wire::{ChecksumState, GsoKind, Offload};

const MSS: u16 = 1448;

/// What a port was handed: whole super-frames (rejoined, with their
/// metadata) or ordinary frames.
#[derive(Default)]
struct Wire {
    takes_super_frames: bool,
    supers: Vec<(PortId, Vec<u8>, Offload)>,
    frames: Vec<(PortId, Vec<u8>)>,
}

impl Ports for Wire {
    fn recv(&mut self, _port: PortId, _batch: &mut Batch) -> std::io::Result<usize> {
        Ok(0)
    }

    fn send(&mut self, out: Outgoing<'_>) -> std::io::Result<usize> {
        let batch = out.batch();
        for i in out.positions() {
            let headers = batch.buf(i).frame();
            match batch.super_frame(i) {
                Some(sf) => {
                    assert!(
                        self.takes_super_frames,
                        "a super-frame reached a port that cannot take it"
                    );
                    let mut whole = vec![0u8; 70_000];
                    let (n, o) = sf.rejoin_whole(headers, &mut whole).expect("rejoin");
                    whole.truncate(n);
                    self.supers.push((out.port, whole, o));
                }
                None => self.frames.push((out.port, headers.to_vec())),
            }
        }
        Ok(out.len())
    }

    fn takes_super_frames(&self, _port: PortId) -> bool {
        self.takes_super_frames
    }
}

/// The pipeline of the configuration at `path`, and its ports' MACs.
fn pipeline(path: &str) -> (Pipeline, Vec<[u8; 6]>) {
    let cfg = config::load(Path::new(path)).unwrap_or_else(|d| panic!("{d}"));
    let plan = Arc::new(config::compile(&cfg));
    let macs = plan.ports.iter().map(|p| p.mac).collect();
    let links = LinkState::new(plan.ports.len());
    let mut p = Pipeline::new(plan, links);
    p.set_time_ms(Some(1_000));
    (p, macs)
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// An IPv4 TCP super-frame (timestamps option, `len` payload bytes) behind
/// `tags` (TPID 0x8100), its TCP checksum left partial as a host's stack
/// hands it over, and its metadata.
fn super_v4(
    dst_mac: [u8; 6],
    tags: &[u16],
    ttl: u8,
    src: [u8; 4],
    dst: [u8; 4],
    len: usize,
) -> (Vec<u8>, Offload) {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xc1], dst_mac);
    let data = payload(len);
    let mut frame = Vec::new();
    let b = match tags {
        [] => b.ipv4(src, dst, ttl),
        [c] => b.single_vlan((*c).try_into().unwrap()).ipv4(src, dst, ttl),
        [s, c] => b
            .double_vlan((*s).try_into().unwrap(), (*c).try_into().unwrap())
            .ipv4(src, dst, ttl),
        _ => unreachable!(),
    };
    b.tcp(40_000, 5201, 0xfffff000, 512)
        .ack(7)
        .psh()
        .options(&[etherparse::TcpOptionElement::Timestamp(1, 2)])
        .unwrap()
        .write(&mut frame, &data)
        .unwrap();
    let l3 = 14 + 4 * tags.len();
    let l4 = l3 + 20;
    let ph = PseudoHeader::V4 {
        src: src.into(),
        dst: dst.into(),
    };
    let sum = checksum::fold(ph.sum(6, frame.len() - l4));
    frame[l4 + 16..l4 + 18].copy_from_slice(&sum.to_be_bytes());
    let offload = Offload {
        gso: GsoKind::TcpV4,
        ecn: false,
        segment_size: MSS,
        header_len: (l4 + 32) as u16,
        checksum: ChecksumState::Partial {
            start: l4 as u16,
            offset: 16,
        },
    };
    (frame, offload)
}

/// Run one super-frame received on `port` through `p`, to a wire that
/// takes super-frames or not.
fn forward(p: &mut Pipeline, port: PortId, frame: &[u8], o: Offload, takes: bool) -> Wire {
    let mut batch = Batch::new();
    batch.port = port;
    assert_eq!(batch.push_super(frame, o), Ok(true));
    assert_eq!(batch.super_mask(), 1, "kept as a super-frame");
    assert_eq!(batch.buf(0).tail(), frame.len() - o.header_len as usize);
    p.process(&mut batch);
    assert!(
        matches!(batch.meta(0).verdict, Verdict::Forward(_)),
        "{:?}",
        batch.meta(0).verdict
    );
    let mut wire = Wire {
        takes_super_frames: takes,
        ..Wire::default()
    };
    transmit(p, &mut wire, &batch, &mut (), &mut SoftGso::default());
    wire
}

/// Every segment parses, its IPv4 and TCP checksums hold, its tags and
/// addresses are the rejoined frame's, and the payloads concatenate to
/// `data`.
fn check_segments(segs: &[(PortId, Vec<u8>)], whole: &[u8], data: &[u8]) {
    let mut got = Vec::new();
    assert_eq!(segs.len(), data.len().div_ceil(MSS as usize));
    for (_, s) in segs {
        let p = SlicedPacket::from_ethernet(s).unwrap();
        let l3 = network_offset(whole);
        assert_eq!(s[..l3], whole[..l3], "MAC addresses and tags");
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!("not IPv4")
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
        let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
            panic!("not TCP")
        };
        let th = tcp.to_header();
        assert_eq!(
            th.checksum,
            th.calc_checksum_ipv4(&h, tcp.payload()).unwrap(),
            "TCP checksum"
        );
        assert!(s.len() <= whole.len() - data.len() + MSS as usize);
        got.extend_from_slice(tcp.payload());
    }
    assert_eq!(got, data);
}

/// Where the network header starts: after the MACs and every 802.1Q/ad tag.
fn network_offset(frame: &[u8]) -> usize {
    let mut at = 12;
    while matches!(
        u16::from_be_bytes([frame[at], frame[at + 1]]),
        0x8100 | 0x88a8
    ) {
        at += 4;
    }
    at + 2
}

/// An untagged super-frame from the customer's host to the VNet's, with
/// `len` payload bytes.
fn from_customer(len: usize) -> (Vec<u8>, Offload) {
    super_v4(
        [2, 0, 0, 0, 0, 0xd1],
        &[],
        64,
        [192, 0, 2, 10],
        [198, 51, 100, 20],
        len,
    )
}

#[test]
fn pushed_into_qinq_then_popped_with_its_metadata() {
    let data = payload(10_000);
    let (frame, o) = from_customer(data.len());
    let (mut pe, _) = pipeline("examples/lab-pe-qinq.toml");
    // Provider edge: customer port 0 (untagged) → a trunk, S-tag 100 and
    // C-tag 200 pushed.
    let w = forward(&mut pe, 0, &frame, o, true);
    assert!(w.frames.is_empty());
    let [(trunk, pushed, po)] = &w.supers[..] else {
        panic!("{} super-frames", w.supers.len())
    };
    assert!(*trunk == 2 || *trunk == 3);
    let mut want = frame[..12].to_vec();
    want.extend_from_slice(&[0x81, 0, 0, 100, 0x81, 0, 0, 200]);
    want.extend_from_slice(&frame[12..]);
    assert_eq!(pushed, &want, "tags pushed, every other byte as received");
    assert_eq!(po.gso, GsoKind::TcpV4);
    assert_eq!(po.segment_size, MSS);
    assert_eq!(po.header_len, o.header_len + 8);
    assert_eq!(
        po.checksum,
        ChecksumState::Partial {
            start: 34 + 8,
            offset: 16
        }
    );
    // The same through a port that cannot take super-frames: segments.
    let w = forward(&mut pe, 0, &frame, o, false);
    assert!(w.supers.is_empty());
    check_segments(&w.frames, pushed, &data);

    // MSEE: the trunk frame (QinQ) → its VNet port, tags popped.
    let (mut ms, _) = pipeline("examples/msee-qinq.toml");
    let trunk_port = 1;
    let w = forward(&mut ms, trunk_port, pushed, *po, true);
    let [(_, popped, mo)] = &w.supers[..] else {
        panic!("{} super-frames", w.supers.len())
    };
    assert_eq!(
        popped, &frame,
        "tags popped: the frame as the customer sent it"
    );
    assert_eq!(*mo, o, "metadata back where it started");
}

#[test]
fn routed_once_for_the_whole_super_frame() {
    let data = payload(20_000);
    // From an MSEE on trunk-a (S-tag 100, C-tag 200) to the customer's
    // 203.0.113.128/25 behind the static neighbour 203.0.113.2 (VLAN 10).
    let (mut pe, macs) = pipeline("examples/pe-l3.toml");
    let (frame, o) = super_v4(
        macs[1],
        &[100, 200],
        64,
        [198, 51, 100, 130],
        [203, 0, 113, 130],
        data.len(),
    );
    let w = forward(&mut pe, 1, &frame, o, true);
    let [(port, routed, ro)] = &w.supers[..] else {
        panic!("{} super-frames", w.supers.len())
    };
    assert_eq!(*port, 0, "to the customer port");
    let p = SlicedPacket::from_ethernet(routed).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!(
        h.time_to_live, 63,
        "TTL decremented once for the whole super-frame"
    );
    assert_eq!(
        h.total_len as usize,
        routed.len() - 18,
        "IP length counts the whole payload"
    );
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    assert_eq!(
        &routed[..6],
        &[2, 0, 0, 0, 0, 0xc1],
        "to the neighbour's MAC"
    );
    assert_eq!(&routed[routed.len() - data.len()..], &data[..]);
    // Two tags in, one out: everything after the network header moved by −4.
    assert_eq!(ro.header_len, o.header_len - 4);
    assert_eq!(
        ro.checksum,
        ChecksumState::Partial {
            start: 42 - 4,
            offset: 16
        }
    );
    assert_eq!(ro.segment_size, MSS);
    let w = forward(&mut pe, 1, &frame, o, false);
    check_segments(&w.frames, routed, &data);
}

#[test]
fn a_payload_that_fits_one_segment_is_an_ordinary_frame() {
    let (frame, o) = from_customer(1000);
    let mut batch = Batch::new();
    assert_eq!(batch.push_super(&frame, o), Ok(true));
    assert_eq!(batch.super_mask(), 0);
    assert_eq!(batch.buf(0).tail(), 0);
    let p = SlicedPacket::from_ethernet(batch.buf(0).frame()).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not IPv4")
    };
    let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
        panic!("not TCP")
    };
    let th = tcp.to_header();
    assert_eq!(
        th.checksum,
        th.calc_checksum_ipv4(&ip.header().to_header(), tcp.payload())
            .unwrap(),
        "checksum completed"
    );
}
