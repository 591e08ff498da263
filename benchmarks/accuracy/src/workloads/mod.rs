//! The workloads: each deterministic, each ends with [`report`].

pub mod markdown;
pub mod serialize;
pub mod walk_grep;

#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "index")]
pub mod index;

use std::ffi::OsString;

use serde_json::json;
use tracealloc::{GroupBy, Metric};

/// The workloads in the order the driver runs them, and whether this build has each.
pub const ALL: &[(&str, bool)] = &[
    ("markdown", true),
    ("walk+grep", true),
    ("serialize", true),
    ("http", cfg!(feature = "http")),
    ("index", cfg!(feature = "index")),
];

/// Runs one workload in this process and prints its JSON line, taken while what the workload
/// keeps (its outputs) is still live. `args` are the workload's own
/// arguments (the walk's roots for "walk+grep").
pub fn run(name: &str, args: &[OsString]) -> Result<(), String> {
    // What the workload keeps: live at the snapshot, dropped after it.
    let kept: Box<dyn std::any::Any> = match name {
        "markdown" => markdown::run(),
        "walk+grep" => walk_grep::run(args),
        "serialize" => serialize::run(),
        #[cfg(feature = "http")]
        "http" => http::run(),
        #[cfg(feature = "index")]
        "index" => index::run(),
        other => return Err(format!("unknown or disabled workload {other:?}")),
    };
    // `ACCURACY_NO_REPORT=1`: no snapshot in process, for `snapshot-rss.sh`, which measures what
    // the exit snapshot (`TRACEALLOC_OUT`) alone costs.
    if std::env::var_os("ACCURACY_NO_REPORT").is_none() {
        report(name);
    }
    drop(kept);
    Ok(())
}

/// Sites with at least this many total bytes are printed in exact mode.
pub const MIN_TOTAL: u64 = 1 << 20;

/// The workload's figures as one JSON line on stdout: the whole-process totals of
/// `tracealloc::stats()`, the sampling interval and seed, and the sites grouped by function,
/// largest total first. Exact mode prints the sites of at least [`MIN_TOTAL`] bytes; sampled mode
/// prints every site with a non-zero estimate, so that a site the driver compares is read at its
/// estimate even in a run that put it below 1 MiB (and as 0 only when no block of it was sampled).
fn report(workload: &str) {
    let stats = tracealloc::stats();
    let snapshot = tracealloc::snapshot();
    let capture = &snapshot.meta().capture;
    let sampling = capture.sampling_bytes;
    let min = if sampling == 0 { MIN_TOTAL } else { 1 };
    let sites: Vec<_> = snapshot
        .statistics_sorted(GroupBy::Function, Metric::TotalBytes)
        .into_iter()
        .filter(|s| s.total_bytes >= min || s.live_bytes >= min)
        .map(|s| json!({"key": s.key, "live_bytes": s.live_bytes, "total_bytes": s.total_bytes}))
        .collect();
    let line = json!({
        "workload": workload,
        "sampling_bytes": sampling,
        "sampling_seed": capture.sampling_seed,
        "stats": {
            "live_bytes": stats.live_bytes,
            "live_blocks": stats.live_blocks,
            "total_bytes": stats.total_bytes,
            "total_blocks": stats.total_blocks,
            "peak_bytes": stats.peak_bytes,
            "peak_blocks": stats.peak_blocks,
        },
        "sites": sites,
    });
    println!("{line}");
}

/// A small deterministic generator (SplitMix64): the workloads' inputs are the same in every run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    /// `n` words of a small vocabulary, separated by spaces.
    pub fn words(&mut self, n: usize) -> String {
        let mut s = String::new();
        for i in 0..n {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(self.pick(WORDS));
        }
        s
    }
}

pub const WORDS: &[&str] = &[
    "allocation",
    "buffer",
    "stack",
    "frame",
    "pointer",
    "sample",
    "estimate",
    "variance",
    "heap",
    "profile",
    "thread",
    "snapshot",
    "realloc",
    "capacity",
    "vector",
    "string",
    "parser",
    "token",
    "render",
    "index",
    "segment",
    "posting",
    "query",
    "document",
    "field",
    "term",
    "score",
    "walk",
    "search",
    "match",
    "line",
    "regex",
    "server",
    "client",
    "request",
    "response",
    "header",
    "body",
    "json",
    "value",
    "array",
    "object",
    "number",
    "markdown",
    "html",
    "table",
    "list",
    "quote",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "for",
    "on",
    "with",
    "as",
    "by",
    "at",
    "from",
];
