//! Making sockets inside a named network namespace (`/var/run/netns/NAME`,
//! as `ip netns add` makes them): the FPM listener, the routing-table
//! follower's netlink sockets.
//!
//! Contract: [`in_netns`] enters the namespace on a short-lived thread of
//! its own (`setns(CLONE_NEWNET)` changes only the calling thread), makes
//! the socket there and returns it: the socket belongs to that
//! namespace for its whole life, while every other thread of the process
//! stays where it was. The one `unsafe` call is wrapped in `enter`.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// Where `ip netns` keeps its named namespaces.
pub const NETNS_DIR: &str = "/var/run/netns";

/// The file of namespace `name`.
pub fn path_of(name: &str) -> PathBuf {
    PathBuf::from(NETNS_DIR).join(name)
}

/// Move the calling thread into the network namespace of `ns`.
fn enter(ns: &File) -> io::Result<()> {
    // SAFETY: setns takes a file descriptor and a namespace type; the fd is
    // valid (borrowed from a live File) and CLONE_NEWNET only changes the
    // network namespace of the calling thread. No memory is touched.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Bind a TCP listener on `addr` inside namespace `name` (or here when
/// `None`).
pub fn bind_in(name: Option<&str>, addr: SocketAddr) -> io::Result<TcpListener> {
    in_netns(name, move || TcpListener::bind(addr))
}

/// Run `make` inside namespace `name` (on a short-lived thread of its
/// own; here, on the calling thread, when `None`) and return what it
/// made: a socket made there belongs to that namespace for its life.
pub fn in_netns<T: Send + 'static>(
    name: Option<&str>,
    make: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let Some(name) = name else {
        return make();
    };
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a network namespace name"),
        ));
    }
    let name = name.to_string();
    let path = path_of(&name);
    let ns = File::open(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("network namespace {name:?} ({}): {e}", path.display()),
        )
    })?;
    std::thread::Builder::new()
        .name("xc-netns".into())
        .spawn(move || {
            enter(&ns).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("entering network namespace {name:?}: {e}"),
                )
            })?;
            make()
        })?
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_and_missing_names_are_errors() {
        let a: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert!(bind_in(Some("a/b"), a).is_err());
        let e = bind_in(Some("xcf-never-made-0"), a).unwrap_err();
        assert!(e.to_string().contains("xcf-never-made-0"), "{e}");
        assert!(bind_in(None, a).is_ok());
    }
}
