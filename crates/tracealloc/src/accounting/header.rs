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
//! cost a page for a page-aligned buffer ([`Outer`]). In exact mode every block has one, the
//! profiler's own included (their record address is null), so a block made under the reentrancy
//! guard and freed outside it is still read correctly. The caller's layout (the same at alloc,
//! realloc and dealloc) says which.
//!
//! In sampled mode, blocks aligned to at most 8 (nearly all) carry nothing unless they need a
//! record: a sampled block, a block of the profiler's own (so it is still read correctly wherever
//! it is freed), or one made on a thread without state. Which they are shows in the address itself
//! ([`Tagged`]); blocks aligned to more keep their header or trailer:
//!
//! ```text
//!  untagged:  [ user bytes ... ]                 inner (max(size, 16), 16): address = 0 mod 16
//!             ^ base, returned to the caller
//!  tagged:    [ record (8) ][ user bytes ... ]   inner (max(size + 8, 16), 16): address = 8 mod 16
//!             ^ base        ^ base + 8, returned to the caller
//! ```
//! So an unsampled block asks the inner allocator for what the program asked for (glibc rounds
//! sizes below 16 up to its smallest chunk anyway), and a `Vec` grows in place exactly as it would
//! without the profiler: a header moves requests like a 24-byte `String` into the next chunk size,
//! which doubled the moves of sampled W3's reallocs (84,519 against 40,831).

use std::alloc::Layout;

use crate::state::record::SiteRecord;

const WORD: usize = std::mem::size_of::<usize>();
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

/// Sampled mode's blocks of alignment at most [`Tagged::MAX_ALIGN`]: the tag is bit 3 of the
/// address (see the module's diagram). Every inner layout here is aligned to 16, so an untagged
/// block's address has bit 3 clear whatever the inner allocator is; a tagged block is returned 8
/// bytes into its inner block, so its bit 3 is set and its record is in the word before it.
pub(crate) struct Tagged;

impl Tagged {
    /// The largest alignment this scheme serves (larger ones keep a header or a trailer).
    pub(crate) const MAX_ALIGN: usize = WORD;
    const INNER_ALIGN: usize = 16;

    /// Whether the block at `user`, made by this scheme, has a record.
    #[inline(always)]
    pub(crate) fn is_tagged(user: *mut u8) -> bool {
        user as usize & WORD != 0
    }

    /// The inner layout of a block of `size` bytes: tagged with a record or not. `None` when it
    /// would overflow (then the allocation fails).
    #[inline(always)]
    pub(crate) fn inner(size: usize, tagged: bool) -> Option<Layout> {
        let size = if tagged {
            size.checked_add(WORD)?
        } else {
            size
        };
        Layout::from_size_align(size.max(Self::INNER_ALIGN), Self::INNER_ALIGN).ok()
    }

    /// [`Tagged::inner`] without its checks, for a block this scheme made.
    ///
    /// # Safety
    /// `Tagged::inner(size, tagged)` returned `Some` (the block was made with this layout).
    #[inline(always)]
    pub(crate) unsafe fn inner_allocated(size: usize, tagged: bool) -> Layout {
        // SAFETY: `inner` computed the same sum without overflow and found the layout valid.
        unsafe {
            let size = if tagged {
                size.unchecked_add(WORD)
            } else {
                size
            };
            Layout::from_size_align_unchecked(size.max(Self::INNER_ALIGN), Self::INNER_ALIGN)
        }
    }

    /// The caller's address for an inner block at `base`.
    ///
    /// # Safety
    /// `base` is a live inner block of `Tagged::inner(_, tagged)`.
    #[inline(always)]
    pub(crate) unsafe fn user(base: *mut u8, tagged: bool) -> *mut u8 {
        if tagged {
            // SAFETY: a tagged inner block is at least 16 bytes long, so base + 8 lies within it.
            unsafe { base.add(WORD) }
        } else {
            base
        }
    }

    /// The inner block of the caller's `user`.
    ///
    /// # Safety
    /// `user` was returned by [`Tagged::user`] for an inner block that is still live.
    #[inline(always)]
    pub(crate) unsafe fn base(user: *mut u8) -> *mut u8 {
        if Self::is_tagged(user) {
            // SAFETY: a tagged user address is its inner block's base + 8.
            unsafe { user.sub(WORD) }
        } else {
            user
        }
    }

    /// Writes a tagged block's record address.
    ///
    /// # Safety
    /// `user` is a tagged address returned by [`Tagged::user`] for a live inner block.
    #[inline(always)]
    pub(crate) unsafe fn write(user: *mut u8, record: *const SiteRecord) {
        // SAFETY: the word before a tagged address is the first of its inner block, 16-aligned,
        // outside the caller's bytes.
        unsafe { user.sub(WORD).cast::<*const SiteRecord>().write(record) }
    }

    /// Reads a tagged block's record address.
    ///
    /// # Safety
    /// `user` is a tagged address, live, whose record the profiler wrote when it returned it.
    #[inline(always)]
    pub(crate) unsafe fn read(user: *mut u8) -> *const SiteRecord {
        // SAFETY: see `write`.
        unsafe { user.sub(WORD).cast::<*const SiteRecord>().read() }
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
}
