//! Sampled mode's blocks aligned to at most 8 ([`Tagged`]): a record only on those that need one.
//! See the module diagram in `block`.

use std::alloc::Layout;

use crate::block::header::WORD;
use crate::state::record::SiteRecord;

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

    /// Inner layouts: aligned to 16, at least 16 bytes, 8 more with a record; `None` on overflow.
    #[test]
    fn inner_layouts_are_16_aligned_with_room_for_the_record() {
        // (size, tagged) -> inner size
        let cases = [
            ((0, false), 16),
            ((0, true), 16),
            ((8, true), 16),
            ((9, true), 17),
            ((16, false), 16),
            ((24, false), 24),
            ((24, true), 32),
            ((100, true), 108),
        ];
        for ((size, tagged), inner_size) in cases {
            let inner = Tagged::inner(size, tagged).unwrap();
            assert_eq!((inner.size(), inner.align()), (inner_size, 16));
            // SAFETY: `Tagged::inner(size, tagged)` returned `Some` just above.
            assert_eq!(unsafe { Tagged::inner_allocated(size, tagged) }, inner);
        }
        assert!(Tagged::inner(usize::MAX, true).is_none());
        assert!(Tagged::inner(isize::MAX as usize, false).is_none());
    }

    /// In real blocks, the tag is in the address: a tagged block is returned 8 bytes into its inner
    /// block, with its record in the word before, which the user's bytes leave alone; an untagged
    /// one is returned at its base (run under Miri, which checks every access is in bounds).
    #[test]
    fn tagged_blocks_keep_their_record_in_the_word_before() {
        for (i, size) in [0, 1, 8, 24, 100].into_iter().enumerate() {
            for tagged in [false, true] {
                let inner = Tagged::inner(size, tagged).unwrap();
                // SAFETY: inner layouts are at least 16 bytes.
                let base = unsafe { std::alloc::alloc(inner) };
                assert!(!base.is_null());
                // SAFETY: a live inner block of `Tagged::inner(_, tagged)`.
                let user = unsafe { Tagged::user(base, tagged) };
                assert_eq!(user.addr() - base.addr(), if tagged { 8 } else { 0 });
                assert_eq!(Tagged::is_tagged(user), tagged);
                // SAFETY: returned by `Tagged::user` for a live inner block.
                assert_eq!(unsafe { Tagged::base(user) }, base);
                // SAFETY: the user's `size` bytes lie within the inner block after `user`.
                unsafe { user.write_bytes(0x5a, size) };
                if tagged {
                    let record = std::ptr::without_provenance::<SiteRecord>(0x40 * (i + 1));
                    // SAFETY: a tagged address from `Tagged::user`, live; its record is written
                    // before it is read.
                    unsafe {
                        Tagged::write(user, record);
                        assert_eq!(Tagged::read(user), record);
                        assert_eq!(base.cast::<usize>().read(), 0x40 * (i + 1));
                    }
                }
                // SAFETY: the user's bytes, written above, within the inner block.
                let bytes = unsafe { std::slice::from_raw_parts(user, size) };
                assert!(bytes.iter().all(|&b| b == 0x5a));
                // SAFETY: allocated above with `Tagged::inner(size, tagged)`, which
                // `inner_allocated` equals.
                unsafe { std::alloc::dealloc(base, Tagged::inner_allocated(size, tagged)) };
            }
        }
    }
}
