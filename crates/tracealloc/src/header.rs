//! The header in front of every block: the address of the block's site record, so `dealloc` and
//! `realloc` find it without a lookup.
//!
//! ```text
//!  inner block: [ padding ... | record address (8 bytes) ][ user bytes ... ]
//!               ^ base                                     ^ base + pad, returned to the caller
//! ```
//! `pad` is the larger of 8 and the alignment, so the user pointer keeps its alignment. Every block
//! has a header, the profiler's own included (their record address is null), so a block made under
//! the reentrancy guard and freed outside it is still read correctly.

use std::alloc::Layout;

use crate::record::SiteRecord;

const HEADER: usize = std::mem::size_of::<usize>();

/// The inner allocation for a user layout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outer {
    pub(crate) layout: Layout,
    pub(crate) pad: usize,
}

impl Outer {
    /// The inner layout for `layout`, or `None` when it would overflow (then the allocation fails).
    #[inline(always)]
    pub(crate) fn of(layout: Layout) -> Option<Outer> {
        Self::of_size(layout.size(), layout.align())
    }

    #[inline(always)]
    pub(crate) fn of_size(size: usize, align: usize) -> Option<Outer> {
        let pad = align.max(HEADER);
        let size = size.checked_add(pad)?;
        let layout = Layout::from_size_align(size, pad).ok()?;
        Some(Outer { layout, pad })
    }
}

/// Writes a block's record address.
///
/// # Safety
/// `user` is `base + pad` of a live inner block of at least `pad` bytes before `user`, `pad >= 8`.
#[inline(always)]
pub(crate) unsafe fn write(user: *mut u8, record: *const SiteRecord) {
    // SAFETY: the 8 bytes before `user` lie in the block's padding; `user` is 8-aligned at least.
    unsafe { user.cast::<*const SiteRecord>().sub(1).write(record) }
}

/// Reads a block's record address.
///
/// # Safety
/// `user` was returned by the profiler's `alloc`, `alloc_zeroed` or `realloc`, and is live.
#[inline(always)]
pub(crate) unsafe fn read(user: *mut u8) -> *const SiteRecord {
    // SAFETY: the profiler wrote the record address just before every user pointer it returned.
    unsafe { user.cast::<*const SiteRecord>().sub(1).read() }
}
