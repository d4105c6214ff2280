//! Configuration: the TOML file format, ExpressRoute validation, and the
//! validated [`model`].
//!
//! Contract: [`load`] and [`load_str`] turn any text into either a
//! [`Config`] that satisfies every rule of `docs/model.md` (the ExpressRoute rules), or
//! [`Diagnostics`] listing **every** problem found (TOML syntax and type
//! errors are reported alone, as one `syntax` diagnostic, because nothing
//! can be checked past them). They never panic, whatever the input.
//!
//! Layers: [`raw`] mirrors the file (serde, spans on every checked value),
//! [`validate`] applies the rules and builds the [`model`], [`diag`] formats
//! the reports, [`address`] classifies addresses (public, private, …), and
//! [`compile()`] turns a valid model into the [`crate::plan::Plan`] the hot
//! path reads ([`port_specs`]: the port list the runtime opens).
//! `examples/pe-qinq.toml` is the annotated reference of the format.

pub mod address;
pub mod compile;
pub mod diag;
pub mod frr;
pub mod model;
pub mod raw;
pub mod validate;

pub use address::{address_class, non_public_blocks, prefix_class, AddressClass};
pub use compile::{
    compile, compile_in, fpm_specs, kernel_specs, mpls_overhead, port_specs, port_specs_in,
    FpmSpec, HostSetup, KernelTableSpec, PortLayout, PortSpec, Slot,
};
pub use diag::{line_column, Diagnostic, Diagnostics};
pub use model::*;
pub use validate::RULES;

use std::path::Path;

/// Read, parse and validate the configuration file at `path`.
///
/// An unreadable file gives one diagnostic with rule `read`.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(&text, path),
        Err(e) => Err(Diagnostics::from(vec![Diagnostic {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            rule: "read",
            field: String::new(),
            message: format!("cannot read the configuration file: {e}"),
        }])),
    }
}

/// Parse and validate configuration `text`; `source` names the file in
/// diagnostics and in [`Config::source`].
pub fn load_str(text: &str, source: &Path) -> Result<Config, Diagnostics> {
    let raw: raw::RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            return Err(Diagnostics::from(vec![Diagnostic::at_span(
                source,
                text,
                span,
                "syntax",
                "",
                e.message().trim(),
            )]));
        }
    };
    validate::validate(&raw, text, source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qos::DscpAction;
    use crate::wire::{Dscp, Tpid};

    const ALTERNATIVE_FORMS: &str = r#"
role = "msee"

[[port]]
name = "cust"
backend = "mem"

[[port]]
name = "ta"
backend = "tap"

[[port]]
name = "tb"
backend = "af_packet"

[[port]]
name = "m365"
backend = "pnet"

[[circuit]]
name = "c"
encapsulation = "qinq"
s_tag = 100
outer_tpid = "0x88a8"
bandwidth_mbps = 10000
premium = true
primary = { port = "ta", outer_tag = 10, s_tag = 100 }
secondary = { port = "tb", outer_tag = 11 }

[[circuit.peering]]
kind = "private"
tag = 200
secondary_tag = 200
mode = "l3"
access = { port = "cust", vlans = [10, 20], ipv4 = "203.0.113.1/31", ipv6 = "2001:db8:ff::2/126" }
ipv4 = ["192.0.2.0/30", "192.0.2.8/30"]
ipv6 = ["2001:db8::/126", "2001:db8::8/126"]
mtu = 1400
dscp = { set = "AF41" }
dscp_return = 46
bfd = { interval_ms = 750 }
routes = [
  { prefix = "0.0.0.0/0", next_hop = "192.0.2.1" },
  { prefix = "2001:db8:ff::/48", next_hop = "2001:db8::9" },
]
neighbors = [{ ip = "192.0.2.9", mac = "02:00:00:00:00:09" }]

[[circuit.peering.dscp_rules]]
protocol = 6
dst_ports = 443
dst_prefix = "203.0.113.0/24"
set = 10

[[circuit.peering]]
kind = "microsoft"
tag = 300
access = { port = "m365" }
dscp = "set EF"
"#;

    #[test]
    fn alternative_forms_load() {
        let cfg = match load_str(ALTERNATIVE_FORMS, Path::new("alt.toml")) {
            Ok(cfg) => cfg,
            Err(d) => panic!("{d}"),
        };
        assert_eq!(cfg.role, Role::Msee);
        assert_eq!(cfg.ports[0].interface, "cust");
        assert_eq!(cfg.ports[0].backend, BackendKind::Mem);
        assert_eq!(cfg.ports[3].backend, BackendKind::Pnet);
        let c = &cfg.circuits[0];
        assert_eq!(c.outer_tpid, Tpid::DOT1AD);
        assert_eq!(c.primary.outer_tag.map(|t| t.get()), Some(10));
        assert_eq!(c.secondary.outer_tag.map(|t| t.get()), Some(11));
        let p = &c.peerings[0];
        assert_eq!(p.access.vlans.len(), 2);
        assert_eq!(
            p.ipv4.map(|l| l.secondary.to_string()),
            Some("192.0.2.8/30".into())
        );
        assert_eq!(p.dscp.action, DscpAction::Set(Dscp::AF41));
        assert_eq!(p.dscp_return.action, DscpAction::Set(Dscp::EF));
        assert_eq!(p.dscp.rules[0].dst_ports, Some(443..=443));
        assert_eq!(p.dscp.rules[0].set, Dscp::AF11);
        assert_eq!(p.bfd.interval_ms, 750);
        assert_eq!(p.bfd.multiplier, 3);
        assert_eq!(p.routes.len(), 2);
        assert_eq!(p.neighbors[0].mac, [2, 0, 0, 0, 0, 9]);
        assert_eq!(p.mtu, 1400);
        let m = &c.peerings[1];
        assert_eq!(m.dscp.action, DscpAction::Set(Dscp::EF));
        assert_eq!(m.mode, ServiceMode::L2);
        assert!(m.ipv4.is_none());
    }

    #[test]
    fn syntax_error_has_a_location() {
        let err = load_str("role = \n", Path::new("s.toml")).err();
        let d = err.as_ref().and_then(|d| d.iter().next());
        assert_eq!(d.map(|d| (d.rule, d.line)), Some(("syntax", 1)));
    }
}

#[cfg(test)]
mod microsoft_dscp_tests {
    use super::*;

    #[test]
    fn preserve_is_refused_on_microsoft_peering_only() {
        let text = std::fs::read_to_string("examples/pe-qinq.toml").unwrap();
        let bad = text.replace("dscp = \"expressroute\"", "dscp = \"preserve\"");
        let d = load_str(&bad, Path::new("ms.toml")).unwrap_err();
        assert!(d.has_rule("ms-dscp-whitelist"), "{d}");
        assert_eq!(d.len(), 1, "{d}");
        // The private peering keeps its "preserve".
        assert!(load_str(&text, Path::new("ok.toml")).is_ok());
    }
}
