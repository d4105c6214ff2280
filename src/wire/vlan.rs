//! IEEE 802.1Q VLAN tags and the bounded tag stack.
//!
//! A tag is four bytes: a TPID (0x8100 C-tag, 0x88a8 S-tag, 0x9100 legacy
//! QinQ) followed by the TCI (PCP 3 bits, DEI 1 bit, VID 12 bits).
//! [`TagStack`] holds at most [`MAX_TAGS`] tags, outermost first, without
//! allocating. Nothing here panics: constructors that take raw values mask or
//! validate them, [`VlanTag::parse`] and [`VlanTag::emit`] check their
//! buffer first. Tags on a frame are written by
//! [`super::EthernetRepr::emit`], which calls [`VlanTag::emit`] for each.

use super::error::{Layer, WireError};
use super::{emit_area, get_u16, set_u16};
use core::fmt;

/// Byte ranges of one tag, from its first byte (IEEE 802.1Q-2018 §9.3).
pub mod field {
    use crate::wire::Field;
    /// The tag protocol identifier.
    pub const TPID: Field = 0..2;
    /// The tag control information: PCP (3 bits), DEI (1), VID (12).
    pub const TCI: Field = 2..4;
}

/// Bytes of one tag on the wire.
pub const TAG_LEN: usize = 4;

/// Most tags xconnect parses or pushes on one frame.
pub const MAX_TAGS: usize = 3;

/// A tag protocol identifier: the ethertype that announces a VLAN tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tpid(pub u16);

impl Tpid {
    /// IEEE 802.1Q customer tag (C-tag). ExpressRoute Direct also uses it for the S-tag.
    pub const DOT1Q: Tpid = Tpid(0x8100);
    /// IEEE 802.1ad service tag (S-tag).
    pub const DOT1AD: Tpid = Tpid(0x88a8);
    /// Pre-standard QinQ outer tag used by some vendors.
    pub const QINQ_9100: Tpid = Tpid(0x9100);

    /// True if `ethertype` announces a VLAN tag xconnect accepts (0x8100, 0x88a8, 0x9100).
    #[inline(always)]
    pub const fn is_vlan(ethertype: u16) -> bool {
        matches!(ethertype, 0x8100 | 0x88a8 | 0x9100)
    }
}

impl fmt::Display for Tpid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04x}", self.0)
    }
}

/// A VLAN identifier usable on a sub-interface: 1..=4094 (0 means "priority
/// tag only" and 4095 is reserved, IEEE 802.1Q-2018 table 9-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VlanId(u16);

impl VlanId {
    /// Smallest configurable VID.
    pub const MIN: u16 = 1;
    /// Largest configurable VID.
    pub const MAX: u16 = 4094;

    /// A VID in 1..=4094, or `None`.
    pub const fn new(vid: u16) -> Option<VlanId> {
        if vid >= Self::MIN && vid <= Self::MAX {
            Some(VlanId(vid))
        } else {
            None
        }
    }

    /// The 12-bit value.
    #[inline(always)]
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for VlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One VLAN tag as found on (or written to) the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// The TPID that announced this tag.
    pub tpid: Tpid,
    /// Priority code point, 3 bits.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier, 12 bits as on the wire (0 and 4095 possible).
    pub vid: u16,
}

impl VlanTag {
    /// Decode a tag from its TPID and TCI.
    #[inline(always)]
    pub const fn from_tci(tpid: Tpid, tci: u16) -> VlanTag {
        VlanTag {
            tpid,
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
        }
    }

    /// The TCI of this tag (PCP and VID masked to their widths).
    #[inline(always)]
    pub const fn tci(&self) -> u16 {
        ((self.pcp as u16 & 7) << 13) | ((self.dei as u16) << 12) | (self.vid & 0x0fff)
    }

    /// The four wire bytes: TPID then TCI, network order.
    #[inline(always)]
    pub const fn to_bytes(&self) -> [u8; 4] {
        let t = self.tpid.0.to_be_bytes();
        let c = self.tci().to_be_bytes();
        [t[0], t[1], c[0], c[1]]
    }

    /// Read a tag from the first [`TAG_LEN`] bytes of `bytes` (whatever
    /// the TPID says; the frame parse decides what counts as a tag).
    /// `offset` is only for the error.
    #[inline]
    pub fn parse(bytes: &[u8], offset: usize) -> Result<VlanTag, WireError> {
        let b = bytes.get(..TAG_LEN).ok_or(WireError::truncated(
            Layer::Vlan,
            offset,
            TAG_LEN,
            bytes.len(),
        ))?;
        Ok(VlanTag::from_tci(
            Tpid(get_u16(b, field::TPID)),
            get_u16(b, field::TCI),
        ))
    }

    /// Write the tag (TPID then TCI) at the start of `buf`; returns
    /// [`TAG_LEN`].
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let b = emit_area(buf, Layer::Vlan, TAG_LEN)?;
        set_u16(b, field::TPID, self.tpid.0);
        set_u16(b, field::TCI, self.tci());
        Ok(TAG_LEN)
    }
}

/// Up to [`MAX_TAGS`] tags, outermost first. Fixed size, `Copy`, no
/// allocation. Each tag is stored as one `u32` (TPID << 16 | TCI), the
/// layout the parser reads off the wire, so building a stack is a few
/// register moves.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TagStack {
    raw: [u32; MAX_TAGS],
    len: u8,
}

impl TagStack {
    /// An empty stack (an untagged frame).
    pub const fn new() -> TagStack {
        TagStack {
            raw: [0; MAX_TAGS],
            len: 0,
        }
    }

    /// Build from a slice; `None` if it holds more than [`MAX_TAGS`] tags.
    pub fn from_slice(tags: &[VlanTag]) -> Option<TagStack> {
        let mut s = TagStack::new();
        for t in tags {
            s.push_inner(*t).ok()?;
        }
        Some(s)
    }

    /// A stack of the first `len` words of `raw` (TPID << 16 | TCI each),
    /// built in registers by the parser and stored once. Words past `len`
    /// are zeroed (the stack keeps them zero: see [`TagStack::vids`]).
    #[inline(always)]
    pub(crate) fn from_words(mut raw: [u32; MAX_TAGS], len: usize) -> TagStack {
        let len = len.min(MAX_TAGS);
        for (i, w) in raw.iter_mut().enumerate() {
            if i >= len {
                *w = 0;
            }
        }
        TagStack {
            raw,
            len: len as u8,
        }
    }

    /// The VIDs of all [`MAX_TAGS`] places, outermost first, 0 past the
    /// last tag: no branch on the number of tags.
    #[inline(always)]
    pub fn vids(&self) -> [u16; MAX_TAGS] {
        // Words past `len` are zero: `new` zeroes them and `push_raw` and
        // `from_words` write only below `len`.
        self.raw.map(|w| (w & 0x0fff) as u16)
    }

    /// Number of tags.
    #[inline(always)]
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// True for an untagged frame.
    #[inline(always)]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Tag `i` (0 = outermost).
    #[inline(always)]
    pub fn get(&self, i: usize) -> Option<VlanTag> {
        if i < self.len() {
            let r = self.raw[i];
            Some(VlanTag::from_tci(Tpid((r >> 16) as u16), r as u16))
        } else {
            None
        }
    }

    /// VID of tag `i` (0 if absent).
    #[inline(always)]
    pub fn vid(&self, i: usize) -> u16 {
        if i < self.len() {
            (self.raw[i] & 0x0fff) as u16
        } else {
            0
        }
    }

    /// The tags, outermost first.
    pub fn iter(&self) -> impl Iterator<Item = VlanTag> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Append a tag inside the current innermost one. Errors when full.
    #[inline(always)]
    pub fn push_inner(&mut self, tag: VlanTag) -> Result<(), VlanTag> {
        if self.push_raw(tag.tpid.0, tag.tci()) {
            Ok(())
        } else {
            Err(tag)
        }
    }

    /// Append a tag from its wire TPID and TCI. `false` (stack unchanged)
    /// when full.
    #[inline(always)]
    pub fn push_raw(&mut self, tpid: u16, tci: u16) -> bool {
        let i = self.len as usize;
        if i < MAX_TAGS {
            self.raw[i] = (tpid as u32) << 16 | tci as u32;
            self.len += 1;
            true
        } else {
            false
        }
    }

    /// The outermost tag, if any.
    #[inline(always)]
    pub fn outer(&self) -> Option<VlanTag> {
        self.get(0)
    }
}

impl fmt::Debug for TagStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Display for TagStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("untagged");
        }
        for (i, t) in self.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            write!(f, "{}:{}", t.tpid, t.vid)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tci_round_trip() {
        let t = VlanTag::from_tci(Tpid::DOT1AD, 0xb064);
        assert_eq!(t.pcp, 5);
        assert!(t.dei);
        assert_eq!(t.vid, 100);
        assert_eq!(t.tci(), 0xb064);
        assert_eq!(t.to_bytes(), [0x88, 0xa8, 0xb0, 0x64]);
    }

    #[test]
    fn parse_and_emit() {
        let wire = [0x81, 0x00, 0xe0, 0x0a, 0xff];
        let t = VlanTag::parse(&wire, 12).unwrap();
        assert_eq!((t.tpid, t.pcp, t.dei, t.vid), (Tpid::DOT1Q, 7, false, 10));
        let mut out = [0u8; 5];
        assert_eq!(t.emit(&mut out), Ok(TAG_LEN));
        assert_eq!(out, [0x81, 0x00, 0xe0, 0x0a, 0]);
        assert_eq!(VlanTag::parse(&wire[..3], 12).unwrap_err().offset, 12);
        assert!(t.emit(&mut out[..3]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn tci_survives_emit_and_parse(tpid in proptest::num::u16::ANY, tci in proptest::num::u16::ANY) {
            let t = VlanTag::from_tci(Tpid(tpid), tci);
            let mut b = [0u8; 4];
            proptest::prop_assert_eq!(t.emit(&mut b), Ok(4));
            proptest::prop_assert_eq!(b, t.to_bytes());
            proptest::prop_assert_eq!(VlanTag::parse(&b, 0), Ok(t));
            proptest::prop_assert_eq!(t.tci(), tci);
        }
    }

    #[test]
    fn vlan_id_range() {
        assert!(VlanId::new(0).is_none());
        assert!(VlanId::new(4095).is_none());
        assert_eq!(VlanId::new(4094).map(VlanId::get), Some(4094));
    }

    #[test]
    fn stack_is_bounded() {
        let t = VlanTag::from_tci(Tpid::DOT1Q, 1);
        let mut s = TagStack::new();
        for _ in 0..MAX_TAGS {
            s.push_inner(t).unwrap();
        }
        assert!(s.push_inner(t).is_err());
        assert_eq!(s.len(), 3);
    }
}
