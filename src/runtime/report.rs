//! The statistics line of `xconnect run`: per-port rx/tx, link state and
//! kernel drops, drops by reason — as one line of text or one JSON object.

use crate::config::PortSpec;
use crate::frame::DropReason;
use crate::pipeline::{Counters, L3Counters, LinkState};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One port's line in a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortReport {
    /// Configured name.
    pub name: String,
    /// Linux interface.
    pub interface: String,
    /// Backend.
    pub backend: &'static str,
    /// Forwarding: up in the kernel and not taken down by the operator.
    pub up: bool,
    /// Taken down by the operator (`xconnect ctl link PORT down`).
    pub admin_down: bool,
    /// Removed by a reload: closed, its id and counters kept.
    pub removed: bool,
    /// Times the port stopped forwarding (down in the kernel or taken
    /// down): each one a failover of its circuits' flows.
    pub down_events: u64,
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames the kernel dropped before xconnect saw them.
    pub kernel_drops: u64,
}

/// Reloads of the configuration (`ctl reload`, SIGHUP).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Reloads {
    /// Reloads swapped in.
    pub ok: u64,
    /// Reloads refused (the running configuration stayed).
    pub failed: u64,
}

/// One `l3` peering's tables, as the report carries them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TableReport {
    /// `circuit/kind`.
    pub peering: String,
    /// Route counts, limits and limit events.
    pub routes: crate::plan::RouteState,
    /// Neighbour slots holding a MAC (learned or static).
    pub neighbors: usize,
}

/// A statistics report (periodic or final).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Seconds since start.
    pub seconds: f64,
    /// True for the line printed at exit.
    #[serde(rename = "final")]
    pub final_: bool,
    /// Ports by id.
    pub ports: Vec<PortReport>,
    /// Drops by reason name (every reason present).
    pub drops: BTreeMap<&'static str, u64>,
    /// IP packets whose DSCP was rewritten.
    pub dscp_rewritten: u64,
    /// Frames consumed by the forwarder (l3: ARP/ND learned from, packets
    /// to its own addresses).
    pub local: u64,
    /// What the l3 service did (routed, ICMP, ARP/ND).
    pub l3: L3Counters,
    /// Packets waiting for a neighbour's MAC now (l3).
    pub held: u64,
    /// The capture's counters (`null` without `--capture`).
    pub capture: Option<crate::capture::CaptureReport>,
    /// The FPM listeners of the `l3` peerings (routes from zebra).
    pub fpm: Vec<crate::control::FpmStatus>,
    /// The followed routing tables of the `l3` peerings.
    pub kernel: Vec<crate::control::KernelStatus>,
    /// Configuration reloads.
    pub reloads: Reloads,
    /// The `l3` peerings' tables.
    pub tables: Vec<TableReport>,
}

impl Report {
    /// Build from summed counters.
    pub fn new(
        ports: &[PortSpec],
        links: &LinkState,
        c: &Counters,
        kernel_drops: &[u64],
        elapsed: Duration,
        final_: bool,
    ) -> Report {
        let ports = ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let pc = c.ports.get(i).copied().unwrap_or_default();
                PortReport {
                    name: p.name.clone(),
                    interface: p.interface.clone(),
                    backend: p.backend.name(),
                    up: links.is_up(i as u16),
                    admin_down: links.is_admin_down(i as u16),
                    removed: p.removed,
                    down_events: links.down_events(i as u16),
                    rx_packets: pc.rx_packets,
                    rx_bytes: pc.rx_bytes,
                    tx_packets: pc.tx_packets,
                    tx_bytes: pc.tx_bytes,
                    kernel_drops: kernel_drops.get(i).copied().unwrap_or(0),
                }
            })
            .collect();
        Report {
            seconds: (elapsed.as_secs_f64() * 10.0).round() / 10.0,
            final_,
            ports,
            drops: DropReason::ALL
                .iter()
                .map(|r| (r.name(), c.drops_for(*r)))
                .collect(),
            dscp_rewritten: c.dscp_rewritten,
            local: c.local,
            l3: c.l3,
            held: c.held,
            capture: None,
            fpm: Vec::new(),
            kernel: Vec::new(),
            reloads: Reloads::default(),
            tables: Vec::new(),
        }
    }

    /// Sum of drops of every reason.
    pub fn total_drops(&self) -> u64 {
        self.drops.values().sum()
    }

    /// One line for people: `final 12.3s | trunk-a up rx 10 tx 9 … | drops …`.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} {:.1}s",
            if self.final_ { "final" } else { "stats" },
            self.seconds
        );
        for p in &self.ports {
            s.push_str(&format!(
                " | {} {} rx {} tx {}",
                p.name,
                if p.removed {
                    "removed"
                } else if p.up {
                    "up"
                } else {
                    "DOWN"
                },
                p.rx_packets,
                p.tx_packets
            ));
            if p.kernel_drops > 0 {
                s.push_str(&format!(" kdrop {}", p.kernel_drops));
            }
        }
        let drops: Vec<String> = self
            .drops
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        s.push_str(&format!(
            " | drops {}",
            if drops.is_empty() {
                "0".to_string()
            } else {
                drops.join(", ")
            }
        ));
        s.push_str(&format!(" | dscp-rewritten {}", self.dscp_rewritten));
        let l = &self.l3;
        if self.local + l.routed + l.icmp_errors + l.nd_answers + l.nd_requests > 0 {
            s.push_str(&format!(
                " | l3 routed {} icmp {} echo {} nd-answers {} nd-requests {} learned {} local {}",
                l.routed,
                l.icmp_errors,
                l.echo_replies,
                l.nd_answers,
                l.nd_requests,
                l.nd_learned,
                self.local
            ));
            if self.held > 0 {
                s.push_str(&format!(" held {}", self.held));
            }
            let punted = l.punted_arp + l.punted_nd + l.punted_ip;
            if punted > 0 {
                s.push_str(&format!(
                    " | to host interfaces arp {} nd {} ip {}",
                    l.punted_arp, l.punted_nd, l.punted_ip
                ));
            }
        }
        if let Some(c) = &self.capture {
            s.push_str(&format!(
                " | capture written {} dropped {} files {}",
                c.written, c.dropped, c.files
            ));
            if let Some(e) = &c.error {
                s.push_str(&format!(" STOPPED ({e})"));
            }
        }
        for f in &self.fpm {
            s.push_str(&format!(
                " | fpm {} {}{}",
                f.name,
                f.routes.brief(),
                if f.connected { "" } else { " (not connected)" }
            ));
        }
        for k in &self.kernel {
            s.push_str(&format!(
                " | kernel {} {}{}",
                k.name,
                k.routes.brief(),
                if k.synced { "" } else { " (resyncing)" }
            ));
        }
        s
    }

    /// One JSON object on one line.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn line_and_json_carry_every_port_and_reason() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pe-qinq.toml");
        let cfg = crate::config::load(&p).unwrap();
        let ports = crate::config::port_specs(&cfg);
        let links = LinkState::new(ports.len());
        links.set(2, false);
        let mut c = Counters::new(ports.len());
        c.ports[0].rx_packets = 7;
        c.ports[1].tx_packets = 7;
        c.drop(DropReason::NoLinkUp);
        let r = Report::new(
            &ports,
            &links,
            &c,
            &[0, 3, 0],
            Duration::from_millis(1234),
            true,
        );
        let line = r.line();
        assert!(
            line.starts_with("final 1.2s | customer up rx 7 tx 0"),
            "{line}"
        );
        assert!(line.contains("trunk-b DOWN"), "{line}");
        assert!(
            line.contains("kdrop 3") && line.contains("no-link-up 1"),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(v["final"], true);
        assert_eq!(v["ports"][1]["tx_packets"], 7);
        assert_eq!(v["ports"][0]["backend"], "af_packet");
        assert_eq!(v["drops"]["no-link-up"], 1);
        assert_eq!(
            v["drops"].as_object().map(|o| o.len()),
            Some(DropReason::COUNT)
        );
        assert_eq!(r.total_drops(), 1);
    }
}
