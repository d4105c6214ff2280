//! The TAP backend: a Linux TAP device (`IFF_TAP | IFF_NO_PI`) that
//! xconnect creates, or attaches to if it exists, read and written through
//! a non-blocking file descriptor that the worker's `mio` poll watches.
//!
//! Contract: frames keep every VLAN tag in their bytes in both directions
//! (a TAP never strips tags). One `read`/`write` system call per frame —
//! TAP has no batch interface.
//!
//! Super-frames: the device is opened with `IFF_VNET_HDR` and
//! `TUNSETOFFLOAD` (checksum, TSO for IPv4 and IPv6, TSO with ECN, and UDP
//! segmentation for IPv4 and IPv6 where the kernel has it: Linux 6.2 and
//! later; older ones take the rest), so the kernel hands over up to 64 KiB
//! TCP and UDP super-frames with their
//! `virtio_net_hdr` in front (the host behind the TAP sends them when its
//! offloads are on, the default) and takes them back whole: no segment is
//! cut in xconnect on a TAP. A frame read with a checksum left to offload
//! but no segmentation has its checksum completed on receive; a
//! super-frame is split into headers (through the pipeline) and payload
//! (kept aside) as on an AF_PACKET port. Ordinary frames are read straight
//! into their buffer (a 3-part `readv`: header, buffer, the super-frame
//! room for what does not fit). With several workers the device is opened
//! multi-queue (`IFF_MULTI_QUEUE`), one queue per worker; an existing
//! single-queue TAP can then not be attached, and the error says so.
//! A TAP created here disappears when xconnect exits; it may be moved to
//! another network namespace (`ip link set NAME netns NS`) while xconnect
//! holds it, which makes it a ready-made access port for a host there.

use super::sys::{self, IfReq};
use super::{IoStats, Port};
use crate::frame::superframe::SUPER_HEADERS_MAX;
use crate::frame::{Batch, Outgoing};
use crate::wire::gso::{self, vnet_flags, vnet_gso};
use crate::wire::packet::MAX_FRAME;
use crate::wire::{ChecksumState, Offload, VirtioNetHdr};
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
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
        let mut flags = libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR;
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
        // The header is the legacy 10-byte one (the kernel's default,
        // said explicitly: a device attached to may have been set
        // otherwise), and the offloads that make the kernel hand over
        // super-frames and partial checksums.
        let failed =
            |what: &str| sys::explain(io::Error::last_os_error(), interface, what, "CAP_NET_ADMIN");
        let hdr_len = VirtioNetHdr::LEN as libc::c_int;
        // SAFETY: TUNSETVNETHDRSZ reads one int through the pointer, which
        // points at `hdr_len`, live for the call.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETVNETHDRSZ, &hdr_len) };
        if r < 0 {
            return Err(failed("setting the TAP's virtio header size"));
        }
        /// `TUN_F_USO4 | TUN_F_USO6` (include/uapi/linux/if_tun.h, Linux
        /// 6.2): UDP segmentation offload.
        const TUN_F_USO: libc::c_uint = 0x20 | 0x40;
        let offloads = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_TSO_ECN;
        let set_offloads = |bits: libc::c_uint| {
            // SAFETY: TUNSETOFFLOAD takes its argument by value (an
            // unsigned long of feature bits); no memory is passed.
            unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETOFFLOAD, bits as libc::c_ulong) }
        };
        let mut r = set_offloads(offloads | TUN_F_USO);
        if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
            // A kernel without UDP segmentation on TAPs.
            r = set_offloads(offloads);
        }
        if r < 0 {
            return Err(failed("setting the TAP's offloads (TUNSETOFFLOAD)"));
        }
        Ok(TapPort {
            file,
            interface: interface.to_string(),
            stats: IoStats::default(),
        })
    }

    /// Take a frame read with offload work (`h`; `len` bytes, the first
    /// [`MAX_FRAME`] of them in the slot's buffer, the rest in its
    /// super-frame room from `MAX_FRAME` on) into the batch; `false` when
    /// it is dropped.
    #[cold]
    fn receive_offloaded(batch: &mut Batch, len: usize, h: &VirtioNetHdr) -> bool {
        let Ok(offload) = Offload::from_virtio(h) else {
            return false;
        };
        let Some((buf, sf)) = batch.next_super() else {
            return false;
        };
        if !offload.is_super_frame() {
            if len > MAX_FRAME {
                return false;
            }
            buf.set_received(len);
            if let ChecksumState::Partial { start, offset } = offload.checksum {
                if gso::complete_checksum(buf.frame_mut(), start as usize, offset as usize).is_err()
                {
                    return false;
                }
            }
            batch.commit();
            return true;
        }
        // The frame's head went into the buffer: put it in front of the
        // rest, then split as a backend does.
        let head = len.min(MAX_FRAME);
        buf.set_received(head);
        sf.receive_area()[..head].copy_from_slice(buf.frame());
        match sf.split(len, offload, buf) {
            Ok(true) => batch.commit_super(),
            Ok(false) => batch.commit(),
            Err(_) => return false,
        }
        true
    }

    /// Write one frame with its virtio header (`parts` after it), retried
    /// once on EINTR.
    fn write_parts(&mut self, parts: &[IoSlice<'_>]) -> bool {
        for _ in 0..2 {
            match self.file.write_vectored(parts) {
                Ok(_) => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EIO: the interface is down; EAGAIN: the queue is full.
                Err(_) => return false,
            }
        }
        false
    }

    /// The interface name.
    pub fn interface(&self) -> &str {
        &self.interface
    }
}

impl super::Backend for TapPort {
    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize> {
        let mut n = 0;
        while let Some((buf, sf)) = batch.next_super() {
            let mut vnet = [0u8; VirtioNetHdr::LEN];
            let read = self.file.read_vectored(&mut [
                IoSliceMut::new(&mut vnet),
                IoSliceMut::new(&mut buf.receive_area()[..MAX_FRAME]),
                IoSliceMut::new(&mut sf.receive_area()[MAX_FRAME..]),
            ]);
            match read {
                Ok(0) => break,
                Ok(r) => {
                    let len = r.saturating_sub(VirtioNetHdr::LEN);
                    let h = VirtioNetHdr::parse(&vnet).unwrap_or_default();
                    let plain =
                        h.gso_type == vnet_gso::NONE && h.flags & vnet_flags::NEEDS_CSUM == 0;
                    if plain && len <= MAX_FRAME && len > 0 {
                        buf.set_received(len);
                        batch.commit();
                        n += 1;
                    } else if !plain && Self::receive_offloaded(batch, len, &h) {
                        n += 1;
                    } else {
                        batch.count_oversize(len);
                    }
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
        const PLAIN: [u8; VirtioNetHdr::LEN] = [0; VirtioNetHdr::LEN];
        let batch = out.batch();
        let mut sent = 0;
        for i in out.positions() {
            let frame = batch.buf(i).frame();
            let ok = match batch.super_frame(i) {
                None => self.write_parts(&[IoSlice::new(&PLAIN), IoSlice::new(frame)]),
                Some(sf) => {
                    let mut headers = [0u8; SUPER_HEADERS_MAX + 64];
                    let mut vnet = [0u8; VirtioNetHdr::LEN];
                    match sf.rejoin(frame, &mut headers) {
                        Ok((len, offload)) if offload.to_virtio().emit(&mut vnet).is_ok() => self
                            .write_parts(&[
                                IoSlice::new(&vnet),
                                IoSlice::new(&headers[..len]),
                                IoSlice::new(sf.payload()),
                            ]),
                        _ => false,
                    }
                }
            };
            if !ok {
                break;
            }
            sent += 1;
        }
        Ok(sent)
    }

    /// A TAP takes super-frames whole (the kernel delivers them to the
    /// host behind it, or segments them if it forwards them on).
    fn takes_super_frames(&self) -> bool {
        true
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
