//! Blocks with a header or a trailer ([`Outer`]): every block in exact mode, and in sampled mode
//! those aligned to more than [`crate::block::tagged::Tagged::MAX_ALIGN`]. See the module diagram
//! in `block`.

use std::alloc::Layout;

use crate::state::record::SiteRecord;

pub(crate) const WORD: usize = std::mem::size_of::<usize>();
/// Alignments up to this get a header; larger ones a trailer.
const MAX_HEADER_ALIGN: usize = 16;
/// The largest size given a header: with the header and rounded up to its alignment, it stays
/// within `isize::MAX`, as `Layout` requires.
const MAX_HEADER_SIZE: usize = isize::MAX as usize - 2 * MAX_HEADER_ALIGN;

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
        Self::of_resized(layout, layout.size())
    }

    /// The inner layout for `layout` resized to `size` bytes, or `None` when it would overflow.
    #[inline(always)]
    pub(crate) fn of_resized(layout: Layout, size: usize) -> Option<Outer> {
        let align = layout.align();
        if align <= MAX_HEADER_ALIGN {
            // One compare instead of `Layout::from_size_align`'s checks (an overflowing add, a
            // power of two, the rounded size), which cost exact mode about 10 instructions per
            // allocation. Sizes this close to `isize::MAX` cannot be allocated anyway: they fail,
            // as they would without the profiler.
            if size > MAX_HEADER_SIZE {
                return None;
            }
            let pad = align.max(WORD);
            // SAFETY: (1) `pad` is a power of two: `align` is a `Layout`'s, and so is `WORD`;
            // (2) `size + pad` does not overflow and, rounded up to `pad` (at most 16), stays at
            // most `isize::MAX` (`size <= MAX_HEADER_SIZE`).
            let layout = unsafe { Layout::from_size_align_unchecked(size + pad, pad) };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size up to `MAX_HEADER_SIZE` gets a valid outer layout with its header; larger sizes
    /// fail (as the inner allocator would fail them); trailers keep their checks.
    #[test]
    fn outer_layouts_at_the_size_limits() {
        for align in [1, 2, 4, 8, 16] {
            let layout = Layout::from_size_align(MAX_HEADER_SIZE, align).unwrap();
            let outer = Outer::of(layout).unwrap();
            assert_eq!(outer.pad, align.max(WORD));
            assert_eq!(outer.layout.size(), MAX_HEADER_SIZE + outer.pad);
            assert!(Layout::from_size_align(outer.layout.size(), outer.layout.align()).is_ok());
            assert!(Outer::of_resized(layout, MAX_HEADER_SIZE + 1).is_none());
            let largest = Layout::from_size_align(isize::MAX as usize - (align - 1), align);
            assert!(Outer::of(largest.unwrap()).is_none());
            let small = Outer::of(Layout::from_size_align(24, align).unwrap()).unwrap();
            assert_eq!(
                (small.layout.size(), small.pad),
                (24 + align.max(WORD), align.max(WORD))
            );
        }
        let page = Layout::from_size_align(isize::MAX as usize - 4095, 4096).unwrap();
        assert!(Outer::of(page).is_none());
        let page = Outer::of(Layout::from_size_align(100, 4096).unwrap()).unwrap();
        assert_eq!((page.layout.size(), page.pad), (112, 0));
    }

    /// In real blocks, a header's record is the word before the user's bytes and a trailer's the
    /// last word of the block: written and read back without touching the user's bytes, which
    /// stay whole around it (run under Miri, which checks every access is in bounds and aligned).
    #[test]
    fn records_round_trip_in_headers_and_trailers_of_real_blocks() {
        // (size, align) -> (outer size, outer align, pad, offset of the record from the base)
        let cases = [
            ((0, 1), (8, 8, 8, 0)),
            ((5, 1), (13, 8, 8, 0)),
            ((24, 8), (32, 8, 8, 0)),
            ((40, 16), (56, 16, 16, 8)),
            ((0, 32), (8, 32, 0, 0)),
            ((100, 64), (112, 64, 0, 104)),
            ((104, 64), (112, 64, 0, 104)),
            ((100, 4096), (112, 4096, 0, 104)),
        ];
        for (i, ((size, align), (outer_size, outer_align, pad, at))) in
            cases.into_iter().enumerate()
        {
            let layout = Layout::from_size_align(size, align).unwrap();
            let outer = Outer::of(layout).unwrap();
            assert_eq!(
                (outer.layout.size(), outer.layout.align(), outer.pad),
                (outer_size, outer_align, pad)
            );
            // SAFETY: `Outer::of(layout)` returned `Some` just above.
            let allocated = unsafe { Outer::of_allocated(layout) };
            assert_eq!((allocated.layout, allocated.pad), (outer.layout, outer.pad));
            // SAFETY: the outer layout's size is not zero (it holds the record).
            let base = unsafe { std::alloc::alloc(outer.layout) };
            assert!(!base.is_null());
            // SAFETY: the block has `pad + size` bytes (`outer_size >= pad + size`).
            let user = unsafe { base.add(pad) };
            // SAFETY: the user's `size` bytes lie within the block.
            unsafe { user.write_bytes(0xa5, size) };
            let record = std::ptr::without_provenance::<SiteRecord>(0x1000 * (i + 1));
            // SAFETY: `user` is `base + pad` of a live block of this outer layout.
            unsafe { outer.write(user, record) };
            // SAFETY: as above; the record was written there.
            assert_eq!(unsafe { outer.read(user) }, record);
            // SAFETY: `at` is a word inside the block, 8-aligned from its base; the user's bytes
            // were written above.
            unsafe {
                assert_eq!(base.add(at).cast::<usize>().read(), 0x1000 * (i + 1));
                let bytes = std::slice::from_raw_parts(user, size);
                assert!(bytes.iter().all(|&b| b == 0xa5));
                std::alloc::dealloc(base, outer.layout);
            }
        }
    }

    /// A resized block's outer layout: the header keeps its place, the trailer moves to the end.
    #[test]
    fn resized_blocks_move_their_trailer_to_the_new_end() {
        let header = Layout::from_size_align(10, 4).unwrap();
        let grown = Outer::of_resized(header, 30).unwrap();
        assert_eq!(
            (grown.layout.size(), grown.layout.align(), grown.pad),
            (38, 8, 8)
        );
        let trailer = Layout::from_size_align(10, 32).unwrap();
        let grown = Outer::of_resized(trailer, 30).unwrap();
        assert_eq!(
            (grown.layout.size(), grown.layout.align(), grown.pad),
            (40, 32, 0)
        );
        let shrunk = Outer::of_resized(trailer, 1).unwrap();
        assert_eq!((shrunk.layout.size(), shrunk.pad), (16, 0));
        assert!(Outer::of_resized(trailer, usize::MAX - 3).is_none());
    }
}
