//! Exact allocation figures of one piece of code on the calling thread, and assertions on them
//! for tests. Other threads never count, so heap tests run in an ordinary parallel `cargo test`
//! (or cargo-nextest), with no `--test-threads=1`. In an integration test, the
//! `#[global_allocator]` line goes in the test file.
//!
//! ```
//! #[global_allocator]
//! static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();
//!
//! use std::future::Future;
//! use std::task::{Context, Poll, Waker};
//! use tracealloc::measure::Baseline;
//! use tracealloc::{Metric, assert_max_allocations, assert_max_bytes, assert_max_peak};
//! use tracealloc::{assert_no_alloc, assert_no_leaks};
//!
//! fn main() {
//!     // Exact figures of one piece of code: a block of 100 bytes, still live at its end.
//!     let (kept, m) = tracealloc::measure_with(|| vec![0u8; 100]);
//!     assert_eq!((m.allocations, m.bytes, m.live_bytes, m.live_blocks), (1, 100, 100, 1));
//!     assert_eq!(
//!         m.to_string(),
//!         "1 allocation of 100 B; live at the end: 100 B in 1 block; peak 100 B; \
//!          freed from before: 0 B in 0 blocks"
//!     );
//!     // Freeing an older block allocates nothing, and is counted apart.
//!     let m = tracealloc::measure(|| drop(kept));
//!     assert_eq!((m.allocations, m.freed_before_blocks, m.freed_before_bytes), (0, 1, 100));
//!     // Reallocs count as allocations, as dhat-rs counts them.
//!     let m = tracealloc::measure(|| {
//!         let mut v: Vec<u64> = Vec::with_capacity(4); // 32 bytes
//!         v.extend([1, 2, 3, 4, 5]); // grows: a realloc to 64 bytes
//!     });
//!     assert_eq!((m.allocations, m.bytes, m.live_blocks, m.peak_bytes), (2, 32 + 64, 0, 64));
//!     // The sites that allocated, with their stacks, for messages.
//!     let m = tracealloc::measure(|| {
//!         for _ in 0..3 {
//!             drop(vec![0u8; 10]);
//!         }
//!     });
//!     let sites = m.top_sites(5, Metric::TotalBlocks);
//!     assert!(sites.starts_with("  3 allocations, 30 B (0 B live in 0 blocks) at\n"));
//!
//!     // Assertions for tests: each returns the expression's value.
//!     let sum = assert_no_alloc!((1..=10).sum::<u32>()); // a hot path
//!     let text = assert_max_allocations!(1, String::from("one block"));
//!     let key = assert_max_bytes!(64, format!("{}-{}", "key", 42)); // 6 bytes
//!     let len = assert_no_leaks!(vec![0u8; 64].len()); // allocates, but frees it all
//!     assert_max_peak!(1024, {
//!         let (a, b) = (vec![0u8; 512], vec![0u8; 512]); // 1 KiB at once, at most
//!         a.len() + b.len()
//!     });
//!     assert_eq!((sum, text.as_str(), key.as_str(), len), (55, "one block", "key-42", 64));
//!
//!     // A broken limit panics, naming the figures and the sites that allocated.
//!     let failed = std::panic::catch_unwind(|| assert_max_allocations!(0, vec![1u8]));
//!     let message = failed.unwrap_err().downcast::<String>().unwrap();
//!     assert!(message.starts_with("assert_max_allocations!(0) failed: 1 allocation, at most 0"));
//!
//!     // Scoped threads count when started through the measure's scope; other threads do not.
//!     let (total, m) = tracealloc::measure_scoped(|scope| {
//!         let workers: Vec<_> = (0..4).map(|_| scope.spawn(|| vec![0u8; 1000].len())).collect();
//!         std::thread::spawn(|| vec![0u8; 50_000]).join().unwrap(); // a thread of its own
//!         workers.into_iter().map(|w| w.join().unwrap()).sum::<usize>()
//!     });
//!     assert_eq!(total, 4000);
//!     // The workers' 4 blocks, and what starting the threads allocates (not the 50,000 bytes).
//!     assert!(m.allocations >= 4 && m.bytes >= 4000 && m.bytes < 50_000);
//!
//!     // A future, across its awaits, on whichever thread polls it.
//!     let work = async {
//!         let buffer = vec![0u8; 4096];
//!         std::future::ready(()).await; // an await point: the figures add up across polls
//!         buffer.len() + String::from("done").len()
//!     };
//!     let mut measured = std::pin::pin!(tracealloc::measure_future(work));
//!     // Any executor polls it; this one polls it once, on this thread.
//!     let Poll::Ready((len, m)) = measured.as_mut().poll(&mut Context::from_waker(Waker::noop()))
//!     else {
//!         unreachable!("ready at once")
//!     };
//!     assert_eq!((len, m.allocations, m.bytes, m.live_blocks), (4100, 2, 4096 + 4, 0));
//!
//!     // Baselines: figures stored in a file, compared on later runs (`assert_baseline!` keeps
//!     // them in the crate's `allocation-baselines/`, to commit).
//!     let dir = std::env::temp_dir().join(format!("baselines-{}", std::process::id()));
//!     let mut baseline = Baseline::new(&dir, "parse");
//!     baseline.update = true; // record
//!     baseline.check(&tracealloc::measure(|| drop(vec![0u8; 100]))).unwrap();
//!     baseline.update = false; // compare
//!     baseline.check(&tracealloc::measure(|| drop(vec![0u8; 100]))).unwrap();
//!     let grown = baseline.check(&tracealloc::measure(|| drop(vec![0u8; 200]))).unwrap_err();
//!     assert!(grown.starts_with("bytes grew from 100 to 200"));
//!     baseline.tolerance_percent = 100.0; // a figure may double before the check fails
//!     baseline.check(&tracealloc::measure(|| drop(vec![0u8; 200]))).unwrap();
//!     # std::fs::remove_dir_all(&dir).unwrap();
//! }
//! ```
//!
//! What counts: every allocation, realloc and free the calling thread makes while the code runs,
//! nested measures included. Threads the code starts are not counted (their allocations are their
//! own). A block counts as the measure's when the calling thread allocated it inside the measure;
//! frees of older blocks are counted apart (`freed_before_*`), and a block of the measure freed by
//! another thread is no longer live.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracealloc_snapshot::{GroupBy, Metric, blocks, human_bytes};

use crate::guard::ReentrancyGuard;
use crate::process::{self, MeasureEnd, MeasureRefused};
use crate::state::record::{MeasuredSite, SiteRecord, live_of};

/// What a measured piece of code allocated on its thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Measurement {
    /// Allocations, reallocs included (as dhat-rs counts them), exact in every mode.
    pub allocations: u64,
    /// Bytes they asked for.
    pub bytes: u64,
    /// Blocks the code allocated that are still live at its end.
    pub live_blocks: u64,
    pub live_bytes: u64,
    /// The most bytes the code's own blocks held at once, as its thread saw them.
    pub peak_bytes: u64,
    /// Blocks allocated before the code ran and freed by it.
    pub freed_before_blocks: u64,
    pub freed_before_bytes: u64,
    /// Whether the profiler samples: the allocation counts above stay exact; live bytes, the peak
    /// and the sites are then estimates.
    pub sampled: bool,
    /// Each site's stack and figures.
    sites: Vec<MeasuredSite>,
    /// The measure's records, to read them again (a measured future's later polls).
    records: Records,
}

/// Records of a measure, compared by address.
#[derive(Debug, Clone, Default)]
struct Records(Vec<&'static SiteRecord>);

impl PartialEq for Records {
    fn eq(&self, other: &Records) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|(a, b)| std::ptr::eq(*a, *b))
    }
}

impl Eq for Records {}

impl Measurement {
    fn from_end(end: MeasureEnd, sampled: bool) -> Measurement {
        let level = end.level;
        let (live_blocks, live_bytes) = live_of(&end.sites);
        Measurement {
            allocations: level.allocations,
            bytes: level.bytes,
            live_blocks,
            live_bytes,
            peak_bytes: level.peak_bytes.max(0) as u64,
            freed_before_blocks: level.freed_before_blocks,
            freed_before_bytes: level.freed_before_bytes,
            sampled,
            sites: end.sites,
            records: Records(end.records),
        }
    }

    /// The `n` sites that allocated most by `metric` (allocations, bytes or live bytes), each
    /// with its short stack: for messages. Symbolizes, untracked.
    ///
    /// ```no_run
    /// let m = tracealloc::measure(|| {
    ///     for _ in 0..3 {
    ///         drop(vec![0u8; 10]);
    ///     }
    /// });
    /// let sites = m.top_sites(5, tracealloc::Metric::TotalBlocks);
    /// assert!(sites.starts_with("  3 allocations, 30 B (0 B live in 0 blocks) at\n"));
    /// ```
    ///
    /// (Compile-only here: the [module's example](mod@crate::measure) runs it, with the profiler as
    /// the global allocator.)
    pub fn top_sites(&self, n: usize, metric: Metric) -> String {
        ReentrancyGuard::untracked(|| {
            let model = crate::snapshot::model_of_sites(&self.sites);
            let mut out = String::new();
            for stat in model
                .statistics_sorted(GroupBy::Stack, metric)
                .into_iter()
                .filter(|s| s.figure(metric) > 0)
                .take(n)
            {
                out.push_str(&format!(
                    "  {}, {} ({} live in {}) at\n",
                    allocations(stat.total_blocks),
                    human_bytes(stat.total_bytes),
                    human_bytes(stat.live_bytes),
                    blocks(stat.live_blocks)
                ));
                for frame in stat.frames().take(6) {
                    out.push_str(&format!("      {}\n", model.short_paths(frame)));
                }
            }
            out
        })
    }
}

/// "1 allocation", "2 allocations".
fn allocations(n: u64) -> String {
    if n == 1 {
        "1 allocation".to_owned()
    } else {
        format!("{n} allocations")
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {}; live at the end: {} in {}; peak {}; freed from before: {} in {}",
            allocations(self.allocations),
            human_bytes(self.bytes),
            human_bytes(self.live_bytes),
            blocks(self.live_blocks),
            human_bytes(self.peak_bytes),
            human_bytes(self.freed_before_bytes),
            blocks(self.freed_before_blocks)
        )?;
        if self.sampled {
            write!(
                f,
                " (sampled: the counts are exact; live bytes, the peak and the sites are estimates)"
            )?;
        }
        Ok(())
    }
}

/// Measures what `f` allocates on the calling thread. Reallocs count as allocations, as dhat-rs
/// counts them:
///
/// ```no_run
/// let m = tracealloc::measure(|| {
///     let mut v: Vec<u64> = Vec::with_capacity(4); // 32 bytes
///     v.extend([1, 2, 3, 4, 5]); // grows: a realloc to 64 bytes
/// });
/// assert_eq!((m.allocations, m.bytes, m.live_blocks), (2, 32 + 64, 0));
/// assert_eq!(m.peak_bytes, 64);
/// ```
///
/// (Compile-only here: the [module's example](mod@crate::measure) runs it, with the profiler as
/// the global allocator.)
///
/// # Panics
/// When the profiler is not the program's global allocator (the message gives the line to add),
/// or when more than 8 measures are nested on one thread.
#[track_caller]
pub fn measure(f: impl FnOnce()) -> Measurement {
    measure_with(f).1
}

/// Measures what `f` allocates on the calling thread, and returns `f`'s value too. See
/// [`measure`].
///
/// ```no_run
/// let (word, m) = tracealloc::measure_with(|| "hello".to_uppercase());
/// assert_eq!(word, "HELLO");
/// assert_eq!((m.allocations, m.live_bytes), (1, 5)); // the String's 5 bytes, still live
/// ```
///
/// (Compile-only here: the [module's example](mod@crate::measure) runs it, with the profiler as
/// the global allocator.)
#[track_caller]
pub fn measure_with<R>(f: impl FnOnce() -> R) -> (R, Measurement) {
    match process::measure_begin() {
        Ok(()) => {}
        Err(MeasureRefused::NotGlobalAllocator) => panic!(
            "tracealloc::measure needs tracealloc as the global allocator; add, in this test's \
             crate (for an integration test, in the test file):\n    #[global_allocator]\n    \
             static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();"
        ),
        Err(MeasureRefused::TooDeep) => {
            panic!("tracealloc::measure: at most 8 measures can be nested on one thread")
        }
    }
    // Ends the measure if `f` panics, so that the thread's later measures are not nested in it.
    struct EndOnUnwind(bool);
    impl Drop for EndOnUnwind {
        fn drop(&mut self) {
            if self.0 {
                let _ = process::measure_end();
            }
        }
    }
    let mut on_unwind = EndOnUnwind(true);
    let value = f();
    on_unwind.0 = false;
    let end = process::measure_end().expect("the measure begun above is the innermost");
    let sampled = process::sampling_mean() != 0;
    (value, Measurement::from_end(end, sampled))
}

/// Threads started with [`MeasuredScope::spawn`] inside [`measure_scoped`]: each runs measured,
/// and its figures add to the calling thread's.
#[derive(Debug)]
pub struct MeasuredScope<'scope, 'env: 'scope> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    children: Arc<Mutex<Vec<Measurement>>>,
}

impl<'scope, 'env> MeasuredScope<'scope, 'env> {
    /// Spawns a scoped thread whose allocations count in the measure (from the closure's start:
    /// what the thread's own start-up allocates is not counted).
    ///
    /// ```no_run
    /// let (total, m) = tracealloc::measure_scoped(|scope| {
    ///     let worker = scope.spawn(|| vec![0u8; 1000].len()); // counted
    ///     std::thread::spawn(|| vec![0u8; 5000]).join().unwrap(); // a thread of its own: not
    ///     worker.join().unwrap()
    /// });
    /// assert_eq!(total, 1000);
    /// assert!(m.bytes >= 1000 && m.bytes < 5000);
    /// ```
    ///
    /// (Compile-only here: the [module's example](mod@crate::measure) runs it, with the profiler as
    /// the global allocator.)
    pub fn spawn<F, T>(&self, f: F) -> std::thread::ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let children = Arc::clone(&self.children);
        self.scope.spawn(move || {
            let (value, m) = measure_with(f);
            children
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(m);
            value
        })
    }
}

/// Measures `f` on the calling thread and in the scoped threads it starts with
/// [`MeasuredScope::spawn`] (the opt-in for threads; by default a measure counts its own thread
/// only). All of them are joined before this returns. The threads' figures add up: allocations and
/// bytes exactly; `live_*` as each thread left them when it finished (less what was freed since);
/// `peak_bytes` as the sum of the threads' peaks, an upper bound. A block of a scoped thread freed
/// by the calling thread counts in its `freed_before_*`.
///
/// ```no_run
/// let data: Vec<Vec<u8>> = (0..4).map(|_| vec![0u8; 256]).collect();
/// let (lens, m) = tracealloc::measure_scoped(|scope| {
///     let handles: Vec<_> = data.iter().map(|d| scope.spawn(move || d.to_vec())).collect();
///     handles.into_iter().map(|h| h.join().unwrap().len()).collect::<Vec<_>>()
/// });
/// assert_eq!(lens, [256; 4]);
/// // Each thread's copy (256 bytes, 4 of them), and what starting the threads allocates.
/// assert!(m.bytes >= 4 * 256);
/// ```
///
/// (Compile-only here: the [module's example](mod@crate::measure) runs it, with the profiler as
/// the global allocator.)
#[track_caller]
pub fn measure_scoped<'env, R>(
    f: impl for<'scope> FnOnce(&MeasuredScope<'scope, 'env>) -> R,
) -> (R, Measurement) {
    let children = Arc::new(Mutex::new(Vec::new()));
    let (value, mut m) = measure_with(|| {
        std::thread::scope(|scope| {
            f(&MeasuredScope {
                scope,
                children: Arc::clone(&children),
            })
        })
    });
    let children = std::mem::take(
        &mut *children
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for child in children {
        m.allocations += child.allocations;
        m.bytes += child.bytes;
        m.peak_bytes += child.peak_bytes;
        m.freed_before_blocks += child.freed_before_blocks;
        m.freed_before_bytes += child.freed_before_bytes;
        m.sites.extend(child.sites);
        m.records.0.extend(child.records.0);
    }
    (m.live_blocks, m.live_bytes) = live_of(&m.sites);
    (value, m)
}

/// The environment variable that makes [`assert_baseline!`](crate::assert_baseline) record the current figures as the new
/// baselines instead of comparing with them. Without it, a missing baseline file is recorded, with a
/// notice, except under `CI=true` (or `CI=1`), where it fails: CI checks the committed baselines.
pub const UPDATE_BASELINES_ENV: &str = "TRACEALLOC_UPDATE_BASELINES";

/// Whether `CI` is `true` or `1`, as CI services set it.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A stored measurement to compare later runs with: `<dir>/<name>.json`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Baseline {
    pub dir: PathBuf,
    pub name: String,
    /// How much a figure may grow over its baseline, in percent, before the check fails.
    pub tolerance_percent: f64,
    /// Record the current figures instead of comparing.
    pub update: bool,
    /// Record the figures, with a notice on stderr, when there is no file yet; when off (under
    /// `CI=true`), a missing file fails the check.
    pub record_missing: bool,
}

impl Baseline {
    /// The baseline `name` in `dir`, exact (no tolerance), updated when
    /// `TRACEALLOC_UPDATE_BASELINES` is set to anything but `0`. A missing file is recorded,
    /// except under `CI=true` (or `CI=1`), where it fails.
    ///
    /// ```no_run
    /// use tracealloc::measure::Baseline;
    ///
    /// let m = tracealloc::measure(|| drop(vec![0u8; 100]));
    /// let mut baseline = Baseline::new("allocation-baselines", "small_vec");
    /// baseline.tolerance_percent = 10.0; // a figure may grow by 10% before the check fails
    /// baseline.check(&m).unwrap(); // the first run records small_vec.json
    /// ```
    ///
    /// (Compile-only here: the [module's example](mod@crate::measure) runs it, with the profiler as
    /// the global allocator.)
    pub fn new(dir: impl Into<PathBuf>, name: impl Into<String>) -> Baseline {
        Baseline {
            dir: dir.into(),
            name: name.into(),
            tolerance_percent: 0.0,
            update: std::env::var_os(UPDATE_BASELINES_ENV).is_some_and(|v| v != "0"),
            record_missing: !in_ci(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.name))
    }

    /// Compares `m` with the stored figures: `Err` names every figure that grew beyond the
    /// tolerance. With `update`, stores `m`'s figures and passes. With no file yet, stores them
    /// with a notice on stderr and passes if `record_missing`, else (under `CI=true`) `Err` names
    /// the file to record and commit.
    ///
    /// ```no_run
    /// use tracealloc::measure::Baseline;
    ///
    /// let dir = std::env::temp_dir().join(format!("baselines-{}", std::process::id()));
    /// let mut baseline = Baseline::new(&dir, "parse");
    /// baseline.update = true; // record
    /// baseline.check(&tracealloc::measure(|| drop(vec![0u8; 100]))).unwrap();
    /// baseline.update = false; // compare
    /// baseline.check(&tracealloc::measure(|| drop(vec![0u8; 100]))).unwrap();
    /// let grown = baseline.check(&tracealloc::measure(|| drop(vec![0u8; 200]))).unwrap_err();
    /// assert!(grown.starts_with("bytes grew from 100 to 200"));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    ///
    /// (Compile-only here: the [module's example](mod@crate::measure) runs it, with the profiler as
    /// the global allocator.)
    pub fn check(&self, m: &Measurement) -> Result<(), String> {
        let path = self.path();
        let figures = [
            ("allocations", m.allocations),
            ("bytes", m.bytes),
            ("peak_bytes", m.peak_bytes),
            ("live_blocks", m.live_blocks),
        ];
        let stored = if self.update {
            None
        } else {
            read_baseline(&path)?
        };
        let Some(stored) = stored else {
            if self.update {
                return write_baseline(&path, &figures);
            }
            if !self.record_missing {
                return Err(format!(
                    "no baseline {} (required in CI: run the test with {UPDATE_BASELINES_ENV}=1 to record it, and commit it)",
                    path.display()
                ));
            }
            write_baseline(&path, &figures)?;
            eprintln!(
                "assert_baseline!({:?}): no baseline yet; recorded {} (commit it)",
                self.name,
                path.display()
            );
            return Ok(());
        };
        let grown: Vec<String> = figures
            .iter()
            .filter_map(|&(key, now)| {
                let then = stored.get(key).and_then(serde_json::Value::as_u64)?;
                let allowed = then as f64 * (1.0 + self.tolerance_percent / 100.0);
                (now as f64 > allowed).then(|| format!("{key} grew from {then} to {now}"))
            })
            .collect();
        if grown.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{} (baseline {}; set {UPDATE_BASELINES_ENV}=1 to accept the new figures)",
            grown.join(", "),
            path.display()
        ))
    }
}

fn read_baseline(path: &Path) -> Result<Option<serde_json::Value>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: not a tracealloc baseline: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: cannot read: {e}", path.display())),
    }
}

fn write_baseline(path: &Path, figures: &[(&str, u64)]) -> Result<(), String> {
    let object: serde_json::Map<String, serde_json::Value> = figures
        .iter()
        .map(|&(key, value)| (key.to_owned(), value.into()))
        .collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    tracealloc_snapshot::write_atomically(path, |out| {
        serde_json::to_writer_pretty(&mut *out, &object)?;
        out.write_all(b"\n")
    })
    .map_err(|e| format!("{e:#}"))
}

/// Runs `f` measured and compares its figures with `baseline` (see [`Baseline::check`]);
/// panics, with the top sites, when they grew. Used by [`assert_baseline!`](crate::assert_baseline).
#[doc(hidden)]
#[track_caller]
pub fn check_baseline<R>(baseline: &Baseline, f: impl FnOnce() -> R) -> R {
    let (value, m) = measure_with(f);
    if let Err(grown) = baseline.check(&m) {
        let sites = m.top_sites(5, Metric::TotalBlocks);
        panic!(
            "assert_baseline!({:?}) failed: {grown}\n  measured: {m}\n  top sites:\n{sites}",
            baseline.name
        );
    }
    value
}

/// Measures a future across its awaits: what each of its polls allocates, on whichever thread polls
/// it, adds up. Resolves to the future's output and the figures: allocations and bytes exactly;
/// `live_*` as the blocks of all its polls stand when it completes (freed by anyone); `peak_bytes`
/// the most its blocks held at once, as each poll saw them; `freed_before_*`, blocks its polls
/// freed that were not allocated in the same poll (older blocks, and blocks of its earlier polls).
///
/// ```no_run
/// use std::future::Future;
/// use std::task::{Context, Poll, Waker};
///
/// let work = async {
///     let buffer = vec![0u8; 4096];
///     std::future::ready(()).await; // an await point: the figures add up across polls
///     buffer.len() + String::from("done").len()
/// };
/// let mut measured = std::pin::pin!(tracealloc::measure_future(work));
/// // Any executor polls it; this one polls it once, on this thread.
/// let Poll::Ready((len, m)) = measured.as_mut().poll(&mut Context::from_waker(Waker::noop()))
/// else {
///     unreachable!("ready at once")
/// };
/// assert_eq!(len, 4100);
/// assert_eq!((m.allocations, m.bytes, m.live_blocks), (2, 4096 + 4, 0));
/// ```
///
/// (Compile-only here: the [module's example](mod@crate::measure) runs it, with the profiler as
/// the global allocator.)
pub fn measure_future<F: std::future::Future>(fut: F) -> MeasuredFuture<F> {
    MeasuredFuture {
        inner: fut,
        so_far: Measurement::default(),
        records: Vec::new(),
    }
}

/// A future measured across its polls; see [`measure_future`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct MeasuredFuture<F> {
    inner: F,
    so_far: Measurement,
    records: Vec<&'static SiteRecord>,
}

impl<F: std::future::Future> std::future::Future for MeasuredFuture<F> {
    type Output = (F::Output, Measurement);

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        // SAFETY: `inner` is pinned structurally, as in `Labeled`: never moved out, no `Drop` of
        // our own; the other fields are not pinned and are only ever reached through `&mut`.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above: `inner` stays where it is for as long as `this` is pinned.
        let inner = unsafe { std::pin::Pin::new_unchecked(&mut this.inner) };
        let live_before: u64 = process::sites_of(&this.records)
            .iter()
            .map(|s| s.counts.live_bytes)
            .sum();
        let (poll, m) = measure_with(|| inner.poll(cx));
        let so_far = &mut this.so_far;
        so_far.allocations += m.allocations;
        so_far.bytes += m.bytes;
        so_far.peak_bytes = so_far.peak_bytes.max(live_before + m.peak_bytes);
        so_far.freed_before_blocks += m.freed_before_blocks;
        so_far.freed_before_bytes += m.freed_before_bytes;
        so_far.sampled = m.sampled;
        this.records.extend(m.records.0);
        match poll {
            std::task::Poll::Pending => std::task::Poll::Pending,
            std::task::Poll::Ready(output) => {
                let mut m = std::mem::take(so_far);
                m.sites = process::sites_of(&this.records);
                (m.live_blocks, m.live_bytes) = live_of(&m.sites);
                std::task::Poll::Ready((output, m))
            }
        }
    }
}

/// A limit checked by the assertion macros.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    Allocations(u64),
    Bytes(u64),
    Peak(u64),
    NoLeaks,
    NoAllocations,
}

impl Limit {
    /// What was broken, or `None`.
    fn broken_by(self, m: &Measurement) -> Option<(String, Metric)> {
        match self {
            Limit::Allocations(max) if m.allocations > max => Some((
                format!("{}, at most {max} allowed", allocations(m.allocations)),
                Metric::TotalBlocks,
            )),
            Limit::Bytes(max) if m.bytes > max => Some((
                format!(
                    "{} allocated, at most {} allowed",
                    human_bytes(m.bytes),
                    human_bytes(max)
                ),
                Metric::TotalBytes,
            )),
            Limit::Peak(max) if m.peak_bytes > max => Some((
                format!(
                    "a peak of {}, at most {} allowed",
                    human_bytes(m.peak_bytes),
                    human_bytes(max)
                ),
                Metric::TotalBytes,
            )),
            Limit::NoLeaks if m.live_blocks > 0 => Some((
                format!(
                    "{} in {} still live at the end, none allowed",
                    human_bytes(m.live_bytes),
                    blocks(m.live_blocks)
                ),
                Metric::LiveBytes,
            )),
            Limit::NoAllocations if m.allocations > 0 => Some((
                format!("{}, none allowed", allocations(m.allocations)),
                Metric::TotalBlocks,
            )),
            _ => None,
        }
    }
}

/// Runs `f` measured and panics, naming the figures and the top 5 sites of the offending
/// allocations, when it breaks `limit`. Used by the assertion macros.
#[doc(hidden)]
#[track_caller]
pub fn check<R>(limit: Limit, what: &str, f: impl FnOnce() -> R) -> R {
    let (value, m) = measure_with(f);
    if let Some((broken, metric)) = limit.broken_by(&m) {
        let sites = m.top_sites(5, metric);
        let estimated = if m.sampled {
            " (sampled mode: counts are exact, sites are estimated)"
        } else {
            ""
        };
        panic!("{what} failed: {broken}\n  measured: {m}\n  top sites{estimated}:\n{sites}");
    }
    value
}

/// Asserts that the expression allocates at most `max` blocks on this thread (reallocs count);
/// returns its value. On failure the panic names the figures and the top 5 allocating sites.
///
/// ```no_run
/// let words = tracealloc::assert_max_allocations!(2, {
///     let mut words = Vec::with_capacity(1); // 1
///     words.push(String::from("one")); // 2
///     words
/// });
/// assert_eq!(words, ["one"]);
/// ```
///
/// (Compile-only here: the [module's example](mod@crate::measure) runs it, with the profiler as
/// the global allocator.)
#[macro_export]
macro_rules! assert_max_allocations {
    ($max:expr, $body:expr $(,)?) => {
        $crate::measure::check(
            $crate::measure::Limit::Allocations($max),
            concat!("assert_max_allocations!(", stringify!($max), ")"),
            || $body,
        )
    };
}

/// Asserts that the expression allocates at most `max` bytes in all on this thread.
///
/// ```no_run
/// let line = tracealloc::assert_max_bytes!(64, format!("{}-{}", "key", 42));
/// assert_eq!(line, "key-42");
/// ```
///
/// (Compile-only here: the [module's example](mod@crate::measure) runs it, with the profiler as
/// the global allocator.)
#[macro_export]
macro_rules! assert_max_bytes {
    ($max:expr, $body:expr $(,)?) => {
        $crate::measure::check(
            $crate::measure::Limit::Bytes($max),
            concat!("assert_max_bytes!(", stringify!($max), ")"),
            || $body,
        )
    };
}

/// Asserts that the expression's own blocks never hold more than `max` bytes at once.
///
/// ```no_run
/// // Two blocks of 4 KiB, one at a time: a peak of 4 KiB, though 8 KiB are allocated.
/// tracealloc::assert_max_peak!(4096, {
///     drop(vec![0u8; 4096]);
///     drop(vec![0u8; 4096]);
/// });
/// ```
///
/// (Compile-only here: the [module's example](mod@crate::measure) runs it, with the profiler as
/// the global allocator.)
#[macro_export]
macro_rules! assert_max_peak {
    ($max:expr, $body:expr $(,)?) => {
        $crate::measure::check(
            $crate::measure::Limit::Peak($max),
            concat!("assert_max_peak!(", stringify!($max), ")"),
            || $body,
        )
    };
}

/// Asserts that nothing the expression allocated is still live when it ends (its value is
/// dropped first only if the expression does so: return nothing that owns memory).
///
/// ```no_run
/// let sum: u64 = tracealloc::assert_no_leaks!((0..100u64).collect::<Vec<_>>().iter().sum());
/// assert_eq!(sum, 4950);
/// ```
///
/// (Compile-only here: the [module's example](mod@crate::measure) runs it, with the profiler as
/// the global allocator.)
#[macro_export]
macro_rules! assert_no_leaks {
    ($body:expr $(,)?) => {
        $crate::measure::check($crate::measure::Limit::NoLeaks, "assert_no_leaks!", || {
            $body
        })
    };
}

/// Compares what the expression allocates with its stored baseline, `NAME.json` in the crate's
/// `allocation-baselines/` directory: fails when a figure grew (exactly, or beyond
/// `tolerance = PERCENT`), records the figures on the first run (with a notice), and records them
/// again when `TRACEALLOC_UPDATE_BASELINES=1` is set. Commit the directory: under `CI=true` (or
/// `CI=1`) a missing baseline fails instead of being recorded.
///
/// ```no_run
/// // allocation-baselines/render.json, next to the crate's Cargo.toml.
/// let page = tracealloc::assert_baseline!("render", tolerance = 5, format!("<p>{}</p>", 7));
/// assert_eq!(page, "<p>7</p>");
/// ```
///
/// (Compile-only here: the [module's example](mod@crate::measure) runs it, with the profiler as
/// the global allocator.)
#[macro_export]
macro_rules! assert_baseline {
    ($name:expr, $body:expr $(,)?) => {
        $crate::measure::check_baseline(
            &$crate::measure::Baseline::new(
                concat!(env!("CARGO_MANIFEST_DIR"), "/allocation-baselines"),
                $name,
            ),
            || $body,
        )
    };
    ($name:expr, tolerance = $percent:expr, $body:expr $(,)?) => {{
        let mut baseline = $crate::measure::Baseline::new(
            concat!(env!("CARGO_MANIFEST_DIR"), "/allocation-baselines"),
            $name,
        );
        baseline.tolerance_percent = $percent as f64;
        $crate::measure::check_baseline(&baseline, || $body)
    }};
}

/// Asserts that the expression does not allocate at all (a hot path).
///
/// ```no_run
/// let mut buffer = Vec::with_capacity(16);
/// tracealloc::assert_no_alloc!(buffer.extend_from_slice(b"fits")); // within its capacity
/// assert_eq!(buffer, b"fits");
/// ```
///
/// (Compile-only here: the [module's example](mod@crate::measure) runs it, with the profiler as
/// the global allocator.)
#[macro_export]
macro_rules! assert_no_alloc {
    ($body:expr $(,)?) => {
        $crate::measure::check(
            $crate::measure::Limit::NoAllocations,
            "assert_no_alloc!",
            || $body,
        )
    };
}
