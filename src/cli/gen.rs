//! `xconnect gen`: a small traffic generator for the throughput benchmark
//! (`scripts/bench-netns.sh`): UDP frames from a fixed set of flows, sent
//! on an AF_PACKET socket that bypasses the qdisc, through the same
//! TPACKET_V2 transmit ring as the af_packet ports (32 frames per kick),
//! on one pinned core, for a bounded time and count.
//!
//! It exists because trafgen 0.6.8 exits when flushing its TX ring returns
//! `EAGAIN` (the receiver frees the skbs on another core, e.g. with RPS);
//! here a refused batch is simply retried and counted. With `--vlan` the
//! frames carry VLAN tags (the lab kernel has no 8021q module, so tests
//! that need tagged frames on a trunk make them here).

use crate::gen::FrameSpec;
use crate::io::af_packet::{open_tx_socket, setup_tx_ring};
use crate::io::sys;
use crate::wire::ethernet::Mac;
use crate::wire::{Tpid, VlanTag};
use clap::Args;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `xconnect gen`.
#[derive(Args, Debug)]
#[command(after_help = "\
Sends UDP/IPv4 frames --src-ip → --dst-ip (192.0.2.1 → 198.51.100.2),
source ports 1024.. (one per flow), destination port 9, as fast as the interface takes them, until
--duration, --count or SIGINT/SIGTERM. Prints the frames sent and the
batches that found the transmit ring full (retried). Needs CAP_NET_RAW.
--vlan tags the frames (outermost first, e.g. `--vlan 100,200` for an
S-tag 100 and a C-tag 200; every tag with TPID --outer-tpid on the first,
0x8100 on the others); --size then counts the tags.
Towards an l3 attachment, --dst-mac must be xconnect's MAC on that port
(it drops other unicast as not-our-mac): 02:78:63:00:00:01 for the first
[[port]] of its config, 02:78:63:00:00:02 for the second, and so on.
--mpls puts the frames behind labels as a provider's backbone delivers
them to an MPLS attachment: `--mpls 1001` (an L3VPN's VPN label, the IP
packet under it), `--mpls 16001,1101 --pseudowire --control-word` (a
pseudowire under a transport label, the whole frame behind it).

Example:
  ip netns exec xcb-gen xconnect gen xcb-gen0 --dst-mac 02:00:00:00:00:99 --duration 10 --core 0")]
pub struct GenArgs {
    /// Interface to send on.
    pub interface: String,
    /// Destination MAC.
    #[arg(long, default_value = "02:00:00:00:00:0b", value_parser = parse_mac)]
    pub dst_mac: Mac,
    /// Source MAC.
    #[arg(long, default_value = "02:00:00:00:00:0a", value_parser = parse_mac)]
    pub src_mac: Mac,
    /// Number of flows (UDP source ports), sent round robin.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub flows: u16,
    /// Frame size on the wire including the FCS (64 → 60 bytes sent).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(64..=1518))]
    pub size: u16,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop after this many frames (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// Pin to this core ("none": no pinning).
    #[arg(long, default_value = "0")]
    pub core: String,
    /// VLAN IDs to tag the frames with, outermost first (at most 3).
    #[arg(long, value_name = "VID,…", value_delimiter = ',',
          value_parser = clap::value_parser!(u16).range(0..=4095))]
    pub vlan: Vec<u16>,
    /// TPID of the outermost tag (0x8100, 0x88a8 or 0x9100); inner tags
    /// are 0x8100.
    #[arg(long, default_value = "0x8100", value_parser = parse_tpid)]
    pub outer_tpid: u16,
    /// IPv4 source address.
    #[arg(long, default_value = "192.0.2.1")]
    pub src_ip: Ipv4Addr,
    /// IPv4 destination address.
    #[arg(long, default_value = "198.51.100.2")]
    pub dst_ip: Ipv4Addr,
    /// DSCP of the packets (0..=63).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=63))]
    pub dscp: u8,
    /// MPLS labels to put the frames behind, outermost first (at most 3;
    /// TTL 64, the last with the bottom-of-stack bit): as an L3VPN
    /// delivers them, the IP packet right under the labels (the remote PE
    /// of the IPVPN lab). --size counts the frame before the labels.
    #[arg(long, value_name = "LABEL,…", value_delimiter = ',',
          value_parser = clap::value_parser!(u32).range(16..=1_048_575))]
    pub mpls: Vec<u32>,
    /// With --mpls: an Ethernet pseudowire instead, the whole frame (from
    /// --inner-src-mac to --inner-dst-mac, tags and all) behind the labels
    /// and an outer Ethernet header (--src-mac to --dst-mac).
    #[arg(long, requires = "mpls")]
    pub pseudowire: bool,
    /// With --pseudowire: the control word (all zero) before the frame.
    #[arg(long, requires = "pseudowire")]
    pub control_word: bool,
    /// With --pseudowire: the inner frame's destination MAC.
    #[arg(long, default_value = "02:00:00:00:00:0d", value_parser = parse_mac)]
    pub inner_dst_mac: Mac,
    /// With --pseudowire: the inner frame's source MAC.
    #[arg(long, default_value = "02:00:00:00:00:0c", value_parser = parse_mac)]
    pub inner_src_mac: Mac,
}

fn parse_tpid(s: &str) -> Result<u16, String> {
    match s.to_ascii_lowercase().as_str() {
        "0x8100" => Ok(0x8100),
        "0x88a8" => Ok(0x88a8),
        "0x9100" => Ok(0x9100),
        _ => Err(format!("{s:?}: the outer TPID is 0x8100, 0x88a8 or 0x9100")),
    }
}

/// The tags of `a`, outermost first.
fn tags(a: &GenArgs) -> Vec<VlanTag> {
    a.vlan
        .iter()
        .enumerate()
        .map(|(i, &vid)| {
            let tpid = if i == 0 {
                Tpid(a.outer_tpid)
            } else {
                Tpid::DOT1Q
            };
            VlanTag::from_tci(tpid, vid)
        })
        .collect()
}

fn parse_mac(s: &str) -> Result<Mac, String> {
    let mut m = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!("{s:?} is not a MAC address (aa:bb:cc:dd:ee:ff)"));
    }
    for (b, p) in m.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).map_err(|_| format!("{s:?}: bad byte {p:?}"))?;
    }
    Ok(m)
}

/// The frames of `a`, one per flow.
pub fn frames(a: &GenArgs) -> Vec<Vec<u8>> {
    let tags = tags(a);
    (0..a.flows)
        .map(|i| {
            let mut spec = FrameSpec::udp(
                &tags,
                IpAddr::V4(a.src_ip),
                IpAddr::V4(a.dst_ip),
                (1024 + i, 9),
                a.dscp << 2,
                a.size as usize,
            );
            if a.pseudowire {
                spec.dst_mac = a.inner_dst_mac;
                spec.src_mac = a.inner_src_mac;
            } else {
                spec.dst_mac = a.dst_mac;
                spec.src_mac = a.src_mac;
            }
            let f = spec.build();
            if a.mpls.is_empty() {
                f
            } else {
                labelled(a, &f)
            }
        })
        .collect()
}

/// `frame` behind `a`'s labels (see `--mpls`, `--pseudowire`).
fn labelled(a: &GenArgs, frame: &[u8]) -> Vec<u8> {
    use crate::wire::mpls::{Label, LabelEntry, ETHERTYPE_MPLS};
    let mut f = Vec::with_capacity(frame.len() + 30);
    f.extend_from_slice(&a.dst_mac);
    f.extend_from_slice(&a.src_mac);
    f.extend_from_slice(&ETHERTYPE_MPLS.to_be_bytes());
    let n = a.mpls.len().min(3);
    for (k, &l) in a.mpls.iter().take(n).enumerate() {
        // The parser kept the labels in 16..=1048575.
        let Ok(label) = Label::usable(l) else {
            continue;
        };
        let e = LabelEntry {
            label,
            tc: a.dscp >> 3,
            bottom: k + 1 == n,
            ttl: 64,
        };
        f.extend_from_slice(&e.to_bytes());
    }
    if a.pseudowire {
        if a.control_word {
            f.extend_from_slice(&[0; 4]);
        }
        f.extend_from_slice(frame);
    } else {
        // The IP packet (after the MACs, tags and ethertype).
        let ip = 14 + 4 * a.vlan.len().min(3);
        f.extend_from_slice(frame.get(ip..).unwrap_or_default());
    }
    f
}

/// Run the generator.
pub fn run(a: &GenArgs) -> anyhow::Result<i32> {
    if !(a.duration.is_finite() && (0.0..=86_400.0).contains(&a.duration)) {
        anyhow::bail!("--duration must be in 0..=86400 seconds");
    }
    if a.vlan.len() > 3 {
        anyhow::bail!("--vlan takes at most 3 tags, got {}", a.vlan.len());
    }
    if a.core != "none" {
        let n: usize = a
            .core
            .parse()
            .map_err(|_| anyhow::anyhow!("--core must be a core number or \"none\""))?;
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        if let Some(c) = cores.get(n % cores.len().max(1)) {
            core_affinity::set_for_current(*c);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let fd = open_tx_socket(&a.interface)?;
    let mut ring = setup_tx_ring(&fd, 512)
        .map_err(|e| sys::explain(e, &a.interface, "setting up the TX ring", "CAP_NET_RAW"))?;
    let frames = frames(a);
    let deadline = Instant::now() + Duration::from_secs_f64(a.duration);
    let (mut sent, mut refused, mut next) = (0u64, 0u64, 0usize);
    let limit = if a.count == 0 { u64::MAX } else { a.count };
    while sent < limit && !stop.load(Ordering::Relaxed) {
        if sent % 4096 < 32 && Instant::now() >= deadline {
            break;
        }
        let want = (limit - sent).min(crate::frame::BATCH_SIZE as u64) as usize;
        let n = (0..want)
            .take_while(|k| ring.push(&frames[(next + k) % frames.len()]))
            .count();
        // Frames the device refused stay queued and go at the next kick.
        let _ = sys::kick_tx_ring(fd.as_raw_fd());
        if n == 0 {
            refused += 1;
            std::thread::yield_now();
            if Instant::now() >= deadline {
                break;
            }
            continue;
        }
        next = (next + n) % frames.len();
        sent += n as u64;
    }
    // What is still queued goes now (bounded: the kernel sends in order
    // and stops at the first frame the device refuses).
    for _ in 0..100 {
        if !ring.queued() {
            break;
        }
        let _ = sys::kick_tx_ring(fd.as_raw_fd());
        std::thread::sleep(Duration::from_millis(1));
    }
    println!(
        "sent {sent} frames on {}; {refused} batches found the ring full (retried)",
        a.interface
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        g: GenArgs,
    }

    #[test]
    fn frames_are_64_byte_udp_one_per_flow() {
        let t = T::parse_from([
            "t",
            "eth0",
            "--flows",
            "3",
            "--dst-mac",
            "02:00:00:00:00:99",
        ]);
        let f = frames(&t.g);
        assert_eq!(f.len(), 3);
        for (i, x) in f.iter().enumerate() {
            assert_eq!(x.len(), 60);
            assert_eq!(&x[..6], &[2, 0, 0, 0, 0, 0x99]);
            assert_eq!(&x[12..14], &[0x08, 0x00]);
            assert_eq!(u16::from_be_bytes([x[34], x[35]]), 1024 + i as u16);
        }
        assert!(parse_mac("02:00").is_err());
        assert!(t.g.vlan.is_empty());
    }

    #[test]
    fn labelled_frames_for_l3vpn_and_pseudowire() {
        use crate::wire::mpls::{LabelStack, ETHERTYPE_MPLS};
        let a = T::try_parse_from([
            "t",
            "eth0",
            "--mpls",
            "16001,1001",
            "--dscp",
            "46",
            "--flows",
            "1",
            "--src-ip",
            "203.0.113.70",
            "--dst-ip",
            "198.51.100.130",
        ])
        .expect("parses")
        .g;
        let f = &frames(&a)[0];
        assert_eq!(&f[12..14], &ETHERTYPE_MPLS.to_be_bytes());
        let s = LabelStack::parse(&f[14..], 14).unwrap();
        let e = s.as_slice();
        assert_eq!(
            (e[0].label.value(), e[0].bottom, e[0].tc),
            (16001, false, 5)
        );
        assert_eq!(
            (e[1].label.value(), e[1].bottom, e[1].ttl),
            (1001, true, 64)
        );
        assert_eq!(f[22] >> 4, 4, "IP under the labels");
        assert_eq!(&f[22 + 12..22 + 20], &[203, 0, 113, 70, 198, 51, 100, 130]);
        let a = T::try_parse_from([
            "t",
            "eth0",
            "--mpls",
            "1101",
            "--pseudowire",
            "--control-word",
            "--flows",
            "1",
            "--vlan",
            "10",
        ])
        .expect("parses")
        .g;
        let f = &frames(&a)[0];
        assert_eq!(&f[18..22], &[0; 4], "control word");
        let inner = crate::wire::parse(&f[22..]).unwrap();
        assert_eq!(inner.tags.vids(), [10, 0, 0]);
        assert_eq!(&f[22..28], &a.inner_dst_mac);
        assert!(T::try_parse_from(["t", "eth0", "--pseudowire"]).is_err());
    }

    #[test]
    fn vlan_tags_outermost_first() {
        let t = T::parse_from(["t", "eth0", "--flows", "1", "--vlan", "100,300"]);
        let f = &frames(&t.g)[0];
        assert_eq!(f.len(), 60, "--size counts the tags");
        assert_eq!(&f[12..16], &[0x81, 0x00, 0x00, 100]);
        assert_eq!(&f[16..20], &[0x81, 0x00, 0x01, 0x2c]);
        assert_eq!(&f[20..22], &[0x08, 0x00]);
        let t = T::parse_from(["t", "eth0", "--vlan", "7", "--outer-tpid", "0x88a8"]);
        assert_eq!(&frames(&t.g)[0][12..16], &[0x88, 0xa8, 0x00, 7]);
        assert!(T::try_parse_from(["t", "eth0", "--vlan", "4096"]).is_err());
        assert!(T::try_parse_from(["t", "eth0", "--outer-tpid", "0x1234"]).is_err());
        assert!(parse_mac("zz:00:00:00:00:00").is_err());
    }
}
