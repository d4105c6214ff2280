//! Opening the queues of a port: one per worker, with the port's backend.
//! [`super::Runtime::start`] opens every port this way, and the link
//! monitor ([`super::link`]) opens a port again this way when its interface
//! was deleted and created again under the same name.
//!
//! Contract: [`open_queues`] opens `workers` queues of one port, in worker
//! order: AF_PACKET sockets in one hash fanout group (a new group, its id
//! picked by the kernel, so that a reopened port never meets the group of
//! the interface it replaces), TAP queues (multi-queue with several
//! workers), or one pnet channel. It also says which interface (ifindex)
//! the queues are bound to: the interface of that name before and after
//! opening, or `None` if it changed meanwhile (the link monitor then opens
//! the port again). The first failure is returned, naming the port, its
//! backend and interface; the queues opened so far are closed.

use crate::config::{BackendKind, PortSpec};
use crate::io::af_packet::{AfPacketOptions, AfPacketPort, Fanout};
use crate::io::pnet::PnetPort;
use crate::io::sys;
use crate::io::tap::TapPort;
use crate::io::Port;
use anyhow::{bail, Context};

/// The queues of one port, one per worker.
pub struct Opened {
    /// By worker index.
    pub queues: Vec<Box<dyn Port>>,
    /// The interface they are bound to (`None`: it was replaced while they
    /// were being opened).
    pub ifindex: Option<u32>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("queues", &self.queues.len())
            .field("ifindex", &self.ifindex)
            .finish()
    }
}

/// Open `workers` (≥ 1) queues of `spec` (see the module contract).
pub fn open_queues(spec: &PortSpec, workers: usize) -> anyhow::Result<Opened> {
    let what = || {
        format!(
            "port {} ({} on {})",
            spec.name,
            spec.backend.name(),
            spec.interface
        )
    };
    if spec.backend == BackendKind::Mem {
        bail!(
            "port {}: backend \"mem\" is in-memory (tests, benches); \
             `xconnect run` needs af_packet, tap or pnet",
            spec.name
        );
    }
    if spec.backend == BackendKind::Pnet && workers > 1 {
        bail!("pnet ports cannot be shared by several workers (no fanout): run with --workers 1");
    }
    let workers = workers.max(1);
    // A TAP may not exist yet: opening creates it.
    let before = sys::if_index(&spec.interface).ok();
    let mut queues: Vec<Box<dyn Port>> = Vec::with_capacity(workers);
    let mut fanout = if workers > 1 {
        Fanout::New
    } else {
        Fanout::None
    };
    for _ in 0..workers {
        let q: Box<dyn Port> = match spec.backend {
            BackendKind::AfPacket => {
                let port = AfPacketPort::open(
                    &spec.interface,
                    &AfPacketOptions {
                        fanout,
                        required_mtu: spec.required_mtu,
                        ..AfPacketOptions::default()
                    },
                )
                .with_context(what)?;
                if fanout == Fanout::New {
                    fanout = port.fanout_group().map_or(Fanout::None, Fanout::Join);
                }
                Box::new(port)
            }
            BackendKind::Tap => {
                Box::new(TapPort::open(&spec.interface, workers > 1).with_context(what)?)
            }
            BackendKind::Pnet | BackendKind::Mem => {
                Box::new(PnetPort::open(&spec.interface).with_context(what)?)
            }
        };
        queues.push(q);
    }
    let after = sys::if_index(&spec.interface).ok();
    let ifindex = match (before, after) {
        (Some(b), Some(a)) if a == b => Some(a),
        (None, Some(a)) if spec.backend == BackendKind::Tap => Some(a),
        _ => None,
    };
    Ok(Opened { queues, ifindex })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(backend: BackendKind, interface: &str) -> PortSpec {
        PortSpec {
            name: "p".into(),
            interface: interface.into(),
            backend,
            required_mtu: 0,
            host: None,
            removed: false,
        }
    }

    #[test]
    fn refusals_name_the_port() {
        let e = open_queues(&spec(BackendKind::Mem, "lo"), 1).unwrap_err();
        assert!(e.to_string().contains("in-memory"), "{e:#}");
        let e = open_queues(&spec(BackendKind::Pnet, "lo"), 2).unwrap_err();
        assert!(e.to_string().contains("--workers 1"), "{e:#}");
        let e = open_queues(&spec(BackendKind::AfPacket, "xc-absent7"), 2).unwrap_err();
        assert!(format!("{e:#}").contains("xc-absent7"), "{e:#}");
    }

    /// Two queues of loopback share one new fanout group (root only).
    #[test]
    fn queues_of_a_port_share_a_new_fanout_group() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipping queues_of_a_port_share_a_new_fanout_group: needs CAP_NET_RAW");
            return;
        }
        let Ok(o) = open_queues(&spec(BackendKind::AfPacket, "lo"), 2) else {
            eprintln!("skipping: loopback is down in this namespace");
            return;
        };
        assert_eq!(o.queues.len(), 2);
        assert_eq!(o.ifindex, sys::if_index("lo").ok());
    }
}
