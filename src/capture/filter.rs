//! What a capture keeps: ports by name, directions (rx, tx, drop) and drop
//! reasons by their kebab-case names ([`DropReason::name`]).
//!
//! A frame is kept when its port is selected (no port given: every port),
//! its direction is selected (none given: all three) and, for a drop, its
//! reason is selected (none given: every reason). The port of a received
//! or dropped frame is its ingress port, of a transmitted frame its egress
//! port (and of a `tx-full` drop, the port that refused it).

use crate::frame::DropReason;
use std::fmt;

/// Which way a captured frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received, as it arrived (before the pipeline rewrote it).
    Rx,
    /// Transmitted, as it left (after the pipeline).
    Tx,
    /// Dropped by the pipeline (or refused by the port), as it was then.
    Drop,
}

impl Direction {
    /// All three, in mask order.
    pub const ALL: [Direction; 3] = [Direction::Rx, Direction::Tx, Direction::Drop];

    /// The name used on the command line and in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Direction::Rx => "rx",
            Direction::Tx => "tx",
            Direction::Drop => "drop",
        }
    }

    /// Bit of this direction in a per-port mask.
    #[inline(always)]
    pub const fn bit(self) -> u8 {
        match self {
            Direction::Rx => 1,
            Direction::Tx => 2,
            Direction::Drop => 4,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The filter as given by a person (names), before it meets a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Port names (configuration names); empty: every port.
    pub ports: Vec<String>,
    /// Directions; empty: rx, tx and drop.
    pub directions: Vec<Direction>,
    /// Drop reasons; empty: every reason.
    pub reasons: Vec<DropReason>,
}

/// A filter resolved against a plan: one direction mask per port id and a
/// mask of drop reasons. What the workers test per batch and per frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compiled {
    /// Per port id: the [`Direction::bit`]s captured.
    pub port_dirs: Vec<u8>,
    /// Bit `r.index()` set: drops of reason `r` are captured.
    pub reasons: u32,
}

impl Compiled {
    /// True if a frame of this port and direction is captured (drops:
    /// before the reason test).
    #[inline(always)]
    pub fn wants(&self, port: usize, dir: Direction) -> bool {
        self.port_dirs.get(port).is_some_and(|m| m & dir.bit() != 0)
    }

    /// True if drops of `reason` are captured.
    #[inline(always)]
    pub fn wants_reason(&self, reason: DropReason) -> bool {
        self.reasons & (1 << reason.index()) != 0
    }

    /// True if nothing at all can be captured.
    pub fn is_empty(&self) -> bool {
        self.port_dirs.iter().all(|m| *m == 0)
    }
}

/// Split `a,b c` lists (commas or spaces; repeated flags are concatenated
/// by the caller).
fn items(list: &[String]) -> impl Iterator<Item = &str> {
    list.iter()
        .flat_map(|s| s.split([',', ' ']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Parse a direction name.
pub fn parse_direction(s: &str) -> Result<Direction, String> {
    Direction::ALL
        .into_iter()
        .find(|d| d.name() == s)
        .ok_or_else(|| format!("unknown capture direction {s:?}: use rx, tx or drop"))
}

/// Parse a drop reason by its kebab-case name.
pub fn parse_reason(s: &str) -> Result<DropReason, String> {
    DropReason::ALL
        .into_iter()
        .find(|r| r.name() == s)
        .ok_or_else(|| {
            let names: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
            format!("unknown drop reason {s:?}: one of {}", names.join(", "))
        })
}

impl Filter {
    /// Build from command-line lists (each entry may hold several names
    /// separated by commas).
    pub fn parse(
        ports: &[String],
        directions: &[String],
        reasons: &[String],
    ) -> Result<Filter, String> {
        let mut f = Filter {
            ports: items(ports).map(str::to_string).collect(),
            ..Filter::default()
        };
        for d in items(directions) {
            let d = parse_direction(d)?;
            if !f.directions.contains(&d) {
                f.directions.push(d);
            }
        }
        for r in items(reasons) {
            let r = parse_reason(r)?;
            if !f.reasons.contains(&r) {
                f.reasons.push(r);
            }
        }
        if !f.reasons.is_empty()
            && !f.directions.is_empty()
            && !f.directions.contains(&Direction::Drop)
        {
            return Err(
                "--capture-reason selects dropped frames, but --capture-direction leaves out drop"
                    .into(),
            );
        }
        Ok(f)
    }

    /// Resolve port names against the configuration's ports (`names` in
    /// port-id order); an unknown name is an error that lists the ports
    /// there are.
    pub fn compile<S: AsRef<str>>(&self, names: &[S]) -> Result<Compiled, String> {
        let dirs = if self.directions.is_empty() {
            Direction::ALL.iter().fold(0, |m, d| m | d.bit())
        } else {
            self.directions.iter().fold(0, |m, d| m | d.bit())
        };
        let mut port_dirs = vec![0u8; names.len()];
        if self.ports.is_empty() {
            port_dirs.iter_mut().for_each(|m| *m = dirs);
        }
        for name in &self.ports {
            match names.iter().position(|p| p.as_ref() == name) {
                Some(i) => port_dirs[i] = dirs,
                None => {
                    let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
                    return Err(format!(
                        "--capture-port {name:?}: no such port in the configuration (ports: {})",
                        names.join(", ")
                    ));
                }
            }
        }
        let reasons = if self.reasons.is_empty() {
            (1u32 << DropReason::COUNT) - 1
        } else {
            self.reasons.iter().fold(0, |m, r| m | 1 << r.index())
        };
        Ok(Compiled { port_dirs, reasons })
    }

    /// A short description for the start-up message, e.g.
    /// `ports trunk-a; rx,drop; reasons no-link-up`.
    pub fn describe(&self) -> String {
        let ports = if self.ports.is_empty() {
            "every port".to_string()
        } else {
            format!("ports {}", self.ports.join(","))
        };
        let dirs = if self.directions.is_empty() {
            "rx,tx,drop".to_string()
        } else {
            let d: Vec<&str> = self.directions.iter().map(|d| d.name()).collect();
            d.join(",")
        };
        let reasons = if self.reasons.is_empty() {
            String::new()
        } else {
            let r: Vec<&str> = self.reasons.iter().map(|r| r.name()).collect();
            format!("; drop reasons {}", r.join(","))
        };
        format!("{ports}; {dirs}{reasons}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn plan() -> Vec<String> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pe-qinq.toml");
        let cfg = crate::config::load(&p).unwrap();
        cfg.ports.iter().map(|p| p.name.clone()).collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn empty_filter_takes_everything() {
        let c = Filter::default().compile(&plan()).unwrap();
        assert_eq!(c.port_dirs, vec![7, 7, 7]);
        for r in DropReason::ALL {
            assert!(c.wants_reason(r));
        }
        assert!(c.wants(2, Direction::Drop));
        assert!(!c.wants(3, Direction::Rx), "no such port");
    }

    #[test]
    fn ports_directions_and_reasons_narrow_it() {
        let f = Filter::parse(
            &s(&["trunk-a", "customer"]),
            &s(&["rx,drop"]),
            &s(&["no-link-up,unknown-attachment"]),
        )
        .unwrap();
        let c = f.compile(&plan()).unwrap();
        assert_eq!(c.port_dirs, vec![5, 5, 0]);
        assert!(c.wants(1, Direction::Rx) && !c.wants(1, Direction::Tx));
        assert!(c.wants_reason(DropReason::NoLinkUp));
        assert!(c.wants_reason(DropReason::UnknownAttachment));
        assert!(!c.wants_reason(DropReason::TxFull));
        assert_eq!(
            f.describe(),
            "ports trunk-a,customer; rx,drop; drop reasons no-link-up,unknown-attachment"
        );
    }

    #[test]
    fn bad_names_are_errors_that_say_what_exists() {
        let e = Filter::parse(&[], &s(&["in"]), &[]).unwrap_err();
        assert!(e.contains("rx, tx or drop"), "{e}");
        let e = Filter::parse(&[], &[], &s(&["no-link"])).unwrap_err();
        assert!(e.contains("no-link-up"), "{e}");
        let e = Filter::parse(&[], &s(&["rx"]), &s(&["no-link-up"])).unwrap_err();
        assert!(e.contains("leaves out drop"), "{e}");
        let e = Filter::parse(&s(&["trunk-z"]), &[], &[])
            .unwrap()
            .compile(&plan())
            .unwrap_err();
        assert!(e.contains("trunk-z") && e.contains("trunk-a"), "{e}");
    }
}
