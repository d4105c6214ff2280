//! Small safe wrappers over the Linux calls the kernel backends need:
//! socket options, interface queries by name, a shared memory mapping, and
//! the error messages a person can act on (privilege, missing interface).
//!
//! Contract: every `unsafe` block of the I/O layer outside the ring walker
//! lives here, each with a `// SAFETY:` line; the functions take and return
//! plain Rust values (byte slices, integers, [`OwnedFd`]) and report every
//! failure as an [`io::Error`] instead of panicking.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

/// `IFNAMSIZ`: interface names are at most 15 bytes plus the NUL.
pub const IFNAMSIZ: usize = 16;

/// The NUL-padded `ifr_name` of an interface, or an `InvalidInput` error
/// naming the problem (empty, too long, NUL inside).
pub fn ifname(name: &str) -> io::Result<[libc::c_char; IFNAMSIZ]> {
    if name.is_empty() || name.len() >= IFNAMSIZ || name.bytes().any(|b| b == 0 || b == b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a valid interface name (1-15 bytes, no '/' or NUL)"),
        ));
    }
    let mut out = [0 as libc::c_char; IFNAMSIZ];
    for (o, b) in out.iter_mut().zip(name.bytes()) {
        *o = b as libc::c_char;
    }
    Ok(out)
}

/// The kernel index of interface `name` in this network namespace.
pub fn if_index(name: &str) -> io::Result<u32> {
    ifname(name)?;
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "interface {name} does not exist in this network namespace \
                 (create it, or run xconnect in the namespace that holds it: `ip netns exec NS xconnect run …`)"
            ),
        ));
    }
    Ok(idx)
}

/// Interface flags (`IFF_UP`, `IFF_RUNNING`, …) and MTU of `name`, queried
/// through any socket `fd`.
pub fn if_flags_mtu(fd: RawFd, name: &str) -> io::Result<(u32, u32)> {
    let mut req = IfReq::new(name)?;
    // SAFETY: `req` is a properly sized, initialised `ifreq`; SIOCGIFFLAGS
    // writes only its `ifr_flags` member.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req.0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just filled `ifr_flags`, a plain integer.
    let flags = unsafe { req.0.ifr_ifru.ifru_flags } as u16 as u32;
    let mut req = IfReq::new(name)?;
    // SAFETY: as above; SIOCGIFMTU writes `ifr_mtu`.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFMTU, &mut req.0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just filled `ifr_mtu`, a plain integer.
    let mtu = unsafe { req.0.ifr_ifru.ifru_mtu }.max(0) as u32;
    Ok((flags, mtu))
}

/// An `ifreq` for the ioctls by interface name.
pub struct IfReq(pub libc::ifreq);

impl IfReq {
    /// A zeroed request for interface `name`.
    pub fn new(name: &str) -> io::Result<IfReq> {
        // SAFETY: `ifreq` is plain old data (integers, arrays and a union of
        // those); all-zero bytes are a valid value.
        let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
        r.ifr_name = ifname(name)?;
        Ok(IfReq(r))
    }
}

/// Set socket option `name` at `level` to `value`.
pub fn setsockopt<T: Copy>(fd: RawFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: the pointer and length describe `value`, a live `Copy` value
    // that the kernel only reads.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Give socket `fd` a receive timeout (`SO_RCVTIMEO`; at least 1 µs, as
/// zero would mean none).
pub fn set_recv_timeout(fd: RawFd, wait: std::time::Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: wait.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_usec: wait.subsec_micros().max(1) as libc::suseconds_t,
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)
}

/// Read socket option `name` at `level` into a `T` (plain old data only:
/// integers and structs of integers, for which any bytes are valid).
pub fn getsockopt<T: Copy + Default>(fd: RawFd, level: i32, name: i32) -> io::Result<T> {
    let mut value = T::default();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: the pointer and length describe `value`, which the kernel
    // writes at most `len` bytes of; `T` is plain data (see the doc).
    let r = unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut T).cast(), &mut len) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(value)
    }
}

/// A new socket, close-on-exec and non-blocking.
pub fn socket(domain: i32, ty: i32, protocol: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments.
    let fd = unsafe {
        libc::socket(
            domain,
            ty | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            protocol,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Ask the kernel to transmit the frames queued in the socket's
/// `PACKET_TX_RING` (`send(fd, NULL, 0, MSG_DONTWAIT)`); returns the bytes
/// it sent. `EINTR` is retried.
pub fn kick_tx_ring(fd: RawFd) -> io::Result<usize> {
    loop {
        // SAFETY: a zero-length send with a null buffer: the kernel reads
        // no user memory through the pointer (the frames are in the ring).
        let r = unsafe { libc::send(fd, std::ptr::null(), 0, libc::MSG_DONTWAIT) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Send one frame gathered from `parts` on the bound socket `fd`
/// (`sendmsg`, `MSG_DONTWAIT`); returns the bytes the kernel took.
pub fn send_gathered(fd: RawFd, parts: &[&[u8]]) -> io::Result<usize> {
    const MAX: usize = 4;
    // SAFETY: iovec is plain data; all-zero is valid.
    let mut iov: [libc::iovec; MAX] = unsafe { std::mem::zeroed() };
    let n = parts.len().min(MAX);
    for (v, p) in iov.iter_mut().zip(&parts[..n]) {
        v.iov_base = p.as_ptr() as *mut libc::c_void;
        v.iov_len = p.len();
    }
    // SAFETY: msghdr is plain data; all-zero is valid (no address, no
    // control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = n as _;
    loop {
        // SAFETY: `msg` points at `n` initialised iovecs, each describing a
        // slice borrowed for the duration of this call; the kernel only
        // reads them.
        let r = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Take and clear the pending socket error (`SO_ERROR`), e.g. `ENETDOWN`
/// after the interface went down, so that poll stops reporting it.
pub fn take_socket_error(fd: RawFd) -> Option<io::Error> {
    match getsockopt::<libc::c_int>(fd, libc::SOL_SOCKET, libc::SO_ERROR) {
        Ok(0) => None,
        Ok(e) => Some(io::Error::from_raw_os_error(e)),
        Err(e) => Some(e),
    }
}

/// A shared read-write mapping of a file descriptor (a packet ring),
/// unmapped on drop.
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone; moving it to another
// thread moves that ownership (the memory is process-wide).
unsafe impl Send for Mmap {}

impl Mmap {
    /// Map `len` bytes of `fd` shared, readable and writable.
    pub fn shared(fd: &OwnedFd, len: usize) -> io::Result<Mmap> {
        if len == 0 {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // SAFETY: a fresh mapping chosen by the kernel (no fixed address),
        // so no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        let p = if p == libc::MAP_FAILED {
            // MAP_LOCKED fails under a low RLIMIT_MEMLOCK: retry without it.
            // SAFETY: as above.
            unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_POPULATE,
                    fd.as_raw_fd(),
                    0,
                )
            }
        } else {
            p
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave NULL"))?;
        Ok(Mmap { ptr, len })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the mapping is empty (never, once created).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The base pointer (for the ring walker, which bounds every access by
    /// [`Mmap::len`]).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping created in `shared`,
        // and no reference into it outlives `self` (the ring borrows it).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// The path of this executable, for the `setcap` hint.
pub fn self_path() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "xconnect".into())
}

/// Turn `EPERM`/`EACCES` from opening `what` on `interface` into an error
/// that names the capability and how to grant it; other errors get the
/// interface and operation prefixed.
pub fn explain(e: io::Error, interface: &str, what: &str, cap: &str) -> io::Error {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{interface}: {what} needs {cap}: run as root or \
                 `setcap cap_net_raw,cap_net_admin+ep {}`",
                self_path()
            ),
        ),
        _ => io::Error::new(e.kind(), format!("{interface}: {what}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_checked() {
        assert!(ifname("xc-pe-tra").is_ok());
        assert!(ifname("").is_err());
        assert!(ifname("sixteen-bytes-xx").is_err());
        assert!(ifname("a/b").is_err());
        let n = ifname("lo").unwrap();
        assert_eq!(
            (n[0], n[1], n[2]),
            (b'l' as libc::c_char, b'o' as libc::c_char, 0)
        );
    }

    #[test]
    fn loopback_is_found_and_missing_is_named() {
        assert!(if_index("lo").is_ok_and(|i| i > 0));
        let e = if_index("xc-nonexistent").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("xc-nonexistent"), "{e}");
    }

    #[test]
    fn socket_options_round_trip() {
        let s = socket(libc::AF_INET, libc::SOCK_DGRAM, 0).unwrap();
        setsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, &65536i32).unwrap();
        let v: i32 = getsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF).unwrap();
        assert!(v >= 65536, "{v}");
        assert!(take_socket_error(s.as_raw_fd()).is_none());
        let (flags, mtu) = if_flags_mtu(s.as_raw_fd(), "lo").unwrap();
        assert!(flags & libc::IFF_UP as u32 != 0 || mtu > 0);
    }

    #[test]
    fn kicking_a_socket_without_ring_is_an_error_not_a_crash() {
        // A connected UDP socket accepts an empty datagram; an unconnected
        // one refuses it: either way the call returns instead of crashing.
        let s = socket(libc::AF_INET, libc::SOCK_DGRAM, 0).unwrap();
        assert!(kick_tx_ring(s.as_raw_fd()).is_err());
        assert!(kick_tx_ring(-1).is_err());
    }

    #[test]
    fn mapping_is_usable_and_unmapped() {
        // SAFETY (test): memfd_create with a valid C string.
        let fd = unsafe { libc::memfd_create(c"xc-test".as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY (test): `fd` is fresh and owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY (test): resize the memfd we own.
        assert_eq!(unsafe { libc::ftruncate(fd.as_raw_fd(), 4096) }, 0);
        let m = Mmap::shared(&fd, 4096).unwrap();
        assert_eq!(m.len(), 4096);
        assert!(!m.is_empty());
        assert!(Mmap::shared(&fd, 0).is_err());
    }

    #[test]
    fn permission_errors_say_what_to_do() {
        let e = explain(
            io::Error::from_raw_os_error(libc::EPERM),
            "xc-pe-tra",
            "opening an AF_PACKET socket",
            "CAP_NET_RAW",
        );
        let s = e.to_string();
        assert!(
            s.contains("xc-pe-tra") && s.contains("CAP_NET_RAW") && s.contains("setcap"),
            "{s}"
        );
        let e = explain(
            io::Error::from_raw_os_error(libc::ENODEV),
            "x",
            "bind",
            "CAP_NET_RAW",
        );
        assert!(e.to_string().starts_with("x: bind: "));
    }
}
