//! Handing the workers fresh queues of a port that was opened again (its
//! interface deleted and created again under the same name), without a
//! lock or a wait on the workers' side.
//!
//! Contract:
//! - The link monitor opens the new queues of a port, one per worker, and
//!   [`Outbox::hand_over`] sends each worker its queue on that worker's
//!   channel with the port's next generation (1, 2, …), then bumps one
//!   shared counter.
//! - A worker reads that counter once per loop round
//!   ([`Inbox::pending`]: one atomic load); when it moved, it drains its
//!   channel ([`Inbox::take`], never blocks), puts each queue in the
//!   place of the old one, and acknowledges per port
//!   ([`Inbox::ack`]: stores the generation it now runs).
//! - The worker does not close the queue it replaced: closing a packet
//!   socket waits for an RCU grace period in the kernel (tens of ms), long
//!   enough for the worker's other ports' rings to overflow. It takes the
//!   old queue out of its `epoll` set and sends it back
//!   ([`Inbox::retire`]); the monitor closes it ([`Outbox::close_retired`]).
//! - [`Outbox::acked`] tells the monitor how many workers run a given
//!   generation of a port; it marks the link up only when all do. A
//!   worker whose thread ended drops its channel: the hand-over then
//!   fails and the port stays down (the runtime is stopping anyway).

use crate::io::Port;
use crossbeam::channel::{Receiver, Sender, TryRecvError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A fresh queue of one port for one worker.
pub struct Fresh {
    /// Port id.
    pub port: u16,
    /// The port's generation these queues belong to.
    pub generation: u64,
    /// The worker's new queue of the port.
    pub queue: Box<dyn Port>,
}

impl std::fmt::Debug for Fresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fresh")
            .field("port", &self.port)
            .field("generation", &self.generation)
            .finish()
    }
}

/// What the monitor and the workers share.
#[derive(Debug)]
struct Shared {
    /// Bumped after each hand-over (all workers' queues sent).
    epoch: AtomicU64,
    /// `[worker * ports + port]`: the generation of the port the worker
    /// runs (0: the queue it started with).
    acked: Box<[AtomicU64]>,
    ports: usize,
}

/// The monitor's side.
#[derive(Debug)]
pub struct Outbox {
    shared: Arc<Shared>,
    to: Vec<Sender<Fresh>>,
    generation: Vec<u64>,
    /// Queues the workers replaced, to close.
    retired: Receiver<Box<dyn Port>>,
}

/// One worker's side.
#[derive(Debug)]
pub struct Inbox {
    shared: Arc<Shared>,
    from: Receiver<Fresh>,
    worker: usize,
    seen: u64,
    retired: Sender<Box<dyn Port>>,
}

/// The outbox and one inbox per worker, for `ports` ports.
pub fn channels(ports: usize, workers: usize) -> (Outbox, Vec<Inbox>) {
    let shared = Arc::new(Shared {
        epoch: AtomicU64::new(0),
        acked: (0..ports * workers).map(|_| AtomicU64::new(0)).collect(),
        ports,
    });
    let (retired_tx, retired) = crossbeam::channel::unbounded();
    let (to, inboxes) = (0..workers)
        .map(|w| {
            let (tx, rx) = crossbeam::channel::unbounded();
            let inbox = Inbox {
                shared: shared.clone(),
                from: rx,
                worker: w,
                seen: 0,
                retired: retired_tx.clone(),
            };
            (tx, inbox)
        })
        .unzip();
    let outbox = Outbox {
        shared,
        to,
        generation: vec![0; ports],
        retired,
    };
    (outbox, inboxes)
}

impl Outbox {
    /// Close the queues the workers replaced (on the caller's thread);
    /// returns how many.
    pub fn close_retired(&self) -> usize {
        self.retired.try_iter().map(drop).count()
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.to.len()
    }

    /// Send `queues` (one per worker, in worker order) of `port` to the
    /// workers; returns the port's new generation, or `None` (nothing sent
    /// or only part of it: the port must not go up) if the count is wrong,
    /// the port unknown or a worker gone.
    pub fn hand_over(&mut self, port: u16, queues: Vec<Box<dyn Port>>) -> Option<u64> {
        let p = port as usize;
        if queues.len() != self.to.len() || p >= self.generation.len() {
            return None;
        }
        self.generation[p] += 1;
        let generation = self.generation[p];
        let mut all = true;
        for (tx, queue) in self.to.iter().zip(queues) {
            all &= tx
                .send(Fresh {
                    port,
                    generation,
                    queue,
                })
                .is_ok();
        }
        self.shared.epoch.fetch_add(1, Ordering::Release);
        all.then_some(generation)
    }

    /// How many workers run `generation` of `port` (or a later one).
    pub fn acked(&self, port: u16, generation: u64) -> usize {
        let p = port as usize;
        if p >= self.shared.ports {
            return 0;
        }
        (0..self.to.len())
            .filter(|w| {
                self.shared.acked[w * self.shared.ports + p].load(Ordering::Acquire) >= generation
            })
            .count()
    }
}

impl Inbox {
    /// True if queues were handed over since the last [`Inbox::take`]:
    /// one atomic load, for every loop round.
    #[inline(always)]
    pub fn pending(&self) -> bool {
        self.shared.epoch.load(Ordering::Acquire) != self.seen
    }

    /// The queues waiting for this worker, in the order they were sent
    /// (never blocks).
    pub fn take(&mut self) -> Vec<Fresh> {
        // Read the epoch first: anything sent before it is in the channel.
        self.seen = self.shared.epoch.load(Ordering::Acquire);
        let mut out = Vec::new();
        loop {
            match self.from.try_recv() {
                Ok(f) => out.push(f),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return out,
            }
        }
    }

    /// Hand a replaced queue (out of the worker's `epoll` set already)
    /// back to be closed off the worker's thread; closed here if the
    /// monitor is gone.
    pub fn retire(&self, queue: Box<dyn Port>) {
        let _ = self.retired.send(queue);
    }

    /// This worker now runs `generation` of `port`.
    pub fn ack(&self, port: u16, generation: u64) {
        let p = port as usize;
        if p < self.shared.ports {
            self.shared.acked[self.worker * self.shared.ports + p]
                .fetch_max(generation, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Batch;
    use crate::io::{Backend, IoStats};

    struct Dummy(u32);

    impl Backend for Dummy {
        fn recv(&mut self, _: &mut Batch) -> std::io::Result<usize> {
            Ok(0)
        }
        fn send(&mut self, _: crate::frame::Outgoing<'_>) -> std::io::Result<usize> {
            Ok(0)
        }
    }

    impl Port for Dummy {
        fn register(&mut self, _: &mio::Registry, _: mio::Token) -> std::io::Result<()> {
            Ok(())
        }
        fn take_stats(&mut self) -> IoStats {
            IoStats {
                kernel_drops: self.0 as u64,
            }
        }
    }

    fn queues(n: u32) -> Vec<Box<dyn Port>> {
        (0..n)
            .map(|i| Box::new(Dummy(i)) as Box<dyn Port>)
            .collect()
    }

    #[test]
    fn replaced_queues_come_back_to_be_closed_by_the_monitor() {
        let (out, inboxes) = channels(2, 2);
        assert_eq!(out.close_retired(), 0);
        for (i, inbox) in inboxes.iter().enumerate() {
            inbox.retire(Box::new(Dummy(i as u32)));
        }
        assert_eq!(out.close_retired(), 2);
        assert_eq!(out.close_retired(), 0);
    }

    #[test]
    fn every_worker_takes_its_queue_and_acknowledges() {
        let (mut out, mut inboxes) = channels(3, 2);
        assert!(inboxes.iter().all(|i| !i.pending()));
        assert_eq!(out.hand_over(1, queues(2)), Some(1));
        assert_eq!(out.acked(1, 1), 0);
        for (w, inbox) in inboxes.iter_mut().enumerate() {
            assert!(inbox.pending());
            let mut got = inbox.take();
            assert!(!inbox.pending());
            assert_eq!(got.len(), 1);
            let f = &mut got[0];
            assert_eq!((f.port, f.generation), (1, 1));
            // Worker w got queue w.
            assert_eq!(f.queue.take_stats().kernel_drops, w as u64);
            inbox.ack(f.port, f.generation);
            assert_eq!(out.acked(1, 1), w + 1);
        }
        // Other ports and later generations are not acknowledged.
        assert_eq!(out.acked(0, 1), 0);
        assert_eq!(out.acked(1, 2), 0);
        assert_eq!(out.acked(9, 1), 0);
    }

    #[test]
    fn generations_follow_each_other_and_wrong_counts_are_refused() {
        let (mut out, mut inboxes) = channels(1, 2);
        assert_eq!(out.hand_over(0, queues(1)), None, "one queue per worker");
        assert_eq!(out.hand_over(5, queues(2)), None, "no such port");
        assert_eq!(out.hand_over(0, queues(2)), Some(1));
        assert_eq!(out.hand_over(0, queues(2)), Some(2));
        let got = inboxes[0].take();
        assert_eq!(
            got.iter().map(|f| f.generation).collect::<Vec<_>>(),
            vec![1, 2]
        );
        inboxes[0].ack(0, 2);
        inboxes[0].ack(0, 1);
        inboxes[1].ack(0, 1);
        assert_eq!(out.acked(0, 2), 1, "acks never go back");
        assert_eq!(out.acked(0, 1), 2);
        // A worker that is gone: the hand-over is not complete.
        drop(inboxes.pop());
        assert_eq!(out.hand_over(0, queues(2)), None);
    }
}
