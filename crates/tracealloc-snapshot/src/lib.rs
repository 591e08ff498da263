//! The snapshot model of tracealloc, in safe code: what a snapshot holds, its file format, grouping
//! into statistics, diffs between two snapshots, filters and folded stacks for flamegraphs.
//!
//! The allocator runtime (`tracealloc`) builds [`Snapshot`]s; the CLI reads them from files. Neither
//! needs the other: this crate has no allocator code.
//!
//! # Reading a snapshot file
//!
//! ```
//! use tracealloc_snapshot::{GroupBy, Snapshot};
//!
//! // A file the profiler wrote: a run of `leak_diff 10`, which keeps 10 blocks of 256 bytes at
//! // line 18 of its source (this crate's format-compatibility fixture).
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1.json");
//! let snapshot = Snapshot::load(path)?;
//! assert_eq!((snapshot.totals.live_bytes, snapshot.totals.live_blocks), (11_253, 17));
//!
//! // The line that leaks, among the lines ranked by live bytes.
//! let lines = snapshot.statistics(GroupBy::Line);
//! let leak = lines.iter().find(|s| s.key.ends_with("leak_diff.rs:18")).unwrap();
//! assert_eq!((leak.live_bytes, leak.live_blocks), (2_560, 10));
//! // Its blocks were allocated under a task label.
//! let labels = snapshot.statistics(GroupBy::Label);
//! assert!(labels.iter().any(|s| s.key == "cache" && s.live_bytes == 2_560));
//! # Ok::<(), tracealloc_snapshot::LoadError>(())
//! ```
//!
//! [`Snapshot`]'s own documentation shows how to build one in code. The other examples of this
//! crate build small snapshots with a helper hidden in them, `snapshot_of(&[(function,
//! "file:line", live blocks, total blocks)])`: for each line, a one-frame stack and a site of
//! 1 KiB blocks on the main thread, built that way.
//!
//! Feature `pprof`: the [`pprof`](pprof/index.html) module, a snapshot as a gzipped pprof profile.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod control;
mod diff;
mod filter;
mod folded;
mod format;
mod frame;
mod group;
mod human;
mod model;
mod paths;
mod plumbing;
#[cfg(feature = "pprof")]
#[cfg_attr(docsrs, doc(cfg(feature = "pprof")))]
pub mod pprof;
#[cfg(feature = "pprof")]
mod pprof_proto;
#[cfg(feature = "pprof")]
mod pprof_raw;
pub mod raw;
#[cfg(feature = "symbolize")]
pub mod symbolize;

pub use diff::{SnapshotDiff, StatDiff};
pub use filter::Filter;
pub use folded::{FoldOptions, Metric, SMALLER_STACKS_FRAME};
pub use format::{
    FORMAT_NAME, FORMAT_VERSION, LoadError, LoadProblem, MAX_FILE_BYTES, SaveError,
    write_atomically,
};
pub use frame::one_closure_spelling;
pub use group::{GroupBy, StandardErrors, Stat};
pub use human::{
    blocks, file_stamp, human_bytes, human_bytes_signed, human_count, human_count_signed,
    human_date, human_duration_ms, human_duration_us, human_lifetime,
};
pub use model::{
    AllocatorStats, CAPTURE_OFF_FRAME, CaptureCounts, CaptureInfo, Frame, HeapStats, Metadata,
    OTHER_STACKS_FRAME, ProfilerFigures, ReallocCharge, Site, Snapshot, Stack, TRUNCATED_FRAME,
    ThreadInfo, TimePoint, Variance,
};
pub use paths::{short_path, short_paths_in, workspace_of};
pub use plumbing::{DEFAULT_FOLDED_CRATES, FOLDED_FRAME_PREFIX, FrameFolding};
pub use raw::{Module, NO_MODULE, RAW_FORMAT_VERSION, RawAddress, Unsymbolized};
