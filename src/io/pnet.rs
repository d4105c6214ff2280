//! The pnet backend: `pnet_datalink`'s Ethernet channel — the portable
//! **slow path**.
//!
//! Contract and limits:
//! - One `poll` + `recvfrom` per received frame and one `poll` + `sendto`
//!   per transmitted frame (no rings, no batching).
//! - **No VLAN auxdata**: on Linux the kernel strips the outer VLAN tag on
//!   receive (veth, TAP) and pnet exposes no `PACKET_AUXDATA`, so a tagged
//!   frame arrives with its outer tag missing. Use pnet only for
//!   **untagged access ports**; a trunk needs `af_packet` (or `tap`).
//!   Transmit is unaffected: tags in the bytes go out as they are.
//! - The socket is created here (so it ignores its own outgoing frames and
//!   can be polled) and handed to pnet, which binds it, sets promiscuous
//!   mode and owns it from then on.
//! - With several workers each worker opens its own channel; the kernel
//!   then delivers a copy of every frame to each (no fanout in pnet's
//!   Linux channel when it is given a socket), so run pnet ports with one
//!   worker.

use super::sys;
use super::{IoStats, Port};
use crate::frame::{Batch, Outgoing};
use pnet_datalink::{self as dl, Channel, DataLinkReceiver, DataLinkSender};
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::time::Duration;

/// A pnet datalink channel on one interface.
pub struct PnetPort {
    tx: Box<dyn DataLinkSender>,
    rx: Box<dyn DataLinkReceiver>,
    fd: RawFd,
    interface: String,
    stats: IoStats,
}

impl PnetPort {
    /// Open `interface` through pnet.
    pub fn open(interface: &str) -> io::Result<PnetPort> {
        sys::if_index(interface)?;
        let iface = dl::interfaces()
            .into_iter()
            .find(|i| i.name == interface)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("interface {interface} is not listed by pnet"),
                )
            })?;
        if !iface.is_up() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("interface {interface} is down: `ip link set {interface} up`"),
            ));
        }
        let sock = sys::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            (libc::ETH_P_ALL as u16).to_be() as i32,
        )
        .map_err(|e| sys::explain(e, interface, "opening an AF_PACKET socket", "CAP_NET_RAW"))?;
        sys::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            &(1 as libc::c_int),
        )
        .map_err(|e| {
            sys::explain(
                e,
                interface,
                "setting PACKET_IGNORE_OUTGOING",
                "CAP_NET_RAW",
            )
        })?;
        // pnet owns the descriptor from here (it closes it on drop or on a
        // failed setup).
        let fd = sock.into_raw_fd();
        let config = dl::Config {
            // poll(0): next() returns TimedOut at once when nothing is queued.
            read_timeout: Some(Duration::ZERO),
            read_buffer_size: 65536,
            write_buffer_size: 65536,
            promiscuous: true,
            socket_fd: Some(fd),
            ..dl::Config::default()
        };
        match dl::channel(&iface, config)
            .map_err(|e| sys::explain(e, interface, "opening the pnet channel", "CAP_NET_RAW"))?
        {
            Channel::Ethernet(tx, rx) => Ok(PnetPort {
                tx,
                rx,
                fd,
                interface: interface.to_string(),
                stats: IoStats::default(),
            }),
            _ => Err(io::Error::other(format!(
                "{interface}: pnet returned a non-Ethernet channel"
            ))),
        }
    }

    /// The interface name.
    pub fn interface(&self) -> &str {
        &self.interface
    }
}

impl super::Backend for PnetPort {
    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize> {
        let mut n = 0;
        while !batch.is_full() {
            match self.rx.next() {
                Ok(frame) => {
                    if batch.push(frame) {
                        n += 1;
                    } else {
                        batch.count_oversize(frame.len());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // TimedOut / WouldBlock: nothing queued; other errors (the
                // interface went down) end this round too.
                Err(_) => break,
            }
        }
        Ok(n)
    }

    fn send(&mut self, out: Outgoing<'_>) -> io::Result<usize> {
        let mut sent = 0;
        for f in out.frames() {
            match self.tx.send_to(f, None) {
                Some(Ok(())) => sent += 1,
                _ => break,
            }
        }
        Ok(sent)
    }
}

impl Port for PnetPort {
    fn register(&mut self, registry: &mio::Registry, token: mio::Token) -> io::Result<()> {
        registry.register(
            &mut mio::unix::SourceFd(&self.fd),
            token,
            mio::Interest::READABLE,
        )
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        registry.deregister(&mut mio::unix::SourceFd(&self.fd))
    }

    fn take_stats(&mut self) -> IoStats {
        // struct tpacket_stats { tp_packets, tp_drops }
        if let Ok(s) =
            sys::getsockopt::<[u32; 2]>(self.fd, libc::SOL_PACKET, libc::PACKET_STATISTICS)
        {
            self.stats.kernel_drops += s[1] as u64;
        }
        std::mem::take(&mut self.stats)
    }

    fn clear_error(&mut self) {
        let _ = sys::take_socket_error(self.fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_interface_is_named() {
        let e = PnetPort::open("xc-missing1").err().unwrap();
        assert!(e.to_string().contains("xc-missing1"), "{e}");
    }
}
