//! The unsafe corner of the LPM, in three small safe types:
//! - [`EntryArray`]: a zero-initialised, fixed-length `[AtomicU32]` backed by
//!   anonymous memory (huge pages when the kernel allows), so that a 64 MiB
//!   first level or a large group pool costs only the pages it touches;
//! - [`prefetch`]: a cache hint that never faults;
//! - [`Root`] / [`RootWriter`]: one published value behind a
//!   `crossbeam::epoch::Atomic`, replaced by a single atomic swap and freed
//!   only after every reader pinned before the swap has unpinned — by the
//!   writer, never by a reader thread.
//!
//! Under Miri the array uses the global allocator (Miri has no `mmap`).

use crossbeam::epoch::{self, Atomic, Guard, Owned};
use crossbeam::queue::SegQueue;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Fixed-length array of atomic entries, all zero at creation.
pub(crate) struct EntryArray {
    ptr: NonNull<AtomicU32>,
    len: usize,
}

// SAFETY: the array owns its memory exclusively and only hands out
// `&[AtomicU32]`, which is `Send + Sync`.
unsafe impl Send for EntryArray {}
// SAFETY: as above; shared access is through atomics only.
unsafe impl Sync for EntryArray {}

#[cfg(not(miri))]
const HUGE_PAGE: usize = 2 << 20;

impl EntryArray {
    /// A zeroed array of `len` entries whose pages are committed on first
    /// touch (a large pool costs only what is used). Aborts the process if
    /// the memory cannot be reserved (as `Vec` does).
    pub(crate) fn zeroed(len: usize) -> Self {
        if len == 0 {
            return Self {
                ptr: NonNull::dangling(),
                len,
            };
        }
        let ptr = Self::alloc(len);
        Self { ptr, len }
    }

    /// A zeroed array of `len` entries committed now, in huge pages when
    /// the kernel has them: for the random-read limit, which every lookup
    /// reads at a random place and which nothing writes (a table's arrays
    /// are committed as they are written, see `table::Table::new`).
    /// Whether huge pages were obtained: [`Self::huge_page_bytes`].
    pub(crate) fn zeroed_resident(len: usize) -> Self {
        let a = Self::zeroed(len);
        a.make_resident();
        a
    }

    /// Fault the whole array in after `alloc` advised it for huge pages
    /// (so each 2 MiB fault takes a huge page rather than 512 small ones),
    /// then ask the kernel to collapse any part it still backs with small
    /// pages. Every step is a hint: on failure the array stays valid and
    /// zero, only slower.
    #[cfg(not(miri))]
    fn make_resident(&self) {
        // Linux ≥ 5.14 / ≥ 6.1; the libc crate may not name them.
        const MADV_POPULATE_WRITE: libc::c_int = 23;
        const MADV_COLLAPSE: libc::c_int = 25;
        let bytes = self.len * std::mem::size_of::<AtomicU32>();
        if bytes < HUGE_PAGE {
            return;
        }
        let addr = self.ptr.as_ptr().cast::<libc::c_void>();
        // SAFETY: `[addr, addr+bytes)` is our own private anonymous mapping
        // (see `alloc`). POPULATE_WRITE only faults its pages in (they stay
        // zero) and COLLAPSE only changes the backing, keeping contents.
        let populated = unsafe { libc::madvise(addr, bytes, MADV_POPULATE_WRITE) } == 0;
        if !populated {
            // Older kernel: touch one entry per page; storing the zero it
            // already holds commits the page (a huge one where possible).
            for e in self.iter().step_by(4096 / std::mem::size_of::<AtomicU32>()) {
                e.store(0, Ordering::Relaxed);
            }
        }
        if self.huge_page_bytes() < bytes & !(HUGE_PAGE - 1) {
            // SAFETY: as above.
            unsafe { libc::madvise(addr, bytes, MADV_COLLAPSE) };
        }
    }

    #[cfg(miri)]
    fn make_resident(&self) {}

    /// Bytes of this array backed by transparent huge pages now, from
    /// `AnonHugePages` of `/proc/self/smaps` (0 where unknown).
    pub(crate) fn huge_page_bytes(&self) -> usize {
        smaps_bytes("AnonHugePages:", &[self])
    }

    fn layout(len: usize) -> std::alloc::Layout {
        std::alloc::Layout::array::<AtomicU32>(len).expect("entry array too large")
    }

    #[cfg(miri)]
    fn alloc(len: usize) -> NonNull<AtomicU32> {
        let layout = Self::layout(len);
        // SAFETY: layout has non-zero size (len > 0).
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        NonNull::new(raw.cast()).unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
    }

    #[cfg(miri)]
    fn free(&mut self) {
        // SAFETY: allocated in `alloc` with the same layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), Self::layout(self.len)) }
    }

    /// Anonymous private mapping, aligned to 2 MiB so that transparent huge
    /// pages can back it (fewer TLB misses on random lookups). The kernel
    /// gives zeroed pages, mapped on first touch.
    #[cfg(not(miri))]
    fn alloc(len: usize) -> NonNull<AtomicU32> {
        let bytes = Self::mapped_bytes(len);
        let reserve = bytes + HUGE_PAGE;
        // SAFETY: anonymous mapping request; no existing memory is affected.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                reserve,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            std::alloc::handle_alloc_error(Self::layout(len));
        }
        let start = raw as usize;
        let aligned = (start + HUGE_PAGE - 1) & !(HUGE_PAGE - 1);
        let head = aligned - start;
        let tail = reserve - head - bytes;
        // SAFETY: `[start, start+head)` and `[aligned+bytes, aligned+bytes+tail)`
        // lie inside the mapping we just made and nothing refers to them.
        // `madvise` is a hint on our own mapping. Failures are harmless
        // (the mapping stays larger / without huge pages).
        unsafe {
            if head > 0 {
                libc::munmap(raw, head);
            }
            if tail > 0 {
                libc::munmap((aligned + bytes) as *mut libc::c_void, tail);
            }
            if bytes >= HUGE_PAGE {
                libc::madvise(aligned as *mut libc::c_void, bytes, libc::MADV_HUGEPAGE);
            }
        }
        NonNull::new(aligned as *mut AtomicU32).expect("mmap returned null")
    }

    #[cfg(not(miri))]
    fn mapped_bytes(len: usize) -> usize {
        let bytes = Self::layout(len).size();
        (bytes + 4095) & !4095
    }

    #[cfg(not(miri))]
    fn free(&mut self) {
        // SAFETY: `[ptr, ptr+mapped_bytes)` is exactly what `alloc` kept
        // mapped, and `&mut self` proves no reference into it remains.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), Self::mapped_bytes(self.len));
        }
    }
}

/// The `field` of `/proc/self/smaps` (`AnonHugePages:`; `Rss:`, which
/// leaves out never-written parts mapping the kernel's zero page) summed
/// over the ranges of `arrays`, from one read of the file (0 where
/// unknown).
pub(crate) fn smaps_bytes(field: &str, arrays: &[&EntryArray]) -> usize {
    #[cfg(not(miri))]
    {
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return 0;
        };
        arrays
            .iter()
            .map(|a| {
                let start = a.ptr.as_ptr() as usize;
                let end = start + a.len * std::mem::size_of::<AtomicU32>();
                smaps_field_bytes(&smaps, field, start, end)
            })
            .sum()
    }
    #[cfg(miri)]
    {
        let _ = (field, arrays);
        0
    }
}

/// The `field` (e.g. `AnonHugePages:`, in kB) of the mappings of `smaps`
/// that lie in `[start, end)`, in bytes, capped per mapping at its overlap
/// with the range (a mapping merged with a neighbour is only partly ours).
#[cfg(not(miri))]
fn smaps_field_bytes(smaps: &str, field: &str, start: usize, end: usize) -> usize {
    let mut total = 0;
    let mut overlap = 0;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if let Some((lo, hi)) = first.split_once('-') {
            if let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                overlap = hi.min(end).saturating_sub(lo.max(start));
                continue;
            }
        }
        if first == field && overlap > 0 {
            let kib: usize = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
            total += (kib * 1024).min(overlap);
        }
    }
    total
}

impl Deref for EntryArray {
    type Target = [AtomicU32];

    #[inline(always)]
    fn deref(&self) -> &[AtomicU32] {
        // SAFETY: `ptr` points to `len` zero-initialised `AtomicU32` (zero is
        // a valid value) that live as long as `self`; for `len == 0` it is a
        // dangling, aligned pointer, valid for an empty slice.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for EntryArray {
    fn drop(&mut self) {
        if self.len > 0 {
            self.free();
        }
    }
}

/// Hint the CPU to bring the cache line of `r` into L1. No effect on
/// targets without a prefetch instruction; never faults.
#[inline(always)]
pub(crate) fn prefetch<T>(r: &T) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: PREFETCHT0 is a pure hint that cannot fault, and `r` is a
    // valid reference anyway.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            (r as *const T).cast::<i8>(),
        );
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = r;
}

/// [`prefetch`] of a raw address: also a pure hint, so any pointer value
/// (dangling, unaligned, null) is fine.
#[inline(always)]
pub(crate) fn prefetch_ptr<T>(p: *const T) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: PREFETCHT0 is a pure hint that cannot fault for any address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = p;
}

/// The published value, shared by readers. Readers only [`Root::load`]; the
/// single [`RootWriter`] replaces it.
pub(crate) struct Root<T: Send + Sync + 'static> {
    current: Atomic<T>,
}

impl<T: Send + Sync + 'static> Root<T> {
    /// The value published now, valid while `guard` is pinned.
    #[inline(always)]
    pub(crate) fn load<'g>(&self, guard: &'g Guard) -> &'g T {
        let shared = self.current.load(Ordering::Acquire, guard);
        // SAFETY: `current` is never null (set in `RootWriter::new`, only
        // ever swapped for another non-null value), and a value swapped out
        // is destroyed through `defer_destroy`, i.e. only after every guard
        // pinned before the swap — including `guard` — is dropped.
        unsafe { shared.deref() }
    }
}

impl<T: Send + Sync + 'static> Drop for Root<T> {
    fn drop(&mut self) {
        // SAFETY: `&mut self` in drop: no reader or writer holds the root any
        // more (they all hold it through an `Arc`), so nobody can load it.
        unsafe {
            let shared = self.current.load(Ordering::Relaxed, epoch::unprotected());
            drop(shared.into_owned());
        }
    }
}

/// Unique writer handle of a [`Root`]: the only way to replace its value.
pub(crate) struct RootWriter<T: Send + Sync + 'static> {
    root: Arc<Root<T>>,
    /// Retired values whose readers have all moved on, dropped by the
    /// writer: freeing a table (`munmap`) is too slow for the reader
    /// thread that happens to run the epoch collector.
    graveyard: Arc<SegQueue<Owned<T>>>,
    /// Published-over values not yet dropped (popping an empty `SegQueue`
    /// costs a fence: only look when something is pending).
    retired: usize,
}

impl<T: Send + Sync + 'static> RootWriter<T> {
    /// Publish `value` as the first version.
    pub(crate) fn new(value: T) -> Self {
        Self {
            root: Arc::new(Root {
                current: Atomic::new(value),
            }),
            graveyard: Arc::new(SegQueue::new()),
            retired: 0,
        }
    }

    /// A handle for readers.
    pub(crate) fn shared(&self) -> Arc<Root<T>> {
        Arc::clone(&self.root)
    }

    /// The current value, as seen by the writer (no guard needed).
    #[inline]
    pub(crate) fn current(&self) -> &T {
        // SAFETY: only this `RootWriter` (unique, not `Clone`) swaps the
        // value, and `publish` needs `&mut self`, so the value cannot be
        // retired while the returned borrow of `self` lives.
        unsafe {
            self.root
                .current
                .load(Ordering::Acquire, epoch::unprotected())
                .deref()
        }
    }

    /// Replace the value with one atomic swap. The old value is handed to
    /// this writer once every reader that could have loaded it has
    /// unpinned, and dropped by a later `publish` or [`Self::collect`].
    pub(crate) fn publish(&mut self, value: T) {
        self.collect();
        let guard = epoch::pin();
        let old = self
            .root
            .current
            .swap(Owned::new(value), Ordering::AcqRel, &guard);
        // SAFETY: `old` is unlinked: after the swap no new reader can load
        // it. The `Owned` is neither dereferenced nor dropped before the
        // deferred closure runs, i.e. before every reader pinned now (and
        // so every reader that may hold a reference) has unpinned.
        let old = unsafe { old.into_owned() };
        let graveyard = Arc::clone(&self.graveyard);
        guard.defer(move || graveyard.push(old));
        self.retired += 1;
        guard.flush();
    }

    /// Drop the retired values whose readers have moved on.
    #[inline]
    pub(crate) fn collect(&mut self) {
        while self.retired > 0 {
            match self.graveyard.pop() {
                Some(old) => {
                    drop(old);
                    self.retired -= 1;
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_array_is_zeroed_and_writable() {
        let a = EntryArray::zeroed(1000);
        assert_eq!(a.len(), 1000);
        assert!(a.iter().all(|e| e.load(Ordering::Relaxed) == 0));
        a[999].store(7, Ordering::Relaxed);
        assert_eq!(a[999].load(Ordering::Relaxed), 7);
        let empty = EntryArray::zeroed(0);
        assert!(empty.is_empty());
    }

    #[test]
    fn resident_array_is_zeroed_and_writable() {
        let n = if cfg!(miri) { 1000 } else { 3 << 19 };
        let a = EntryArray::zeroed_resident(n);
        assert!(a.iter().all(|e| e.load(Ordering::Relaxed) == 0));
        a[n - 1].store(5, Ordering::Relaxed);
        assert_eq!(a[n - 1].load(Ordering::Relaxed), 5);
        assert!(a.huge_page_bytes() <= a.len() * 4);
    }

    #[cfg(not(miri))]
    #[test]
    fn smaps_field_bytes_counts_overlap_only() {
        let smaps = "\
7f0000000000-7f0000400000 rw-p 00000000 00:00 0
Size:               4096 kB
AnonHugePages:      4096 kB
7f0000400000-7f0000600000 rw-p 00000000 00:00 0
AnonHugePages:      2048 kB
";
        let base = 0x7f00_0000_0000usize;
        assert_eq!(
            smaps_field_bytes(smaps, "AnonHugePages:", base, base + (6 << 20)),
            6 << 20
        );
        assert_eq!(
            smaps_field_bytes(smaps, "AnonHugePages:", base + (2 << 20), base + (4 << 20)),
            2 << 20
        );
        assert_eq!(
            smaps_field_bytes(smaps, "AnonHugePages:", base + (8 << 20), base + (9 << 20)),
            0
        );
    }

    #[test]
    fn prefetch_is_harmless() {
        let a = EntryArray::zeroed(16);
        prefetch(&a[15]);
        assert_eq!(a[15].load(Ordering::Relaxed), 0);
    }

    #[test]
    fn root_publish_retires_old_value_after_readers() {
        use std::sync::atomic::AtomicUsize;
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        struct Counted(u32);
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::SeqCst);
            }
        }
        let mut w = RootWriter::new(Counted(1));
        let r = w.shared();
        let guard = epoch::pin();
        let seen = r.load(&guard);
        assert_eq!(seen.0, 1);
        w.publish(Counted(2));
        assert_eq!(w.current().0, 2);
        // The reader's borrow is still valid: the old value waits for `guard`.
        assert_eq!(seen.0, 1);
        drop(guard);
        assert_eq!(r.load(&epoch::pin()).0, 2);
        // The retired value is dropped by the writer once readers left
        // (other tests' threads may hold the epoch back for a while).
        for _ in 0..100_000 {
            w.collect();
            if DROPS.load(Ordering::SeqCst) == 1 {
                break;
            }
            epoch::pin().flush();
            std::thread::yield_now();
        }
        assert_eq!(DROPS.load(Ordering::SeqCst), 1);
        drop(w);
        drop(r);
        // The current value is dropped with the root; the retired one some
        // time later by the collector.
        for _ in 0..64 {
            epoch::pin().flush();
        }
        assert!(DROPS.load(Ordering::SeqCst) >= 1);
    }
}
