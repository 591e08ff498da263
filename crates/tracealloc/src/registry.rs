//! The bookkeeping: global figures folded from per-thread state, and the three operations the
//! allocator performs (alloc, realloc, dealloc) on a given thread's state.
//!
//! Totals follow dhat-rs's definitions. Live figures are per-thread deltas, flushed to the shared
//! counters only every [`Registry::flush_threshold`] bytes, so allocating threads share no cache
//! line on the hot path. The peak is tracked per thread as a candidate `flushed-at-last-flush +
//! unflushed` after each alloc and realloc, and is the maximum candidate when read: exact when one
//! thread allocates at a time (and always when the threshold is zero); with several threads
//! allocating at once, it can miss the others' unflushed deltas, at most `threads × threshold`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use tracealloc_snapshot::HeapStats;

use crate::capture::Captured;
use crate::record::{SiteRecord, wrapping};
use crate::thread::{ThreadState, add_u64};

/// The global figures and the list of thread states.
pub(crate) struct Registry {
    threads: AtomicPtr<ThreadState>,
    thread_count: AtomicU32,
    /// Sum of the live deltas threads have flushed.
    flushed_bytes: AtomicI64,
    flushed_blocks: AtomicI64,
    /// Bumped by `reset_peak`; candidates of older epochs no longer count.
    peak_epoch: AtomicU64,
    /// The live figures at the last `reset_peak`: (epoch, bytes, blocks).
    peak_floor: Mutex<(u64, u64, u64)>,
    /// A thread flushes its live delta once it reaches this many bytes (0: on every operation).
    flush_threshold: i64,
    /// Bytes of memory mapped for the profiler's own tables.
    pub(crate) mapped_bytes: AtomicU64,
    /// The profiler's own heap blocks (made under the reentrancy guard).
    own_heap_bytes: AtomicI64,
    /// Allocations on a thread whose state could not be made (memory exhausted): counted in the
    /// totals, charged to no site.
    orphan_total_bytes: AtomicU64,
    orphan_total_blocks: AtomicU64,
    pub(crate) orphan_record: SiteRecord,
}

impl Registry {
    pub(crate) const fn new(flush_threshold: i64) -> Registry {
        Registry {
            threads: AtomicPtr::new(std::ptr::null_mut()),
            thread_count: AtomicU32::new(0),
            flushed_bytes: AtomicI64::new(0),
            flushed_blocks: AtomicI64::new(0),
            peak_epoch: AtomicU64::new(0),
            peak_floor: Mutex::new((0, 0, 0)),
            flush_threshold,
            mapped_bytes: AtomicU64::new(0),
            own_heap_bytes: AtomicI64::new(0),
            orphan_total_bytes: AtomicU64::new(0),
            orphan_total_blocks: AtomicU64::new(0),
            orphan_record: SiteRecord::empty(std::ptr::null()),
        }
    }

    /// Creates and publishes the state of a new thread (to be used by that thread only).
    #[cold]
    pub(crate) fn register_thread(&self) -> Option<&ThreadState> {
        let index = self.thread_count.fetch_add(1, Ordering::Relaxed);
        let mut head = self.threads.load(Ordering::Acquire);
        let state = ThreadState::create(index, head, &self.mapped_bytes);
        if state.is_null() {
            return None;
        }
        loop {
            // SAFETY: `state` is ours until published; its `next` is fixed up before each attempt.
            unsafe { std::ptr::addr_of_mut!((*state).next).write(head) };
            match self.threads.compare_exchange_weak(
                head,
                state,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(current) => head = current,
            }
        }
        // SAFETY: published states are never freed.
        Some(unsafe { &*state })
    }

    /// Every thread state, newest first.
    pub(crate) fn threads(&self) -> impl Iterator<Item = &ThreadState> {
        let mut next = self.threads.load(Ordering::Acquire) as *const ThreadState;
        std::iter::from_fn(move || {
            // SAFETY: published states are never freed; `next` was written before publication.
            let state = unsafe { next.as_ref()? };
            next = state.next;
            Some(state)
        })
    }

    /// Moves `thread`'s live delta into the flushed counters when it is large enough, then updates
    /// the thread's peak candidate when `check_peak` (after alloc and realloc, as dhat-rs does).
    ///
    /// # Safety
    /// Owner thread of `thread` only, inside its `begin_write`/`end_write`.
    #[inline(always)]
    unsafe fn account_live(&self, thread: &ThreadState, bytes: i64, blocks: i64, check_peak: bool) {
        // SAFETY: forwarded contract.
        let (mut unflushed_bytes, mut unflushed_blocks) =
            unsafe { thread.add_unflushed(bytes, blocks) };
        // SAFETY: forwarded contract.
        let (mut base_bytes, mut base_blocks) = unsafe { thread.base() };
        if unflushed_bytes.unsigned_abs() >= self.flush_threshold as u64 {
            base_bytes = self
                .flushed_bytes
                .fetch_add(unflushed_bytes, Ordering::Relaxed)
                + unflushed_bytes;
            base_blocks = self
                .flushed_blocks
                .fetch_add(unflushed_blocks, Ordering::Relaxed)
                + unflushed_blocks;
            // SAFETY: forwarded contract.
            unsafe { thread.set_base(base_bytes, base_blocks) };
            unflushed_bytes = 0;
            unflushed_blocks = 0;
        }
        if check_peak {
            let epoch = self.peak_epoch.load(Ordering::Relaxed);
            let live_bytes = (base_bytes + unflushed_bytes).max(0) as u64;
            let live_blocks = (base_blocks + unflushed_blocks).max(0) as u64;
            if thread.peak_epoch.load(Ordering::Relaxed) != epoch {
                thread.peak_epoch.store(epoch, Ordering::Relaxed);
                thread.peak_bytes.store(0, Ordering::Relaxed);
            }
            // `>=`, as dhat-rs: of equal peaks the latest counts.
            if live_bytes >= thread.peak_bytes.load(Ordering::Relaxed) {
                thread.peak_bytes.store(live_bytes, Ordering::Relaxed);
                thread.peak_blocks.store(live_blocks, Ordering::Relaxed);
            }
        }
    }

    /// Counts a new block of `size` bytes allocated by `thread` at `captured`; returns its record.
    ///
    /// # Safety
    /// Called on the owner thread of `thread` only (one operation at a time per state).
    #[inline(always)]
    pub(crate) unsafe fn record_alloc<'t>(
        &self,
        thread: &'t ThreadState,
        captured: &Captured,
        size: usize,
    ) -> &'t SiteRecord {
        let size = size as u64;
        // SAFETY: (1) owner thread, per contract; (2) begin/end are paired around every write.
        unsafe {
            thread.begin_write();
            let record = thread.record_for(captured, &self.mapped_bytes);
            record.owner_add(size, 1, size, 1);
            add_u64(&thread.total_bytes, size);
            add_u64(&thread.total_blocks, 1);
            self.account_live(thread, size as i64, 1, true);
            thread.end_write();
            record
        }
    }

    /// Counts a realloc by `thread` of a block of `record` from `old` to `new` bytes: one more
    /// block in the totals, the new size in total bytes, live bytes moved by the difference.
    ///
    /// # Safety
    /// Called on the owner thread of `thread` only.
    #[inline(always)]
    pub(crate) unsafe fn record_realloc(
        &self,
        thread: &ThreadState,
        record: &SiteRecord,
        old: usize,
        new: usize,
    ) {
        let delta = new as i64 - old as i64;
        // SAFETY: (1) owner thread, per contract; (2) begin/end are paired around every write.
        unsafe {
            thread.begin_write();
            if std::ptr::eq(record.owner, thread) {
                record.owner_add(wrapping(delta), 0, new as u64, 1);
            } else {
                record.remote_add(wrapping(delta), 0, new as u64, 1);
            }
            add_u64(&thread.total_bytes, new as u64);
            add_u64(&thread.total_blocks, 1);
            self.account_live(thread, delta, 0, true);
            thread.end_write();
        }
    }

    /// Counts the free by `thread` of a block of `size` bytes of `record`.
    ///
    /// # Safety
    /// Called on the owner thread of `thread` only.
    #[inline(always)]
    pub(crate) unsafe fn record_dealloc(
        &self,
        thread: &ThreadState,
        record: &SiteRecord,
        size: usize,
    ) {
        // SAFETY: (1) owner thread, per contract; (2) begin/end are paired around every write.
        unsafe {
            thread.begin_write();
            if std::ptr::eq(record.owner, thread) {
                record.owner_add(wrapping(-(size as i64)), wrapping(-1), 0, 0);
            } else {
                record.remote_add(wrapping(-(size as i64)), wrapping(-1), 0, 0);
            }
            self.account_live(thread, -(size as i64), -1, false);
            thread.end_write();
        }
    }

    /// Counts an allocation on a thread without state (memory for it could not be mapped).
    #[cold]
    pub(crate) fn record_orphan_alloc(&self, size: usize) -> &SiteRecord {
        self.flushed_bytes.fetch_add(size as i64, Ordering::Relaxed);
        self.flushed_blocks.fetch_add(1, Ordering::Relaxed);
        self.orphan_total_bytes
            .fetch_add(size as u64, Ordering::Relaxed);
        self.orphan_total_blocks.fetch_add(1, Ordering::Relaxed);
        self.orphan_record
            .remote_add(size as u64, 1, size as u64, 1);
        &self.orphan_record
    }

    /// Counts a realloc or free (`new == 0` with `freed`) on a thread without state.
    #[cold]
    pub(crate) fn record_orphan_change(
        &self,
        record: &SiteRecord,
        old: usize,
        new: usize,
        freed: bool,
    ) {
        let delta = new as i64 - old as i64;
        let blocks = if freed { -1 } else { 0 };
        self.flushed_bytes.fetch_add(delta, Ordering::Relaxed);
        self.flushed_blocks.fetch_add(blocks, Ordering::Relaxed);
        let (total_bytes, total_blocks) = if freed { (0, 0) } else { (new as u64, 1) };
        self.orphan_total_bytes
            .fetch_add(total_bytes, Ordering::Relaxed);
        self.orphan_total_blocks
            .fetch_add(total_blocks, Ordering::Relaxed);
        record.remote_add(wrapping(delta), wrapping(blocks), total_bytes, total_blocks);
    }

    /// Counts a heap block of the profiler's own (positive on alloc, negative on free).
    pub(crate) fn record_own(&self, bytes: i64) {
        self.own_heap_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Memory the profiler holds: its mappings and its own live heap blocks.
    pub(crate) fn own_bytes(&self) -> u64 {
        self.mapped_bytes.load(Ordering::Relaxed)
            + self.own_heap_bytes.load(Ordering::Relaxed).max(0) as u64
    }

    /// Whole-process figures: exact when the program is quiescent.
    pub(crate) fn stats(&self) -> HeapStats {
        let floor = *self.peak_floor.lock().unwrap_or_else(|e| e.into_inner());
        self.stats_since(floor)
    }

    /// Whole-process figures, the peak taken from `floor` (epoch, bytes, blocks) on.
    fn stats_since(&self, floor: (u64, u64, u64)) -> HeapStats {
        let epoch = self.peak_epoch.load(Ordering::Relaxed);
        let mut live_bytes = self.flushed_bytes.load(Ordering::Relaxed);
        let mut live_blocks = self.flushed_blocks.load(Ordering::Relaxed);
        let mut stats = HeapStats {
            total_bytes: self.orphan_total_bytes.load(Ordering::Relaxed),
            total_blocks: self.orphan_total_blocks.load(Ordering::Relaxed),
            ..HeapStats::default()
        };
        let (mut peak_bytes, mut peak_blocks) = if floor.0 == epoch {
            (floor.1, floor.2)
        } else {
            (0, 0)
        };
        for thread in self.threads() {
            let c = thread.counts();
            live_bytes += c.unflushed_bytes;
            live_blocks += c.unflushed_blocks;
            stats.total_bytes += c.total_bytes;
            stats.total_blocks += c.total_blocks;
            if c.peak_epoch == epoch && c.peak_bytes >= peak_bytes {
                (peak_bytes, peak_blocks) = (c.peak_bytes, c.peak_blocks);
            }
        }
        stats.live_bytes = live_bytes.max(0) as u64;
        stats.live_blocks = live_blocks.max(0) as u64;
        // A candidate can lag behind another thread's unflushed growth; the peak is never below now.
        if stats.live_bytes > peak_bytes {
            (peak_bytes, peak_blocks) = (stats.live_bytes, stats.live_blocks);
        }
        stats.peak_bytes = peak_bytes;
        stats.peak_blocks = peak_blocks;
        stats
    }

    /// Sets the peak to the current live figures.
    pub(crate) fn reset_peak(&self) {
        let mut floor = self.peak_floor.lock().unwrap_or_else(|e| e.into_inner());
        let epoch = self.peak_epoch.fetch_add(1, Ordering::Relaxed) + 1;
        let now = self.stats_since((epoch, 0, 0));
        *floor = (epoch, now.live_bytes, now.live_blocks);
    }
}
