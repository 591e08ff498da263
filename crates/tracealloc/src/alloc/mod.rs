//! The `GlobalAlloc` entry points: each reads the policy word once and goes to the policy's code
//! (`policy`), compiled for it alone, with the block layout it uses (`block`).
//!
//! ```text
//!  word 0 (exact) ─────────────> header scheme, Exact      (out of line: `header_*_out`)
//!  sampled, alignment <= 8 ────> tagged scheme, inline     (the usual event: no stack frame)
//!  undecided ──────────────────> decide the configuration, then again
//!  exact, reallocs at origin ──> header scheme, ExactOrigin
//!  with lifetimes ─────────────> header scheme, Lifetimes
//!  sampled, alignment > 8 ─────> header scheme, Sampled
//! ```
//! Exact mode is tested first and alone: it jumps to calls compiled for it, with every test of
//! the policy folded away (testing for sampling first cost exact W1 about 13 instructions per
//! event). Sampled mode's usual event runs in the entry point, inline. The first allocation's test
//! comes after the usual policies', so that they do not pay for it. (A free or a resize cannot come
//! first; they decide all the same.)

use std::alloc::{GlobalAlloc, Layout};

use crate::Profiler;
use crate::block::header::Outer;
use crate::block::tagged::Tagged;
use crate::config::{
    self, LIFETIMES_WORD, ORIGIN_WORD, STANDS_DOWN_WORD, UNDECIDED_WORD, is_sampled, policy_word,
};
use crate::policy::sampled::{self as sampled, NewBlock, NotLeftOut, UntaggedRealloc};
use crate::policy::{Exact, ExactOrigin, Lifetimes, Policy, Sampled};

// SAFETY: every method forwards to the inner allocator with the user's layout grown by a header
// (`pad` bytes in front, same alignment or larger) or a trailer (behind the user's bytes, same
// alignment), and returns `base + pad`, which keeps the user's alignment and size; in sampled mode,
// blocks aligned to at most 8 go through `Tagged` instead (see `sampled_alloc` and below). The
// policy is decided once, at the first allocation (`config`), and never changes, and a block's
// alignment is the same at alloc, realloc and dealloc, so every block is taken apart by the scheme
// that made it. Failures (null) are passed through without recording anything.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Profiler<A> {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.allocate::<false>(layout) }
    }

    #[inline(always)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.allocate::<true>(layout) }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let (size, align) = (layout.size(), layout.align());
        let word = policy_word();
        // SAFETY: as in `alloc`: the block was made by the same scheme, under the same policy.
        unsafe {
            if word == Exact::WORD {
                Self::header_dealloc_out(ptr, size, align, Exact, self);
            } else if is_sampled(word) && align <= Tagged::MAX_ALIGN {
                self.sampled_dealloc(ptr, layout, Sampled { mean: word });
            } else if word == UNDECIDED_WORD {
                self.dealloc_deciding(ptr, layout);
            } else if word == STANDS_DOWN_WORD {
                self.inner.dealloc(ptr, layout);
            } else if word == ORIGIN_WORD {
                Self::header_dealloc_out(ptr, size, align, ExactOrigin, self);
            } else if word == LIFETIMES_WORD {
                Self::header_dealloc_out(ptr, size, align, Lifetimes, self);
            } else {
                Self::header_dealloc_out(ptr, size, align, Sampled { mean: word }, self);
            }
        }
    }

    #[inline(always)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        let word = policy_word();
        // SAFETY: as in `alloc`: the block was made by the same scheme, under the same policy.
        unsafe {
            if word == Exact::WORD {
                Self::header_realloc_out(ptr, size, align, new_size, Exact, self)
            } else if is_sampled(word) && align <= Tagged::MAX_ALIGN {
                self.sampled_realloc(ptr, layout, new_size, Sampled { mean: word })
            } else if word == UNDECIDED_WORD {
                self.realloc_deciding(ptr, layout, new_size)
            } else if word == STANDS_DOWN_WORD {
                self.inner.realloc(ptr, layout, new_size)
            } else if word == ORIGIN_WORD {
                Self::header_realloc_out(ptr, size, align, new_size, ExactOrigin, self)
            } else if word == LIFETIMES_WORD {
                Self::header_realloc_out(ptr, size, align, new_size, Lifetimes, self)
            } else {
                Self::header_realloc_out(ptr, size, align, new_size, Sampled { mean: word }, self)
            }
        }
    }
}

impl Exact {
    /// Exact mode's policy word (see `config`).
    const WORD: u64 = 0;
}

/// Choosing the scheme, and the first allocation: it decides the configuration (the policy word
/// is `UNDECIDED_WORD` before), then goes on as every later one.
impl<A: GlobalAlloc> Profiler<A> {
    /// `alloc` (`alloc_zeroed` with `ZEROED`): the scheme for the policy and the alignment.
    ///
    /// # Safety
    /// As `GlobalAlloc::alloc`.
    #[inline(always)]
    unsafe fn allocate<const ZEROED: bool>(&self, layout: Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        let word = policy_word();
        // SAFETY: forwarded contract; sampled mode and alignment checked for `sampled_alloc`.
        unsafe {
            if word == Exact::WORD {
                Self::header_alloc_out::<Exact, ZEROED>(size, align, Exact, self)
            } else if is_sampled(word) && align <= Tagged::MAX_ALIGN {
                self.sampled_alloc::<ZEROED>(layout, Sampled { mean: word })
            } else if word == UNDECIDED_WORD {
                self.allocate_deciding::<ZEROED>(layout)
            } else if word == STANDS_DOWN_WORD {
                self.inner_alloc(layout, ZEROED)
            } else if word == ORIGIN_WORD {
                Self::header_alloc_out::<ExactOrigin, ZEROED>(size, align, ExactOrigin, self)
            } else if word == LIFETIMES_WORD {
                Self::header_alloc_out::<Lifetimes, ZEROED>(size, align, Lifetimes, self)
            } else {
                let policy = Sampled { mean: word };
                Self::header_alloc_out::<Sampled, ZEROED>(size, align, policy, self)
            }
        }
    }

    /// # Safety
    /// As `GlobalAlloc::alloc`.
    #[cold]
    #[inline(never)]
    unsafe fn allocate_deciding<const ZEROED: bool>(&self, layout: Layout) -> *mut u8 {
        config::decide(self.request);
        // SAFETY: forwarded contract; decided now, so this does not come back here.
        unsafe { self.allocate::<ZEROED>(layout) }
    }

    /// # Safety
    /// As `GlobalAlloc::dealloc`.
    #[cold]
    #[inline(never)]
    unsafe fn dealloc_deciding(&self, ptr: *mut u8, layout: Layout) {
        config::decide(self.request);
        // SAFETY: forwarded contract; decided now, as above.
        unsafe { self.dealloc(ptr, layout) }
    }

    /// # Safety
    /// As `GlobalAlloc::realloc`.
    #[cold]
    #[inline(never)]
    unsafe fn realloc_deciding(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        config::decide(self.request);
        // SAFETY: forwarded contract; decided now, as above.
        unsafe { self.realloc(ptr, layout, new_size) }
    }
}

/// The header scheme's calls out of line, where the entry points reach them by a jump (a tail
/// call: the stack a capture walks is the same as if they were inlined). The usual event of
/// sampled mode then runs in an entry point that needs no stack frame of its own (its prologue
/// would save the registers the header scheme needs: 16 instructions per event). They take the
/// layout as two words, in the registers the entry points got them in, and the policy by value
/// (nothing for the exact policies, the mean for sampled mode's).
impl<A: GlobalAlloc> Profiler<A> {
    /// # Safety
    /// As `GlobalAlloc::alloc` (`alloc_zeroed` with `ZEROED`) with the layout `(size, align)`;
    /// `policy` is the decided one.
    #[inline(never)]
    unsafe fn header_alloc_out<P: Policy, const ZEROED: bool>(
        size: usize,
        align: usize,
        policy: P,
        this: &Self,
    ) -> *mut u8 {
        // SAFETY: forwarded contract; `(size, align)` is the caller's valid layout.
        unsafe {
            this.header_alloc(
                Layout::from_size_align_unchecked(size, align),
                policy,
                ZEROED,
            )
        }
    }

    /// # Safety
    /// As `GlobalAlloc::dealloc` with the layout `(size, align)`; `policy` is the decided one, the
    /// block has a header or a trailer.
    #[inline(never)]
    unsafe fn header_dealloc_out<P: Policy>(
        ptr: *mut u8,
        size: usize,
        align: usize,
        policy: P,
        this: &Self,
    ) {
        // SAFETY: forwarded contract; `(size, align)` is the caller's valid layout.
        unsafe { this.header_dealloc(ptr, Layout::from_size_align_unchecked(size, align), policy) }
    }

    /// # Safety
    /// As `GlobalAlloc::realloc` with the layout `(size, align)`; `policy` is the decided one, the
    /// block has a header or a trailer.
    #[inline(never)]
    unsafe fn header_realloc_out<P: Policy>(
        ptr: *mut u8,
        size: usize,
        align: usize,
        new_size: usize,
        policy: P,
        this: &Self,
    ) -> *mut u8 {
        // SAFETY: forwarded contract; `(size, align)` is the caller's valid layout.
        unsafe {
            let layout = Layout::from_size_align_unchecked(size, align);
            this.header_realloc(ptr, layout, new_size, policy)
        }
    }
}

/// Blocks with a header or a trailer (`Outer`): every block in exact mode, and in sampled mode
/// those aligned to more than 8.
impl<A: GlobalAlloc> Profiler<A> {
    /// The inner allocator's `alloc` or `alloc_zeroed`.
    ///
    /// # Safety
    /// `layout` has a non-zero size.
    #[inline(always)]
    unsafe fn inner_alloc(&self, layout: Layout, zeroed: bool) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe {
            if zeroed {
                self.inner.alloc_zeroed(layout)
            } else {
                self.inner.alloc(layout)
            }
        }
    }

    /// # Safety
    /// As `GlobalAlloc::alloc`; `policy` is the decided one.
    #[inline(always)]
    unsafe fn header_alloc<P: Policy>(&self, layout: Layout, policy: P, zeroed: bool) -> *mut u8 {
        let Some(outer) = Outer::of(layout) else {
            return std::ptr::null_mut();
        };
        // SAFETY: (1) the outer layout has a non-zero size (pad >= 8, or a trailer's 8 bytes).
        let base = unsafe { self.inner_alloc(outer.layout, zeroed) };
        if base.is_null() {
            return base;
        }
        // SAFETY: (2) base + pad lies within the block of size + pad bytes.
        let user = unsafe { base.add(outer.pad) };
        let record = policy.on_alloc(layout.size(), user as usize, self.request);
        // SAFETY: (3) user is base + pad of a live block of the outer layout.
        unsafe { outer.write(user, record) };
        user
    }

    /// # Safety
    /// As `GlobalAlloc::dealloc`; `policy` is the decided one, the block has a header or a
    /// trailer.
    #[inline(always)]
    unsafe fn header_dealloc<P: Policy>(&self, ptr: *mut u8, layout: Layout, policy: P) {
        // SAFETY: the caller's layout made this block (GlobalAlloc's contract), through our
        // `alloc`, where `Outer::of(layout)` was `Some`.
        let outer = unsafe { Outer::of_allocated(layout) };
        // SAFETY: (1) ptr came from our alloc with this layout, so it holds its record address.
        let record = unsafe { outer.read(ptr) };
        policy.on_dealloc(record, layout.size(), ptr as usize);
        // SAFETY: (2) ptr - pad is the inner block, allocated with the same outer layout.
        unsafe { self.inner.dealloc(ptr.sub(outer.pad), outer.layout) };
    }

    /// # Safety
    /// As `GlobalAlloc::realloc`; `policy` is the decided one, the block has a header or a
    /// trailer.
    #[inline(always)]
    unsafe fn header_realloc<P: Policy>(
        &self,
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
        policy: P,
    ) -> *mut u8 {
        // SAFETY: the caller's layout made this block (GlobalAlloc's contract), through our
        // `alloc`, where `Outer::of(layout)` was `Some`.
        let old = unsafe { Outer::of_allocated(layout) };
        let Some(new) = Outer::of_resized(layout, new_size) else {
            return std::ptr::null_mut();
        };
        // SAFETY: (1) ptr came from our alloc with `layout`, so it holds its record address.
        let record = unsafe { old.read(ptr) };
        // SAFETY: (2) ptr - pad is the inner block of the old outer layout; the new outer layout
        // has the same alignment (the same place for the record: header or trailer).
        let base = unsafe {
            self.inner
                .realloc(ptr.sub(old.pad), old.layout, new.layout.size())
        };
        if base.is_null() {
            return base;
        }
        // SAFETY: (3) base + pad lies within the new block.
        let user = unsafe { base.add(new.pad) };
        let moved = (ptr as usize, user as usize);
        let record = policy.on_realloc(record, layout.size(), new_size, moved);
        // SAFETY: (4) user is base + pad of the live new block of the new outer layout (a trailer
        // moves with the size; a sampled realloc may change the block's record).
        unsafe { new.write(user, record) };
        user
    }
}

/// Sampled mode's blocks aligned to at most 8 (`Tagged`): only those that need a record carry
/// one, in the word before them, and their address says which. The usual event (a block that
/// sampling leaves out) is handled inline; the others by the `_planned` functions, kept out of line.
impl<A: GlobalAlloc> Profiler<A> {
    /// # Safety
    /// As `GlobalAlloc::alloc` (`alloc_zeroed` with `ZEROED`); sampled mode (`policy`),
    /// `layout.align() <= 8`.
    #[inline(always)]
    unsafe fn sampled_alloc<const ZEROED: bool>(&self, layout: Layout, policy: Sampled) -> *mut u8 {
        let size = layout.size();
        let thread = match sampled::left_out(size) {
            Ok(thread) => thread,
            Err(found) => {
                // SAFETY: forwarded contract.
                return unsafe { self.sampled_alloc_planned(layout, found, policy, ZEROED) };
            }
        };
        let Some(inner) = Tagged::inner(size, false) else {
            return std::ptr::null_mut();
        };
        // SAFETY: (1) the inner layout has a non-zero size (at least 16); an untagged block is its
        // inner block itself.
        let base = unsafe { self.inner_alloc(inner, ZEROED) };
        if !base.is_null() {
            // SAFETY: (2) `thread` is the calling thread's own state (`left_out`).
            unsafe { sampled::count_short_path(thread, (size as i64, 1), Some(size as u64)) };
        }
        base
    }

    /// `sampled_alloc` for a block that is not the usual one (see `policy::sampled`).
    ///
    /// # Safety
    /// As `sampled_alloc`.
    #[cold]
    #[inline(never)]
    unsafe fn sampled_alloc_planned(
        &self,
        layout: Layout,
        found: NotLeftOut,
        policy: Sampled,
        zeroed: bool,
    ) -> *mut u8 {
        config::check(self.request);
        let plan = NewBlock::plan(found, layout.size(), policy.mean);
        let tagged = plan.tagged();
        let Some(inner) = Tagged::inner(layout.size(), tagged) else {
            return std::ptr::null_mut();
        };
        // SAFETY: (1) the inner layout has a non-zero size (at least 16).
        let base = unsafe { self.inner_alloc(inner, zeroed) };
        if base.is_null() {
            return base;
        }
        // SAFETY: (2) base is a live inner block of `Tagged::inner(size, tagged)`; (3) so `user`
        // is its caller's address, made as the plan said, 8-aligned (base is 16-aligned).
        unsafe {
            let user = Tagged::user(base, tagged);
            plan.made(user, layout.size());
            user
        }
    }

    /// # Safety
    /// As `GlobalAlloc::dealloc`; sampled mode (`policy`), `layout.align() <= 8`.
    #[inline(always)]
    unsafe fn sampled_dealloc(&self, ptr: *mut u8, layout: Layout, policy: Sampled) {
        let size = layout.size();
        if Tagged::is_tagged(ptr) {
            // SAFETY: forwarded contract; the block is tagged.
            return unsafe { self.tagged_dealloc(ptr, size, policy) };
        }
        if !sampled::free_left_out(size) {
            // SAFETY: forwarded contract; the block is untagged.
            return unsafe { self.untagged_dealloc_counted(ptr, size) };
        }
        // SAFETY: the block was made by `Tagged` for this size, untagged (as its address says), so
        // `Tagged::inner` was `Some` for it and it is its own inner block.
        unsafe {
            self.inner
                .dealloc(ptr, Tagged::inner_allocated(size, false))
        };
    }

    /// `sampled_dealloc` of an untagged block whose free is not the usual one: counted with every
    /// check. Out of line, as `tagged_dealloc`.
    ///
    /// # Safety
    /// As `sampled_dealloc`, `ptr` untagged, `size` its layout's size.
    #[cold]
    #[inline(never)]
    unsafe fn untagged_dealloc_counted(&self, ptr: *mut u8, size: usize) {
        sampled::on_untagged_dealloc(size);
        // SAFETY: as in `sampled_dealloc`: an untagged block is its own inner block.
        unsafe {
            self.inner
                .dealloc(ptr, Tagged::inner_allocated(size, false))
        };
    }

    /// `sampled_dealloc` of a tagged block: its record is charged as a header block's, through the
    /// policy's hooks. Out of line, so that the usual free needs no stack frame.
    ///
    /// # Safety
    /// As `sampled_dealloc`, `ptr` tagged, `size` its layout's size.
    #[inline(never)]
    unsafe fn tagged_dealloc(&self, ptr: *mut u8, size: usize, policy: Sampled) {
        // SAFETY: (1) `sampled_alloc` or `sampled_realloc` made this tagged block and wrote its
        // record; (2) so `Tagged::inner(size, true)` was `Some` for it, and `base` is its inner
        // block.
        unsafe {
            let record = Tagged::read(ptr);
            policy.on_dealloc(record, size, ptr as usize);
            self.inner
                .dealloc(Tagged::base(ptr), Tagged::inner_allocated(size, true));
        }
    }

    /// # Safety
    /// As `GlobalAlloc::realloc`; sampled mode (`policy`), `layout.align() <= 8`.
    #[inline(always)]
    unsafe fn sampled_realloc(
        &self,
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
        policy: Sampled,
    ) -> *mut u8 {
        let old_size = layout.size();
        if Tagged::is_tagged(ptr) {
            // SAFETY: forwarded contract; the block is tagged.
            return unsafe { self.tagged_realloc(ptr, old_size, new_size, policy) };
        }
        let thread = match sampled::left_out(new_size) {
            Ok(thread) => thread,
            Err(found) => {
                // SAFETY: forwarded contract; the block is untagged.
                return unsafe {
                    self.untagged_realloc_planned(ptr, old_size, new_size, found, policy)
                };
            }
        };
        let Some(new_inner) = Tagged::inner(new_size, false) else {
            return std::ptr::null_mut();
        };
        // SAFETY: (1) an untagged block made by `Tagged` for `old_size`: its inner block is `ptr`
        // itself, with this layout; (2) the new size keeps its alignment valid (`Tagged::inner`
        // checked it).
        let base = unsafe {
            let old_inner = Tagged::inner_allocated(old_size, false);
            self.inner.realloc(ptr, old_inner, new_inner.size())
        };
        if !base.is_null() {
            let live = (new_size as i64 - old_size as i64, 0);
            // SAFETY: (3) `thread` is the calling thread's own state (`left_out`).
            unsafe { sampled::count_short_path(thread, live, Some(new_size as u64)) };
        }
        base
    }

    /// `sampled_realloc` of a tagged block: it keeps its tag; its record changes as a header
    /// block's, through the policy's hooks.
    ///
    /// # Safety
    /// As `sampled_realloc`, `ptr` tagged.
    #[inline(never)]
    unsafe fn tagged_realloc(
        &self,
        ptr: *mut u8,
        old_size: usize,
        new_size: usize,
        policy: Sampled,
    ) -> *mut u8 {
        let Some(new_inner) = Tagged::inner(new_size, true) else {
            return std::ptr::null_mut();
        };
        // SAFETY: (1) a tagged block made by `Tagged`, with its record written; (2) its inner
        // block and layout, with the same alignment for the new size; (3) a tagged inner block
        // again, whose record is written before it is returned.
        unsafe {
            let record = Tagged::read(ptr);
            let old_inner = Tagged::inner_allocated(old_size, true);
            let base = self
                .inner
                .realloc(Tagged::base(ptr), old_inner, new_inner.size());
            if base.is_null() {
                return base;
            }
            let user = Tagged::user(base, true);
            let moved = (ptr as usize, user as usize);
            let record = policy.on_realloc(record, old_size, new_size, moved);
            Tagged::write(user, record);
            user
        }
    }

    /// `sampled_realloc` of an untagged block whose resize is not the usual one.
    ///
    /// # Safety
    /// As `sampled_realloc`, `ptr` untagged.
    #[cold]
    #[inline(never)]
    unsafe fn untagged_realloc_planned(
        &self,
        ptr: *mut u8,
        old_size: usize,
        new_size: usize,
        found: NotLeftOut,
        policy: Sampled,
    ) -> *mut u8 {
        config::check(self.request);
        let plan = UntaggedRealloc::plan(found, new_size, policy.mean);
        let tagged = plan.to_tagged();
        let Some(new_inner) = Tagged::inner(new_size, tagged) else {
            return std::ptr::null_mut();
        };
        // SAFETY: (1) an untagged block made by `Tagged` for `old_size`, so its inner block is
        // `ptr` itself with this layout.
        let old_inner = unsafe { Tagged::inner_allocated(old_size, false) };
        let user = if tagged {
            // Sampling picked the new size: the block moves to one with room for its record.
            // SAFETY: (2) a non-zero size; (3) both blocks are live and hold at least the bytes
            // copied, and distinct blocks do not overlap; (4) the old block is freed with its own
            // inner layout, after the copy.
            unsafe {
                let base = self.inner.alloc(new_inner);
                if base.is_null() {
                    return base;
                }
                let user = Tagged::user(base, true);
                std::ptr::copy_nonoverlapping(ptr, user, old_size.min(new_size));
                self.inner.dealloc(ptr, old_inner);
                user
            }
        } else {
            // SAFETY: (5) the inner block and its layout; the new size keeps its alignment valid
            // (`Tagged::inner` checked it).
            let base = unsafe { self.inner.realloc(ptr, old_inner, new_inner.size()) };
            if base.is_null() {
                return base;
            }
            base
        };
        // SAFETY: (6) `user` is a live block of `new_size` bytes made by `Tagged`, tagged exactly
        // when the plan said so.
        unsafe { plan.done(user, old_size, new_size) };
        user
    }
}
