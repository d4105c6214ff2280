//! The one data-path loop body: receive a batch from a port → run it
//! through the [`Pipeline`] → transmit the forwarded frames, one send per
//! egress port → count what a port did not take. The runtime's workers,
//! `xconnect trace`, the benchmarks, the fuzz targets and the in-memory
//! ports ([`pump`]) all move frames through [`Driver::step`], so what is
//! measured, traced and fuzzed is what runs.
//!
//! Contract:
//! - [`Ports`] is how the driver reaches the ports: any slice of
//!   [`Backend`]s indexed by port id, or a type of the caller's (a bench
//!   source and sink, a capture file).
//! - Every frame received is counted once by the pipeline; a forwarded
//!   frame that its port did not accept is counted again as a `tx-full`
//!   drop in place of its transmit ([`Pipeline::count_tx_failure`]).
//!   Frames a backend could not hand over (too long) reach the pipeline as
//!   the batch's oversize count, also when no other frame came.
//! - An [`Observer`] sees each batch as received, after processing, and
//!   after each send (the capture taps); `()` observes nothing.
//! - A step is a lending window ([`Batch::open_lending`]): a backend may
//!   lend a super-frame's payload from its receive memory instead of
//!   copying it, and the window closes (every lent payload forgotten)
//!   before the step returns, so no port receives again, or is dropped,
//!   while a batch reads its memory.
//! - Packets the pipeline holds for a neighbour being resolved leave
//!   through [`Driver::release`] (after every step), in a batch of their
//!   own.
//! - No allocation after [`Driver::new`], no lock; the system calls are
//!   the backends' (at most one receive and one send per port per batch
//!   for the ring backends).

use crate::frame::{Batch, Outgoing, PortId, Verdict, BATCH_SIZE};
use crate::io::mem::MemPort;
use crate::io::Backend;
use crate::pipeline::Pipeline;
use std::io;

/// The ports a driver moves frames between, by port id.
pub trait Ports {
    /// Fill `batch` (cleared, its port set) with frames received on `port`;
    /// returns how many.
    fn recv(&mut self, port: PortId, batch: &mut Batch) -> io::Result<usize>;

    /// Transmit `out` (frames of one batch leaving by `out.port`, in
    /// order); returns how many were accepted (a prefix).
    fn send(&mut self, out: Outgoing<'_>) -> io::Result<usize>;

    /// Whether `port` sends super-frames itself ([`Backend::takes_super_frames`]);
    /// for one that does not, the driver cuts them into segments first.
    fn takes_super_frames(&self, _port: PortId) -> bool {
        false
    }
}

impl<B: Backend> Ports for [B] {
    #[inline]
    fn recv(&mut self, port: PortId, batch: &mut Batch) -> io::Result<usize> {
        match self.get_mut(port as usize) {
            Some(b) => b.recv(batch),
            None => Ok(0),
        }
    }

    #[inline]
    fn send(&mut self, out: Outgoing<'_>) -> io::Result<usize> {
        match self.get_mut(out.port as usize) {
            Some(b) => b.send(out),
            None => Ok(0),
        }
    }

    fn takes_super_frames(&self, port: PortId) -> bool {
        self.get(port as usize)
            .is_some_and(|b| b.takes_super_frames())
    }
}

/// Sees each batch on its way through [`Driver::step`].
pub trait Observer {
    /// The batch as received, before the pipeline rewrote it.
    fn received(&mut self, _batch: &Batch) {}
    /// The batch after the pipeline: verdicts set, frames rewritten.
    fn processed(&mut self, _batch: &Batch) {}
    /// A batch of packets the pipeline held and now lets go (sent or
    /// dropped), before it is sent: not received in this step, so
    /// [`Observer::received`] never saw it. By default it is observed as
    /// processed.
    fn released(&mut self, batch: &Batch) {
        self.processed(batch);
    }
    /// `sent` of the frames the batch sends out of `port` were accepted.
    fn transmitted(&mut self, _batch: &Batch, _port: PortId, _sent: usize) {}
}

impl Observer for () {}

impl<O: Observer> Observer for Option<O> {
    #[inline]
    fn received(&mut self, batch: &Batch) {
        if let Some(o) = self {
            o.received(batch);
        }
    }
    #[inline]
    fn processed(&mut self, batch: &Batch) {
        if let Some(o) = self {
            o.processed(batch);
        }
    }
    #[inline]
    fn released(&mut self, batch: &Batch) {
        if let Some(o) = self {
            o.released(batch);
        }
    }
    #[inline]
    fn transmitted(&mut self, batch: &Batch, port: PortId, sent: usize) {
        if let Some(o) = self {
            o.transmitted(batch, port, sent);
        }
    }
}

/// The driver's own state: the batch it receives into and the batch held
/// packets leave in (allocated once).
pub struct Driver {
    batch: Batch,
    released: Batch,
    soft: SoftGso,
}

/// Room to cut a super-frame into segments in software for a port that
/// cannot send super-frames ([`Ports::takes_super_frames`]): one whole
/// super-frame and a batch of segments, allocated the first time one is
/// needed.
#[derive(Default)]
pub struct SoftGso {
    room: Option<Box<(Vec<u8>, Batch)>>,
}

impl Default for Driver {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("batch_len", &self.batch.len())
            .finish()
    }
}

impl Driver {
    /// A driver with its batch buffers allocated.
    pub fn new() -> Driver {
        Driver {
            batch: Batch::new(),
            released: Batch::new(),
            soft: SoftGso::default(),
        }
    }

    /// The last batch stepped (its frames as sent and their metadata).
    pub fn batch(&self) -> &Batch {
        &self.batch
    }

    /// One step on `port`: receive a batch, process it, transmit it per
    /// egress port, count refusals. Returns the frames taken from the port,
    /// too-long ones included (0: the port had nothing and nothing was
    /// processed).
    #[inline]
    pub fn step<P: Ports + ?Sized, O: Observer>(
        &mut self,
        pipeline: &mut Pipeline,
        ports: &mut P,
        port: PortId,
        observer: &mut O,
    ) -> usize {
        let batch = &mut self.batch;
        batch.clear();
        batch.port = port;
        // SAFETY: the window closes below, before `step` returns, and no
        // port receives, is flushed or is dropped in between: `ports` is
        // borrowed for the whole step and only sent to.
        unsafe { batch.open_lending() };
        let n = ports.recv(port, batch).unwrap_or(0) + batch.oversize();
        if n == 0 {
            batch.close_lending();
            return 0;
        }
        observer.received(batch);
        pipeline.process(batch);
        observer.processed(batch);
        transmit(pipeline, ports, batch, observer, &mut self.soft);
        batch.close_lending();
        if pipeline.held() > 0 {
            self.release(pipeline, ports, observer);
        }
        n
    }

    /// Send what the pipeline's hold queue lets go (packets whose next hop
    /// answered, renewed requests; packets held too long are dropped), as
    /// a batch of its own: the observer sees it released, then sent.
    /// Returns the frames in it. The driver calls it after every step; a
    /// worker calls it while idle, for neighbours another worker resolved.
    pub fn release<P: Ports + ?Sized, O: Observer>(
        &mut self,
        pipeline: &mut Pipeline,
        ports: &mut P,
        observer: &mut O,
    ) -> usize {
        let mut total = 0;
        // A full batch means more may be ready: bounded by the queue size.
        loop {
            let n = pipeline.release(&mut self.released);
            if n == 0 {
                return total;
            }
            total += n;
            observer.released(&self.released);
            transmit(pipeline, ports, &self.released, observer, &mut self.soft);
            if n < BATCH_SIZE {
                return total;
            }
        }
    }
}

/// Send a processed batch: one send per egress port, in the order the
/// ports first appear, each given exactly its frames; frames a port
/// refused become `tx-full` drops.
///
/// The frames are grouped by port as one bit per frame in each port's set
/// ([`Outgoing`]), without a branch per frame (consecutive frames of a
/// flow-hashed pair of links alternate ports at random: a branch on "port
/// changed" was mispredicted on every other frame). One pass over the
/// verdicts builds the set of the first port and notes every frame's
/// port; only frames of other ports (the other link of a pair) take a
/// compare of those ports per further port.
#[inline]
pub fn transmit<P: Ports + ?Sized, O: Observer>(
    pipeline: &mut Pipeline,
    ports: &mut P,
    batch: &Batch,
    observer: &mut O,
    soft: &mut SoftGso,
) {
    let metas = batch.metas();
    let Some(first) = metas.iter().find_map(|m| m.verdict.egress()) else {
        return;
    };
    let mut port_of = [PortId::MAX; BATCH_SIZE];
    let (mut leaving, mut to_first) = (0u32, 0u32);
    // Last frame first, each shifting the sets up one place: no shift by
    // a variable count (three micro-ops on x86) and no select that the
    // compiler could turn back into a branch.
    for (slot, meta) in port_of.iter_mut().zip(metas).rev() {
        let e = meta.verdict.egress();
        let p = e.unwrap_or(PortId::MAX);
        *slot = p;
        leaving = leaving << 1 | e.is_some() as u32;
        to_first = to_first << 1 | (p == first) as u32;
    }
    let mut set = to_first & leaving;
    let mut left = leaving & !set;
    let mut port = first;
    loop {
        send(
            pipeline,
            ports,
            batch,
            observer,
            Outgoing::new(port, batch, set),
            soft,
        );
        if left == 0 {
            return;
        }
        port = port_of[left.trailing_zeros() as usize];
        set = frames_to(&port_of, port) & left;
        left &= !set;
    }
}

/// One port's send; the frames it refused (the tail of its set) become
/// `tx-full` drops.
#[inline(always)]
fn send<P: Ports + ?Sized, O: Observer>(
    pipeline: &mut Pipeline,
    ports: &mut P,
    batch: &Batch,
    observer: &mut O,
    out: Outgoing<'_>,
    soft: &mut SoftGso,
) {
    let sent = if out.supers() != 0 && !ports.takes_super_frames(out.port) {
        send_cut(ports, out, soft)
    } else {
        ports.send(out).unwrap_or(0)
    };
    observer.transmitted(batch, out.port, sent);
    if sent < out.len() {
        for i in out.positions().skip(sent) {
            if let Verdict::Forward(_) = batch.meta(i).verdict {
                pipeline.count_tx_failure(out.port, batch.buf(i).wire_len());
            }
        }
    }
}

/// Send `out`, which holds super-frames, to a port that cannot take them:
/// the ordinary frames as they are, each super-frame cut into segments in
/// software ([`crate::wire::Segmenter`]) and sent as a batch of its own,
/// in order. Returns how many of `out`'s frames were accepted (a prefix):
/// a super-frame counts when all of its segments were; one that cannot be
/// rejoined or cut (see [`SuperFrame::rejoin`](crate::frame::SuperFrame::rejoin))
/// is refused.
#[cold]
fn send_cut<P: Ports + ?Sized>(ports: &mut P, out: Outgoing<'_>, soft: &mut SoftGso) -> usize {
    let batch = out.batch();
    let mut sent = 0;
    let mut rest = out.mask();
    while rest != 0 {
        let supers = rest & batch.super_mask();
        let before = if supers == 0 {
            rest
        } else {
            rest & ((1u32 << supers.trailing_zeros()) - 1)
        };
        let (set, cut) = if before != 0 {
            (before, None)
        } else {
            let i = supers.trailing_zeros() as usize;
            (1u32 << i, batch.super_frame(i).map(|sf| (i, sf)))
        };
        rest &= !set;
        let done = match cut {
            // Ordinary frames, or a slot whose buffer now holds a reply.
            None => {
                let o = out.with_mask(set);
                let n = ports.send(o).unwrap_or(0);
                sent += n;
                n == o.len()
            }
            Some((i, sf)) => {
                let ok = cut_and_send(ports, out.port, batch.buf(i).frame(), sf, soft);
                sent += usize::from(ok);
                ok
            }
        };
        if !done {
            break;
        }
    }
    sent
}

/// Cut one super-frame (its headers as the pipeline left them, and its
/// payload) into segments and send them out of `port`; `true` when every
/// segment was accepted.
fn cut_and_send<P: Ports + ?Sized>(
    ports: &mut P,
    port: PortId,
    headers: &[u8],
    sf: &crate::frame::SuperFrame,
    soft: &mut SoftGso,
) -> bool {
    let room = soft.room.get_or_insert_with(|| {
        Box::new((
            vec![0u8; crate::frame::superframe::SUPER_FRAME_MAX],
            Batch::new(),
        ))
    });
    let (whole, segs) = &mut **room;
    let Ok((n, offload)) = sf.rejoin_whole(headers, whole) else {
        return false;
    };
    let Ok(mut cutter) = crate::wire::Segmenter::new(&whole[..n], &offload, None) else {
        return false;
    };
    loop {
        segs.clear();
        segs.port = port;
        while !segs.is_full() {
            let Some(buf) = segs.next_buf() else { break };
            let area = &mut buf.receive_area()[..crate::wire::packet::MAX_FRAME];
            match cutter.write_next(area) {
                Ok(Some(len)) => {
                    buf.set_received(len);
                    segs.commit();
                }
                Ok(None) => break,
                Err(_) => return false,
            }
        }
        let count = segs.len();
        if count == 0 {
            return true;
        }
        let all = if count >= 32 {
            u32::MAX
        } else {
            (1u32 << count) - 1
        };
        if ports.send(Outgoing::new(port, segs, all)).unwrap_or(0) < count {
            return false;
        }
        if count < crate::frame::BATCH_SIZE {
            return true;
        }
    }
}

/// The frames whose egress port is `port`, one bit each.
#[inline(always)]
fn frames_to(port_of: &[PortId; BATCH_SIZE], port: PortId) -> u32 {
    let mut set = 0u32;
    for (i, &p) in port_of.iter().enumerate() {
        set |= ((p == port) as u32) << i;
    }
    set
}

/// Run every frame queued on the in-memory `ports` (indexed by port id)
/// through `pipeline`, port by port, delivering what is sent to the `sent`
/// list of its egress port. Returns the frames received (frames too long
/// for a buffer included: they are counted as `malformed`).
pub fn pump(pipeline: &mut Pipeline, ports: &mut [MemPort]) -> usize {
    let mut driver = Driver::new();
    let mut total = 0;
    for p in 0..ports.len() {
        while ports[p].pending() > 0 {
            let before = ports[p].pending();
            driver.step(pipeline, ports, p as PortId, &mut ());
            total += before - ports[p].pending();
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::DropReason;
    use crate::pipeline::LinkState;

    /// Records what each port was given; port 2 takes at most one frame.
    #[derive(Default)]
    struct Recorder {
        sends: Vec<(PortId, Vec<u8>)>,
    }

    impl Ports for Recorder {
        fn recv(&mut self, _port: PortId, _batch: &mut Batch) -> io::Result<usize> {
            Ok(0)
        }
        fn send(&mut self, out: Outgoing<'_>) -> io::Result<usize> {
            let firsts: Vec<u8> = out.frames().map(|f| f[0]).collect();
            self.sends.push((out.port, firsts));
            Ok(if out.port == 2 {
                out.len().min(1)
            } else {
                out.len()
            })
        }
    }

    /// Records every send's port and set.
    #[derive(Default)]
    struct Sets(Vec<(PortId, u32)>);

    impl Ports for Sets {
        fn recv(&mut self, _port: PortId, _batch: &mut Batch) -> io::Result<usize> {
            Ok(0)
        }
        fn send(&mut self, out: Outgoing<'_>) -> io::Result<usize> {
            self.0.push((out.port, out.mask()));
            Ok(out.len())
        }
    }

    #[test]
    fn grouping_matches_a_scan_per_port_in_order_of_appearance() {
        let plan = std::sync::Arc::new(crate::config::compile(&crate::bench::cases::config()));
        let mut pipeline = Pipeline::new(plan, LinkState::new(4));
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..2000 {
            let mut batch = Batch::new();
            let n = (next() % 33) as usize;
            for i in 0..n {
                assert!(batch.push(&[0; 60]));
                let r = next();
                // Few ports (as on a link pair), the largest id, drops.
                let port = [0, 2, 3, PortId::MAX, 7][(r >> 8) as usize % 5];
                let v = match r % 6 {
                    0 => Verdict::Drop(DropReason::NoRoute),
                    1 => Verdict::Resolve(port),
                    2 => Verdict::Local,
                    _ => Verdict::Forward(port),
                };
                batch.set_verdict(i, v);
            }
            let mut want = Vec::new();
            for m in batch.metas() {
                if let Some(p) = m.verdict.egress() {
                    if !want.iter().any(|&(q, _)| q == p) {
                        want.push((p, Outgoing::scan(p, &batch).mask()));
                    }
                }
            }
            let mut got = Sets::default();
            transmit(
                &mut pipeline,
                &mut got,
                &batch,
                &mut (),
                &mut SoftGso::default(),
            );
            assert_eq!(got.0, want, "round {round}");
        }
    }

    #[test]
    fn each_port_gets_its_frames_in_order_and_refusals_count_as_tx_full() {
        let plan = std::sync::Arc::new(crate::config::compile(&crate::bench::cases::config()));
        let mut pipeline = Pipeline::new(plan, LinkState::new(4));
        let mut batch = Batch::new();
        // Frame i starts with byte i; verdicts interleave three ports,
        // a drop and a local frame.
        let verdicts = [
            Verdict::Forward(3),
            Verdict::Forward(2),
            Verdict::Drop(DropReason::NoRoute),
            Verdict::Forward(3),
            Verdict::Forward(2),
            Verdict::Local,
            Verdict::Forward(0),
            Verdict::Forward(2),
        ];
        for (i, v) in verdicts.iter().enumerate() {
            assert!(batch.push(&[i as u8; 60]));
            batch.set_verdict(i, *v);
        }
        let mut ports = Recorder::default();
        transmit(
            &mut pipeline,
            &mut ports,
            &batch,
            &mut (),
            &mut SoftGso::default(),
        );
        assert_eq!(
            ports.sends,
            vec![(3, vec![0, 3]), (2, vec![1, 4, 7]), (0, vec![6])],
            "ports in order of first appearance, frames in batch order"
        );
        // Port 2 took one of three: two tx-full drops.
        assert_eq!(pipeline.counters().drops_for(DropReason::TxFull), 2);
    }
}
