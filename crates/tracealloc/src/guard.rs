//! The thread-local reentrancy guard. Every profiler path that can allocate runs under it; an
//! allocation made while it is held is the profiler's own and goes straight to the inner
//! allocator, untracked.
//!
//! The flag is a `const`-initialized `Cell<bool>`: no lazy initialization and no destructor, so it
//! works before `main`, during thread start and exit, and inside TLS destructors.

use std::cell::Cell;

thread_local! {
    static IN_PROFILER: Cell<bool> = const { Cell::new(false) };
}

/// Held while profiler code runs on this thread; dropping it leaves the profiler.
#[derive(Debug)]
pub(crate) struct ReentrancyGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl ReentrancyGuard {
    /// Enters the profiler on this thread, or `None` when this thread is already inside it.
    #[inline(always)]
    pub(crate) fn enter() -> Option<ReentrancyGuard> {
        IN_PROFILER.with(|flag| {
            if flag.replace(true) {
                None
            } else {
                Some(ReentrancyGuard {
                    _not_send: std::marker::PhantomData,
                })
            }
        })
    }

    /// Whether this thread is inside the profiler (without entering it).
    #[inline(always)]
    pub(crate) fn is_held() -> bool {
        IN_PROFILER.with(Cell::get)
    }

    /// Runs `f` inside the profiler: its allocations are the profiler's own. Nested calls are fine.
    pub(crate) fn untracked<R>(f: impl FnOnce() -> R) -> R {
        let _guard = Self::enter();
        f()
    }
}

impl Drop for ReentrancyGuard {
    #[inline(always)]
    fn drop(&mut self) {
        IN_PROFILER.with(|flag| flag.set(false));
    }
}
