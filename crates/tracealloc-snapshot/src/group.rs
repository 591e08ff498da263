//! Grouping a snapshot's sites into statistics by function, line, file, stack or thread.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Metric;
use crate::model::{Site, Snapshot, Variance};

/// What sites are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// The allocating user frame's demangled function name.
    Function,
    /// The allocating user frame's `file:line`, or its function name when the debug info has no
    /// line for it (a release build without line tables).
    Line,
    /// The allocating user frame's file, or its function name when the debug info has no file.
    File,
    /// The stack as a person reads it, frames joined by [`Stat::STACK_SEPARATOR`], innermost
    /// first: from the call into the standard library's allocation code (`Vec::push`,
    /// `Box::new`) out to `main` or the thread's closure ([`Snapshot::readable_frames`]).
    Stack,
    /// Every frame of the stack, std's allocation internals and start-up included.
    #[serde(rename = "full-stack")]
    FullStack,
    /// The allocating thread's name.
    Thread,
    /// The task label the blocks were allocated under ([`Stat::NO_LABEL`] for none).
    Label,
}

/// The counters of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub key: String,
    pub live_bytes: u64,
    pub live_blocks: u64,
    pub total_bytes: u64,
    pub total_blocks: u64,
    /// Live bytes at the process's peak (see [`crate::Site::peak_bytes`]).
    #[serde(default)]
    pub peak_bytes: u64,
    /// Live blocks at the process's peak.
    #[serde(default)]
    pub peak_blocks: u64,
    /// Blocks freed by their allocating thread before its next allocation.
    #[serde(default)]
    pub temporary_blocks: u64,
    /// Reallocs, and the bytes they copied (see [`crate::Site::realloc_copied_bytes`]).
    #[serde(default)]
    pub reallocs: u64,
    #[serde(default)]
    pub realloc_copied_bytes: u64,
    /// Lifetimes mode only: the summed lifetimes of the blocks, in microseconds (see
    /// [`crate::Site::lifetimes_us`] and [`Stat::mean_lifetime_us`]).
    #[serde(default)]
    pub lifetimes_us: u64,
    /// Lifetimes mode only: the sum of the sites' own maxima of live bytes and blocks.
    #[serde(default)]
    pub max_bytes: u64,
    #[serde(default)]
    pub max_blocks: u64,
    /// Sampled mode: the variances of the group's estimates, the sum of its sites' (absent for
    /// exact snapshots and for files written before they were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variance: Option<Variance>,
}

/// The standard errors of a sampled group's estimates (see [`Stat::standard_errors`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StandardErrors {
    pub live_bytes: u64,
    pub live_blocks: u64,
    pub total_bytes: u64,
    pub total_blocks: u64,
}

impl Stat {
    /// The key of the blocks allocated under no label, with [`GroupBy::Label`].
    pub const NO_LABEL: &'static str = "(no label)";

    /// How the frames of a [`GroupBy::Stack`] key are joined.
    pub const STACK_SEPARATOR: &'static str = " <- ";

    pub(crate) fn add(&mut self, site: &Site) {
        self.live_bytes += site.live_bytes;
        self.live_blocks += site.live_blocks;
        self.total_bytes += site.total_bytes;
        self.total_blocks += site.total_blocks;
        self.peak_bytes += site.peak_bytes;
        self.peak_blocks += site.peak_blocks;
        self.temporary_blocks += site.temporary_blocks;
        self.reallocs += site.reallocs;
        self.realloc_copied_bytes += site.realloc_copied_bytes;
        self.lifetimes_us += site.lifetimes_us;
        self.max_bytes += site.max_bytes;
        self.max_blocks += site.max_blocks;
        if let Some(variance) = site.variance {
            self.variance = Some(self.variance.unwrap_or_default().plus(variance));
        }
    }

    /// The standard errors of this group's estimates in a snapshot sampled every `mean` bytes on
    /// average (`None` in exact mode, `mean` 0): live and total bytes and blocks.
    ///
    /// With the variances the profiler recorded ([`Stat::variance`], see [`Variance`]), their
    /// square roots: each sampled block adds its own share, so a group of mixed block sizes, or
    /// one sampled at several intervals, gets the error its blocks give it.
    ///
    /// Without (files written before they were recorded), an approximation from the figures: a
    /// sampled block of `s` bytes stands for `s / p` bytes, `p = 1 - exp(-s / mean)`, so an
    /// estimate of `B` bytes made of blocks much smaller than `mean` has a variance of about
    /// `mean * B` (larger blocks are sampled more surely, and the variance is lower), and the
    /// blocks get the same share. That understates the blocks' error of a group whose blocks differ
    /// in size (the small ones stand for many).
    ///
    /// An estimate of nothing is not certain: about `mean` bytes (one sample's worth, at least
    /// one block) can go unseen, and that is its error, not 0.
    ///
    /// ```
    /// use tracealloc_snapshot::{Stat, Variance};
    ///
    /// // A line whose sampled blocks (one sample per 512 KiB) stand for 50 MiB.
    /// let stat = Stat { key: "src/cache.rs:12".into(), live_bytes: 50 << 20, ..Stat::default() };
    /// let errors = stat.standard_errors(512 * 1024).unwrap();
    /// assert_eq!(errors.live_bytes, 5_242_880); // sqrt(512 KiB x 50 MiB) = 5 MiB: +-10%
    /// assert_eq!(stat.standard_errors(0), None); // exact mode
    ///
    /// // The same line with the variances the profiler recorded.
    /// let mut variance = Variance::default();
    /// variance.live_bytes_kib = (512 * 1024) * (50 << 20) / 1024;
    /// variance.live_blocks = 90_000;
    /// let stat = Stat { variance: Some(variance), live_blocks: 1000, ..stat };
    /// let errors = stat.standard_errors(512 * 1024).unwrap();
    /// assert_eq!((errors.live_bytes, errors.live_blocks), (5_242_880, 300));
    /// ```
    pub fn standard_errors(&self, mean: u64) -> Option<StandardErrors> {
        if mean == 0 {
            return None;
        }
        let Some(variance) = self.variance else {
            return Some(self.approximate_errors(mean));
        };
        let bytes = |b: u64, kib: u64| match (b, kib) {
            (0, 0) => mean,
            (_, kib) => (kib as f64 * 1024.0).sqrt().round() as u64,
        };
        let blocks = |n: u64, v: u64| match (n, v) {
            (0, 0) => 1,
            (_, v) => (v as f64).sqrt().round() as u64,
        };
        Some(StandardErrors {
            live_bytes: bytes(self.live_bytes, variance.live_bytes_kib),
            live_blocks: blocks(self.live_blocks, variance.live_blocks),
            total_bytes: bytes(self.total_bytes, variance.total_bytes_kib),
            total_blocks: blocks(self.total_blocks, variance.total_blocks),
        })
    }

    /// [`Stat::standard_errors`] without recorded variances: from the figures alone.
    fn approximate_errors(&self, mean: u64) -> StandardErrors {
        let bytes = |b: u64| match b {
            0 => mean,
            b => (mean as f64 * b as f64).sqrt().round() as u64,
        };
        let blocks = |n: u64, b: u64| {
            if b == 0 {
                1
            } else {
                (n as f64 * (mean as f64 / b as f64).sqrt()).round() as u64
            }
        };
        StandardErrors {
            live_bytes: bytes(self.live_bytes),
            live_blocks: blocks(self.live_blocks, self.live_bytes),
            total_bytes: bytes(self.total_bytes),
            total_blocks: blocks(self.total_blocks, self.total_bytes),
        }
    }

    /// The blocks' mean lifetime in microseconds: their summed lifetimes over the allocations (a
    /// realloc is not another block's life). Meaningful only for snapshots recorded with
    /// lifetimes ([`crate::CaptureInfo::lifetimes`]); `None` without allocations.
    ///
    /// ```
    /// use tracealloc_snapshot::Stat;
    ///
    /// // 4 blocks that lived 1,000 us in all; one of the 5 blocks counted was a realloc.
    /// let stat = Stat { total_blocks: 5, reallocs: 1, lifetimes_us: 1000, ..Stat::default() };
    /// assert_eq!(stat.mean_lifetime_us(), Some(250.0));
    /// assert_eq!(Stat::default().mean_lifetime_us(), None);
    /// ```
    pub fn mean_lifetime_us(&self) -> Option<f64> {
        let allocations = self.total_blocks.saturating_sub(self.reallocs);
        (allocations != 0).then(|| self.lifetimes_us as f64 / allocations as f64)
    }

    /// The frames of a [`GroupBy::Stack`] key, innermost first (the whole key for other groupings).
    ///
    /// ```
    /// use tracealloc_snapshot::{Frame, GroupBy};
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
    /// let mut snapshot = snapshot_of(&[("app::cache::insert", "src/cache.rs:12", 4, 4)]);
    /// snapshot.frames.push(Frame::new("app::main").at("src/main.rs", Some(5), None));
    /// snapshot.stacks[0].frames.push(1); // called from app::main
    /// let stack = &snapshot.top(1, GroupBy::Stack)[0];
    /// let frames: Vec<&str> = stack.frames().collect();
    /// assert_eq!(frames, ["app::cache::insert (src/cache.rs:12)", "app::main (src/main.rs:5)"]);
    /// ```
    pub fn frames(&self) -> impl Iterator<Item = &str> {
        self.key.split(Self::STACK_SEPARATOR)
    }

    /// The figure `metric` names, for sorting and shares.
    ///
    /// ```
    /// use tracealloc_snapshot::{Metric, Stat};
    ///
    /// let stat = Stat { live_bytes: 4096, total_bytes: 20_480, ..Stat::default() };
    /// assert_eq!(stat.figure(Metric::LiveBytes), 4096);
    /// assert_eq!(stat.figure(Metric::TotalBytes), 20_480);
    /// ```
    pub fn figure(&self, metric: Metric) -> u64 {
        match metric {
            Metric::LiveBytes => self.live_bytes,
            Metric::LiveBlocks => self.live_blocks,
            Metric::TotalBytes => self.total_bytes,
            Metric::TotalBlocks => self.total_blocks,
            Metric::PeakBytes => self.peak_bytes,
            Metric::TemporaryBlocks => self.temporary_blocks,
            Metric::ReallocCopiedBytes => self.realloc_copied_bytes,
        }
    }

    /// The sort key: the metric, then the other figure of the same kind (live or total) to break
    /// ties.
    fn sort_figure(&self, metric: Metric) -> (u64, u64) {
        let tie = match metric {
            Metric::LiveBytes => self.total_bytes,
            Metric::TotalBytes => self.live_bytes,
            Metric::LiveBlocks | Metric::TotalBlocks => self.live_bytes,
            Metric::PeakBytes => self.peak_blocks,
            Metric::TemporaryBlocks => self.total_blocks,
            Metric::ReallocCopiedBytes => self.reallocs,
        };
        (self.figure(metric), tie)
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: live {} in {}, total {} in {}",
            crate::paths::short_paths_here(&self.key),
            crate::human_bytes(self.live_bytes),
            crate::blocks(self.live_blocks),
            crate::human_bytes(self.total_bytes),
            crate::blocks(self.total_blocks)
        )
    }
}

impl Snapshot {
    /// Every site's group key, by stack for the stack-derived groupings.
    pub(crate) fn keys(&self, by: GroupBy) -> SiteKeys {
        let per_stack = match by {
            GroupBy::Thread | GroupBy::Label => Vec::new(),
            GroupBy::Stack | GroupBy::FullStack => {
                // Each frame's label once, then joined per stack: stacks share most frames.
                let labels = self.frame_labels();
                self.stacks
                    .iter()
                    .map(|stack| {
                        let mut frames = self.readable_frames(stack, by == GroupBy::FullStack);
                        frames.reverse(); // innermost first
                        let kept: Vec<&str> = frames
                            .iter()
                            .map(|&f| labels[f as usize].as_str())
                            .collect();
                        kept.join(Stat::STACK_SEPARATOR)
                    })
                    .collect()
            }
            _ => self
                .stacks
                .iter()
                .map(|stack| self.user_frame_key(stack, by))
                .collect(),
        };
        let per_thread = match by {
            GroupBy::Thread => self.threads.iter().map(|t| t.name.clone()).collect(),
            _ => Vec::new(),
        };
        SiteKeys {
            by,
            per_stack,
            per_thread,
        }
    }

    /// Every frame's label (`function (file:line)`), by frame index.
    pub(crate) fn frame_labels(&self) -> Vec<String> {
        self.frames.iter().map(|f| f.label()).collect()
    }

    /// The key of a stack's allocating user frame. Without a file (or, by line, without a line),
    /// the function names the group: a build without line tables still tells its allocating
    /// functions apart instead of charging everything to one `??`.
    fn user_frame_key(&self, stack: &crate::Stack, by: GroupBy) -> String {
        let Some(frame) = self.user_frame(stack) else {
            return "??".to_owned();
        };
        match (by, &frame.file, frame.line) {
            (GroupBy::File, Some(file), _) => file.clone(),
            (GroupBy::Line, Some(file), Some(line)) => format!("{file}:{line}"),
            _ => frame.function.clone(),
        }
    }

    /// Whether most of the live bytes (of the bytes allocated, when nothing is live) are charged
    /// to allocating frames without a file and line: the program was built without line tables
    /// (a release build's default), and grouping by line or file falls back to function names.
    ///
    /// ```
    /// use tracealloc_snapshot::{Frame, GroupBy};
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
    /// // A release build without line tables: frames have function names only.
    /// let mut snapshot = snapshot_of(&[("app::cache", "src/cache.rs:12", 4, 4)]);
    /// assert!(!snapshot.lacks_line_tables());
    /// snapshot.frames[0] = Frame::new("app::cache");
    /// assert!(snapshot.lacks_line_tables());
    /// assert_eq!(snapshot.top(1, GroupBy::Line)[0].key, "app::cache"); // by function, then
    /// ```
    pub fn lacks_line_tables(&self) -> bool {
        let live: u64 = self.sites.iter().map(|s| s.live_bytes).sum();
        let figure = |site: &Site| {
            if live > 0 {
                site.live_bytes
            } else {
                site.total_bytes
            }
        };
        let (mut without, mut all) = (0u64, 0u64);
        let mut stack_lacks: Vec<Option<bool>> = vec![None; self.stacks.len()];
        for site in &self.sites {
            let Some(stack) = self.stacks.get(site.stack as usize) else {
                continue;
            };
            let lacks = *stack_lacks[site.stack as usize].get_or_insert_with(|| {
                self.user_frame(stack)
                    .is_some_and(|f| f.file.is_none() || f.line.is_none())
            });
            all += figure(site);
            if lacks {
                without += figure(site);
            }
        }
        without > 0 && without.saturating_mul(2) > all
    }

    /// All groups, largest live bytes first (ties: larger total bytes, then key).
    ///
    /// ```
    /// use tracealloc_snapshot::GroupBy;
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
    /// let functions: Vec<(String, u64, u64)> = snapshot
    ///     .statistics(GroupBy::Function)
    ///     .into_iter()
    ///     .map(|s| (s.key, s.live_bytes, s.total_blocks))
    ///     .collect();
    /// assert_eq!(
    ///     functions,
    ///     [("app::cache".to_owned(), 4096, 4), ("app::parse".to_owned(), 1024, 20)]
    /// );
    /// ```
    pub fn statistics(&self, by: GroupBy) -> Vec<Stat> {
        self.statistics_sorted(by, Metric::LiveBytes)
    }

    /// All groups, largest first by `sort` (ties: the other byte figure, then key).
    ///
    /// ```
    /// use tracealloc_snapshot::{GroupBy, Metric};
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
    /// // The lines that allocated most, whatever they kept: the churn.
    /// let churn = snapshot.statistics_sorted(GroupBy::Line, Metric::TotalBlocks);
    /// assert_eq!((churn[0].key.as_str(), churn[0].total_blocks), ("src/parse.rs:30", 20));
    /// assert_eq!(churn[0].figure(Metric::TotalBytes), 20 * 1024);
    /// ```
    pub fn statistics_sorted(&self, by: GroupBy, sort: Metric) -> Vec<Stat> {
        let keys = self.keys(by);
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut stats: Vec<Stat> = Vec::new();
        for site in &self.sites {
            let key = keys.of(site);
            let slot = *index.entry(key).or_insert_with(|| {
                stats.push(Stat {
                    key: key.to_owned(),
                    ..Stat::default()
                });
                stats.len() - 1
            });
            stats[slot].add(site);
        }
        sort_stats(&mut stats, sort);
        stats
    }

    /// Per thread (by index into [`Snapshot::threads`]): its groups, largest live bytes first.
    /// Keys are computed once for all threads.
    ///
    /// ```
    /// use tracealloc_snapshot::{GroupBy, ThreadInfo};
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
    /// let mut snapshot = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 4, 4),
    ///     ("app::parse", "src/parse.rs:30", 1, 20),
    /// ]);
    /// // The second line's blocks were allocated by a thread named `worker`.
    /// snapshot.threads.push(ThreadInfo::new("worker", 2, true));
    /// snapshot.sites[1].thread = 1;
    ///
    /// let per_thread = snapshot.statistics_per_thread(GroupBy::Line);
    /// let keys: Vec<Vec<&str>> =
    ///     per_thread.iter().map(|t| t.iter().map(|s| s.key.as_str()).collect()).collect();
    /// assert_eq!(keys, [["src/cache.rs:12"], ["src/parse.rs:30"]]);
    /// ```
    pub fn statistics_per_thread(&self, by: GroupBy) -> Vec<Vec<Stat>> {
        let keys = self.keys(by);
        let mut per_thread: Vec<HashMap<&str, Stat>> = vec![HashMap::new(); self.threads.len()];
        for site in &self.sites {
            let key = keys.of(site);
            per_thread[site.thread as usize]
                .entry(key)
                .or_insert_with(|| Stat {
                    key: key.to_owned(),
                    ..Stat::default()
                })
                .add(site);
        }
        per_thread
            .into_iter()
            .map(|groups| {
                let mut stats: Vec<Stat> = groups.into_values().collect();
                sort_stats(&mut stats, Metric::LiveBytes);
                stats
            })
            .collect()
    }

    /// All groups, largest first by `sort`, each with its distinct stacks ([`GroupBy::Stack`]
    /// keys) beneath it, largest first: one row per leaking line, and the ways it was reached.
    ///
    /// ```
    /// use tracealloc_snapshot::*;
    ///
    /// // One allocating line, src/buf.rs:5, reached from two callers.
    /// let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// snapshot.frames = vec![
    ///     Frame::new("app::buffer").at("src/buf.rs", Some(5), None),
    ///     Frame::new("app::read").at("src/read.rs", Some(1), None),
    ///     Frame::new("app::write").at("src/write.rs", Some(2), None),
    /// ];
    /// snapshot.stacks = vec![Stack::new(vec![0, 1]), Stack::new(vec![0, 2])]; // leaf first
    /// for (stack, blocks) in [(0, 3), (1, 1)] {
    ///     let mut site = Site::new(stack, 0);
    ///     (site.live_blocks, site.live_bytes) = (blocks, blocks * 1024);
    ///     snapshot.sites.push(site);
    /// }
    ///
    /// let rows = snapshot.statistics_with_stacks(GroupBy::Line, Metric::LiveBytes);
    /// assert_eq!(rows.len(), 1);
    /// let (line, stacks) = &rows[0];
    /// assert_eq!((line.key.as_str(), line.live_bytes), ("src/buf.rs:5", 4096));
    /// let ways: Vec<(&str, u64)> =
    ///     stacks.iter().map(|s| (s.key.as_str(), s.live_bytes)).collect();
    /// assert_eq!(ways, [
    ///     ("app::buffer (src/buf.rs:5) <- app::read (src/read.rs:1)", 3072),
    ///     ("app::buffer (src/buf.rs:5) <- app::write (src/write.rs:2)", 1024),
    /// ]);
    /// ```
    pub fn statistics_with_stacks(&self, by: GroupBy, sort: Metric) -> Vec<(Stat, Vec<Stat>)> {
        self.statistics_within(by, GroupBy::Stack, sort)
    }

    /// All groups by `by`, largest first by `sort`, each with its groups by `inner` (a finer
    /// grouping: [`GroupBy::Stack`] under [`GroupBy::Line`]) beneath it, largest first.
    ///
    /// ```
    /// use tracealloc_snapshot::{GroupBy, Metric};
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
    ///     ("app::cache", "src/cache.rs:30", 1, 1),
    ///     ("app::parse", "src/parse.rs:7", 2, 2),
    /// ]);
    /// let files = snapshot.statistics_within(GroupBy::File, GroupBy::Line, Metric::LiveBytes);
    /// let nested: Vec<(&str, Vec<&str>)> = files
    ///     .iter()
    ///     .map(|(file, lines)| {
    ///         (file.key.as_str(), lines.iter().map(|l| l.key.as_str()).collect())
    ///     })
    ///     .collect();
    /// assert_eq!(nested, [
    ///     ("src/cache.rs", vec!["src/cache.rs:12", "src/cache.rs:30"]),
    ///     ("src/parse.rs", vec!["src/parse.rs:7"]),
    /// ]);
    /// assert_eq!(files[0].0.live_bytes, 5 * 1024);
    /// ```
    pub fn statistics_within(
        &self,
        by: GroupBy,
        inner: GroupBy,
        sort: Metric,
    ) -> Vec<(Stat, Vec<Stat>)> {
        let (outer_keys, inner_keys) = (self.keys(by), self.keys(inner));
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut groups: Vec<(Stat, HashMap<&str, Stat>)> = Vec::new();
        for site in &self.sites {
            let key = outer_keys.of(site);
            let slot = *index.entry(key).or_insert_with(|| {
                let stat = Stat {
                    key: key.to_owned(),
                    ..Stat::default()
                };
                groups.push((stat, HashMap::new()));
                groups.len() - 1
            });
            let (stat, within) = &mut groups[slot];
            stat.add(site);
            let inner_key = inner_keys.of(site);
            within
                .entry(inner_key)
                .or_insert_with(|| Stat {
                    key: inner_key.to_owned(),
                    ..Stat::default()
                })
                .add(site);
        }
        let mut groups: Vec<(Stat, Vec<Stat>)> = groups
            .into_iter()
            .map(|(stat, within)| {
                let mut within: Vec<Stat> = within.into_values().collect();
                sort_stats(&mut within, sort);
                (stat, within)
            })
            .collect();
        groups.sort_by(|(a, _), (b, _)| order(a, b, sort));
        groups
    }

    /// The group by `by` of each group by `inner` (a finer grouping), keyed by the inner key: the
    /// line of each stack, to nest the stacks of a diff under their lines.
    ///
    /// ```
    /// use tracealloc_snapshot::GroupBy;
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
    ///     ("app::cache", "src/cache.rs:30", 1, 1),
    ///     ("app::parse", "src/parse.rs:7", 2, 2),
    /// ]);
    /// let file_of_line = snapshot.group_of(GroupBy::File, GroupBy::Line);
    /// assert_eq!(file_of_line.len(), 3);
    /// assert_eq!(file_of_line["src/cache.rs:30"], "src/cache.rs");
    /// assert_eq!(file_of_line["src/parse.rs:7"], "src/parse.rs");
    /// ```
    pub fn group_of(&self, by: GroupBy, inner: GroupBy) -> HashMap<String, String> {
        let (outer_keys, inner_keys) = (self.keys(by), self.keys(inner));
        self.sites
            .iter()
            .map(|site| {
                (
                    inner_keys.of(site).to_owned(),
                    outer_keys.of(site).to_owned(),
                )
            })
            .collect()
    }

    /// The `n` largest groups by live bytes.
    ///
    /// ```
    /// use tracealloc_snapshot::GroupBy;
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
    /// // src/cache.rs:12 keeps 4 blocks of 1 KiB; src/parse.rs:30 allocated 20 and keeps 1.
    /// let snapshot = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 4, 4),
    ///     ("app::parse", "src/parse.rs:30", 1, 20),
    /// ]);
    /// let top = snapshot.top(1, GroupBy::Line);
    /// assert_eq!(top[0].key, "src/cache.rs:12");
    /// assert_eq!((top[0].live_bytes, top[0].live_blocks), (4096, 4));
    /// assert_eq!(
    ///     top[0].to_string(),
    ///     "src/cache.rs:12: live 4 KiB in 4 blocks, total 4 KiB in 4 blocks"
    /// );
    /// ```
    pub fn top(&self, n: usize, by: GroupBy) -> Vec<Stat> {
        let mut stats = self.statistics(by);
        stats.truncate(n);
        stats
    }
}

pub(crate) fn sort_stats(stats: &mut [Stat], sort: Metric) {
    stats.sort_by(|a, b| order(a, b, sort));
}

/// Larger first by `sort`, then by key.
fn order(a: &Stat, b: &Stat, sort: Metric) -> std::cmp::Ordering {
    b.sort_figure(sort)
        .cmp(&a.sort_figure(sort))
        .then_with(|| a.key.cmp(&b.key))
}

/// Group keys of a snapshot's sites, computed once per stack or thread.
pub(crate) struct SiteKeys {
    by: GroupBy,
    per_stack: Vec<String>,
    per_thread: Vec<String>,
}

impl SiteKeys {
    pub(crate) fn of<'a>(&'a self, site: &'a Site) -> &'a str {
        match self.by {
            GroupBy::Thread => &self.per_thread[site.thread as usize],
            GroupBy::Label => site.label.as_deref().unwrap_or(Stat::NO_LABEL),
            _ => &self.per_stack[site.stack as usize],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CaptureInfo, Frame, Metadata, Site, Stack, ThreadInfo};

    /// An estimate of zero carries one sample's worth of error; others `sqrt(mean * B)`.
    #[test]
    fn an_estimate_of_nothing_is_not_certain() {
        let stat = Stat {
            key: "k".into(),
            total_bytes: 1 << 20,
            total_blocks: 64,
            ..Stat::default()
        };
        let errors = stat.standard_errors(4096).unwrap();
        assert_eq!((errors.live_bytes, errors.live_blocks), (4096, 1));
        assert_eq!((errors.total_bytes, errors.total_blocks), (65_536, 4));
        assert!(stat.standard_errors(0).is_none());
    }

    /// A release build without line tables: every frame has a function name and no location.
    /// Two functions allocate through `Vec` growth; a third frame has a file but no line.
    fn without_line_tables() -> Snapshot {
        let capture = CaptureInfo::new("frame-pointers", 128, true);
        let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
        snapshot.frames = vec![
            Frame::new("alloc::raw_vec::RawVec<T,A>::grow_one"),
            Frame::new("app::load_config"),
            Frame::new("app::cache::insert"),
            Frame::new("app::main"),
            Frame::new("app::parse").at("src/parse.rs", None, None),
        ];
        snapshot.stacks = vec![
            Stack::new(vec![0, 1, 3]),
            Stack::new(vec![0, 2, 3]),
            Stack::new(vec![4, 3]),
        ];
        snapshot.threads = vec![ThreadInfo::new("main", 1, true)];
        for (stack, live) in [(0, 3000), (1, 1000), (2, 500)] {
            let mut site = Site::new(stack, 0);
            site.live_bytes = live;
            site.live_blocks = 1;
            site.total_bytes = live;
            site.total_blocks = 1;
            snapshot.sites.push(site);
        }
        snapshot
    }

    fn keys(snapshot: &Snapshot, by: GroupBy) -> Vec<String> {
        snapshot.statistics(by).into_iter().map(|s| s.key).collect()
    }

    /// Without file and line, grouping by line or by file names the allocating function instead of
    /// charging everything to `??`; a known file still groups by file.
    #[test]
    fn frames_without_lines_group_by_their_function() {
        let snapshot = without_line_tables();
        assert_eq!(
            keys(&snapshot, GroupBy::Line),
            ["app::load_config", "app::cache::insert", "app::parse"]
        );
        assert_eq!(
            keys(&snapshot, GroupBy::File),
            ["app::load_config", "app::cache::insert", "src/parse.rs"]
        );
        assert_eq!(
            keys(&snapshot, GroupBy::Function),
            ["app::load_config", "app::cache::insert", "app::parse"]
        );
        assert!(snapshot.lacks_line_tables());
    }

    /// With line tables, keys are `file:line` and nothing is said about line tables; when only a
    /// small share lacks them, neither.
    #[test]
    fn line_tables_are_missed_only_when_most_bytes_lack_them() {
        let mut snapshot = without_line_tables();
        snapshot.frames[1] = Frame::new("app::load_config").at("src/config.rs", Some(12), None);
        assert_eq!(keys(&snapshot, GroupBy::Line)[0], "src/config.rs:12");
        assert!(!snapshot.lacks_line_tables());
        // Nothing live: the bytes allocated decide.
        for site in &mut snapshot.sites {
            site.live_bytes = 0;
        }
        assert!(!snapshot.lacks_line_tables());
        snapshot.sites[0].total_bytes = 0;
        assert!(snapshot.lacks_line_tables());
    }
}
