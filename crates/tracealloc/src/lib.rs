//! **tracealloc**: an exact, fast, thread-safe allocation profiler for Rust.
//!
//! Add one line to a debug or profiling build:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();
//! ```
//!
//! Every allocation is then charged to its call stack and thread. [`stats`] gives whole-process
//! figures at any moment; [`snapshot`] copies every site's counters with symbolized stacks, to group
//! ([`Snapshot::top`]), compare ([`Snapshot::diff`]) and save ([`Snapshot::save`]) for the
//! `tracealloc` CLI. Set `TRACEALLOC_OUT=path` to get a snapshot written at exit.
//!
//! Build with `RUSTFLAGS="-C force-frame-pointers=yes"` for fast stack capture (about 10 ns); without
//! frame pointers the profiler detects it, says so once on stderr and falls back to DWARF unwinding.

#![cfg_attr(docsrs, feature(doc_cfg))]

// The layers, each built only on those above it in this list (checked by `tests/layering.rs`):
//
//  sys, guard, config  operating-system calls; the reentrancy guard; the configuration, decided once
//  capture             a call stack's return addresses: frame-pointer walk, DWARF unwinder
//  state               per-thread state: carved memory, the sequence lock, stack tables, records
//  accounting, block   alloc / realloc / dealloc on a thread's state, sampling maths, and the
//                      registry they fold into; where each block keeps its record (header, tag)
//  snapshot            copying a registry's counters, symbolizing, building the model
//  process             the one registry, each thread's state (TLS), and the fork, thread-exit and
//                      process-exit hooks beside their bodies
//  policy              how each event is accounted: exact, with lifetimes, sampled
//  (this file), alloc, measure, labels   the public API and the `GlobalAlloc` entry points
//
// Taking a snapshot is a function of a registry, below the process layer: the exit hook writes one.
mod accounting;
mod alloc;
#[cfg(test)]
mod allocator_check;
mod block;
#[doc(hidden)]
pub mod c_layer;
mod capture;
mod config;
mod guard;
mod labels;
pub mod measure;
mod policy;
mod process;
mod snapshot;
mod state;
mod sys;

use std::alloc::{GlobalAlloc, System};
use std::fmt;
use std::path::Path;

pub use config::{
    CAPTURE_ENV, DEFAULT_MAX_STACKS, DEPTH_ENV, INTERVAL_ENV, KEEP_ENV, LIFETIMES_ENV,
    MAX_STACKS_ENV, OUT_ENV, REALLOC_ENV, SAMPLE_ENV, SEED_ENV,
};
#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub use labels::LabelLayer;
pub use labels::{Labeled, labeled, with_label};
pub use measure::{Measurement, measure, measure_future, measure_scoped, measure_with};
/// The snapshot model, file format and analysis, usable without the allocator.
pub use tracealloc_snapshot as model;
pub use tracealloc_snapshot::{
    Filter, GroupBy, HeapStats, LoadError, Metric, SaveError, Stat, StatDiff,
};

use config::Request;
use guard::ReentrancyGuard;

/// Whether this build of the profiler is optimized. When it is not (a plain debug build), the
/// profiler says so once on stderr with the fix (`opt-level = 3` for tracealloc; see the README).
pub const PROFILER_OPTIMIZED: bool = !cfg!(tracealloc_unoptimized);

/// The profiling allocator: wraps an inner allocator (the system's by default, or jemalloc) and
/// charges every block to its call stack and thread.
///
/// Each block carries the address of its site's record (an 8- or 16-byte header, or a trailer of
/// at most 15 bytes for alignments above 16), so frees and reallocs find their site without a
/// lookup. In sampled mode, a block aligned to at most 8 that sampling left out carries nothing:
/// the inner allocator is asked for exactly what the program asked for.
#[derive(Debug, Default)]
pub struct Profiler<A: GlobalAlloc = System> {
    inner: A,
    /// The settings asked for (see `config`): they take part in the process's configuration if
    /// this value makes its first allocation, and are refused, loudly, if they differ from it.
    request: Request,
}

impl Profiler<System> {
    /// Profiles the system allocator.
    pub const fn system() -> Self {
        Profiler {
            inner: System,
            request: Request::DEFAULT,
        }
    }
}

/// jemalloc as the inner allocator (feature `jemalloc`), to name the profiler's type:
/// `static ALLOC: tracealloc::Profiler<tracealloc::Jemalloc> = tracealloc::Profiler::jemalloc();`
#[cfg(feature = "jemalloc")]
#[cfg_attr(docsrs, doc(cfg(feature = "jemalloc")))]
pub use tikv_jemallocator::Jemalloc;

#[cfg(feature = "jemalloc")]
#[cfg_attr(docsrs, doc(cfg(feature = "jemalloc")))]
impl Profiler<tikv_jemallocator::Jemalloc> {
    /// Profiles jemalloc (feature `jemalloc`); snapshots then also record jemalloc's own figures.
    pub const fn jemalloc() -> Self {
        Profiler::new(tikv_jemallocator::Jemalloc)
    }
}

impl<A: GlobalAlloc> Profiler<A> {
    /// Profiles `inner`, for example `tikv_jemallocator::Jemalloc`.
    pub const fn new(inner: A) -> Self {
        Profiler {
            inner,
            request: Request::DEFAULT,
        }
    }

    /// Samples instead of tracking every block: on average one sample per `mean_bytes` allocated
    /// (512 KiB is a good start for production), as Go's and jemalloc's heap profilers do. Only
    /// sampled blocks have their stack captured; each stands for the blocks and bytes it represents
    /// in its site's counters (unbiased estimates). [`stats`] keeps exact totals and live figures
    /// (its peak within 64 KiB per thread). `0` means exact mode.
    ///
    /// ```ignore
    /// #[global_allocator]
    /// static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system().sampled(512 * 1024);
    /// ```
    pub const fn sampled(mut self, mean_bytes: u64) -> Self {
        self.request = self.request.sampled(mean_bytes);
        self
    }

    /// Also records how long blocks live (exact mode only): each site's summed and mean lifetime,
    /// and its own maximum of live bytes (dhat-rs's `tl`, `mb`, `mbk`), which
    /// `tracealloc export --format dhat` needs for a full DHAT profile. Costs a clock read per
    /// allocation and free: W1 about 1.6x the system allocator, against 1.5x without. The
    /// environment overrides it: `TRACEALLOC_LIFETIMES=1` turns it on in any build, `=0` off. With
    /// sampling it stays off.
    ///
    /// ```ignore
    /// #[global_allocator]
    /// static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system().lifetimes();
    /// ```
    pub const fn lifetimes(mut self) -> Self {
        self.request = self.request.with_lifetimes();
        self
    }
}

/// The current heap as a gzipped pprof `profile.proto` (feature `pprof`): Go's heap sample types
/// (`alloc_objects`, `alloc_space`, `inuse_objects`, `inuse_space`), thread names and task labels as
/// sample labels, in sampled mode the unbiased estimates with the sampling interval as the period.
/// What `go tool pprof`, Pyroscope and Parca read from a `/debug/pprof/heap` endpoint. Runs
/// untracked, and never stops the allocating threads.
#[cfg(feature = "pprof")]
#[cfg_attr(docsrs, doc(cfg(feature = "pprof")))]
pub fn pprof_heap() -> Vec<u8> {
    let snapshot = process::snapshot();
    ReentrancyGuard::untracked(|| {
        let mut out = Vec::new();
        tracealloc_snapshot::pprof::pprof(&snapshot, &mut out)
            .expect("writing to memory cannot fail");
        out
    })
}

/// What grew since `baseline` (an earlier [`snapshot`]), as a gzipped pprof profile (feature
/// `pprof`): each site's live bytes and its allocations since then, less what it had then (see
/// `model::Snapshot::growth_since`). Serve it beside [`pprof_heap`], with a baseline taken at
/// start-up, and a fleet's continuous profiler watches each process's growth. Runs untracked.
#[cfg(feature = "pprof")]
#[cfg_attr(docsrs, doc(cfg(feature = "pprof")))]
pub fn pprof_heap_growth(baseline: &Snapshot) -> Vec<u8> {
    let now = process::snapshot();
    ReentrancyGuard::untracked(|| {
        let grown = now.growth_since(baseline.as_model());
        let mut out = Vec::new();
        tracealloc_snapshot::pprof::pprof(&grown, &mut out).expect("writing to memory cannot fail");
        out
    })
}

/// Whole-process heap figures: cheap (no snapshot), callable from any thread at any time.
///
/// Totals follow dhat-rs's `HeapStats`. Exact when the program is quiescent. The peak is exact when
/// one thread allocates at a time; with several allocating at once it may miss up to 64 KiB per
/// other thread. In sampled mode a thread's peak is checked at least every 64 KiB it allocates, so
/// the peak may be up to 64 KiB per thread below the true one.
pub fn stats() -> HeapStats {
    ReentrancyGuard::untracked(|| process::REGISTRY.stats())
}

/// Sets the peak to the current live figures, to measure the peak of a phase.
pub fn reset_peak() {
    ReentrancyGuard::untracked(|| process::REGISTRY.reset_peak());
}

/// Copies every site's counters and symbolizes their stacks. Other threads keep allocating
/// meanwhile (each site's counters are read consistently). The snapshot's own memory is not counted.
pub fn snapshot() -> Snapshot {
    Snapshot(process::snapshot())
}

/// A snapshot of the heap taken by [`snapshot`] or loaded from a file: the one snapshot type of
/// the API. Everything here runs untracked (looking at a snapshot, cloning it or saving it does
/// not change the next one). The data is read through accessors; [`Snapshot::as_model`] gives the
/// plain model, whose own methods are ordinary code, tracked like yours.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot(model::Snapshot);

impl Clone for Snapshot {
    fn clone(&self) -> Self {
        ReentrancyGuard::untracked(|| Snapshot(self.0.clone()))
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // Its blocks were made untracked; freeing them is untracked too.
        let model = std::mem::replace(&mut self.0, model::Snapshot::empty());
        ReentrancyGuard::untracked(|| drop(model));
    }
}

impl Snapshot {
    /// The `n` largest groups by live bytes.
    pub fn top(&self, n: usize, by: GroupBy) -> Vec<Stat> {
        ReentrancyGuard::untracked(|| self.0.top(n, by))
    }

    /// All groups, largest live bytes first.
    pub fn statistics(&self, by: GroupBy) -> Vec<Stat> {
        ReentrancyGuard::untracked(|| self.0.statistics(by))
    }

    /// All groups, largest first by `sort`.
    pub fn statistics_sorted(&self, by: GroupBy, sort: Metric) -> Vec<Stat> {
        ReentrancyGuard::untracked(|| self.0.statistics_sorted(by, sort))
    }

    /// All groups of each thread, by thread index.
    pub fn statistics_per_thread(&self, by: GroupBy) -> Vec<Vec<Stat>> {
        ReentrancyGuard::untracked(|| self.0.statistics_per_thread(by))
    }

    /// Compares this (newer) snapshot with an `older` one.
    pub fn diff<'a>(&'a self, older: &'a Snapshot) -> SnapshotDiff<'a> {
        SnapshotDiff(self.0.diff(&older.0))
    }

    /// A copy keeping the sites the filters select (see [`Filter`]).
    pub fn filter(&self, filters: &[Filter]) -> Snapshot {
        ReentrancyGuard::untracked(|| Snapshot(self.0.filter(filters)))
    }

    /// Folded stacks (`root;...;leaf value`), for flamegraph renderers.
    pub fn folded(&self, options: &model::FoldOptions) -> Vec<String> {
        ReentrancyGuard::untracked(|| self.0.folded(options))
    }

    /// Differential folded stacks (`root;...;leaf old new`) against an `older` snapshot.
    pub fn folded_diff(&self, older: &Snapshot, options: &model::FoldOptions) -> Vec<String> {
        ReentrancyGuard::untracked(|| self.0.folded_diff(&older.0, options))
    }

    /// Writes the snapshot to a file (atomically: a temporary file renamed into place).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), SaveError> {
        ReentrancyGuard::untracked(|| self.0.save(path))
    }

    /// Reads a snapshot file.
    pub fn load(path: impl AsRef<Path>) -> Result<Snapshot, LoadError> {
        ReentrancyGuard::untracked(|| model::Snapshot::load(path).map(Snapshot))
    }

    /// Where and when it was taken, and how stacks were captured.
    pub fn meta(&self) -> &model::Metadata {
        &self.0.meta
    }

    /// Whole-process figures at the moment it was taken.
    pub fn totals(&self) -> &HeapStats {
        &self.0.totals
    }

    /// The profiler's own cost and the outcome of its captures.
    pub fn profiler(&self) -> &model::ProfilerFigures {
        &self.0.profiler
    }

    /// The threads that allocated.
    pub fn threads(&self) -> &[model::ThreadInfo] {
        &self.0.threads
    }

    /// Memory over time, oldest first: the peak is among the points, this snapshot's moment last.
    pub fn timeline(&self) -> &[model::TimePoint] {
        &self.0.timeline
    }

    /// Every (stack, thread) site's counters.
    pub fn sites(&self) -> &[model::Site] {
        &self.0.sites
    }

    /// The model: the same data, with the model crate's methods (which allocate as ordinary,
    /// tracked code).
    pub fn as_model(&self) -> &model::Snapshot {
        &self.0
    }

    /// The model, to keep without the wrapper (its blocks were made untracked; freeing them later
    /// counts as freeing untracked blocks, which the profiler tells apart).
    pub fn into_inner(self) -> model::Snapshot {
        let mut this = std::mem::ManuallyDrop::new(self);
        std::mem::replace(&mut this.0, model::Snapshot::empty())
    }
}

impl From<model::Snapshot> for Snapshot {
    fn from(snapshot: model::Snapshot) -> Self {
        Snapshot(snapshot)
    }
}

/// A newer snapshot compared with an older one.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotDiff<'a>(model::SnapshotDiff<'a>);

impl SnapshotDiff<'_> {
    /// The `n` groups whose live bytes changed most.
    pub fn top(&self, n: usize, by: GroupBy) -> Vec<StatDiff> {
        ReentrancyGuard::untracked(|| self.0.top(n, by))
    }

    /// Every group of either snapshot, largest absolute change first.
    pub fn statistics(&self, by: GroupBy) -> Vec<StatDiff> {
        ReentrancyGuard::untracked(|| self.0.statistics(by))
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "snapshot of {}: {} sites",
            self.0.meta,
            self.0.sites.len()
        )
    }
}
