//! The `naive` baseline: what a straightforward forwarder built on
//! etherparse does per frame — parse into owned headers, rewrite the tags
//! and the DSCP, serialise into a new `Vec`.
//!
//! It implements the same L2 QinQ cross-connect as the bench plan (push
//! S+C with the `expressroute` whitelist, or pop them) so its output bytes
//! equal the pipeline's; a test checks that.

use super::cases::{C_TAG_MICROSOFT, S_TAG};
use etherparse::{
    EtherType, IpDscp, LinkExtHeader, NetHeaders, PacketHeaders, SingleVlanHeader, VlanId,
};

const WHITELIST: [u8; 5] = [46, 34, 18, 10, 0];

fn vlan(vid: u16, ether_type: EtherType) -> LinkExtHeader {
    LinkExtHeader::Vlan(SingleVlanHeader {
        pcp: etherparse::VlanPcp::ZERO,
        drop_eligible_indicator: false,
        vlan_id: VlanId::try_new(vid).unwrap_or(VlanId::ZERO),
        ether_type,
    })
}

/// Cross-connect one frame; `push` selects the direction. `None` if
/// etherparse rejects the frame.
pub fn forward(frame: &[u8], push: bool) -> Option<Vec<u8>> {
    let mut h = PacketHeaders::from_ethernet_slice(frame).ok()?;
    let mut link = match h.link.take()? {
        etherparse::LinkHeader::Ethernet2(e) => e,
        _ => return None,
    };
    let inner_type = link_inner_type(&h, link.ether_type);
    if push {
        link.ether_type = EtherType::VLAN_TAGGED_FRAME;
        h.link_exts.clear();
        h.link_exts.push(vlan(S_TAG, EtherType::VLAN_TAGGED_FRAME));
        h.link_exts.push(vlan(C_TAG_MICROSOFT, inner_type));
        if let Some(NetHeaders::Ipv4(ip, _)) = &mut h.net {
            if !WHITELIST.contains(&ip.dscp.value()) {
                ip.dscp = IpDscp::ZERO;
            }
            ip.header_checksum = ip.calc_header_checksum();
        }
        if let Some(NetHeaders::Ipv6(ip, _)) = &mut h.net {
            let d = ip.traffic_class >> 2;
            if !WHITELIST.contains(&d) {
                ip.traffic_class &= 3;
            }
        }
    } else {
        h.link_exts.clear();
        link.ether_type = inner_type;
    }
    let mut out = Vec::with_capacity(frame.len() + 8);
    link.write(&mut out).ok()?;
    for e in &h.link_exts {
        if let LinkExtHeader::Vlan(v) = e {
            v.write(&mut out).ok()?;
        }
    }
    match &h.net {
        Some(NetHeaders::Ipv4(ip, ext)) => {
            ip.write(&mut out).ok()?;
            ext.write(&mut out, ip.protocol).ok()?;
        }
        Some(NetHeaders::Ipv6(ip, ext)) => {
            ip.write(&mut out).ok()?;
            ext.write(&mut out, ip.next_header).ok()?;
        }
        Some(NetHeaders::Arp(a)) => out.extend_from_slice(&a.to_bytes()),
        None => {}
    }
    if let Some(t) = &h.transport {
        t.write(&mut out).ok()?;
    }
    out.extend_from_slice(h.payload.slice());
    // Ethernet padding after the IP packet is kept as the pipeline keeps it.
    let consumed = frame.len() - padding_len(frame, &h);
    out.extend_from_slice(&frame[consumed..]);
    Some(out)
}

fn link_inner_type(h: &PacketHeaders<'_>, outer: EtherType) -> EtherType {
    match h.link_exts.last() {
        Some(LinkExtHeader::Vlan(v)) => v.ether_type,
        _ => outer,
    }
}

fn padding_len(frame: &[u8], h: &PacketHeaders<'_>) -> usize {
    let tags = h.link_exts.len() * 4;
    let ip_len = match &h.net {
        Some(NetHeaders::Ipv4(ip, _)) => ip.total_len as usize,
        Some(NetHeaders::Ipv6(ip, _)) => 40 + ip.payload_length as usize,
        Some(NetHeaders::Arp(_)) => 28,
        None => return 0,
    };
    frame.len().saturating_sub(14 + tags + ip_len)
}
