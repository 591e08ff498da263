//! Per-thread state: everything an allocation writes, in memory the profiler carves for itself.
//!
//! ```text
//!  atomic      the atomics of what other threads read: std's, or loom's in the loom models
//!  carve       the profiler's own mappings, never freed
//!  seqlock     one writer (the owner thread), readers that never block it
//!  counters    a site's counters, as atomics, as read and as a change
//!  record      a (stack, thread) pair's counters
//!  stack_tree  a thread's stored stacks, sharing their outer frames
//!  table       a thread's records by stack identity: its open-addressing hash table
//!  budget      the cap on distinct (stack, thread) records in the process
//!  measures    the `measure` calls running on a thread, and their figures so far
//!  pool        exited threads' states, each taken on by one new thread
//!  thread      a thread's counters, stack table and records, under its sequence lock
//! ```

pub(crate) mod atomic;
pub(crate) mod budget;
pub(crate) mod carve;
pub(crate) mod counters;
pub(crate) mod measures;
pub(crate) mod pool;
pub(crate) mod record;
pub(crate) mod seqlock;
pub(crate) mod stack_tree;
pub(crate) mod table;
pub(crate) mod thread;
