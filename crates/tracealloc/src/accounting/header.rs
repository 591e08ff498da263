//! Where each block keeps the address of its site record, so `dealloc` and `realloc` find it
//! without a lookup: a header in front for ordinary alignments, a trailer behind for large ones.
//!
//! ```text
//!  alignment <= 16: [ padding | record (8) ][ user bytes ... ]            pad = max(8, align)
//!                   ^ base                  ^ base + pad, returned to the caller
//!  alignment > 16:  [ user bytes ... | to a multiple of 8 | record (8) ]  pad = 0
//!                   ^ base, returned to the caller
//! ```
//! A header costs the alignment (8 or 16 bytes); a trailer at most 15 bytes, where a header would
//! cost a page for a page-aligned buffer. Every block has one, the profiler's own included (their
//! record address is null), so a block made under the reentrancy guard and freed outside it is
//! still read correctly. The caller's layout (the same at alloc, realloc and dealloc) says which.

use std::alloc::Layout;

use crate::state::record::SiteRecord;

const WORD: usize = std::mem::size_of::<usize>();
/// Alignments up to this get a header; larger ones a trailer.
const MAX_HEADER_ALIGN: usize = 16;

/// The inner allocation for a user layout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outer {
    pub(crate) layout: Layout,
    /// Bytes in front of the user's: the header's room, or 0 with a trailer.
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
        if align <= MAX_HEADER_ALIGN {
            let pad = align.max(WORD);
            let layout = Layout::from_size_align(size.checked_add(pad)?, pad).ok()?;
            Some(Outer { layout, pad })
        } else {
            let trailer_at = size.checked_next_multiple_of(WORD)?;
            let layout = Layout::from_size_align(trailer_at.checked_add(WORD)?, align).ok()?;
            Some(Outer { layout, pad: 0 })
        }
    }

    /// The outer layout of a block that the profiler allocated for `layout`, without the checks
    /// of [`Outer::of`] (on every free and realloc).
    ///
    /// # Safety
    /// `Outer::of(layout)` returned `Some` (the profiler allocated a block for this layout).
    #[inline(always)]
    pub(crate) unsafe fn of_allocated(layout: Layout) -> Outer {
        let (size, align) = (layout.size(), layout.align());
        // SAFETY: `of` computed these same sums without overflow and found the layouts valid.
        unsafe {
            if align <= MAX_HEADER_ALIGN {
                let pad = align.max(WORD);
                Outer {
                    layout: Layout::from_size_align_unchecked(size.unchecked_add(pad), pad),
                    pad,
                }
            } else {
                let trailer_at = size.next_multiple_of(WORD);
                Outer {
                    layout: Layout::from_size_align_unchecked(
                        trailer_at.unchecked_add(WORD),
                        align,
                    ),
                    pad: 0,
                }
            }
        }
    }

    /// Where the block at `user` keeps its record address.
    ///
    /// # Safety
    /// `user` is `base + pad` of a live inner block of this outer layout.
    #[inline(always)]
    unsafe fn slot(&self, user: *mut u8) -> *mut *const SiteRecord {
        // SAFETY: (1) with a header, the word before `user` lies in the padding; (2) with a
        // trailer, the last word of the inner block (pad is 0, so user is its base) follows the
        // user's bytes, at a multiple of 8 from a base aligned to more than 16.
        unsafe {
            if self.pad != 0 {
                user.sub(WORD).cast()
            } else {
                user.add(self.layout.size() - WORD).cast()
            }
        }
    }

    /// Writes the block's record address.
    ///
    /// # Safety
    /// `user` is `base + pad` of a live inner block of this outer layout.
    #[inline(always)]
    pub(crate) unsafe fn write(&self, user: *mut u8, record: *const SiteRecord) {
        // SAFETY: the slot lies in the block, outside the user's bytes, 8-aligned (see `slot`).
        unsafe { self.slot(user).write(record) }
    }

    /// Reads the block's record address.
    ///
    /// # Safety
    /// `user` was returned by the profiler's `alloc`, `alloc_zeroed` or `realloc` for a layout
    /// with this outer layout, and is live.
    #[inline(always)]
    pub(crate) unsafe fn read(&self, user: *mut u8) -> *const SiteRecord {
        // SAFETY: the profiler wrote the record address there when it returned `user`.
        unsafe { self.slot(user).read() }
    }
}
