//! The cap on distinct (stack, thread) records in the whole process, and how many were made.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The cap on distinct (stack, thread) records in the process, so that programs with unbounded
/// stack shapes (deep recursion over varied input) keep bounded tables: past it, new stacks are
/// charged, exactly, to their thread's `[other stacks]` record. Set with `TRACEALLOC_MAX_STACKS`.
pub(crate) struct StackBudget {
    made: AtomicUsize,
    cap: AtomicUsize,
}

pub(crate) static STACK_BUDGET: StackBudget = StackBudget {
    made: AtomicUsize::new(0),
    cap: AtomicUsize::new(crate::config::DEFAULT_MAX_STACKS),
};

impl StackBudget {
    /// Takes the cap from the configuration, once, at the first thread's start.
    pub(crate) fn configure(&self, config: &crate::config::Config) {
        self.cap.store(config.max_stacks, Ordering::Relaxed);
    }

    /// Counts one more record, or returns false when the cap is reached.
    pub(crate) fn take_one(&self) -> bool {
        let cap = self.cap.load(Ordering::Relaxed);
        self.made
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |made| {
                (made < cap).then_some(made + 1)
            })
            .is_ok()
    }

    /// `(records made, cap)`, for the snapshot.
    pub(crate) fn figures(&self) -> (u64, u64) {
        (
            self.made.load(Ordering::Relaxed) as u64,
            self.cap.load(Ordering::Relaxed) as u64,
        )
    }
}
