//! The snapshot model of tracealloc, in safe code: what a snapshot holds, its file format, grouping
//! into statistics, diffs between two snapshots, filters and folded stacks for flamegraphs.
//!
//! The allocator runtime (`tracealloc`) builds [`Snapshot`]s; the CLI reads them from files. Neither
//! needs the other: this crate has no allocator code.

#![forbid(unsafe_code)]

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
pub mod pprof;

pub use diff::{SnapshotDiff, StatDiff};
pub use filter::Filter;
pub use folded::{FoldOptions, Metric, SMALLER_STACKS_FRAME};
pub use format::{
    FORMAT_NAME, FORMAT_VERSION, LoadError, LoadProblem, MAX_FILE_BYTES, SaveError,
    write_atomically,
};
pub use group::{GroupBy, StandardErrors, Stat};
pub use human::{
    blocks, human_bytes, human_bytes_signed, human_count, human_count_signed, human_date,
    human_duration_ms, human_duration_us, human_lifetime,
};
pub use model::{
    AllocatorStats, CaptureCounts, CaptureInfo, Frame, HeapStats, Metadata, OTHER_STACKS_FRAME,
    ProfilerFigures, ReallocCharge, Site, Snapshot, Stack, TRUNCATED_FRAME, ThreadInfo, TimePoint,
};
pub use paths::{short_path, short_paths_in, workspace_of};
pub use plumbing::{DEFAULT_FOLDED_CRATES, FOLDED_FRAME_PREFIX, FrameFolding};
