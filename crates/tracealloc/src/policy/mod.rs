//! How the allocator hooks account each block: one policy for the whole process, chosen by the
//! configuration (`config`), and dispatched to once, at the `GlobalAlloc` entry (`alloc`), so that
//! each policy's code is compiled on its own, with no test of the others.
//!
//! ```text
//!  exact      every block, with its stack (header or trailer: `block::header`); a realloc
//!             charges it to the resizing stack, or with `origin` leaves it at its first site
//!  lifetimes  exact, and each block's birth and death on the coarse clock
//!  sampled    one block per `mean` bytes, with its stack; blocks aligned to at most 8 carry a
//!             record only when they need one (`block::tagged`), the others a header or trailer
//! ```
//!
//! What every policy shares is here: the hooks of a block with a header or a trailer. They take
//! the reentrancy guard, find the calling thread's state, and hand the event to the policy; a
//! block of the profiler's own (null record), an event inside the profiler, or a thread without a
//! state is counted here, the same way for every policy.

pub(crate) mod exact;
pub(crate) mod sampled;

use crate::config::Request;
use crate::guard::ReentrancyGuard;
use crate::process::{REGISTRY, current_thread, current_thread_for};
use crate::state::record::SiteRecord;
use crate::state::thread::ThreadState;

pub(crate) use exact::{Exact, ExactOrigin, Lifetimes};
pub(crate) use sampled::Sampled;

/// A policy's accounting of the events of a block with a header or a trailer, on the calling
/// thread's state, under the reentrancy guard.
///
/// The entry points call a policy's `on_*` methods; each of its implementations forwards to the
/// hook below of its name, which calls the policy's other methods. The implementations are not
/// generic, so that they are compiled in this crate (see [`hook_alloc`]).
pub(crate) trait Policy: Copy {
    /// [`hook_alloc`] under this policy.
    fn on_alloc(self, size: usize, address: usize, request: Request) -> *const SiteRecord;

    /// [`hook_realloc`] under this policy.
    fn on_realloc(
        self,
        record: *const SiteRecord,
        old: usize,
        new: usize,
        moved: (usize, usize),
    ) -> *const SiteRecord;

    /// [`hook_dealloc`] under this policy.
    fn on_dealloc(self, record: *const SiteRecord, size: usize, address: usize);

    /// Accounts a new block of `size` bytes at `address` on `thread`; returns its record.
    fn alloc(self, thread: &'static ThreadState, size: usize, address: usize) -> *const SiteRecord;

    /// Whether `site`, a block's record that is not null, is one this policy accounts events of
    /// on a thread's state (the others are counted as orphans).
    fn accepts(site: &SiteRecord) -> bool;

    /// Accounts a resize of a block of `site` (its record pointer `record`) from `old` to `new`
    /// bytes, moved from `moved.0` to `moved.1`; returns the record for the new block.
    fn realloc(
        self,
        thread: &'static ThreadState,
        site: &'static SiteRecord,
        old: usize,
        new: usize,
        moved: (usize, usize),
    ) -> *const SiteRecord;

    /// Accounts the free of a block of `site` of `size` bytes at `address`.
    fn dealloc(
        self,
        thread: &'static ThreadState,
        site: &'static SiteRecord,
        size: usize,
        address: usize,
    );
}

/// Accounts a new block of `size` bytes under `policy` (`request`: the settings of the `Profiler`
/// value in use); returns the record to store in its header (null for the profiler's own blocks).
///
/// `Profiler::alloc` is generic, so it is compiled in the user's crate at the user's opt-level;
/// each policy's `on_alloc` calling this is not generic, and is compiled here. In a dev profile (debug
/// assertions on) those are not inlined, so that they run as compiled here: optimized when the
/// user follows the README's debug setup (`opt-level = 3` for tracealloc alone). In release they
/// are inlined: a call would cost about 30 instructions per event.
#[inline(always)]
pub(crate) fn hook_alloc<P: Policy>(
    policy: P,
    size: usize,
    address: usize,
    request: Request,
) -> *const SiteRecord {
    let Some(_guard) = ReentrancyGuard::enter() else {
        REGISTRY.record_own(size as i64);
        return std::ptr::null();
    };
    let Some(thread) = current_thread_for(Some(request)) else {
        return REGISTRY.record_orphan_alloc(size);
    };
    policy.alloc(thread, size, address)
}

/// Accounts a realloc of a block of `record` from `old` to `new` bytes under `policy`; returns the
/// record for the new block's header (the same, except when sampling changes its site). Compiled
/// here, as [`hook_alloc`].
#[inline(always)]
pub(crate) fn hook_realloc<P: Policy>(
    policy: P,
    record: *const SiteRecord,
    old: usize,
    new: usize,
    moved: (usize, usize),
) -> *const SiteRecord {
    // SAFETY: header records are null, the sampling sentinel, or published records, never freed.
    let Some(site) = (unsafe { record.as_ref() }) else {
        REGISTRY.record_own(new as i64 - old as i64);
        return record;
    };
    // A sampled realloc may capture a stack, and a capture may allocate (the unwinder's caches):
    // nested allocations must go straight to the inner allocator.
    let Some(_guard) = ReentrancyGuard::enter() else {
        REGISTRY.record_orphan_change(site, old, new, false);
        return record;
    };
    match current_thread() {
        Some(thread) if P::accepts(site) => policy.realloc(thread, site, old, new, moved),
        _ => {
            REGISTRY.record_orphan_change(site, old, new, false);
            record
        }
    }
}

/// Accounts the free of a block of `record` of `size` bytes under `policy`. Compiled here, as
/// [`hook_alloc`].
#[inline(always)]
pub(crate) fn hook_dealloc<P: Policy>(
    policy: P,
    record: *const SiteRecord,
    size: usize,
    address: usize,
) {
    // SAFETY: header records are null, the sampling sentinel, or published records, never freed.
    let Some(site) = (unsafe { record.as_ref() }) else {
        REGISTRY.record_own(-(size as i64));
        return;
    };
    // Making the thread's state (its first event may be a free) takes the guard itself; nothing
    // else here allocates, but the guard keeps every hook under one rule.
    let Some(_guard) = ReentrancyGuard::enter() else {
        REGISTRY.record_orphan_change(site, size, 0, true);
        return;
    };
    match current_thread() {
        Some(thread) if P::accepts(site) => policy.dealloc(thread, site, size, address),
        _ => REGISTRY.record_orphan_change(site, size, 0, true),
    }
}

/// The entry points' methods of a [`Policy`] (`on_alloc`, `on_realloc`, `on_dealloc`), written
/// once for every policy's `impl`: each forwards to the shared hook of its name. They are not
/// generic, so they are compiled in this crate; in a dev profile they are not inlined, so that they
/// run as compiled here (see [`hook_alloc`]).
macro_rules! entry_hooks {
    () => {
        #[cfg_attr(debug_assertions, inline(never))]
        #[cfg_attr(not(debug_assertions), inline(always))]
        fn on_alloc(
            self,
            size: usize,
            address: usize,
            request: crate::config::Request,
        ) -> *const crate::state::record::SiteRecord {
            crate::policy::hook_alloc(self, size, address, request)
        }

        #[cfg_attr(debug_assertions, inline(never))]
        #[cfg_attr(not(debug_assertions), inline(always))]
        fn on_realloc(
            self,
            record: *const crate::state::record::SiteRecord,
            old: usize,
            new: usize,
            moved: (usize, usize),
        ) -> *const crate::state::record::SiteRecord {
            crate::policy::hook_realloc(self, record, old, new, moved)
        }

        #[cfg_attr(debug_assertions, inline(never))]
        #[cfg_attr(not(debug_assertions), inline(always))]
        fn on_dealloc(
            self,
            record: *const crate::state::record::SiteRecord,
            size: usize,
            address: usize,
        ) {
            crate::policy::hook_dealloc(self, record, size, address)
        }
    };
}
pub(crate) use entry_hooks;
