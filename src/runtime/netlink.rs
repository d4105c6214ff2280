//! rtnetlink for the link monitor: the link events of the network
//! namespace xconnect runs in (multicast group `RTMGRP_LINK`) and a full
//! `RTM_GETLINK` dump, decoded with `netlink-packet-route` over
//! `netlink-sys` blocking sockets.
//!
//! Contract:
//! - [`decode`] turns one datagram into its link messages
//!   (`RTM_NEWLINK`, `RTM_DELLINK`), the end of a dump, errors and
//!   overruns; anything else is [`Decoded::Other`]. It never panics and
//!   never reads past a message's length; a link message whose attributes
//!   do not all decode keeps its header and the attributes that do (one
//!   unknown attribute format must not hide a link from the monitor).
//! - [`Events`] receives the link events, waiting at most a given time. A
//!   receive buffer overrun (`ENOBUFS`: the kernel dropped events) or a
//!   datagram cut short is reported as [`Recv::Overrun`]: the caller must
//!   read every link again with [`dump`], as its view may be stale.
//! - [`dump`] reads every link of the namespace on a socket of its own,
//!   again when the kernel marks the dump interrupted (links changed
//!   meanwhile), within a time bound.

use netlink_packet_core::{
    Emitable, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator,
    ParseableParametrized, NLMSG_DONE, NLMSG_OVERRUN, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkHeader, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// `RTMGRP_LINK`: the multicast group of link events.
pub const RTMGRP_LINK: u32 = 1;
/// `RTM_NEWLINK`.
const RTM_NEWLINK: u16 = 16;
/// `RTM_DELLINK`.
const RTM_DELLINK: u16 = 17;
/// Bytes of a netlink message header.
const NLMSG_HDRLEN: usize = 16;
/// Receive buffer asked for the event socket (the kernel doubles it).
const EVENT_RCVBUF: usize = 1 << 20;
/// Room for one datagram (the kernel sends at most a few pages at once).
const DATAGRAM: usize = 1 << 16;

/// What one netlink message says, as far as links go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// `RTM_NEWLINK`: an interface appeared or changed.
    NewLink(LinkMessage),
    /// `RTM_DELLINK`: an interface left the namespace (deleted or moved).
    DelLink(LinkMessage),
    /// `NLMSG_DONE`: the end of a dump.
    Done,
    /// `NLMSG_ERROR` with this (negative errno) code; 0 is an ACK.
    Error(i32),
    /// `NLMSG_OVERRUN`.
    Overrun,
    /// Anything else (other message types, an undecodable message).
    Other,
}

/// Each message of `datagram` with its header flags (see the module
/// contract).
pub fn decode(datagram: &[u8]) -> Vec<(u16, Decoded)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(rest) = datagram.get(at..) {
        let Ok(buf) = NetlinkBuffer::new_checked(rest) else {
            break;
        };
        let len = buf.length() as usize;
        let one = &rest[..len];
        let flags = buf.flags();
        let what = match NetlinkMessage::<RouteNetlinkMessage>::deserialize(one) {
            Ok(m) => match m.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                    Decoded::NewLink(l)
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l)) => {
                    Decoded::DelLink(l)
                }
                NetlinkPayload::Done(_) => Decoded::Done,
                NetlinkPayload::Error(e) => Decoded::Error(e.raw_code()),
                NetlinkPayload::Overrun(_) => Decoded::Overrun,
                _ => Decoded::Other,
            },
            Err(_) => decode_leniently(buf.message_type(), one.get(NLMSG_HDRLEN..).unwrap_or(&[])),
        };
        out.push((flags, what));
        // Messages are 4-byte aligned; `len` ≥ 16, so this advances.
        at = match at.checked_add(len.next_multiple_of(4)) {
            Some(next) => next,
            None => break,
        };
    }
    out
}

/// A message the crate did not decode as a whole: a link message keeps
/// its header and the attributes that decode; the rest is named by type.
fn decode_leniently(message_type: u16, payload: &[u8]) -> Decoded {
    match message_type {
        RTM_NEWLINK | RTM_DELLINK => {
            let Ok(header) = LinkHeader::parse(payload) else {
                return Decoded::Other;
            };
            let mut m = LinkMessage::default();
            let nlas = payload.get(header.buffer_len()..).unwrap_or(&[]);
            for nla in NlasIterator::new(nlas) {
                let Ok(nla) = nla else { break };
                if let Ok(a) = LinkAttribute::parse_with_param(&nla, header.interface_family) {
                    m.attributes.push(a);
                }
            }
            m.header = header;
            if message_type == RTM_NEWLINK {
                Decoded::NewLink(m)
            } else {
                Decoded::DelLink(m)
            }
        }
        NLMSG_DONE => Decoded::Done,
        NLMSG_OVERRUN => Decoded::Overrun,
        // NLMSG_ERROR the crate could not read, and everything else.
        _ => Decoded::Other,
    }
}

/// What [`Events::recv`] got.
#[derive(Debug)]
pub enum Recv {
    /// Messages (possibly none that concern links).
    Messages(Vec<(u16, Decoded)>),
    /// Nothing within the wait.
    Idle,
    /// The kernel dropped events (`ENOBUFS`), or a datagram was cut
    /// short: read every link again.
    Overrun,
}

/// A socket subscribed to the link events of this network namespace.
pub struct Events {
    sock: Socket,
    buf: Vec<u8>,
    wait: Option<Duration>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("fd", &self.sock.as_raw_fd())
            .finish()
    }
}

impl Events {
    /// Subscribe to `RTMGRP_LINK`.
    pub fn open() -> io::Result<Events> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, RTMGRP_LINK))?;
        // A larger buffer makes an overrun rarer; a refusal is not fatal
        // (overruns are handled).
        let _ = sock.set_rx_buf_sz(EVENT_RCVBUF);
        Ok(Events {
            sock,
            buf: Vec::with_capacity(DATAGRAM),
            wait: None,
        })
    }

    /// Receive one datagram of events, waiting at most `wait` (zero: do
    /// not wait).
    pub fn recv(&mut self, wait: Duration) -> io::Result<Recv> {
        let flags = if wait.is_zero() {
            libc::MSG_DONTWAIT
        } else {
            if self.wait != Some(wait) {
                set_timeout(&self.sock, wait)?;
                self.wait = Some(wait);
            }
            0
        };
        self.buf.clear();
        match self.sock.recv_from(&mut self.buf, flags | libc::MSG_TRUNC) {
            Ok((n, _)) if n > self.buf.len() => Ok(Recv::Overrun),
            Ok(_) => Ok(Recv::Messages(decode(&self.buf))),
            Err(e) => match e.raw_os_error() {
                Some(libc::ENOBUFS) => Ok(Recv::Overrun),
                Some(libc::EAGAIN | libc::EINTR) => Ok(Recv::Idle),
                _ => Err(e),
            },
        }
    }
}

/// Give `sock` a receive timeout.
pub(crate) fn set_timeout(sock: &Socket, wait: Duration) -> io::Result<()> {
    crate::io::sys::set_recv_timeout(sock.as_raw_fd(), wait)
}

/// Every link of this network namespace (see the module contract):
/// `RTM_NEWLINK` messages of an `RTM_GETLINK` dump, at most `limit` long.
pub fn dump(limit: Duration) -> io::Result<Vec<LinkMessage>> {
    let end = Instant::now() + limit;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match dump_once(end, attempt)? {
            Some(links) => return Ok(links),
            // Interrupted: the links changed during the dump; again.
            None if Instant::now() < end => continue,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the link dump kept being interrupted",
                ))
            }
        }
    }
}

/// One dump; `None` if the kernel marked it interrupted.
fn dump_once(end: Instant, seq: u32) -> io::Result<Option<Vec<LinkMessage>>> {
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind_auto()?;
    set_timeout(&sock, Duration::from_millis(200))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut req = NetlinkMessage::new(
        header,
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetLink(LinkMessage::default())),
    );
    req.finalize();
    let mut bytes = vec![0u8; req.buffer_len()];
    req.serialize(&mut bytes);
    sock.send_to(&bytes, &SocketAddr::new(0, 0), 0)?;
    let mut links = Vec::new();
    let mut interrupted = false;
    let mut buf: Vec<u8> = Vec::with_capacity(DATAGRAM);
    while Instant::now() < end {
        buf.clear();
        let n = match sock.recv_from(&mut buf, libc::MSG_TRUNC) {
            Ok((n, _)) => n,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) => continue,
            Err(e) => return Err(e),
        };
        if n > buf.len() {
            return Err(io::Error::other("a link dump datagram was cut short"));
        }
        for (flags, m) in decode(&buf) {
            interrupted |= flags & NLM_F_DUMP_INTR != 0;
            match m {
                Decoded::NewLink(l) => links.push(l),
                Decoded::Done => return Ok((!interrupted).then_some(links)),
                Decoded::Error(code) if code < 0 => {
                    return Err(io::Error::from_raw_os_error(-code))
                }
                _ => {}
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "the link dump did not finish in time",
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use netlink_packet_route::link::{LinkFlags, State};

    /// A link message as the kernel would send it.
    pub fn link(index: u32, name: &str, flags: LinkFlags, state: State) -> LinkMessage {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = flags;
        m.attributes = vec![
            LinkAttribute::IfName(name.into()),
            LinkAttribute::Mtu(1508),
            LinkAttribute::OperState(state),
        ];
        m
    }

    /// `msg` as a netlink message of its own, with `flags`.
    pub fn bytes(msg: RouteNetlinkMessage, flags: u16) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        m.finalize();
        let mut b = vec![0u8; m.buffer_len()];
        m.serialize(&mut b);
        b
    }

    fn up() -> LinkFlags {
        LinkFlags::Up | LinkFlags::Running | LinkFlags::LowerUp
    }

    #[test]
    fn a_datagram_of_several_messages() {
        let a = link(7, "xc-pe-tra", up(), State::Up);
        let b = link(8, "xc-pe-trb", LinkFlags::empty(), State::Down);
        let mut d = bytes(RouteNetlinkMessage::NewLink(a.clone()), NLM_F_DUMP_INTR);
        d.extend(bytes(RouteNetlinkMessage::DelLink(b.clone()), 0));
        let mut done = NetlinkMessage::<RouteNetlinkMessage>::new(
            NetlinkHeader::default(),
            NetlinkPayload::Done(Default::default()),
        );
        done.finalize();
        let mut db = vec![0u8; done.buffer_len()];
        done.serialize(&mut db);
        d.extend(db);
        let got = decode(&d);
        assert_eq!(
            got,
            vec![
                (NLM_F_DUMP_INTR, Decoded::NewLink(a)),
                (0, Decoded::DelLink(b)),
                (0, Decoded::Done)
            ]
        );
    }

    #[test]
    fn other_messages_are_named_other() {
        use netlink_packet_route::address::AddressMessage;
        let d = bytes(
            RouteNetlinkMessage::NewAddress(AddressMessage::default()),
            0,
        );
        assert_eq!(decode(&d), vec![(0, Decoded::Other)]);
        assert!(decode(&[]).is_empty());
        assert!(decode(&[1, 2, 3]).is_empty());
    }

    #[test]
    fn a_link_message_with_a_bad_attribute_keeps_the_rest() {
        let a = link(7, "xc-pe-tra", up(), State::Up);
        let mut d = bytes(RouteNetlinkMessage::NewLink(a), 0);
        // Append an IFLA_MTU (4) attribute with a 1-byte value: the crate
        // refuses the whole message.
        d.extend_from_slice(&[5, 0, 4, 0, 9, 0, 0, 0]);
        let len = d.len() as u32;
        d[..4].copy_from_slice(&len.to_ne_bytes());
        assert!(NetlinkMessage::<RouteNetlinkMessage>::deserialize(&d).is_err());
        match &decode(&d)[..] {
            [(0, Decoded::NewLink(m))] => {
                assert_eq!(m.header.index, 7);
                assert!(m
                    .attributes
                    .contains(&LinkAttribute::IfName("xc-pe-tra".into())));
                assert!(m.attributes.contains(&LinkAttribute::OperState(State::Up)));
            }
            other => panic!("{other:?}"),
        }
    }

    proptest::proptest! {
        /// Any bytes, and any cut or corruption of a real datagram, decode
        /// without a panic.
        #[test]
        fn decoding_never_panics(
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            cut in 0usize..400,
            flip in 0usize..400,
            byte in proptest::prelude::any::<u8>(),
        ) {
            let _ = decode(&junk);
            let mut d = bytes(
                RouteNetlinkMessage::NewLink(link(3, "xc-a", up(), State::Up)),
                0,
            );
            d.extend(bytes(
                RouteNetlinkMessage::DelLink(link(4, "xc-b", up(), State::Unknown)),
                0,
            ));
            let n = d.len();
            if let Some(b) = d.get_mut(flip % n) {
                *b = byte;
            }
            let _ = decode(&d);
            let _ = decode(&d[..cut.min(n)]);
        }
    }

    /// The dump of this namespace lists loopback (no privilege needed).
    #[test]
    fn dump_lists_loopback() {
        let links = dump(Duration::from_secs(5)).unwrap();
        assert!(
            links
                .iter()
                .any(|l| l.attributes.contains(&LinkAttribute::IfName("lo".into()))),
            "{links:?}"
        );
    }
}
