//! What a traced frame reports: decoded headers, classification, stages,
//! verdict ([`FrameTrace`], text and JSON), and the verdict counts of
//! `--summary` ([`Summary`]).
//!
//! Contract: describing reads the record only (it never changes the
//! pipeline's state) and never panics on any bytes. JSON field names are
//! the serde names below; the README lists them.

use super::mpls::{self, LabelTrace, MplsTrace};
use super::Record;
use crate::frame::{DropReason, Meta, Verdict};
use crate::plan::{self, classify, Plan, Service, Side};
use crate::wire::mpls::{LabelStack, ETHERTYPE_MPLS};
use crate::wire::{
    self, ethernet::mac_to_string, ChecksumState, GsoKind, Offload, Segmenter, TagStack, L3,
};
use serde::Serialize;
use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One VLAN tag as received or sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TagTrace {
    /// TPID, e.g. `0x8100`.
    pub tpid: String,
    /// Priority code point.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN id.
    pub vid: u16,
}

/// The IP header fields a trace shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IpTrace {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// DSCP (6 bits).
    pub dscp: u8,
    /// ECN (2 bits).
    pub ecn: u8,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub protocol: u8,
    /// A fragment (ports are not read from fragments).
    pub fragment: bool,
}

/// Where the parse stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DecodeError {
    /// The layer that failed (`ethernet`, `vlan`, `ipv4`, …).
    pub layer: &'static str,
    /// Byte offset of that layer in the frame.
    pub offset: usize,
    /// The whole message.
    pub message: String,
}

/// The attachment a frame was classified to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttachmentTrace {
    /// Index in the plan.
    pub index: u32,
    /// Circuit name.
    pub circuit: String,
    /// `private` or `microsoft`.
    pub peering: &'static str,
    /// `access`, `primary` or `secondary`.
    pub side: &'static str,
    /// `l2` or `l3`.
    pub service: &'static str,
}

/// The routing decision of an `l3` frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteTrace {
    /// The destination looked up.
    pub destination: IpAddr,
    /// The installed prefix it matched (`None`: no route).
    pub prefix: Option<String>,
    /// `access`, `primary`, `secondary`, `ecmp` or `local` (`None`: no route).
    pub path: Option<&'static str>,
    /// The next hop's address on the link the frame left by.
    pub next_hop: Option<IpAddr>,
}

/// What the stages did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StagesTrace {
    /// Tags popped (the attachment's own).
    pub tags_popped: Option<u8>,
    /// Tags pushed, outermost first.
    pub tags_pushed: Vec<TagTrace>,
    /// The tags of the frame sent, outermost first.
    pub tags_out: Vec<TagTrace>,
    /// DSCP before marking.
    pub dscp_before: Option<u8>,
    /// DSCP after marking.
    pub dscp_after: Option<u8>,
    /// `l3`: the lookup.
    pub route: Option<RouteTrace>,
    /// `l3`: the frame was answered instead of routed: what was sent back
    /// (`arp reply`, `icmp time-exceeded`, `icmpv6 neighbor-advertisement`, …).
    pub reply: Option<String>,
    /// What was done to MPLS labels (only when labels were popped or
    /// pushed; absent from the JSON otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mpls: Option<LabelStagesTrace>,
}

/// What the label edge did to a frame.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LabelStagesTrace {
    /// The stack taken off on ingress (the frame was classified by its
    /// bottom label and went on unlabelled), outermost first.
    pub popped: Vec<LabelTrace>,
    /// What the popped stack carried: `l3vpn` or `pseudowire`.
    pub attachment: Option<&'static str>,
    /// L3VPN pop: the TTL model (`uniform`: the IP TTL became the smaller
    /// of it and the label's; `pipe`: left as it was).
    pub ttl_model: Option<&'static str>,
    /// A pseudowire's control word was taken off with the stack.
    pub control_word_popped: bool,
    /// The stack of the frame sent toward the backbone, outermost first.
    pub pushed: Vec<LabelTrace>,
    /// The frame sent carries a pseudowire control word.
    pub control_word_pushed: bool,
}

/// An ARP packet's fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArpTrace {
    /// 1 request, 2 reply.
    pub op: u16,
    /// Sender protocol address.
    pub sender: Ipv4Addr,
    /// Target protocol address.
    pub target: Ipv4Addr,
}

/// The decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerdictTrace {
    /// `forward`, `drop`, `local`, `held` (waiting while its next hop is
    /// resolved) or `resolve` (dropped with no room to wait; the buffer
    /// left as an ARP request / neighbour solicitation).
    pub action: &'static str,
    /// Egress port (`forward`, `resolve`).
    pub port: Option<String>,
    /// Bytes sent (`forward`, `resolve`).
    pub bytes: Option<usize>,
    /// Drop reason (`drop`, `resolve`).
    pub reason: Option<&'static str>,
}

/// A super-frame's offload metadata at one point of its way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OffloadTrace {
    /// `tcpv4` or `tcpv6`.
    pub kind: &'static str,
    /// Payload bytes per segment.
    pub segment_size: u16,
    /// Bytes of headers, Ethernet through TCP.
    pub header_len: u16,
    /// The TCP checksum: `partial` (owed: the field holds the
    /// pseudo-header sum), `in-bytes` or `verified`.
    pub checksum: &'static str,
    /// `partial`: where checksumming starts (the TCP header's offset).
    pub csum_start: Option<u16>,
    /// `partial`: the checksum field's offset from `csum_start`.
    pub csum_offset: Option<u16>,
    /// The ECN bit (the first segment carries CWR).
    pub ecn: bool,
}

impl OffloadTrace {
    fn of(o: &Offload) -> OffloadTrace {
        let (checksum, csum_start, csum_offset) = match o.checksum {
            ChecksumState::Partial { start, offset } => ("partial", Some(start), Some(offset)),
            ChecksumState::InBytes => ("in-bytes", None, None),
            ChecksumState::Verified => ("verified", None, None),
        };
        OffloadTrace {
            kind: match o.gso {
                GsoKind::TcpV4 => "tcpv4",
                GsoKind::TcpV6 => "tcpv6",
                GsoKind::Udp => "udp",
                GsoKind::None => "none",
            },
            segment_size: o.segment_size,
            header_len: o.header_len,
            checksum,
            csum_start,
            csum_offset,
            ecn: o.ecn,
        }
    }

    fn text(&self) -> String {
        let mut s = format!(
            "headers {} bytes, checksum {}",
            self.header_len, self.checksum
        );
        if let (Some(a), Some(b)) = (self.csum_start, self.csum_offset) {
            let _ = write!(s, " at {a}+{b}");
        }
        s
    }
}

/// A TCP super-frame (one IP packet carrying many segments' payload, as a
/// host with segmentation offload hands it over) through the pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GsoTrace {
    /// The segments it makes at its segment size.
    pub segments: usize,
    /// The metadata as received (read back from the captured bytes).
    pub received: OffloadTrace,
    /// The metadata it leaves with (checksum start and header length
    /// moved with the tags), when it leaves by a port.
    pub sent: Option<OffloadTrace>,
    /// Why it cannot leave as a super-frame, when it cannot.
    pub error: Option<String>,
}

/// One frame's trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrameTrace {
    /// Frame number in the capture (from 1).
    pub frame: u64,
    /// Capture timestamp, seconds since the Unix epoch.
    pub time: f64,
    /// Ingress port name.
    pub port: String,
    /// Bytes captured.
    pub captured_len: usize,
    /// Bytes on the wire.
    pub original_len: u32,
    /// Ethernet source.
    pub eth_src: Option<String>,
    /// Ethernet destination.
    pub eth_dst: Option<String>,
    /// Tags as received, outermost first.
    pub tags: Vec<TagTrace>,
    /// Ethertype after the tags, e.g. `0x0800`.
    pub ethertype: Option<String>,
    /// `ipv4`, `ipv6`, `arp` or `other` (fully decoded frames only).
    pub l3: Option<&'static str>,
    /// IP header fields.
    pub ip: Option<IpTrace>,
    /// ARP fields.
    pub arp: Option<ArpTrace>,
    /// TCP/UDP source port.
    pub src_port: Option<u16>,
    /// TCP/UDP destination port.
    pub dst_port: Option<u16>,
    /// An MPLS frame's label stack and what is under it (absent from the
    /// JSON for other frames). `l3`, `ip`, `arp` and the ports then
    /// describe the packet under the labels (a pseudowire's inner frame).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mpls: Option<MplsTrace>,
    /// A TCP super-frame's offload metadata, received and sent (absent
    /// from the JSON for an ordinary frame).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gso: Option<GsoTrace>,
    /// Where decoding stopped, if it did.
    pub decode_error: Option<DecodeError>,
    /// Why the pipeline did not see the frame, if it did not (too long
    /// for a buffer).
    pub note: Option<String>,
    /// Classification (`None`: no attachment matched).
    pub attachment: Option<AttachmentTrace>,
    /// What the stages did.
    pub stages: StagesTrace,
    /// The decision.
    pub verdict: VerdictTrace,
}

pub(super) fn tag_traces(tags: &TagStack) -> Vec<TagTrace> {
    tags.iter()
        .map(|t| TagTrace {
            tpid: format!("0x{:04x}", t.tpid.0),
            pcp: t.pcp,
            dei: t.dei,
            vid: t.vid,
        })
        .collect()
}

fn path_name(path: u8) -> Option<&'static str> {
    Some(match path {
        plan::PATH_ACCESS => "access",
        plan::PATH_PRIMARY => "primary",
        plan::PATH_SECONDARY => "secondary",
        plan::PATH_ECMP => "ecmp",
        plan::LOCAL_PATH => "local",
        _ => return None,
    })
}

fn addr4(b: &[u8], at: usize) -> Option<IpAddr> {
    let a: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(a)))
}

fn addr6(b: &[u8], at: usize) -> Option<IpAddr> {
    let a: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(a)))
}

/// The destination address of a decoded IP frame.
fn ip_dst(frame: &[u8], info: &wire::FrameInfo) -> Option<IpAddr> {
    let l3 = info.l3_offset as usize;
    match info.l3 {
        L3::Ipv4 => addr4(frame, l3 + 16),
        L3::Ipv6 => addr6(frame, l3 + 24),
        _ => None,
    }
}

/// The L3 fields of `t` from the packet of `bytes` (parsed as `info`).
fn packet(t: &mut FrameTrace, bytes: &[u8], info: &wire::FrameInfo) {
    t.l3 = Some(match info.l3 {
        L3::Ipv4 => "ipv4",
        L3::Ipv6 => "ipv6",
        L3::Arp => "arp",
        L3::Other => "other",
    });
    let l3 = info.l3_offset as usize;
    let (src, dst) = match info.l3 {
        L3::Ipv4 => (addr4(bytes, l3 + 12), addr4(bytes, l3 + 16)),
        L3::Ipv6 => (addr6(bytes, l3 + 8), addr6(bytes, l3 + 24)),
        _ => (None, None),
    };
    if let (Some(src), Some(dst)) = (src, dst) {
        t.ip = Some(IpTrace {
            src,
            dst,
            dscp: info.dscp().get(),
            ecn: info.ecn(),
            ttl: info.ttl,
            protocol: info.protocol,
            fragment: info.fragment,
        });
    }
    if info.l3 == L3::Arp {
        let v4 = |at: usize| match addr4(bytes, l3 + at) {
            Some(IpAddr::V4(a)) => a,
            _ => Ipv4Addr::UNSPECIFIED,
        };
        t.arp = bytes.get(l3 + 6..l3 + 8).map(|op| ArpTrace {
            op: u16::from_be_bytes([op[0], op[1]]),
            sender: v4(14),
            target: v4(24),
        });
    }
    if info.has_ports {
        t.src_port = Some(info.src_port);
        t.dst_port = Some(info.dst_port);
    }
}

impl FrameTrace {
    /// Describe a record (the tracer must keep inputs).
    pub fn of(r: &Record<'_>) -> FrameTrace {
        let plan = r.plan;
        let mut t = FrameTrace {
            frame: r.number,
            time: r.timestamp.as_secs_f64(),
            port: plan.port_name(r.port),
            captured_len: r.captured_len,
            original_len: r.original_len,
            eth_src: None,
            eth_dst: None,
            tags: Vec::new(),
            ethertype: None,
            l3: None,
            ip: None,
            arp: None,
            src_port: None,
            dst_port: None,
            mpls: None,
            gso: r.super_frame.map(|sf| GsoTrace {
                segments: Segmenter::new(r.input, &sf.received, None).map_or(0, |s| s.segments()),
                received: OffloadTrace::of(&sf.received),
                sent: sf.sent.and_then(Result::ok).map(|o| OffloadTrace::of(&o)),
                error: sf.sent.and_then(Result::err).map(|e| e.to_string()),
            }),
            decode_error: None,
            note: r.meta.is_none().then(|| {
                format!(
                    "{} bytes: too long for a buffer (at most {})",
                    r.captured_len,
                    wire::packet::MAX_FRAME
                )
            }),
            attachment: None,
            stages: StagesTrace::default(),
            verdict: verdict_trace(plan, r.verdict(), r.output),
        };
        let input = r.input;
        // MACs only from a whole Ethernet header (as tshark shows them).
        if let (Some(dst), Some(src), true) = (input.get(0..6), input.get(6..12), input.len() >= 14)
        {
            let mac = |b: &[u8]| b.try_into().map(|m: [u8; 6]| mac_to_string(&m)).ok();
            t.eth_dst = mac(dst);
            t.eth_src = mac(src);
        }
        // The parse the pipeline ran, again on the received bytes (the
        // pipeline's own result is in `meta.info`; re-parsing gives the
        // error when there was one, and the same answer otherwise).
        let mut under = None;
        let info = match wire::parse(input) {
            Ok(info) => {
                t.tags = tag_traces(&info.tags);
                t.ethertype = Some(format!("0x{:04x}", info.ethertype));
                if info.ethertype == ETHERTYPE_MPLS {
                    // What is under the labels is the owning attachment's
                    // business (see `mpls`).
                    let owner = |label: u32| {
                        plan.classify(classify::label_key(r.port, label))
                            .and_then(|a| plan.attachments.get(a as usize))
                            .and_then(|a| a.mpls)
                    };
                    let d = mpls::decode(input, info.l3_offset as usize, &owner);
                    t.mpls = Some(d.trace);
                    t.decode_error = d.error;
                    match &d.view {
                        Some(v) => packet(&mut t, &v.bytes, &v.info),
                        None if t.decode_error.is_none() => t.l3 = Some("other"),
                        None => {}
                    }
                    under = d.view;
                } else {
                    packet(&mut t, input, &info);
                }
                Some(info)
            }
            Err(e) => {
                if let Ok((tags, at)) = wire::parse_tags(input) {
                    t.tags = tag_traces(&tags);
                    t.ethertype = input
                        .get(at..at + 2)
                        .map(|b| format!("0x{:02x}{:02x}", b[0], b[1]));
                }
                t.decode_error = Some(DecodeError {
                    layer: e.layer.name(),
                    offset: e.offset,
                    message: e.to_string(),
                });
                None
            }
        };
        let Some(meta) = r.meta else {
            return t;
        };
        t.attachment = attachment_trace(plan, meta);
        // The stages see a labelled frame as it is under its labels.
        let view = match (&info, &under) {
            (Some(i), None) if i.ethertype != ETHERTYPE_MPLS => Some((input, i)),
            (_, Some(v)) => Some((v.bytes.as_slice(), &v.info)),
            _ => None,
        };
        stages(&mut t, r, meta, view);
        label_stages(&mut t, r, meta, info.as_ref(), under.is_some());
        t
    }

    /// The human-readable form (several lines, no trailing newline).
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = self.write_text(&mut s);
        s
    }

    fn write_text(&self, s: &mut String) -> fmt::Result {
        write!(
            s,
            "frame {} on {}: {} bytes",
            self.frame, self.port, self.captured_len
        )?;
        if self.original_len as usize != self.captured_len {
            write!(s, " (of {} on the wire)", self.original_len)?;
        }
        if let (Some(src), Some(dst)) = (&self.eth_src, &self.eth_dst) {
            write!(s, "\n  ethernet  {src} -> {dst}")?;
            for tag in &self.tags {
                write!(s, ", {}", tag_text(tag))?;
            }
            if let Some(et) = &self.ethertype {
                write!(s, ", ethertype {et}")?;
            }
        }
        if let Some(m) = &self.mpls {
            s.push_str("\n  mpls      ");
            if m.labels.is_empty() {
                s.push_str("no whole label stack entry");
            }
            s.push_str(&labels_text(&m.labels));
            if let Some(p) = m.payload {
                write!(s, "; under it: {p}")?;
            }
            if let Some(c) = &m.control_word {
                write!(
                    s,
                    "\n  pw        control word flags {} frg {} length {} sequence {}",
                    c.flags, c.frg, c.length, c.sequence
                )?;
            }
            if let Some(i) = &m.inner {
                s.push_str("\n  inner     ");
                if let (Some(src), Some(dst)) = (&i.eth_src, &i.eth_dst) {
                    write!(s, "{src} -> {dst}")?;
                } else {
                    s.push_str("(no whole ethernet header)");
                }
                for tag in &i.tags {
                    write!(s, ", {}", tag_text(tag))?;
                }
                if let Some(et) = &i.ethertype {
                    write!(s, ", ethertype {et}")?;
                }
            }
        }
        if let Some(ip) = &self.ip {
            let v = if ip.src.is_ipv4() { "ipv4" } else { "ipv6" };
            let ttl = if ip.src.is_ipv4() { "ttl" } else { "hlim" };
            write!(
                s,
                "\n  {v}      {} -> {} dscp {} ecn {} {ttl} {} proto {}",
                ip.src, ip.dst, ip.dscp, ip.ecn, ip.ttl, ip.protocol
            )?;
            if ip.fragment {
                s.push_str(" fragment");
            }
            if let (Some(a), Some(b)) = (self.src_port, self.dst_port) {
                write!(s, " ports {a} -> {b}")?;
            }
        } else if let Some(a) = &self.arp {
            let op = match a.op {
                1 => "request",
                2 => "reply",
                _ => "op",
            };
            write!(
                s,
                "\n  arp       {op} ({}) sender {} target {}",
                a.op, a.sender, a.target
            )?;
        }
        if let Some(g) = &self.gso {
            write!(
                s,
                "\n  gso       {} super-frame, {} segments of {} bytes{}; {}",
                g.received.kind,
                g.segments,
                g.received.segment_size,
                if g.received.ecn { ", ecn" } else { "" },
                g.received.text()
            )?;
            if let Some(o) = &g.sent {
                write!(s, "\n  gso out   {}", o.text())?;
            }
            if let Some(e) = &g.error {
                write!(s, "\n  gso out   cannot leave as a super-frame: {e}")?;
            }
        }
        if let Some(e) = &self.decode_error {
            write!(s, "\n  decode    stopped: {}", e.message)?;
        }
        if let Some(n) = &self.note {
            write!(s, "\n  note      {n}")?;
        }
        match &self.attachment {
            Some(a) => write!(
                s,
                "\n  classify  circuit {}, {} peering, {} side, {} (attachment {})",
                a.circuit, a.peering, a.side, a.service, a.index
            )?,
            None if self.mpls.is_some() && self.verdict.reason == Some("unknown-label") => {
                s.push_str("\n  classify  no attachment for this port and label stack")
            }
            None if self.decode_error.is_none() && self.verdict.reason != Some("malformed") => {
                s.push_str("\n  classify  no attachment for this port and tag stack")
            }
            None => {}
        }
        let st = &self.stages;
        if let Some(p) = st.tags_popped {
            write!(s, "\n  tags      popped {p}, pushed ")?;
            if st.tags_pushed.is_empty() {
                s.push_str("none");
            }
            for (i, tag) in st.tags_pushed.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                s.push_str(&tag_text(tag));
            }
        }
        if let Some(m) = &st.mpls {
            if !m.popped.is_empty() {
                write!(s, "\n  labels    popped {}", labels_text(&m.popped))?;
                if let Some(a) = m.attachment {
                    write!(s, " ({a}")?;
                    if let Some(ttl) = m.ttl_model {
                        write!(s, ", ttl {ttl}")?;
                    }
                    if m.control_word_popped {
                        s.push_str(", control word");
                    }
                    s.push(')');
                }
            }
            if !m.pushed.is_empty() {
                write!(s, "\n  labels    pushed {}", labels_text(&m.pushed))?;
                if m.control_word_pushed {
                    s.push_str(" + control word");
                }
            }
        }
        if let (Some(b), Some(a)) = (st.dscp_before, st.dscp_after) {
            write!(s, "\n  dscp      {b} -> {a}")?;
        }
        if let Some(r) = &st.route {
            write!(s, "\n  route     {}", r.destination)?;
            match (&r.prefix, r.path) {
                (Some(p), Some(path)) => write!(s, " matches {p}, path {path}")?,
                (None, Some(path)) => write!(s, " path {path}")?,
                _ => s.push_str(" no route"),
            }
            if let Some(nh) = r.next_hop {
                write!(s, ", next hop {nh}")?;
            }
        }
        if let Some(r) = &st.reply {
            write!(s, "\n  reply     {r}")?;
        }
        let v = &self.verdict;
        s.push_str("\n  verdict   ");
        match v.action {
            "forward" => write!(
                s,
                "forward out of {}, {} bytes",
                v.port.as_deref().unwrap_or("?"),
                v.bytes.unwrap_or(0)
            )?,
            "resolve" => write!(
                s,
                "drop ({}), resolution request out of {}, {} bytes",
                v.reason.unwrap_or("?"),
                v.port.as_deref().unwrap_or("?"),
                v.bytes.unwrap_or(0)
            )?,
            "drop" => write!(s, "drop ({})", v.reason.unwrap_or("?"))?,
            "held" => s.push_str("held until the next hop answers (an ARP / ND request is out)"),
            other => s.push_str(other),
        }
        Ok(())
    }
}

/// `label 16001 tc 0 ttl 64, label 1001 tc 5 ttl 63 bos`.
fn labels_text(labels: &[LabelTrace]) -> String {
    labels
        .iter()
        .map(|l| {
            format!(
                "label {} tc {} ttl {}{}",
                l.label,
                l.tc,
                l.ttl,
                if l.bottom { " bos" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn tag_text(t: &TagTrace) -> String {
    format!(
        "tag {} vid {} pcp {} dei {}",
        t.tpid, t.vid, t.pcp, t.dei as u8
    )
}

fn verdict_trace(plan: &Plan, v: Verdict, output: Option<&[u8]>) -> VerdictTrace {
    let port = |p: u16| Some(plan.port_name(p));
    match v {
        Verdict::Forward(p) => VerdictTrace {
            action: "forward",
            port: port(p),
            bytes: output.map(<[u8]>::len),
            reason: None,
        },
        Verdict::Resolve(p) => VerdictTrace {
            action: "resolve",
            port: port(p),
            bytes: output.map(<[u8]>::len),
            reason: Some(DropReason::NeighborUnresolved.name()),
        },
        Verdict::Drop(r) => VerdictTrace {
            action: "drop",
            port: None,
            bytes: None,
            reason: Some(r.name()),
        },
        Verdict::Held => VerdictTrace {
            action: "held",
            port: None,
            bytes: None,
            reason: None,
        },
        Verdict::Local | Verdict::Pending => VerdictTrace {
            action: "local",
            port: None,
            bytes: None,
            reason: None,
        },
    }
}

fn attachment_trace(plan: &Plan, meta: &Meta) -> Option<AttachmentTrace> {
    let a = plan.attachments.get(meta.attachment as usize)?;
    let p = plan.peerings.get(a.peering as usize)?;
    Some(AttachmentTrace {
        index: meta.attachment,
        circuit: p.circuit.clone(),
        peering: p.kind.name(),
        side: a.side.name(),
        service: p.mode.name(),
    })
}

/// The stages of the frame the service saw: `view` is its bytes and
/// parse (a labelled frame's as it is under its labels).
fn stages(
    t: &mut FrameTrace,
    r: &Record<'_>,
    meta: &Meta,
    view: Option<(&[u8], &wire::FrameInfo)>,
) {
    let Some(att) = r.plan.attachments.get(meta.attachment as usize) else {
        return;
    };
    let Some((input, info)) = view else { return };
    let pop = match att.service {
        Service::L2 { pop, .. } | Service::L3 { pop, .. } => pop,
    };
    if let Some(out) = r.output {
        if let Ok((tags, _)) = wire::parse_tags(out) {
            let out_tags = tag_traces(&tags);
            let kept = info.tags.len().saturating_sub(pop as usize);
            let pushed = out_tags.len().saturating_sub(kept);
            t.stages.tags_popped = Some(pop);
            t.stages.tags_pushed = out_tags[..pushed].to_vec();
            t.stages.tags_out = out_tags;
        }
    }
    let marked = matches!(meta.verdict, Verdict::Forward(_)) && info.is_ip();
    if marked {
        t.stages.dscp_before = Some(meta.dscp_before);
        t.stages.dscp_after = Some(meta.dscp_after);
    }
    if let Service::L3 { peering, .. } = att.service {
        if let (Verdict::Forward(_), Some(out)) = (meta.verdict, r.output) {
            t.stages.reply = reply_of(input, info, out);
            if t.stages.reply.is_some() {
                t.stages.dscp_before = None;
                t.stages.dscp_after = None;
            }
        }
        // Dropped before the table was consulted: no route stage (it
        // would read as "no route" although nothing was looked up).
        if matches!(
            meta.verdict,
            Verdict::Drop(DropReason::NotOurMac | DropReason::BadIpHeader)
        ) {
            return;
        }
        let Some(dst) = ip_dst(input, info) else {
            return;
        };
        let lp = r.plan.l3.get(peering as usize);
        let path = path_name(meta.route);
        let prefix = path.and(lp).and_then(|lp| {
            lp.routes
                .lock()
                .ok()
                .and_then(|rt| rt.matching_prefix(dst))
                .map(|p| p.to_string())
        });
        // The next hop: the peer on the link the frame left by.
        let next_hop = match (meta.verdict, lp) {
            (Verdict::Forward(out) | Verdict::Resolve(out), Some(lp)) if path != Some("local") => {
                lp.links
                    .iter()
                    .flatten()
                    .find(|l| l.port == out && matches_side(l.side, meta.route))
                    .and_then(|l| {
                        if dst.is_ipv4() {
                            l.peer_v4.map(IpAddr::V4)
                        } else {
                            l.peer_v6.map(IpAddr::V6)
                        }
                    })
            }
            _ => None,
        };
        t.stages.route = Some(RouteTrace {
            destination: dst,
            prefix,
            path,
            next_hop,
        });
    }
}

/// What the label edge did: the stack popped from a labelled frame taken
/// in by its attachment, the stack of the frame sent toward the backbone.
/// `taken_in`: the frame's payload decoded as its attachment reads it.
fn label_stages(
    t: &mut FrameTrace,
    r: &Record<'_>,
    meta: &Meta,
    info: Option<&wire::FrameInfo>,
    taken_in: bool,
) {
    let mut st = LabelStagesTrace::default();
    let m = r
        .plan
        .attachments
        .get(meta.attachment as usize)
        .and_then(|a| a.mpls);
    // Popped: classified by label, and not refused by the label edge
    // (a frame it refuses keeps its labels: malformed or not IP).
    let refused = matches!(
        meta.verdict,
        Verdict::Drop(DropReason::Malformed | DropReason::NotIp | DropReason::UnknownLabel)
    );
    if let (Some(m), Some(info), Some(mt), true, false) =
        (m, info, t.mpls.as_ref(), taken_in, refused)
    {
        if info.ethertype == ETHERTYPE_MPLS {
            st.popped = mt.labels.clone();
            st.attachment = Some(if m.pseudowire { "pseudowire" } else { "l3vpn" });
            st.ttl_model = (!m.pseudowire).then_some(m.ttl.name());
            st.control_word_popped = m.pseudowire && m.control_word;
        }
    }
    if let Some(out) = r.output {
        if let Ok(o) = wire::parse(out) {
            if o.ethertype == ETHERTYPE_MPLS {
                let at = o.l3_offset as usize;
                if let Ok(s) = LabelStack::parse(out.get(at..).unwrap_or(&[]), at) {
                    st.pushed = s.as_slice().iter().map(|&e| e.into()).collect();
                    st.control_word_pushed = pushed_control_word(r, meta);
                }
            }
        }
    }
    if !st.popped.is_empty() || !st.pushed.is_empty() {
        t.stages.mpls = Some(st);
    }
}

/// Does the frame `r` sent carry a pseudowire control word? Only an `l2`
/// attachment's egress toward its pseudowire pushes one.
fn pushed_control_word(r: &Record<'_>, meta: &Meta) -> bool {
    let Some(a) = r.plan.attachments.get(meta.attachment as usize) else {
        return false;
    };
    match (&a.service, meta.verdict) {
        (
            Service::L2 {
                egress: plan::Egress::Access(p),
                ..
            },
            Verdict::Forward(port),
        ) => p.port == port && p.mpls.is_some_and(|m| m.pseudowire && m.control_word),
        _ => false,
    }
}

/// What an l3 frame was answered with, if the frame sent is an answer
/// to its sender rather than the frame routed on.
fn reply_of(input: &[u8], info: &wire::FrameInfo, out: &[u8]) -> Option<String> {
    let o = wire::parse(out).ok()?;
    // A reply to an L3VPN packet goes back behind labels: IP under them.
    let under;
    let (out, o) = if o.ethertype == ETHERTYPE_MPLS {
        under = mpls::decode(out, o.l3_offset as usize, &|_| None).view?;
        (under.bytes.as_slice(), under.info)
    } else {
        (out, o)
    };
    if info.l3 == L3::Arp && o.l3 == L3::Arp {
        return Some("arp reply".into());
    }
    let src_in = match info.l3 {
        L3::Ipv4 => addr4(input, info.l3_offset as usize + 12),
        L3::Ipv6 => addr6(input, info.l3_offset as usize + 8),
        _ => None,
    }?;
    if ip_dst(out, &o) != Some(src_in) || ip_dst(input, info) == Some(src_in) {
        return None;
    }
    let v6 = o.l3 == L3::Ipv6;
    if o.protocol != if v6 { 58 } else { 1 } {
        return None;
    }
    let at = o.l4_offset as usize;
    let (ty, code) = (*out.get(at)?, *out.get(at + 1)?);
    let name = match (v6, ty) {
        (false, 0) | (true, 129) => "echo-reply",
        (false, 3) | (true, 1) => "destination-unreachable",
        (false, 11) | (true, 3) => "time-exceeded",
        (true, 2) => "packet-too-big",
        (true, 136) => "neighbor-advertisement",
        _ => "message",
    };
    let fam = if v6 { "icmpv6" } else { "icmp" };
    Some(format!("{fam} {name} (type {ty} code {code}) to {src_in}"))
}

/// Does a link of side `side` serve path `path`?
fn matches_side(side: Side, path: u8) -> bool {
    match path {
        plan::PATH_ACCESS => side == Side::Access,
        plan::PATH_PRIMARY => side == Side::Primary,
        plan::PATH_SECONDARY => side == Side::Secondary,
        plan::PATH_ECMP => side != Side::Access,
        _ => false,
    }
}

/// Verdict counts of a trace (`--summary`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Frames traced.
    pub frames: u64,
    /// Frames forwarded, per egress port name.
    pub forwarded: std::collections::BTreeMap<String, u64>,
    /// Frames dropped, per reason name (`resolve` verdicts count as
    /// `neighbor-unresolved`).
    pub dropped: std::collections::BTreeMap<&'static str, u64>,
    /// Frames consumed by the forwarder.
    pub local: u64,
    /// Packets held for a neighbour being resolved (when it answers within
    /// the capture they are sent after the frame that answered).
    pub held: u64,
    /// Resolution requests sent, per port name.
    pub resolution_requests: std::collections::BTreeMap<String, u64>,
    #[serde(skip)]
    by_port: Vec<u64>,
    #[serde(skip)]
    by_reason: [u64; DropReason::COUNT],
    #[serde(skip)]
    requests_by_port: Vec<u64>,
}

impl Summary {
    /// Count one record (no allocation).
    #[inline]
    pub fn count(&mut self, r: &Record<'_>) {
        self.frames += 1;
        let bump = |v: &mut Vec<u64>, p: u16| {
            if v.len() <= p as usize {
                v.resize(p as usize + 1, 0);
            }
            v[p as usize] += 1;
        };
        match r.verdict() {
            Verdict::Forward(p) => bump(&mut self.by_port, p),
            Verdict::Resolve(p) => {
                bump(&mut self.requests_by_port, p);
                self.by_reason[DropReason::NeighborUnresolved.index()] += 1;
            }
            Verdict::Drop(reason) => self.by_reason[reason.index()] += 1,
            Verdict::Held => self.held += 1,
            Verdict::Local | Verdict::Pending => self.local += 1,
        }
    }

    /// Fill the named maps from the counts (call once at the end).
    pub fn finish(&mut self, plan: &Plan) {
        let name = |p: usize| plan.port_name(p as u16);
        self.forwarded = self
            .by_port
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(p, n)| (name(p), *n))
            .collect();
        self.resolution_requests = self
            .requests_by_port
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(p, n)| (name(p), *n))
            .collect();
        self.dropped = DropReason::ALL
            .iter()
            .filter(|r| self.by_reason[r.index()] > 0)
            .map(|r| (r.name(), self.by_reason[r.index()]))
            .collect();
    }

    /// The human-readable form.
    pub fn text(&self) -> String {
        let mut s = format!("{} frames", self.frames);
        let total_fwd: u64 = self.forwarded.values().sum();
        let total_drop: u64 = self.dropped.values().sum();
        let _ = write!(
            s,
            ": {total_fwd} forwarded, {total_drop} dropped, {} local",
            self.local
        );
        for (p, n) in &self.forwarded {
            let _ = write!(s, "\n  forwarded  {n:>10}  out of {p}");
        }
        for (r, n) in &self.dropped {
            let _ = write!(s, "\n  dropped    {n:>10}  {r}");
        }
        for (p, n) in &self.resolution_requests {
            let _ = write!(s, "\n  requests   {n:>10}  resolution requests out of {p}");
        }
        if self.local > 0 {
            let _ = write!(s, "\n  local      {:>10}", self.local);
        }
        if self.held > 0 {
            let _ = write!(
                s,
                "\n  held       {:>10}  waiting for a neighbour",
                self.held
            );
        }
        s
    }
}
