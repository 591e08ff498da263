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
mod model;
mod paths;
#[cfg(feature = "pprof")]
pub mod pprof;
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
pub use group::{GroupBy, StandardErrors, Stat};
pub use model::{
    AllocatorStats, CaptureCounts, CaptureInfo, Frame, HeapStats, Metadata, OTHER_STACKS_FRAME,
    ProfilerFigures, ReallocCharge, Site, Snapshot, Stack, TRUNCATED_FRAME, ThreadInfo, TimePoint,
};
pub use paths::{short_path, short_paths_in, workspace_of};
pub use raw::{Module, NO_MODULE, RAW_FORMAT_VERSION, RawAddress, Unsymbolized};

/// Formats a byte count in binary units ("1.50 KiB"), as every human-facing table does.
pub fn human_bytes(bytes: u64) -> String {
    humansize::format_size(bytes, humansize::BINARY)
}

/// Formats a signed byte count with an explicit sign ("+1.50 KiB", "-12 B", "0 B").
pub fn human_bytes_signed(bytes: i64) -> String {
    match bytes.signum() {
        1 => format!("+{}", human_bytes(bytes.unsigned_abs())),
        -1 => format!("-{}", human_bytes(bytes.unsigned_abs())),
        _ => human_bytes(0),
    }
}

/// "1 block", "2 blocks".
pub fn blocks(n: u64) -> String {
    if n == 1 {
        "1 block".to_owned()
    } else {
        format!("{n} blocks")
    }
}

/// A count with thousands separators ("100,000").
pub fn human_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_have_separators() {
        assert_eq!(super::human_count(0), "0");
        assert_eq!(super::human_count(999), "999");
        assert_eq!(super::human_count(1000), "1,000");
        assert_eq!(super::human_count(100_000), "100,000");
        assert_eq!(super::human_count(1_234_567), "1,234,567");
    }
}
