//! The `measure` calls running on a thread, as the thread keeps them: each one's figures so far,
//! and where the thread's records stood when it began.

use std::ptr;

use crate::state::record::RecordChunk;

/// The most measures that can be nested on one thread.
pub(crate) const MAX_NESTED_MEASURES: usize = 8;

/// The `measure` calls running on a thread: their figures so far, kept by the thread itself.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct Measures {
    pub(crate) depth: usize,
    pub(crate) levels: [MeasureLevel; MAX_NESTED_MEASURES],
}

/// One running measure. Its scope id is larger than every scope id given out before it began, so
/// a record of this thread belongs to it, or to a measure nested in it, exactly when the record's
/// scope is at least this one.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MeasureLevel {
    pub(crate) scope: u64,
    /// Allocations (reallocs included, as in the totals) and their bytes, exact in every mode.
    pub(crate) allocations: u64,
    pub(crate) bytes: u64,
    /// Live bytes of the blocks the measure allocated, as this thread changed them, and their
    /// highest value (estimates in sampled mode).
    pub(crate) live_bytes: i64,
    pub(crate) peak_bytes: i64,
    /// Blocks allocated before the measure and freed by this thread inside it.
    pub(crate) freed_before_blocks: u64,
    pub(crate) freed_before_bytes: u64,
    /// Where this thread's records stood when the measure began: every record after it is the
    /// measure's (records of a scope are made inside it).
    pub(crate) first_record: RecordMark,
}

/// A position in a thread's list of records: a chunk and how many of its records came before.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordMark {
    pub(crate) chunk: *const RecordChunk,
    pub(crate) index: usize,
}

impl Default for RecordMark {
    fn default() -> Self {
        RecordMark {
            chunk: ptr::null(),
            index: 0,
        }
    }
}

impl Measures {
    /// The innermost running measure's scope, 0 when none runs.
    #[inline(always)]
    pub(crate) fn current_scope(&self) -> u64 {
        match self.depth {
            0 => 0,
            depth => self.levels[depth - 1].scope,
        }
    }

    /// The running measures, outermost first.
    #[inline(always)]
    pub(crate) fn running(&mut self) -> &mut [MeasureLevel] {
        &mut self.levels[..self.depth]
    }
}
