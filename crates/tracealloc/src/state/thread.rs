//! Per-thread state: everything the hot path writes lives here, so threads share no cache line on
//! the hot path (no global lock, no global counter written per allocation).
//!
//! ```text
//!  Registry.threads ──> ThreadState ──next──> ThreadState ──> ... (push-only list, never freed)
//!                         │ seq (sequence lock over the counters below and the owner's records)
//!                         │ counters: bytes and blocks allocated and released, flushed marks;
//!                         │ peak candidate
//!                         │ OwnerOnly: stack-identity table ──> records; stack tree
//!                         └ first_chunk ──> RecordChunk[8 records] ──next──> RecordChunk[16] ...
//! ```
//!
//! All memory here is carved from the profiler's own mappings ([`crate::state::carve`]), never from the
//! global allocator, and is never freed: blocks may outlive their thread and still point at its
//! records.

use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU64, Ordering};

use crate::capture::{Captured, ThreadStack};
use crate::state::carve::carve;
use crate::state::measures::{MAX_NESTED_MEASURES, RecordMark};
use crate::state::record::{Label, OwnerId, RecordChunk, RecordKey, SiteRecord};
use crate::state::seqlock::{SeqLock, WriteSection};
use crate::state::stack_tree::StackTree;
use crate::state::table::{TAG_MASK, Table, table_place};
use crate::sys;

use crate::state::budget::STACK_BUDGET;
use crate::state::measures::{MeasureLevel, Measures};

/// A new thread starts small (a short-lived thread costs about a page) and each structure doubles
/// as the thread meets more distinct stacks: its table (see [`Table`]), and its record chunks up to
/// the largest size below.
const INITIAL_CHUNK_RECORDS: usize = 8;
const MAX_CHUNK_RECORDS: usize = 1024;
/// How long a reader waits for an owner to leave an update before it gives up (and says so).
const READ_PATIENCE: std::time::Duration = std::time::Duration::from_millis(20);

// Carved memory is aligned to `carve::ALIGN`: enough for every structure carved here.
const _: () = assert!(std::mem::align_of::<ThreadState>() <= crate::state::carve::ALIGN);
const _: () = assert!(std::mem::align_of::<RecordChunk>() <= crate::state::carve::ALIGN);

/// State only the owner thread touches.
#[repr(C)]
struct OwnerOnly {
    /// Flushed live bytes and blocks seen at this thread's last flush.
    base_bytes: i64,
    base_blocks: i64,
    /// The registry's flush sequence number of that flush: orders peaks of different threads.
    base_seq: u64,
    /// The owner's records by stack identity: an open-addressing table of tagged record pointers.
    table: Table,
    tail_chunk: *mut RecordChunk,
    stacks: StackTree,
    /// The address of this thread's latest allocation while it is live (0 once freed): a block
    /// freed while it is still the latest is a temporary.
    last_block: usize,
    /// What new records are keyed by besides their stack: the innermost measure's scope and the
    /// task label, and their mix into the stack's identity; kept up to date as they change, so a
    /// lookup reads two words.
    key: CurrentKey,
    sampler: SamplerState,
    /// The measures running on this thread, outermost first (its depth first: read on every
    /// event, next to the fields above; the levels only while a measure runs).
    measures: Measures,
}

/// See [`OwnerOnly::key`].
#[derive(Debug, Clone, Copy)]
struct CurrentKey {
    key: RecordKey,
    /// What the key adds to a stack's identity ([`RecordKey::identity_mix`]).
    mix: (u64, u64),
}

impl CurrentKey {
    const NONE: CurrentKey = CurrentKey {
        key: RecordKey::NONE,
        mix: (0, 0),
    };

    fn of(scope: u64, label: Label) -> CurrentKey {
        let key = RecordKey { scope, label };
        CurrentKey {
            key,
            mix: key.identity_mix(),
        }
    }
}

/// Where a thread is in the sampling process (only with sampling on): the bytes until its next
/// sample, and the generator of the intervals (zero until the thread's first draw).
/// The maths is [`crate::accounting::sampling`]'s.
///
/// The allowances are what the thread's usual events (see `process::sampled`) may still use before
/// one of them takes the full path, kept as limits on the thread's own counters, so that using them
/// stores nothing: the usual events may allocate until [`ThreadState`]'s allocated bytes reach
/// `alloc_limit` (an allowance taken from `bytes_left`, so it ends at the next sample point at the
/// latest), and release until its released bytes reach `free_limit`. Both are 0 while the usual
/// events must take the full path (a measure runs, a new state).
#[derive(Debug, Default)]
pub(crate) struct SamplerState {
    pub(crate) bytes_left: i64,
    pub(crate) rng: u64,
    pub(crate) alloc_limit: u64,
    pub(crate) free_limit: u64,
    /// The mean the current interval was drawn with (0 before the thread's first draw), and its
    /// epoch (`accounting::sampling`): a sampled block's weight and record follow them.
    pub(crate) mean: u64,
    pub(crate) epoch: u8,
}

/// How many bytes an event may still take from an allowance that ends when `counter` reaches
/// `limit` (0 or less when used up or withdrawn). Counters stay below 2^63 (bytes a process
/// allocated), so the signed difference is exact.
#[inline(always)]
pub(crate) fn allowance_left(limit: u64, counter: u64) -> i64 {
    (limit as i64).wrapping_sub(counter as i64)
}

/// One thread's profiler state. See the module docs for the layout.
#[repr(C)]
pub(crate) struct ThreadState {
    // What every allocation touches first, in one cache line: the lock and the counters. They only
    // grow, so an event adds to two or three of them (see `ThreadState::count`); the figures are
    // derived from them. Then the peak candidate, the stack bounds, the owner's own part.
    seq: SeqLock,
    /// Bytes allocated: new blocks' sizes and resized blocks' new sizes (the thread's total bytes).
    allocated_bytes: AtomicU64,
    /// New blocks.
    allocated_blocks: AtomicU64,
    /// Bytes released: freed blocks' sizes and resized blocks' old sizes.
    released_bytes: AtomicU64,
    /// Freed blocks.
    freed_blocks: AtomicU64,
    /// Resizes (each one more block in the totals, as dhat-rs counts, and none in the live ones).
    resizes: AtomicU64,
    /// The live bytes and blocks this thread added (allocated less released) as they were at its
    /// last flush, when they went into the registry's flushed counters: what it added since is its
    /// unflushed part.
    flushed_bytes: AtomicU64,
    flushed_blocks: AtomicU64,
    pub(crate) peak_bytes: AtomicU64,
    pub(crate) peak_blocks: AtomicU64,
    pub(crate) peak_epoch: AtomicU64,
    /// The flush sequence number current when the peak candidate was set.
    pub(crate) peak_seq: AtomicU64,
    /// The owner thread's stack, for bounds-checked walks (rebound when another thread adopts the
    /// state).
    stack: ThreadStack,
    local: UnsafeCell<OwnerOnly>,
    pub(crate) next: *const ThreadState,
    pub(crate) index: u32,
    pub(crate) tid: AtomicU64,
    pub(crate) alive: AtomicBool,
    name: [AtomicU8; 16],
    name_set: AtomicBool,
    /// Threads that used this state, one after another (see [`ThreadState::adopt`]).
    pub(crate) owners: AtomicU64,
    /// Whether threads of different names used it: names that differ only in a trailing number
    /// (`conn-17`, `conn-18`), shown by their common part (`conn-*`).
    pub(crate) merged: AtomicBool,
    /// Whether threads of unrelated names used it: taken from a full pool of exited threads'
    /// states by a thread whose name matched none of them (see `Registry::register_thread`).
    pub(crate) mixed: AtomicBool,
    pub(crate) first_chunk: AtomicPtr<RecordChunk>,
    /// Stands in for a site record when none can be made: past the cap on distinct stacks (see
    /// [`crate::state::budget::StackBudget`]), or out of memory for the tables. Snapshots show it
    /// as `[other stacks]`.
    pub(crate) fallback_record: SiteRecord,
}

// The lock and the counters every event writes share one cache line (a state starts on one).
const _: () = assert!(std::mem::offset_of!(ThreadState, peak_bytes) == 64);

// SAFETY: `local` is only touched by the owner thread (every accessor is an `unsafe fn` whose
// contract says so); everything else is atomics or written once before the state is published.
unsafe impl Sync for ThreadState {}

/// A thread's counters as a reader sees them, consistent with each other.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ThreadCounts {
    pub(crate) unflushed_bytes: i64,
    pub(crate) unflushed_blocks: i64,
    pub(crate) total_bytes: u64,
    pub(crate) total_blocks: u64,
    pub(crate) peak_bytes: u64,
    pub(crate) peak_blocks: u64,
    pub(crate) peak_epoch: u64,
    pub(crate) peak_seq: u64,
}

/// A counter's value, read with no ordering: readers get consistency from the sequence lock.
#[inline(always)]
fn relaxed(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

#[inline(always)]
pub(crate) fn add_u64(counter: &AtomicU64, delta: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(delta),
        Ordering::Relaxed,
    );
}

impl ThreadState {
    /// Maps and initializes a new state, or returns null when memory is exhausted. Returns the
    /// number of bytes mapped through `mapped`.
    pub(crate) fn create(
        index: u32,
        next: *const ThreadState,
        mapped: &AtomicU64,
    ) -> *mut ThreadState {
        let size = std::mem::size_of::<ThreadState>();
        let state = carve(size, mapped).cast::<ThreadState>();
        let table = Table::carve(mapped);
        let chunk = carve(RecordChunk::bytes(INITIAL_CHUNK_RECORDS), mapped).cast::<RecordChunk>();
        let (false, Some(table), false) = (state.is_null(), table, chunk.is_null()) else {
            return ptr::null_mut(); // what was carved stays unused: memory is exhausted anyway
        };
        // SAFETY: the chunk is fresh zeroed memory of `bytes(INITIAL_CHUNK_RECORDS)`, ours alone.
        unsafe { ptr::addr_of_mut!((*chunk).capacity).write(INITIAL_CHUNK_RECORDS) };
        // SAFETY: (1) `state` is fresh, zeroed, exclusively owned memory of
        // `size_of::<ThreadState>()` bytes, carved at a 64-byte boundary, which is at least the
        // type's alignment; (2) nothing else can see it before it is published.
        unsafe {
            state.write(ThreadState {
                next,
                index,
                tid: AtomicU64::new(sys::current_tid()),
                stack: ThreadStack::of_current_thread(),
                seq: SeqLock::new(),
                allocated_bytes: AtomicU64::new(0),
                allocated_blocks: AtomicU64::new(0),
                released_bytes: AtomicU64::new(0),
                freed_blocks: AtomicU64::new(0),
                resizes: AtomicU64::new(0),
                flushed_bytes: AtomicU64::new(0),
                flushed_blocks: AtomicU64::new(0),
                peak_bytes: AtomicU64::new(0),
                peak_blocks: AtomicU64::new(0),
                peak_epoch: AtomicU64::new(0),
                peak_seq: AtomicU64::new(0),
                alive: AtomicBool::new(true),
                name: Default::default(),
                name_set: AtomicBool::new(false),
                owners: AtomicU64::new(1),
                merged: AtomicBool::new(false),
                mixed: AtomicBool::new(false),
                first_chunk: AtomicPtr::new(chunk),
                fallback_record: SiteRecord::empty(OwnerId::of(state)),
                local: UnsafeCell::new(OwnerOnly {
                    base_bytes: 0,
                    base_blocks: 0,
                    base_seq: 0,
                    table,
                    tail_chunk: chunk,
                    stacks: StackTree::new(),
                    sampler: SamplerState::default(),
                    last_block: 0,
                    measures: Measures::default(),
                    key: CurrentKey::NONE,
                }),
            });
        }
        state
    }

    /// Opens an update of this thread's counters and records: readers retry until it is closed
    /// (when the section is dropped).
    ///
    /// # Safety
    /// The calling thread owns this state, and no other section of it is open. (Nothing inside a
    /// section allocates or frees: the hooks hold the reentrancy guard, so a section never nests.)
    #[inline(always)]
    pub(crate) unsafe fn write_section(&self) -> WriteSection<'_> {
        // SAFETY: the owner is the lock's only writer (forwarded contract).
        unsafe { self.seq.write_section() }
    }

    /// Runs `read` until it saw no concurrent update of this thread: `Ok` with a consistent view,
    /// or `Err` with the last one when the owner stayed inside an update for [`READ_PATIENCE`]
    /// (a thread stopped mid-update, as the other threads of a forked parent are), so that a dead
    /// writer cannot hang readers and a torn view is never taken for a consistent one.
    pub(crate) fn read_consistent<T>(&self, mut read: impl FnMut() -> T) -> Result<T, T> {
        let mut attempts: u32 = 0;
        let mut started: Option<std::time::Instant> = None;
        loop {
            let torn = match self.seq.try_read(&mut read) {
                Ok(value) => return Ok(value),
                Err(torn) => torn,
            };
            attempts += 1;
            // Spin briefly (an update takes nanoseconds), then yield, then sleep, with a deadline.
            if attempts < 64 {
                std::hint::spin_loop();
                continue;
            }
            let since = *started.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() >= READ_PATIENCE {
                return Err(torn);
            }
            if attempts < 256 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
    }

    /// The thread's counters (the last view when the thread stayed inside an update: see
    /// [`Self::read_consistent`]; the whole-process figures are exact only when quiescent anyway).
    pub(crate) fn counts(&self) -> ThreadCounts {
        self.read_consistent(|| ThreadCounts {
            unflushed_bytes: self.unflushed_bytes(),
            unflushed_blocks: self.unflushed_blocks(),
            total_bytes: self.allocated_bytes(),
            total_blocks: self.total_blocks(),
            peak_bytes: self.peak_bytes.load(Ordering::Relaxed),
            peak_blocks: self.peak_blocks.load(Ordering::Relaxed),
            peak_epoch: self.peak_epoch.load(Ordering::Relaxed),
            peak_seq: self.peak_seq.load(Ordering::Relaxed),
        })
        .unwrap_or_else(|last| last)
    }

    /// What this state's records name as their owner.
    #[inline(always)]
    pub(crate) fn id(&self) -> OwnerId {
        OwnerId::of(self)
    }

    /// Every record published so far.
    pub(crate) fn records(&self) -> impl Iterator<Item = &SiteRecord> {
        let mut chunk = self.first_chunk.load(Ordering::Acquire);
        std::iter::from_fn(move || {
            if chunk.is_null() {
                return None;
            }
            let current = chunk;
            // SAFETY: (1) chunks are published with release stores and never freed; (2) the
            // pointer is the one `carve` returned for the whole chunk.
            unsafe {
                chunk = (*current).next.load(Ordering::Acquire);
                Some(RecordChunk::published(current))
            }
        })
        .flatten()
    }

    /// Fixes the sequence lock of a thread that no longer exists (in a forked child), so readers
    /// do not wait on an update that will never end.
    pub(crate) fn abandon(&self) {
        self.alive.store(false, Ordering::Relaxed);
        self.seq.abandon();
    }

    /// The owner thread's stack, as stack capture needs it.
    #[inline(always)]
    pub(crate) fn stack(&self) -> &ThreadStack {
        &self.stack
    }

    /// Makes the calling thread the owner of this exited thread's state: its records, tables and
    /// counters go on, under the new thread's id and stack. `kin`: how the calling thread's name
    /// relates to the previous owner's, which says what the state stands for from now on.
    ///
    /// # Safety
    /// The state's previous owner has exited and no longer touches it (it was retired), and the
    /// caller took it from the pool, so no other thread adopts it too.
    pub(crate) unsafe fn adopt(&self, kin: Kin) {
        self.owners.fetch_add(1, Ordering::Relaxed);
        match kin {
            Kin::SameName => {}
            Kin::Family => self.merged.store(true, Ordering::Relaxed),
            Kin::Unrelated => self.mixed.store(true, Ordering::Relaxed),
        }
        self.stack.rebind_to_current_thread();
        // SAFETY: the caller now owns the state: the only thread touching `local`.
        unsafe {
            (*self.local.get()).last_block = 0;
            (*self.local.get()).key = CurrentKey::NONE;
            self.withdraw_allowances();
        }
        self.tid.store(sys::current_tid(), Ordering::Relaxed);
        self.alive.store(true, Ordering::Relaxed);
        self.name_set.store(false, Ordering::Release);
    }

    /// Whether this state's last owner, now exited, had the kernel name `name`.
    pub(crate) fn exited_with_name(&self, name: &[u8; 16]) -> bool {
        self.exit_name().is_some_and(|exited| &exited == name)
    }

    /// Whether this state's last owner, now exited, had a name of the family `family` (see
    /// [`name_family`]).
    pub(crate) fn exited_in_family(&self, family: &[u8]) -> bool {
        self.exit_name()
            .is_some_and(|exited| name_family(&exited) == Some(family))
    }

    /// Records the thread's name as the kernel has it; called by the thread itself as it exits.
    pub(crate) fn capture_name(&self) {
        let name = sys::current_thread_name();
        for (slot, byte) in self.name.iter().zip(name) {
            slot.store(byte, Ordering::Relaxed);
        }
        self.name_set.store(true, Ordering::Release);
        self.alive.store(false, Ordering::Release);
    }

    /// The name recorded at thread exit, if the thread has exited.
    pub(crate) fn exit_name(&self) -> Option<[u8; 16]> {
        self.name_set
            .load(Ordering::Acquire)
            .then(|| self.name.each_ref().map(|b| b.load(Ordering::Relaxed)))
    }

    /// Counts one event of this thread: `live` (bytes, blocks) is its change to the live figures
    /// and `allocated` its new size for an alloc or a realloc. The three kinds of event:
    /// an alloc `((size, 1), Some(size))`, a resize `((new - old, 0), Some(new))`, a free
    /// `((-size, -1), None)`. An alloc or a free adds to two counters, a resize to three.
    ///
    /// # Safety
    /// Owner thread only, inside a write section.
    #[inline(always)]
    pub(crate) unsafe fn count(&self, (bytes, blocks): (i64, i64), allocated: Option<u64>) {
        match allocated {
            Some(size) if blocks == 0 => {
                add_u64(&self.allocated_bytes, size);
                add_u64(&self.released_bytes, size.wrapping_sub(bytes as u64));
                add_u64(&self.resizes, 1);
            }
            Some(size) => {
                // An alloc: `(bytes, blocks)` is `(size, 1)`.
                add_u64(&self.allocated_bytes, size);
                add_u64(&self.allocated_blocks, 1);
            }
            None => {
                // A free: `blocks` is -1.
                add_u64(&self.released_bytes, bytes.wrapping_neg() as u64);
                add_u64(&self.freed_blocks, 1);
            }
        }
    }

    /// The live bytes this thread added since its last flush.
    #[inline(always)]
    pub(crate) fn unflushed_bytes(&self) -> i64 {
        let added = relaxed(&self.allocated_bytes).wrapping_sub(relaxed(&self.released_bytes));
        added.wrapping_sub(relaxed(&self.flushed_bytes)) as i64
    }

    /// The live blocks this thread added since its last flush.
    #[inline(always)]
    pub(crate) fn unflushed_blocks(&self) -> i64 {
        let added = relaxed(&self.allocated_blocks).wrapping_sub(relaxed(&self.freed_blocks));
        added.wrapping_sub(relaxed(&self.flushed_blocks)) as i64
    }

    /// The blocks in this thread's totals: new blocks and resizes.
    #[inline(always)]
    pub(crate) fn total_blocks(&self) -> u64 {
        relaxed(&self.allocated_blocks).wrapping_add(relaxed(&self.resizes))
    }

    /// The bytes this thread allocated so far, which its allocation allowance is a limit on (see
    /// [`SamplerState`]).
    #[inline(always)]
    pub(crate) fn allocated_bytes(&self) -> u64 {
        relaxed(&self.allocated_bytes)
    }

    /// The bytes this thread released so far, which its free allowance is a limit on.
    #[inline(always)]
    pub(crate) fn released_bytes(&self) -> u64 {
        relaxed(&self.released_bytes)
    }

    /// Counts an event of sampled mode's short path (see `process::sampled`), as [`Self::count`]
    /// does, in a write section of its own (readers see the event whole or not at all), with no
    /// flush or peak check: the next event that takes the full path does them.
    ///
    /// # Safety
    /// Owner thread only, outside a write section.
    #[inline(always)]
    pub(crate) unsafe fn add_short_path(&self, live: (i64, i64), allocated: Option<u64>) {
        // SAFETY: the owner, with no section open (forwarded contract).
        let _section = unsafe { self.write_section() };
        // SAFETY: the owner, inside the section just opened.
        unsafe { self.count(live, allocated) };
    }

    /// The flushed totals seen at this thread's last flush.
    ///
    /// # Safety
    /// Owner thread only.
    #[inline(always)]
    pub(crate) unsafe fn base(&self) -> (i64, i64, u64) {
        // SAFETY: the caller is the owner, the only thread touching `local`.
        let local = unsafe { &*self.local.get() };
        (local.base_bytes, local.base_blocks, local.base_seq)
    }

    /// Records a flush: `unflushed` (what [`Self::unflushed_bytes`] and
    /// [`Self::unflushed_blocks`] returned) went into the registry's
    /// flushed counters, which now hold `bytes` and `blocks` (the flush's sequence number `seq`).
    ///
    /// # Safety
    /// Owner thread only, inside a write section.
    #[inline(always)]
    pub(crate) unsafe fn set_base(&self, unflushed: (i64, i64), bytes: i64, blocks: i64, seq: u64) {
        // SAFETY: the caller is the owner, the only thread touching `local`.
        let local = unsafe { &mut *self.local.get() };
        local.base_bytes = bytes;
        local.base_blocks = blocks;
        local.base_seq = seq;
        add_u64(&self.flushed_bytes, unflushed.0 as u64);
        add_u64(&self.flushed_blocks, unflushed.1 as u64);
    }

    /// Takes the sampled mode's allowances back (see [`SamplerState`]): what is left of the
    /// allocation allowance returns to the sampler's interval.
    ///
    /// # Safety
    /// Owner thread only.
    pub(crate) unsafe fn withdraw_allowances(&self) {
        // SAFETY: the caller is the owner, the only thread touching `local`.
        let sampler = unsafe { &mut (*self.local.get()).sampler };
        let left = allowance_left(sampler.alloc_limit, self.allocated_bytes());
        sampler.bytes_left += left.max(0);
        sampler.alloc_limit = 0;
        sampler.free_limit = 0;
    }

    /// The measures running on this thread.
    ///
    /// # Safety
    /// Owner thread only, and the reference is dropped before the next call.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn measures(&self) -> &mut Measures {
        // SAFETY: the caller is the owner, the only thread touching `local`, and holds no other
        // reference into it.
        unsafe { &mut (*self.local.get()).measures }
    }

    /// Where this thread's records stand now (see [`MeasureLevel::first_record`]).
    ///
    /// # Safety
    /// Owner thread only.
    pub(crate) unsafe fn record_mark(&self) -> RecordMark {
        // SAFETY: the caller is the owner, the only thread touching `local`.
        let chunk = unsafe { (*self.local.get()).tail_chunk };
        // SAFETY: chunks are never freed.
        let index = unsafe { (*chunk).len.load(Ordering::Relaxed) };
        RecordMark { chunk, index }
    }

    /// The records published after `mark`, oldest first.
    pub(crate) fn records_since(&self, mark: RecordMark) -> impl Iterator<Item = &SiteRecord> {
        let mut chunk = mark.chunk;
        let mut skip = mark.index;
        std::iter::from_fn(move || {
            if chunk.is_null() {
                return None;
            }
            let current = chunk;
            // SAFETY: (1) chunks are published with release stores and never freed; (2) the
            // pointer is the one `carve` returned for the whole chunk.
            let records = unsafe {
                chunk = (*current).next.load(Ordering::Acquire);
                RecordChunk::published(current)
            };
            let from = skip.min(records.len());
            skip = 0;
            Some(&records[from..])
        })
        .flatten()
    }

    /// Sets the task label of this thread's allocations from now on; returns the previous one.
    ///
    /// # Safety
    /// Owner thread only.
    #[inline(always)]
    pub(crate) unsafe fn swap_label(&self, label: Label) -> Label {
        // SAFETY: the caller is the owner, the only thread touching `local`.
        let local = unsafe { &mut *self.local.get() };
        let previous = local.key.key.label;
        local.key = CurrentKey::of(local.key.key.scope, label);
        previous
    }

    /// Begins a measure on this thread: its level becomes the innermost, and new records are keyed
    /// by its scope. `false` when too many are nested already.
    ///
    /// # Safety
    /// Owner thread only.
    pub(crate) unsafe fn push_measure(&self, level: MeasureLevel) -> bool {
        // SAFETY: the caller is the owner, the only thread touching `local`; the borrow ends here.
        if unsafe { (*self.local.get()).measures.depth } == MAX_NESTED_MEASURES {
            return false;
        }
        // A measure counts every event: none is left to the usual events' short path.
        // SAFETY: the owner.
        unsafe { self.withdraw_allowances() };
        // SAFETY: the owner, as above; no other borrow of `local` is live.
        let local = unsafe { &mut *self.local.get() };
        let measures = &mut local.measures;
        measures.levels[measures.depth] = level;
        measures.depth += 1;
        local.key = CurrentKey::of(level.scope, local.key.key.label);
        true
    }

    /// Ends the innermost measure of this thread; returns its level.
    ///
    /// # Safety
    /// Owner thread only.
    pub(crate) unsafe fn pop_measure(&self) -> Option<MeasureLevel> {
        // SAFETY: the caller is the owner, the only thread touching `local`.
        let local = unsafe { &mut *self.local.get() };
        let measures = &mut local.measures;
        measures.depth = measures.depth.checked_sub(1)?;
        let level = measures.levels[measures.depth];
        local.key = CurrentKey::of(measures.current_scope(), local.key.key.label);
        Some(level)
    }

    /// Records `address` as this thread's latest allocation.
    ///
    /// # Safety
    /// Owner thread only.
    #[inline(always)]
    pub(crate) unsafe fn set_last_block(&self, address: usize) {
        // SAFETY: the caller is the owner, the only thread touching `local`.
        unsafe { (*self.local.get()).last_block = address };
    }

    /// Whether `address`, being freed, is this thread's latest allocation (which it then no
    /// longer is).
    ///
    /// # Safety
    /// Owner thread only.
    #[inline(always)]
    pub(crate) unsafe fn take_last_block(&self, address: usize) -> bool {
        // SAFETY: the caller is the owner, the only thread touching `local`.
        let local = unsafe { &mut *self.local.get() };
        let latest = local.last_block == address;
        if latest {
            local.last_block = 0;
        }
        latest
    }

    /// A realloc moved `from` to `to`: the latest allocation stays the latest.
    ///
    /// # Safety
    /// Owner thread only.
    #[inline(always)]
    pub(crate) unsafe fn move_last_block(&self, from: usize, to: usize) {
        // SAFETY: the caller is the owner, the only thread touching `local`.
        let local = unsafe { &mut *self.local.get() };
        if local.last_block == from {
            local.last_block = to;
        }
    }

    /// This thread's position in the sampling process ([`crate::accounting::sampling`]).
    ///
    /// # Safety
    /// Owner thread only, and the reference is dropped before the next call.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn sampler(&self) -> &mut SamplerState {
        // SAFETY: the caller is the owner, the only thread touching `local`, and holds no other
        // reference into it.
        unsafe { &mut (*self.local.get()).sampler }
    }

    /// Whether `record` is this thread's record of the stack whose identity is `(hash, check)`
    /// under the thread's current key: what [`Self::record_for`] would find, without the lookup.
    ///
    /// # Safety
    /// Owner thread only.
    #[inline(always)]
    pub(crate) unsafe fn is_record_of(
        &self,
        record: &SiteRecord,
        (hash, check): (u64, u64),
    ) -> bool {
        // SAFETY: the caller is the owner, the only thread touching `local`.
        let mix = unsafe { (*self.local.get()).key.mix };
        record.owner == self.id() && record.hash == hash ^ mix.0 && record.check == check ^ mix.1
    }

    /// The record of `captured`, whose identity is `(hash, check)` (with its sampling epoch mixed
    /// in: `accounting::sampling::epoch_mix`), on this thread, created if new with that `epoch`;
    /// the fallback record when the tables cannot grow.
    ///
    /// # Safety
    /// Owner thread only, inside a write section.
    #[inline(always)]
    pub(crate) unsafe fn record_for(
        &self,
        captured: &Captured,
        (hash, check): (u64, u64),
        epoch: u8,
        mapped: &AtomicU64,
    ) -> &SiteRecord {
        // SAFETY: the caller is the owner, the only thread touching `local`.
        let local = unsafe { &mut *self.local.get() };
        let CurrentKey { key, mix } = local.key;
        let (hash, check) = (hash ^ mix.0, check ^ mix.1);
        let (mut slot, tag) = table_place(hash, local.table.mask);
        let mut probes = 0;
        loop {
            // SAFETY: slot <= table.mask, within the table mapping.
            let entry = unsafe { *local.table.slots.add(slot) };
            if entry == 0 {
                break;
            }
            probes += 1;
            if probes > local.table.mask {
                return &self.fallback_record; // full table that could not grow
            }
            // The tag spares reading the records of other stacks (a cache miss each).
            if entry & TAG_MASK == tag {
                // SAFETY: table entries point at published records, never freed.
                let record = unsafe { &*((entry & !TAG_MASK) as *const SiteRecord) };
                // The same identity is the same stack under the same key (see `StackHash` and
                // `RecordKey::identity_mix`).
                if record.hash == hash && record.check == check {
                    return record;
                }
            }
            slot = (slot + 1) & local.table.mask;
        }
        let made = (key, (hash, check), epoch);
        // SAFETY: forwarded owner-only contract.
        match unsafe { self.insert_record(local, captured, made, slot, mapped) } {
            Some(record) => record,
            None => &self.fallback_record,
        }
    }

    /// Stores `captured`'s stack in the thread's tree, appends a record for it and puts it in the
    /// table at `slot`; `None` when memory for them cannot be mapped.
    ///
    /// # Safety
    /// Called by the owner thread only, inside a write section, with `local` this state's
    /// owner-only part and `slot` the empty table slot where the lookup of `captured` ended.
    #[cold]
    #[inline(never)]
    unsafe fn insert_record(
        &self,
        local: &mut OwnerOnly,
        captured: &Captured,
        (key, identity, epoch): (RecordKey, (u64, u64), u8),
        slot: usize,
        mapped: &AtomicU64,
    ) -> Option<&SiteRecord> {
        if !STACK_BUDGET.take_one() {
            return None; // past the cap: charged to the thread's `[other stacks]` record
        }
        let has_lifetimes = crate::config::get().is_some_and(crate::config::Config::lifetimes);
        let trailer_bytes = SiteRecord::trailer_bytes(key, has_lifetimes);
        let stack = local
            .stacks
            .store(captured.stack(), trailer_bytes, mapped)?;

        // Append a record, opening a new chunk when the tail is full.
        // SAFETY: chunks are never freed; the tail is only appended to by the owner.
        let mut tail = unsafe { &*local.tail_chunk };
        let mut len = tail.len.load(Ordering::Relaxed);
        if len == tail.capacity {
            let capacity = (tail.capacity * 2).min(MAX_CHUNK_RECORDS);
            let chunk = carve(RecordChunk::bytes(capacity), mapped).cast::<RecordChunk>();
            if chunk.is_null() {
                return None;
            }
            // SAFETY: fresh zeroed memory for `capacity` records, not yet linked, ours alone.
            unsafe { ptr::addr_of_mut!((*chunk).capacity).write(capacity) };
            tail.next.store(chunk, Ordering::Release);
            local.tail_chunk = chunk;
            // SAFETY: just carved and linked; zeroed memory with its capacity is an empty chunk.
            tail = unsafe { &*chunk };
            len = 0;
        }
        // SAFETY: (1) `local.tail_chunk` is the carved chunk's own pointer; (2) len < capacity: a
        // slot within the chunk.
        let record_ptr = unsafe { RecordChunk::slots(local.tail_chunk).add(len) };
        // SAFETY: (1) slot `len` is not yet published, so no reader looks at it; the owner writes
        // it whole before the release store of the new length publishes it; (2) `stack` was just
        // stored with the trailer `new` needs, which no other thread can reach yet.
        unsafe {
            let mut record = SiteRecord::new(
                self.id(),
                key,
                identity,
                stack,
                captured.end as u8,
                has_lifetimes,
            );
            record.epoch = epoch;
            record_ptr.write(record);
        }
        tail.len.store(len + 1, Ordering::Release);

        // SAFETY: (1) owner-only, as this function; (2) `slot` is where the lookup of `identity`
        // ended, and the record was just published, never freed.
        unsafe { local.table.insert(slot, record_ptr, identity.0, mapped) };
        // SAFETY: published above, never freed.
        Some(unsafe { &*record_ptr })
    }
}

/// How a thread adopting an exited thread's state is named, next to that thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kin {
    /// The same name.
    SameName,
    /// A name of the same family ([`name_family`]): the state reads as the family (`conn-*`).
    Family,
    /// An unrelated name: the state reads as threads of several names.
    Unrelated,
}

/// The part of a thread's kernel name (NUL-padded) that threads of one kind share when they are
/// numbered: the name without its trailing number (`conn-17` -> `conn-`), or without its trailing
/// identifiers when those are hexadecimal words after a separator, with a digit or of 8 letters
/// at least (`req-7f3a9c`, `req-deadbeef` and `req-550e8400-e2`, a UUID cut to the kernel's 15
/// bytes, -> `req-`); `None` when it ends in
/// neither or is nothing else. Exited threads' states are reused by a thread of the same name
/// first, else of the same family, so that servers naming a thread per connection keep a few
/// states, not one per connection.
pub(crate) fn name_family(name: &[u8]) -> Option<&[u8]> {
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    let name = name[..end].trim_ascii_end();
    let separator = |b: &u8| matches!(b, b'-' | b'_' | b'.' | b':' | b' ' | b'#' | b'/');
    // Trailing words of hex digits with a digit each, each after a separator.
    let mut stem = name.len();
    while let Some(at) = name[..stem].iter().rposition(separator) {
        let word = &name[at + 1..stem];
        // An identifier has a digit, or is too long for a word (`deadbeef`, one id in 2,300
        // without a digit; `cafe` stays a word).
        let identifier = word.iter().any(u8::is_ascii_digit) || word.len() >= 8;
        if word.is_empty() || !word.iter().all(u8::is_ascii_hexdigit) || !identifier {
            break;
        }
        stem = at;
    }
    if stem < name.len() && stem > 0 {
        return Some(&name[..=stem]);
    }
    let stem = name
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |at| at + 1);
    (stem > 0 && stem < name.len()).then(|| &name[..stem])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_names_without_their_numbers_or_hex_identifiers() {
        let family = |name: &str| name_family(name.as_bytes()).map(|f| f.to_vec());
        let named = |f: &str| Some(f.as_bytes().to_vec());
        assert_eq!(family("conn-17"), named("conn-"));
        assert_eq!(family("worker17"), named("worker"));
        assert_eq!(family("req-7f3a9c"), named("req-"));
        assert_eq!(family("req-550e8400-e2"), named("req-"));
        assert_eq!(family("pool.e7\0\0\0"), named("pool."));
        // Hex words without a digit, or without a separator, are words.
        assert_eq!(family("db-cafe"), None);
        assert_eq!(family("req-ffeeefda"), named("req-"));
        assert_eq!(family("fsb2"), named("fsb"));
        assert_eq!(family("tokio-runtime-worker"), None);
        assert_eq!(family("1234"), None);
        assert_eq!(family("-1f"), None);
    }

    /// A reader never takes a torn view for a consistent one: with the owner stuck inside an
    /// update, it waits its patience out and says the view is torn; once the update ends, it reads.
    #[test]
    fn a_reader_gives_up_on_a_stuck_writer_and_says_so() {
        let mapped = AtomicU64::new(0);
        // SAFETY: a fresh state, used by this thread only.
        let state = unsafe { &*ThreadState::create(0, ptr::null(), &mapped) };
        // SAFETY: this thread owns the state; no other section is open.
        let section = unsafe { state.write_section() };
        let started = std::time::Instant::now();
        assert_eq!(state.read_consistent(|| 1), Err(1));
        assert!(started.elapsed() >= READ_PATIENCE);
        drop(section);
        assert_eq!(state.read_consistent(|| 2), Ok(2));
    }
}
