//! The forwarding pipeline: a batch of up to 32 frames through parse →
//! classify (by tag stack, or on a backbone port by label, then out of
//! the labels: [`mpls`]) → service (`l2` cross-connect, or the `l3` stage) → the one
//! egress tail (mark → link pick → encap → MAC rewrite), every drop
//! counted by [`DropReason`].
//!
//! Contract: [`Pipeline::process`] sets a [`Verdict`] on every frame of the
//! batch, rewrites forwarded frames in place, counts every frame exactly
//! once (forwarded to one port, dropped for one reason, or consumed
//! locally by the l3 service), never allocates, locks or makes a syscall,
//! and never panics on any frame. The batch sees one link state (a
//! [`LinkSnapshot`] taken at its start) and one clock reading. Frames of
//! `l2` attachments are handled in one pass; frames of `l3` attachments
//! are collected and routed after it ([`l3`]), with one batched, prefetched
//! table lookup. Both services leave through [`egress`].
//!
//! The pipeline knows the [`Plan`] and the frame types; it knows no
//! backend, no configuration file and no thread.

pub mod egress;
pub mod l3;
pub mod links;
pub mod mpls;
pub mod stats;

pub use links::{flow_hash, LinkSnapshot, LinkState};
pub use stats::{Counters, L3Counters, PortCounters};

use crate::frame::{Batch, DropReason, PortId, Verdict, BATCH_SIZE};
use crate::plan::{classify, Attachment, Egress, Plan, Service};
use crate::wire::mpls::ETHERTYPE_MPLS;
use crate::wire::{self, ErrorKind};
use egress::{Bridged, Out, Step, Tail};
use l3::{HoldQueue, RateLimiter};
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
    icmp: RateLimiter,
    punt: RateLimiter,
    hold: HoldQueue,
    /// Time override for tests (ms); `None` reads the clock once per batch.
    fixed_now_ms: Option<u64>,
    /// The time of the last batch that carried its own (a capture's).
    batch_now_ms: Option<u64>,
}

impl Pipeline {
    /// A pipeline over `plan`, reading link state from `links`.
    pub fn new(plan: Arc<Plan>, links: LinkState) -> Pipeline {
        let counters = Counters::new(plan.ports.len());
        Pipeline {
            plan,
            links,
            counters,
            icmp: RateLimiter::icmp(),
            punt: RateLimiter::punt(),
            hold: HoldQueue::new(),
            fixed_now_ms: None,
            batch_now_ms: None,
        }
    }

    /// Pin the pipeline's clock to `ms` (tests of ageing and rate limits);
    /// `None` returns to the real clock. A batch that carries its own
    /// time ([`Batch::time_ms`]) runs at that time.
    pub fn set_time_ms(&mut self, ms: Option<u64>) {
        self.fixed_now_ms = ms;
    }

    /// The plan in use.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// Replace the plan (reload) between batches. Counters are kept; ports
    /// are matched by index. Packets held for a neighbour go on waiting
    /// when the new plan kept their peering's neighbour table and links
    /// (the same peering, unchanged); the others are dropped
    /// (`neighbor-unresolved`).
    pub fn set_plan(&mut self, plan: Arc<Plan>) {
        let old = std::mem::replace(&mut self.plan, plan);
        let new = &self.plan;
        self.hold.keep_where(
            |p| match (old.l3.get(p as usize), new.l3.get(p as usize)) {
                (Some(a), Some(b)) => Arc::ptr_eq(&a.neighbors, &b.neighbors) && a.links == b.links,
                _ => false,
            },
            &mut self.counters,
        );
        if self.counters.ports.len() < self.plan.ports.len() {
            self.counters
                .ports
                .resize(self.plan.ports.len(), PortCounters::default());
        }
    }

    /// Start over as [`Pipeline::new`] would, keeping the allocations:
    /// counters zeroed, held packets forgotten (not counted), rate limits
    /// and clock overrides reset. The plan and the link state are kept.
    pub fn reset(&mut self) {
        self.counters = Counters::new(self.plan.ports.len());
        self.icmp = RateLimiter::icmp();
        self.punt = RateLimiter::punt();
        self.hold.forget();
        self.fixed_now_ms = None;
        self.batch_now_ms = None;
    }

    /// Packets waiting for a neighbour now.
    #[inline(always)]
    pub fn held(&self) -> usize {
        self.hold.len()
    }

    /// Move held packets that can leave into `batch` (cleared first):
    /// those whose neighbour answered, with their verdict `Forward`, those
    /// held too long (`Drop`), and renewed requests (`Resolve`); each
    /// counted. The caller transmits the batch. Returns its length.
    pub fn release(&mut self, batch: &mut Batch) -> usize {
        batch.clear();
        if self.hold.is_empty() {
            return 0;
        }
        let now_ms = self
            .fixed_now_ms
            .or(self.batch_now_ms)
            .unwrap_or_else(clock_ms);
        self.hold
            .release(&self.plan, now_ms, batch, &mut self.counters)
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
    /// Each frame goes through parse and classify while its bytes and
    /// metadata are hot (the last classification is reused while
    /// consecutive frames share a tag stack); an `l2` frame goes on through
    /// the egress tail at once, an `l3` frame is routed after the loop.
    pub fn process(&mut self, batch: &mut Batch) {
        // One instantiation per plan kind: a plan without MPLS attachments
        // runs code with no label check in it (a predictable branch per
        // frame on the label path cost the VLAN cases 5-10 %, measured).
        if self.plan.labels {
            self.process_as::<true>(batch)
        } else {
            self.process_as::<false>(batch)
        }
    }

    #[inline(always)]
    fn process_as<const LABELS: bool>(&mut self, batch: &mut Batch) {
        let port = batch.port;
        let n = batch.len();
        let plan = &*self.plan;
        if batch.time_ms.is_some() {
            self.batch_now_ms = batch.time_ms;
        }
        // Frames the backend could not hand over (too long) are counted
        // here, as received and malformed.
        let (oversize, oversize_bytes) = batch.take_oversize();
        if port as usize >= self.counters.ports.len() {
            for i in 0..n {
                batch.get_mut(i).1.verdict = Verdict::Drop(DropReason::UnknownAttachment);
                self.counters.drop(DropReason::UnknownAttachment);
            }
            return;
        }
        let mut rx_bytes = oversize_bytes;
        let mut rewritten = 0u64;
        let links = self.links.snapshot();
        let backbone = LABELS && plan.ports.get(port as usize).is_some_and(|p| p.backbone);
        // The last classification and what it resolves to, reused while
        // consecutive frames share a tag stack (the common case).
        let mut last_key = u64::MAX;
        let mut last = Resolved::Drop(DropReason::UnknownAttachment);
        let mut last_att = u32::MAX;
        // The MPLS side of `last_att` (labelled plans only).
        let mut last_mpls: Option<crate::plan::MplsIn> = None;
        let mut l3_frames = [0u8; BATCH_SIZE];
        let mut l3_count = 0usize;
        for (i, (buf, meta)) in batch.iter_mut().enumerate() {
            rx_bytes += buf.wire_len() as u64;
            // On a backbone port, a labelled frame (untagged: MPLS
            // attachments have no VLAN) is classified by its label and
            // parsed once out of its labels; its outer parse would only
            // find the ethertype.
            let labelled = backbone && buf.frame().get(12..14) == Some(&MPLS_BYTES);
            let parsed = if labelled {
                Ok(())
            } else {
                wire::parse_into(buf.frame(), &mut meta.info)
            };
            let verdict = match parsed {
                Ok(()) => 'frame: {
                    let (key, top) = if labelled {
                        match mpls::label_key(plan, port, buf.frame(), 14) {
                            Ok(k) => k,
                            Err(r) => break 'frame mpls::refuse(r, buf, meta),
                        }
                    } else {
                        (classify::key_of(port, &meta.info.tags), 0)
                    };
                    if key != last_key {
                        last_key = key;
                        (last_att, last) = match plan.classify(key) {
                            Some(a) => (a, resolve(plan, &links, a)),
                            None if labelled => {
                                (u32::MAX, Resolved::Drop(DropReason::UnknownLabel))
                            }
                            None => (u32::MAX, Resolved::Drop(DropReason::UnknownAttachment)),
                        };
                        if LABELS {
                            last_mpls = plan
                                .attachments
                                .get(last_att as usize)
                                .and_then(|a: &Attachment| a.mpls);
                        }
                    }
                    meta.attachment = last_att;
                    if labelled {
                        // Out of its labels before the service: the frame
                        // goes on as if it had arrived plain.
                        let taken = match &last_mpls {
                            Some(m) => mpls::take_in(m, buf, meta, 14, top),
                            None => Err(DropReason::UnknownLabel),
                        };
                        if let Err(r) = taken {
                            break 'frame mpls::refuse(r, buf, meta);
                        }
                    }
                    match last {
                        Resolved::L2(ref tail, pop) => {
                            let step = if LABELS && tail.labelled {
                                tail.run_labelled(pop, &mut rewritten, buf, meta, &Bridged)
                            } else {
                                tail.run(pop, &mut rewritten, buf, meta, &Bridged)
                            };
                            match step {
                                Step::Done(v) => v,
                                // A cross-connect always knows its MACs.
                                Step::Unresolved(_) => Verdict::Drop(DropReason::TagRewrite),
                            }
                        }
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
                self.counters.count(verdict, buf.wire_len());
            }
        }
        self.counters.dscp_rewritten += rewritten;
        for _ in 0..oversize {
            self.counters.drop(DropReason::Malformed);
        }
        if l3_count > 0 {
            // The clock is read only when a frame needs it (the l3 stage).
            let now_ms = batch.time_ms.or(self.fixed_now_ms).unwrap_or_else(clock_ms);
            let mut cx = l3::Context {
                links: &links,
                now_ms,
                icmp: &mut self.icmp,
                punt: &mut self.punt,
                counters: &mut self.counters,
                hold: &mut self.hold,
            };
            l3::route_batch::<LABELS>(plan, batch, &l3_frames[..l3_count], &mut cx);
        }
        if let Some(pc) = self.counters.ports.get_mut(port as usize) {
            pc.rx_packets += (n + oversize) as u64;
            pc.rx_bytes += rx_bytes;
        }
    }
}

/// The MPLS unicast ethertype as it appears on the wire.
const MPLS_BYTES: [u8; 2] = ETHERTYPE_MPLS.to_be_bytes();

/// What every frame of one attachment gets in this batch: the service
/// looked up, the marker and the link state applied once.
enum Resolved<'p> {
    /// Cross-connect through this tail, popping this many tags.
    L2(Tail<'p>, u8),
    /// Route through the attachment's l3 peering (after the batch lookups).
    L3,
    /// Drop every frame for this reason.
    Drop(DropReason),
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
    let (pair, down) = match egress {
        Egress::Access(p) => ([Out::bridged(p); 2], DropReason::PortDown),
        Egress::Trunk([a, b]) => ([Out::bridged(a), Out::bridged(b)], DropReason::NoLinkUp),
    };
    let marker = plan.markers.get(marker as usize);
    match Tail::over(links, pair, mtu, pcp_from_dscp, marker) {
        Some(t) => Resolved::L2(t, pop),
        None => Resolved::Drop(down),
    }
}
