//! What a snapshot holds. Records link to each other by index into the snapshot's tables, as in the
//! file: a site names a stack and a thread, a stack lists frames.

use serde::{Deserialize, Serialize};

/// Whole-process heap figures, with dhat-rs's definitions (see `tracealloc::stats`).
///
/// A `realloc` counts one more block in `total_blocks`, adds its new size to `total_bytes`, leaves
/// `live_blocks` unchanged and moves `live_bytes` by the size difference. `peak_bytes` is the largest
/// `live_bytes` seen, and `peak_blocks` the live blocks at that moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HeapStats {
    pub live_bytes: u64,
    pub live_blocks: u64,
    pub total_bytes: u64,
    pub total_blocks: u64,
    pub peak_bytes: u64,
    pub peak_blocks: u64,
}

/// One symbolized frame. Inlined frames are frames of their own, flagged `inlined`: they were
/// inlined into the next (outer) frame of the stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Frame {
    /// Demangled name without the hash, or `"??"` when the address has no symbol.
    pub function: String,
    /// Source path as the debug info has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inlined: bool,
}

impl Frame {
    /// A frame of `function` without a location (set `file`, `line` and `column` after).
    ///
    /// ```
    /// use tracealloc_snapshot::Frame;
    ///
    /// let frame = Frame::new("app::parse");
    /// assert_eq!((frame.location(), frame.label()), ("??".to_owned(), "app::parse".to_owned()));
    /// ```
    pub fn new(function: impl Into<String>) -> Frame {
        Frame {
            function: function.into(),
            file: None,
            line: None,
            column: None,
            inlined: false,
        }
    }

    /// This frame at `file:line` (and `column`).
    ///
    /// ```
    /// use tracealloc_snapshot::Frame;
    ///
    /// let frame = Frame::new("app::parse").at("src/parse.rs", Some(30), Some(9));
    /// assert_eq!(frame.location(), "src/parse.rs:30");
    /// assert_eq!(frame.label(), "app::parse (src/parse.rs:30)");
    /// ```
    pub fn at(mut self, file: impl Into<String>, line: Option<u32>, column: Option<u32>) -> Frame {
        self.file = Some(file.into());
        self.line = line;
        self.column = column;
        self
    }
}

impl Stack {
    /// A stack of frame indices, innermost first.
    ///
    /// ```
    /// use tracealloc_snapshot::{Frame, Snapshot, Stack};
    ///
    /// let mut snapshot = Snapshot::empty();
    /// snapshot.frames.push(Frame::new("app::cache::insert")); // frame 0
    /// snapshot.frames.push(Frame::new("app::main")); // frame 1
    /// snapshot.stacks.push(Stack::new(vec![0, 1])); // innermost first
    /// let names: Vec<&str> = snapshot.stack_frames(0).map(|f| f.function.as_str()).collect();
    /// assert_eq!(names, ["app::cache::insert", "app::main"]);
    /// ```
    pub fn new(frames: Vec<u32>) -> Stack {
        Stack { frames }
    }
}

impl ThreadInfo {
    /// A thread named `name` (the kernel's thread id `tid`), running or not, standing for itself
    /// alone.
    ///
    /// ```
    /// use tracealloc_snapshot::ThreadInfo;
    ///
    /// let main = ThreadInfo::new("main", 4242, true);
    /// assert_eq!((main.name.as_str(), main.tid, main.alive), ("main", 4242, true));
    /// assert_eq!(main.threads, 1);
    /// ```
    pub fn new(name: impl Into<String>, tid: u64, alive: bool) -> ThreadInfo {
        ThreadInfo {
            name: name.into(),
            tid,
            alive,
            threads: 1,
        }
    }

    /// This entry standing for `threads` threads, one after another (see [`ThreadInfo::threads`]).
    ///
    /// ```
    /// use tracealloc_snapshot::ThreadInfo;
    ///
    /// // 100,000 short-lived threads named conn-0, conn-1, ..., the last of them gone.
    /// let conns = ThreadInfo::new("conn-*", 4243, false).standing_for(100_000);
    /// assert_eq!(conns.threads, 100_000);
    /// assert_eq!(ThreadInfo::new("main", 1, true).standing_for(0).threads, 1); // at least itself
    /// ```
    pub fn standing_for(mut self, threads: u64) -> ThreadInfo {
        self.threads = threads.max(1);
        self
    }
}

impl Site {
    /// A site of `stack` on `thread` with zero counters.
    ///
    /// ```
    /// use tracealloc_snapshot::Site;
    ///
    /// let mut site = Site::new(0, 0); // stack 0, thread 0
    /// assert_eq!((site.live_bytes, site.total_blocks, site.label.as_deref()), (0, 0, None));
    /// (site.live_bytes, site.live_blocks) = (4096, 1);
    /// (site.total_bytes, site.total_blocks) = (8192, 2);
    /// ```
    pub fn new(stack: u32, thread: u32) -> Site {
        Site {
            stack,
            thread,
            ..Site::default()
        }
    }
}

impl CaptureInfo {
    /// Stacks captured by `method` (`frame-pointers`, `dwarf-unwind`), `max_depth` frames at most,
    /// every block tracked (set `sampling_bytes` for sampling).
    ///
    /// ```
    /// use tracealloc_snapshot::CaptureInfo;
    ///
    /// let mut capture = CaptureInfo::new("frame-pointers", 128, true);
    /// assert_eq!(capture.sampling_bytes, 0); // exact mode
    /// capture.sampling_bytes = 512 * 1024; // sampled: site figures are estimates
    /// ```
    pub fn new(method: impl Into<String>, max_depth: u32, frame_pointers: bool) -> CaptureInfo {
        CaptureInfo {
            method: method.into(),
            max_depth,
            frame_pointers,
            method_from_env: false,
            sampling_bytes: 0,
            sampling_changes: 0,
            sampling_history: Vec::new(),
            sampling_from_env: false,
            sampling_seed: None,
            sampling_seed_from_env: false,
            reallocs_charged_to: ReallocCharge::Resizer,
            lifetimes: false,
            lifetimes_from_env: false,
            lifetime_clock_ns: 0,
        }
    }
}

impl Metadata {
    /// The metadata of a snapshot of process `pid` running `command`; the other fields start empty.
    ///
    /// ```
    /// use tracealloc_snapshot::{CaptureInfo, Metadata};
    ///
    /// let capture = CaptureInfo::new("dwarf-unwind", 128, false);
    /// let mut meta = Metadata::new(4242, vec!["./app".into(), "--serve".into()], capture);
    /// meta.working_dir = Some("/srv/app".into()); // its own paths show relative to it
    /// assert_eq!((meta.pid, meta.rss_bytes, meta.allocator.is_none()), (4242, 0, true));
    /// ```
    pub fn new(pid: u32, command: Vec<String>, capture: CaptureInfo) -> Metadata {
        Metadata {
            pid,
            command,
            time_unix_ms: 0,
            capture,
            rss_bytes: 0,
            thread_count: 0,
            tracealloc_version: String::new(),
            working_dir: None,
            workspace_dir: None,
            allocator: None,
        }
    }
}

impl AllocatorStats {
    /// `name`'s figures, all zero.
    ///
    /// ```
    /// use tracealloc_snapshot::AllocatorStats;
    ///
    /// let mut jemalloc = AllocatorStats::new("jemalloc");
    /// (jemalloc.allocated, jemalloc.resident) = (48 << 20, 64 << 20);
    /// assert_eq!(jemalloc.active, 0);
    /// ```
    pub fn new(name: impl Into<String>) -> AllocatorStats {
        AllocatorStats {
            name: name.into(),
            ..AllocatorStats::default()
        }
    }
}

/// The function name of the outermost frame of a stack cut at the depth limit.
pub const TRUNCATED_FRAME: &str = "[truncated]";
/// The function name of the one frame of each thread's site for the stacks past the cap on
/// distinct stacks.
pub const OTHER_STACKS_FRAME: &str = "[other stacks]";
/// The function name of the one frame of each thread's site for what it allocated while stack
/// capture was off: before capture started (`TRACEALLOC_CAPTURE_AT_START=0`), or after it stopped.
pub const CAPTURE_OFF_FRAME: &str = "[allocated while capture was off]";

/// A call stack, innermost (allocating) frame first, as indices into [`Snapshot::frames`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
#[non_exhaustive]
pub struct Stack {
    pub frames: Vec<u32>,
}

/// A thread that allocated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ThreadInfo {
    /// `main`, the thread's name, or `thread-<index>` when it has none. Threads numbered by name
    /// (`conn-17`, `conn-18`) that followed one another show as their common part and a star
    /// (`conn-*`).
    pub name: String,
    /// The kernel's thread id (of the last of them).
    pub tid: u64,
    /// Whether the thread (the last of them) was still running when the snapshot was taken.
    pub alive: bool,
    /// How many threads this entry stands for: a thread that exits hands its profiler state to the
    /// next one of the same name, or of a name that differs only in its trailing number, so that
    /// short-lived threads keep a few entries, not one each.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub threads: u64,
}

fn one() -> u64 {
    1
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

/// The counters of one call stack on one thread. A block freed or reallocated by another thread
/// stays charged to the thread that allocated it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Site {
    /// Index into [`Snapshot::stacks`].
    pub stack: u32,
    /// Index into [`Snapshot::threads`].
    pub thread: u32,
    pub live_bytes: u64,
    pub live_blocks: u64,
    pub total_bytes: u64,
    pub total_blocks: u64,
    /// Live bytes at the peak: when the process's live bytes last reached their maximum (since
    /// start, or since `reset_peak`), as dhat-rs's "At t-gmax". Exact when one thread allocates
    /// at a time; see the README for the bound with several.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub peak_bytes: u64,
    /// Live blocks at the peak.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub peak_blocks: u64,
    /// Temporary blocks: freed by the allocating thread before its next allocation (heaptrack's
    /// rule; a realloc of the same block is not another allocation). Exact mode only.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub temporary_blocks: u64,
    /// Reallocs of this site's blocks (each also counts in `total_blocks`, as dhat-rs counts them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reallocs: u64,
    /// Bytes those reallocs copied, when the block moved: the cost of growing without reserving.
    /// Exact mode only.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub realloc_copied_bytes: u64,
    /// Lifetimes mode only (see [`CaptureInfo::lifetimes`]): the summed lifetimes of the site's
    /// blocks in microseconds, from allocation to free, or to the snapshot for live blocks (a
    /// realloc does not end a block's life). Divided by the allocations (`total_blocks` less
    /// `reallocs`), the mean lifetime; dhat-rs's `tl`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lifetimes_us: u64,
    /// Lifetimes mode only: the site's own maximum of live bytes, and its live blocks then
    /// (dhat-rs's `mb`, `mbk`), checked at each allocation and growing realloc by the allocating
    /// thread: a block grown by another thread counts from the allocating thread's next change.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_bytes: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_blocks: u64,
    /// The task label the blocks were allocated under (`tracealloc::labeled`, `with_label`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Sampled mode: the variances of the site's estimates, from which their standard errors
    /// come (see [`crate::Stat::standard_errors`]). Absent in exact mode, and in files written
    /// before they were recorded (the errors are then approximated from the figures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variance: Option<Variance>,
}

/// The variances of a sampled site's (or group's) estimates, summed over the sampled blocks they
/// stand for. A block of `s` bytes sampled with probability `p` (`1 - exp(-s / mean)`, `mean`
/// the interval it was sampled at) stands for `1 / p` blocks and `s / p` bytes, and adds
/// `(1 - p) / p²` to the blocks' variance and about `mean x s` to the bytes'. So a site of mixed
/// block sizes gets the error its small blocks give it, and a site whose blocks were sampled at
/// several intervals gets each block's own.
///
/// Bytes' variances are kept in bytes² / 1024 (so that a service's lifetime of allocations fits),
/// blocks' in blocks².
///
/// ```
/// use tracealloc_snapshot::Variance;
///
/// let mut variance = Variance::default();
/// variance.live_blocks = 400; // a standard error of 20 blocks
/// variance.live_bytes_kib = 1024 * 1024; // of 1 KiB
/// assert_eq!((variance.live_blocks as f64).sqrt(), 20.0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Variance {
    pub live_bytes_kib: u64,
    pub live_blocks: u64,
    pub total_bytes_kib: u64,
    pub total_blocks: u64,
}

impl Variance {
    /// The sum of two variances (of estimates made of different blocks).
    pub fn plus(self, other: Variance) -> Variance {
        Variance {
            live_bytes_kib: self.live_bytes_kib.saturating_add(other.live_bytes_kib),
            live_blocks: self.live_blocks.saturating_add(other.live_blocks),
            total_bytes_kib: self.total_bytes_kib.saturating_add(other.total_bytes_kib),
            total_blocks: self.total_blocks.saturating_add(other.total_blocks),
        }
    }
}

/// How stacks were captured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CaptureInfo {
    /// `frame-pointers`, `dwarf-unwind`, or `none`.
    pub method: String,
    /// Frames kept per stack at most; deeper stacks are truncated.
    pub max_depth: u32,
    /// Whether the program was found to be built with frame pointers.
    pub frame_pointers: bool,
    /// Whether `TRACEALLOC_CAPTURE=unwind` chose the DWARF unwinder (as `tracealloc run` does by
    /// default): then nothing was found about frame pointers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub method_from_env: bool,
    /// Mean bytes between samples when sampling (site figures are then estimates; the totals stay
    /// exact); 0 when every block is tracked. The interval in use when the snapshot was taken: it
    /// can change while the program runs (see `sampling_changes`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sampling_bytes: u64,
    /// Sampled mode: how many times the interval was changed while the program ran
    /// (`tracealloc::set_sampling_interval`, the control socket's `sample`). Blocks keep the
    /// weight of the interval they were sampled at, so the estimates stay unbiased; 0 (absent)
    /// when it never changed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sampling_changes: u64,
    /// Sampled mode, when the interval changed: the distinct intervals used, in the order they
    /// were first used (the start-up one first); empty (absent) when it never changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sampling_history: Vec<u64>,
    /// Whether `TRACEALLOC_SAMPLE` chose the mode (sampled, or exact with 0), overriding the
    /// program's own `Profiler` setting.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sampling_from_env: bool,
    /// Whether lifetimes were recorded (`Profiler::lifetimes`, `TRACEALLOC_LIFETIMES=1`): each
    /// site's `lifetimes_us`, `max_bytes` and `max_blocks`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lifetimes: bool,
    /// Whether `TRACEALLOC_LIFETIMES` chose that (on or off).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lifetimes_from_env: bool,
    /// Lifetimes mode: the step of the clock lifetimes are read from, in nanoseconds (the kernel's
    /// tick, 1-4 ms; 0 when unknown). A mean lifetime is right on average over many blocks but
    /// means little below one step.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lifetime_clock_ns: u64,
    /// Sampled mode: the seed of the random intervals (`TRACEALLOC_SEED` with it reproduces the
    /// samples of a deterministic program).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_seed: Option<u64>,
    /// Whether `TRACEALLOC_SEED` chose the seed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sampling_seed_from_env: bool,
    /// Which site a realloc charges the block to (see [`ReallocCharge`]). Absent (files written
    /// before this field existed, or charging to the origin): the origin.
    #[serde(default, skip_serializing_if = "ReallocCharge::is_origin")]
    pub reallocs_charged_to: ReallocCharge,
}

/// Which site a realloc charges its block to: the block's bytes, live and allocated, belong to
/// one site at a time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ReallocCharge {
    /// The stack that resized it, as heaptrack, jemalloc and Go's profiles do: a buffer made in one
    /// function and grown in another is charged, from its growth on, where it grew. Both exact and
    /// sampled mode: the only rule sampled mode can estimate without bias.
    Resizer,
    /// The stack that first allocated it, whatever resizes it later, as dhat-rs does (exact mode
    /// with `TRACEALLOC_REALLOC=origin`, and lifetimes mode, whose DHAT export needs it).
    #[default]
    Origin,
}

impl ReallocCharge {
    fn is_origin(&self) -> bool {
        *self == ReallocCharge::Origin
    }

    /// `resizer` or `origin`, as the environment variable and the files spell it.
    ///
    /// ```
    /// use tracealloc_snapshot::ReallocCharge;
    ///
    /// assert_eq!(ReallocCharge::Resizer.name(), "resizer");
    /// assert_eq!(ReallocCharge::Origin.name(), "origin"); // `TRACEALLOC_REALLOC=origin`
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            ReallocCharge::Resizer => "resizer",
            ReallocCharge::Origin => "origin",
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Where and when the snapshot was taken: the psutil-style view of the process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Metadata {
    pub pid: u32,
    pub command: Vec<String>,
    /// Milliseconds since the Unix epoch.
    pub time_unix_ms: u64,
    pub capture: CaptureInfo,
    /// Resident set size of the whole process at the moment, from the kernel.
    pub rss_bytes: u64,
    /// Threads of the process at the moment, from the kernel.
    pub thread_count: u64,
    pub tracealloc_version: String,
    /// The working directory of the process: the program's own source paths are shown relative
    /// to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// The program's workspace, when its executable lies in a cargo `target` directory (the
    /// directory that holds `target`): its source paths are shown relative to it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_dir: Option<String>,
    /// The inner allocator's own figures, when it reports them (jemalloc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocator: Option<AllocatorStats>,
}

/// An allocator's own view of its memory (jemalloc's `stats.*`), in bytes: what the program asked
/// for against what the allocator holds from the system.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AllocatorStats {
    pub name: String,
    pub allocated: u64,
    pub active: u64,
    pub resident: u64,
    pub mapped: u64,
    pub retained: u64,
    pub metadata: u64,
}

/// How the stack captures ended. A profile with many broken chains is not to be trusted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CaptureCounts {
    /// The walk reached the outermost frame.
    pub complete: u64,
    /// The walk stopped at the depth limit.
    pub truncated: u64,
    /// The frame chain was broken (a frame without a frame pointer, or corrupt).
    pub broken: u64,
    /// Not captured: the thread's stack bounds could not be read (a thread other than the main one
    /// in a chroot without `/proc`), and a walk without them could read past the stack.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub no_stack_bounds: u64,
    /// Not captured: stack capture was off (`TRACEALLOC_CAPTURE_AT_START=0` before a start, or
    /// after `stop_capture`); charged to [`CAPTURE_OFF_FRAME`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub capture_off: u64,
}

/// The profiler's own cost and honesty figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProfilerFigures {
    /// Memory the profiler holds for itself: its tables, and heap blocks of its own.
    pub own_bytes: u64,
    /// The part of `own_bytes` in the profiler's tables (records, stacks, thread states); the
    /// rest is its heap: the symbol cache, mostly.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tables_bytes: u64,
    /// Distinct (stack, thread) records kept.
    pub stacks_captured: u64,
    /// How every stack capture ended, over all allocations.
    pub captures: CaptureCounts,
    /// Milliseconds the snapshot took to copy and symbolize.
    pub snapshot_ms: u64,
    /// Records whose thread stayed inside an update while the snapshot read them (a thread
    /// stopped mid-update): their owner-side figures could not be read consistently and are left
    /// out rather than reported torn.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unreadable_records: u64,
    /// Allocations charged to `[other stacks]` sites: made at new stacks past the cap on distinct
    /// stacks (`max_stacks`, set with `TRACEALLOC_MAX_STACKS`), or when memory for the tables ran
    /// out.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_stacks_allocations: u64,
    /// The cap on distinct (stack, thread) records.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_stacks: u64,
    /// Threads that could not get a profiler state because memory for it ran out: they went on
    /// without one (retrying only at a later thread's start).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub threads_without_state: u64,
    /// Allocations counted in the totals but charged to no stack: made by threads without a
    /// state (above), or by exiting threads after their exit hook ran.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub allocations_without_state: u64,
}

/// A snapshot of the heap: every call site's counters per thread, with symbolized stacks.
///
/// `tracealloc::snapshot()` takes one, [`Snapshot::load`] reads one from a file; tests and tools
/// build them in code:
///
/// ```
/// use tracealloc_snapshot::{
///     CaptureInfo, Frame, GroupBy, Metadata, Site, Snapshot, Stack, ThreadInfo,
/// };
///
/// let capture = CaptureInfo::new("frame-pointers", 128, true);
/// let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
/// snapshot.threads.push(ThreadInfo::new("main", 1, true)); // thread 0
/// // Frames, and stacks as frame indices, innermost first.
/// snapshot.frames.push(Frame::new("app::cache::insert").at("src/cache.rs", Some(12), None));
/// snapshot.frames.push(Frame::new("app::main").at("src/main.rs", Some(5), None));
/// snapshot.stacks.push(Stack::new(vec![0, 1])); // stack 0
/// // A site: a stack on a thread, with its counters.
/// let mut site = Site::new(0, 0);
/// (site.live_bytes, site.live_blocks, site.total_bytes, site.total_blocks) = (4096, 4, 8192, 8);
/// snapshot.sites.push(site);
/// snapshot.totals = snapshot.site_sum();
///
/// let line = &snapshot.top(1, GroupBy::Line)[0];
/// assert_eq!(
///     line.to_string(),
///     "src/cache.rs:12: live 4 KiB in 4 blocks, total 8 KiB in 8 blocks"
/// );
/// let stack = &snapshot.top(1, GroupBy::Stack)[0];
/// assert_eq!(stack.key, "app::cache::insert (src/cache.rs:12) <- app::main (src/main.rs:5)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// Always [`crate::FORMAT_NAME`].
    pub format: String,
    /// The file format version; this build reads [`crate::FORMAT_VERSION`].
    pub version: u32,
    pub meta: Metadata,
    pub totals: HeapStats,
    pub profiler: ProfilerFigures,
    pub frames: Vec<Frame>,
    pub stacks: Vec<Stack>,
    pub threads: Vec<ThreadInfo>,
    pub sites: Vec<Site>,
    /// Memory over time, oldest first: a few thousand points at most, the peak among them, the
    /// snapshot's own moment last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimePoint>,
    /// The object files the stacks' return addresses lie in (raw snapshots; kept once symbolized,
    /// for pprof's mappings and to say where names came from).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<crate::raw::Module>,
    /// A raw snapshot's return addresses, until it is symbolized (see [`crate::raw`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsymbolized: Option<crate::raw::Unsymbolized>,
    /// What symbolizing a raw snapshot could not do, one line per module (a binary that no longer
    /// matches its build ID, no debug info found): why some frames have no file:line or name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symbolization_notes: Vec<String>,
}

/// One moment of the timeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TimePoint {
    /// Milliseconds since the profiler's first allocation.
    pub t_ms: u64,
    pub live_bytes: u64,
    pub live_blocks: u64,
    /// The process's resident memory (read at most every 10 ms; 0 when unknown).
    pub rss_bytes: u64,
}

impl TimePoint {
    /// The moment `t_ms` milliseconds after the first allocation, with its live bytes and blocks
    /// and the process's resident memory.
    ///
    /// ```
    /// use tracealloc_snapshot::{Snapshot, TimePoint};
    ///
    /// let mut snapshot = Snapshot::empty();
    /// snapshot.timeline = vec![TimePoint::new(0, 0, 0, 0), TimePoint::new(250, 4096, 2, 8 << 20)];
    /// let peak = snapshot.timeline.iter().max_by_key(|p| p.live_bytes).unwrap();
    /// assert_eq!((peak.t_ms, peak.live_blocks), (250, 2));
    /// ```
    pub fn new(t_ms: u64, live_bytes: u64, live_blocks: u64, rss_bytes: u64) -> TimePoint {
        TimePoint {
            t_ms,
            live_bytes,
            live_blocks,
            rss_bytes,
        }
    }
}

impl Snapshot {
    /// An empty snapshot without metadata (a placeholder; allocates nothing).
    ///
    /// ```
    /// use tracealloc_snapshot::Snapshot;
    ///
    /// let empty = Snapshot::empty();
    /// assert!(empty.sites.is_empty() && empty.format.is_empty()); // not a file's snapshot
    /// ```
    pub fn empty() -> Self {
        let capture = CaptureInfo::new(String::new(), 0, false);
        let mut empty = Snapshot::new_without_format(Metadata::new(0, Vec::new(), capture));
        empty.version = 0;
        empty
    }

    /// An empty snapshot of the current format with the given metadata.
    ///
    /// ```
    /// use tracealloc_snapshot::{CaptureInfo, FORMAT_NAME, FORMAT_VERSION, Metadata, Snapshot};
    ///
    /// let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// let snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// assert_eq!((snapshot.format.as_str(), snapshot.version), (FORMAT_NAME, FORMAT_VERSION));
    /// assert_eq!(snapshot.totals.live_bytes, 0);
    /// ```
    pub fn new(meta: Metadata) -> Self {
        let mut snapshot = Snapshot::new_without_format(meta);
        snapshot.format = crate::FORMAT_NAME.to_owned();
        snapshot
    }

    fn new_without_format(meta: Metadata) -> Self {
        Snapshot {
            format: String::new(),
            version: crate::FORMAT_VERSION,
            meta,
            totals: HeapStats::default(),
            profiler: ProfilerFigures::default(),
            frames: Vec::new(),
            stacks: Vec::new(),
            threads: Vec::new(),
            sites: Vec::new(),
            timeline: Vec::new(),
            modules: Vec::new(),
            unsymbolized: None,
            symbolization_notes: Vec::new(),
        }
    }

    /// `text` with its source paths shortened for people ([`crate::short_paths_in`]): relative
    /// to the program's workspace when known, else to its working directory.
    ///
    /// ```
    /// use tracealloc_snapshot::Snapshot;
    ///
    /// let mut snapshot = Snapshot::empty();
    /// snapshot.meta.workspace_dir = Some("/home/me/app".into());
    /// assert_eq!(snapshot.short_paths("/home/me/app/src/main.rs:3"), "src/main.rs:3");
    /// let std = "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/rt.rs:206";
    /// assert_eq!(snapshot.short_paths(std), "std/src/rt.rs:206");
    /// ```
    pub fn short_paths<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        let root = self.meta.workspace_dir.as_deref();
        let shorter = crate::short_paths_in(text, root.or(self.meta.working_dir.as_deref()));
        match (root, &self.meta.working_dir) {
            (Some(_), Some(workdir)) if shorter.contains('/') => {
                std::borrow::Cow::Owned(crate::short_paths_in(&shorter, Some(workdir)).into_owned())
            }
            _ => shorter,
        }
    }

    /// The frames of a stack, innermost first.
    ///
    /// ```
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
    /// let snapshot = snapshot_of(&[("app::cache", "src/cache.rs:12", 4, 4)]);
    /// let site = &snapshot.sites[0];
    /// let frames: Vec<String> = snapshot.stack_frames(site.stack).map(|f| f.label()).collect();
    /// assert_eq!(frames, ["app::cache (src/cache.rs:12)"]);
    /// ```
    pub fn stack_frames(&self, stack: u32) -> impl Iterator<Item = &Frame> + '_ {
        self.stacks[stack as usize]
            .frames
            .iter()
            .map(|&f| &self.frames[f as usize])
    }

    /// Sum of the sites' counters (equal to `totals` when the program was quiescent, except blocks
    /// allocated before the profiler could capture stacks).
    ///
    /// ```
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
    /// let sum = snapshot.site_sum();
    /// assert_eq!((sum.live_bytes, sum.live_blocks, sum.total_blocks), (5 * 1024, 5, 24));
    /// assert_eq!(sum.peak_bytes, 0); // the peak is the process's: `totals` only
    /// ```
    pub fn site_sum(&self) -> HeapStats {
        let mut sum = HeapStats::default();
        for site in &self.sites {
            sum.live_bytes += site.live_bytes;
            sum.live_blocks += site.live_blocks;
            sum.total_bytes += site.total_bytes;
            sum.total_blocks += site.total_blocks;
        }
        sum
    }
}
