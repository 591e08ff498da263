//! Folded stacks (`root;...;leaf value`), the input of flamegraph renderers such as inferno.

use std::collections::BTreeMap;

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
}

/// The frame std puts between its start-up (`lang_start`, thread-start glue, `catch_unwind`) and
/// the program's `main` or a thread's closure.
const SHORT_BACKTRACE_MARKER: &str = "__rust_begin_short_backtrace";

impl Snapshot {
    /// The frames of `stack` a person reads, root first: without the profiler's frames at the
    /// leaf end and, unless `full_stacks`, without std's start-up at the root end nor std's
    /// allocation internals at the leaf end (the call the program made, `Vec::push` or
    /// `Box::new`, stays; `RawVecInner::try_allocate_in` and `alloc::alloc::alloc` go) nor the
    /// profiler's wrappers in between (`with_label`, `measure`).
    pub fn readable_frames(&self, stack: &crate::Stack, full_stacks: bool) -> Vec<u32> {
        let mut frames: Vec<u32> = stack
            .frames
            .iter()
            .copied()
            .skip_while(|&f| self.frames[f as usize].is_profiler())
            .collect();
        if !full_stacks
            && let Some(own) = frames
                .iter()
                .position(|&f| !self.frames[f as usize].is_runtime())
            && own > 1
        {
            frames.drain(..own - 1);
        }
        frames.reverse();
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

    /// Folded lines `root;...;leaf value`, sorted, without zero values.
    pub fn folded(&self, options: &FoldOptions) -> Vec<String> {
        self.fold_map(options)
            .into_iter()
            .filter(|&(_, v)| v > 0)
            .map(|(stack, v)| format!("{stack} {v}"))
            .collect()
    }

    /// Differential folded lines `root;...;leaf old new` against an older snapshot, sorted.
    pub fn folded_diff(&self, older: &Snapshot, options: &FoldOptions) -> Vec<String> {
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
