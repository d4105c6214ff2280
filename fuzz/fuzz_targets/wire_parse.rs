//! Every wire view over arbitrary bytes: no panic; a parsed frame's offsets
//! stay inside it; tag rewrite round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xconnect::wire::{self, PacketBuf};

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = wire::parse(data) {
        assert!((info.l3_offset as usize) <= data.len());
        assert!((info.l4_offset as usize) <= data.len());
        assert_eq!(info.l3_offset as usize, 14 + 4 * info.tags.len());
        let _ = xconnect::qos::marker::addresses(&info, data);
        let mut buf = PacketBuf::new();
        if buf.load(data) {
            let n = info.tags.len();
            let popped = data[12..12 + 4 * n].to_vec();
            assert!(buf.rewrite_tags(n, &[]));
            assert!(buf.rewrite_tags(0, &popped));
            assert_eq!(buf.frame(), data);
        }
    }
    let _ = wire::ipv4::Ipv4Packet::new_checked(data, 0).map(|p| p.verify_checksum());
    let _ = wire::ipv6::Ipv6Packet::new_checked(data, 0)
        .map(|p| wire::ipv6::upper_layer(p.next_header(), p.payload(), 40));
    let _ = wire::arp::ArpPacket::new_checked(data, 0).map(|a| a.sender_ip());
});
