//! **tracealloc**: an exact, fast, thread-safe allocation profiler for Rust, in the spirit of
//! Python's `tracemalloc`. Every allocation is charged to its call stack and thread; snapshots,
//! taken at any moment from any thread without stopping the others, are grouped, compared, saved,
//! and read with the `tracealloc` CLI (crate `tracealloc-cli`). Linux, x86_64 (aarch64:
//! frame-pointer capture only).
//!
//! # The five-minute tour
//!
//! 1. **Add the line.** With `tracealloc = "0.1"` in `[dependencies]`, make the [`Profiler`] the
//!    program's global allocator: the first two lines of the program below. Nothing else is
//!    needed: from the first allocation on, every block is charged to its call stack and thread.
//! 2. **Take a snapshot** with [`snapshot()`], from any thread, at any moment: every site's
//!    counters, with symbolized stacks. [`stats()`] gives the whole-process figures, cheaply.
//! 3. **Print the top 10 by line** with [`Snapshot::top`] and [`GroupBy::Line`]: each
//!    allocation is charged to the first frame outside the standard library, so `Vec::push` growth
//!    is charged to the line that pushed. [`GroupBy`] lists the other groupings (function, file,
//!    stack, thread, task label).
//! 4. **Diff two snapshots to find a leak**: [`Snapshot::diff`] ranks the lines by how much their
//!    live memory changed. What a program keeps per request stands out; what it frees does not.
//! 5. **Save a file and read it with the CLI**: [`Snapshot::save`], then `tracealloc top`,
//!    `tracealloc diff`, `tracealloc flamegraph` on the file; [`Snapshot::load`] reads it back.
//!
//! The program: a request handler that keeps a 4 KiB buffer per request in a cache nobody trims.
//!
//! ```rust
//! #[global_allocator]
//! static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();
//!
//! use tracealloc::GroupBy;
//!
//! fn handle(cache: &mut Vec<Vec<u8>>) {
//!     let scratch = vec![0u8; 1024]; // freed at the end of the request
//!     cache.push(vec![0u8; 4096]); // kept forever: the leak
//!     drop(scratch);
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut cache = Vec::with_capacity(2_000);
//!     for _ in 0..100 {
//!         handle(&mut cache);
//!     }
//!     // 2. A snapshot after 100 requests, and another after 1,000 more.
//!     let before = tracealloc::snapshot();
//!     for _ in 0..1_000 {
//!         handle(&mut cache);
//!     }
//!     let after = tracealloc::snapshot();
//!
//!     // 3. The 10 lines holding the most live memory. The first keeps 1,100 blocks of 4 KiB:
//!     //    src/main.rs:8: live 4.30 MiB in 1100 blocks, total 4.30 MiB in 1100 blocks
//!     for stat in after.top(10, GroupBy::Line) {
//!         println!("{stat}");
//!     }
//!     let top = &after.top(1, GroupBy::Line)[0];
//!     assert_eq!((top.live_bytes, top.live_blocks), (1_100 * 4096, 1_100));
//!
//!     // 4. What grew in between: the leaking line, by 1,000 blocks. The scratch buffers' line
//!     //    allocated as much again, but freed it: its live memory did not change.
//!     //    src/main.rs:8: live 4.30 MiB (+3.91 MiB) in 1,100 blocks (+1,000)
//!     let growth = after.diff(&before).top(10, GroupBy::Line);
//!     println!("{}", growth[0]);
//!     assert_eq!((growth[0].bytes_diff, growth[0].blocks_diff), (1_000 * 4096, 1_000));
//!
//!     // The whole process's figures, exact at any moment and much cheaper than a snapshot.
//!     let stats = tracealloc::stats();
//!     assert!(stats.live_bytes >= 1_100 * 4096 && stats.peak_bytes >= stats.live_bytes);
//!
//!     // 5. Files for the CLI, written whole or not at all, read back as they were.
//!     let dir = std::env::temp_dir();
//!     let pid = std::process::id();
//!     before.save(dir.join(format!("before-{pid}.json")))?;
//!     after.save(dir.join(format!("after-{pid}.json")))?;
//!     let again = tracealloc::Snapshot::load(dir.join(format!("after-{pid}.json")))?;
//!     assert_eq!(again.top(10, GroupBy::Line), after.top(10, GroupBy::Line));
//! #   std::fs::remove_file(dir.join(format!("before-{pid}.json")))?;
//! #   std::fs::remove_file(dir.join(format!("after-{pid}.json")))?;
//!     Ok(())
//! }
//! ```
//!
//! The same, from the files (install the CLI with `cargo install tracealloc-cli`):
//!
//! ```console
//! $ tracealloc top after-1234.json -n 10
//! $ tracealloc diff before-1234.json after-1234.json -n 10
//! $ tracealloc flamegraph after-1234.json -o after.svg
//! ```
//!
//! Without touching the code beyond the line, `TRACEALLOC_OUT=leaks-{pid}.json` writes a snapshot
//! of what is still live when the program exits ([`OUT_ENV`] and the other environment variables).
//!
//! 6. **Sampled mode, for production**: [`Profiler::sampled`] captures a stack for about one
//!    block per 512 KiB allocated, instead of every block (1.0x to 1.3x the system allocator's
//!    time). Each sampled block stands for the bytes and blocks it represents, so the sites'
//!    figures are unbiased estimates, given with their standard errors
//!    ([`Stat::standard_errors`]); [`stats()`] stays exact.
//!
//! ```rust
//! #[global_allocator]
//! static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system().sampled(512 * 1024);
//!
//! use tracealloc::{GroupBy, model::human_bytes};
//!
//! fn main() {
//!     let kept: Vec<Vec<u8>> = (0..64).map(|_| vec![7u8; 1 << 20]).collect(); // 64 MiB
//!
//!     // The whole-process figures stay exact.
//!     assert!(tracealloc::stats().live_bytes >= 64 << 20);
//!
//!     // A site's are estimates: 64 MiB within a few standard errors.
//!     let snapshot = tracealloc::snapshot();
//!     let mean = snapshot.meta().capture.sampling_bytes;
//!     assert_eq!(mean, 512 * 1024);
//!     let top = &snapshot.top(1, GroupBy::Line)[0];
//!     let error = top.standard_errors(mean).unwrap().live_bytes;
//!     println!("{}: {} ± {}", top.key, human_bytes(top.live_bytes), human_bytes(error));
//!     assert!(top.live_bytes.abs_diff(64 << 20) <= 4 * error);
//!     drop(kept);
//! }
//! ```
//!
//! # Speed
//!
//! Build with frame pointers (`RUSTFLAGS="-C force-frame-pointers=yes"`, or `rustflags` in
//! `.cargo/config.toml`) for fast stack capture, and in debug builds give the profiler
//! optimization (`[profile.dev.package.tracealloc] opt-level = 3`). Without frame pointers the
//! profiler detects it, says so once on stderr and unwinds with DWARF information instead.
//!
//! # More
//!
//! - [`measure`](mod@measure): exact figures of one piece of code on its thread, and assertions
//!   on them for tests ([`assert_max_allocations!`], [`assert_no_leaks!`],
//!   [`assert_baseline!`], ...).
//! - Task labels: [`labeled`] futures and [`with_label`] charge allocations to a label as well
//!   ([`GroupBy::Label`]), across the threads that poll them.
//! - [`model`]: the snapshot model, file format and analysis, usable without the allocator (what
//!   the CLI reads files with). [`Snapshot::as_model`] gives a snapshot's model.
//!
//! Features:
//!
//! - `pprof`: [`pprof_heap`](fn.pprof_heap.html) and
//!   [`pprof_heap_growth`](fn.pprof_heap_growth.html), the live heap as a gzipped pprof profile
//!   for a `/debug/pprof/heap` endpoint (`go tool pprof`, Pyroscope, Parca).
//! - `tracing`: [`LabelLayer`](struct.LabelLayer.html), which charges allocations made inside a
//!   `tracing` span to the span's name.
//! - `jemalloc`: [`Profiler::jemalloc`](struct.Profiler.html#method.jemalloc) and
//!   [`Jemalloc`](struct.Jemalloc.html), profiling over jemalloc, with its own
//!   figures in every snapshot.

#![cfg_attr(docsrs, feature(doc_cfg))]
// Under `--cfg loom` the crate is empty: the loom models (`tests/loom.rs`) compile the files they
// check themselves, with loom's atomics, which have no `const` constructor for the statics here.
#![cfg(not(loom))]

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
mod switch;
mod sys;

use std::alloc::{GlobalAlloc, System};
use std::fmt;
use std::path::Path;

pub use config::{CAPTURE_AT_START_ENV, LISTEN_ENV};
pub use config::{
    CAPTURE_ENV, DEFAULT_MAX_STACKS, DEPTH_ENV, EXIT_NOTICE_ENV, INTERVAL_ENV, KEEP_ENV,
    LIFETIMES_ENV, MAX_STACKS_ENV, OUT_ENV, REALLOC_ENV, SAMPLE_ENV, SEED_ENV, SYMBOLIZE_ENV,
};
#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub use labels::LabelLayer;
pub use labels::{Labeled, labeled, with_label};
pub use measure::{Measurement, measure, measure_future, measure_scoped, measure_with};
pub use switch::{
    capturing, sampling_interval, set_sampling_interval, start_capture, stop_capture,
};
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
/// charges every block to its call stack and thread. Install it with `#[global_allocator]`
/// ([`Profiler::system`]); the [crate's tour](crate#the-five-minute-tour) is a complete program.
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
    /// Profiles the system allocator: the one line a program needs. The
    /// [crate's tour](crate#the-five-minute-tour) runs a program with it.
    ///
    /// ```no_run
    /// #[global_allocator]
    /// static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();
    ///
    /// fn main() {
    ///     let kept = vec![0u8; 4096];
    ///     assert!(tracealloc::stats().live_bytes >= 4096);
    ///     # drop(kept);
    /// }
    /// ```
    pub const fn system() -> Self {
        Profiler {
            inner: System,
            request: Request::DEFAULT,
        }
    }
}

/// jemalloc as the inner allocator (feature `jemalloc`), to name the profiler's type:
/// `static ALLOC: tracealloc::Profiler<tracealloc::Jemalloc> = tracealloc::Profiler::jemalloc();`
/// (see [`Profiler::jemalloc`]).
#[cfg(feature = "jemalloc")]
#[cfg_attr(docsrs, doc(cfg(feature = "jemalloc")))]
pub use tikv_jemallocator::Jemalloc;

#[cfg(feature = "jemalloc")]
#[cfg_attr(docsrs, doc(cfg(feature = "jemalloc")))]
impl Profiler<tikv_jemallocator::Jemalloc> {
    /// Profiles jemalloc (feature `jemalloc`); snapshots then also record jemalloc's own figures
    /// ([`Snapshot::meta`]`.allocator`: allocated, active, resident, mapped, retained, metadata).
    ///
    /// ```
    /// #[global_allocator]
    /// static ALLOC: tracealloc::Profiler<tracealloc::Jemalloc> = tracealloc::Profiler::jemalloc();
    ///
    /// fn main() {
    ///     let kept = vec![1u8; 1 << 20];
    ///     let snapshot = tracealloc::snapshot();
    ///     let jemalloc = snapshot.meta().allocator.as_ref().expect("jemalloc's own figures");
    ///     assert_eq!(jemalloc.name, "jemalloc");
    ///     assert!(jemalloc.allocated >= 1 << 20 && jemalloc.resident >= jemalloc.allocated);
    ///     drop(kept);
    /// }
    /// ```
    pub const fn jemalloc() -> Self {
        Profiler::new(tikv_jemallocator::Jemalloc)
    }
}

impl<A: GlobalAlloc> Profiler<A> {
    /// Profiles `inner`, any `GlobalAlloc` with a `const` constructor: `Profiler::new(System)` is
    /// [`Profiler::system`], `Profiler::new(tikv_jemallocator::Jemalloc)` is
    /// `Profiler::jemalloc()` without its figures, or your own allocator. The example on
    /// [`snapshot()`] runs with it.
    ///
    /// ```no_run
    /// use std::alloc::System;
    ///
    /// #[global_allocator]
    /// static ALLOC: tracealloc::Profiler<System> = tracealloc::Profiler::new(System);
    /// # fn main() {}
    /// ```
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
    /// (its peak within 64 KiB per thread). `0` means exact mode. `TRACEALLOC_SAMPLE`
    /// ([`SAMPLE_ENV`]) overrides it without a rebuild. The
    /// [crate's tour](crate#the-five-minute-tour) (step 6) runs a sampled program and reads its
    /// estimates with their standard errors.
    ///
    /// ```no_run
    /// #[global_allocator]
    /// static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system().sampled(512 * 1024);
    ///
    /// fn main() {
    ///     let snapshot = tracealloc::snapshot();
    ///     assert_eq!(snapshot.meta().capture.sampling_bytes, 512 * 1024);
    /// }
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
    /// ```
    /// #[global_allocator]
    /// static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system().lifetimes();
    ///
    /// use tracealloc::GroupBy;
    ///
    /// fn main() {
    ///     for _ in 0..250 {
    ///         std::hint::black_box(vec![0u8; 100]); // lives a few microseconds at most
    ///     }
    ///     let snapshot = tracealloc::snapshot();
    ///     assert!(snapshot.meta().capture.lifetimes);
    ///     let line = snapshot
    ///         .statistics(GroupBy::Line)
    ///         .into_iter()
    ///         .find(|s| s.total_blocks == 250)
    ///         .unwrap();
    ///     // Its blocks' own maximum: one live block of 100 bytes at a time.
    ///     assert_eq!((line.max_bytes, line.max_blocks), (100, 1));
    ///     println!("mean lifetime: {:?} µs", line.mean_lifetime_us());
    ///     assert!(line.mean_lifetime_us().is_some());
    /// }
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
///
/// ```
/// #[global_allocator]
/// static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();
///
/// fn main() {
///     let start = tracealloc::snapshot(); // the baseline, at start-up
///     let kept = vec![1u8; 1 << 20];
///
///     // What a `GET /debug/pprof/heap` handler answers, and `/debug/pprof/heap?growth`:
///     let heap: Vec<u8> = tracealloc::pprof_heap();
///     let growth: Vec<u8> = tracealloc::pprof_heap_growth(&start);
///     for profile in [&heap, &growth] {
///         assert_eq!(profile[..2], [0x1f, 0x8b]); // gzip, as `go tool pprof` reads it
///     }
///     drop(kept);
/// }
/// ```
#[cfg(feature = "pprof")]
#[cfg_attr(docsrs, doc(cfg(feature = "pprof")))]
pub fn pprof_heap() -> Vec<u8> {
    // Symbolized here unless `TRACEALLOC_SYMBOLIZE=later`: then raw, with mappings and build IDs
    // for the reader to symbolize (a continuous profiler with the binaries' debug files).
    let snapshot = process::snapshot_to_write(false);
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
///
/// The example on [`pprof_heap`] runs it; in a program whose global allocator is the profiler:
///
/// ```no_run
/// let start = tracealloc::snapshot();
/// let leak = Box::leak(vec![0u8; 1 << 20].into_boxed_slice());
/// // Go's profiler shows 1 MiB in use at the line above, and nothing older.
/// std::fs::write("growth.pb.gz", tracealloc::pprof_heap_growth(&start))?;
/// # let _ = leak;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// (`go tool pprof -top growth.pb.gz` reads the file.)
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
///
/// With [`reset_peak`] and the capture switch ([`stop_capture`], [`capturing`],
/// [`start_capture`]): what the control socket's `stats`, `reset-peak`, `stop` and `start` do.
///
/// ```
/// #[global_allocator]
/// static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();
///
/// use tracealloc::{GroupBy, model::CAPTURE_OFF_FRAME};
///
/// fn main() {
///     let before = tracealloc::stats();
///     let kept = vec![0u8; 1 << 20];
///     let after = tracealloc::stats();
///     assert_eq!(after.live_bytes - before.live_bytes, 1 << 20);
///     assert_eq!(after.total_blocks - before.total_blocks, 1);
///     assert!(after.peak_bytes >= after.live_bytes);
///     drop(kept);
///
///     // The peak of a phase: 8 MiB at start-up, then a phase whose peak is 1 MiB above its start.
///     drop(vec![0u8; 8 << 20]);
///     tracealloc::reset_peak();
///     let start = tracealloc::stats();
///     assert_eq!(start.peak_bytes, start.live_bytes);
///     drop(vec![0u8; 1 << 20]);
///     assert_eq!(tracealloc::stats().peak_bytes - start.live_bytes, 1 << 20);
///
///     // Capture off: still counted, charged to one site per thread without its stack.
///     tracealloc::stop_capture();
///     assert!(!tracealloc::capturing());
///     let uncaptured = vec![0u8; 3000];
///     tracealloc::start_capture();
///     assert!(tracealloc::capturing());
///     assert_eq!(tracealloc::stats().live_bytes - start.live_bytes, 3000);
///     let by_function = tracealloc::snapshot().statistics(GroupBy::Function);
///     let off = by_function.iter().find(|s| s.key == CAPTURE_OFF_FRAME).unwrap();
///     assert_eq!((off.live_bytes, off.live_blocks), (3000, 1));
///     drop(uncaptured);
/// }
/// ```
///
/// (Exact when nothing else allocates meanwhile: other threads' blocks count too.)
pub fn stats() -> HeapStats {
    ReentrancyGuard::untracked(|| process::REGISTRY.stats())
}

/// Sets the peak to the current live figures, to measure the peak of a phase. The example on
/// [`stats()`] runs it; in a program whose global allocator is the profiler:
///
/// ```no_run
/// drop(vec![0u8; 8 << 20]); // start-up: a peak of 8 MiB or more
/// tracealloc::reset_peak();
/// let start = tracealloc::stats();
/// drop(vec![0u8; 1 << 20]); // the phase: a peak of 1 MiB above the start
/// let phase = tracealloc::stats();
/// assert_eq!(phase.peak_bytes - start.live_bytes, 1 << 20);
/// ```
pub fn reset_peak() {
    ReentrancyGuard::untracked(|| process::REGISTRY.reset_peak());
}

/// Copies every site's counters and symbolizes their stacks. Other threads keep allocating
/// meanwhile (each site's counters are read consistently). The snapshot's own memory is not counted.
///
/// The [crate's tour](crate#the-five-minute-tour) groups, compares and saves snapshots; here, the
/// live memory of each thread:
///
/// ```
/// use std::alloc::System;
///
/// #[global_allocator] // `Profiler::system()`, written out: any inner allocator
/// static ALLOC: tracealloc::Profiler<System> = tracealloc::Profiler::new(System);
///
/// use tracealloc::GroupBy;
///
/// fn main() {
///     let worker = std::thread::Builder::new()
///         .name("worker".into())
///         .spawn(|| Box::leak(vec![0u8; 1 << 20].into_boxed_slice()).len())
///         .unwrap();
///     worker.join().unwrap();
///     let snapshot = tracealloc::snapshot();
///     let by_thread = snapshot.statistics(GroupBy::Thread);
///     let worker = by_thread.iter().find(|s| s.key == "worker").unwrap();
///     assert_eq!((worker.live_bytes, worker.live_blocks), (1 << 20, 1));
///     println!("{snapshot}"); // snapshot of pid 4242 (./target/debug/app): 57 sites
/// }
/// ```
pub fn snapshot() -> Snapshot {
    Snapshot(process::snapshot())
}

/// A snapshot of the heap taken by [`snapshot`] or loaded from a file: the one snapshot type of
/// the API. Everything here runs untracked (looking at a snapshot, cloning it or saving it does
/// not change the next one). The data is read through accessors; [`Snapshot::as_model`] gives the
/// plain model, whose own methods are ordinary code, tracked like yours.
///
/// The examples of its methods build small snapshots with `snapshot_of(&[(function, "file:line",
/// live blocks, total blocks)])`, hidden in them: a site of 1 KiB blocks on the main thread per
/// line, built as the [model's examples](model::Snapshot) show, then made one of these with
/// [`Snapshot::from`]. [`snapshot()`] takes real ones.
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
    /// The `n` largest groups by live bytes
    /// ([`GroupBy`] lists the groupings), as `tracealloc top` prints them.
    ///
    /// ```
    /// use tracealloc::GroupBy;
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    ///
    /// // src/cache.rs:12 keeps 4 blocks of 1 KiB; src/parse.rs:30 allocated 20 and keeps 1.
    /// let snapshot = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 4, 4),
    ///     ("app::parse", "src/parse.rs:30", 1, 20),
    /// ]);
    /// let top = snapshot.top(10, GroupBy::Line);
    /// assert_eq!(top[0].key, "src/cache.rs:12");
    /// assert_eq!((top[0].live_bytes, top[0].live_blocks), (4096, 4));
    /// assert_eq!(
    ///     top[0].to_string(),
    ///     "src/cache.rs:12: live 4 KiB in 4 blocks, total 4 KiB in 4 blocks"
    /// );
    /// assert_eq!(snapshot.top(1, GroupBy::Function)[0].key, "app::cache");
    /// ```
    pub fn top(&self, n: usize, by: GroupBy) -> Vec<Stat> {
        ReentrancyGuard::untracked(|| self.0.top(n, by))
    }

    /// All groups, largest live bytes first.
    ///
    /// ```
    /// use tracealloc::GroupBy;
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    ///
    /// let snapshot = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 4, 4),
    ///     ("app::parse", "src/parse.rs:30", 1, 20),
    /// ]);
    /// let files: Vec<(String, u64)> = snapshot
    ///     .statistics(GroupBy::File)
    ///     .into_iter()
    ///     .map(|s| (s.key, s.live_bytes))
    ///     .collect();
    /// assert_eq!(files, [("src/cache.rs".to_owned(), 4096), ("src/parse.rs".to_owned(), 1024)]);
    /// ```
    pub fn statistics(&self, by: GroupBy) -> Vec<Stat> {
        ReentrancyGuard::untracked(|| self.0.statistics(by))
    }

    /// All groups, largest first by `sort`.
    ///
    /// By bytes allocated, the churn:
    ///
    /// ```
    /// use tracealloc::{GroupBy, Metric};
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    ///
    /// let snapshot = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 4, 4),
    ///     ("app::parse", "src/parse.rs:30", 1, 20),
    /// ]);
    /// let churn = snapshot.statistics_sorted(GroupBy::Line, Metric::TotalBytes);
    /// assert_eq!(churn[0].key, "src/parse.rs:30");
    /// assert_eq!((churn[0].total_bytes, churn[0].total_blocks), (20 * 1024, 20));
    /// ```
    pub fn statistics_sorted(&self, by: GroupBy, sort: Metric) -> Vec<Stat> {
        ReentrancyGuard::untracked(|| self.0.statistics_sorted(by, sort))
    }

    /// All groups of each thread, by thread index.
    ///
    /// ```
    /// use tracealloc::GroupBy;
    /// use tracealloc::model::ThreadInfo;
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    ///
    /// let snapshot = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 4, 4),
    ///     ("app::parse", "src/parse.rs:30", 1, 20),
    /// ]);
    /// // The second line's blocks were allocated by a thread named `worker`.
    /// let mut model = snapshot.into_inner();
    /// model.threads.push(ThreadInfo::new("worker", 2, true));
    /// model.sites[1].thread = 1;
    /// let snapshot = tracealloc::Snapshot::from(model);
    ///
    /// let per_thread = snapshot.statistics_per_thread(GroupBy::Line);
    /// assert_eq!(snapshot.threads()[1].name, "worker");
    /// assert_eq!(per_thread[1][0].key, "src/parse.rs:30");
    /// assert_eq!(per_thread[0].len(), 1); // main: src/cache.rs:12 only
    /// ```
    pub fn statistics_per_thread(&self, by: GroupBy) -> Vec<Vec<Stat>> {
        ReentrancyGuard::untracked(|| self.0.statistics_per_thread(by))
    }

    /// Compares this (newer) snapshot with an `older` one.
    /// Groups are matched by their keys (symbols, never addresses), so the two may come from
    /// two runs of the program.
    ///
    /// ```
    /// use tracealloc::GroupBy;
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    ///
    /// let before = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 4, 4),
    ///     ("app::parse", "src/parse.rs:30", 1, 20),
    /// ]);
    /// let after = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 104, 104), // kept 100 more blocks: the leak
    ///     ("app::parse", "src/parse.rs:30", 1, 120),   // allocated 100 more, freed them
    /// ]);
    /// let growth = after.diff(&before).top(10, GroupBy::Line);
    /// assert_eq!(growth[0].key, "src/cache.rs:12");
    /// assert_eq!((growth[0].bytes_diff, growth[0].blocks_diff), (100 * 1024, 100));
    /// assert_eq!(
    ///     growth[0].to_string(),
    ///     "src/cache.rs:12: live 104 KiB (+100 KiB) in 104 blocks (+100)"
    /// );
    /// assert_eq!((growth[1].bytes_diff, growth[1].total_bytes_diff), (0, 100 * 1024));
    /// ```
    pub fn diff<'a>(&'a self, older: &'a Snapshot) -> SnapshotDiff<'a> {
        SnapshotDiff(self.0.diff(&older.0))
    }

    /// A copy keeping the sites the filters select (see [`Filter`]).
    /// Patterns are globs matched against the allocating frame's function, file and
    /// `file:line` ([`Filter::all_frames`]: any frame of the stack).
    ///
    /// ```
    /// use tracealloc::{Filter, GroupBy};
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    ///
    /// let snapshot = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 4, 4),
    ///     ("app::parse", "src/parse.rs:30", 1, 20),
    /// ]);
    /// let cache_only = snapshot.filter(&[Filter::include("src/cache.rs")]);
    /// assert_eq!(cache_only.top(10, GroupBy::Line).len(), 1);
    /// let not_parse = snapshot.filter(&[Filter::exclude("app::parse*")]);
    /// assert_eq!(not_parse.top(10, GroupBy::Line)[0].key, "src/cache.rs:12");
    /// assert_eq!(not_parse.sites().len(), 1);
    /// // Totals stay those of the whole process.
    /// assert_eq!(not_parse.totals(), snapshot.totals());
    /// ```
    pub fn filter(&self, filters: &[Filter]) -> Snapshot {
        ReentrancyGuard::untracked(|| Snapshot(self.0.filter(filters)))
    }

    /// Folded stacks (`root;...;leaf value`), for flamegraph renderers.
    /// [`model::FoldOptions`] chooses the figure ([`Metric`]), thread or label roots, and
    /// which frames are kept.
    ///
    /// ```
    /// use tracealloc::Metric;
    /// use tracealloc::model::FoldOptions;
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    ///
    /// let snapshot = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 4, 4),
    ///     ("app::parse", "src/parse.rs:30", 1, 20),
    /// ]);
    /// let live = snapshot.folded(&FoldOptions::default());
    /// assert_eq!(live, [
    ///     "app::cache (src/cache.rs:12) 4096",
    ///     "app::parse (src/parse.rs:30) 1024",
    /// ]);
    /// let mut by_thread = FoldOptions::default();
    /// (by_thread.metric, by_thread.by_thread) = (Metric::TotalBlocks, true);
    /// assert_eq!(snapshot.folded(&by_thread)[1], "main;app::parse (src/parse.rs:30) 20");
    /// ```
    pub fn folded(&self, options: &model::FoldOptions) -> Vec<String> {
        ReentrancyGuard::untracked(|| self.0.folded(options))
    }

    /// Differential folded stacks (`root;...;leaf old new`) against an `older` snapshot.
    /// (`flamegraph.pl --negate` and inferno's `--diff` draw them).
    ///
    /// ```
    /// use tracealloc::model::FoldOptions;
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    ///
    /// let before = snapshot_of(&[("app::cache", "src/cache.rs:12", 4, 4)]);
    /// let after = snapshot_of(&[("app::cache", "src/cache.rs:12", 104, 104)]);
    /// let folded = after.folded_diff(&before, &FoldOptions::default());
    /// assert_eq!(folded, ["app::cache (src/cache.rs:12) 4096 106496"]);
    /// ```
    pub fn folded_diff(&self, older: &Snapshot, options: &model::FoldOptions) -> Vec<String> {
        ReentrancyGuard::untracked(|| self.0.folded_diff(&older.0, options))
    }

    /// Writes the snapshot to a file (atomically: a temporary file renamed into place).
    /// The `tracealloc` CLI reads the file (`tracealloc top FILE`), and so does
    /// [`Snapshot::load`].
    ///
    /// ```
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    /// let snapshot = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 4, 4),
    ///     ("app::parse", "src/parse.rs:30", 1, 20),
    /// ]);
    /// let path = std::env::temp_dir().join(format!("app-{}.json", std::process::id()));
    /// snapshot.save(&path)?;
    /// let again = tracealloc::Snapshot::load(&path)?;
    /// assert_eq!(again, snapshot);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), SaveError> {
        ReentrancyGuard::untracked(|| self.0.save(path))
    }

    /// Reads a snapshot file.
    /// A file that cannot be read gets an error naming the file and the problem, in one line.
    ///
    /// ```
    /// use tracealloc::GroupBy;
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    ///
    /// let path = std::env::temp_dir().join(format!("missing-{}.json", std::process::id()));
    /// let error = tracealloc::Snapshot::load(&path).unwrap_err();
    /// assert_eq!(error.to_string(), format!("{}: cannot read", path.display()));
    ///
    /// let path = std::env::temp_dir().join(format!("app-{}.json", std::process::id()));
    /// snapshot_of(&[("app::cache", "src/cache.rs:12", 4, 4)]).save(&path)?;
    /// let snapshot = tracealloc::Snapshot::load(&path)?;
    /// assert_eq!(snapshot.top(1, GroupBy::Line)[0].live_bytes, 4096);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Snapshot, LoadError> {
        ReentrancyGuard::untracked(|| model::Snapshot::load(path).map(Snapshot))
    }

    /// Where and when it was taken, and how stacks were captured.
    ///
    /// ```
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    /// let snapshot = snapshot_of(&[("app::cache", "src/cache.rs:12", 4, 4)]);
    /// let meta = snapshot.meta();
    /// assert_eq!((meta.pid, meta.command.as_slice()), (1, ["app".to_owned()].as_slice()));
    /// assert_eq!(meta.capture.method, "frame-pointers");
    /// assert_eq!(meta.capture.sampling_bytes, 0); // exact mode
    /// ```
    pub fn meta(&self) -> &model::Metadata {
        &self.0.meta
    }

    /// Whole-process figures at the moment it was taken.
    /// (Its sites' sum, [`model::Snapshot::site_sum`], leaves out what was allocated before
    /// stacks could be captured, and what a filter dropped.)
    ///
    /// ```
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    /// let snapshot = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 4, 4),
    ///     ("app::parse", "src/parse.rs:30", 1, 20),
    /// ]);
    /// let totals = snapshot.totals();
    /// assert_eq!((totals.live_bytes, totals.live_blocks), (5 * 1024, 5));
    /// assert_eq!(totals.total_blocks, 24);
    /// ```
    pub fn totals(&self) -> &HeapStats {
        &self.0.totals
    }

    /// The profiler's own cost and the outcome of its captures.
    ///
    /// ```
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    /// let snapshot = snapshot_of(&[("app::cache", "src/cache.rs:12", 4, 4)]);
    /// let profiler = snapshot.profiler();
    /// // A real snapshot: the profiler's own memory, and every capture's outcome.
    /// println!("own memory: {} bytes", profiler.own_bytes);
    /// assert_eq!(profiler.captures.broken, 0);
    /// ```
    pub fn profiler(&self) -> &model::ProfilerFigures {
        &self.0.profiler
    }

    /// The threads that allocated.
    ///
    /// ```
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    /// let snapshot = snapshot_of(&[("app::cache", "src/cache.rs:12", 4, 4)]);
    /// let main = &snapshot.threads()[snapshot.sites()[0].thread as usize];
    /// assert_eq!((main.name.as_str(), main.alive, main.threads), ("main", true, 1));
    /// ```
    pub fn threads(&self) -> &[model::ThreadInfo] {
        &self.0.threads
    }

    /// Memory over time, oldest first: the peak is among the points, this snapshot's moment last.
    ///
    /// ```
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    /// let snapshot = snapshot_of(&[("app::cache", "src/cache.rs:12", 4, 4)]);
    /// let peak = snapshot.timeline().iter().max_by_key(|p| p.live_bytes);
    /// assert!(peak.is_none()); // built in code, it has none (`tracealloc timeline` draws one)
    /// ```
    pub fn timeline(&self) -> &[model::TimePoint] {
        &self.0.timeline
    }

    /// Every (stack, thread) site's counters.
    /// A site is one stack on one thread (and one task label); [`Snapshot::top`] and the other
    /// statistics group them.
    ///
    /// ```
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    /// let snapshot = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 4, 4),
    ///     ("app::parse", "src/parse.rs:30", 1, 20),
    /// ]);
    /// let site = &snapshot.sites()[1];
    /// assert_eq!((site.live_blocks, site.total_blocks, site.label.as_deref()), (1, 20, None));
    /// let model = snapshot.as_model();
    /// let frames: Vec<String> = model.stack_frames(site.stack).map(|f| f.label()).collect();
    /// assert_eq!(frames, ["app::parse (src/parse.rs:30)"]);
    /// ```
    pub fn sites(&self) -> &[model::Site] {
        &self.0.sites
    }

    /// The model: the same data, with the model crate's methods (which allocate as ordinary,
    /// tracked code).
    ///
    /// ```
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    /// let snapshot = snapshot_of(&[("app::cache", "src/cache.rs:12", 4, 4)]);
    /// let model: &tracealloc::model::Snapshot = snapshot.as_model();
    /// assert_eq!(model.frames[0].function, "app::cache");
    /// assert_eq!(model.site_sum().live_bytes, 4096);
    /// ```
    pub fn as_model(&self) -> &model::Snapshot {
        &self.0
    }

    /// The model, to keep without the wrapper (its blocks were made untracked; freeing them later
    /// counts as freeing untracked blocks, which the profiler tells apart).
    ///
    /// ```
    /// use tracealloc::GroupBy;
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    ///
    /// let snapshot = snapshot_of(&[("app::cache", "src/cache.rs:12", 4, 4)]);
    /// let mut model = snapshot.into_inner();
    /// model.sites[0].label = Some("ingest".to_owned());
    /// let snapshot = tracealloc::Snapshot::from(model);
    /// assert_eq!(snapshot.top(1, GroupBy::Label)[0].key, "ingest");
    /// ```
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
    /// Ties: the larger change of blocks, then of bytes allocated, then the key.
    ///
    /// ```
    /// use tracealloc::GroupBy;
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    ///
    /// let before = snapshot_of(&[("app::cache", "src/cache.rs:12", 4, 4)]);
    /// let after = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 2, 10),
    ///     ("app::parse", "src/parse.rs:30", 3, 3),
    /// ]);
    /// let changes = after.diff(&before).top(10, GroupBy::Line);
    /// let keys: Vec<(&str, i64)> =
    ///     changes.iter().map(|d| (d.key.as_str(), d.bytes_diff)).collect();
    /// assert_eq!(keys, [("src/parse.rs:30", 3 * 1024), ("src/cache.rs:12", -2 * 1024)]);
    /// ```
    pub fn top(&self, n: usize, by: GroupBy) -> Vec<StatDiff> {
        ReentrancyGuard::untracked(|| self.0.top(n, by))
    }

    /// Every group of either snapshot, largest absolute change first.
    /// A group only in the older snapshot is there with zero figures in the newer one, and one
    /// that did not change is there with zero changes, after the others.
    ///
    /// ```
    /// use tracealloc::GroupBy;
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc::Snapshot {
    /// #     use tracealloc::model::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot.into()
    /// # }
    ///
    /// let before = snapshot_of(&[
    ///     ("app::old", "src/old.rs:1", 1, 1),
    ///     ("app::same", "src/same.rs:2", 1, 1),
    /// ]);
    /// let after = snapshot_of(&[
    ///     ("app::same", "src/same.rs:2", 1, 1),
    ///     ("app::new", "src/new.rs:3", 2, 2),
    /// ]);
    /// let changes = after.diff(&before).statistics(GroupBy::Function);
    /// let keys: Vec<(&str, u64, i64)> =
    ///     changes.iter().map(|d| (d.key.as_str(), d.live_bytes, d.bytes_diff)).collect();
    /// assert_eq!(
    ///     keys,
    ///     [("app::new", 2048, 2048), ("app::old", 0, -1024), ("app::same", 1024, 0)]
    /// );
    /// ```
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
