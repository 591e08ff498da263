//! The bookkeeping: global figures folded from per-thread state, and the three operations the
//! allocator performs (alloc, realloc, dealloc) on a given thread's state.
//!
//! Totals follow dhat-rs's definitions. Live figures are per-thread deltas, flushed to the shared
//! counters only every [`Registry::flush_threshold`] bytes, so allocating threads share no cache
//! line on the hot path. The peak is tracked per thread as a candidate `flushed-at-last-flush +
//! unflushed` after each alloc and realloc, and is the maximum candidate when read: exact when one
//! thread allocates at a time (and always when the threshold is zero); with several threads
//! allocating at once, it can miss the others' unflushed deltas, at most `threads × threshold`.
//! In sampled mode, events left out by sampling are added without the candidate check, which the
//! next full event of the thread (at most a threshold of allocation later) makes: the peak can
//! then be below the true one by up to the threshold per thread.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use tracealloc_snapshot::HeapStats;

use crate::accounting::measure;
use crate::accounting::peak::PeakMark;
use crate::accounting::timeline::Timeline;
use crate::capture::Captured;
use crate::state::counters::SiteDelta;
use crate::state::pool::Pool;
use crate::state::record::{OwnerId, SiteRecord};
use crate::state::thread::ThreadState;

mod resize;

/// Exited threads' states kept for reuse at most (more exiting at once stay unused).
const RETIRED_SLOTS: usize = 256;

/// Where an operation's change goes.
pub(crate) enum Site<'s> {
    /// No site: a block that was not sampled.
    Untracked,
    /// The block's record.
    Record(&'s SiteRecord),
    /// The record of this stack, with its identity, on the operating thread (made if new), for
    /// blocks sampled in the given epoch (`accounting::sampling`; 0 in exact mode), which the
    /// identity mixes in.
    Captured(&'s Captured, (u64, u64), u8),
}

impl<'s> Site<'s> {
    /// The site of a fresh capture. Its identity is taken here, before the operation's first
    /// store: read after one, the compiler reloads it from memory (the capture's address escapes
    /// into the walk's `asm!`), a store-to-load round trip on the way to the table's slot.
    #[inline(always)]
    pub(crate) fn captured(captured: &'s Captured) -> Site<'s> {
        Site::Captured(captured, captured.identity(), 0)
    }
}

/// The global figures and the list of thread states.
pub(crate) struct Registry {
    /// The thread states, newest first (the list's functions are in `accounting::threads`).
    pub(crate) threads: AtomicPtr<ThreadState>,
    /// States of exited threads, for new threads to adopt: threads that come and go (a thread per
    /// connection, a pool that reaps idle workers) reuse a few states instead of adding one each.
    pub(crate) retired: Pool<ThreadState, RETIRED_SLOTS>,
    pub(crate) thread_count: AtomicU32,
    /// Sum of the live deltas threads have flushed.
    flushed_bytes: AtomicI64,
    flushed_blocks: AtomicI64,
    /// Counts flushes: orders the peak candidates of different threads (of equal peaks, the
    /// latest counts, as in dhat-rs).
    flush_seq: AtomicU64,
    /// Bumped by `reset_peak`; candidates of older epochs no longer count.
    peak_epoch: AtomicU64,
    /// The live figures at the last `reset_peak`: (epoch, bytes, blocks).
    pub(crate) peak_floor: Mutex<(u64, u64, u64)>,
    /// A thread flushes its live delta once it reaches this many bytes (0: on every operation).
    flush_threshold: i64,
    /// Bytes carved for the profiler's own tables.
    pub(crate) mapped_bytes: AtomicU64,
    /// The profiler's own heap blocks (made under the reentrancy guard).
    own_heap_bytes: AtomicI64,
    /// Allocations on a thread whose state could not be made (memory exhausted): counted in the
    /// totals, charged to no site.
    orphan_total_bytes: AtomicU64,
    orphan_total_blocks: AtomicU64,
    pub(crate) orphan_record: SiteRecord,
    /// Threads that could not get a state (memory for it ran out): they went on without one.
    pub(crate) threads_without_state: AtomicU64,
    /// The next `measure` scope id: increasing, so that scopes nested in a measure have larger ids.
    next_scope: AtomicU64,
    /// When the live bytes last reached their maximum, for each site's figures at that moment.
    pub(crate) peak_mark: PeakMark,
    /// Memory over time.
    pub(crate) timeline: Timeline,
}

impl Registry {
    pub(crate) const fn new(flush_threshold: i64) -> Registry {
        Registry {
            threads: AtomicPtr::new(std::ptr::null_mut()),
            retired: Pool::new(),
            thread_count: AtomicU32::new(0),
            flushed_bytes: AtomicI64::new(0),
            flushed_blocks: AtomicI64::new(0),
            flush_seq: AtomicU64::new(0),
            peak_epoch: AtomicU64::new(0),
            peak_floor: Mutex::new((0, 0, 0)),
            flush_threshold,
            mapped_bytes: AtomicU64::new(0),
            own_heap_bytes: AtomicI64::new(0),
            orphan_total_bytes: AtomicU64::new(0),
            orphan_total_blocks: AtomicU64::new(0),
            orphan_record: SiteRecord::empty(OwnerId::NONE),
            threads_without_state: AtomicU64::new(0),
            next_scope: AtomicU64::new(1),
            peak_mark: PeakMark::new(),
            timeline: Timeline::new(),
        }
    }

    /// The live bytes a thread may change before it flushes them (see [`Self::flush_threshold`]).
    #[inline(always)]
    pub(crate) fn flush_threshold(&self) -> i64 {
        self.flush_threshold
    }

    /// Moves `thread`'s live delta (just counted: `bytes` is the event's change) into the flushed
    /// counters when it is large enough, then updates the thread's peak candidate when
    /// `check_peak` (after alloc and realloc, as dhat-rs does).
    ///
    /// # Safety
    /// Owner thread of `thread` only, inside its write section.
    #[inline(always)]
    unsafe fn account_live(&self, thread: &ThreadState, bytes: i64, check_peak: bool) -> bool {
        let mut unflushed_bytes = thread.unflushed_bytes();
        // SAFETY: forwarded contract.
        let mut base_bytes = unsafe { thread.base() }.0;
        if unflushed_bytes.unsigned_abs() >= self.flush_threshold as u64 {
            // SAFETY: forwarded contract.
            base_bytes = unsafe { self.flush(thread, unflushed_bytes) };
            unflushed_bytes = 0;
        }
        if bytes < 0 {
            self.peak_mark.on_decrease(&self.timeline);
        }
        if check_peak {
            let epoch = self.peak_epoch.load(Ordering::Relaxed);
            let live_bytes = (base_bytes + unflushed_bytes).max(0) as u64;
            if thread.peak_epoch.load(Ordering::Relaxed) != epoch {
                thread.peak_epoch.store(epoch, Ordering::Relaxed);
                thread.peak_bytes.store(0, Ordering::Relaxed);
            }
            // `>=`, as dhat-rs: of equal peaks the latest counts.
            if live_bytes >= thread.peak_bytes.load(Ordering::Relaxed) {
                // The blocks and the flush's sequence number only for a new candidate: most
                // events do not make one.
                // SAFETY: forwarded contract.
                let (_, base_blocks, base_seq) = unsafe { thread.base() };
                let live_blocks = (base_blocks + thread.unflushed_blocks()).max(0) as u64;
                thread.peak_bytes.store(live_bytes, Ordering::Relaxed);
                thread.peak_blocks.store(live_blocks, Ordering::Relaxed);
                thread.peak_seq.store(base_seq, Ordering::Relaxed);
                return self.peak_mark.offer(live_bytes);
            }
        }
        false
    }

    /// Moves `thread`'s unflushed live figures (`unflushed_bytes` and its blocks) into the flushed
    /// counters; returns the flushed bytes after it, the thread's new base. Out of line: it runs
    /// once per 64 KiB of change, and inlined, its registers cost the usual event a spill.
    ///
    /// # Safety
    /// Owner thread of `thread` only, inside its write section.
    #[cold]
    #[inline(never)]
    unsafe fn flush(&self, thread: &ThreadState, unflushed_bytes: i64) -> i64 {
        let unflushed_blocks = thread.unflushed_blocks();
        let base_bytes = self
            .flushed_bytes
            .fetch_add(unflushed_bytes, Ordering::Relaxed)
            + unflushed_bytes;
        let flushed_blocks = self
            .flushed_blocks
            .fetch_add(unflushed_blocks, Ordering::Relaxed)
            + unflushed_blocks;
        let seq = self.flush_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let unflushed = (unflushed_bytes, unflushed_blocks);
        // SAFETY: forwarded contract.
        unsafe { thread.set_base(unflushed, base_bytes, flushed_blocks, seq) };
        self.timeline.offer(base_bytes, flushed_blocks);
        base_bytes
    }

    /// Applies one operation of `thread`: `delta` to the site's record (found or made from a
    /// capture, or none), `live` (bytes, blocks) to the live figures, and, for an alloc or a
    /// realloc, `allocated` bytes to the totals. Returns the record (null for none).
    ///
    /// # Safety
    /// Called on the owner thread of `thread` only (one operation at a time per state).
    #[inline(always)]
    pub(crate) unsafe fn apply(
        &self,
        thread: &ThreadState,
        site: Site<'_>,
        delta: SiteDelta,
        live: (i64, i64),
        allocated: Option<u64>,
    ) -> *const SiteRecord {
        // SAFETY: (1) owner thread, per contract, with no other section open (one operation at a
        // time per state); (2) everything below writes inside the section.
        unsafe {
            let _section = thread.write_section();
            let record: *const SiteRecord = match site {
                Site::Untracked => std::ptr::null(),
                Site::Record(record) => record,
                Site::Captured(captured, identity, epoch) => {
                    thread.record_for(captured, identity, epoch, &self.mapped_bytes)
                }
            };
            thread.count(live, allocated);
            // The live figures first: when this very change makes a new peak, the record's figures
            // after it are the ones at the peak, and nothing needs keeping (in a growing program,
            // every allocation does).
            let raised = self.account_live(thread, live.0, allocated.is_some());
            if let Some(record) = record.as_ref() {
                let peak_gen = self.peak_mark.generation();
                if record.owner == thread.id() {
                    record.owner_add(&delta, peak_gen, raised);
                } else {
                    record.remote_add(&delta, peak_gen, raised, &self.mapped_bytes);
                }
            }
            let measures = thread.measures();
            if measures.depth != 0 {
                let freed = (live.1 < 0).then_some(live.0.unsigned_abs());
                measure::count(
                    measures,
                    thread.id(),
                    record.as_ref(),
                    &delta,
                    allocated,
                    freed,
                );
            }
            record
        }
    }

    /// Counts a new block of `size` bytes at `address`, allocated by `thread` at `captured`;
    /// returns its record.
    ///
    /// # Safety
    /// Called on the owner thread of `thread` only (one operation at a time per state).
    #[inline(always)]
    pub(crate) unsafe fn record_alloc<'t>(
        &self,
        thread: &'t ThreadState,
        captured: &Captured,
        size: usize,
        address: usize,
    ) -> &'t SiteRecord {
        let delta = SiteDelta::exact(size as i64, 1, Some(size));
        let site = Site::captured(captured);
        // SAFETY: (1) forwarded contract; (2) a capture always yields a record, published and
        // never freed, so it outlives the thread's state borrow.
        unsafe {
            thread.set_last_block(address);
            &*self.apply(thread, site, delta, (size as i64, 1), Some(size as u64))
        }
    }

    /// Counts a realloc by `thread` of a block of `record` from `old` to `new` bytes, moved from
    /// `addresses.0` to `addresses.1`: one more block in the totals, the new size in total bytes,
    /// live bytes moved by the difference; and the realloc and the bytes it copied (when the block
    /// moved) at the site. It stays the thread's latest block if it was (the same block, not
    /// another allocation).
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
        addresses: (usize, usize),
    ) {
        let change = new as i64 - old as i64;
        let mut delta = SiteDelta::exact(change, 0, Some(new));
        delta.reallocs = 1;
        if addresses.0 != addresses.1 {
            delta.realloc_copied_bytes = old.min(new) as i64;
        }
        // SAFETY: forwarded contract.
        unsafe {
            thread.move_last_block(addresses.0, addresses.1);
            self.apply(
                thread,
                Site::Record(record),
                delta,
                (change, 0),
                Some(new as u64),
            )
        };
    }

    /// Counts the free by `thread` of a block of `size` bytes at `address` of `record`: a
    /// temporary when `thread` allocated it and made no allocation since (heaptrack's rule).
    ///
    /// # Safety
    /// Called on the owner thread of `thread` only.
    #[inline(always)]
    pub(crate) unsafe fn record_dealloc(
        &self,
        thread: &ThreadState,
        record: &SiteRecord,
        size: usize,
        address: usize,
    ) {
        let mut delta = SiteDelta::exact(-(size as i64), -1, None);
        // SAFETY: forwarded contract.
        if unsafe { thread.take_last_block(address) } && record.owner == thread.id() {
            delta.temporary_blocks = 1;
        }
        // SAFETY: forwarded contract.
        unsafe {
            self.apply(
                thread,
                Site::Record(record),
                delta,
                (-(size as i64), -1),
                None,
            )
        };
    }

    /// Lifetimes mode: `thread` allocated a block of `record` at `birth`, or grew one (`None`);
    /// the site's own maximum follows. Only the owner's changes move the maximum: a realloc that
    /// grows another thread's block is seen at the owner's next change.
    ///
    /// # Safety
    /// Called on the owner thread of `thread` only.
    #[inline(always)]
    pub(crate) unsafe fn note_growth(
        &self,
        thread: &ThreadState,
        record: &SiteRecord,
        birth: Option<u64>,
    ) {
        if record.owner != thread.id() {
            return;
        }
        if let Some(counts) = record.lifetimes() {
            // SAFETY: (1) forwarded owner contract, no other section open; (2) the record is the
            // thread's own, written inside the section.
            let _section = unsafe { thread.write_section() };
            record.owner_grew(counts, birth);
        }
    }

    /// Lifetimes mode: `thread` frees a block of `record` at `stamp`.
    ///
    /// # Safety
    /// Called on the owner thread of `thread` only.
    #[inline(always)]
    pub(crate) unsafe fn note_death(&self, thread: &ThreadState, record: &SiteRecord, stamp: u64) {
        let Some(counts) = record.lifetimes() else {
            return;
        };
        if record.owner == thread.id() {
            // SAFETY: as in `note_growth`.
            let _section = unsafe { thread.write_section() };
            counts.owner_died(stamp);
        } else {
            counts.remote_died(stamp);
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
        let delta = SiteDelta::exact(size as i64, 1, Some(size));
        self.orphan_record.remote_add(
            &delta,
            self.peak_mark.generation(),
            false,
            &self.mapped_bytes,
        );
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
        let change = SiteDelta::exact(delta, blocks, (!freed).then_some(new));
        self.orphan_total_bytes
            .fetch_add(change.total_bytes as u64, Ordering::Relaxed);
        self.orphan_total_blocks
            .fetch_add(change.total_blocks as u64, Ordering::Relaxed);
        let peak_gen = self.peak_mark.generation();
        record.remote_add(&change, peak_gen, false, &self.mapped_bytes);
        if let Some(counts) = record.lifetimes().filter(|_| freed) {
            counts.remote_died(crate::accounting::stamp::stamp());
        }
    }

    /// Counts a heap block of the profiler's own (positive on alloc, negative on free).
    pub(crate) fn record_own(&self, bytes: i64) {
        self.own_heap_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The profiler's own memory in two parts: its tables (records, stacks, thread states, carved
    /// from its mappings) and its heap blocks (the symbol cache, mostly).
    pub(crate) fn own_bytes_parts(&self) -> (u64, u64) {
        (
            self.mapped_bytes.load(Ordering::Relaxed),
            self.own_heap_bytes.load(Ordering::Relaxed).max(0) as u64,
        )
    }

    /// A new measure scope id, larger than every one before.
    pub(crate) fn new_scope(&self) -> u64 {
        self.next_scope.fetch_add(1, Ordering::Relaxed)
    }

    /// Allocations counted without a thread state: made by threads in their exit hooks, after
    /// they handed their state back, or by threads that could not get one.
    pub(crate) fn allocations_without_state(&self) -> u64 {
        self.orphan_total_blocks.load(Ordering::Relaxed)
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
        let mut stats = HeapStats::default();
        stats.total_bytes = self.orphan_total_bytes.load(Ordering::Relaxed);
        stats.total_blocks = self.orphan_total_blocks.load(Ordering::Relaxed);
        let (mut peak_bytes, mut peak_blocks) = if floor.0 == epoch {
            (floor.1, floor.2)
        } else {
            (0, 0)
        };
        let mut peak_seq = 0;
        for thread in self.threads() {
            let c = thread.counts();
            live_bytes += c.unflushed_bytes;
            live_blocks += c.unflushed_blocks;
            stats.total_bytes += c.total_bytes;
            stats.total_blocks += c.total_blocks;
            // Of equal peaks the latest counts: the later flush, or any candidate over the floor.
            if c.peak_epoch == epoch && (c.peak_bytes, c.peak_seq) >= (peak_bytes, peak_seq) {
                (peak_bytes, peak_blocks, peak_seq) = (c.peak_bytes, c.peak_blocks, c.peak_seq);
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
        // The peak starts again from now: every site as it is now.
        let higher = now.live_bytes != self.peak_mark.bytes.load(Ordering::Relaxed);
        self.peak_mark.raise(now.live_bytes, higher);
    }
}
