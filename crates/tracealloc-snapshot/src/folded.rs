//! Folded stacks (`root;...;leaf value`), the input of flamegraph renderers such as inferno.

use std::collections::BTreeMap;

use crate::frame::SHORT_BACKTRACE_MARKER;
use crate::model::{Site, Snapshot};

/// A figure of a site or group: what flamegraph widths show and what tables sort by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Bytes live now (what is held).
    #[default]
    LiveBytes,
    /// Bytes ever allocated (churn).
    TotalBytes,
    /// Blocks live now.
    LiveBlocks,
    /// Blocks ever allocated (the number of allocations).
    TotalBlocks,
    /// Bytes live at the peak (when the process's live bytes last reached their maximum).
    PeakBytes,
    /// Blocks freed by their allocating thread before its next allocation: short-lived churn.
    TemporaryBlocks,
    /// Bytes copied by reallocs that moved their block: growth without reserving.
    ReallocCopiedBytes,
}

impl Metric {
    /// A site's figure for this metric.
    ///
    /// ```
    /// use tracealloc_snapshot::{Metric, Site};
    ///
    /// let mut site = Site::new(0, 0);
    /// (site.live_bytes, site.total_bytes, site.total_blocks) = (4096, 20_480, 20);
    /// assert_eq!(Metric::LiveBytes.of(&site), 4096);
    /// assert_eq!(Metric::TotalBlocks.of(&site), 20);
    /// ```
    pub fn of(self, site: &Site) -> u64 {
        match self {
            Metric::LiveBytes => site.live_bytes,
            Metric::TotalBytes => site.total_bytes,
            Metric::LiveBlocks => site.live_blocks,
            Metric::TotalBlocks => site.total_blocks,
            Metric::PeakBytes => site.peak_bytes,
            Metric::TemporaryBlocks => site.temporary_blocks,
            Metric::ReallocCopiedBytes => site.realloc_copied_bytes,
        }
    }

    /// What the figure counts, for a flamegraph's legend.
    ///
    /// ```
    /// use tracealloc_snapshot::Metric;
    ///
    /// assert_eq!((Metric::PeakBytes.unit(), Metric::TotalBlocks.unit()), ("bytes", "blocks"));
    /// ```
    pub fn unit(self) -> &'static str {
        match self {
            Metric::LiveBytes
            | Metric::TotalBytes
            | Metric::PeakBytes
            | Metric::ReallocCopiedBytes => "bytes",
            Metric::LiveBlocks | Metric::TotalBlocks | Metric::TemporaryBlocks => "blocks",
        }
    }

    /// The figure in words.
    ///
    /// ```
    /// use tracealloc_snapshot::Metric;
    ///
    /// assert_eq!(Metric::TotalBytes.describe(), "total bytes allocated");
    /// ```
    pub fn describe(self) -> &'static str {
        match self {
            Metric::LiveBytes => "live bytes",
            Metric::TotalBytes => "total bytes allocated",
            Metric::LiveBlocks => "live blocks",
            Metric::TotalBlocks => "total blocks allocated",
            Metric::PeakBytes => "bytes live at the peak",
            Metric::TemporaryBlocks => "temporary blocks",
            Metric::ReallocCopiedBytes => "bytes copied by reallocs",
        }
    }

    /// Whether sampled mode estimates this metric: bytes at the peak, temporary blocks and realloc
    /// copies are counted in exact mode only.
    ///
    /// ```
    /// use tracealloc_snapshot::Metric;
    ///
    /// assert!(Metric::TotalBytes.estimated_when_sampled());
    /// assert!(!Metric::PeakBytes.estimated_when_sampled());
    /// ```
    pub fn estimated_when_sampled(self) -> bool {
        !matches!(
            self,
            Metric::PeakBytes | Metric::TemporaryBlocks | Metric::ReallocCopiedBytes
        )
    }
}

/// How stacks are folded.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct FoldOptions {
    pub metric: Metric,
    /// Put the allocating thread's name as the root frame.
    pub by_thread: bool,
    /// Put the task label as the root frame (above the thread with `by_thread`).
    pub by_label: bool,
    /// Keep every frame, std's start-up included. By default a stack starts below std's
    /// `__rust_begin_short_backtrace` (the marker std's own backtraces cut at), so at `main` or at
    /// the thread's closure.
    pub full_stacks: bool,
    /// Keep full source paths. By default they are shortened for reading
    /// ([`crate::short_path`]).
    pub full_paths: bool,
    /// For [`Snapshot::folded`]: a stack holding less than this share of the total (0 to 1) is
    /// cut where it parts from stacks that together hold at least as much, and ends in a
    /// `[smaller stacks]` frame (so the totals stay exact). A flamegraph cannot show a frame under
    /// about 1/100,000 of its width, while the deep stacks of a real program (a recursive-descent
    /// parser) make most lines of that size. 0 (the default) keeps every stack.
    pub min_share: f64,
}

/// The frame that ends a stack cut by [`FoldOptions::min_share`].
pub const SMALLER_STACKS_FRAME: &str = "[smaller stacks]";

impl Snapshot {
    /// The frames of `stack` a person reads, root first: without the profiler's frames at the
    /// leaf end and, unless `full_stacks`, without std's start-up at the root end nor std's
    /// allocation internals at the leaf end (the call the program made, `Vec::push` or
    /// `Box::new`, stays; `RawVecInner::try_allocate_in` and `alloc::alloc::alloc` go) nor the
    /// profiler's wrappers in between (`with_label`, `measure`).
    ///
    /// ```
    /// use tracealloc_snapshot::{Frame, Snapshot, Stack};
    ///
    /// let std = |function: &str, file: &str| {
    ///     Frame::new(function).at(format!("/rustc/0123abcd/library/{file}"), Some(1), None)
    /// };
    /// let mut snapshot = Snapshot::empty();
    /// snapshot.frames = vec![
    ///     Frame::new("__rustc::__rust_alloc"),
    ///     std("alloc::raw_vec::finish_grow", "alloc/src/raw_vec/mod.rs"),
    ///     std("alloc::vec::Vec<T,A>::push", "alloc/src/vec/mod.rs"),
    ///     Frame::new("app::cache::insert").at("src/cache.rs", Some(12), None),
    ///     Frame::new("app::main").at("src/main.rs", Some(5), None),
    ///     std("std::sys::backtrace::__rust_begin_short_backtrace", "std/src/sys/backtrace.rs"),
    ///     std("std::rt::lang_start_internal", "std/src/rt.rs"),
    /// ];
    /// snapshot.stacks.push(Stack::new((0..7).collect())); // innermost first
    /// let names = |frames: Vec<u32>| -> Vec<String> {
    ///     frames.iter().map(|&f| snapshot.frames[f as usize].function.clone()).collect()
    /// };
    /// let readable = names(snapshot.readable_frames(&snapshot.stacks[0], false));
    /// assert_eq!(readable, ["app::main", "app::cache::insert", "alloc::vec::Vec<T,A>::push"]);
    /// let full = snapshot.readable_frames(&snapshot.stacks[0], true);
    /// assert_eq!(full.len(), 6); // all but the allocator shim, root first
    /// ```
    pub fn readable_frames(&self, stack: &crate::Stack, full_stacks: bool) -> Vec<u32> {
        let mut frames: Vec<u32> = stack
            .frames
            .iter()
            .copied()
            .skip_while(|&f| self.frames[f as usize].is_profiler())
            .collect();
        if !full_stacks {
            match frames
                .iter()
                .position(|&f| !self.frames[f as usize].is_runtime())
            {
                Some(own) if own > 1 => {
                    frames.drain(..own - 1);
                }
                Some(_) => {}
                // std's own allocation (a thread's start-up record, a lazy static): from the first
                // frame outside the allocation internals of `alloc` and `core`, as `user_frame`
                // charges it.
                None => {
                    let first = frames.iter().position(|&f| {
                        !matches!(
                            crate::frame::frame_crate(&self.frames[f as usize].function),
                            "alloc" | "core"
                        )
                    });
                    frames.drain(..first.unwrap_or(0));
                }
            }
        }
        frames.reverse();
        if !full_stacks {
            // The C library's entry points and rustc's `main` shim at the root say nothing (std's
            // start-up below `main`, when there is no marker to cut at, stays: it is where the
            // allocation came from).
            let start = frames
                .iter()
                .position(|&f| {
                    let frame = &self.frames[f as usize];
                    !(frame.is_entry_point() || (frame.function == "main" && frame.file.is_none()))
                })
                .unwrap_or(0);
            frames.drain(..start);
        }
        if !full_stacks
            && let Some(marker) = frames.iter().rposition(|&f| {
                self.frames[f as usize]
                    .function
                    .contains(SHORT_BACKTRACE_MARKER)
            })
        {
            // std's glue right after the marker (`FnOnce::call_once` around `main`) goes too.
            let start = frames[marker + 1..]
                .iter()
                .position(|&f| !self.frames[f as usize].is_runtime())
                .map_or(frames.len(), |p| marker + 1 + p);
            frames.drain(..start);
        }
        if !full_stacks {
            // The profiler's own wrappers around the program's code (`with_label`, a labeled
            // future's poll, `measure`) say nothing about where the memory goes. (After the cut at
            // std's marker: with short names, `__rust_begin_short_backtrace` reads like an
            // allocator shim.)
            frames.retain(|&f| !self.frames[f as usize].is_profiler());
        }
        frames
    }

    /// Folded stack of each site, root first, merged and sorted, as `(stack, value)`; zero values
    /// are kept so that a differential fold sees every stack of both snapshots.
    fn fold_map(&self, options: &FoldOptions) -> BTreeMap<String, u64> {
        let frame_labels: Vec<String> = self
            .frame_labels()
            .into_iter()
            .map(|l| {
                let l = if options.full_paths {
                    l
                } else {
                    self.short_paths(&l).into_owned()
                };
                l.replace(';', ",")
            })
            .collect();
        let labels: Vec<String> = self
            .stacks
            .iter()
            .map(|stack| {
                let frames: Vec<&str> = self
                    .readable_frames(stack, options.full_stacks)
                    .into_iter()
                    .map(|f| frame_labels[f as usize].as_str())
                    .collect();
                frames.join(";")
            })
            .collect();
        let mut folded = BTreeMap::new();
        for site in &self.sites {
            let stack = &labels[site.stack as usize];
            let mut roots: Vec<String> = Vec::new();
            if options.by_label {
                let label = site.label.as_deref().unwrap_or(crate::Stat::NO_LABEL);
                roots.push(label.replace(';', ","));
            }
            if options.by_thread {
                roots.push(self.threads[site.thread as usize].name.replace(';', ","));
            }
            let key = match (roots.is_empty(), stack.is_empty()) {
                (true, true) => "[unknown]".to_owned(),
                (true, false) => stack.clone(),
                (false, true) => roots.join(";"),
                (false, false) => format!("{};{stack}", roots.join(";")),
            };
            *folded.entry(key).or_insert(0) += options.metric.of(site);
        }
        folded
    }

    /// Folded lines `root;...;leaf value`, sorted, without zero values; stacks under
    /// `options.min_share` of the total are cut (see [`FoldOptions::min_share`]).
    ///
    /// ```
    /// use tracealloc_snapshot::{FoldOptions, Metric};
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc_snapshot::Snapshot {
    /// #     use tracealloc_snapshot::*;
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
    /// #     snapshot
    /// # }
    ///
    /// let snapshot = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 4, 4),
    ///     ("app::parse", "src/parse.rs:30", 1, 20),
    /// ]);
    /// let live = snapshot.folded(&FoldOptions::default());
    /// assert_eq!(
    ///     live,
    ///     ["app::cache (src/cache.rs:12) 4096", "app::parse (src/parse.rs:30) 1024"]
    /// );
    ///
    /// // Allocations, under a root frame per thread.
    /// let mut options = FoldOptions::default();
    /// (options.metric, options.by_thread) = (Metric::TotalBlocks, true);
    /// assert_eq!(snapshot.folded(&options)[1], "main;app::parse (src/parse.rs:30) 20");
    /// ```
    pub fn folded(&self, options: &FoldOptions) -> Vec<String> {
        let mut folded = self.fold_map(options);
        folded.retain(|_, v| *v > 0);
        if options.min_share > 0.0 {
            folded = cut_small_stacks(folded, options.min_share);
        }
        folded
            .into_iter()
            .map(|(stack, v)| format!("{stack} {v}"))
            .collect()
    }

    /// Differential folded lines `root;...;leaf old new` against an older snapshot, sorted. The
    /// older snapshot's source files are matched to this one's first, by crate-relative path and
    /// function, so that the same stack in two checkouts (or with a registry crate on two
    /// machines) is one line.
    ///
    /// ```
    /// use tracealloc_snapshot::FoldOptions;
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc_snapshot::Snapshot {
    /// #     use tracealloc_snapshot::*;
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
    /// #     snapshot
    /// # }
    ///
    /// let before = snapshot_of(&[("app::cache", "src/cache.rs:12", 4, 4)]);
    /// let after = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 104, 104),
    ///     ("app::parse", "src/parse.rs:30", 1, 1),
    /// ]);
    /// let lines = after.folded_diff(&before, &FoldOptions::default());
    /// assert_eq!(
    ///     lines,
    ///     ["app::cache (src/cache.rs:12) 4096 106496", "app::parse (src/parse.rs:30) 0 1024"]
    /// );
    /// ```
    pub fn folded_diff(&self, older: &Snapshot, options: &FoldOptions) -> Vec<String> {
        let older = older.matched_for_folding(self, options.full_paths);
        let new = self.fold_map(options);
        let mut both: BTreeMap<String, (u64, u64)> = older
            .fold_map(options)
            .into_iter()
            .map(|(k, v)| (k, (v, 0)))
            .collect();
        for (k, v) in new {
            both.entry(k).or_default().1 = v;
        }
        both.into_iter()
            .filter(|&(_, (o, n))| o > 0 || n > 0)
            .map(|(stack, (o, n))| format!("{stack} {o} {n}"))
            .collect()
    }
}

/// Cuts each stack holding less than `min_share` of the total at its longest prefix that holds at
/// least that much (with the stacks that share it), ending it in [`SMALLER_STACKS_FRAME`].
fn cut_small_stacks(folded: BTreeMap<String, u64>, min_share: f64) -> BTreeMap<String, u64> {
    let total: u64 = folded.values().sum();
    let threshold = (total as f64 * min_share).ceil() as u64;
    // A trie of the stacks' frames: each node's weight is what the stacks through it hold.
    let mut children: Vec<std::collections::HashMap<&str, usize>> = vec![Default::default()];
    let mut weights: Vec<u64> = vec![total];
    for (stack, &value) in &folded {
        let mut node = 0;
        for frame in stack.split(';') {
            node = match children[node].get(frame) {
                Some(&child) => child,
                None => {
                    let child = weights.len();
                    children.push(Default::default());
                    weights.push(0);
                    children[node].insert(frame, child);
                    child
                }
            };
            weights[node] += value;
        }
    }
    let mut cut = BTreeMap::new();
    for (stack, &value) in &folded {
        if value >= threshold {
            *cut.entry(stack.clone()).or_insert(0) += value;
            continue;
        }
        let mut node = 0;
        let mut kept = 0;
        for (i, frame) in stack.split(';').enumerate() {
            node = children[node][frame];
            if weights[node] < threshold {
                break;
            }
            kept = i + 1;
        }
        let prefix: Vec<&str> = stack.split(';').take(kept).collect();
        let key = if prefix.is_empty() {
            SMALLER_STACKS_FRAME.to_owned()
        } else {
            format!("{};{SMALLER_STACKS_FRAME}", prefix.join(";"))
        };
        *cut.entry(key).or_insert(0) += value;
    }
    cut
}

#[cfg(test)]
mod cut_tests {
    use super::*;

    /// Small stacks end where they part from the heavy ones, in one `[smaller stacks]` frame per
    /// cut point; heavy stacks stay whole; the total is unchanged.
    #[test]
    fn small_stacks_are_cut_where_they_part_and_the_total_stays() {
        let folded: BTreeMap<String, u64> = [
            ("main;parse;expr;big", 900),
            ("main;parse;expr;tiny1", 3),
            ("main;parse;expr;tiny2", 2),
            ("main;parse;other;tiny3", 4),
            ("main;io;tiny4", 1),
            ("lonely", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        // 1% of 911 is 9.11, so at least 10.
        let cut = cut_small_stacks(folded, 0.01);
        let expected: BTreeMap<String, u64> = [
            ("main;parse;expr;big", 900),
            ("main;parse;expr;[smaller stacks]", 5),
            ("main;parse;[smaller stacks]", 4),
            ("main;[smaller stacks]", 1),
            ("[smaller stacks]", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(cut, expected);
    }
}
