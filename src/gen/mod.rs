//! Test-frame generator: builds well-formed Ethernet frames (0-3 tags,
//! IPv4/IPv6, UDP/TCP/ICMP, ARP) with correct IPv4 header checksums, padded
//! to an exact size. Used by the benchmark, the tests, the fuzz seed corpus
//! and the traffic generator.
//!
//! Sizes follow the usual convention: a "64-byte frame" is 60 bytes of
//! frame data plus the 4-byte FCS that the NIC appends, so
//! `FrameSpec::wire_len = 64` builds 60 bytes.

use crate::wire::ethernet::{self, ethertype, Mac};
use crate::wire::icmp::{self, v4_type, v6_type};
use crate::wire::l4::{self, protocol, tcp_flags, TCP_MIN_HEADER_LEN, UDP_HEADER_LEN};
use crate::wire::vlan::TAG_LEN;
use crate::wire::{arp, ipv4, ipv6, Layer, TagStack, VlanTag, WireError, MAX_TAGS};
use crate::wire::{
    ArpRepr, EthernetRepr, Icmpv4Repr, Icmpv6Repr, Ipv4Repr, Ipv6Repr, TcpRepr, UdpRepr,
};

pub mod samples;
use std::net::IpAddr;

/// FCS bytes counted in a wire frame size but not present in the buffer.
pub const FCS_LEN: usize = 4;

/// The network/transport content of a generated frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// An IP packet (v4 or v6 after the addresses' family) carrying `protocol`
    /// (17 UDP, 6 TCP, 1/58 ICMP; anything else gets no L4 header).
    Ip {
        /// Source address.
        src: IpAddr,
        /// Destination address.
        dst: IpAddr,
        /// IP protocol.
        protocol: u8,
        /// TCP/UDP source port.
        src_port: u16,
        /// TCP/UDP destination port.
        dst_port: u16,
        /// TOS / traffic class (DSCP << 2 | ECN).
        tos: u8,
        /// TTL / hop limit.
        ttl: u8,
    },
    /// An ARP request for `target` from `sender`.
    ArpRequest {
        /// Sender IPv4 address.
        sender: std::net::Ipv4Addr,
        /// Target IPv4 address.
        target: std::net::Ipv4Addr,
    },
    /// An opaque ethertype with zero bytes.
    Raw(u16),
}

/// Everything that defines a generated frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameSpec {
    /// Destination MAC.
    pub dst_mac: Mac,
    /// Source MAC.
    pub src_mac: Mac,
    /// Tags, outermost first.
    pub tags: Vec<VlanTag>,
    /// Content.
    pub payload: Payload,
    /// Size on the wire including FCS (the buffer is 4 bytes shorter);
    /// frames are never shorter than their headers.
    pub wire_len: usize,
}

/// Default MACs of generated frames (locally administered).
pub const MAC_A: Mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0a];
/// Default MACs of generated frames (locally administered).
pub const MAC_B: Mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0b];

impl FrameSpec {
    /// A UDP frame between two addresses (same family) with the given tags.
    pub fn udp(
        tags: &[VlanTag],
        src: IpAddr,
        dst: IpAddr,
        ports: (u16, u16),
        tos: u8,
        wire_len: usize,
    ) -> FrameSpec {
        FrameSpec {
            dst_mac: MAC_B,
            src_mac: MAC_A,
            tags: tags.to_vec(),
            payload: Payload::Ip {
                src,
                dst,
                protocol: 17,
                src_port: ports.0,
                dst_port: ports.1,
                tos,
                ttl: 64,
            },
            wire_len,
        }
    }

    /// Build the frame bytes, every header through `wire`'s `Repr::emit`.
    /// The IPv4 header checksum is filled; UDP, TCP and ICMP checksums
    /// are left zero. Length fields saturate at 65535 (a frame that long
    /// cannot be one IP packet).
    pub fn build(&self) -> Vec<u8> {
        let data_len = self.wire_len.saturating_sub(FCS_LEN);
        let l3 = ethernet::HEADER_LEN + TAG_LEN * self.tags.len();
        let (ethertype, l3_len) = match self.payload {
            Payload::Raw(et) => (et, 0),
            Payload::ArpRequest { .. } => (ethertype::ARP, arp::PACKET_LEN),
            Payload::Ip {
                src, dst, protocol, ..
            } => {
                // The ethertype and the sizes follow the source's family;
                // the header is IPv6 unless both are IPv4 (a mixed pair
                // maps the IPv4 one into IPv6).
                let (et, ip_hlen) = if src.is_ipv6() {
                    (ethertype::IPV6, ipv6::HEADER_LEN)
                } else {
                    (ethertype::IPV4, ipv4::MIN_HEADER_LEN)
                };
                let min = ip_hlen + l4_min_len(protocol);
                let l4_len = data_len.saturating_sub(l3).max(min) - ip_hlen;
                let header = match (src, dst) {
                    (IpAddr::V4(_), IpAddr::V4(_)) => ipv4::MIN_HEADER_LEN,
                    _ => ipv6::HEADER_LEN,
                };
                (et, header + l4_len)
            }
        };
        let mut f = vec![0u8; (l3 + l3_len).max(data_len)];
        let built = self.emit_ethernet(&mut f, ethertype).and_then(|_| {
            let body = f.get_mut(l3..).unwrap_or_default();
            self.emit_payload(body)
        });
        // The buffer was sized for every header above.
        debug_assert!(built.is_ok(), "{built:?}");
        f
    }

    /// The MACs, the tags and the ethertype. Up to [`MAX_TAGS`] tags go
    /// through [`EthernetRepr`]; a longer stack (a frame the parsers must
    /// refuse) continues tag by tag after them.
    fn emit_ethernet(&self, f: &mut [u8], ethertype: u16) -> Result<(), WireError> {
        let (outer, inner) = self.tags.split_at(self.tags.len().min(MAX_TAGS));
        let eth = EthernetRepr {
            dst: self.dst_mac,
            src: self.src_mac,
            tags: TagStack::from_slice(outer).unwrap_or_default(),
            ethertype: inner.first().map_or(ethertype, |t| t.tpid.0),
        };
        let mut at = eth.emit(f)? - 2;
        if inner.is_empty() {
            return Ok(());
        }
        for t in inner {
            at += t.emit(f.get_mut(at..).unwrap_or_default())?;
        }
        let et = f
            .get_mut(at..at + 2)
            .ok_or(WireError::truncated(Layer::Ethernet, at, 2, 0))?;
        et.copy_from_slice(&ethertype.to_be_bytes());
        Ok(())
    }

    /// The network packet, into `body` (sized for it, zeroed).
    fn emit_payload(&self, body: &mut [u8]) -> Result<(), WireError> {
        match self.payload {
            Payload::Raw(_) => Ok(()),
            Payload::ArpRequest { sender, target } => ArpRepr {
                operation: arp::op::REQUEST,
                sender_mac: self.src_mac,
                sender_ip: sender,
                target_mac: [0; 6],
                target_ip: target,
            }
            .emit(body)
            .map(drop),
            Payload::Ip {
                src,
                dst,
                protocol,
                src_port,
                dst_port,
                tos,
                ttl,
            } => {
                let ip_hlen = match (src, dst) {
                    (IpAddr::V4(src), IpAddr::V4(dst)) => Ipv4Repr {
                        src,
                        dst,
                        protocol,
                        payload_len: body
                            .len()
                            .saturating_sub(ipv4::MIN_HEADER_LEN)
                            .min(ipv4::MAX_TOTAL_LEN - ipv4::MIN_HEADER_LEN),
                        ttl,
                        tos,
                        ident: 0,
                        dont_frag: true,
                    }
                    .emit(body)?,
                    (s, d) => {
                        let to6 = |a: IpAddr| match a {
                            IpAddr::V6(a) => a,
                            IpAddr::V4(a) => a.to_ipv6_mapped(),
                        };
                        Ipv6Repr {
                            src: to6(s),
                            dst: to6(d),
                            next_header: protocol,
                            payload_len: body
                                .len()
                                .saturating_sub(ipv6::HEADER_LEN)
                                .min(ipv6::MAX_PAYLOAD_LEN),
                            hop_limit: ttl,
                            traffic_class: tos,
                            flow_label: 0,
                        }
                        .emit(body)?
                    }
                };
                let l4 = body.get_mut(ip_hlen..).unwrap_or_default();
                let l4_min = l4_min_len(protocol);
                for (i, b) in l4.iter_mut().enumerate().skip(l4_min) {
                    *b = i as u8;
                }
                match protocol {
                    protocol::UDP => UdpRepr {
                        src_port,
                        dst_port,
                        payload_len: l4
                            .len()
                            .saturating_sub(UDP_HEADER_LEN)
                            .min(l4::UDP_MAX_LEN - UDP_HEADER_LEN),
                    }
                    .emit(l4),
                    protocol::TCP => TcpRepr {
                        src_port,
                        dst_port,
                        seq: 0,
                        ack: 0,
                        flags: tcp_flags::PSH | tcp_flags::ACK,
                        window: 0xffff,
                    }
                    .emit(l4),
                    protocol::ICMP => Icmpv4Repr::echo(v4_type::ECHO_REQUEST, 0, 0).emit(l4),
                    protocol::ICMPV6 => Icmpv6Repr::echo(v6_type::ECHO_REQUEST, 0, 0).emit(l4),
                    _ => Ok(0),
                }
                .map(drop)
            }
        }
    }
}

/// Bytes of the transport header `build` writes for `protocol`.
fn l4_min_len(protocol: u8) -> usize {
    match protocol {
        protocol::UDP => UDP_HEADER_LEN,
        protocol::TCP => TCP_MIN_HEADER_LEN,
        protocol::ICMP | protocol::ICMPV6 => icmp::HEADER_LEN,
        _ => 0,
    }
}

/// IMIX frame sizes (wire bytes incl. FCS) in the classic 7:4:1 mix.
pub const IMIX: [usize; 12] = [64, 64, 64, 64, 64, 64, 64, 576, 576, 576, 576, 1500];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{parse, Tpid, L3};

    /// FNV-1a over a frame: pins long frames without spelling out every byte.
    pub(super) fn fnv1a(b: &[u8]) -> u64 {
        b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
            (h ^ x as u64).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    /// Specs whose bytes are pinned below: every payload kind, 0-3 tags,
    /// both families (and the mixed one), sizes below the headers and
    /// large ones.
    pub(super) fn pinned_specs() -> Vec<(&'static str, FrameSpec)> {
        let t = |tpid: u16, tci: u16| VlanTag::from_tci(Tpid(tpid), tci);
        let ip = |s: &str, d: &str, protocol: u8, tos: u8, ttl: u8| Payload::Ip {
            src: s.parse().unwrap(),
            dst: d.parse().unwrap(),
            protocol,
            src_port: 50000,
            dst_port: 3478,
            tos,
            ttl,
        };
        let spec = |tags: Vec<VlanTag>, payload: Payload, wire_len: usize| FrameSpec {
            dst_mac: MAC_B,
            src_mac: MAC_A,
            tags,
            payload,
            wire_len,
        };
        let qinq = vec![t(0x88a8, 0x6064), t(0x8100, 0x00c8)];
        let three = vec![t(0x9100, 0xf00a), t(0x88a8, 0x2064), t(0x8100, 0x1fff)];
        vec![
            (
                "v4-udp-64",
                spec(vec![], ip("192.0.2.1", "198.51.100.1", 17, 0xb9, 64), 64),
            ),
            (
                "qinq-v4-tcp-64",
                spec(qinq.clone(), ip("192.0.2.1", "203.0.113.9", 6, 0, 63), 64),
            ),
            (
                "v4-icmp-64",
                spec(vec![], ip("198.51.100.7", "192.0.2.1", 1, 0, 64), 64),
            ),
            (
                "v6-udp-90",
                spec(
                    vec![t(0x8100, 10)],
                    ip("2001:db8::1", "2001:db8::2", 17, 0xb8, 64),
                    94,
                ),
            ),
            (
                "v6-icmpv6-short",
                spec(vec![], ip("2001:db8::7", "2001:db8::1", 58, 0, 9), 10),
            ),
            (
                "three-tags-arp",
                spec(
                    three.clone(),
                    Payload::ArpRequest {
                        sender: "192.0.2.2".parse().unwrap(),
                        target: "192.0.2.1".parse().unwrap(),
                    },
                    64,
                ),
            ),
            ("raw-lldp", spec(vec![], Payload::Raw(0x88cc), 64)),
            (
                "v4-other-proto",
                spec(vec![], ip("192.0.2.1", "198.51.100.1", 47, 4, 1), 80),
            ),
            (
                "mixed-v4-v6",
                spec(vec![], ip("192.0.2.1", "2001:db8::2", 17, 0, 64), 90),
            ),
            (
                "v4-tcp-1500",
                spec(qinq, ip("192.0.2.1", "198.51.100.1", 6, 0x28, 64), 1500),
            ),
            (
                "v6-tcp-1518",
                spec(
                    three,
                    ip("2001:db8::1", "2001:db8:ff::2", 6, 0x01, 255),
                    1518,
                ),
            ),
            (
                "v6-udp-9000",
                spec(vec![], ip("2001:db8::1", "2001:db8::2", 17, 0, 64), 9000),
            ),
        ]
    }

    #[test]
    fn sizes_and_parse() {
        let tags = [
            VlanTag::from_tci(Tpid::DOT1AD, 100),
            VlanTag::from_tci(Tpid::DOT1Q, 200),
        ];
        for wire_len in [64, 128, 576, 1500] {
            for (s, d) in [
                ("192.0.2.1", "198.51.100.1"),
                ("2001:db8::1", "2001:db8::2"),
            ] {
                let spec = FrameSpec::udp(
                    &tags,
                    s.parse().unwrap(),
                    d.parse().unwrap(),
                    (50000, 3478),
                    0xb9,
                    wire_len,
                );
                let f = spec.build();
                let i = parse(&f).unwrap();
                assert_eq!(i.tags.len(), 2);
                assert!(matches!(i.l3, L3::Ipv4 | L3::Ipv6));
                assert_eq!((i.src_port, i.dst_port), (50000, 3478));
                assert_eq!(i.tos, 0xb9);
                if wire_len >= 128 {
                    assert_eq!(f.len(), wire_len - FCS_LEN);
                }
            }
        }
        let f = FrameSpec::udp(
            &[],
            "192.0.2.1".parse().unwrap(),
            "198.51.100.1".parse().unwrap(),
            (1, 2),
            0,
            64,
        )
        .build();
        assert_eq!(f.len(), 60);
        let ip = crate::wire::ipv4::Ipv4Packet::new_checked(&f[14..], 14).unwrap();
        assert!(ip.verify_checksum());
    }

    /// The bytes `build` produced for `pinned_specs` before it was
    /// rewritten over `wire`'s `Repr`/`emit` (length, FNV-1a, and the full
    /// bytes of the short ones): the benches, golden tests and seed corpus
    /// depend on them.
    #[test]
    fn build_output_is_pinned() {
        let want: [(&str, usize, u64, &str); 12] = [
            ("v4-udp-64", 60, 0xbbea07029873e5cc, "02000000000b02000000000a080045b9002e0000400040114dd0c0000201c6336401c3500d96001a000008090a0b0c0d0e0f10111213141516171819"),
            ("qinq-v4-tcp-64", 62, 0xfec3960535816deb, "02000000000b02000000000a88a86064810000c8080045000028000040003f063dc5c0000201cb007109c3500d9600000000000000005018ffff00000000"),
            ("v4-icmp-64", 60, 0x9c1c9c2f6bf0bc69, "02000000000b02000000000a08004500002e0000400040014e93c6336407c0000201080000000000000008090a0b0c0d0e0f10111213141516171819"),
            ("v6-udp-90", 90, 0xe1f59ee40cdb4cab, "02000000000b02000000000a8100000a86dd6b8000000020114020010db800000000000000000000000120010db8000000000000000000000002c3500d960020000008090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
            ("v6-icmpv6-short", 62, 0xb4c808122fa9621c, "02000000000b02000000000a86dd6000000000083a0920010db800000000000000000000000720010db80000000000000000000000018000000000000000"),
            ("three-tags-arp", 60, 0x674663f7d1ab881b, "02000000000b02000000000a9100f00a88a8206481001fff0806000108000604000102000000000ac0000202000000000000c0000201000000000000"),
            ("raw-lldp", 60, 0xce09bb2d52986be2, "02000000000b02000000000a88cc00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"),
            ("v4-other-proto", 76, 0x1c1d889be9d49f6b, "02000000000b02000000000a08004504003e00004000012f8d57c0000201c6336401000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526272829"),
            ("mixed-v4-v6", 106, 0xcb50e10f2020fb18, ""),
            ("v4-tcp-1500", 1496, 0xed7e6a4ea0d9cea3, ""),
            ("v6-tcp-1518", 1514, 0xe92aba086051711f, ""),
            ("v6-udp-9000", 8996, 0x5fb9ec3308338794, ""),
        ];
        let specs = pinned_specs();
        assert_eq!(specs.len(), want.len());
        for ((name, spec), (wname, wlen, whash, whex)) in specs.iter().zip(want) {
            assert_eq!(*name, wname);
            let f = spec.build();
            if !whex.is_empty() {
                let hex: String = f.iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(hex, whex, "{name}");
            }
            assert_eq!((f.len(), fnv1a(&f)), (wlen, whash), "{name}");
        }
    }

    /// More tags than a `TagStack` holds: written one after another, as
    /// the parsers see them before refusing the fourth.
    #[test]
    fn four_tags_continue_after_the_stack() {
        let tags: Vec<VlanTag> = (1..=4).map(|v| VlanTag::from_tci(Tpid::DOT1Q, v)).collect();
        let f = FrameSpec {
            dst_mac: MAC_B,
            src_mac: MAC_A,
            tags: tags.clone(),
            payload: Payload::Raw(0x88b5),
            wire_len: 64,
        }
        .build();
        let mut want = [MAC_B, MAC_A].concat();
        for t in &tags {
            want.extend_from_slice(&t.to_bytes());
        }
        want.extend_from_slice(&[0x88, 0xb5]);
        want.resize(60, 0);
        assert_eq!(f, want);
        assert_eq!(
            parse(&f).unwrap_err().kind,
            crate::wire::ErrorKind::TooManyTags
        );
    }
}
