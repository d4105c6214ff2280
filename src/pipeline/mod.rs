//! The forwarding pipeline: batches of up to 32 frames through parse →
//! classify → service → mark → encap → link pick, every drop counted by
//! [`DropReason`].
//!
//! Contract: [`Pipeline::process`] sets a [`Verdict`] on every frame of the
//! batch, rewrites forwarded frames in place, counts every frame exactly
//! once (forwarded to one port, dropped for one reason, or consumed
//! locally by the l3 service), never allocates, locks or makes a syscall,
//! and never panics on any frame. Frames of `l2` attachments are handled
//! in one pass; frames of `l3` attachments are collected and routed after
//! it, with one batched, prefetched table lookup.

pub mod batch;
pub mod classify;
pub mod drop;
pub mod links;
pub mod plan;
pub mod stats;

pub use batch::{Batch, Meta, Verdict, BATCH_SIZE};
pub use drop::DropReason;
pub use links::{flow_hash, LinkSnapshot, LinkState};
pub use plan::{Attachment, Egress, Plan, PortId, Service, Side, TagPush};
pub use stats::{Counters, PortCounters};

use crate::l3::{self, IcmpLimiter};
use crate::lpm::Route;
use crate::qos::{pcp_from_dscp, Marker};
use crate::wire::{self, ErrorKind};
use std::sync::Arc;

/// Milliseconds since the first call in this process: the coarse clock
/// of neighbour ageing and rate limits, read once per batch.
pub fn clock_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    // Start at 1 so that 0 can mean "never".
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
        + 1
}

/// One worker's pipeline: a plan, the shared link state, own counters.
pub struct Pipeline {
    plan: Arc<Plan>,
    links: LinkState,
    counters: Counters,
    icmp: IcmpLimiter,
    /// Time override for tests (ms); `None` reads the clock once per batch.
    fixed_now_ms: Option<u64>,
}

impl Pipeline {
    /// A pipeline over `plan`, reading link state from `links`.
    pub fn new(plan: Arc<Plan>, links: LinkState) -> Pipeline {
        let counters = Counters::new(plan.ports.len());
        Pipeline {
            plan,
            links,
            counters,
            icmp: IcmpLimiter::default(),
            fixed_now_ms: None,
        }
    }

    /// Pin the pipeline's clock to `ms` (tests of ageing and rate limits);
    /// `None` returns to the real clock.
    pub fn set_time_ms(&mut self, ms: Option<u64>) {
        self.fixed_now_ms = ms;
    }

    /// Route the l3 frames of a batch: one batched, prefetched IPv4 lookup
    /// per peering run, then each frame through [`l3::route_frame`].
    fn route_l3(&mut self, batch: &mut Batch, frames: &[u8]) {
        let plan = &*self.plan;
        let now_ms = self.fixed_now_ms.unwrap_or_else(clock_ms);
        // Destinations of the frames that share the first l3 frame's peering,
        // looked up as two batches (IPv4, IPv6) that prefetch every slot.
        let mut first: Option<u16> = None;
        let mut addrs4 = [0u32; BATCH_SIZE];
        let mut addrs6 = [0u128; BATCH_SIZE];
        let mut slot_of = [u8::MAX; BATCH_SIZE];
        let (mut m4, mut m6) = (0usize, 0usize);
        for (k, &i) in frames.iter().enumerate() {
            let meta = batch.meta(i as usize);
            let Some(Service::L3 { peering, .. }) = plan
                .attachments
                .get(meta.attachment as usize)
                .map(|a| a.service)
            else {
                continue;
            };
            if *first.get_or_insert(peering) != peering {
                continue;
            }
            match meta.info.l3 {
                wire::L3::Ipv4 => {
                    addrs4[m4] = l3::dst_v4(batch.buf(i as usize), meta);
                    slot_of[k] = m4 as u8;
                    m4 += 1;
                }
                wire::L3::Ipv6 => {
                    addrs6[m6] = l3::dst_v6(batch.buf(i as usize), meta);
                    slot_of[k] = (BATCH_SIZE + m6) as u8;
                    m6 += 1;
                }
                _ => {}
            }
        }
        // paths[0..32] IPv4 answers, paths[32..64] IPv6 answers.
        let mut paths = [Route::NONE; 2 * BATCH_SIZE];
        if let Some(p) = first.and_then(|pi| plan.l3.get(pi as usize)) {
            let (p4, p6) = paths.split_at_mut(BATCH_SIZE);
            if m4 > 0 {
                p.v4.lookup_batch(&addrs4[..m4], &mut p4[..m4]);
            }
            if m6 > 0 {
                p.v6.lookup_batch(&addrs6[..m6], &mut p6[..m6]);
            }
        }
        let mut rewritten = 0u64;
        let mut l3c = self.counters.l3;
        for (k, &i) in frames.iter().enumerate() {
            let (buf, meta) = batch.get_mut(i as usize);
            let verdict = match plan
                .attachments
                .get(meta.attachment as usize)
                .map(|a| a.service)
            {
                Some(Service::L3 { peering, side, pop }) => match plan.l3.get(peering as usize) {
                    Some(p) => {
                        let path =
                            (slot_of[k] != u8::MAX).then(|| paths[slot_of[k] as usize].next_hop());
                        let mut cx = l3::L3Context {
                            links: &self.links,
                            now_ms,
                            icmp: &mut self.icmp,
                            counters: &mut l3c,
                            dscp_rewritten: &mut rewritten,
                        };
                        l3::route_frame(p, side, pop, buf, meta, path, &mut cx)
                    }
                    None => Verdict::Drop(DropReason::UnknownAttachment),
                },
                _ => Verdict::Drop(DropReason::UnknownAttachment),
            };
            meta.verdict = verdict;
            self.counters.count(verdict, buf.len());
        }
        self.counters.l3 = l3c;
        self.counters.dscp_rewritten += rewritten;
    }

    /// The plan in use.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// Replace the plan (reload). Counters are kept; ports are matched by index.
    pub fn set_plan(&mut self, plan: Arc<Plan>) {
        if self.counters.ports.len() < plan.ports.len() {
            self.counters
                .ports
                .resize(plan.ports.len(), PortCounters::default());
        }
        self.plan = plan;
    }

    /// This worker's counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The shared link state.
    pub fn links(&self) -> &LinkState {
        &self.links
    }

    /// Count a frame the backend could not hand to the pipeline (e.g. too long).
    pub fn count_rx_drop(&mut self, port: PortId, bytes: usize, reason: DropReason) {
        if let Some(p) = self.counters.ports.get_mut(port as usize) {
            p.rx_packets += 1;
            p.rx_bytes += bytes as u64;
        }
        self.counters.drop(reason);
    }

    /// Count a forwarded frame that the backend failed to transmit: it was
    /// counted as tx, now it becomes a `tx-full` drop.
    pub fn count_tx_failure(&mut self, port: PortId, bytes: usize) {
        if let Some(p) = self.counters.ports.get_mut(port as usize) {
            p.tx_packets = p.tx_packets.saturating_sub(1);
            p.tx_bytes = p.tx_bytes.saturating_sub(bytes as u64);
        }
        self.counters.drop(DropReason::TxFull);
    }

    /// Run the batch through every stage; see the module contract.
    ///
    /// Each frame goes through all stages at once while its bytes and
    /// metadata are hot: parse, classify (the last lookup is reused while
    /// consecutive frames share a tag stack), then forward it (MTU check,
    /// DSCP mark, link pick and tag rewrite).
    pub fn process(&mut self, batch: &mut Batch) {
        let port = batch.port;
        let n = batch.len();
        let plan = &*self.plan;
        if port as usize >= self.counters.ports.len() {
            for i in 0..n {
                batch.get_mut(i).1.verdict = Verdict::Drop(DropReason::UnknownAttachment);
                self.counters.drop(DropReason::UnknownAttachment);
            }
            return;
        }
        let mut rx_bytes = 0u64;
        let mut rewritten = 0u64;
        let links = self.links.snapshot();
        // The last classification and what it resolves to, reused while
        // consecutive frames share a tag stack (the common case).
        let mut last_key = u64::MAX;
        let mut last = Resolved::Drop(DropReason::UnknownAttachment);
        let mut last_att = u32::MAX;
        let mut l3_frames = [0u8; BATCH_SIZE];
        let mut l3_count = 0usize;
        for (i, (buf, meta)) in batch.iter_mut().enumerate() {
            rx_bytes += buf.len() as u64;
            let verdict = match wire::parse_into(buf.frame(), &mut meta.info) {
                Ok(()) => {
                    let key = classify::key_of(port, &meta.info.tags);
                    if key != last_key {
                        last_key = key;
                        (last_att, last) = match plan.classify(key) {
                            Some(a) => (a, resolve(plan, &links, a)),
                            None => (u32::MAX, Resolved::Drop(DropReason::UnknownAttachment)),
                        };
                    }
                    meta.attachment = last_att;
                    match last {
                        Resolved::L2(ref action) => forward_one(action, &mut rewritten, buf, meta),
                        Resolved::L3 => Verdict::Pending,
                        Resolved::Drop(r) => Verdict::Drop(r),
                    }
                }
                Err(e) => Verdict::Drop(if e.kind == ErrorKind::TooManyTags {
                    DropReason::TooManyTags
                } else {
                    DropReason::Malformed
                }),
            };
            meta.verdict = verdict;
            if verdict == Verdict::Pending {
                // Routed below, after the batch's table lookups.
                l3_frames[l3_count] = i as u8;
                l3_count += 1;
            } else {
                self.counters.count(verdict, buf.len());
            }
        }
        self.counters.dscp_rewritten += rewritten;
        if l3_count > 0 {
            self.route_l3(batch, &l3_frames[..l3_count]);
        }
        if let Some(pc) = self.counters.ports.get_mut(port as usize) {
            pc.rx_packets += n as u64;
            pc.rx_bytes += rx_bytes;
        }
    }
}

/// What every frame of one attachment gets in this batch: the service
/// looked up, the marker and the link state applied once.
enum Resolved<'p> {
    /// Forward with this action.
    L2(L2Action<'p>),
    /// Route through the attachment's l3 peering (after the batch lookups).
    L3,
    /// Drop every frame for this reason.
    Drop(DropReason),
}

/// A layer 2 cross-connect resolved for one batch.
struct L2Action<'p> {
    pop: u8,
    mtu: u16,
    pcp_from_dscp: bool,
    /// `None` when the marker never changes a packet.
    marker: Option<&'p Marker>,
    /// The egress, or (`by_flow`) the two picked per flow.
    out: [Out; 2],
    /// Both trunk links up: the flow hash picks `out[0]` or `out[1]`.
    by_flow: bool,
}

/// An egress port with its tags as words (TPID << 16 | TCI), ready to
/// take the frame's PCP and be written.
#[derive(Clone, Copy)]
struct Out {
    words: [u32; 3],
    count: u8,
    port: PortId,
}

impl Out {
    fn of(p: &TagPush) -> Out {
        let [a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3] = p.bytes;
        Out {
            words: [
                u32::from_be_bytes([a0, a1, a2, a3]),
                u32::from_be_bytes([b0, b1, b2, b3]),
                u32::from_be_bytes([c0, c1, c2, c3]),
            ],
            count: p.count,
            port: p.port,
        }
    }
}

/// Resolve attachment `a` against the plan and the batch's link snapshot.
fn resolve<'p>(plan: &'p Plan, links: &LinkSnapshot<'_>, a: u32) -> Resolved<'p> {
    let Some(att) = plan.attachments.get(a as usize) else {
        return Resolved::Drop(DropReason::UnknownAttachment);
    };
    let Service::L2 {
        pop,
        ref egress,
        marker,
        mtu,
        pcp_from_dscp,
    } = att.service
    else {
        return Resolved::L3;
    };
    let (out, by_flow) = match egress {
        Egress::Access(p) => {
            if !links.is_up(p.port) {
                return Resolved::Drop(DropReason::PortDown);
            }
            ([Out::of(p); 2], false)
        }
        Egress::Trunk(pair) => match (links.is_up(pair[0].port), links.is_up(pair[1].port)) {
            (true, true) => ([Out::of(&pair[0]), Out::of(&pair[1])], true),
            (true, false) => ([Out::of(&pair[0]); 2], false),
            (false, true) => ([Out::of(&pair[1]); 2], false),
            (false, false) => return Resolved::Drop(DropReason::NoLinkUp),
        },
    };
    Resolved::L2(L2Action {
        pop,
        mtu,
        pcp_from_dscp,
        marker: plan
            .markers
            .get(marker as usize)
            .filter(|m| !m.is_identity()),
        out,
        by_flow,
    })
}

/// MTU, mark, link pick and encap for one classified frame.
#[inline(always)]
fn forward_one(
    action: &L2Action<'_>,
    rewritten: &mut u64,
    buf: &mut wire::PacketBuf,
    meta: &mut Meta,
) -> Verdict {
    let info = &mut meta.info;
    // MTU: the IP packet (padding excluded) or, for non-IP, the L2 payload.
    if info.l3_len > action.mtu as u32 {
        return Verdict::Drop(DropReason::OverMtu);
    }
    let frame = buf.frame_mut();
    // Mark.
    if info.is_ip() {
        let before = info.dscp();
        let mut after = before;
        if let Some(m) = action.marker {
            if let Some((_, a)) = m.apply(info, frame) {
                after = a;
            }
        }
        meta.dscp_before = before.get();
        meta.dscp_after = after.get();
        *rewritten += (before != after) as u64;
    }
    // Link pick. With both trunks up the flow hash picks one without a
    // branch: its top bit indexes the pair (a branch on it would be
    // mispredicted on every other flow).
    let out = if action.by_flow {
        &action.out[(flow_hash(info, frame) >> 31) as usize & 1]
    } else {
        &action.out[0]
    };
    // Encap: pop the attachment's tags, push the egress tags with their PCP
    // (into every word; words past `count` are not written).
    let pcp = if action.pcp_from_dscp && info.is_ip() {
        pcp_from_dscp(info.dscp())
    } else {
        info.tags.outer().map_or(0, |t| t.pcp)
    };
    let pcp = (pcp as u32) << 13;
    let [w0, w1, w2] = out.words;
    let words = [w0 | pcp, w1 | pcp, w2 | pcp];
    if !buf.rewrite_tags_words(action.pop as usize, words, out.count as usize) {
        return Verdict::Drop(DropReason::TagRewrite);
    }
    Verdict::Forward(out.port)
}
