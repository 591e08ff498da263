//! Exact mode: every block is charged to its stack. A realloc charges the block to the stack that
//! resized it ([`Exact`], the default: the rule sampled mode estimates too), or leaves it at its
//! first site ([`ExactOrigin`], dhat-rs's rule, `TRACEALLOC_REALLOC=origin`). With lifetimes, each
//! block's birth and death are stamped on the coarse clock too (`accounting::stamp`), and a realloc
//! leaves it at its first site, as DHAT's program points do.

use crate::accounting::stamp::stamp;
use crate::capture::{CaptureMode, Captured};
use crate::policy::{Policy, entry_hooks};
use crate::process::REGISTRY;
use crate::state::record::SiteRecord;
use crate::state::thread::ThreadState;

/// Every block, with its stack; a realloc charges it to the resizing stack.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exact;

/// Every block, with its stack; a realloc leaves it at its first site (dhat-rs's rule).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExactOrigin;

/// Every block, with its stack and lifetime.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetimes;

/// Charges a new block of `size` bytes at `address` to the calling thread's stack; returns its
/// record.
#[inline(always)]
fn charge_new_block(
    thread: &'static ThreadState,
    size: usize,
    address: usize,
) -> &'static SiteRecord {
    // Not a helper returning the capture: returning the 2 KiB capture by value costs W1 about
    // 0.15x (measured).
    let mut captured = Captured::empty();
    captured.capture(CaptureMode::current(), thread.stack());
    // SAFETY: `thread` is the calling thread's own state.
    unsafe { REGISTRY.record_alloc(thread, &captured, size, address) }
}

impl Policy for Exact {
    entry_hooks!();

    #[inline(always)]
    fn alloc(self, thread: &'static ThreadState, size: usize, address: usize) -> *const SiteRecord {
        charge_new_block(thread, size, address)
    }

    #[inline(always)]
    fn accepts(site: &SiteRecord) -> bool {
        !site.owner.is_none()
    }

    #[inline(always)]
    fn realloc(
        self,
        thread: &'static ThreadState,
        site: &'static SiteRecord,
        old: usize,
        new: usize,
        moved: (usize, usize),
    ) -> *const SiteRecord {
        // As in `charge_new_block`: the capture stays in this frame.
        let mut captured = Captured::empty();
        captured.capture(CaptureMode::current(), thread.stack());
        // SAFETY: `thread` is the calling thread's own state.
        unsafe { REGISTRY.record_resize(thread, site, &captured, old, new, moved) }
    }

    #[inline(always)]
    fn dealloc(
        self,
        thread: &'static ThreadState,
        site: &'static SiteRecord,
        size: usize,
        address: usize,
    ) {
        // SAFETY: `thread` is the calling thread's own state.
        unsafe { REGISTRY.record_dealloc(thread, site, size, address) }
    }
}

impl Policy for ExactOrigin {
    entry_hooks!();

    #[inline(always)]
    fn alloc(self, thread: &'static ThreadState, size: usize, address: usize) -> *const SiteRecord {
        Exact.alloc(thread, size, address)
    }

    #[inline(always)]
    fn accepts(site: &SiteRecord) -> bool {
        Exact::accepts(site)
    }

    /// The block stays at its record: dhat-rs's rule, without a capture.
    #[inline(always)]
    fn realloc(
        self,
        thread: &'static ThreadState,
        site: &'static SiteRecord,
        old: usize,
        new: usize,
        moved: (usize, usize),
    ) -> *const SiteRecord {
        // SAFETY: `thread` is the calling thread's own state.
        unsafe { REGISTRY.record_realloc(thread, site, old, new, moved) };
        site
    }

    #[inline(always)]
    fn dealloc(
        self,
        thread: &'static ThreadState,
        site: &'static SiteRecord,
        size: usize,
        address: usize,
    ) {
        Exact.dealloc(thread, site, size, address)
    }
}

impl Policy for Lifetimes {
    entry_hooks!();

    #[inline(always)]
    fn alloc(self, thread: &'static ThreadState, size: usize, address: usize) -> *const SiteRecord {
        let birth = stamp();
        let record = charge_new_block(thread, size, address);
        // SAFETY: `thread` is the calling thread's own state.
        unsafe { REGISTRY.note_growth(thread, record, Some(birth)) };
        record
    }

    #[inline(always)]
    fn accepts(site: &SiteRecord) -> bool {
        Exact::accepts(site)
    }

    #[inline(always)]
    fn realloc(
        self,
        thread: &'static ThreadState,
        site: &'static SiteRecord,
        old: usize,
        new: usize,
        moved: (usize, usize),
    ) -> *const SiteRecord {
        ExactOrigin.realloc(thread, site, old, new, moved);
        if new > old {
            // SAFETY: `thread` is the calling thread's own state.
            unsafe { REGISTRY.note_growth(thread, site, None) };
        }
        site
    }

    #[inline(always)]
    fn dealloc(
        self,
        thread: &'static ThreadState,
        site: &'static SiteRecord,
        size: usize,
        address: usize,
    ) {
        // SAFETY: `thread` is the calling thread's own state.
        unsafe { REGISTRY.note_death(thread, site, stamp()) };
        Exact.dealloc(thread, site, size, address);
    }
}
