//! MPLS label stack entries (RFC 3032), the bounded label stack, and the
//! pseudowire control word (RFC 4385, as RFC 4448 carries it for Ethernet).
//!
//! A label stack entry is four bytes: label (20 bits), traffic class (3,
//! RFC 5462), bottom of stack (1) and TTL (8). A stack is read from the
//! outermost entry until the one with the bottom-of-stack bit;
//! [`LabelStack`] holds at most [`MAX_LABELS`] without allocating, and a
//! deeper stack (or one cut off before its bottom) is an error, never a
//! panic. What lies under the stack is not said by MPLS: an L3VPN
//! attachment expects IP (its version nibble tells IPv4 from IPv6,
//! [`ip_version`]), an Ethernet pseudowire an Ethernet frame, optionally
//! behind a control word ([`ControlWord`], first nibble 0 so that it is
//! never taken for IP).

use super::error::{ErrorKind, Layer, WireError};
use super::{emit_area, get_u32};
use core::fmt;

/// Byte ranges of one label stack entry, from its first byte.
pub mod field {
    use crate::wire::Field;
    /// Label (20 bits), TC (3), S (1), TTL (8), big-endian.
    pub const LSE: Field = 0..4;
    /// The pseudowire control word (RFC 4385 §3): `0000`, flags (4), FRG
    /// (2), length (6), sequence number (16).
    pub const CONTROL_WORD: Field = 0..4;
}

/// The ethertype of MPLS unicast (RFC 3032 §5).
pub const ETHERTYPE_MPLS: u16 = 0x8847;
/// The ethertype of MPLS multicast (RFC 5332); xconnect forwards unicast
/// only.
pub const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
/// Bytes of one label stack entry.
pub const LSE_LEN: usize = 4;
/// Bytes of the pseudowire control word.
pub const CONTROL_WORD_LEN: usize = 4;
/// Most label stack entries xconnect parses or pushes on one packet
/// (transport, VPN or pseudowire, entropy label indicator and entropy
/// label).
pub const MAX_LABELS: usize = 4;

/// A 20-bit MPLS label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(u32);

/// Why a number is not a label a configuration may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelError {
    /// Above 1,048,575 (20 bits).
    TooLarge(u32),
    /// 0..=15: reserved for special purposes (RFC 3032 §2.1, RFC 7274).
    Reserved(u32),
}

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelError::TooLarge(v) => write!(
                f,
                "label {v} does not fit 20 bits; labels are {}..={}",
                Label::FIRST_UNRESERVED.0,
                Label::MAX.0
            ),
            LabelError::Reserved(v) => write!(
                f,
                "label {v} is reserved ({}); usable labels are {}..={}",
                Label(*v).special_name().unwrap_or("special-purpose"),
                Label::FIRST_UNRESERVED.0,
                Label::MAX.0
            ),
        }
    }
}

impl Label {
    /// IPv4 explicit null: pop, the packet is IPv4 (RFC 3032).
    pub const IPV4_EXPLICIT_NULL: Label = Label(0);
    /// Router alert (RFC 3032).
    pub const ROUTER_ALERT: Label = Label(1);
    /// IPv6 explicit null: pop, the packet is IPv6 (RFC 3032).
    pub const IPV6_EXPLICIT_NULL: Label = Label(2);
    /// Implicit null: signalled, never on the wire (penultimate hop
    /// popping, RFC 3032).
    pub const IMPLICIT_NULL: Label = Label(3);
    /// Entropy label indicator (RFC 6790).
    pub const ENTROPY_INDICATOR: Label = Label(7);
    /// Generic associated channel label (RFC 5586).
    pub const GAL: Label = Label(13);
    /// OAM alert (RFC 3429).
    pub const OAM_ALERT: Label = Label(14);
    /// Extension label (RFC 7274).
    pub const EXTENSION: Label = Label(15);
    /// The first label outside the special-purpose range.
    pub const FIRST_UNRESERVED: Label = Label(16);
    /// The largest label.
    pub const MAX: Label = Label(0xf_ffff);

    /// The label `value`, if it fits 20 bits.
    pub const fn new(value: u32) -> Option<Label> {
        if value <= Label::MAX.0 {
            Some(Label(value))
        } else {
            None
        }
    }

    /// The label `value` if a configuration may use it (16..=1,048,575).
    pub fn usable(value: u32) -> Result<Label, LabelError> {
        match value {
            0..=15 => Err(LabelError::Reserved(value)),
            v if v > Label::MAX.0 => Err(LabelError::TooLarge(v)),
            v => Ok(Label(v)),
        }
    }

    /// The number.
    pub const fn value(self) -> u32 {
        self.0
    }

    /// True for the special-purpose labels 0..=15.
    pub const fn is_reserved(self) -> bool {
        self.0 < 16
    }

    /// The name of a special-purpose label.
    pub const fn special_name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "IPv4 explicit null",
            1 => "router alert",
            2 => "IPv6 explicit null",
            3 => "implicit null",
            7 => "entropy label indicator",
            13 => "GAL",
            14 => "OAM alert",
            15 => "extension label",
            4..=6 | 8..=12 => "unassigned special-purpose",
            _ => return None,
        })
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One label stack entry as plain values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LabelEntry {
    /// The label.
    pub label: Label,
    /// Traffic class (3 bits; RFC 5462).
    pub tc: u8,
    /// Bottom of stack.
    pub bottom: bool,
    /// Time to live.
    pub ttl: u8,
}

impl LabelEntry {
    /// Decode four bytes.
    #[inline]
    pub const fn from_bytes(b: [u8; LSE_LEN]) -> LabelEntry {
        let w = u32::from_be_bytes(b);
        LabelEntry {
            label: Label(w >> 12),
            tc: ((w >> 9) & 0x7) as u8,
            bottom: (w >> 8) & 1 == 1,
            ttl: w as u8,
        }
    }

    /// Encode as four bytes (a TC above 7 is masked to 3 bits).
    #[inline]
    pub const fn to_bytes(self) -> [u8; LSE_LEN] {
        let w = (self.label.0 << 12)
            | (((self.tc & 0x7) as u32) << 9)
            | ((self.bottom as u32) << 8)
            | self.ttl as u32;
        w.to_be_bytes()
    }

    /// Decode the entry at the start of `buf` (`offset`: where `buf` starts
    /// in the frame, for the error).
    pub fn parse(buf: &[u8], offset: usize) -> Result<LabelEntry, WireError> {
        match buf.get(field::LSE) {
            Some(b) => Ok(LabelEntry::from_bytes([b[0], b[1], b[2], b[3]])),
            None => Err(WireError::truncated(
                Layer::Mpls,
                offset,
                LSE_LEN,
                buf.len(),
            )),
        }
    }

    /// Write the entry at the start of `buf`; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        emit_area(buf, Layer::Mpls, LSE_LEN)?.copy_from_slice(&self.to_bytes());
        Ok(LSE_LEN)
    }
}

impl fmt::Display for LabelEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "label {} tc {} ttl {}{}",
            self.label,
            self.tc,
            self.ttl,
            if self.bottom { " bos" } else { "" }
        )
    }
}

/// A label stack of at most [`MAX_LABELS`] entries, outermost first; the
/// last one (and only it) has the bottom-of-stack bit once parsed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LabelStack {
    entries: [LabelEntry; MAX_LABELS],
    len: u8,
}

impl Default for LabelStack {
    fn default() -> Self {
        LabelStack::new()
    }
}

impl fmt::Debug for LabelStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl LabelStack {
    /// An empty stack.
    pub const fn new() -> LabelStack {
        LabelStack {
            entries: [LabelEntry {
                label: Label(0),
                tc: 0,
                bottom: false,
                ttl: 0,
            }; MAX_LABELS],
            len: 0,
        }
    }

    /// Read the stack at the start of `buf` (`offset`: where `buf` starts
    /// in the frame): entries up to and including the first with the
    /// bottom-of-stack bit. A stack deeper than [`MAX_LABELS`] is
    /// [`ErrorKind::TooManyLabels`]; one cut off before its bottom, a
    /// truncation.
    pub fn parse(buf: &[u8], offset: usize) -> Result<LabelStack, WireError> {
        let mut s = LabelStack::new();
        loop {
            let at = s.len() * LSE_LEN;
            if s.len() == MAX_LABELS {
                return Err(WireError::new(
                    Layer::Mpls,
                    offset + at,
                    ErrorKind::TooManyLabels,
                ));
            }
            let e = match buf.get(at..) {
                Some(rest) => LabelEntry::parse(rest, offset + at)?,
                None => {
                    return Err(WireError::truncated(Layer::Mpls, offset + at, LSE_LEN, 0));
                }
            };
            s.entries[s.len()] = e;
            s.len += 1;
            if e.bottom {
                return Ok(s);
            }
        }
    }

    /// Entries, outermost first.
    pub fn as_slice(&self) -> &[LabelEntry] {
        &self.entries[..self.len()]
    }

    /// Number of entries.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// True if there is no entry.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the stack on the wire.
    pub const fn header_len(&self) -> usize {
        self.len() * LSE_LEN
    }

    /// The outermost entry.
    pub fn top(&self) -> Option<LabelEntry> {
        self.as_slice().first().copied()
    }

    /// The innermost entry.
    pub fn bottom(&self) -> Option<LabelEntry> {
        self.as_slice().last().copied()
    }

    /// Add `entry` under the current ones (building a stack outermost
    /// first); `false` when the stack is full. The bottom-of-stack bits
    /// are set by [`LabelStack::emit`], not here.
    pub fn push_inner(&mut self, entry: LabelEntry) -> bool {
        if self.len() == MAX_LABELS {
            return false;
        }
        self.entries[self.len()] = entry;
        self.len += 1;
        true
    }

    /// Write the stack at the start of `buf`, the bottom-of-stack bit on
    /// the last entry only; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let area = emit_area(buf, Layer::Mpls, self.header_len())?;
        let last = self.len().saturating_sub(1);
        for (i, (e, out)) in self
            .as_slice()
            .iter()
            .zip(area.chunks_exact_mut(LSE_LEN))
            .enumerate()
        {
            let e = LabelEntry {
                bottom: i == last,
                ..*e
            };
            out.copy_from_slice(&e.to_bytes());
        }
        Ok(self.header_len())
    }
}

/// The IP version of the packet starting at `buf` (4 or 6), what an L3VPN
/// attachment reads under the bottom of the stack; `None` otherwise.
#[inline]
pub fn ip_version(buf: &[u8]) -> Option<u8> {
    match buf.first().map(|b| b >> 4) {
        Some(v @ (4 | 6)) => Some(v),
        _ => None,
    }
}

/// The pseudowire control word (RFC 4385 §3; RFC 4448 §4.6 for Ethernet,
/// where flags, FRG and length are 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ControlWord {
    /// Flags (4 bits).
    pub flags: u8,
    /// Fragmentation bits (2 bits; RFC 4623).
    pub frg: u8,
    /// Length of a padded payload (6 bits), 0 otherwise.
    pub length: u8,
    /// Sequence number (0: not used).
    pub sequence: u16,
}

impl ControlWord {
    /// Decode the control word at the start of `buf` (`offset`: where it
    /// starts in the frame). Its first nibble must be 0
    /// ([`ErrorKind::BadControlWord`] otherwise: 4 or 6 would be IP, 1 an
    /// associated channel header).
    pub fn parse(buf: &[u8], offset: usize) -> Result<ControlWord, WireError> {
        let Some(b) = buf.get(field::CONTROL_WORD) else {
            return Err(WireError::truncated(
                Layer::ControlWord,
                offset,
                CONTROL_WORD_LEN,
                buf.len(),
            ));
        };
        let w = get_u32(b, field::CONTROL_WORD);
        let nibble = (w >> 28) as u8;
        if nibble != 0 {
            return Err(WireError::new(
                Layer::ControlWord,
                offset,
                ErrorKind::BadControlWord(nibble),
            ));
        }
        Ok(ControlWord {
            flags: ((w >> 24) & 0xf) as u8,
            frg: ((w >> 22) & 0x3) as u8,
            length: ((w >> 16) & 0x3f) as u8,
            sequence: w as u16,
        })
    }

    /// Write the control word at the start of `buf` (fields masked to
    /// their widths); returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let w = ((self.flags as u32 & 0xf) << 24)
            | ((self.frg as u32 & 0x3) << 22)
            | ((self.length as u32 & 0x3f) << 16)
            | self.sequence as u32;
        emit_area(buf, Layer::ControlWord, CONTROL_WORD_LEN)?.copy_from_slice(&w.to_be_bytes());
        Ok(CONTROL_WORD_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_bits_round_trip() {
        // RFC 3032 §2.1 layout: label 0x12345, TC 5, S 1, TTL 64.
        let e = LabelEntry::from_bytes([0x12, 0x34, 0x5b, 0x40]);
        assert_eq!(e.label.value(), 0x12345);
        assert_eq!((e.tc, e.bottom, e.ttl), (5, true, 64));
        assert_eq!(e.to_bytes(), [0x12, 0x34, 0x5b, 0x40]);
        let max = LabelEntry {
            label: Label::MAX,
            tc: 7,
            bottom: false,
            ttl: 255,
        };
        assert_eq!(max.to_bytes(), [0xff, 0xff, 0xfe, 0xff]);
        assert_eq!(LabelEntry::from_bytes(max.to_bytes()), max);
        // TC is masked, never spills into the label or S bit.
        let wide = LabelEntry { tc: 0xff, ..max };
        assert_eq!(LabelEntry::from_bytes(wide.to_bytes()), max);
    }

    #[test]
    fn usable_labels_and_reserved_ones() {
        assert_eq!(Label::usable(16).unwrap().value(), 16);
        assert_eq!(Label::usable(1_048_575).unwrap(), Label::MAX);
        assert_eq!(
            Label::usable(1_048_576),
            Err(LabelError::TooLarge(1_048_576))
        );
        for v in 0..16 {
            let e = Label::usable(v).unwrap_err();
            assert_eq!(e, LabelError::Reserved(v));
            assert!(e.to_string().contains("16..=1048575"), "{e}");
        }
        assert!(LabelError::Reserved(3)
            .to_string()
            .contains("implicit null"));
        assert!(Label::new(0x10_0000).is_none());
        assert!(Label::GAL.is_reserved() && !Label::FIRST_UNRESERVED.is_reserved());
    }

    #[test]
    fn stacks_parse_to_the_bottom_and_refuse_depth_and_truncation() {
        let mut s = LabelStack::new();
        for (i, l) in [100u32, 2000, 30000].into_iter().enumerate() {
            assert!(s.push_inner(LabelEntry {
                label: Label::new(l).unwrap(),
                tc: i as u8,
                bottom: true, // emit decides
                ttl: 64 - i as u8,
            }));
        }
        let mut buf = [0u8; 16];
        assert_eq!(s.emit(&mut buf), Ok(12));
        let back = LabelStack::parse(&buf, 14).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(
            back.as_slice().iter().map(|e| e.bottom).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert_eq!(back.top().unwrap().label.value(), 100);
        assert_eq!(back.bottom().unwrap().label.value(), 30000);
        // Cut off before its bottom.
        let e = LabelStack::parse(&buf[..8], 14).unwrap_err();
        assert_eq!(e.layer, Layer::Mpls);
        assert_eq!(e.offset, 22);
        assert!(matches!(e.kind, ErrorKind::Truncated { .. }), "{e}");
        let e = LabelStack::parse(&buf[..10], 14).unwrap_err();
        assert_eq!(e.offset, 22);
        // Deeper than MAX_LABELS: no bottom bit in the first four.
        let deep = [0u8; 20];
        let e = LabelStack::parse(&deep, 14).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooManyLabels);
        assert_eq!(e.offset, 14 + 4 * MAX_LABELS);
        assert!(e.to_string().starts_with("mpls header at offset 30"), "{e}");
        // Full stack: a fifth push is refused; emit needs room.
        assert!(s.push_inner(s.top().unwrap()));
        assert!(!s.push_inner(s.top().unwrap()));
        assert!(s.emit(&mut buf[..15]).is_err());
        assert_eq!(LabelStack::parse(&[], 0).unwrap_err().offset, 0);
    }

    #[test]
    fn control_word_fields_and_its_zero_nibble() {
        let cw = ControlWord {
            flags: 0xa,
            frg: 2,
            length: 45,
            sequence: 0xbeef,
        };
        let mut b = [0u8; 4];
        assert_eq!(cw.emit(&mut b), Ok(4));
        assert_eq!(b, [0x0a, 0xad, 0xbe, 0xef]);
        assert_eq!(ControlWord::parse(&b, 18), Ok(cw));
        for nibble in [1u8, 4, 6] {
            let e = ControlWord::parse(&[nibble << 4, 0, 0, 0], 18).unwrap_err();
            assert_eq!(e.kind, ErrorKind::BadControlWord(nibble));
            assert_eq!(e.layer, Layer::ControlWord);
        }
        assert!(ControlWord::parse(&[0, 0], 0).is_err());
        assert!(cw.emit(&mut [0u8; 3]).is_err());
    }

    #[test]
    fn ip_version_under_the_stack() {
        assert_eq!(ip_version(&[0x45]), Some(4));
        assert_eq!(ip_version(&[0x60]), Some(6));
        assert_eq!(ip_version(&[0x00]), None);
        assert_eq!(ip_version(&[]), None);
    }
}
