//! Per-thread state: everything an allocation writes, in memory the profiler carves for itself.
//!
//! ```text
//!  carve    the profiler's own mappings, never freed
//!  seqlock  one writer (the owner thread), readers that never block it
//!  record   a (stack, thread) pair's counters
//!  thread   a thread's counters, stack table and records, under its sequence lock
//! ```

pub(crate) mod carve;
pub(crate) mod record;
pub(crate) mod seqlock;
pub(crate) mod thread;
