//! The DSCP and ECN fields of the IP traffic class (RFC 2474, RFC 3168).
//!
//! The six high bits of the IPv4 TOS byte / IPv6 traffic class are the DSCP,
//! the two low bits the ECN codepoint. xconnect rewrites only the DSCP bits.

use core::fmt;

/// A Differentiated Services codepoint (6 bits), RFC 2474 §3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Dscp(u8);

impl Dscp {
    /// CS0 / default forwarding (RFC 2474).
    pub const CS0: Dscp = Dscp(0);
    /// AF11, file transfer on Microsoft peering (RFC 2597).
    pub const AF11: Dscp = Dscp(10);
    /// AF21, application sharing on Microsoft peering (RFC 2597).
    pub const AF21: Dscp = Dscp(18);
    /// AF31 (RFC 2597); not in the ExpressRoute whitelist.
    pub const AF31: Dscp = Dscp(26);
    /// AF41, video on Microsoft peering (RFC 2597).
    pub const AF41: Dscp = Dscp(34);
    /// Expedited forwarding, voice on Microsoft peering (RFC 3246).
    pub const EF: Dscp = Dscp(46);

    /// A DSCP from its 6-bit value, or `None` above 63.
    pub const fn new(v: u8) -> Option<Dscp> {
        if v < 64 {
            Some(Dscp(v))
        } else {
            None
        }
    }

    /// From a traffic-class / TOS byte (drops the ECN bits).
    #[inline(always)]
    pub const fn from_tos(tos: u8) -> Dscp {
        Dscp(tos >> 2)
    }

    /// The 6-bit value.
    #[inline(always)]
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Parse a name (`EF`, `AF41`, `CS3`, `BE`, case-insensitive) or a number 0..=63.
    pub fn parse(s: &str) -> Option<Dscp> {
        let u = s.trim().to_ascii_uppercase();
        if let Ok(v) = u.parse::<u8>() {
            return Dscp::new(v);
        }
        match u.as_str() {
            "EF" => return Some(Dscp::EF),
            "BE" | "DEFAULT" => return Some(Dscp::CS0),
            "VA" | "VOICE-ADMIT" => return Some(Dscp(44)),
            _ => {}
        }
        if let Some(n) = u.strip_prefix("CS") {
            let c: u8 = n.parse().ok()?;
            return (c <= 7).then_some(Dscp(c << 3));
        }
        if let Some(n) = u.strip_prefix("AF") {
            let b = n.as_bytes();
            if b.len() == 2 && (b'1'..=b'4').contains(&b[0]) && (b'1'..=b'3').contains(&b[1]) {
                let class = b[0] - b'0';
                let drop = b[1] - b'0';
                return Some(Dscp((class << 3) | (drop << 1)));
            }
        }
        None
    }

    /// The conventional name if it has one (`EF`, `AF41`, `CS0`…).
    pub fn name(self) -> Option<&'static str> {
        const AF: [[&str; 3]; 4] = [
            ["AF11", "AF12", "AF13"],
            ["AF21", "AF22", "AF23"],
            ["AF31", "AF32", "AF33"],
            ["AF41", "AF42", "AF43"],
        ];
        const CS: [&str; 8] = ["CS0", "CS1", "CS2", "CS3", "CS4", "CS5", "CS6", "CS7"];
        let v = self.0;
        if v == 46 {
            return Some("EF");
        }
        if v == 44 {
            return Some("VA");
        }
        if v & 7 == 0 {
            return Some(CS[(v >> 3) as usize]);
        }
        let class = v >> 3;
        let drop = (v >> 1) & 3;
        if (1..=4).contains(&class) && v & 1 == 0 && (1..=3).contains(&drop) {
            return Some(AF[(class - 1) as usize][(drop - 1) as usize]);
        }
        None
    }
}

impl fmt::Display for Dscp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}({})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in 0..64u8 {
            let d = Dscp::new(v).unwrap();
            if let Some(n) = d.name() {
                assert_eq!(Dscp::parse(n), Some(d), "{n}");
            }
            assert_eq!(Dscp::parse(&v.to_string()), Some(d));
        }
        assert_eq!(Dscp::parse("af41"), Some(Dscp::AF41));
        assert_eq!(Dscp::parse("AF51"), None);
        assert_eq!(Dscp::parse("64"), None);
        assert_eq!(Dscp::from_tos(0xbb), Dscp::EF);
    }
}
