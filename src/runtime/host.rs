//! Host interfaces (the linux-cp model): once the TAP standing for a link
//! of an `l3` peering is created (it is opened as a port with the TAP
//! backend), give it this forwarder's MAC and MTU on that link, move it
//! into its network namespace if one is named, bring it up and put this
//! forwarder's addresses on it — so a routing daemon on the host (FRR)
//! speaks BGP and BFD over it as if it owned the link.
//!
//! Contract:
//! - Everything goes through rtnetlink requests (decoded and built with
//!   `netlink-packet-route`), each acknowledged by the kernel within a
//!   time bound; an error names the interface, the step and the kernel's
//!   error (e.g. a missing namespace, no privilege).
//! - IPv6 addresses are added without duplicate address detection
//!   (`IFA_F_NODAD`): the address is the forwarder's own, and a session
//!   should not wait a second for DAD.
//! - A namespace is entered only by a short-lived thread of its own
//!   (`setns` changes the calling thread only); the forwarder's threads
//!   stay where they are. The TAP's file descriptor keeps working after
//!   the move.

use crate::config::HostSetup;
use anyhow::Context;
use ipnet::IpNet;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// How long the kernel may take to acknowledge one request.
const ACK_WAIT: Duration = Duration::from_secs(2);

/// Set up host interface `name` as `setup` says (see the module contract).
pub fn set_up(name: &str, setup: &HostSetup) -> anyhow::Result<()> {
    let index = ifindex(name).with_context(|| format!("host interface {name}: no such TAP"))?;
    let mut nl = Rtnl::open()?;
    let mut link = LinkMessage::default();
    link.header.index = index;
    link.attributes = vec![
        LinkAttribute::Address(setup.mac.to_vec()),
        LinkAttribute::Mtu(setup.mtu as u32),
    ];
    nl.request(RouteNetlinkMessage::SetLink(link), 0)
        .with_context(|| format!("host interface {name}: setting its MAC and MTU"))?;
    match &setup.netns {
        None => configure(&mut nl, name, index, &setup.addrs),
        Some(ns) => {
            let path = format!("/var/run/netns/{ns}");
            let fd = File::open(&path).with_context(|| {
                format!(
                    "host interface {name}: network namespace {ns:?} ({path}) does not exist; \
                     create it first (ip netns add {ns})"
                )
            })?;
            let mut mv = LinkMessage::default();
            mv.header.index = index;
            mv.attributes = vec![LinkAttribute::NetNsFd(fd.as_raw_fd())];
            nl.request(RouteNetlinkMessage::SetLink(mv), 0)
                .with_context(|| format!("host interface {name}: moving it into {ns:?}"))?;
            let name = name.to_string();
            let addrs = setup.addrs.clone();
            let ns = ns.clone();
            std::thread::Builder::new()
                .name(format!("xc-host-{name}"))
                .spawn(move || -> anyhow::Result<()> {
                    enter(&fd).with_context(|| format!("entering network namespace {ns:?}"))?;
                    let index = ifindex(&name)
                        .with_context(|| format!("host interface {name}: not found in {ns:?}"))?;
                    let mut nl = Rtnl::open()?;
                    configure(&mut nl, &name, index, &addrs)
                })
                .context("starting a thread to enter the namespace")?
                .join()
                .map_err(|_| anyhow::anyhow!("host interface set-up thread panicked"))?
        }
    }
}

/// Bring interface `index` up and add `addrs`, in the namespace `nl` is in
/// (the calling thread's).
fn configure(nl: &mut Rtnl, name: &str, index: u32, addrs: &[IpNet]) -> anyhow::Result<()> {
    if addrs.iter().any(|a| matches!(a, IpNet::V6(_))) {
        // A namespace may turn IPv6 off for new interfaces
        // (net.ipv6.conf.default.disable_ipv6, as forwarder labs do): the
        // host interface needs it for its IPv6 sessions. /proc/sys/net is
        // the namespace of the thread that opens it.
        let knob = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
        std::fs::write(&knob, "0")
            .with_context(|| format!("host interface {name}: turning IPv6 on ({knob})"))?;
    }
    let mut up = LinkMessage::default();
    up.header.index = index;
    up.header.flags = LinkFlags::Up;
    up.header.change_mask = LinkFlags::Up;
    nl.request(RouteNetlinkMessage::SetLink(up), 0)
        .with_context(|| format!("host interface {name}: bringing it up"))?;
    for a in addrs {
        let mut m = AddressMessage::default();
        m.header.index = index;
        m.header.prefix_len = a.prefix_len();
        m.header.scope = AddressScope::Universe;
        m.header.family = match a {
            IpNet::V4(_) => AddressFamily::Inet,
            IpNet::V6(_) => AddressFamily::Inet6,
        };
        m.attributes = vec![
            AddressAttribute::Local(a.addr()),
            AddressAttribute::Address(a.addr()),
        ];
        if let IpNet::V6(_) = a {
            m.header.flags = AddressHeaderFlags::Nodad;
            m.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        nl.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .with_context(|| format!("host interface {name}: adding address {a}"))?;
    }
    Ok(())
}

/// Move the calling thread into the network namespace of `fd`.
fn enter(fd: &File) -> io::Result<()> {
    // SAFETY: `fd` is an open file of /var/run/netns (a network namespace
    // reference) for the duration of the call; setns only changes the
    // calling thread's namespace, which is a thread of its own that exits
    // after configuring the interface.
    let r = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The ifindex of interface `name` in the calling thread's namespace.
fn ifindex(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(i)
    }
}

/// An rtnetlink socket for acknowledged requests.
struct Rtnl {
    sock: Socket,
    seq: u32,
}

impl Rtnl {
    fn open() -> anyhow::Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE).context("opening an rtnetlink socket")?;
        sock.bind_auto().context("binding an rtnetlink socket")?;
        super::netlink::set_timeout(&sock, Duration::from_millis(200))
            .context("setting the rtnetlink socket's timeout")?;
        Ok(Rtnl { sock, seq: 0 })
    }

    /// Send `msg` with `flags` (besides request and ack) and wait for its
    /// acknowledgement.
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        m.finalize();
        let mut bytes = vec![0u8; m.buffer_len()];
        m.serialize(&mut bytes);
        self.sock.send_to(&bytes, &SocketAddr::new(0, 0), 0)?;
        let end = Instant::now() + ACK_WAIT;
        let mut buf: Vec<u8> = Vec::with_capacity(8192);
        while Instant::now() < end {
            buf.clear();
            match self.sock.recv_from(&mut buf, 0) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) => continue,
                Err(e) => return Err(e),
            }
            let mut at = 0;
            while at < buf.len() {
                let Some(rest) = buf.get(at..) else { break };
                let Ok(reply) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest) else {
                    break;
                };
                let len = reply.header.length as usize;
                if reply.header.sequence_number == self.seq {
                    if let NetlinkPayload::Error(e) = reply.payload {
                        return match e.code {
                            None => Ok(()),
                            Some(c) => Err(io::Error::from_raw_os_error(-c.get())),
                        };
                    }
                }
                if len == 0 {
                    break;
                }
                at += (len + 3) & !3;
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the kernel did not acknowledge the request",
        ))
    }
}
