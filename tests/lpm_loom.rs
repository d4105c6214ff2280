//! loom models of the LPM publication protocol (see `src/lpm/table.rs`).
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=<dir> cargo test --release
//! --test lpm_loom`.
//!
//! The tables themselves use `std` atomics over `mmap`ed memory and
//! `crossbeam::epoch`, which loom cannot instrument, so these tests model
//! the protocol with the same orderings on a table of one tbl24 entry and
//! one two-entry group:
//! - `group_link`: the writer fills a group with the entry it refines,
//!   links it with a `Release` store, then writes the new route (`Release`);
//!   readers (single path: `Acquire` load; batch path: `Relaxed` load then
//!   `fence(Acquire)`) must see the old or the new route, never the
//!   unfilled group. The same model with a `Relaxed` link must fail, which
//!   shows the model can see the bug.
//! - `group_fold`: removal stores the folded route into tbl24 (`Release`);
//!   a reader that followed the old link still reads the (not yet reused)
//!   group: the old or the folded route.
//! - `root_swap`: a batch built in a private table and published by one
//!   pointer swap is seen whole or not at all.
//!
//! - `subtree_link` (the compressed table, `src/lpm/poptrie.rs`): the
//!   writer builds a subtree with plain writes (a `loom::cell::UnsafeCell`,
//!   so loom reports any unsynchronised read), then links it into a top
//!   slot with a `Release` store; readers (single path: `Acquire`; batch
//!   path: `Relaxed` then `fence(Acquire)`) that see the link read the
//!   fully written subtree. With a `Relaxed` link loom must report it.
//!
//! Group reuse after a grace period is `crossbeam-epoch`'s guarantee and is
//! not modelled here.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{fence, AtomicPtr, AtomicU32, Ordering};
use loom::sync::Arc;
use loom::thread;

const VALID: u32 = 1 << 24;
const EXT: u32 = 1 << 25;
const OLD: u32 = VALID | 1;
const NEW: u32 = VALID | 2;

struct Model {
    tbl24: AtomicU32,
    group: [AtomicU32; 2],
}

fn read(m: &Model, idx: usize, batch_path: bool) -> u32 {
    let e = if batch_path {
        let e = m.tbl24.load(Ordering::Relaxed);
        if e & EXT != 0 {
            fence(Ordering::Acquire);
        }
        e
    } else {
        m.tbl24.load(Ordering::Acquire)
    };
    if e & EXT != 0 {
        m.group[idx].load(Ordering::Acquire)
    } else {
        e
    }
}

fn group_link(link: Ordering, batch_path: bool) {
    loom::model(move || {
        let m = Arc::new(Model {
            tbl24: AtomicU32::new(OLD),
            // A fresh (or reused after a grace period) group: zero.
            group: [AtomicU32::new(0), AtomicU32::new(0)],
        });
        let w = Arc::clone(&m);
        let writer = thread::spawn(move || {
            for e in &w.group {
                e.store(OLD, Ordering::Relaxed);
            }
            w.tbl24.store(EXT, link);
            w.group[1].store(NEW, Ordering::Release);
        });
        let at0 = read(&m, 0, batch_path);
        let at1 = read(&m, 1, batch_path);
        assert_eq!(at0, OLD, "address 0 keeps its route");
        assert!(at1 == OLD || at1 == NEW, "address 1 saw {at1:#x}");
        writer.join().unwrap();
    });
}

#[test]
fn group_link_release_single_path() {
    group_link(Ordering::Release, false);
}

#[test]
fn group_link_release_batch_path() {
    group_link(Ordering::Release, true);
}

#[test]
#[should_panic]
fn group_link_relaxed_is_caught() {
    group_link(Ordering::Relaxed, false);
}

#[test]
fn group_fold() {
    loom::model(|| {
        let m = Arc::new(Model {
            tbl24: AtomicU32::new(EXT),
            group: [AtomicU32::new(OLD), AtomicU32::new(NEW)],
        });
        let w = Arc::clone(&m);
        let writer = thread::spawn(move || {
            // Remove the longer prefix: its entry falls back, then the
            // group is uniform and folds into tbl24.
            w.group[1].store(OLD, Ordering::Release);
            w.tbl24.store(OLD, Ordering::Release);
        });
        let at1 = read(&m, 1, true);
        assert!(at1 == OLD || at1 == NEW, "address 1 saw {at1:#x}");
        assert_eq!(read(&m, 0, false), OLD);
        writer.join().unwrap();
    });
}

#[test]
fn root_swap() {
    loom::model(|| {
        let old = Box::into_raw(Box::new([AtomicU32::new(OLD), AtomicU32::new(OLD)]));
        let root = Arc::new(AtomicPtr::new(old));
        let w = Arc::clone(&root);
        let writer = thread::spawn(move || {
            let copy = Box::new([AtomicU32::new(OLD), AtomicU32::new(OLD)]);
            copy[0].store(NEW, Ordering::Relaxed);
            copy[1].store(NEW, Ordering::Relaxed);
            w.swap(Box::into_raw(copy), Ordering::AcqRel)
        });
        let t = root.load(Ordering::Acquire);
        // SAFETY: in this model tables are freed only after both threads
        // finished (the epoch collector's job in the real code).
        let (a, b) = unsafe {
            (
                (*t)[0].load(Ordering::Relaxed),
                (*t)[1].load(Ordering::Relaxed),
            )
        };
        assert_eq!(a, b, "batch seen half applied");
        let retired = writer.join().unwrap();
        // SAFETY: both pointers came from Box::into_raw and no thread uses
        // them any more.
        unsafe {
            drop(Box::from_raw(retired));
            drop(Box::from_raw(root.load(Ordering::Relaxed)));
        }
    });
}

/// A top slot of the compressed table: null = the route `OLD` inline,
/// else a subtree (here: the answers of two addresses).
struct Slot {
    sub: AtomicPtr<[UnsafeCell<u32>; 2]>,
}

fn read_slot(s: &Slot, idx: usize, batch_path: bool) -> u32 {
    let p = if batch_path {
        let p = s.sub.load(Ordering::Relaxed);
        if !p.is_null() {
            fence(Ordering::Acquire);
        }
        p
    } else {
        s.sub.load(Ordering::Acquire)
    };
    if p.is_null() {
        OLD
    } else {
        // SAFETY: subtrees are freed only after both threads finished
        // (the epoch collector's job in the real code).
        unsafe { (*p)[idx].with(|v| *v) }
    }
}

fn subtree_link(link: Ordering, batch_path: bool) {
    loom::model(move || {
        let slot = Arc::new(Slot {
            sub: AtomicPtr::new(std::ptr::null_mut()),
        });
        let w = Arc::clone(&slot);
        let writer = thread::spawn(move || {
            let sub = Box::into_raw(Box::new([UnsafeCell::new(0), UnsafeCell::new(0)]));
            // SAFETY: not shared yet.
            unsafe {
                (*sub)[0].with_mut(|v| *v = OLD);
                (*sub)[1].with_mut(|v| *v = NEW);
            }
            w.sub.store(sub, link);
        });
        let at0 = read_slot(&slot, 0, batch_path);
        let at1 = read_slot(&slot, 1, batch_path);
        assert_eq!(at0, OLD, "address 0 keeps its route");
        assert!(at1 == OLD || at1 == NEW, "address 1 saw {at1:#x}");
        writer.join().unwrap();
        let p = slot.sub.load(Ordering::Relaxed);
        // SAFETY: from Box::into_raw; no thread uses it any more.
        unsafe { drop(Box::from_raw(p)) };
    });
}

#[test]
fn subtree_link_release_single_path() {
    subtree_link(Ordering::Release, false);
}

#[test]
fn subtree_link_release_batch_path() {
    subtree_link(Ordering::Release, true);
}

#[test]
#[should_panic]
fn subtree_link_relaxed_is_caught() {
    subtree_link(Ordering::Relaxed, false);
}
