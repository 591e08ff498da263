//! Site records: the counters of one call stack on one thread.
//!
//! A record is written by its owner thread with plain (non-read-modify-write) stores inside the
//! owner's sequence lock, so the hot path takes no `lock`-prefixed instruction. Another thread that
//! frees or reallocates one of the record's blocks adds to the record's remote half instead (a
//! second [`RecordHalf`]), with atomic read-modify-writes; readers add the two halves.

use crate::capture::StackHash;
use crate::state::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering, const_unless_loom};
use crate::state::carve::carve;
use crate::state::counters::{Counters, Counts, SiteDelta};
use crate::state::stack_tree::{FrameNode, StoredStack, TRAILER_ALIGN};

/// A task label (`tracealloc::labeled`): a `&'static str`, kept as its address and length so that
/// it fits in a record and costs two stores to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub(crate) struct Label {
    ptr: usize,
    len: usize,
}

impl Label {
    /// No label.
    pub(crate) const NONE: Label = Label { ptr: 0, len: 0 };

    pub(crate) fn of(label: &'static str) -> Label {
        Label {
            ptr: label.as_ptr() as usize,
            len: label.len(),
        }
    }

    /// The label's text, or `None` for no label.
    pub(crate) fn text(self) -> Option<&'static str> {
        if self.ptr == 0 {
            return None;
        }
        // SAFETY: a label other than NONE is only made by `Label::of` from a `&'static str`: its
        // address and length describe valid UTF-8 that lives as long as the process.
        Some(unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                self.ptr as *const u8,
                self.len,
            ))
        })
    }

    /// The label's address and length, for a record's identity.
    pub(crate) fn words(self) -> [usize; 2] {
        [self.ptr, self.len]
    }
}

/// What a record is made under besides its stack: the owner's innermost measure scope (0: none;
/// blocks allocated inside a `measure` get records of their own, so the measure can tell its
/// blocks from older ones) and its task label (a block keeps its label wherever it is freed).
/// Kept after the record's stack in its thread's tree, since most records have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct RecordKey {
    pub(crate) scope: u64,
    pub(crate) label: Label,
}

const _: () = assert!(std::mem::align_of::<RecordKey>() <= TRAILER_ALIGN);
const _: () = assert!(
    std::mem::size_of::<RecordKey>().is_multiple_of(std::mem::align_of::<LifetimeCounts>())
);

/// The bytes a key takes at the start of a record's trailer (none when the record has no key).
const fn key_bytes(has_key: bool) -> usize {
    if has_key {
        std::mem::size_of::<RecordKey>()
    } else {
        0
    }
}

impl RecordKey {
    pub(crate) const NONE: RecordKey = RecordKey {
        scope: 0,
        label: Label::NONE,
    };

    /// What the key adds to a stack's identity: nothing for no key, else a 128-bit hash of it,
    /// as strong as the stack's own (see [`crate::capture::StackHash`]), so that a record is found
    /// by its identity alone.
    pub(crate) fn identity_mix(self) -> (u64, u64) {
        if self == RecordKey::NONE {
            return (0, 0);
        }
        let [ptr, len] = self.label.words();
        StackHash::EMPTY
            .add(self.scope as usize)
            .add(ptr)
            .add(len)
            .finish(usize::MAX)
    }
}

/// The thread state a record belongs to, by address: compared, never dereferenced, so records
/// need not know what a thread state is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OwnerId(usize);

impl OwnerId {
    /// The owner of the stand-in records that belong to no thread (orphans, unsampled blocks).
    pub(crate) const NONE: OwnerId = OwnerId(0);

    /// The id of the state at `state`.
    pub(crate) fn of<T>(state: *const T) -> OwnerId {
        OwnerId(state as usize)
    }

    pub(crate) fn is_none(self) -> bool {
        self == Self::NONE
    }
}

/// The counters of one (stack, thread) pair. All-zero bytes are a valid empty record, so records
/// live in zeroed mappings.
///
/// Two cache lines, laid out for the hot path: the first holds what every lookup and every
/// owner's event reads and writes; the second, the figures kept for snapshots, the stack, and the
/// link to what other threads write. Record chunks start on a cache line.
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct SiteRecord {
    // Set once before the record is published, never written again.
    /// The stack's identity ([`crate::capture::StackHash`]), mixed with the record's key's.
    pub(crate) hash: u64,
    pub(crate) check: u64,
    pub(crate) owner: OwnerId,
    /// Written only by the owner, inside its sequence lock. Its first five words (the peak
    /// generation, live and total figures) end the first line; the rest of its counters, kept for
    /// snapshots, start the second.
    own: RecordHalf,
    /// What other threads write, made at the first such change (null until then).
    remote: AtomicPtr<RecordHalf>,
    // Set once before the record is published, never written again.
    /// The stack's innermost frame in its thread's tree (see [`crate::state::stack_tree`]).
    innermost: *const FrameNode,
    pub(crate) depth: u32,
    /// How the capture ended ([`crate::capture::CaptureEnd`] as u8).
    pub(crate) end: u8,
    /// Whether a [`RecordKey`] follows the stack's innermost node (the record was made under a
    /// measure or a label).
    has_key: bool,
    /// Whether [`LifetimeCounts`] follow that (lifetimes mode).
    has_lifetimes: bool,
    /// Sampled mode: the epoch of the mean its blocks were sampled at (`accounting::sampling`;
    /// 0, the start-up mean, in every other mode). Set before the record is published.
    pub(crate) epoch: u8,
}

// The layout, with the hardware's atomics (loom's, in the loom models, are larger).
#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::size_of::<SiteRecord>() == 128);
    assert!(std::mem::align_of::<SiteRecord>() == 64);
    // What every owner's event reads or writes, in the first line.
    assert!(std::mem::offset_of!(SiteRecord, hash) < 64);
    assert!(std::mem::offset_of!(SiteRecord, check) < 64);
    assert!(std::mem::offset_of!(SiteRecord, owner) < 64);
    assert!(std::mem::offset_of!(SiteRecord, own.peak_gen) < 64);
    assert!(std::mem::offset_of!(SiteRecord, own.counters.live_bytes) < 64);
    assert!(std::mem::offset_of!(SiteRecord, own.counters.live_blocks) < 64);
    assert!(std::mem::offset_of!(SiteRecord, own.counters.total_bytes) < 64);
    assert!(std::mem::offset_of!(SiteRecord, own.counters.total_blocks) + 8 <= 64);
    // The figures kept for snapshots start the second.
    assert!(std::mem::offset_of!(SiteRecord, own.counters.at_peak_bytes) == 64);
};

/// One half of a record's figures: the owner's, inside the record, or other threads', apart (see
/// [`SiteRecord::remote_add`]). All-zero bytes are an empty one, so a remote half lives in carved
/// memory, made at the first remote change: the records of stacks whose blocks never leave their
/// thread (most of them) stay two cache lines.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct RecordHalf {
    /// The peak generation at the half's last change, for its at-peak pair: the live figures as
    /// they were at that peak (see [`SiteRecord::owner_add`]).
    peak_gen: AtomicU64,
    /// Changed by the owner with plain stores, by other threads with atomic adds (wrapping, so
    /// signed changes fit).
    counters: Counters<AtomicU64>,
}

impl RecordHalf {
    const_unless_loom! {
        fn empty() -> RecordHalf {
            RecordHalf {
                peak_gen: AtomicU64::new(0),
                counters: Counters::zeroed(),
            }
        }
    }

    /// The half's figures, each counter loaded with `order`; `peak_gen` is the process's peak
    /// generation: a half not changed since the peak is as it was then.
    fn read(&self, peak_gen: u64, order: Ordering) -> Counts {
        let counts = self.counters.load(order);
        if self.peak_gen.load(order) == peak_gen {
            counts
        } else {
            counts.live_at_peak()
        }
    }
}

// SAFETY: the raw pointers are written once before the record is published (with a release store
// of the chunk length) and only read after; the mutable state is atomics.
unsafe impl Sync for SiteRecord {}
// SAFETY: as for Sync; a record holds no thread-affine state.
unsafe impl Send for SiteRecord {}

#[inline(always)]
fn bump(counter: &AtomicU64, delta: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(delta),
        Ordering::Relaxed,
    );
}

impl SiteRecord {
    const_unless_loom! {
        pub(crate) fn empty(owner: OwnerId) -> SiteRecord {
            SiteRecord {
                hash: 0,
                check: 0,
                innermost: std::ptr::null(),
                depth: 0,
                end: 0,
                has_key: false,
                has_lifetimes: false,
                epoch: 0,
                owner,
                own: RecordHalf::empty(),
                remote: AtomicPtr::new(std::ptr::null_mut()),
            }
        }
    }

    /// The remote half, if another thread changed the record yet.
    #[inline(always)]
    fn remote(&self) -> Option<&RecordHalf> {
        // SAFETY: the pointer is null or was published (release) by `make_remote`, pointing at
        // zeroed counters, changed since only through atomics, in memory that is never freed.
        unsafe { self.remote.load(Ordering::Acquire).as_ref() }
    }

    /// The remote half, made now if need be: carved, then installed unless another thread
    /// installed one first (then ours is left unused: 128 bytes, once per such race). `mapped`
    /// counts the profiler's own memory, as the carver keeps it (with the standard library's
    /// atomics, also in the loom models: they check the record, not the carver).
    #[cold]
    #[inline(never)]
    fn make_remote(&self, mapped: &std::sync::atomic::AtomicU64) -> Option<&RecordHalf> {
        let fresh = carve(std::mem::size_of::<RecordHalf>(), mapped).cast::<RecordHalf>();
        if fresh.is_null() {
            return None;
        }
        if cfg!(loom) {
            // Zeroed bytes are an empty half of the hardware's atomics, not of loom's, which
            // exist only once made.
            // SAFETY: fresh carved memory of the half's size, aligned to 64, not yet shared.
            unsafe { fresh.write(RecordHalf::empty()) };
        }
        let installed = match self.remote.compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => fresh,
            Err(winner) => winner,
        };
        // SAFETY: carved memory, zeroed (an empty `RecordHalf`), aligned to 64 and never freed.
        Some(unsafe { &*installed })
    }

    /// A record of the stored `stack`, owned by `owner` and made under `key`, whose capture
    /// ended as `end`; `(hash, check)` is the stack's identity mixed with the key's. With
    /// `has_lifetimes`, it has lifetime counters.
    ///
    /// # Safety
    /// `stack` was stored with a trailer of [`SiteRecord::trailer_bytes`]`(key, has_lifetimes)`
    /// bytes that no other thread can reach yet (the record is not published).
    pub(crate) unsafe fn new(
        owner: OwnerId,
        key: RecordKey,
        (hash, check): (u64, u64),
        stack: StoredStack,
        end: u8,
        has_lifetimes: bool,
    ) -> SiteRecord {
        let has_key = key != RecordKey::NONE;
        if has_key {
            // SAFETY: (1) the trailer starts with room for a key when `has_key` (`trailer_bytes`),
            // aligned (assert at `RecordKey`); (2) no other thread reaches it yet.
            unsafe { stack.trailer().cast::<RecordKey>().cast_mut().write(key) };
        }
        SiteRecord {
            hash,
            check,
            innermost: stack.innermost,
            depth: stack.depth,
            end,
            has_key,
            has_lifetimes,
            ..SiteRecord::empty(owner)
        }
    }

    /// The bytes a record's stack is stored with after its innermost node: its key unless it is
    /// [`RecordKey::NONE`], then its lifetime counters in lifetimes mode.
    pub(crate) fn trailer_bytes(key: RecordKey, has_lifetimes: bool) -> usize {
        let lifetimes_bytes = if has_lifetimes {
            LifetimeCounts::BYTES
        } else {
            0
        };
        key_bytes(key != RecordKey::NONE) + lifetimes_bytes
    }

    /// What the record was made under: its key, [`RecordKey::NONE`] for most records.
    #[inline]
    pub(crate) fn key(&self) -> RecordKey {
        if !self.has_key {
            return RecordKey::NONE;
        }
        // SAFETY: `has_key` is set only by `new`, which wrote the key at the start of the stack's
        // trailer before the record was published; stack trees live as long as the process.
        unsafe { self.stored_stack().trailer().cast::<RecordKey>().read() }
    }

    /// The record's stack as stored.
    pub(crate) fn stored_stack(&self) -> StoredStack {
        StoredStack {
            innermost: self.innermost,
            depth: self.depth,
        }
    }

    /// The record's return addresses, innermost first.
    pub(crate) fn frames(&self) -> impl Iterator<Item = usize> {
        self.stored_stack().frames()
    }

    /// Applies a change by the owner thread, which must hold its own sequence lock. `peak_gen` is
    /// the process's peak generation now: the first change after the peak moved first keeps the
    /// live figures as they were at the peak (a lazy copy, one compare per event instead of a
    /// sweep of every record at every new peak), unless this change itself `raised` the peak:
    /// then the figures after it are the peak's, as a record not changed since reads.
    #[inline(always)]
    pub(crate) fn owner_add(&self, delta: &SiteDelta, peak_gen: u64, raised: bool) {
        if !raised && self.own.peak_gen.load(Ordering::Relaxed) != peak_gen {
            self.keep_at_peak(peak_gen);
        }
        // Each group written only when the change has it: most events are allocs and frees, and
        // an atomic store of an unchanged counter is never elided (where the group is known to be
        // absent at compile time, as on the free paths, its test goes too). The at-peak pair is
        // the record's own.
        let counters = &self.own.counters;
        bump(&counters.live_bytes, wrapping(delta.live_bytes));
        bump(&counters.live_blocks, wrapping(delta.live_blocks));
        if delta.total_blocks != 0 {
            bump(&counters.total_bytes, wrapping(delta.total_bytes));
            bump(&counters.total_blocks, wrapping(delta.total_blocks));
        }
        if delta.temporary_blocks | delta.reallocs != 0 {
            bump(&counters.temporary_blocks, wrapping(delta.temporary_blocks));
            bump(&counters.reallocs, wrapping(delta.reallocs));
            bump(
                &counters.realloc_copied_bytes,
                wrapping(delta.realloc_copied_bytes),
            );
        }
    }

    #[cold]
    #[inline(never)]
    fn keep_at_peak(&self, peak_gen: u64) {
        let counters = &self.own.counters;
        let (bytes, blocks) = (&counters.live_bytes, &counters.live_blocks);
        counters
            .at_peak_bytes
            .store(bytes.load(Ordering::Relaxed), Ordering::Relaxed);
        counters
            .at_peak_blocks
            .store(blocks.load(Ordering::Relaxed), Ordering::Relaxed);
        self.own.peak_gen.store(peak_gen, Ordering::Relaxed);
    }

    /// Applies a change by any other thread; `mapped` counts the memory of the record's remote
    /// half if this change makes it. The remote half keeps its own figures at the peak (claimed
    /// with a swap of its generation): exact while one thread at a time frees this record's blocks
    /// remotely; with several at once, a free that races the copy can land on either side of it.
    #[inline]
    pub(crate) fn remote_add(
        &self,
        delta: &SiteDelta,
        peak_gen: u64,
        raised: bool,
        mapped: &std::sync::atomic::AtomicU64,
    ) {
        // Out of memory for the remote half: the change is left out of this record (the
        // whole-process figures still count it).
        let Some(remote) = self.remote().or_else(|| self.make_remote(mapped)) else {
            return;
        };
        let counters = &remote.counters;
        if !raised
            && remote.peak_gen.load(Ordering::Relaxed) != peak_gen
            && remote.peak_gen.swap(peak_gen, Ordering::AcqRel) != peak_gen
        {
            let (bytes, blocks) = (&counters.live_bytes, &counters.live_blocks);
            counters
                .at_peak_bytes
                .store(bytes.load(Ordering::Acquire), Ordering::Release);
            counters
                .at_peak_blocks
                .store(blocks.load(Ordering::Acquire), Ordering::Release);
        }
        // The groups as in `owner_add`; a temporary block is its owner's by definition.
        let add = |counter: &AtomicU64, change: i64| {
            counter.fetch_add(wrapping(change), Ordering::Release);
        };
        add(&counters.live_bytes, delta.live_bytes);
        add(&counters.live_blocks, delta.live_blocks);
        if delta.total_blocks != 0 {
            add(&counters.total_bytes, delta.total_bytes);
            add(&counters.total_blocks, delta.total_blocks);
        }
        if delta.reallocs != 0 {
            add(&counters.reallocs, delta.reallocs);
            add(&counters.realloc_copied_bytes, delta.realloc_copied_bytes);
        }
    }

    /// The remote half, read first: a remote free happens after its allocation, so the owner's
    /// half read next is at least as new and the sum never goes below zero. `peak_gen` is the
    /// process's peak generation: a half not changed since the peak is as it was then.
    pub(crate) fn read_remote(&self, peak_gen: u64) -> Counts {
        self.remote().map_or(Counts::default(), |remote| {
            remote.read(peak_gen, Ordering::Acquire)
        })
    }

    /// The owner's half; call inside the owner's sequence-lock read.
    pub(crate) fn read_local(&self, peak_gen: u64) -> Counts {
        self.own.read(peak_gen, Ordering::Relaxed)
    }
}

/// What lifetimes mode adds to a record (`Profiler::lifetimes`, `TRACEALLOC_LIFETIMES`): kept in
/// the stack tree right after the record's own innermost node, so that records stay as small in
/// the usual mode. All-zero words are an empty one.
///
/// Lifetimes are kept as sums of clock readings: a block's lifetime is its free's stamp less its
/// allocation's, so the sum of the lifetimes of the freed blocks is the sum of the frees' stamps
/// less that of their allocations, and nothing is stored per block. A live block counts up to the
/// moment a reader looks: `deaths - births + live_blocks * now`.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct LifetimeCounts {
    /// Written by the owner, inside its sequence lock: the stamps of the blocks it allocated here.
    births: AtomicU64,
    /// The stamps of the owner's frees of these blocks.
    deaths: AtomicU64,
    /// The site's own maximum (dhat-rs's `mb`, `mbk`): its live bytes, and blocks at that moment,
    /// taken with `>=` at each of the owner's increases.
    max_bytes: AtomicU64,
    max_blocks: AtomicU64,
    /// Written by other threads with atomic adds: the stamps of their frees of these blocks.
    remote_deaths: AtomicU64,
}

const _: () = assert!(std::mem::align_of::<LifetimeCounts>() <= TRAILER_ALIGN);

impl LifetimeCounts {
    /// The trailer a record's stack is stored with in lifetimes mode.
    pub(crate) const BYTES: usize = std::mem::size_of::<LifetimeCounts>();

    /// The owner freed one of these blocks at `stamp`. Owner thread only, inside its sequence
    /// lock.
    #[inline]
    pub(crate) fn owner_died(&self, stamp: u64) {
        bump(&self.deaths, stamp);
    }

    /// Another thread freed one of these blocks at `stamp`.
    #[inline]
    pub(crate) fn remote_died(&self, stamp: u64) {
        self.remote_deaths.fetch_add(stamp, Ordering::Release);
    }

    /// The owner's lifetime figures (call inside the owner's sequence-lock read), with the remote
    /// frees, read first.
    pub(crate) fn read(&self, remote_deaths: u64) -> Lifetimes {
        Lifetimes {
            births: self.births.load(Ordering::Relaxed),
            deaths: self
                .deaths
                .load(Ordering::Relaxed)
                .wrapping_add(remote_deaths),
            max_bytes: self.max_bytes.load(Ordering::Relaxed),
            max_blocks: self.max_blocks.load(Ordering::Relaxed),
        }
    }

    /// Other threads' frees' stamps: read before the owner's half.
    pub(crate) fn read_remote_deaths(&self) -> u64 {
        self.remote_deaths.load(Ordering::Acquire)
    }
}

/// A record's lifetime figures as a reader sees them, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Lifetimes {
    pub(crate) births: u64,
    pub(crate) deaths: u64,
    pub(crate) max_bytes: u64,
    pub(crate) max_blocks: u64,
}

impl SiteRecord {
    /// The record's lifetime counters, in lifetimes mode.
    #[inline(always)]
    pub(crate) fn lifetimes(&self) -> Option<&LifetimeCounts> {
        if !self.has_lifetimes {
            return None;
        }
        // SAFETY: `has_lifetimes` is set, before the record is published, only on records whose
        // stack was stored with a trailer of `trailer_bytes`: the counters follow the key, if any,
        // zeroed (empty counters) and aligned (asserts at `RecordKey` and below); stack trees live
        // as long as the process.
        Some(unsafe {
            &*self
                .stored_stack()
                .trailer()
                .add(key_bytes(self.has_key))
                .cast::<LifetimeCounts>()
        })
    }

    /// The owner allocated a block here at `stamp`, or grew one: the site's maximum is checked
    /// (with what other threads freed). Owner thread only, inside its sequence lock.
    #[inline]
    pub(crate) fn owner_grew(&self, counts: &LifetimeCounts, birth: Option<u64>) {
        if let Some(stamp) = birth {
            bump(&counts.births, stamp);
        }
        let live = |half: &RecordHalf| {
            let counters = &half.counters;
            (
                counters.live_bytes.load(Ordering::Relaxed),
                counters.live_blocks.load(Ordering::Relaxed),
            )
        };
        let (remote_bytes, remote_blocks) = self.remote().map_or((0, 0), live);
        let (own_bytes, own_blocks) = live(&self.own);
        let live_bytes = own_bytes.wrapping_add(remote_bytes);
        let live_blocks = own_blocks.wrapping_add(remote_blocks);
        let live_bytes = non_negative(live_bytes);
        if live_bytes >= counts.max_bytes.load(Ordering::Relaxed) {
            counts.max_bytes.store(live_bytes, Ordering::Relaxed);
            counts
                .max_blocks
                .store(non_negative(live_blocks), Ordering::Relaxed);
        }
    }
}

/// A block of records: this header, then `capacity` records, in zeroed memory. The owner appends;
/// readers see the `len` published records.
#[repr(C, align(64))]
pub(crate) struct RecordChunk {
    pub(crate) next: AtomicPtr<RecordChunk>,
    pub(crate) len: AtomicUsize,
    pub(crate) capacity: usize,
}

impl RecordChunk {
    /// Bytes for a chunk of `capacity` records.
    pub(crate) const fn bytes(capacity: usize) -> usize {
        std::mem::size_of::<RecordChunk>() + capacity * std::mem::size_of::<SiteRecord>()
    }

    /// The first record slot of `chunk`. Derived from the chunk's pointer (which came from
    /// [`carve`] for the whole chunk), never from a reference to its header, which would reach only
    /// the header's 64 bytes.
    ///
    /// # Safety
    /// `chunk` points at a live chunk carved with [`RecordChunk::bytes`] of its capacity, and
    /// carries that allocation's provenance.
    pub(crate) unsafe fn slots(chunk: *const RecordChunk) -> *mut SiteRecord {
        // SAFETY: the records follow the header within the chunk's memory (`bytes(capacity)`),
        // and the header's size is a multiple of the records' alignment (both are 64-aligned).
        unsafe {
            chunk
                .cast::<u8>()
                .cast_mut()
                .add(std::mem::size_of::<RecordChunk>())
                .cast()
        }
    }

    /// The records published in `chunk`.
    ///
    /// # Safety
    /// As [`RecordChunk::slots`]; chunks are never freed, so the records live as long as the
    /// process (any lifetime `'a`).
    pub(crate) unsafe fn published<'a>(chunk: *const RecordChunk) -> &'a [SiteRecord] {
        // SAFETY: (1) a live chunk (forwarded contract); (2) the first `len` slots were written
        // whole before `len` was published (release, read here with acquire); zeroed or written,
        // every slot is a valid record, and only their atomics change after publication.
        unsafe {
            let len = (*chunk).len.load(Ordering::Acquire).min((*chunk).capacity);
            std::slice::from_raw_parts(Self::slots(chunk), len)
        }
    }
}

/// One site's figures as a `measure` reports them: its stack and its owner's allocations, with its
/// live figures whoever freed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MeasuredSite {
    /// Return addresses, innermost first.
    pub(crate) frames: Vec<usize>,
    /// The owner's totals (the measured thread's allocations, in whole blocks) and the live
    /// figures (not below zero); a measure reports no other counter, and they stay 0.
    pub(crate) counts: Counts,
}

/// The live (blocks, bytes) of `sites`, summed.
pub(crate) fn live_of(sites: &[MeasuredSite]) -> (u64, u64) {
    sites.iter().fold((0, 0), |(blocks, bytes), s| {
        (blocks + s.counts.live_blocks, bytes + s.counts.live_bytes)
    })
}

/// Change of a signed quantity as wrapping unsigned, for the counters above.
#[inline(always)]
pub(crate) fn wrapping(delta: i64) -> u64 {
    delta as u64
}

/// Reads the sum of two wrapping halves as a non-negative figure (a transiently negative sum,
/// only possible while the program is not quiescent, reads as zero).
pub(crate) fn non_negative(value: u64) -> u64 {
    if (value as i64) < 0 { 0 } else { value }
}

// Chunks and stacks in carved memory, whose zeroed bytes are no atomics of loom's.
#[cfg(all(test, not(loom)))]
mod tests {
    use std::ptr;

    use super::*;
    use crate::state::stack_tree::StackTree;

    /// A chunk as its owner makes one: carved, with its capacity written through the chunk's own
    /// pointer.
    fn new_chunk(capacity: usize, mapped: &AtomicU64) -> *mut RecordChunk {
        let chunk = carve(RecordChunk::bytes(capacity), mapped).cast::<RecordChunk>();
        assert!(!chunk.is_null());
        // SAFETY: fresh zeroed memory for `capacity` records, ours alone.
        unsafe { ptr::addr_of_mut!((*chunk).capacity).write(capacity) };
        chunk
    }

    /// Records appended to chunks as the owner appends them (slots from the chunk's pointer, a
    /// new chunk when the tail is full, the length published last) read back whole from the
    /// published slices, with their stacks, keys and lifetime counters; then their counters
    /// change, through the owner's half, the remote half and the lifetimes, and read back exactly.
    #[test]
    fn records_appended_to_chunks_read_back_published() {
        let mapped = AtomicU64::new(0);
        let mut tree = StackTree::new();
        let key = RecordKey {
            scope: 7,
            label: Label::of("parse"),
        };
        // (stack, key, lifetimes)
        let sites: [(&[usize], RecordKey, bool); 3] = [
            (&[0x30, 0x20, 0x10], RecordKey::NONE, false),
            (&[0x31, 0x20, 0x10], key, false),
            (&[0x20, 0x10], key, true),
        ];
        let first = new_chunk(2, &mapped);
        let mut tail_chunk = first;
        for (i, &(stack, key, has_lifetimes)) in sites.iter().enumerate() {
            let trailer_bytes = SiteRecord::trailer_bytes(key, has_lifetimes);
            let stored = tree.store(stack, trailer_bytes, &mapped).expect("memory");
            // SAFETY: chunks are carved and never freed; only this (owner) thread appends.
            let mut tail = unsafe { &*tail_chunk };
            let mut len = tail.len.load(Ordering::Relaxed);
            if len == tail.capacity {
                let chunk = new_chunk(4, &mapped);
                tail.next.store(chunk, Ordering::Release);
                tail_chunk = chunk;
                // SAFETY: just carved; zeroed memory with its capacity is an empty chunk.
                tail = unsafe { &*chunk };
                len = 0;
            }
            // SAFETY: (1) `tail_chunk` is the carved chunk's own pointer; (2) len < capacity; (3)
            // the slot is not published yet, and the stack was just stored with its trailer.
            unsafe {
                RecordChunk::slots(tail_chunk)
                    .add(len)
                    .write(SiteRecord::new(
                        OwnerId(0x100),
                        key,
                        (i as u64 + 1, 100 + i as u64),
                        stored,
                        i as u8,
                        has_lifetimes,
                    ));
            }
            tail.len.store(len + 1, Ordering::Release);
        }
        // Two chunks of records (64 + 2 * 128, 64 + 4 * 128 bytes) and a first block of 64 nodes.
        assert_eq!(mapped.load(Ordering::Relaxed), 320 + 576 + 64 * 16);

        // SAFETY: a chunk carved with `bytes(2)`, through its own pointer, never freed.
        let records = unsafe { RecordChunk::published(first) };
        assert_eq!(records.len(), 2);
        // SAFETY: as above; `first` is live.
        let second = unsafe { (*first).next.load(Ordering::Acquire) };
        assert_eq!(second, tail_chunk);
        // SAFETY: a chunk carved with `bytes(4)`, linked from the first, never freed.
        let more = unsafe { RecordChunk::published(second) };
        assert_eq!(more.len(), 1);
        // SAFETY: as above.
        assert!(unsafe { (*second).next.load(Ordering::Acquire) }.is_null());
        let records: Vec<&SiteRecord> = records.iter().chain(more).collect();
        for (i, (record, &(stack, key, has_lifetimes))) in records.iter().zip(&sites).enumerate() {
            assert_eq!((record.hash, record.check), (i as u64 + 1, 100 + i as u64));
            assert_eq!(
                (record.owner, record.depth, record.end),
                (OwnerId(0x100), stack.len() as u32, i as u8)
            );
            assert_eq!(record.frames().collect::<Vec<_>>(), stack);
            assert_eq!(record.key(), key);
            assert_eq!(record.lifetimes().is_some(), has_lifetimes);
            assert_eq!(record.read_local(0), Counts::default());
            assert_eq!(record.read_remote(0), Counts::default());
        }
        assert_eq!(records[1].key().label.text(), Some("parse"));
        assert_eq!(records[0].key().label.text(), None);

        // The owner allocates 48 bytes at peak generation 1 (raising the peak), then frees them.
        records[0].owner_add(&SiteDelta::exact(48, 1, Some(48)), 1, true);
        records[0].owner_add(&SiteDelta::exact(-48, -1, None), 1, false);
        let expected = Counts {
            total_bytes: 48,
            total_blocks: 1,
            at_peak_bytes: 48,
            at_peak_blocks: 1,
            ..Counts::default()
        };
        assert_eq!(records[0].read_local(1), expected);

        // The owner allocates 32 bytes; another thread frees them (making the remote half).
        records[1].owner_add(&SiteDelta::exact(32, 1, Some(32)), 1, true);
        records[1].remote_add(&SiteDelta::exact(-32, -1, None), 1, false, &mapped);
        assert_eq!(mapped.load(Ordering::Relaxed), 320 + 576 + 64 * 16 + 128);
        let remote = records[1].read_remote(1);
        assert_eq!(
            (remote.live_bytes, remote.live_blocks),
            (32u64.wrapping_neg(), u64::MAX)
        );
        let expected = Counts {
            total_bytes: 32,
            total_blocks: 1,
            at_peak_bytes: 32,
            at_peak_blocks: 1,
            ..Counts::default()
        };
        assert_eq!(remote.plus(records[1].read_local(1)), expected);

        // Lifetimes: born at 5, freed by the owner at 9 and by another thread at 11.
        let lifetimes = records[2].lifetimes().unwrap();
        records[2].owner_add(&SiteDelta::exact(16, 1, Some(16)), 1, true);
        records[2].owner_grew(lifetimes, Some(5));
        lifetimes.owner_died(9);
        lifetimes.remote_died(11);
        let expected = Lifetimes {
            births: 5,
            deaths: 20,
            max_bytes: 16,
            max_blocks: 1,
        };
        assert_eq!(lifetimes.read(lifetimes.read_remote_deaths()), expected);
        // The lifetimes follow the key in the same trailer, which keeps its key.
        assert_eq!(records[2].key(), key);
    }
}

/// Loom models of the record protocol, on `SiteRecord` itself: its owner's changes inside the
/// owner's sequence lock, the figures kept at a moving peak (the owner's lazy copy, the remote
/// half's swap), the remote half made by whichever thread changes the record first, a retired
/// thread state's records taken on by a new thread, each against a snapshot's read of the record.
/// Run by `tests/loom.rs`.
///
/// Loom remembers only the last access to each atomic (tokio-rs/loom#166 and #392): a load that
/// comes before another thread's load-then-store of the same atomic, as the owner's increments,
/// its sequence lock and the peak's generation make them, is not seen to race with that store,
/// and the orders in which the load follows it are never tried. So each model spawns the threads
/// that store first and the readers last: loom's first schedule runs them in that order, every
/// load after the stores it races with, and loom reorders from there. And each model notes what
/// its threads saw, and checks at the end that loom tried every order that matters: a model that
/// stopped exploring fails instead of passing. Each was also checked to fail on the faults its
/// comment names, put in by hand.
#[cfg(all(test, loom))]
mod loom_model {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use loom::sync::Arc;
    use loom::sync::atomic::AtomicBool;
    use loom::thread;

    use super::*;
    use crate::state::pool::Pool;
    use crate::state::seqlock::SeqLock;

    /// Runs `f` in every interleaving loom tries with at most `preemptions` preemptions each
    /// (`LOOM_MAX_PREEMPTIONS` overrides it), then checks that what `f` noted over them all is
    /// `expected`. The bounds below give every outcome, fail each model on the faults named with
    /// it, and keep each model to a few seconds on two cores; unbounded, some ran for ten minutes
    /// without an end.
    fn model(preemptions: usize, expected: &[&str], f: impl Fn(&Notes) + Sync + Send + 'static) {
        let notes = Notes(std::sync::Arc::default());
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = builder.preemption_bound.or(Some(preemptions));
        builder.check({
            let notes = notes.clone();
            move || f(&notes)
        });
        let seen = notes.0.lock().unwrap().clone();
        let expected: BTreeSet<String> = expected.iter().map(|&s| s.to_owned()).collect();
        assert_eq!(seen, expected, "the outcomes over every interleaving tried");
    }

    /// What a model's threads saw (std's lock: no part of the model, held for an insertion).
    #[derive(Clone)]
    struct Notes(std::sync::Arc<Mutex<BTreeSet<String>>>);

    impl Notes {
        fn note(&self, what: String) {
            self.0.lock().unwrap().insert(what);
        }
    }

    /// What the models share: the owner thread's sequence lock and one of its records, and the
    /// process's peak generation.
    struct Shared {
        lock: SeqLock,
        record: SiteRecord,
        /// As `accounting::peak::PeakMark`'s: read and raised with relaxed loads and stores.
        generation: AtomicU64,
        /// The profiler's own memory, as the carver counts it.
        mapped: std::sync::atomic::AtomicU64,
    }

    impl Shared {
        fn new() -> Arc<Shared> {
            Arc::new(Shared::fresh())
        }

        fn fresh() -> Shared {
            Shared {
                lock: SeqLock::new(),
                record: SiteRecord::empty(OwnerId(0x100)),
                generation: AtomicU64::new(0),
                mapped: std::sync::atomic::AtomicU64::new(0),
            }
        }

        /// An event of the record's owner, as `Registry::apply` makes it: inside the owner's
        /// write section, at the peak generation read there. Returns that generation.
        fn owner_change(&self, delta: SiteDelta, raised: bool) -> u64 {
            // SAFETY: in every model one thread at a time owns the record: the one that changes it
            // this way, until it hands the record over (a spawn or a release/acquire pair); it
            // opens one section at a time.
            let _section = unsafe { self.lock.write_section() };
            let peak_gen = self.generation.load(Ordering::Relaxed);
            self.record.owner_add(&delta, peak_gen, raised);
            peak_gen
        }

        /// An event of another thread (a free of one of the record's blocks), as
        /// `Registry::apply` makes it. Returns the peak generation it saw.
        fn remote_change(&self, delta: SiteDelta) -> u64 {
            let peak_gen = self.generation.load(Ordering::Relaxed);
            self.record
                .remote_add(&delta, peak_gen, false, &self.mapped);
            peak_gen
        }

        /// A new peak, made by some other thread's allocation, as `PeakMark::raise` makes it.
        fn raise_peak(&self) {
            let generation = self.generation.load(Ordering::Relaxed);
            self.generation.store(generation + 1, Ordering::Relaxed);
        }

        /// The record's figures as a snapshot copies them (`snapshot::copy_record`): the peak
        /// generation, then the remote half, then the owner's in one attempt at a consistent read
        /// (`ThreadState::read_consistent` repeats the attempt): `(remote, own)`, the owner's
        /// `None` when the attempt overlapped an update.
        fn snapshot_read(&self) -> (Counts, Option<Counts>) {
            let peak_gen = self.generation.load(Ordering::Relaxed);
            let remote = self.record.read_remote(peak_gen);
            let own = self.lock.try_read(|| self.record.read_local(peak_gen));
            (remote, own.ok())
        }

        /// The record's figures once its changes are done.
        fn quiescent_read(&self) -> Counts {
            let (remote, own) = self.snapshot_read();
            own.expect("no update under way").plus(remote)
        }
    }

    fn spawn<S>(shared: &S, run: impl FnOnce(&Shared) + Send + 'static) -> Joins
    where
        S: std::ops::Deref<Target = Shared> + Clone + Send + 'static,
    {
        let shared = shared.clone();
        Joins(thread::spawn(move || run(&shared)))
    }

    struct Joins(thread::JoinHandle<()>);

    impl Joins {
        fn join(self) {
            self.0.join().unwrap();
        }
    }

    /// The figures after `changes`, from an empty record, at a peak none of them passed.
    fn after(changes: &[SiteDelta]) -> Counts {
        changes.iter().fold(Counts::default(), |sum, change| {
            sum.plus(change.map(|&n| wrapping(n)))
        })
    }

    fn live(counts: Counts) -> (i64, i64) {
        (counts.live_bytes as i64, counts.live_blocks as i64)
    }

    fn at_peak(counts: Counts) -> (i64, i64) {
        (counts.at_peak_bytes as i64, counts.at_peak_blocks as i64)
    }

    /// The owner allocates a block, then resizes it (the block moves), each inside its write
    /// section, while a snapshot reads: a read that succeeds sees the record before, between or
    /// after the changes, all nine counters from one moment. Fails without either fence of the
    /// sequence lock, or with its closing store relaxed.
    #[test]
    fn a_snapshot_never_sees_part_of_a_change() {
        let alloc = SiteDelta::exact(16, 1, Some(16));
        let resize = SiteDelta {
            reallocs: 1,
            realloc_copied_bytes: 16,
            ..SiteDelta::exact(16, 0, Some(32))
        };
        let moments = [Counts::default(), after(&[alloc]), after(&[alloc, resize])];
        model(2, &EVERY_MOMENT_OR_TORN, move |notes| {
            let shared = Shared::new();
            let owner = spawn(&shared, move |shared| {
                shared.owner_change(alloc, false);
                shared.owner_change(resize, false);
            });
            let reader = spawn(&shared, {
                let notes = notes.clone();
                move |shared| read_a_moment(shared, &moments, &notes)
            });
            owner.join();
            reader.join();
            assert_eq!(shared.quiescent_read(), moments[2]);
        });
    }

    /// What the reads of [`read_a_moment`] must all come to, across a model's runs: torn (a
    /// read that retries), and each of three moments.
    const EVERY_MOMENT_OR_TORN: [&str; 4] = [
        "read torn",
        "read: moment 0",
        "read: moment 1",
        "read: moment 2",
    ];

    /// Takes a snapshot's read of the owner's half, which must be one of `moments` when it
    /// succeeds, and notes which.
    fn read_a_moment(shared: &Shared, moments: &[Counts], notes: &Notes) {
        match shared.snapshot_read().1 {
            Some(own) => {
                let moment = moments.iter().position(|&m| m == own);
                let moment = moment.unwrap_or_else(|| panic!("a torn read: {own:?}"));
                notes.note(format!("read: moment {moment}"));
            }
            None => notes.note("read torn".to_owned()),
        }
    }

    /// A thread changes its record and exits, putting its state (lock and records) in the pool
    /// (`Registry::retire`); a thread that starts takes it out (`Registry::register_thread`) and
    /// changes the record on, with plain stores from the figures it finds there, while a snapshot
    /// reads. The pool's exchanges order the first owner's change before the second's: none is
    /// lost, and a read sees the record before, between or after them. Fails when the state is
    /// put in with a relaxed exchange.
    #[test]
    fn a_retired_state_taken_on_by_a_new_thread_loses_no_change() {
        let first = SiteDelta::exact(16, 1, Some(16));
        let second = SiteDelta::exact(32, 1, Some(32));
        let moments = [Counts::default(), after(&[first]), after(&[first, second])];
        model(2, &EVERY_MOMENT_OR_TORN, move |notes| {
            // Never freed, as thread states are not (`Pool::put`'s contract).
            let state: &'static Shared = Box::leak(Box::new(Shared::fresh()));
            let pool = Arc::new(Pool::<Shared, 1>::new());
            let exiting = spawn(&state, {
                let pool = pool.clone();
                move |state| {
                    state.owner_change(first, false);
                    // SAFETY: the state is leaked: never freed.
                    assert!(unsafe { pool.put(state) });
                }
            });
            let starting = Joins(thread::spawn(move || {
                let state = loop {
                    match pool.take(|_| true) {
                        Some(state) => break state,
                        None => thread::yield_now(),
                    }
                };
                state.owner_change(second, false);
            }));
            let reader = spawn(&state, {
                let notes = notes.clone();
                move |state| read_a_moment(state, &moments, &notes)
            });
            exiting.join();
            starting.join();
            reader.join();
            assert_eq!(state.quiescent_read(), moments[2]);
        });
    }

    /// A new peak while the owner allocates: the owner keeps its figures at the peak
    /// (`keep_at_peak`) when it sees the new generation, and otherwise allocated before the peak.
    /// A snapshot reads the figures at the peak it knows of as the record's before the allocation
    /// or after it, never bytes of one and blocks of the other; once both are done, the figures at
    /// the new peak are those before the allocation if the owner saw the new peak, else those
    /// after it. Fails with the copy made after the change (and as above without the sequence
    /// lock's fences). Three threads: one preemption (two take 17 s).
    #[test]
    fn figures_at_a_moving_peak_are_before_or_after_a_change() {
        let (before, after) = ((16, 1), (48, 2));
        let expected = [
            "owner saw generation 1",
            "owner saw generation 2",
            "read at peak: (16, 1)",
            "read at peak: (48, 2)",
            "read torn",
        ];
        model(1, &expected, move |notes| {
            let shared = Shared::new();
            // The first allocation makes the first peak (generation 1), and so keeps nothing.
            shared.raise_peak();
            shared.owner_change(SiteDelta::exact(16, 1, Some(16)), true);
            let peak = spawn(&shared, Shared::raise_peak);
            let seen = Arc::new(AtomicU64::new(0));
            let owner = spawn(&shared, {
                let seen = seen.clone();
                move |shared| {
                    let generation = shared.owner_change(SiteDelta::exact(32, 1, Some(32)), false);
                    seen.store(generation, Ordering::Relaxed);
                }
            });
            let reader = spawn(&shared, {
                let notes = notes.clone();
                move |shared| match shared.snapshot_read().1 {
                    Some(own) => {
                        let pair = at_peak(own);
                        assert!(
                            pair == before || pair == after,
                            "a mix at the peak: {pair:?}"
                        );
                        notes.note(format!("read at peak: {pair:?}"));
                    }
                    None => notes.note("read torn".to_owned()),
                }
            });
            peak.join();
            owner.join();
            reader.join();
            let seen = seen.load(Ordering::Relaxed);
            notes.note(format!("owner saw generation {seen}"));
            let read = shared.quiescent_read();
            assert_eq!(at_peak(read), if seen == 2 { before } else { after });
            assert_eq!(live(read), after);
        });
    }

    /// As above for the remote half, which claims the new generation with a swap before it copies
    /// its figures: another thread frees a block while the peak moves; once both are done, the
    /// figures at the new peak are the record's before the free if the freeing thread saw the new
    /// peak, else after it. (A read of the remote half during a change is not consistent: it has
    /// no sequence lock.) Fails when the swap does not claim the generation.
    #[test]
    fn remote_figures_at_a_moving_peak_are_before_or_after_a_change() {
        let expected = ["freeing saw generation 1", "freeing saw generation 2"];
        model(2, &expected, |notes| {
            let shared = Shared::new();
            // Three blocks at the first peak; one already freed elsewhere (making the remote half).
            shared.raise_peak();
            shared.owner_change(SiteDelta::exact(48, 3, Some(48)), true);
            shared.remote_change(SiteDelta::exact(-16, -1, None));
            let peak = spawn(&shared, Shared::raise_peak);
            let seen = Arc::new(AtomicU64::new(0));
            let freeing = spawn(&shared, {
                let seen = seen.clone();
                move |shared| {
                    let generation = shared.remote_change(SiteDelta::exact(-16, -1, None));
                    seen.store(generation, Ordering::Relaxed);
                }
            });
            peak.join();
            freeing.join();
            let seen = seen.load(Ordering::Relaxed);
            notes.note(format!("freeing saw generation {seen}"));
            let read = shared.quiescent_read();
            assert_eq!(at_peak(read), if seen == 2 { (32, 2) } else { (16, 1) });
            assert_eq!(live(read), (16, 1));
        });
    }

    /// The owner allocates and hands the block over (release/acquire, as any passing of a
    /// pointer); the receiving thread frees it, making the remote half. A snapshot reads the
    /// remote half first, so the owner's half it reads next is at least as new: the sum never
    /// shows a free before its allocation (it never goes below zero). Fails with the halves read
    /// the other way round.
    #[test]
    fn a_remote_free_never_shows_before_its_allocation() {
        let alloc = SiteDelta::exact(16, 1, Some(16));
        let free = SiteDelta::exact(-16, -1, None);
        let expected = [
            "read live: remote 0, own 0",
            "read live: remote 0, own 16",
            "read live: remote -16, own 16",
            "read torn",
        ];
        model(2, &expected, move |notes| {
            let shared = Shared::new();
            let handed_over = Arc::new(AtomicBool::new(false));
            let owner = spawn(&shared, {
                let handed_over = handed_over.clone();
                move |shared| {
                    shared.owner_change(alloc, false);
                    handed_over.store(true, Ordering::Release);
                }
            });
            let freeing = spawn(&shared, move |shared| {
                while !handed_over.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                shared.remote_change(free);
            });
            let reader = spawn(&shared, {
                let notes = notes.clone();
                move |shared| match shared.snapshot_read() {
                    (remote, Some(own)) => {
                        let (bytes, blocks) = live(own.plus(remote));
                        assert!(bytes >= 0 && blocks >= 0, "a free before its allocation");
                        let (remote, own) = (live(remote).0, live(own).0);
                        notes.note(format!("read live: remote {remote}, own {own}"));
                    }
                    (_, None) => notes.note("read torn".to_owned()),
                }
            });
            owner.join();
            freeing.join();
            reader.join();
            assert_eq!(shared.quiescent_read(), after(&[alloc, free]));
        });
    }

    /// Two threads free one block each, both before the record has a remote half: both may find
    /// none and carve one, one installs its own (compare-and-swap) and the other adds to the
    /// winner's, leaving its own unused. No change is lost. Fails when the loser adds to its own
    /// half.
    #[test]
    fn threads_making_the_remote_half_at_once_lose_no_change() {
        let alloc = SiteDelta::exact(16, 1, Some(16));
        let free = SiteDelta::exact(-16, -1, None);
        let expected = ["remote halves carved: 1", "remote halves carved: 2"];
        model(2, &expected, move |notes| {
            let shared = Shared::new();
            shared.owner_change(alloc, false);
            shared.owner_change(alloc, false);
            let frees: Vec<_> = (0..2)
                .map(|_| {
                    spawn(&shared, move |shared| {
                        shared.remote_change(free);
                    })
                })
                .collect();
            frees.into_iter().for_each(Joins::join);
            let read = shared.quiescent_read();
            assert_eq!(
                read,
                after(&[alloc, alloc, free, free]),
                "a change was lost"
            );
            // Each thread that found no half carved one (in multiples of 64 bytes).
            let half = std::mem::size_of::<RecordHalf>().next_multiple_of(64) as u64;
            let carved = shared.mapped.load(Ordering::Relaxed);
            notes.note(format!("remote halves carved: {}", carved / half));
        });
    }
}
