//! IPv6 neighbour discovery (RFC 4861): neighbour solicitations and
//! advertisements — the view [`NdMessage`], the checked options walker
//! [`NdOptions`], and [`NdRepr`], the building side.
//!
//! `NdMessage::new_checked` guarantees an ICMPv6 message of type 135 or
//! 136, code 0 (RFC 4861 §7.1.1, §7.1.2), with its 24 bytes of header and
//! target address; after it no accessor panics. The options walker checks
//! every option's length before yielding it and stops at the first bad one
//! (RFC 4861 §4.6: a length of zero makes the packet invalid). The other
//! validity checks of §7.1 (hop limit 255, checksum, target not multicast,
//! no source link-layer option from the unspecified address) belong to the
//! caller, which knows the IPv6 header. `NdRepr::emit` checks the buffer
//! before writing, fills the checksum, and never panics.

use super::error::{ErrorKind, Layer, WireError};
use super::ethernet::Mac;
use super::icmp::{self, v6_type, IcmpHeader};
use super::{emit_area, set_u16};
use std::net::Ipv6Addr;

/// Byte offsets of a neighbour solicitation or advertisement (RFC 4861
/// §4.3, §4.4).
pub mod field {
    use crate::wire::Field;
    /// ICMPv6 type (135 or 136).
    pub const TYPE: usize = 0;
    /// ICMPv6 code (0).
    pub const CODE: usize = 1;
    /// ICMPv6 checksum.
    pub const CHECKSUM: Field = 2..4;
    /// The R, S and O flags of an advertisement ([`super::flags`]).
    pub const FLAGS: usize = 4;
    /// Reserved: the four bytes that hold the flags of an advertisement
    /// and nothing in a solicitation.
    pub const RESERVED: Field = 4..8;
    /// Target address.
    pub const TARGET: Field = 8..24;
    /// The options after the target.
    pub const OPTIONS: core::ops::RangeFrom<usize> = 24..;
}

/// Bytes of a solicitation or advertisement before its options.
pub const HEADER_LEN: usize = 24;

/// Flags of a neighbour advertisement (RFC 4861 §4.4), in [`field::FLAGS`].
pub mod flags {
    /// The sender is a router.
    pub const ROUTER: u8 = 0x80;
    /// Sent in response to a solicitation.
    pub const SOLICITED: u8 = 0x40;
    /// Override an existing cache entry.
    pub const OVERRIDE: u8 = 0x20;
}

/// Neighbour discovery option types (RFC 4861 §4.6).
pub mod option {
    /// Source link-layer address.
    pub const SOURCE_LLADDR: u8 = 1;
    /// Target link-layer address.
    pub const TARGET_LLADDR: u8 = 2;
    /// Prefix information.
    pub const PREFIX_INFO: u8 = 3;
    /// Redirected header.
    pub const REDIRECTED_HEADER: u8 = 4;
    /// MTU.
    pub const MTU: u8 = 5;
}

/// Bytes of a link-layer address option for Ethernet: type, length 1 (in
/// units of 8 bytes), the MAC (RFC 4861 §4.6.1, RFC 2464 §6).
pub const LLADDR_OPTION_LEN: usize = 8;

/// Bytes of an option's type and length fields.
const OPTION_HEADER_LEN: usize = 2;

/// A checked view of a neighbour solicitation or advertisement: the
/// ICMPv6 message, options included.
#[derive(Debug, Clone, Copy)]
pub struct NdMessage<T: AsRef<[u8]>> {
    buffer: T,
    offset: usize,
}

impl<T: AsRef<[u8]>> NdMessage<T> {
    /// Wrap after the checks in the module header; `offset` (of the
    /// message in the frame) is only for errors.
    pub fn new_checked(buffer: T, offset: usize) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::truncated(
                Layer::Icmpv6,
                offset,
                HEADER_LEN,
                b.len(),
            ));
        }
        let t = b[field::TYPE];
        if t != v6_type::NEIGHBOR_SOLICIT && t != v6_type::NEIGHBOR_ADVERT {
            return Err(WireError::new(Layer::Icmpv6, offset, ErrorKind::BadType(t)));
        }
        if b[field::CODE] != 0 {
            return Err(WireError::new(
                Layer::Icmpv6,
                offset,
                ErrorKind::BadCode(b[field::CODE]),
            ));
        }
        Ok(NdMessage { buffer, offset })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// ICMPv6 type: [`v6_type::NEIGHBOR_SOLICIT`] or
    /// [`v6_type::NEIGHBOR_ADVERT`].
    pub fn msg_type(&self) -> u8 {
        self.b()[field::TYPE]
    }

    /// The flags byte ([`flags`]; meaningful in an advertisement).
    pub fn flags(&self) -> u8 {
        self.b()[field::FLAGS]
    }

    /// The target address.
    pub fn target(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b()[field::TARGET]);
        Ipv6Addr::from(a)
    }

    /// The options, walked with their lengths checked.
    pub fn options(&self) -> NdOptions<'_> {
        NdOptions::new(&self.b()[field::OPTIONS], self.offset + HEADER_LEN)
    }

    /// The message as an ICMPv6 view (for its checksum).
    pub fn icmp(&self) -> IcmpHeader<&[u8]> {
        // new_checked saw HEADER_LEN ≥ icmp::HEADER_LEN bytes.
        IcmpHeader::new_unchecked(self.b())
    }
}

/// One option: its type and the bytes after its type and length fields
/// (a multiple of 8 bytes in all, minus those two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NdOption<'a> {
    /// Option type ([`option`]).
    pub kind: u8,
    /// The option's bytes after its type and length.
    pub data: &'a [u8],
}

impl NdOption<'_> {
    /// The MAC of a link-layer address option (the first six bytes of its
    /// data, RFC 2464 §6); `None` for another type.
    pub fn lladdr(&self) -> Option<Mac> {
        if self.kind != option::SOURCE_LLADDR && self.kind != option::TARGET_LLADDR {
            return None;
        }
        self.data.first_chunk::<6>().copied()
    }
}

/// Walks the options of an ND message (RFC 4861 §4.6): each item is an
/// option whose length field is non-zero and fits in what is left, or the
/// error that stopped the walk (after which it yields nothing).
#[derive(Clone, Debug)]
pub struct NdOptions<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> NdOptions<'a> {
    /// Walk `bytes`, the options of a message; `offset` (of `bytes` in
    /// the frame) is only for errors.
    pub fn new(bytes: &'a [u8], offset: usize) -> NdOptions<'a> {
        NdOptions {
            rest: bytes,
            offset,
        }
    }

    /// The first six bytes of the first option of type `kind` (the MAC,
    /// for a link-layer address option), or the error that stopped the
    /// walk before one was found.
    pub fn lladdr(self, kind: u8) -> Result<Option<Mac>, WireError> {
        for o in self {
            let o = o?;
            if o.kind == kind {
                return Ok(o.data.first_chunk::<6>().copied());
            }
        }
        Ok(None)
    }
}

impl<'a> Iterator for NdOptions<'a> {
    type Item = Result<NdOption<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let at = self.offset;
        let item = match self.rest {
            [kind, units, ..] => {
                let len = *units as usize * 8;
                if len == 0 {
                    Err(WireError::new(
                        Layer::NdOption,
                        at,
                        ErrorKind::BadOptionLen(0),
                    ))
                } else {
                    match self.rest.split_at_checked(len) {
                        Some((opt, rest)) => {
                            self.rest = rest;
                            self.offset += len;
                            Ok(NdOption {
                                kind: *kind,
                                data: opt.get(OPTION_HEADER_LEN..).unwrap_or(&[]),
                            })
                        }
                        None => Err(WireError::truncated(
                            Layer::NdOption,
                            at,
                            len,
                            self.rest.len(),
                        )),
                    }
                }
            }
            _ => Err(WireError::truncated(
                Layer::NdOption,
                at,
                OPTION_HEADER_LEN,
                self.rest.len(),
            )),
        };
        if item.is_err() {
            self.rest = &[];
        }
        Some(item)
    }
}

/// A neighbour solicitation or advertisement as values: what xconnect
/// sends and reads (the Ethernet link-layer address option, no others).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NdRepr {
    /// Neighbour solicitation (RFC 4861 §4.3).
    NeighborSolicit {
        /// The address being resolved.
        target: Ipv6Addr,
        /// The sender's MAC: the source link-layer address option.
        lladdr: Option<Mac>,
    },
    /// Neighbour advertisement (RFC 4861 §4.4).
    NeighborAdvert {
        /// R: the sender is a router.
        router: bool,
        /// S: an answer to a solicitation.
        solicited: bool,
        /// O: override a cached link-layer address.
        override_: bool,
        /// The address advertised.
        target: Ipv6Addr,
        /// The target's MAC: the target link-layer address option.
        lladdr: Option<Mac>,
    },
}

impl NdRepr {
    /// The message a checked view holds. The link-layer address is the
    /// first source (solicitation) or target (advertisement) link-layer
    /// option; every option must be well formed.
    pub fn parse<T: AsRef<[u8]>>(msg: &NdMessage<T>) -> Result<NdRepr, WireError> {
        let solicit = msg.msg_type() == v6_type::NEIGHBOR_SOLICIT;
        let kind = if solicit {
            option::SOURCE_LLADDR
        } else {
            option::TARGET_LLADDR
        };
        let mut lladdr = None;
        for o in msg.options() {
            let o = o?;
            if o.kind == kind && lladdr.is_none() {
                lladdr = o.lladdr();
            }
        }
        let target = msg.target();
        let f = msg.flags();
        Ok(if solicit {
            NdRepr::NeighborSolicit { target, lladdr }
        } else {
            NdRepr::NeighborAdvert {
                router: f & flags::ROUTER != 0,
                solicited: f & flags::SOLICITED != 0,
                override_: f & flags::OVERRIDE != 0,
                target,
                lladdr,
            }
        })
    }

    fn lladdr(&self) -> Option<Mac> {
        match self {
            NdRepr::NeighborSolicit { lladdr, .. } | NdRepr::NeighborAdvert { lladdr, .. } => {
                *lladdr
            }
        }
    }

    /// Bytes of the message: 24, and 8 for the link-layer address option.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.lladdr().map_or(0, |_| LLADDR_OPTION_LEN)
    }

    /// Write the message at the start of `buf` with its ICMPv6 checksum
    /// over the pseudo-header of `src` and `dst` (RFC 4443 §2.3); returns
    /// [`NdRepr::buffer_len`].
    pub fn emit(&self, src: &Ipv6Addr, dst: &Ipv6Addr, buf: &mut [u8]) -> Result<usize, WireError> {
        let len = self.buffer_len();
        let b = emit_area(buf, Layer::Icmpv6, len)?;
        let (msg_type, flag_bits, target, opt) = match *self {
            NdRepr::NeighborSolicit { target, .. } => {
                (v6_type::NEIGHBOR_SOLICIT, 0, target, option::SOURCE_LLADDR)
            }
            NdRepr::NeighborAdvert {
                router,
                solicited,
                override_,
                target,
                ..
            } => {
                let f = if router { flags::ROUTER } else { 0 }
                    | if solicited { flags::SOLICITED } else { 0 }
                    | if override_ { flags::OVERRIDE } else { 0 };
                (v6_type::NEIGHBOR_ADVERT, f, target, option::TARGET_LLADDR)
            }
        };
        b[field::TYPE] = msg_type;
        b[field::CODE] = 0;
        set_u16(b, field::CHECKSUM, 0);
        b[field::RESERVED].copy_from_slice(&[flag_bits, 0, 0, 0]);
        b[field::TARGET].copy_from_slice(&target.octets());
        if let Some(mac) = self.lladdr() {
            let o = &mut b[HEADER_LEN..];
            o[0] = opt;
            o[1] = (LLADDR_OPTION_LEN / 8) as u8;
            o[OPTION_HEADER_LEN..LLADDR_OPTION_LEN].copy_from_slice(&mac);
        }
        icmp::IcmpHeader::new_checked(b, 0, true)?.fill_checksum_v6(src, dst);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A solicitation for 2001:db8::2 from 2001:db8::1 (02:78:63:00:00:01)
    /// to ff02::1:ff00:2, as `nd_solicit` sends it; checksum 0xb8ae (from
    /// the RFC 8200 §8.1 pseudo-header summed separately, and etherparse's
    /// in `solicit_checksum_matches_etherparse`).
    static SOLICIT: [u8; 32] = [
        135, 0, 0xb8, 0xae, 0, 0, 0, 0, // type, code, checksum, reserved
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // target
        1, 1, 0x02, 0x78, 0x63, 0, 0, 1, // source link-layer address
    ];

    fn addrs() -> (Ipv6Addr, Ipv6Addr) {
        (
            "2001:db8::1".parse().unwrap(),
            super::super::ipv6::solicited_node(&"2001:db8::2".parse().unwrap()),
        )
    }

    fn solicit() -> NdRepr {
        NdRepr::NeighborSolicit {
            target: "2001:db8::2".parse().unwrap(),
            lladdr: Some([0x02, 0x78, 0x63, 0, 0, 1]),
        }
    }

    #[test]
    fn solicit_take_apart_and_build() {
        let (src, dst) = addrs();
        let m = NdMessage::new_checked(&SOLICIT[..], 54).unwrap();
        assert!(m.icmp().verify_checksum_v6(&src, &dst));
        assert_eq!(NdRepr::parse(&m), Ok(solicit()));
        let mut buf = [0u8; 32];
        assert_eq!(solicit().emit(&src, &dst, &mut buf), Ok(32));
        assert_eq!(buf, SOLICIT);
        for n in 0..32 {
            assert!(solicit().emit(&src, &dst, &mut buf[..n]).is_err());
        }
    }

    #[test]
    fn solicit_checksum_matches_etherparse() {
        let (src, dst) = addrs();
        let theirs = etherparse::Icmpv6Header::with_checksum(
            etherparse::Icmpv6Type::Unknown {
                type_u8: 135,
                code_u8: 0,
                bytes5to8: [0; 4],
            },
            src.octets(),
            dst.octets(),
            &SOLICIT[8..],
        )
        .unwrap();
        assert_eq!(&SOLICIT[..8], &theirs.to_bytes()[..]);
    }

    #[test]
    fn advert_flags() {
        let (src, dst) = addrs();
        let a = NdRepr::NeighborAdvert {
            router: true,
            solicited: false,
            override_: true,
            target: src,
            lladdr: None,
        };
        let mut buf = [0u8; 24];
        assert_eq!(a.emit(&src, &dst, &mut buf), Ok(24));
        assert_eq!(buf[0], 136);
        assert_eq!(buf[4], flags::ROUTER | flags::OVERRIDE);
        let m = NdMessage::new_checked(&buf[..], 0).unwrap();
        assert_eq!(NdRepr::parse(&m), Ok(a));
    }

    #[test]
    fn view_refuses_other_messages() {
        let mut b = SOLICIT;
        assert!(NdMessage::new_checked(&b[..23], 0).is_err());
        b[0] = 128;
        assert_eq!(
            NdMessage::new_checked(&b[..], 7).unwrap_err(),
            WireError::new(Layer::Icmpv6, 7, ErrorKind::BadType(128))
        );
        b[0] = 135;
        b[1] = 1;
        assert_eq!(
            NdMessage::new_checked(&b[..], 7).unwrap_err().kind,
            ErrorKind::BadCode(1)
        );
    }

    #[test]
    fn options_walker_stops_at_bad_lengths() {
        // An MTU option, then a source link-layer address.
        let opts = [5, 1, 0, 0, 0, 0, 5, 0xdc, 1, 1, 2, 0, 0, 0, 0, 9];
        let got: Vec<_> = NdOptions::new(&opts, 78).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].unwrap().kind, option::MTU);
        assert_eq!(got[1].unwrap().lladdr(), Some([2, 0, 0, 0, 0, 9]));
        assert_eq!(
            NdOptions::new(&opts, 78).lladdr(option::SOURCE_LLADDR),
            Ok(Some([2, 0, 0, 0, 0, 9]))
        );
        // Zero length: an error, then nothing.
        let zero = [1, 0, 2, 0, 0, 0, 0, 1];
        let mut w = NdOptions::new(&zero, 78);
        assert_eq!(
            w.next(),
            Some(Err(WireError::new(
                Layer::NdOption,
                78,
                ErrorKind::BadOptionLen(0)
            )))
        );
        assert_eq!(w.next(), None);
        // Longer than what is left; a lone type byte.
        let e = NdOptions::new(&opts[..12], 78).nth(1).unwrap().unwrap_err();
        assert_eq!((e.layer, e.offset), (Layer::NdOption, 86));
        assert!(NdOptions::new(&[1], 0).next().unwrap().is_err());
        assert_eq!(NdOptions::new(&[], 0).next(), None);
    }

    fn arb_repr() -> impl Strategy<Value = NdRepr> {
        let mac = proptest::option::of(any::<Mac>());
        prop_oneof![
            (any::<[u8; 16]>(), mac.clone()).prop_map(|(t, lladdr)| NdRepr::NeighborSolicit {
                target: t.into(),
                lladdr
            }),
            (any::<[bool; 3]>(), any::<[u8; 16]>(), mac).prop_map(|(f, t, lladdr)| {
                NdRepr::NeighborAdvert {
                    router: f[0],
                    solicited: f[1],
                    override_: f[2],
                    target: t.into(),
                    lladdr,
                }
            }),
        ]
    }

    proptest! {
        #[test]
        fn parse_emit_round_trip(r in arb_repr(), src in any::<[u8; 16]>(), dst in any::<[u8; 16]>()) {
            let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            let mut buf = vec![0u8; r.buffer_len()];
            prop_assert_eq!(r.emit(&src, &dst, &mut buf), Ok(buf.len()));
            let m = NdMessage::new_checked(&buf[..], 0).unwrap();
            prop_assert!(m.icmp().verify_checksum_v6(&src, &dst));
            prop_assert_eq!(NdRepr::parse(&m), Ok(r));
            // etherparse reads the same message: type, target, options.
            let s = etherparse::Icmpv6Slice::from_slice(&buf).unwrap();
            prop_assert!(s.is_checksum_valid(src.octets(), dst.octets()));
            let (target, opts) = match s.payload_slice().unwrap() {
                etherparse::icmpv6::Icmpv6PayloadSlice::NeighborSolicitation(p) => (p.target_address(), p.options_iterator()),
                etherparse::icmpv6::Icmpv6PayloadSlice::NeighborAdvertisement(p) => (p.target_address(), p.options_iterator()),
                other => return Err(TestCaseError::fail(format!("{other:?}"))),
            };
            let t = match r { NdRepr::NeighborSolicit { target, .. } | NdRepr::NeighborAdvert { target, .. } => target };
            prop_assert_eq!(target, t);
            let theirs: Vec<_> = opts.map(|o| o.unwrap().as_bytes().to_vec()).collect();
            let ours: Vec<_> = m.options().map(|o| o.unwrap().data.to_vec()).collect();
            prop_assert_eq!(theirs.len(), ours.len());
            for (t, o) in theirs.iter().zip(&ours) {
                prop_assert_eq!(&t[2..], &o[..]);
            }
        }

        /// The walker and etherparse's agree on every option both accept,
        /// and where ours stops etherparse does too (it also refuses some
        /// option types of the wrong size, which ours leaves to the user).
        #[test]
        fn walker_agrees_with_etherparse(bytes in proptest::collection::vec(any::<u8>(), 0..64), lens in proptest::collection::vec(0u8..4, 0..6)) {
            // Mostly well-formed options, with lengths drawn small.
            let mut opts = Vec::new();
            for (i, l) in lens.iter().enumerate() {
                let kind = bytes.get(i).copied().unwrap_or(1) % 7;
                opts.push(kind);
                opts.push(*l);
                opts.extend(bytes.iter().skip(i).take((*l as usize * 8).saturating_sub(2)));
            }
            let ours: Vec<_> = NdOptions::new(&opts, 0).collect();
            let theirs: Vec<_> = etherparse::icmpv6::NdpOptionsIterator::from_slice(&opts).collect();
            for (i, o) in ours.iter().enumerate() {
                match (o, theirs.get(i)) {
                    (Ok(o), Some(Ok(t))) => {
                        prop_assert_eq!(o.kind, t.option_type().0);
                        prop_assert_eq!(o.data, &t.as_bytes()[2..]);
                    }
                    (Err(_), Some(Err(_))) => break,
                    (Ok(o), Some(Err(_))) => {
                        prop_assert!(matches!(o.kind, option::PREFIX_INFO | option::REDIRECTED_HEADER | option::MTU), "etherparse refused option {:?}", o);
                        break;
                    }
                    (o, t) => return Err(TestCaseError::fail(format!("option {i}: ours {o:?}, etherparse {t:?}"))),
                }
            }
        }
    }
}
