//! Exact allocation figures of one piece of code on the calling thread, and assertions on them
//! for tests. Other threads never count, so heap tests run in an ordinary parallel `cargo test`
//! (or cargo-nextest), with no `--test-threads=1`.
//!
//! ```ignore
//! let m = tracealloc::measure(|| { let v: Vec<u8> = Vec::with_capacity(10); drop(v); });
//! assert_eq!((m.allocations, m.live_blocks), (1, 0));
//! let total = tracealloc::assert_max_allocations!(0, { 2 + 2 });
//! ```
//!
//! What counts: every allocation, realloc and free the calling thread makes while the code runs,
//! nested measures included. Threads the code starts are not counted (their allocations are their
//! own). A block counts as the measure's when the calling thread allocated it inside the measure;
//! frees of older blocks are counted apart (`freed_before_*`), and a block of the measure freed by
//! another thread is no longer live.

use std::fmt;

use tracealloc_snapshot::{GroupBy, Metric, human_bytes};

use crate::guard::ReentrancyGuard;
use crate::process::{self, MeasureEnd, MeasureRefused};

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
    /// (return addresses, allocations, bytes, live blocks, live bytes) per site.
    sites: Vec<(Vec<usize>, u64, u64, u64, u64)>,
}

impl Measurement {
    fn from_end(end: MeasureEnd, sampled: bool) -> Measurement {
        let level = end.level;
        let (live_blocks, live_bytes) = end
            .sites
            .iter()
            .fold((0, 0), |(blocks, bytes), s| (blocks + s.3, bytes + s.4));
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
        }
    }

    /// The `n` sites that allocated most by `metric` (allocations, bytes or live bytes), each
    /// with its short stack: for messages. Symbolizes, untracked.
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
                    "  {} allocations, {} ({} live in {} blocks) at\n",
                    stat.total_blocks,
                    human_bytes(stat.total_bytes),
                    human_bytes(stat.live_bytes),
                    stat.live_blocks
                ));
                for frame in stat.frames().take(6) {
                    out.push_str(&format!("      {}\n", model.short_paths(frame)));
                }
            }
            out
        })
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} allocations of {}; live at the end: {} in {} blocks; peak {}; freed from before: {} in {} blocks",
            self.allocations,
            human_bytes(self.bytes),
            human_bytes(self.live_bytes),
            self.live_blocks,
            human_bytes(self.peak_bytes),
            human_bytes(self.freed_before_bytes),
            self.freed_before_blocks
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

/// Measures what `f` allocates on the calling thread.
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
                format!("{} allocations, at most {max} allowed", m.allocations),
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
                    "{} in {} blocks still live at the end, none allowed",
                    human_bytes(m.live_bytes),
                    m.live_blocks
                ),
                Metric::LiveBytes,
            )),
            Limit::NoAllocations if m.allocations > 0 => Some((
                format!("{} allocations, none allowed", m.allocations),
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
#[macro_export]
macro_rules! assert_no_leaks {
    ($body:expr $(,)?) => {
        $crate::measure::check($crate::measure::Limit::NoLeaks, "assert_no_leaks!", || {
            $body
        })
    };
}

/// Asserts that the expression does not allocate at all (a hot path).
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
