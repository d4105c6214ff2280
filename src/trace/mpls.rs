//! The MPLS part of a frame's trace: the label stack of a labelled frame
//! and what lies under it ([`MplsTrace`]), and the packet the service sees
//! once the labels are off ([`Decoded::view`]).
//!
//! Contract:
//! - MPLS does not say what is under the stack; the attachment does. When
//!   the bottom-of-stack label belongs to an attachment of the port
//!   (`owner`), its [`MplsIn`] decides: an Ethernet pseudowire (behind the
//!   control word when it has one) or L3VPN (IP, by the version nibble).
//!   When no attachment owns it, IP is read by the version nibble (4 or 6)
//!   and anything else is left opaque.
//! - The label owner is looked up by the bottom label alone, whatever the
//!   depth: the decode says what the bytes are even where the pipeline
//!   refuses the stack (the verdict says that).
//! - Entries are reported as far as they are whole (at most
//!   [`MAX_LABELS`]); a cut or too deep stack, a bad control word or a
//!   truncated inner header is a [`DecodeError`] with the layer and its
//!   offset in the whole frame. Never panics on any bytes.

use super::describe::{tag_traces, DecodeError, TagTrace};
use crate::plan::MplsIn;
use crate::wire::ethernet::{ethertype, mac_to_string};
use crate::wire::mpls::{ip_version, ControlWord, LabelEntry, LabelStack, LSE_LEN, MAX_LABELS};
use crate::wire::{self, FrameInfo, WireError};
use serde::Serialize;

/// One label stack entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LabelTrace {
    /// The 20-bit label.
    pub label: u32,
    /// Traffic class (3 bits).
    pub tc: u8,
    /// Bottom of stack (S).
    pub bottom: bool,
    /// Time to live.
    pub ttl: u8,
}

impl From<LabelEntry> for LabelTrace {
    fn from(e: LabelEntry) -> LabelTrace {
        LabelTrace {
            label: e.label.value(),
            tc: e.tc,
            bottom: e.bottom,
            ttl: e.ttl,
        }
    }
}

/// A pseudowire control word (RFC 4385).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ControlWordTrace {
    /// Flags (4 bits).
    pub flags: u8,
    /// Fragmentation bits (2 bits).
    pub frg: u8,
    /// Length (6 bits).
    pub length: u8,
    /// Sequence number (0: not used).
    pub sequence: u16,
}

/// The Ethernet header of the frame a pseudowire carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InnerEthernetTrace {
    /// Ethernet source (only with a whole Ethernet header).
    pub eth_src: Option<String>,
    /// Ethernet destination (only with a whole Ethernet header).
    pub eth_dst: Option<String>,
    /// Tags, outermost first.
    pub tags: Vec<TagTrace>,
    /// Ethertype after the tags.
    pub ethertype: Option<String>,
}

/// A labelled frame's stack and what is under it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MplsTrace {
    /// The whole entries, outermost first.
    pub labels: Vec<LabelTrace>,
    /// How the bytes under the stack were read: `pseudowire` or `l3vpn`
    /// (by the attachment owning the bottom label), `ip` (no owner; the
    /// version nibble says IPv4 or IPv6), `opaque` (no owner, not IP);
    /// `None` when the stack itself did not decode.
    pub payload: Option<&'static str>,
    /// The pseudowire's control word, when its attachment has one.
    pub control_word: Option<ControlWordTrace>,
    /// The pseudowire's inner Ethernet header.
    pub inner: Option<InnerEthernetTrace>,
}

/// The packet under the labels as the service sees it: `bytes` is an
/// Ethernet frame (for IP under an L3VPN stack, a header of zero MACs and
/// the IP ethertype in front of it) and `info` its parse.
#[derive(Clone, Debug)]
pub(super) struct View {
    pub bytes: Vec<u8>,
    pub info: FrameInfo,
}

/// The result of decoding a labelled frame.
#[derive(Clone, Debug)]
pub(super) struct Decoded {
    pub trace: MplsTrace,
    pub view: Option<View>,
    pub error: Option<DecodeError>,
}

fn error_at(e: WireError, shift: usize) -> DecodeError {
    let e = WireError {
        offset: e.offset + shift,
        ..e
    };
    DecodeError {
        layer: e.layer.name(),
        offset: e.offset,
        message: e.to_string(),
    }
}

/// Decode the label stack starting at `at` in `frame` and what is under
/// it; `owner` gives the attachment's [`MplsIn`] of a bottom label (see
/// the module contract).
pub(super) fn decode(frame: &[u8], at: usize, owner: &dyn Fn(u32) -> Option<MplsIn>) -> Decoded {
    let rest = frame.get(at..).unwrap_or(&[]);
    let mut d = Decoded {
        trace: MplsTrace {
            labels: Vec::new(),
            payload: None,
            control_word: None,
            inner: None,
        },
        view: None,
        error: None,
    };
    for k in 0..MAX_LABELS {
        let Ok(e) = LabelEntry::parse(rest.get(k * LSE_LEN..).unwrap_or(&[]), 0) else {
            break;
        };
        d.trace.labels.push(e.into());
        if e.bottom {
            break;
        }
    }
    let stack = match LabelStack::parse(rest, at) {
        Ok(s) => s,
        Err(e) => {
            d.error = Some(error_at(e, 0));
            return d;
        }
    };
    let under = at + stack.header_len();
    let payload = frame.get(under..).unwrap_or(&[]);
    let m = stack.bottom().and_then(|b| owner(b.label.value()));
    match m {
        Some(m) if m.pseudowire => {
            d.trace.payload = Some("pseudowire");
            let mut inner_at = under;
            if m.control_word {
                match ControlWord::parse(payload, under) {
                    Ok(c) => {
                        d.trace.control_word = Some(ControlWordTrace {
                            flags: c.flags,
                            frg: c.frg,
                            length: c.length,
                            sequence: c.sequence,
                        });
                        inner_at += wire::mpls::CONTROL_WORD_LEN;
                    }
                    Err(e) => {
                        d.error = Some(error_at(e, 0));
                        return d;
                    }
                }
            }
            pseudowire(&mut d, frame.get(inner_at..).unwrap_or(&[]), inner_at);
        }
        Some(_) => {
            d.trace.payload = Some("l3vpn");
            if payload.is_empty() {
                d.error = Some(DecodeError {
                    layer: "mpls",
                    offset: under,
                    message: format!(
                        "mpls payload at offset {under}: nothing under the label stack \
                         (the L3VPN attachment expects IP)"
                    ),
                });
            } else {
                ip_under(&mut d, payload, under);
            }
        }
        None if ip_version(payload).is_some() => {
            d.trace.payload = Some("ip");
            ip_under(&mut d, payload, under);
        }
        None => d.trace.payload = Some("opaque"),
    }
    d
}

/// The inner Ethernet frame of a pseudowire, at `shift` in the frame.
fn pseudowire(d: &mut Decoded, inner: &[u8], shift: usize) {
    let mut eth = InnerEthernetTrace {
        eth_src: None,
        eth_dst: None,
        tags: Vec::new(),
        ethertype: None,
    };
    if let (Some(dst), Some(src), true) = (inner.get(0..6), inner.get(6..12), inner.len() >= 14) {
        let mac = |b: &[u8]| b.try_into().map(|m: [u8; 6]| mac_to_string(&m)).ok();
        eth.eth_dst = mac(dst);
        eth.eth_src = mac(src);
    }
    match wire::parse(inner) {
        Ok(info) => {
            eth.tags = tag_traces(&info.tags);
            eth.ethertype = Some(format!("0x{:04x}", info.ethertype));
            d.view = Some(View {
                bytes: inner.to_vec(),
                info,
            });
        }
        Err(e) => {
            if let Ok((tags, at)) = wire::parse_tags(inner) {
                eth.tags = tag_traces(&tags);
                eth.ethertype = inner
                    .get(at..at + 2)
                    .map(|b| format!("0x{:02x}{:02x}", b[0], b[1]));
            }
            d.error = Some(error_at(e, shift));
        }
    }
    d.trace.inner = Some(eth);
}

/// IP right under the stack (at `under` in the frame); a payload whose
/// version nibble is not 4 or 6 is left undecoded.
fn ip_under(d: &mut Decoded, payload: &[u8], under: usize) {
    let et = match ip_version(payload) {
        Some(4) => ethertype::IPV4,
        Some(6) => ethertype::IPV6,
        _ => return,
    };
    let mut bytes = vec![0u8; 12];
    bytes.extend_from_slice(&et.to_be_bytes());
    bytes.extend_from_slice(payload);
    // The synthetic header is 14 bytes; the packet is at `under`.
    match wire::parse(&bytes) {
        Ok(info) => d.view = Some(View { bytes, info }),
        Err(e) => {
            let e = WireError {
                offset: e.offset.saturating_sub(14),
                ..e
            };
            d.error = Some(error_at(e, under));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::TtlModel;

    fn lse(label: u32, tc: u8, bottom: bool, ttl: u8) -> [u8; 4] {
        (label << 12 | u32::from(tc) << 9 | u32::from(bottom) << 8 | u32::from(ttl)).to_be_bytes()
    }

    fn frame(labels: &[[u8; 4]], payload: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x88, 0x47];
        for l in labels {
            f.extend_from_slice(l);
        }
        f.extend_from_slice(payload);
        f
    }

    const IP4: [u8; 28] = [
        0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 2, 0x04, 0xd2, 0x16,
        0x2e, 0, 8, 0, 0,
    ];

    fn pw(cw: bool) -> impl Fn(u32) -> Option<MplsIn> {
        move |l| {
            (l == 1101).then_some(MplsIn {
                label: 1101,
                pseudowire: true,
                control_word: cw,
                ttl: TtlModel::Uniform,
            })
        }
    }

    proptest::proptest! {
        /// Any bytes after the MPLS ethertype, under any kind of owner:
        /// no panic, whole entries only, an error inside the frame.
        #[test]
        fn never_panics_and_stops_inside_the_frame(
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
            kind in 0u8..4,
        ) {
            let f = frame(&[], &tail);
            let owner = move |l: u32| {
                (kind < 3).then_some(MplsIn {
                    label: l,
                    pseudowire: kind > 0,
                    control_word: kind == 2,
                    ttl: TtlModel::Uniform,
                })
            };
            let d = decode(&f, 14, &owner);
            proptest::prop_assert!(d.trace.labels.len() <= MAX_LABELS);
            proptest::prop_assert!(14 + 4 * d.trace.labels.len() <= f.len());
            if let Some(e) = &d.error {
                proptest::prop_assert!(e.offset <= f.len(), "{e:?}");
                proptest::prop_assert!(d.view.is_none());
            }
        }
    }

    #[test]
    fn ip_under_an_unowned_stack_by_its_version_nibble() {
        let f = frame(&[lse(16001, 1, false, 9), lse(1001, 5, true, 63)], &IP4);
        let d = decode(&f, 14, &|_| None);
        assert_eq!(d.trace.labels.len(), 2);
        assert_eq!(
            d.trace.labels[1],
            LabelTrace {
                label: 1001,
                tc: 5,
                bottom: true,
                ttl: 63
            }
        );
        assert_eq!(d.trace.payload, Some("ip"));
        let v = d.view.unwrap();
        assert_eq!(
            (v.info.ttl, v.info.src_port, v.info.dst_port),
            (64, 1234, 5678)
        );
        assert!(d.error.is_none());
        // Cut in the UDP header (shorter than the IPv4 total length): the
        // offset is the frame's.
        let d = decode(&f[..f.len() - 4], 14, &|_| None);
        let e = d.error.unwrap();
        assert_eq!((e.layer, e.offset), ("ipv4", 22));
        assert!(e.message.contains("offset 22"), "{}", e.message);
        // Not IP: opaque.
        let d = decode(&frame(&[lse(20, 0, true, 1)], &[0; 8]), 14, &|_| None);
        assert_eq!(d.trace.payload, Some("opaque"));
        assert!(d.view.is_none() && d.error.is_none());
    }

    #[test]
    fn a_cut_stack_keeps_its_whole_entries() {
        let f = frame(&[lse(16001, 0, false, 9), lse(1001, 0, true, 63)], &IP4);
        for cut in 14..22 {
            let d = decode(&f[..cut], 14, &|_| None);
            assert_eq!(d.trace.labels.len(), (cut - 14) / 4);
            let e = d.error.unwrap();
            assert_eq!(e.layer, "mpls");
            assert_eq!(e.offset, 14 + 4 * ((cut - 14) / 4));
            assert!(d.trace.payload.is_none());
        }
        let deep = frame(&[lse(16, 0, false, 1); 5], &[]);
        let d = decode(&deep, 14, &|_| None);
        assert_eq!(d.trace.labels.len(), MAX_LABELS);
        assert_eq!(d.error.unwrap().offset, 14 + 4 * MAX_LABELS);
    }

    #[test]
    fn pseudowire_by_its_owner_with_and_without_control_word() {
        let inner: Vec<u8> = [
            &[
                0x0a, 0, 0, 0, 0, 1, 0x0a, 0, 0, 0, 0, 2, 0x81, 0, 0x60, 10, 0x08, 0,
            ][..],
            &IP4,
        ]
        .concat();
        for cw in [false, true] {
            let under: Vec<u8> = if cw {
                [&[0, 0, 0, 7][..], &inner].concat()
            } else {
                inner.clone()
            };
            let f = frame(&[lse(1101, 0, true, 255)], &under);
            let d = decode(&f, 14, &pw(cw));
            assert_eq!(d.trace.payload, Some("pseudowire"));
            assert_eq!(d.trace.control_word.map(|c| c.sequence), cw.then_some(7));
            let i = d.trace.inner.as_ref().unwrap();
            assert_eq!(i.eth_dst.as_deref(), Some("0a:00:00:00:00:01"));
            assert_eq!(i.tags.len(), 1);
            assert_eq!((i.tags[0].vid, i.tags[0].pcp), (10, 3));
            assert_eq!(i.ethertype.as_deref(), Some("0x0800"));
            assert!(d.view.unwrap().info.has_ports);
            // Cut in the inner tag: its offset in the frame.
            let tag_at = 18 + 4 * usize::from(cw) + 12;
            let d = decode(&f[..tag_at + 2], 14, &pw(cw));
            let e = d.error.unwrap();
            assert_eq!((e.layer, e.offset), ("vlan", tag_at));
        }
        // A control word whose first nibble is not 0.
        let f = frame(&[lse(1101, 0, true, 255)], &IP4);
        let e = decode(&f, 14, &pw(true)).error.unwrap();
        assert_eq!((e.layer, e.offset), ("pw-control-word", 18));
        // An L3VPN owner with nothing under the stack.
        let l3vpn = |_| {
            Some(MplsIn {
                label: 1001,
                pseudowire: false,
                control_word: false,
                ttl: TtlModel::Pipe,
            })
        };
        let d = decode(&frame(&[lse(1001, 0, true, 1)], &[]), 14, &l3vpn);
        assert_eq!(d.trace.payload, Some("l3vpn"));
        assert_eq!(d.error.map(|e| (e.layer, e.offset)), Some(("mpls", 18)));
    }
}
