//! Site records: the counters of one call stack on one thread.
//!
//! A record is written by its owner thread with plain (non-read-modify-write) stores inside the
//! owner's sequence lock, so the hot path takes no `lock`-prefixed instruction. Another thread that
//! frees or reallocates one of the record's blocks adds to the `remote_*` counters instead, with
//! atomic read-modify-writes; readers add the two halves.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// Whether new records get [`LifetimeCounts`]: set once, when the process's mode is decided at its
/// first allocation (before any record is made).
pub(crate) static LIFETIMES_MODE: AtomicBool = AtomicBool::new(false);

/// A task label (`tracealloc::labeled`): a `&'static str`, kept as its address and length so that
/// it fits in a record and costs two stores to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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

    /// What the label adds to a stack's hash (nothing for no label).
    #[inline(always)]
    pub(crate) fn hash_part(self) -> u64 {
        (self.ptr as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f) ^ self.len as u64
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

/// The change an operation makes to a site record: the block's own figures, or, for a sampled
/// block, the estimates it stands for.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SiteDelta {
    pub(crate) live_bytes: i64,
    pub(crate) live_blocks: i64,
    pub(crate) total_bytes: u64,
    pub(crate) total_blocks: u64,
    /// Blocks freed by their allocating thread before its next allocation (exact mode only).
    pub(crate) temporary_blocks: u64,
    /// Reallocs of the site's blocks, and the bytes they copied when the block moved.
    pub(crate) reallocs: u64,
    pub(crate) realloc_copied_bytes: u64,
}

impl SiteDelta {
    /// A change of `live_bytes` and `live_blocks`; with `allocated`, one more block of that size in
    /// the totals.
    #[inline(always)]
    pub(crate) fn exact(live_bytes: i64, live_blocks: i64, allocated: Option<usize>) -> SiteDelta {
        SiteDelta {
            live_bytes,
            live_blocks,
            total_bytes: allocated.map_or(0, |n| n as u64),
            total_blocks: u64::from(allocated.is_some()),
            ..SiteDelta::default()
        }
    }
}

/// Counters of a record as a reader sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) live_bytes: u64,
    pub(crate) live_blocks: u64,
    pub(crate) total_bytes: u64,
    pub(crate) total_blocks: u64,
    /// Live at the peak: when the process's live bytes last reached their maximum.
    pub(crate) peak_bytes: u64,
    pub(crate) peak_blocks: u64,
    pub(crate) temporary_blocks: u64,
    pub(crate) reallocs: u64,
    pub(crate) realloc_copied_bytes: u64,
}

/// The counters of one (stack, thread) pair. All-zero bytes are a valid empty record, so records
/// live in zeroed mappings.
///
/// Laid out for the hot path: what every lookup and every owner's event reads and writes comes
/// first, in 72 contiguous bytes (about one cache line); the figures kept for snapshots and what
/// other threads write follow.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct SiteRecord {
    // Set once before the record is published, never written again.
    pub(crate) hash: u64,
    pub(crate) frames: *const usize,
    pub(crate) owner: OwnerId,
    pub(crate) depth: u32,
    /// How the capture ended ([`crate::capture::CaptureEnd`] as u8).
    pub(crate) end: u8,
    /// Whether [`LifetimeCounts`] follow the record's frames (lifetimes mode).
    pub(crate) has_lifetimes: bool,
    // Written only by the owner, inside its sequence lock.
    live_bytes: AtomicU64,
    live_blocks: AtomicU64,
    total_bytes: AtomicU64,
    total_blocks: AtomicU64,
    /// The peak generation at the owner's last change, and the owner's live figures as they were
    /// at that peak (see [`SiteRecord::owner_add`]).
    peak_gen: AtomicU64,
    /// The owner's measure scope when the record was made (0: none): blocks allocated inside a
    /// `measure` get records of their own, so the measure can tell its blocks from older ones.
    pub(crate) scope: u64,
    /// The owner's task label when the record was made: a block keeps its label wherever it is
    /// freed.
    pub(crate) label: Label,
    at_peak_bytes: AtomicU64,
    at_peak_blocks: AtomicU64,
    temporary_blocks: AtomicU64,
    reallocs: AtomicU64,
    realloc_copied_bytes: AtomicU64,
    // Written by other threads with atomic adds (wrapping, so signed changes fit).
    remote_live_bytes: AtomicU64,
    remote_live_blocks: AtomicU64,
    remote_total_bytes: AtomicU64,
    remote_total_blocks: AtomicU64,
    remote_peak_gen: AtomicU64,
    remote_at_peak_bytes: AtomicU64,
    remote_at_peak_blocks: AtomicU64,
    remote_reallocs: AtomicU64,
    remote_realloc_copied_bytes: AtomicU64,
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
    pub(crate) const fn empty(owner: OwnerId) -> SiteRecord {
        SiteRecord {
            hash: 0,
            frames: std::ptr::null(),
            depth: 0,
            end: 0,
            has_lifetimes: false,
            owner,
            scope: 0,
            label: Label::NONE,
            live_bytes: AtomicU64::new(0),
            live_blocks: AtomicU64::new(0),
            total_bytes: AtomicU64::new(0),
            total_blocks: AtomicU64::new(0),
            peak_gen: AtomicU64::new(0),
            at_peak_bytes: AtomicU64::new(0),
            at_peak_blocks: AtomicU64::new(0),
            temporary_blocks: AtomicU64::new(0),
            reallocs: AtomicU64::new(0),
            realloc_copied_bytes: AtomicU64::new(0),
            remote_live_bytes: AtomicU64::new(0),
            remote_live_blocks: AtomicU64::new(0),
            remote_total_bytes: AtomicU64::new(0),
            remote_total_blocks: AtomicU64::new(0),
            remote_peak_gen: AtomicU64::new(0),
            remote_at_peak_bytes: AtomicU64::new(0),
            remote_at_peak_blocks: AtomicU64::new(0),
            remote_reallocs: AtomicU64::new(0),
            remote_realloc_copied_bytes: AtomicU64::new(0),
        }
    }

    /// A record of `depth` frames at `frames`, owned by `owner` in measure `scope`, whose capture
    /// ended as `end`; `hash` is the stack's hash mixed with the scope.
    pub(crate) const fn new(
        owner: OwnerId,
        (scope, label): (u64, Label),
        hash: u64,
        frames: *const usize,
        depth: u32,
        end: u8,
    ) -> SiteRecord {
        SiteRecord {
            hash,
            frames,
            depth,
            end,
            scope,
            label,
            ..SiteRecord::empty(owner)
        }
    }

    /// The record's return addresses, innermost first.
    pub(crate) fn stack(&self) -> &[usize] {
        if self.frames.is_null() {
            return &[];
        }
        // SAFETY: `frames` points to `depth` words written before the record was published and
        // never freed (frame arenas live as long as the process).
        unsafe { std::slice::from_raw_parts(self.frames, self.depth as usize) }
    }

    /// Applies a change by the owner thread, which must hold its own sequence lock. `peak_gen` is
    /// the process's peak generation now: the first change after the peak moved first keeps the
    /// live figures as they were at the peak (a lazy copy, one compare per event instead of a
    /// sweep of every record at every new peak), unless this change itself `raised` the peak:
    /// then the figures after it are the peak's, as a record not changed since reads.
    #[inline(always)]
    pub(crate) fn owner_add(&self, delta: &SiteDelta, peak_gen: u64, raised: bool) {
        if !raised && self.peak_gen.load(Ordering::Relaxed) != peak_gen {
            self.keep_at_peak(peak_gen);
        }
        bump(&self.live_bytes, wrapping(delta.live_bytes));
        bump(&self.live_blocks, wrapping(delta.live_blocks));
        bump(&self.total_bytes, delta.total_bytes);
        bump(&self.total_blocks, delta.total_blocks);
        if delta.temporary_blocks | delta.reallocs != 0 {
            bump(&self.temporary_blocks, delta.temporary_blocks);
            bump(&self.reallocs, delta.reallocs);
            bump(&self.realloc_copied_bytes, delta.realloc_copied_bytes);
        }
    }

    #[cold]
    #[inline(never)]
    fn keep_at_peak(&self, peak_gen: u64) {
        let (bytes, blocks) = (&self.live_bytes, &self.live_blocks);
        self.at_peak_bytes
            .store(bytes.load(Ordering::Relaxed), Ordering::Relaxed);
        self.at_peak_blocks
            .store(blocks.load(Ordering::Relaxed), Ordering::Relaxed);
        self.peak_gen.store(peak_gen, Ordering::Relaxed);
    }

    /// Applies a change by any other thread. The remote half keeps its own figures at the peak
    /// (claimed with a swap of its generation): exact while one thread at a time frees this
    /// record's blocks remotely; with several at once, a free that races the copy can land on
    /// either side of it.
    #[inline]
    pub(crate) fn remote_add(&self, delta: &SiteDelta, peak_gen: u64, raised: bool) {
        let (live_bytes, live_blocks) = (wrapping(delta.live_bytes), wrapping(delta.live_blocks));
        let (total_bytes, total_blocks) = (delta.total_bytes, delta.total_blocks);
        if !raised
            && self.remote_peak_gen.load(Ordering::Relaxed) != peak_gen
            && self.remote_peak_gen.swap(peak_gen, Ordering::AcqRel) != peak_gen
        {
            self.remote_at_peak_bytes.store(
                self.remote_live_bytes.load(Ordering::Acquire),
                Ordering::Release,
            );
            self.remote_at_peak_blocks.store(
                self.remote_live_blocks.load(Ordering::Acquire),
                Ordering::Release,
            );
        }
        self.remote_live_bytes
            .fetch_add(live_bytes, Ordering::Release);
        self.remote_live_blocks
            .fetch_add(live_blocks, Ordering::Release);
        if total_blocks != 0 {
            self.remote_total_bytes
                .fetch_add(total_bytes, Ordering::Release);
            self.remote_total_blocks
                .fetch_add(total_blocks, Ordering::Release);
        }
        if delta.reallocs != 0 {
            self.remote_reallocs
                .fetch_add(delta.reallocs, Ordering::Release);
            self.remote_realloc_copied_bytes
                .fetch_add(delta.realloc_copied_bytes, Ordering::Release);
        }
    }

    /// The remote half, read first: a remote free happens after its allocation, so the owner's
    /// half read next is at least as new and the sum never goes below zero. `peak_gen` is the
    /// process's peak generation: a half not changed since the peak is as it was then.
    pub(crate) fn read_remote(&self, peak_gen: u64) -> Counts {
        let live_bytes = self.remote_live_bytes.load(Ordering::Acquire);
        let live_blocks = self.remote_live_blocks.load(Ordering::Acquire);
        let (peak_bytes, peak_blocks) = if self.remote_peak_gen.load(Ordering::Acquire) == peak_gen
        {
            (
                self.remote_at_peak_bytes.load(Ordering::Acquire),
                self.remote_at_peak_blocks.load(Ordering::Acquire),
            )
        } else {
            (live_bytes, live_blocks)
        };
        Counts {
            live_bytes,
            live_blocks,
            total_bytes: self.remote_total_bytes.load(Ordering::Acquire),
            total_blocks: self.remote_total_blocks.load(Ordering::Acquire),
            peak_bytes,
            peak_blocks,
            temporary_blocks: 0,
            reallocs: self.remote_reallocs.load(Ordering::Acquire),
            realloc_copied_bytes: self.remote_realloc_copied_bytes.load(Ordering::Acquire),
        }
    }

    /// The owner's half; call inside the owner's sequence-lock read.
    pub(crate) fn read_local(&self, peak_gen: u64) -> Counts {
        let live_bytes = self.live_bytes.load(Ordering::Relaxed);
        let live_blocks = self.live_blocks.load(Ordering::Relaxed);
        let (peak_bytes, peak_blocks) = if self.peak_gen.load(Ordering::Relaxed) == peak_gen {
            (
                self.at_peak_bytes.load(Ordering::Relaxed),
                self.at_peak_blocks.load(Ordering::Relaxed),
            )
        } else {
            (live_bytes, live_blocks)
        };
        Counts {
            live_bytes,
            live_blocks,
            total_bytes: self.total_bytes.load(Ordering::Relaxed),
            total_blocks: self.total_blocks.load(Ordering::Relaxed),
            peak_bytes,
            peak_blocks,
            temporary_blocks: self.temporary_blocks.load(Ordering::Relaxed),
            reallocs: self.reallocs.load(Ordering::Relaxed),
            realloc_copied_bytes: self.realloc_copied_bytes.load(Ordering::Relaxed),
        }
    }
}

impl Counts {
    pub(crate) fn plus(self, other: Counts) -> Counts {
        Counts {
            live_bytes: self.live_bytes.wrapping_add(other.live_bytes),
            live_blocks: self.live_blocks.wrapping_add(other.live_blocks),
            total_bytes: self.total_bytes.wrapping_add(other.total_bytes),
            total_blocks: self.total_blocks.wrapping_add(other.total_blocks),
            peak_bytes: self.peak_bytes.wrapping_add(other.peak_bytes),
            peak_blocks: self.peak_blocks.wrapping_add(other.peak_blocks),
            temporary_blocks: self.temporary_blocks.wrapping_add(other.temporary_blocks),
            reallocs: self.reallocs.wrapping_add(other.reallocs),
            realloc_copied_bytes: self
                .realloc_copied_bytes
                .wrapping_add(other.realloc_copied_bytes),
        }
    }
}

/// What lifetimes mode adds to a record (`Profiler::lifetimes`, `TRACEALLOC_LIFETIMES`): kept in
/// the frame arena right after the record's frames, so that records stay as small in the usual
/// mode. All-zero words are an empty one.
///
/// Lifetimes are kept as sums of clock readings: a block's lifetime is its free's stamp less its
/// allocation's, so the sum of the lifetimes of the freed blocks is the sum of the frees' stamps
/// less that of their allocations, and nothing is stored per block. A live block counts up to the
/// moment a reader looks: `deaths - births + live_blocks * now`.
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

impl LifetimeCounts {
    /// Words of the frame arena one takes.
    pub(crate) const WORDS: usize = std::mem::size_of::<LifetimeCounts>() / 8;

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
        // `depth` frames are followed by a zeroed, 8-aligned `LifetimeCounts` in the same arena,
        // which lives as long as the process.
        Some(unsafe {
            &*self
                .frames
                .add(self.depth as usize)
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
        let live_bytes = self
            .live_bytes
            .load(Ordering::Relaxed)
            .wrapping_add(self.remote_live_bytes.load(Ordering::Relaxed));
        let live_blocks = self
            .live_blocks
            .load(Ordering::Relaxed)
            .wrapping_add(self.remote_live_blocks.load(Ordering::Relaxed));
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
#[repr(C)]
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

    /// The first record slot.
    pub(crate) fn slots(&self) -> *mut SiteRecord {
        // SAFETY: the records follow the header within the chunk's memory (`bytes(capacity)`);
        // the header's size is a multiple of the records' alignment (8).
        unsafe {
            (self as *const RecordChunk as *mut u8)
                .add(std::mem::size_of::<RecordChunk>())
                .cast()
        }
    }

    /// The published records.
    pub(crate) fn published(&self) -> &[SiteRecord] {
        let len = self.len.load(Ordering::Acquire).min(self.capacity);
        // SAFETY: the first `len` slots were written whole before `len` was published (release);
        // zeroed or written, every slot is a valid record.
        unsafe { std::slice::from_raw_parts(self.slots(), len) }
    }
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
