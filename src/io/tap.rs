//! The TAP backend: a Linux TAP device (`IFF_TAP | IFF_NO_PI`) that
//! xconnect creates, or attaches to if it exists, read and written through
//! a non-blocking file descriptor that the worker's `mio` poll watches.
//!
//! Contract: frames keep every VLAN tag in their bytes in both directions
//! (a TAP never strips tags). One `read`/`write` system call per frame —
//! TAP has no batch interface. With several workers the device is opened
//! multi-queue (`IFF_MULTI_QUEUE`), one queue per worker; an existing
//! single-queue TAP can then not be attached, and the error says so.
//! A TAP created here disappears when xconnect exits; it may be moved to
//! another network namespace (`ip link set NAME netns NS`) while xconnect
//! holds it, which makes it a ready-made access port for a host there.

use super::sys::{self, IfReq};
use super::{IoStats, Port};
use crate::frame::{Batch, Outgoing};
use crate::wire::packet::MAX_FRAME;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

/// A TAP queue.
pub struct TapPort {
    file: File,
    interface: String,
    stats: IoStats,
}

impl TapPort {
    /// Create or attach TAP `interface`; `multi_queue` for one queue per
    /// worker.
    pub fn open(interface: &str, multi_queue: bool) -> io::Result<TapPort> {
        let mut req = IfReq::new(interface)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => io::Error::new(
                    e.kind(),
                    format!(
                        "{interface}: /dev/net/tun is missing: load the tun module (`modprobe tun`)"
                    ),
                ),
                _ => sys::explain(e, interface, "opening /dev/net/tun", "CAP_NET_ADMIN"),
            })?;
        let mut flags = libc::IFF_TAP | libc::IFF_NO_PI;
        if multi_queue {
            flags |= libc::IFF_MULTI_QUEUE;
        }
        req.0.ifr_ifru.ifru_flags = flags as libc::c_short;
        // SAFETY: `req` is an initialised ifreq naming the device; TUNSETIFF
        // reads it and writes back the final name into it.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req.0) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EINVAL) => io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{interface}: cannot attach to it as a TAP{}: it exists as another \
                         kind of device or with other flags{}",
                        if multi_queue { " queue" } else { "" },
                        if multi_queue {
                            " (several workers need `ip tuntap add dev NAME mode tap multi_queue`, or run with --workers 1)"
                        } else {
                            ""
                        }
                    ),
                ),
                Some(libc::EBUSY) => io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{interface}: the TAP is already attached by another process"),
                ),
                _ => sys::explain(e, interface, "creating the TAP device", "CAP_NET_ADMIN"),
            });
        }
        Ok(TapPort {
            file,
            interface: interface.to_string(),
            stats: IoStats::default(),
        })
    }

    /// The interface name.
    pub fn interface(&self) -> &str {
        &self.interface
    }
}

impl super::Backend for TapPort {
    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize> {
        let mut n = 0;
        while let Some(buf) = batch.next_buf() {
            let area = buf.receive_area();
            match self.file.read(area) {
                Ok(0) => break,
                Ok(len) if len > MAX_FRAME => batch.count_oversize(len),
                Ok(len) => {
                    buf.set_received(len);
                    batch.commit();
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // EIO/EBADFD while the device is being moved or is down:
                // nothing to read now.
                Err(_) => break,
            }
        }
        Ok(n)
    }

    fn send(&mut self, out: Outgoing<'_>) -> io::Result<usize> {
        let mut sent = 0;
        for f in out.frames() {
            match self.file.write(f) {
                Ok(_) => sent += 1,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => match self.file.write(f) {
                    Ok(_) => sent += 1,
                    Err(_) => break,
                },
                // EIO: the interface is down; EAGAIN: the queue is full.
                Err(_) => break,
            }
        }
        Ok(sent)
    }
}

impl Port for TapPort {
    fn register(&mut self, registry: &mio::Registry, token: mio::Token) -> io::Result<()> {
        let raw = self.file.as_raw_fd();
        registry.register(
            &mut mio::unix::SourceFd(&raw),
            token,
            mio::Interest::READABLE,
        )
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        let raw = self.file.as_raw_fd();
        registry.deregister(&mut mio::unix::SourceFd(&raw))
    }

    fn take_stats(&mut self) -> IoStats {
        std::mem::take(&mut self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Backend;

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn bad_names_are_refused_before_any_syscall() {
        let e = TapPort::open("this-name-is-too-long", false).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    /// Create a TAP, check it exists while held and is gone after; a
    /// frame written by us is sent by the kernel-side interface, which is
    /// down, so the write fails and is reported as not accepted.
    #[test]
    fn create_attach_and_remove() {
        if !is_root() || !std::path::Path::new("/dev/net/tun").exists() {
            eprintln!("skipping create_attach_and_remove: needs root and /dev/net/tun");
            return;
        }
        let name = format!("xct{}", std::process::id() % 100_000);
        let mut tap = TapPort::open(&name, false).unwrap();
        assert_eq!(tap.interface(), name);
        assert!(sys::if_index(&name).is_ok());
        let mut batch = Batch::new();
        assert_eq!(tap.recv(&mut batch).unwrap(), 0);
        assert!(batch.push(&[0u8; 60]));
        batch.set_verdict(0, crate::frame::Verdict::Forward(0));
        let out = Outgoing::scan(0, &batch);
        assert_eq!(tap.send(out).unwrap(), 0, "interface down: EIO");
        assert_eq!(tap.take_stats(), IoStats::default());
        drop(tap);
        assert!(sys::if_index(&name).is_err());
    }
}
