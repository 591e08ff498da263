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
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use tracealloc_snapshot::HeapStats;

use crate::accounting::measure;
use crate::accounting::timeline::Timeline;
use crate::capture::Captured;
use crate::state::record::SiteDelta;
use crate::state::record::{OwnerId, SiteRecord};
use crate::state::thread::{ThreadState, name_family};

/// Exited threads' states kept for reuse at most (more exiting at once stay unused).
const RETIRED_SLOTS: usize = 256;

/// Where an operation's change goes.
pub(crate) enum Site<'s> {
    /// No site: a block that was not sampled.
    Untracked,
    /// The block's record.
    Record(&'s SiteRecord),
    /// The record of this stack, with its identity, on the operating thread (made if new).
    Captured(&'s Captured, (u64, u64)),
}

impl<'s> Site<'s> {
    /// The site of a fresh capture. Its identity is taken here, before the operation's first
    /// store: read after one, the compiler reloads it from memory (the capture's address escapes
    /// into the walk's `asm!`), a store-to-load round trip on the way to the table's slot.
    #[inline(always)]
    pub(crate) fn captured(captured: &'s Captured) -> Site<'s> {
        Site::Captured(captured, captured.identity())
    }
}

/// The process's peak as allocating threads see it, apart on its own cache line: read by every
/// event, written only when the live bytes reach a new maximum.
#[repr(align(64))]
pub(crate) struct PeakMark {
    /// The highest live bytes a thread has seen since start or the last `reset_peak`.
    bytes: AtomicU64,
    /// Bumped at each new maximum (`>=`, as dhat-rs: of equal peaks the latest counts). A record
    /// changed for the first time since keeps its figures as they were (see
    /// [`SiteRecord::owner_add`]); a record not changed since is as it was at the peak.
    generation: AtomicU64,
    /// Set at each new maximum; the first decrease after it is when the live bytes leave the
    /// peak, and reads the clock into `left_ms` (as dhat-rs checks for its peak on frees).
    armed: AtomicBool,
    /// When the live bytes last left their peak (ms since the first allocation).
    left_ms: AtomicU64,
}

impl PeakMark {
    const fn new() -> PeakMark {
        PeakMark {
            bytes: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            armed: AtomicBool::new(false),
            left_ms: AtomicU64::new(0),
        }
    }

    /// When the peak was (ms since the first allocation): when the live bytes left it, or now if
    /// they have not.
    pub(crate) fn time_ms(&self, timeline: &Timeline) -> u64 {
        if self.armed.load(Ordering::Relaxed) {
            timeline.elapsed_ms(crate::sys::coarse_now_ms())
        } else {
            self.left_ms.load(Ordering::Relaxed)
        }
    }

    /// Called on every decrease of the live bytes.
    #[inline(always)]
    fn on_decrease(&self, timeline: &Timeline) {
        if self.armed.load(Ordering::Relaxed) {
            self.leave(timeline);
        }
    }

    #[cold]
    #[inline(never)]
    fn leave(&self, timeline: &Timeline) {
        self.armed.store(false, Ordering::Relaxed);
        self.left_ms.store(
            timeline.elapsed_ms(crate::sys::coarse_now_ms()),
            Ordering::Relaxed,
        );
    }

    #[inline(always)]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Moves the peak to `live_bytes` when they reach it; returns whether they did.
    #[inline(always)]
    fn offer(&self, live_bytes: u64) -> bool {
        let peak = self.bytes.load(Ordering::Relaxed);
        let reached = live_bytes >= peak;
        if reached {
            self.raise(live_bytes, live_bytes != peak);
        }
        reached
    }

    /// A plain load and store, not a locked add: every allocation of a growing program raises the
    /// peak. Two threads raising at once may share a generation, within the bound on the peak
    /// with several threads allocating at once.
    #[inline(always)]
    fn raise(&self, live_bytes: u64, higher: bool) {
        self.bytes.store(live_bytes, Ordering::Relaxed);
        let generation = self.generation.load(Ordering::Relaxed);
        self.generation.store(generation + 1, Ordering::Relaxed);
        // The timeline's peak is when the highest value was first left: a program going back and
        // forth at its peak (alloc, free, alloc...) reads no clock for every free.
        if higher && !self.armed.load(Ordering::Relaxed) {
            self.armed.store(true, Ordering::Relaxed);
        }
    }
}

/// The global figures and the list of thread states.
pub(crate) struct Registry {
    threads: AtomicPtr<ThreadState>,
    /// States of exited threads, for new threads to adopt: threads that come and go (a thread per
    /// connection, a pool that reaps idle workers) reuse a few states instead of adding one each.
    retired: [AtomicPtr<ThreadState>; RETIRED_SLOTS],
    thread_count: AtomicU32,
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
            retired: [const { AtomicPtr::new(std::ptr::null_mut()) }; RETIRED_SLOTS],
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

    /// The state for the calling thread, which has none yet: an exited thread's state from the
    /// pool when one exited with the name this thread has now, else with a name of the same
    /// family (`conn-17` for `conn-18`: see [`name_family`]), else a new one, published.
    #[cold]
    pub(crate) fn register_thread(&self) -> Option<&ThreadState> {
        let name = crate::sys::current_thread_name();
        if let Some(state) =
            self.adopt_retired(|candidate| candidate.exited_with_name(&name), false)
        {
            return Some(state);
        }
        if let Some(family) = name_family(&name)
            && let Some(state) =
                self.adopt_retired(|candidate| candidate.exited_in_family(family), true)
        {
            return Some(state);
        }
        self.new_thread_state()
    }

    /// Takes the first retired state that `fits` out of the pool and adopts it for the calling
    /// thread (`renamed`: see [`ThreadState::adopt`]).
    fn adopt_retired(
        &self,
        fits: impl Fn(&ThreadState) -> bool,
        renamed: bool,
    ) -> Option<&ThreadState> {
        for slot in &self.retired {
            let state = slot.load(Ordering::Acquire);
            // SAFETY: pooled states are published states, never freed.
            let Some(candidate) = (unsafe { state.as_ref() }) else {
                continue;
            };
            if fits(candidate)
                && slot
                    .compare_exchange(
                        state,
                        std::ptr::null_mut(),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                // SAFETY: (1) a retired state's owner has exited; (2) the exchange took it out of
                // the pool for this thread alone.
                unsafe { candidate.adopt(renamed) };
                return Some(candidate);
            }
        }
        None
    }

    /// Puts the state of a thread that is exiting in the pool, for the next thread that starts with
    /// the same name (when the pool is full, the state stays unused). Called by that thread, after
    /// it recorded its name and stopped using its state.
    pub(crate) fn retire(&self, state: &ThreadState) {
        let state = state as *const ThreadState as *mut ThreadState;
        for slot in &self.retired {
            if slot
                .compare_exchange(
                    std::ptr::null_mut(),
                    state,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                return;
            }
        }
    }

    /// Creates and publishes a new thread state (to be used by the calling thread only).
    #[cold]
    fn new_thread_state(&self) -> Option<&ThreadState> {
        let index = self.thread_count.fetch_add(1, Ordering::Relaxed);
        let mut head = self.threads.load(Ordering::Acquire);
        let state = ThreadState::create(index, head, &self.mapped_bytes);
        if state.is_null() {
            self.threads_without_state.fetch_add(1, Ordering::Relaxed);
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
                Site::Captured(captured, identity) => {
                    thread.record_for(captured, identity, &self.mapped_bytes)
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
            delta.realloc_copied_bytes = old.min(new) as u64;
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
            .fetch_add(change.total_bytes, Ordering::Relaxed);
        self.orphan_total_blocks
            .fetch_add(change.total_blocks, Ordering::Relaxed);
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

/// The model check: random operation sequences run through the bookkeeping and through a trivially
/// correct reference (one map, one lock), and every counter must agree.
#[cfg(test)]
mod model_check {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use proptest::prelude::*;

    use super::{Registry, Site};
    use crate::capture::Captured;
    use crate::state::record::SiteDelta;
    use crate::state::record::{Counts, SiteRecord};
    use crate::state::thread::ThreadState;

    #[derive(Debug, Clone)]
    enum Op {
        Alloc {
            thread: usize,
            site: usize,
            size: usize,
        },
        Realloc {
            thread: usize,
            block: usize,
            size: usize,
        },
        Free {
            thread: usize,
            block: usize,
        },
        /// The thread exits and a new thread of the same name starts: it adopts the state.
        Exit {
            thread: usize,
        },
        /// A block left out by sampling (no site), counted on sampled mode's short path (no
        /// flush, no peak check) or with every check.
        Untracked {
            thread: usize,
            size: usize,
            short: bool,
        },
        UntrackedFree {
            thread: usize,
            block: usize,
            short: bool,
        },
    }

    const THREADS: usize = 3;
    // Sites are drawn from a few (repeats) or from hundreds (so tables and record chunks grow).

    fn op() -> impl Strategy<Value = Op> {
        // Few distinct small sizes make equal live totals (peak ties) common.
        let size = prop_oneof![
            prop::sample::select(vec![8usize, 16, 24, 32]),
            1usize..64,
            64usize..4096,
            4096usize..200_000
        ];
        prop_oneof![
            3 => (0..THREADS, prop_oneof![0..4usize, 0..300usize], size.clone()).prop_map(|(thread, site, size)| Op::Alloc { thread, site, size }),
            2 => (0..THREADS, any::<usize>(), size).prop_map(|(thread, block, size)| Op::Realloc { thread, block, size }),
            2 => (0..THREADS, any::<usize>()).prop_map(|(thread, block)| Op::Free { thread, block }),
            1 => (0..THREADS).prop_map(|thread| Op::Exit { thread }),
        ]
    }

    /// `op`, and blocks left out by sampling as sampled mode counts them.
    fn op_with_untracked() -> impl Strategy<Value = Op> {
        let size = prop_oneof![1usize..64, 64usize..4096, 4096usize..200_000];
        prop_oneof![
            6 => op(),
            3 => (0..THREADS, size, any::<bool>()).prop_map(|(thread, size, short)| Op::Untracked { thread, size, short }),
            2 => (0..THREADS, any::<usize>(), any::<bool>()).prop_map(|(thread, block, short)| Op::UntrackedFree { thread, block, short }),
        ]
    }

    /// The reference: every live block in one map under one lock, counters recomputed by hand.
    #[derive(Default)]
    struct Reference {
        blocks: Mutex<Vec<(usize, usize, u64, usize)>>, // (site, allocating thread, size, address)
        /// Each thread's latest allocation while it is live.
        last_block: HashMap<usize, usize>,
        next_address: usize,
        sites: HashMap<(usize, usize), Counts>,
        live: (u64, u64),
        total: (u64, u64),
        peak: (u64, u64),
    }

    impl Reference {
        fn check_peak(&mut self) {
            if self.live.0 >= self.peak.0 {
                self.peak = self.live;
                for c in self.sites.values_mut() {
                    (c.peak_bytes, c.peak_blocks) = (c.live_bytes, c.live_blocks);
                }
            }
        }
    }

    fn stack_of(site: usize) -> Captured {
        Captured::of(&[0x1000 + site * 16, 0x2000, 0x3000 + site])
    }

    /// Counts a block left out by sampling as sampled mode does: on the short path, or with every
    /// check (a write section, the flush, the peak candidate).
    fn count_untracked(
        registry: &Registry,
        state: &ThreadState,
        short: bool,
        live: (i64, i64),
        allocated: Option<u64>,
    ) {
        // SAFETY: the test thread is the only one using any of the states, and opens no section.
        unsafe {
            if short {
                state.add_short_path(live, allocated);
            } else {
                registry.apply(
                    state,
                    Site::Untracked,
                    SiteDelta::default(),
                    live,
                    allocated,
                );
            }
        }
    }

    /// Runs `ops` on a fresh registry and on the reference; returns both for comparison.
    fn run(
        ops: &[Op],
        threshold: i64,
        threads: usize,
    ) -> (&'static Registry, Vec<&'static ThreadState>, Reference) {
        let registry: &'static Registry = Box::leak(Box::new(Registry::new(threshold)));
        let mut states: Vec<&ThreadState> = (0..threads)
            .map(|_| registry.register_thread().unwrap())
            .collect();
        let mut reference = Reference::default();
        let mut records: Vec<&SiteRecord> = Vec::new();
        let mut untracked: Vec<u64> = Vec::new();
        for op in ops {
            let mut blocks = reference.blocks.lock().unwrap();
            match *op {
                Op::Alloc { thread, site, size } => {
                    let thread = thread % threads;
                    reference.next_address += 16;
                    let address = reference.next_address;
                    // SAFETY: this test thread is the only one using any of the states.
                    let record = unsafe {
                        registry.record_alloc(states[thread], &stack_of(site), size, address)
                    };
                    records.push(record);
                    blocks.push((site, thread, size as u64, address));
                    reference.last_block.insert(thread, address);
                    let c = reference.sites.entry((site, thread)).or_default();
                    c.live_bytes += size as u64;
                    c.live_blocks += 1;
                    c.total_bytes += size as u64;
                    c.total_blocks += 1;
                    reference.live = (reference.live.0 + size as u64, reference.live.1 + 1);
                    reference.total = (reference.total.0 + size as u64, reference.total.1 + 1);
                    drop(blocks);
                    reference.check_peak();
                }
                Op::Realloc {
                    thread,
                    block,
                    size,
                } if !blocks.is_empty() => {
                    let i = block % blocks.len();
                    let (site, owner, old, from) = blocks[i];
                    // Half the reallocs stay in place.
                    let to = if size % 2 == 0 {
                        from
                    } else {
                        reference.next_address += 16;
                        reference.next_address
                    };
                    let thread = thread % threads;
                    // SAFETY: as above.
                    unsafe {
                        registry.record_realloc(
                            states[thread],
                            records[i],
                            old as usize,
                            size,
                            (from, to),
                        )
                    };
                    blocks[i].2 = size as u64;
                    blocks[i].3 = to;
                    if reference.last_block.get(&thread) == Some(&from) {
                        reference.last_block.insert(thread, to);
                    }
                    let c = reference.sites.get_mut(&(site, owner)).unwrap();
                    c.live_bytes = c.live_bytes + size as u64 - old;
                    c.total_bytes += size as u64;
                    c.total_blocks += 1;
                    c.reallocs += 1;
                    if from != to {
                        c.realloc_copied_bytes += old.min(size as u64);
                    }
                    reference.live.0 = reference.live.0 + size as u64 - old;
                    reference.total = (reference.total.0 + size as u64, reference.total.1 + 1);
                    drop(blocks);
                    reference.check_peak();
                }
                Op::Free { thread, block } if !blocks.is_empty() => {
                    let i = block % blocks.len();
                    let (site, owner, size, address) = blocks.swap_remove(i);
                    let record = records.swap_remove(i);
                    let thread = thread % threads;
                    // SAFETY: as above.
                    unsafe {
                        registry.record_dealloc(states[thread], record, size as usize, address)
                    };
                    let latest = reference.last_block.get(&thread) == Some(&address);
                    if latest {
                        reference.last_block.remove(&thread);
                    }
                    let c = reference.sites.get_mut(&(site, owner)).unwrap();
                    c.live_bytes -= size;
                    c.live_blocks -= 1;
                    // Freed by its allocating thread before that thread's next allocation.
                    if latest && owner == thread {
                        c.temporary_blocks += 1;
                    }
                    reference.live = (reference.live.0 - size, reference.live.1 - 1);
                }
                Op::Exit { thread } => {
                    // The state's blocks stay live and charged to it; the next thread of the
                    // same name (this test thread's) adopts it and goes on counting there.
                    let exiting = states[thread % threads];
                    reference.last_block.remove(&(thread % threads));
                    exiting.capture_name();
                    registry.retire(exiting);
                    let next = registry.register_thread().unwrap();
                    assert!(
                        std::ptr::eq(next, exiting),
                        "the next thread of the same name adopts the exited state"
                    );
                    states[thread % threads] = next;
                }
                Op::Untracked {
                    thread,
                    size,
                    short,
                } => {
                    let state = states[thread % threads];
                    count_untracked(registry, state, short, (size as i64, 1), Some(size as u64));
                    untracked.push(size as u64);
                    reference.live = (reference.live.0 + size as u64, reference.live.1 + 1);
                    reference.total = (reference.total.0 + size as u64, reference.total.1 + 1);
                    drop(blocks);
                    // The short path leaves the peak to the thread's next full event.
                    if !short {
                        reference.check_peak();
                    }
                }
                Op::UntrackedFree {
                    thread,
                    block,
                    short,
                } if !untracked.is_empty() => {
                    let size = untracked.swap_remove(block % untracked.len());
                    let state = states[thread % threads];
                    count_untracked(registry, state, short, (-(size as i64), -1), None);
                    reference.live = (reference.live.0 - size, reference.live.1 - 1);
                }
                _ => {}
            }
        }
        (registry, states, reference)
    }

    fn site_counts(
        registry: &Registry,
        states: &[&ThreadState],
    ) -> HashMap<(usize, usize), Counts> {
        let peak_gen = registry.peak_mark.generation();
        let mut found = HashMap::new();
        for (t, state) in states.iter().enumerate() {
            for record in state.records() {
                let site = (record.frames().next().unwrap() - 0x1000) / 16;
                let counts = state
                    .read_consistent(|| record.read_local(peak_gen))
                    .expect("quiescent")
                    .plus(record.read_remote(peak_gen));
                found.insert((site, t), counts);
            }
        }
        found
    }

    fn compare(
        registry: &Registry,
        states: &[&ThreadState],
        reference: &Reference,
        exact_peak: bool,
    ) {
        let stats = registry.stats();
        assert_eq!(
            (stats.live_bytes, stats.live_blocks),
            reference.live,
            "live"
        );
        assert_eq!(
            (stats.total_bytes, stats.total_blocks),
            reference.total,
            "total"
        );
        if exact_peak {
            // A read never puts the peak below the live figures it reads (which may include
            // events the peak check has not seen yet).
            let peak = if reference.live.0 > reference.peak.0 {
                reference.live
            } else {
                reference.peak
            };
            assert_eq!((stats.peak_bytes, stats.peak_blocks), peak, "peak");
        }
        // Each site's figures at the peak are exact where the peak is.
        let without_peak = |sites: &HashMap<(usize, usize), Counts>| -> HashMap<_, _> {
            sites
                .iter()
                .map(|(&k, &c)| {
                    let peak = if exact_peak {
                        (c.peak_bytes, c.peak_blocks)
                    } else {
                        (0, 0)
                    };
                    (
                        k,
                        Counts {
                            peak_bytes: peak.0,
                            peak_blocks: peak.1,
                            ..c
                        },
                    )
                })
                .collect()
        };
        assert_eq!(
            without_peak(&site_counts(registry, states)),
            without_peak(&reference.sites),
            "per site and thread"
        );
        let per_thread: Vec<(u64, u64)> = (0..states.len())
            .map(|t| {
                reference
                    .sites
                    .iter()
                    .filter(|((_, th), _)| *th == t)
                    .fold((0, 0), |a, (_, c)| {
                        (a.0 + c.live_bytes, a.1 + c.total_blocks)
                    })
            })
            .collect();
        let found: Vec<(u64, u64)> = (0..states.len())
            .map(|t| {
                site_counts(registry, states)
                    .iter()
                    .filter(|((_, th), _)| *th == t)
                    .fold((0, 0), |a, (_, c)| {
                        (a.0 + c.live_bytes, a.1 + c.total_blocks)
                    })
            })
            .collect();
        assert_eq!(found, per_thread, "per thread");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Flushing on every operation, every figure is exact, the peak included, whatever the
        /// threads' interleaving.
        #[test]
        fn bookkeeping_matches_the_reference(ops in prop::collection::vec(op(), 1..300)) {
            let (registry, states, reference) = run(&ops, 0, THREADS);
            compare(registry, &states, &reference, true);
        }

        /// With the production flush threshold, one thread's figures are all exact, the peak too.
        #[test]
        fn one_thread_with_buffered_flushes_matches_the_reference(ops in prop::collection::vec(op(), 1..300)) {
            let (registry, states, reference) = run(&ops, 64 * 1024, 1);
            compare(registry, &states, &reference, true);
        }

        /// Blocks left out by sampling on one thread, on the short path or with every check: every
        /// figure exact, the peak as of the full events.
        #[test]
        fn left_out_blocks_on_the_short_path_match_the_reference(ops in prop::collection::vec(op_with_untracked(), 1..300)) {
            let (registry, states, reference) = run(&ops, 64 * 1024, 1);
            compare(registry, &states, &reference, true);
        }

        /// With the production threshold and several threads, totals and live figures are exact and
        /// the peak is within the documented bound (threshold per thread).
        #[test]
        fn several_threads_with_buffered_flushes_bound_the_peak(ops in prop::collection::vec(op(), 1..300)) {
            let (registry, states, reference) = run(&ops, 64 * 1024, THREADS);
            compare(registry, &states, &reference, false);
            let peak = registry.stats().peak_bytes as i64;
            let bound = 64 * 1024 * THREADS as i64 + 200_000;
            prop_assert!((peak - reference.peak.0 as i64).abs() <= bound, "peak {} vs {}", peak, reference.peak.0);
        }
    }

    /// Of equal peaks the latest counts, as in dhat-rs: the peak's blocks are those of the latest.
    #[test]
    fn equal_peaks_keep_the_latest_block_count() {
        use Op::*;
        let ops = [
            Alloc {
                thread: 0,
                site: 0,
                size: 100,
            },
            Free {
                thread: 0,
                block: 0,
            },
            Alloc {
                thread: 0,
                site: 1,
                size: 60,
            },
            Alloc {
                thread: 0,
                site: 1,
                size: 40,
            },
        ];
        let (registry, _, reference) = run(&ops, 64 * 1024, 1);
        assert_eq!(reference.peak, (100, 2));
        let stats = registry.stats();
        assert_eq!((stats.peak_bytes, stats.peak_blocks), (100, 2));
    }

    /// Real threads, concurrently: each allocates, reallocs and frees with its own state, then the
    /// main thread frees half of every thread's survivors (remote frees). Quiescent figures are exact.
    #[test]
    fn concurrent_threads_match_the_reference_when_quiescent() {
        let registry: &'static Registry = Box::leak(Box::new(Registry::new(64 * 1024)));
        let workers: Vec<_> = (0..4usize)
            .map(|t| {
                std::thread::spawn(move || {
                    let state = registry.register_thread().unwrap();
                    let mut live: Vec<(&SiteRecord, usize, usize, usize)> = Vec::new();
                    let mut sites: HashMap<usize, Counts> = HashMap::new();
                    let mut seed = t as u64 + 1;
                    let (mut next_address, mut last_block) = (0usize, 0usize);
                    for _ in 0..20_000 {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let r = (seed >> 33) as usize;
                        let site = r % 5;
                        let size = 1 + r % 3000;
                        // SAFETY: each worker uses only its own state.
                        unsafe {
                            match r % 4 {
                                0 | 1 => {
                                    next_address += 16;
                                    last_block = next_address;
                                    live.push((
                                        registry.record_alloc(
                                            state,
                                            &stack_of(site),
                                            size,
                                            next_address,
                                        ),
                                        site,
                                        size,
                                        next_address,
                                    ));
                                    let c = sites.entry(site).or_default();
                                    c.live_bytes += size as u64;
                                    c.live_blocks += 1;
                                    c.total_bytes += size as u64;
                                    c.total_blocks += 1;
                                }
                                2 if !live.is_empty() => {
                                    let i = r % live.len();
                                    let (record, site, old, at) = live[i];
                                    registry.record_realloc(state, record, old, size, (at, at));
                                    live[i].2 = size;
                                    let c = sites.get_mut(&site).unwrap();
                                    c.live_bytes = c.live_bytes + size as u64 - old as u64;
                                    c.total_bytes += size as u64;
                                    c.total_blocks += 1;
                                    c.reallocs += 1;
                                }
                                _ if !live.is_empty() => {
                                    let (record, site, size, at) = live.swap_remove(r % live.len());
                                    registry.record_dealloc(state, record, size, at);
                                    let c = sites.get_mut(&site).unwrap();
                                    c.live_bytes -= size as u64;
                                    c.live_blocks -= 1;
                                    if at == last_block {
                                        c.temporary_blocks += 1;
                                        last_block = 0;
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                    (state.index as usize, live, sites)
                })
            })
            .collect();
        let main_state = registry.register_thread().unwrap();
        let mut expected: HashMap<(usize, usize), Counts> = HashMap::new();
        for worker in workers {
            let (t, mut live, sites) = worker.join().unwrap();
            for (site, c) in sites {
                expected.insert((site, t), c);
            }
            let keep = live.len() / 2;
            for (record, site, size, at) in live.drain(keep..) {
                // SAFETY: the main thread uses only its own state.
                unsafe { registry.record_dealloc(main_state, record, size, at) };
                let c = expected.get_mut(&(site, t)).unwrap();
                c.live_bytes -= size as u64;
                c.live_blocks -= 1;
            }
        }
        let mut found = HashMap::new();
        for state in registry.threads() {
            for record in state.records() {
                let site = (record.frames().next().unwrap() - 0x1000) / 16;
                let counts = state
                    .read_consistent(|| record.read_local(0))
                    .expect("quiescent")
                    .plus(record.read_remote(0));
                // Figures at the peak are not exact with threads allocating at once.
                let counts = Counts {
                    peak_bytes: 0,
                    peak_blocks: 0,
                    ..counts
                };
                found.insert((site, state.index as usize), counts);
            }
        }
        assert_eq!(found, expected);
        let stats = registry.stats();
        let live: (u64, u64) = expected
            .values()
            .fold((0, 0), |a, c| (a.0 + c.live_bytes, a.1 + c.live_blocks));
        let total: (u64, u64) = expected
            .values()
            .fold((0, 0), |a, c| (a.0 + c.total_bytes, a.1 + c.total_blocks));
        assert_eq!((stats.live_bytes, stats.live_blocks), live);
        assert_eq!((stats.total_bytes, stats.total_blocks), total);
        assert!(stats.peak_bytes >= stats.live_bytes);
    }
}
