//! Software segmentation compared with the kernel's, byte for byte.
//!
//! In a network namespace of its own (`xcgso-<pid>`, removed by a guard
//! on success and failure) the test makes a veth pair `xa`–`xb` (MTU
//! 9000), turns TSO and transmit checksumming off on `xa` (so the kernel
//! segments in software at transmit, `validate_xmit_skb` →
//! `skb_gso_segment`, and completes every checksum in the bytes), and
//! sends TCP super-frames on `xa` through an AF_PACKET socket with
//! `PACKET_VNET_HDR` (GSO TCPv4/TCPv6, `NEEDS_CSUM` with the pseudo-header
//! sum in the TCP checksum field, as a TCP stack or GRO hands them over).
//! A plain AF_PACKET socket on `xb` receives the kernel's segments (the
//! outer VLAN tag, which the kernel strips, put back from
//! `PACKET_AUXDATA`), and each is compared with what
//! `wire::gso::segment` makes of the same super-frame. Cases: IPv4 and
//! IPv6, untagged, 802.1Q and QinQ, IPv4 options, segment sizes 1448 and
//! odd ones, IDs and sequence numbers that wrap, CWR/PSH/FIN, a 64 KiB
//! super-frame, and one that fits in a single segment; UDP super-frames
//! (`UDP_SEGMENT`, IPv4 with and without options, IPv6, tagged) with
//! `tx-udp-segmentation` off. Three facts the
//! forwarder depends on are printed, not asserted: a super-frame sent
//! with `PACKET_QDISC_BYPASS` is refused (`ENOBUFS`: `__dev_direct_xmit`
//! drops an skb that `validate_xmit_skb` had to segment); one whose
//! payload fits one segment but whose TCP options and payload together
//! exceed `gso_size` is refused (`virtio_net_hdr_to_skb` marks it GSO,
//! `tcp_gso_segment` will not cut it); and with transmit checksumming on
//! the segments arrive `CHECKSUM_PARTIAL`, the TCP checksum field holding
//! only the pseudo-header sum.
//!
//! Needs root, `ip` and `ethtool`; without them it prints why and passes.
//! Every command runs under `timeout`, every receive loop is bounded in
//! count and time. Addresses are documentation prefixes; nothing leaves
//! the namespace.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use xconnect::io::af_packet::restore_tag;
use xconnect::io::sys;
use xconnect::wire::checksum::{self, PseudoHeader};
use xconnect::wire::gso::{segment, ChecksumState, GsoKind, Offload};

fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (network namespaces need CAP_SYS_ADMIN)".into());
    }
    for (tool, package) in [
        ("ip", "iproute2"),
        ("ethtool", "ethtool"),
        ("timeout", "coreutils"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("{tool} is missing: apt-get install {package}"));
        }
    }
    None
}

fn run(cmd: &str) -> Result<String, String> {
    let o = Command::new("timeout")
        .args(["20", "sh", "-c", cmd])
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if o.status.success() {
        Ok(text)
    } else {
        Err(format!("{cmd}: {}: {text}", o.status))
    }
}

/// The test's namespace; deleted when dropped, whatever happened.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        let name = format!("xcgso-{}", std::process::id());
        // A namespace left by a killed earlier run of the same PID.
        let _ = run(&format!("ip netns del {name} 2>/dev/null"));
        run(&format!("ip netns add {name}")).unwrap();
        Netns { name }
    }

    fn exec(&self, cmd: &str) -> Result<String, String> {
        run(&format!("ip netns exec {} sh -c '{cmd}'", self.name))
    }

    /// Run `f` on a thread that has entered the namespace (sockets it
    /// opens live there); the calling thread stays where it is.
    fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: `ns` is an open namespace file; setns changes only
            // this thread, which ends with the closure.
            let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = run(&format!("ip netns del {}", self.name)) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// One super-frame to send.
#[derive(Clone, Debug)]
struct Case {
    name: &'static str,
    tags: Vec<(u16, u16)>,
    v6: bool,
    ip_option_words: usize,
    payload: usize,
    mss: u16,
    flags: u8,
    ident: u16,
    seq: u32,
    sport: u16,
    /// UDP segmentation (`UDP_SEGMENT`) instead of TCP.
    udp: bool,
}

const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;
const CWR: u8 = 0x80;
const ECE: u8 = 0x40;

fn cases() -> Vec<Case> {
    let base = Case {
        name: "",
        tags: vec![],
        v6: false,
        ip_option_words: 0,
        payload: 4000,
        mss: 1448,
        flags: ACK | PSH,
        ident: 0x1234,
        seq: 1_000_000,
        sport: 0,
        udp: false,
    };
    let mut v = vec![
        Case {
            name: "ipv4 mss 1448",
            ..base.clone()
        },
        Case {
            name: "ipv4 options, odd mss 1337, CWR|ECE|PSH|FIN, ID and seq wrap",
            ip_option_words: 2,
            payload: 20_000,
            mss: 1337,
            flags: CWR | ECE | ACK | PSH | FIN,
            ident: 0xfff0,
            seq: 0xffff_c000,
            ..base.clone()
        },
        Case {
            name: "ipv4 64 KiB super-frame",
            payload: 65_000,
            ..base.clone()
        },
        Case {
            name: "ipv6 mss 1428",
            v6: true,
            mss: 1428,
            ..base.clone()
        },
        Case {
            name: "ipv6 odd mss 999, CWR|PSH|FIN, seq wraps",
            v6: true,
            payload: 30_001,
            mss: 999,
            flags: CWR | ACK | PSH | FIN,
            seq: 0xffff_f000,
            ..base.clone()
        },
        Case {
            name: "ipv4 one 802.1Q tag",
            tags: vec![(0x8100, 100)],
            payload: 10_000,
            ..base.clone()
        },
        Case {
            name: "ipv6 QinQ 802.1ad+802.1Q",
            tags: vec![(0x88a8, 0x2000 | 200), (0x8100, 300)],
            v6: true,
            payload: 10_000,
            mss: 1400,
            ..base.clone()
        },
        Case {
            name: "ipv4 payload within one segment (not cut)",
            payload: 1000,
            ..base.clone()
        },
        Case {
            name: "udp ipv4 datagrams of 1200, ID wraps",
            udp: true,
            payload: 10_000,
            mss: 1200,
            ident: 0xfffd,
            ..base.clone()
        },
        Case {
            name: "udp ipv4 options, 802.1Q, odd size 777",
            udp: true,
            tags: vec![(0x8100, 100)],
            ip_option_words: 1,
            payload: 7_000,
            mss: 777,
            ..base.clone()
        },
        Case {
            name: "udp ipv6 QinQ, datagrams of 1232",
            udp: true,
            tags: vec![(0x88a8, 200), (0x8100, 300)],
            v6: true,
            payload: 20_000,
            mss: 1232,
            ..base.clone()
        },
    ];
    for (i, c) in v.iter_mut().enumerate() {
        c.sport = 40_000 + i as u16;
    }
    v
}

/// The super-frame as a sender with checksum offload hands it over: the
/// TCP checksum field holds the pseudo-header sum, the metadata says
/// `NEEDS_CSUM` at the TCP header.
fn build(c: &Case) -> (Vec<u8>, Offload) {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a];
    for (tpid, tci) in &c.tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    let tcp_options = [1, 1, 8, 10, 0, 0, 0x30, 0x39, 0, 0, 0x10, 0x92];
    let (proto, tcp_len) = if c.udp {
        (17, 8 + c.payload)
    } else {
        (6, 20 + tcp_options.len() + c.payload)
    };
    let pseudo = if c.v6 {
        f.extend_from_slice(&[0x86, 0xdd]);
        f.extend_from_slice(&[0x60, 0x01, 0x23, 0x45]);
        f.extend_from_slice(&(tcp_len as u16).to_be_bytes());
        f.extend_from_slice(&[proto, 64]);
        let src: std::net::Ipv6Addr = "2001:db8:19::1".parse().unwrap();
        let dst: std::net::Ipv6Addr = "2001:db8:19::2".parse().unwrap();
        f.extend_from_slice(&src.octets());
        f.extend_from_slice(&dst.octets());
        PseudoHeader::V6 { src, dst }
    } else {
        f.extend_from_slice(&[0x08, 0x00]);
        let ihl = 20 + 4 * c.ip_option_words;
        let mut h = vec![0x40 | (ihl / 4) as u8, 0x28];
        h.extend_from_slice(&((ihl + tcp_len) as u16).to_be_bytes());
        h.extend_from_slice(&c.ident.to_be_bytes());
        h.extend_from_slice(&[0x40, 0, 64, proto, 0, 0, 192, 0, 2, 1, 198, 51, 100, 2]);
        // NOPs closed by end-of-list.
        for i in 0..4 * c.ip_option_words {
            h.push(if i + 1 == 4 * c.ip_option_words { 0 } else { 1 });
        }
        let sum = checksum::checksum(&h);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&h);
        PseudoHeader::V4 {
            src: [192, 0, 2, 1].into(),
            dst: [198, 51, 100, 2].into(),
        }
    };
    let l4 = f.len();
    f.extend_from_slice(&c.sport.to_be_bytes());
    f.extend_from_slice(&5201u16.to_be_bytes());
    if c.udp {
        // UDP: length and the pseudo-header sum, as udp_send_skb leaves
        // a GSO datagram (CHECKSUM_PARTIAL).
        f.extend_from_slice(&(tcp_len as u16).to_be_bytes());
        let sum = checksum::fold(pseudo.sum(17, tcp_len));
        f.extend_from_slice(&sum.to_be_bytes());
        let header_len = f.len();
        f.extend((0..c.payload).map(|i| (i * 7 + i / 251) as u8));
        let offload = Offload {
            gso: GsoKind::Udp,
            ecn: false,
            segment_size: c.mss,
            header_len: header_len as u16,
            checksum: ChecksumState::Partial {
                start: l4 as u16,
                offset: 6,
            },
        };
        return (f, offload);
    }
    f.extend_from_slice(&c.seq.to_be_bytes());
    f.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    f.extend_from_slice(&[
        (((20 + tcp_options.len()) / 4) << 4) as u8,
        c.flags,
        0x01,
        0xf6,
    ]);
    let sum = checksum::fold(pseudo.sum(6, tcp_len));
    f.extend_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&tcp_options);
    let header_len = f.len();
    f.extend((0..c.payload).map(|i| (i * 7 + i / 251) as u8));
    let offload = Offload {
        gso: if c.v6 { GsoKind::TcpV6 } else { GsoKind::TcpV4 },
        ecn: c.flags & CWR != 0,
        segment_size: c.mss,
        header_len: header_len as u16,
        checksum: ChecksumState::Partial {
            start: l4 as u16,
            offset: 16,
        },
    };
    (f, offload)
}

fn bind(fd: &OwnedFd, interface: &str, protocol: u16) {
    let index = sys::if_index(interface).unwrap();
    // SAFETY: sockaddr_ll is plain data; all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = index as i32;
    // SAFETY: the pointer and length describe `sll`, a live sockaddr_ll.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    assert_eq!(
        r,
        0,
        "bind {interface}: {}",
        std::io::Error::last_os_error()
    );
}

/// An AF_PACKET socket on `interface` that sends frames preceded by a
/// `virtio_net_hdr`; through the qdisc unless `bypass`.
fn vnet_sender(interface: &str, bypass: bool) -> OwnedFd {
    let fd = sys::socket(libc::AF_PACKET, libc::SOCK_RAW, 0).unwrap();
    sys::setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_VNET_HDR, &1).unwrap();
    if bypass {
        sys::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            &1,
        )
        .unwrap();
    }
    bind(&fd, interface, 0);
    fd
}

fn send(fd: &OwnedFd, frame: &[u8], offload: &Offload) -> std::io::Result<()> {
    let mut buf = vec![0u8; 10 + frame.len()];
    offload.to_virtio().emit(&mut buf).unwrap();
    buf[10..].copy_from_slice(frame);
    // SAFETY: `buf` is live for the call and its length is passed.
    let r = unsafe { libc::send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    assert_eq!(r as usize, buf.len(), "short send");
    Ok(())
}

/// A receiving AF_PACKET socket on `interface` with `PACKET_AUXDATA`.
fn receiver(interface: &str) -> OwnedFd {
    let fd = sys::socket(
        libc::AF_PACKET,
        libc::SOCK_RAW,
        (libc::ETH_P_ALL as u16).to_be() as i32,
    )
    .unwrap();
    sys::setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_AUXDATA, &1).unwrap();
    sys::set_recv_timeout(fd.as_raw_fd(), Duration::from_millis(100)).unwrap();
    bind(&fd, interface, libc::ETH_P_ALL as u16);
    fd
}

/// A received frame with its stripped outer tag put back, and whether the
/// kernel marked its checksum as not yet computed.
struct Received {
    frame: Vec<u8>,
    csum_not_ready: bool,
}

/// One frame, or `None` on timeout.
fn recv_one(fd: &OwnedFd, buf: &mut [u8]) -> Option<Received> {
    let mut control = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len() as _;
    // SAFETY: `msg` points at `iov` (over `buf`) and `control`, all live
    // for the call.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ),
            "recvmsg: {e}"
        );
        return None;
    }
    let n = n as usize;
    assert!(n <= buf.len(), "frame of {n} bytes truncated");
    // Walk the control messages as bytes: cmsghdr is (size_t len, int
    // level, int type), data aligned to size_t.
    let hdr = std::mem::size_of::<libc::cmsghdr>();
    let align = std::mem::size_of::<usize>();
    let ctrl = &control[..(msg.msg_controllen as usize).min(control.len())];
    let mut at = 0;
    let (mut tag, mut csum_not_ready) = (None, false);
    while at + hdr <= ctrl.len() {
        let len = usize::from_ne_bytes(ctrl[at..at + align].try_into().unwrap());
        let level = i32::from_ne_bytes(ctrl[at + align..at + align + 4].try_into().unwrap());
        let ty = i32::from_ne_bytes(ctrl[at + align + 4..at + align + 8].try_into().unwrap());
        if len < hdr || at + len > ctrl.len() {
            break;
        }
        if level == libc::SOL_PACKET && ty == libc::PACKET_AUXDATA && len >= hdr + 20 {
            // struct tpacket_auxdata: status u32, len u32, snaplen u32,
            // mac u16, net u16, vlan_tci u16, vlan_tpid u16.
            let d = &ctrl[at + hdr..at + len];
            let status = u32::from_ne_bytes(d[0..4].try_into().unwrap());
            let tci = u16::from_ne_bytes(d[16..18].try_into().unwrap());
            let tpid = u16::from_ne_bytes(d[18..20].try_into().unwrap());
            const VLAN_VALID: u32 = 1 << 4;
            const VLAN_TPID_VALID: u32 = 1 << 6;
            const CSUMNOTREADY: u32 = 1 << 3;
            csum_not_ready = status & CSUMNOTREADY != 0;
            if status & VLAN_VALID != 0 {
                let tpid = if status & VLAN_TPID_VALID != 0 {
                    tpid
                } else {
                    0x8100
                };
                tag = Some((tpid, tci));
            }
        }
        at += (len + align - 1) & !(align - 1);
    }
    let mut frame = vec![0u8; n + 4];
    let len = restore_tag(&mut frame, &buf[..n], tag).unwrap();
    frame.truncate(len);
    Some(Received {
        frame,
        csum_not_ready,
    })
}

/// The source port of a received frame, if it is TCP or UDP over IP.
fn sport(frame: &[u8]) -> Option<u16> {
    let info = xconnect::wire::parse(frame).ok()?;
    (info.has_ports && matches!(info.protocol, 6 | 17)).then_some(info.src_port)
}

/// Every frame of source port `port` that arrives within `wait`, at most
/// `max` of them (the loop is bounded in time and in frames read).
fn collect(fd: &OwnedFd, port: u16, max: usize, wait: Duration) -> Vec<Received> {
    let mut buf = vec![0u8; 70_000];
    let mut got = Vec::new();
    let deadline = Instant::now() + wait;
    for _ in 0..100_000 {
        if got.len() >= max || Instant::now() >= deadline {
            break;
        }
        if let Some(r) = recv_one(fd, &mut buf) {
            if sport(&r.frame) == Some(port) {
                got.push(r);
            }
        }
    }
    got
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!(
            "first difference at byte {i}: kernel {:02x?}, xconnect {:02x?}",
            &a[i..(i + 8).min(a.len())],
            &b[i..(i + 8).min(b.len())]
        ),
        None => format!("lengths differ: kernel {}, xconnect {}", a.len(), b.len()),
    }
}

#[test]
fn software_segmentation_matches_the_kernel_byte_for_byte() {
    if let Some(why) = skip_reason() {
        let _ = writeln!(std::io::stderr(), "skipping gso_kernel: {why}");
        return;
    }
    let ns = Netns::new();
    ns.exec("sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1")
        .unwrap();
    ns.exec("ip link add xa mtu 9000 type veth peer name xb mtu 9000")
        .unwrap();
    ns.exec("ip link set xa up && ip link set xb up").unwrap();
    // TSO off: the kernel segments in software at transmit. Transmit
    // checksumming off: it completes every checksum in the bytes (with it
    // on, veth passes CHECKSUM_PARTIAL segments whose TCP checksum field
    // holds only the pseudo-header sum).
    ns.exec("ethtool -K xa tso off tx off").unwrap();
    // UDP segmentation too (the UDP cases).
    ns.exec("ethtool -K xa tx-udp-segmentation off").unwrap();
    let _ = ns.exec("ethtool -K xb gro off");
    let features = ns.exec("ethtool -k xa | grep -E \"^(tcp-segmentation-offload|tx-checksumming|generic-segmentation-offload|tx-udp-segmentation):\"").unwrap();
    println!("xa offloads:\n{features}");

    let name = ns.name.clone();
    let report = ns.enter(move || {
        let rx = receiver("xb");
        let tx = vnet_sender("xa", false);
        let mut failures = Vec::new();
        let mut lines = Vec::new();
        let (mut frames, mut bytes) = (0usize, 0usize);
        let mut scratch = vec![0u8; 70_000];
        for c in cases() {
            let (frame, offload) = build(&c);
            let mut ours: Vec<Vec<u8>> = Vec::new();
            segment(&frame, &offload, None, &mut scratch, |s| ours.push(s.to_vec()))
                .unwrap_or_else(|e| panic!("{}: xconnect refuses the super-frame: {e}", c.name));
            if let Err(e) = send(&tx, &frame, &offload) {
                failures.push(format!("{}: send: {e}", c.name));
                continue;
            }
            let theirs = collect(&rx, c.sport, ours.len() + 4, Duration::from_secs(2));
            let mut ok = theirs.len() == ours.len();
            let mut why = if ok {
                String::new()
            } else {
                format!("kernel sent {} frames, xconnect made {}", theirs.len(), ours.len())
            };
            for (k, (t, o)) in theirs.iter().zip(&ours).enumerate() {
                if t.csum_not_ready {
                    why.push_str(&format!("; segment {k} arrived with CHECKSUM_PARTIAL"));
                    ok = false;
                }
                if t.frame != *o {
                    why.push_str(&format!("; segment {k}: {}", first_difference(&t.frame, o)));
                    ok = false;
                    break;
                }
            }
            let size: usize = ours.iter().map(Vec::len).sum();
            lines.push(format!(
                "{:<62} {:>6}-byte super-frame, mss {:>4}: {:>2} segments, {:>6} bytes: {}",
                c.name,
                frame.len(),
                c.mss,
                ours.len(),
                size,
                if ok { "identical" } else { "DIFFERENT" }
            ));
            if ok {
                frames += ours.len();
                bytes += size;
            } else {
                failures.push(format!("{}: {why}", c.name));
            }
        }
        // What the kernel does with a super-frame sent past the qdisc
        // (PACKET_QDISC_BYPASS): reported, not asserted.
        let mut c = cases().remove(0);
        c.sport = 39_999;
        let (frame, offload) = build(&c);
        let bypass = vnet_sender("xa", true);
        let sent = send(&bypass, &frame, &offload);
        let got = collect(&rx, c.sport, 16, Duration::from_millis(500));
        lines.push(format!(
            "with PACKET_QDISC_BYPASS: send {:?}, {} segments arrived",
            sent.map_err(|e| e.to_string()),
            got.len()
        ));
        // A super-frame whose payload fits one segment but whose TCP
        // options and payload together do not: virtio_net_hdr_to_skb
        // counts the options as payload, tcp_gso_segment does not.
        // Reported, not asserted.
        let mut c = cases().remove(0);
        (c.sport, c.payload) = (39_997, 1440);
        let (frame, offload) = build(&c);
        let sent = send(&tx, &frame, &offload);
        let got = collect(&rx, c.sport, 16, Duration::from_millis(500));
        let mut ours = Vec::new();
        segment(&frame, &offload, None, &mut scratch, |s| ours.push(s.to_vec())).unwrap();
        lines.push(format!(
            "payload 1440 + 12 option bytes, mss 1448: send {:?}, {} frames arrived, identical to xconnect's single frame: {}",
            sent.map_err(|e| e.to_string()),
            got.len(),
            got.len() == 1 && got[0].frame == ours[0]
        ));
        // With transmit checksumming on (a veth's default) the kernel
        // leaves the segments CHECKSUM_PARTIAL: reported, not asserted.
        let mut c = cases().remove(0);
        c.sport = 39_998;
        let (frame, offload) = build(&c);
        let on = run(&format!("ip netns exec {name} ethtool -K xa tx on"));
        let sent = send(&tx, &frame, &offload);
        let got = collect(&rx, c.sport, 16, Duration::from_millis(500));
        let mut ours = Vec::new();
        segment(&frame, &offload, None, &mut scratch, |s| ours.push(s.to_vec())).unwrap();
        let partial = got.iter().filter(|r| r.csum_not_ready).count();
        // Only the TCP checksum field may differ from xconnect's segments.
        let l4 = 14 + 20;
        let same_but_csum = got.len() == ours.len()
            && got.iter().zip(&ours).all(|(t, o)| {
                t.frame.len() == o.len()
                    && t.frame[..l4 + 16] == o[..l4 + 16]
                    && t.frame[l4 + 18..] == o[l4 + 18..]
            });
        lines.push(format!(
            "with tx checksumming on ({}): send {:?}, {} segments arrived, {} marked CHECKSUM_PARTIAL, identical but for the TCP checksum field: {}",
            if on.is_ok() { "set" } else { "could not set" },
            sent.map_err(|e| e.to_string()),
            got.len(),
            partial,
            same_but_csum
        ));
        (lines, failures, frames, bytes)
    });
    let (lines, failures, frames, bytes) = report;
    for l in &lines {
        println!("{l}");
    }
    println!("compared {frames} segments, {bytes} bytes, byte for byte with the kernel's");
    assert!(
        failures.is_empty(),
        "differences from the kernel:\n{}",
        failures.join("\n")
    );
}
