//! Link monitor: follows each port's kernel state so that a trunk going
//! down moves its flows to the other link, and back when it returns.
//!
//! Contract: every [`POLL_INTERVAL`] the monitor reads
//! `/sys/class/net/<if>/operstate` and `carrier` of every port (in the
//! network namespace xconnect runs in) and stores up/down into the shared
//! [`LinkState`] the workers read per frame; each change is reported once
//! through the `report` callback. An interface that is not visible counts
//! as down, except a TAP: xconnect holds its queue, and the device may have
//! been moved into another namespace to serve a host there.

use crate::config::{BackendKind, PortSpec};
use crate::pipeline::LinkState;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often link state is read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// What the kernel says about an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Up with carrier.
    Up,
    /// Administratively down, or no carrier.
    Down,
    /// Not in this network namespace.
    Missing,
}

/// Decide from the `operstate` and `carrier` file contents (`None`: the
/// file could not be read, as `carrier` cannot while the link is down).
pub fn decide(operstate: Option<&str>, carrier: Option<&str>) -> Kernel {
    match (operstate.map(str::trim), carrier.map(str::trim)) {
        (None, _) => Kernel::Missing,
        (Some("up"), Some("1")) | (Some("unknown"), Some("1")) => Kernel::Up,
        // Some drivers report operstate "up" without a carrier file.
        (Some("up"), None) => Kernel::Up,
        _ => Kernel::Down,
    }
}

/// Read the kernel's view of `interface` under `sysfs` (normally `/sys`).
pub fn read(sysfs: &Path, interface: &str) -> Kernel {
    let dir = sysfs.join("class/net").join(interface);
    let op = std::fs::read_to_string(dir.join("operstate")).ok();
    let carrier = std::fs::read_to_string(dir.join("carrier")).ok();
    decide(op.as_deref(), carrier.as_deref())
}

/// Whether a port with this kernel state and backend forwards.
pub fn is_up(k: Kernel, backend: BackendKind) -> bool {
    match k {
        Kernel::Up => true,
        Kernel::Down => false,
        Kernel::Missing => backend == BackendKind::Tap,
    }
}

/// Read every port once and store the result; returns the ports whose
/// state changed as (port id, up).
pub fn refresh(ports: &[PortSpec], links: &LinkState, sysfs: &Path) -> Vec<(u16, bool)> {
    let mut changed = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let up = is_up(read(sysfs, &p.interface), p.backend);
        if links.is_up(i as u16) != up {
            links.set(i as u16, up);
            changed.push((i as u16, up));
        }
    }
    changed
}

/// Follow link state until `stop` is set; `report` gets every change.
pub fn monitor(
    ports: Vec<PortSpec>,
    links: LinkState,
    stop: Arc<AtomicBool>,
    mut report: impl FnMut(&str),
) {
    let sysfs = Path::new("/sys");
    while !stop.load(Ordering::Relaxed) {
        for (port, up) in refresh(&ports, &links, sysfs) {
            if let Some(p) = ports.get(port as usize) {
                report(&format!(
                    "link {} ({}) {}",
                    p.name,
                    p.interface,
                    if up { "up" } else { "down" }
                ));
            }
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_states() {
        assert_eq!(decide(Some("up\n"), Some("1\n")), Kernel::Up);
        assert_eq!(decide(Some("unknown\n"), Some("1\n")), Kernel::Up);
        assert_eq!(decide(Some("down\n"), None), Kernel::Down);
        assert_eq!(decide(Some("lowerlayerdown\n"), Some("0\n")), Kernel::Down);
        assert_eq!(decide(Some("unknown"), Some("0")), Kernel::Down);
        assert_eq!(decide(None, None), Kernel::Missing);
        assert!(is_up(Kernel::Missing, BackendKind::Tap));
        assert!(!is_up(Kernel::Missing, BackendKind::AfPacket));
    }

    #[test]
    fn refresh_reads_a_sysfs_tree() {
        let dir = std::env::temp_dir().join(format!("xc-sysfs-{}", std::process::id()));
        let net = dir.join("class/net/xc-a");
        std::fs::create_dir_all(&net).unwrap();
        std::fs::write(net.join("operstate"), "down\n").unwrap();
        let cfg = crate::config::load_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pe-dot1q.toml"),
            )
            .unwrap()
            .replace("xc-pe-tra", "xc-a"),
            Path::new("x.toml"),
        )
        .unwrap();
        let ports = crate::config::port_specs(&cfg);
        let links = LinkState::new(ports.len());
        let id = ports.iter().position(|p| p.name == "trunk-a").unwrap() as u16;
        // Everything else is missing (down for af_packet); trunk-a is down.
        let changed = refresh(&ports, &links, &dir);
        assert_eq!(changed.len(), ports.len());
        assert!(!links.is_up(id));
        std::fs::write(net.join("operstate"), "up\n").unwrap();
        std::fs::write(net.join("carrier"), "1\n").unwrap();
        assert_eq!(refresh(&ports, &links, &dir), vec![(id, true)]);
        assert!(refresh(&ports, &links, &dir).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
