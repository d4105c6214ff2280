//! One worker: a pinned thread with its own pipeline and its own queue of
//! every port, running the batch loop.
//!
//! Contract: the loop steps the [`Driver`] on each port in turn (receive a
//! batch, run it through the pipeline, send the forwarded frames per egress
//! port, count what a port did not accept as `tx-full`). Before each round
//! it checks the [`PlanHandle`]'s generation (one atomic load) and takes a
//! newly published plan, so a reload lands between batches. It also checks
//! its [`Inbox`] (one atomic load): when the link monitor opened a port
//! again (its interface deleted and created again), the worker puts the
//! new queue in the place of the old one between two batches — the old
//! queue's kernel drops counted, its descriptors taken out of the `epoll`
//! set and handed back to be closed by the monitor (closing waits for the
//! kernel), the new one registered under the same token —
//! and acknowledges it; it never waits for the monitor. A port a reload
//! added arrives the same way (the port list grows to its id), and a port
//! a reload removed is replaced by a [`Closed`] queue. When a whole
//! round over the ports brought nothing
//! the worker releases packets held for a neighbour that another worker
//! resolved, then sleeps in `epoll` (mio) on all its ports, at most
//! [`IDLE_WAIT`] ([`HELD_WAIT`] while it holds packets), so an idle
//! forwarder uses no CPU. Counters are published
//! to the shared [`Snapshot`] every [`PUBLISH_INTERVAL`] and at exit.
//! With a [`CaptureTap`] the loop hands it each batch before the pipeline
//! (received frames), after it (drops) and after each send (transmitted
//! and refused frames), and flushes it when idle and at every publish.
//! A tap started or stopped by `ctl capture` arrives in its [`TapInbox`]
//! (one atomic load per round) and is taken between two rounds.
//! With a priority the thread runs `SCHED_FIFO` ([`set_fifo_priority`])
//! before its first batch; a refusal ends the worker with an error that
//! names the privilege.

use super::capture_ctl::TapInbox;
use super::handover::Inbox;
use crate::capture::CaptureTap;
use crate::driver::Driver;
use crate::io::{Closed, Port};
use crate::pipeline::{Counters, Pipeline};
use crate::plan::PlanHandle;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Run the calling thread `SCHED_FIFO` at `priority` (1-99): it then runs
/// whenever it is runnable, ahead of every normal thread of its core (a
/// worker sharing its core with a kernel thread that feeds it, such as a
/// threaded-NAPI receive). The kernel's RT throttling still leaves normal
/// threads 5 % of the core. It sleeps in `epoll` when idle as before.
pub fn set_fifo_priority(priority: u8) -> std::io::Result<()> {
    if !(1..=99).contains(&priority) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("priority {priority} is outside 1-99"),
        ));
    }
    let param = libc::sched_param {
        sched_priority: libc::c_int::from(priority),
    };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param
    // that the kernel only reads.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Longest sleep when idle (bounds the reaction to a stop request).
pub const IDLE_WAIT: Duration = Duration::from_millis(50);
/// Longest sleep when idle with packets held for a neighbour: another
/// worker may have learned it (bounds the extra delay of those packets).
pub const HELD_WAIT: Duration = Duration::from_millis(2);
/// How often a worker publishes its counters.
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

/// A worker's counters as last published.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Pipeline counters.
    pub counters: Counters,
    /// Kernel drops per port (ring or socket queue full).
    pub kernel_drops: Vec<u64>,
}

/// Everything a worker needs; moved into its thread.
pub struct Worker {
    /// Index (for pinning and messages).
    pub index: usize,
    /// Core to pin to, if any.
    pub core: Option<core_affinity::CoreId>,
    /// `SCHED_FIFO` priority, if any.
    pub priority: Option<u8>,
    /// This worker's pipeline.
    pub pipeline: Pipeline,
    /// Where the current plan is published.
    pub plan: Arc<PlanHandle>,
    /// This worker's queue of every port, by port id.
    pub ports: Vec<Box<dyn Port>>,
    /// Where counters are published.
    pub snapshot: Arc<Mutex<Snapshot>>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
    /// This worker's capture tap, when `--capture` is on.
    pub capture: Option<CaptureTap>,
    /// Where the link monitor hands over queues of reopened ports.
    pub reopen: Inbox,
    /// Where `ctl capture start|stop` hands over a tap (or none).
    pub taps: TapInbox,
}

impl Worker {
    /// Run until `stop` is set.
    pub fn run(mut self) -> std::io::Result<()> {
        if let Some(core) = self.core {
            core_affinity::set_for_current(core);
        }
        if let Some(p) = self.priority {
            set_fifo_priority(p).map_err(|e| {
                let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                    " (needs CAP_SYS_NICE: run as root or `setcap cap_sys_nice+ep`)"
                } else {
                    ""
                };
                std::io::Error::new(e.kind(), format!("SCHED_FIFO priority {p}: {e}{hint}"))
            })?;
        }
        let mut poll = mio::Poll::new()?;
        for (i, p) in self.ports.iter_mut().enumerate() {
            p.register(poll.registry(), mio::Token(i))?;
        }
        let mut events = mio::Events::with_capacity(64);
        let mut driver = Driver::new();
        let mut kernel_drops = vec![0u64; self.ports.len()];
        let mut last_publish = Instant::now();
        let mut generation = self.plan.generation();
        while !self.stop.load(Ordering::Relaxed) {
            let g = self.plan.generation();
            if g != generation {
                generation = g;
                self.pipeline.set_plan(self.plan.current());
            }
            if self.reopen.pending() {
                self.take_reopened(poll.registry(), &mut kernel_drops);
            }
            if self.taps.pending() {
                self.taps.apply(&mut self.capture);
            }
            let mut got = 0;
            for port in 0..self.ports.len() {
                got += driver.step(
                    &mut self.pipeline,
                    &mut self.ports[..],
                    port as u16,
                    &mut self.capture,
                );
            }
            if last_publish.elapsed() >= PUBLISH_INTERVAL {
                self.publish(&mut kernel_drops);
                last_publish = Instant::now();
            }
            if got == 0 {
                // Packets held for a neighbour another worker resolved.
                driver.release(&mut self.pipeline, &mut self.ports[..], &mut self.capture);
                for p in self.ports.iter_mut() {
                    p.flush();
                }
                if let Some(tap) = self.capture.as_mut() {
                    tap.flush();
                }
                let wait = if self.pipeline.held() > 0 {
                    HELD_WAIT
                } else {
                    IDLE_WAIT
                };
                match poll.poll(&mut events, Some(wait)) {
                    Ok(()) => {
                        for ev in events.iter() {
                            if ev.is_error() || ev.is_read_closed() {
                                if let Some(p) = self.ports.get_mut(ev.token().0) {
                                    p.clear_error();
                                }
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.publish(&mut kernel_drops);
        Ok(())
    }

    /// Put the queues the link monitor opened again in place and
    /// acknowledge each.
    fn take_reopened(&mut self, registry: &mio::Registry, kernel_drops: &mut Vec<u64>) {
        for fresh in self.reopen.take() {
            let p = fresh.port as usize;
            if p >= self.ports.len() {
                // A port a reload added: the ids up to it exist from now on
                // (closed until their own queues come).
                self.ports.resize_with(p + 1, || Box::new(Closed));
                kernel_drops.resize(p + 1, 0);
            }
            let Some(slot) = self.ports.get_mut(p) else {
                continue;
            };
            let mut old = std::mem::replace(slot, fresh.queue);
            if let Some(d) = kernel_drops.get_mut(p) {
                *d += old.take_stats().kernel_drops;
            }
            // Closed by the monitor: closing a packet socket waits for the
            // kernel (an RCU grace period), too long for this loop.
            let _ = old.deregister(registry);
            self.reopen.retire(old);
            // A queue that could not be registered is still stepped every
            // round; only the wake-up from an idle sleep (at most
            // IDLE_WAIT) is lost.
            let _ = slot.register(registry, mio::Token(p));
            self.reopen.ack(fresh.port, fresh.generation);
        }
    }

    fn publish(&mut self, kernel_drops: &mut [u64]) {
        if let Some(tap) = self.capture.as_mut() {
            tap.flush();
        }
        for (i, p) in self.ports.iter_mut().enumerate() {
            kernel_drops[i] += p.take_stats().kernel_drops;
        }
        if let Ok(mut snap) = self.snapshot.lock() {
            snap.counters = self.pipeline.counters().clone();
            snap.kernel_drops = kernel_drops.to_vec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_priority_is_set_or_refused_naming_why() {
        // In a thread of its own: the test harness' threads stay normal.
        std::thread::spawn(|| {
            for bad in [0, 100] {
                let e = set_fifo_priority(bad).unwrap_err();
                assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
            }
            match set_fifo_priority(1) {
                Ok(()) => {
                    // SAFETY: queries the calling thread's policy; no memory.
                    let policy = unsafe { libc::sched_getscheduler(0) };
                    assert_eq!(policy, libc::SCHED_FIFO);
                }
                // Without CAP_SYS_NICE (not root, or a container without it).
                Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}"),
            }
        })
        .join()
        .unwrap();
    }
}
