//! **tracealloc**: an exact, fast, thread-safe allocation profiler for Rust.
//!
//! Add one line to a debug or profiling build:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();
//! ```
//!
//! Every allocation is then charged to its call stack and thread. [`stats`] gives whole-process
//! figures at any moment; [`snapshot`] copies every site's counters with symbolized stacks, to group
//! ([`Snapshot::top`]), compare ([`Snapshot::diff`]) and save ([`Snapshot::save`]) for the
//! `tracealloc` CLI. Set `TRACEALLOC_OUT=path` to get a snapshot written at exit.
//!
//! Build with `RUSTFLAGS="-C force-frame-pointers=yes"` for fast stack capture (about 10 ns); without
//! frame pointers the profiler detects it, says so once on stderr and falls back to DWARF unwinding.

// The layers, each built only on those above it in this list (checked by `tests/layering.rs`):
//
//  sys, guard, config  operating-system calls; the reentrancy guard; the configuration, decided once
//  capture             a call stack's return addresses: frame-pointer walk, DWARF unwinder
//  state               per-thread state: carved memory, the sequence lock, stack tables, records
//  accounting          alloc / realloc / dealloc on a thread's state, sampling maths, block headers,
//                      and the registry they fold into
//  snapshot            copying a registry's counters, symbolizing, building the model
//  process             the one registry, each thread's state (TLS), the allocator hooks, and the
//                      fork, thread-exit and process-exit hooks beside their bodies
//  (this file), measure, labels   the public API
//
// Taking a snapshot is a function of a registry, below the process layer: the exit hook writes one.
mod accounting;
#[cfg(test)]
mod allocator_check;
mod capture;
mod config;
mod guard;
mod labels;
pub mod measure;
mod process;
mod snapshot;
mod state;
mod sys;

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt;
use std::path::Path;

pub use config::{
    CAPTURE_ENV, DEFAULT_MAX_STACKS, DEPTH_ENV, INTERVAL_ENV, KEEP_ENV, LIFETIMES_ENV,
    MAX_STACKS_ENV, OUT_ENV, SAMPLE_ENV,
};
#[cfg(feature = "tracing")]
pub use labels::LabelLayer;
pub use labels::{Labeled, labeled, with_label};
pub use measure::{Measurement, measure, measure_future, measure_scoped, measure_with};
/// The snapshot model, file format and analysis, usable without the allocator.
pub use tracealloc_snapshot as model;
pub use tracealloc_snapshot::{
    Filter, GroupBy, HeapStats, LoadError, Metric, SaveError, Stat, StatDiff,
};

use accounting::header::{Outer, Tagged};
use config::{Request, UNDECIDED_WORD as UNDECIDED, is_sampled, policy_word};
use guard::ReentrancyGuard;
use process::sampled::{NewBlock, NotLeftOut, UntaggedRealloc};

/// Whether this build of the profiler is optimized. When it is not (a plain debug build), the
/// profiler says so once on stderr with the fix (`opt-level = 3` for tracealloc; see the README).
pub const PROFILER_OPTIMIZED: bool = !cfg!(tracealloc_unoptimized);

/// The profiling allocator: wraps an inner allocator (the system's by default, or jemalloc) and
/// charges every block to its call stack and thread.
///
/// Each block carries the address of its site's record (an 8- or 16-byte header, or a trailer of
/// at most 15 bytes for alignments above 16), so frees and reallocs find their site without a
/// lookup. In sampled mode, a block aligned to at most 8 that sampling left out carries nothing:
/// the inner allocator is asked for exactly what the program asked for.
#[derive(Debug, Default)]
pub struct Profiler<A: GlobalAlloc = System> {
    inner: A,
    /// The settings asked for (see `config`): they take part in the process's configuration if
    /// this value makes its first allocation, and are refused, loudly, if they differ from it.
    request: Request,
}

impl Profiler<System> {
    /// Profiles the system allocator.
    pub const fn system() -> Self {
        Profiler {
            inner: System,
            request: Request::DEFAULT,
        }
    }
}

/// jemalloc as the inner allocator (feature `jemalloc`), to name the profiler's type:
/// `static ALLOC: tracealloc::Profiler<tracealloc::Jemalloc> = tracealloc::Profiler::jemalloc();`
#[cfg(feature = "jemalloc")]
pub use tikv_jemallocator::Jemalloc;

#[cfg(feature = "jemalloc")]
impl Profiler<tikv_jemallocator::Jemalloc> {
    /// Profiles jemalloc (feature `jemalloc`); snapshots then also record jemalloc's own figures.
    pub const fn jemalloc() -> Self {
        Profiler::new(tikv_jemallocator::Jemalloc)
    }
}

impl<A: GlobalAlloc> Profiler<A> {
    /// Profiles `inner`, for example `tikv_jemallocator::Jemalloc`.
    pub const fn new(inner: A) -> Self {
        Profiler {
            inner,
            request: Request::DEFAULT,
        }
    }

    /// Samples instead of tracking every block: on average one sample per `mean_bytes` allocated
    /// (512 KiB is a good start for production), as Go's and jemalloc's heap profilers do. Only
    /// sampled blocks have their stack captured; each stands for the blocks and bytes it represents
    /// in its site's counters (unbiased estimates). [`stats`] keeps exact totals and live figures
    /// (its peak within 64 KiB per thread). `0` means exact mode.
    ///
    /// ```ignore
    /// #[global_allocator]
    /// static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system().sampled(512 * 1024);
    /// ```
    pub const fn sampled(mut self, mean_bytes: u64) -> Self {
        self.request = self.request.sampled(mean_bytes);
        self
    }

    /// Also records how long blocks live (exact mode only): each site's summed and mean lifetime,
    /// and its own maximum of live bytes (dhat-rs's `tl`, `mb`, `mbk`), which
    /// `tracealloc export --format dhat` needs for a full DHAT profile. Costs a clock read per
    /// allocation and free: W1 about 1.6x the system allocator, against 1.5x without. The
    /// environment overrides it: `TRACEALLOC_LIFETIMES=1` turns it on in any build, `=0` off. With
    /// sampling it stays off.
    ///
    /// ```ignore
    /// #[global_allocator]
    /// static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system().lifetimes();
    /// ```
    pub const fn lifetimes(mut self) -> Self {
        self.request = self.request.with_lifetimes();
        self
    }
}

// SAFETY: every method forwards to the inner allocator with the user's layout grown by a header
// (`pad` bytes in front, same alignment or larger) or a trailer (behind the user's bytes, same
// alignment), and returns `base + pad`, which keeps the user's alignment and size; in sampled mode,
// blocks aligned to at most 8 go through `Tagged` instead (see `sampled_alloc` and below). The mode
// is decided at the first allocation and never changes, and a block's alignment is the same at
// alloc, realloc and dealloc, so every block is taken apart by the scheme that made it. Failures
// (null) are passed through without recording anything.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Profiler<A> {
    // Exact mode (mode word 0) is tested first and alone (here and in `allocate`): it jumps to
    // calls compiled for it, with every test of the mode folded away (testing for sampling first
    // cost exact W1 about 13 instructions per event). Sampled mode's usual event runs here, inline.
    // The first allocation's test comes last.
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.allocate(layout, false) }
    }

    #[inline(always)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.allocate(layout, true) }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let mode = policy_word();
        // SAFETY: as in `alloc`: the block was made by the same scheme.
        unsafe {
            if mode == 0 {
                Self::header_dealloc_out::<true>(ptr, layout.size(), layout.align(), 0, self);
            } else if is_sampled(mode) && layout.align() <= Tagged::MAX_ALIGN {
                self.sampled_dealloc(ptr, layout, mode);
            } else if mode == UNDECIDED {
                self.dealloc_deciding(ptr, layout);
            } else {
                Self::header_dealloc_out::<false>(ptr, layout.size(), layout.align(), mode, self);
            }
        }
    }

    #[inline(always)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let mode = policy_word();
        // SAFETY: as in `alloc`: the block was made by the same scheme.
        unsafe {
            if mode == 0 {
                Self::header_realloc_out::<true>(
                    ptr,
                    layout.size(),
                    layout.align(),
                    new_size,
                    0,
                    self,
                )
            } else if is_sampled(mode) && layout.align() <= Tagged::MAX_ALIGN {
                self.sampled_realloc(ptr, layout, new_size, mode)
            } else if mode == UNDECIDED {
                self.realloc_deciding(ptr, layout, new_size)
            } else {
                Self::header_realloc_out::<false>(
                    ptr,
                    layout.size(),
                    layout.align(),
                    new_size,
                    mode,
                    self,
                )
            }
        }
    }
}

/// Choosing the scheme, and the first allocation: it decides the mode (the mode word is
/// [`UNDECIDED`] before), then goes on as every later one. The test for it comes after the usual
/// modes' tests, so that they do not pay for it. (A free or a resize cannot come first; they decide
/// all the same.)
impl<A: GlobalAlloc> Profiler<A> {
    /// `alloc` and `alloc_zeroed`: the scheme for the mode and the alignment.
    ///
    /// # Safety
    /// As `GlobalAlloc::alloc`.
    #[inline(always)]
    unsafe fn allocate(&self, layout: Layout, zeroed: bool) -> *mut u8 {
        let mode = policy_word();
        // SAFETY: forwarded contract; sampled mode and alignment checked for `sampled_alloc`.
        unsafe {
            if mode == 0 {
                if zeroed {
                    Self::header_alloc_out::<true, true>(layout.size(), layout.align(), 0, self)
                } else {
                    Self::header_alloc_out::<true, false>(layout.size(), layout.align(), 0, self)
                }
            } else if is_sampled(mode) && layout.align() <= Tagged::MAX_ALIGN {
                self.sampled_alloc(layout, mode, zeroed)
            } else if mode == UNDECIDED {
                self.allocate_deciding(layout, zeroed)
            } else {
                if zeroed {
                    Self::header_alloc_out::<false, true>(layout.size(), layout.align(), mode, self)
                } else {
                    Self::header_alloc_out::<false, false>(
                        layout.size(),
                        layout.align(),
                        mode,
                        self,
                    )
                }
            }
        }
    }

    /// # Safety
    /// As `GlobalAlloc::alloc`.
    #[cold]
    #[inline(never)]
    unsafe fn allocate_deciding(&self, layout: Layout, zeroed: bool) -> *mut u8 {
        config::decide(self.request);
        // SAFETY: forwarded contract; the mode is decided now, so this does not come back here.
        unsafe { self.allocate(layout, zeroed) }
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
/// layout as two words, in the registers the entry points got them in. With `EXACT`, the mode word
/// is 0 and folded in, which removes every test of it.
impl<A: GlobalAlloc> Profiler<A> {
    /// # Safety
    /// As `GlobalAlloc::alloc` (`alloc_zeroed` with `ZEROED`) with the layout `(size, align)`;
    /// `mode` is the decided mode word (0 with `EXACT`).
    #[inline(never)]
    unsafe fn header_alloc_out<const EXACT: bool, const ZEROED: bool>(
        size: usize,
        align: usize,
        mode: u64,
        this: &Self,
    ) -> *mut u8 {
        let mode = if EXACT { 0 } else { mode };
        // SAFETY: forwarded contract; `(size, align)` is the caller's valid layout.
        unsafe { this.header_alloc(Layout::from_size_align_unchecked(size, align), mode, ZEROED) }
    }

    /// # Safety
    /// As `GlobalAlloc::dealloc` with the layout `(size, align)`; `mode` is the decided mode word
    /// (0 with `EXACT`), the block has a header or a trailer.
    #[inline(never)]
    unsafe fn header_dealloc_out<const EXACT: bool>(
        ptr: *mut u8,
        size: usize,
        align: usize,
        mode: u64,
        this: &Self,
    ) {
        let mode = if EXACT { 0 } else { mode };
        // SAFETY: forwarded contract; `(size, align)` is the caller's valid layout.
        unsafe { this.header_dealloc(ptr, Layout::from_size_align_unchecked(size, align), mode) }
    }

    /// # Safety
    /// As `GlobalAlloc::realloc` with the layout `(size, align)`; `mode` is the decided mode word
    /// (0 with `EXACT`), the block has a header or a trailer.
    #[inline(never)]
    unsafe fn header_realloc_out<const EXACT: bool>(
        ptr: *mut u8,
        size: usize,
        align: usize,
        new_size: usize,
        mode: u64,
        this: &Self,
    ) -> *mut u8 {
        let mode = if EXACT { 0 } else { mode };
        // SAFETY: forwarded contract; `(size, align)` is the caller's valid layout.
        unsafe {
            let layout = Layout::from_size_align_unchecked(size, align);
            this.header_realloc(ptr, layout, new_size, mode)
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
    /// As `GlobalAlloc::alloc`; `mode` is the decided mode word.
    #[inline(always)]
    unsafe fn header_alloc(&self, layout: Layout, mode: u64, zeroed: bool) -> *mut u8 {
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
        let record = process::on_alloc(layout.size(), user as usize, mode, self.request);
        // SAFETY: (3) user is base + pad of a live block of the outer layout.
        unsafe { outer.write(user, record) };
        user
    }

    /// # Safety
    /// As `GlobalAlloc::dealloc`; `mode` is the decided mode word, the block has a header or a
    /// trailer.
    #[inline(always)]
    unsafe fn header_dealloc(&self, ptr: *mut u8, layout: Layout, mode: u64) {
        // SAFETY: the caller's layout made this block (GlobalAlloc's contract), through our
        // `alloc`, where `Outer::of(layout)` was `Some`.
        let outer = unsafe { Outer::of_allocated(layout) };
        // SAFETY: (1) ptr came from our alloc with this layout, so it holds its record address.
        let record = unsafe { outer.read(ptr) };
        process::on_dealloc(record, layout.size(), ptr as usize, mode);
        // SAFETY: (2) ptr - pad is the inner block, allocated with the same outer layout.
        unsafe { self.inner.dealloc(ptr.sub(outer.pad), outer.layout) };
    }

    /// # Safety
    /// As `GlobalAlloc::realloc`; `mode` is the decided mode word, the block has a header or a
    /// trailer.
    #[inline(always)]
    unsafe fn header_realloc(
        &self,
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
        mode: u64,
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
        let record = process::on_realloc(record, layout.size(), new_size, moved, mode);
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
    /// As `GlobalAlloc::alloc`; sampled mode (`mean` is its mode word), `layout.align() <= 8`.
    #[inline(always)]
    unsafe fn sampled_alloc(&self, layout: Layout, mean: u64, zeroed: bool) -> *mut u8 {
        let size = layout.size();
        let thread = match process::sampled::left_out(size) {
            Ok(thread) => thread,
            Err(found) => {
                // SAFETY: forwarded contract.
                return unsafe { self.sampled_alloc_planned(layout, found, mean, zeroed) };
            }
        };
        let Some(inner) = Tagged::inner(size, false) else {
            return std::ptr::null_mut();
        };
        // SAFETY: (1) the inner layout has a non-zero size (at least 16); an untagged block is its
        // inner block itself.
        let base = unsafe { self.inner_alloc(inner, zeroed) };
        if !base.is_null() {
            // SAFETY: (2) `thread` is the calling thread's own state (`left_out`).
            unsafe {
                process::sampled::count_short_path(thread, (size as i64, 1), Some(size as u64))
            };
        }
        base
    }

    /// `sampled_alloc` for a block that is not the usual one (see `process::sampled`).
    ///
    /// # Safety
    /// As `sampled_alloc`.
    #[cold]
    #[inline(never)]
    unsafe fn sampled_alloc_planned(
        &self,
        layout: Layout,
        found: NotLeftOut,
        mean: u64,
        zeroed: bool,
    ) -> *mut u8 {
        config::check(self.request);
        let plan = NewBlock::plan(found, layout.size(), mean);
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
    /// As `GlobalAlloc::dealloc`; sampled mode (`mode` is its mode word), `layout.align() <= 8`.
    #[inline(always)]
    unsafe fn sampled_dealloc(&self, ptr: *mut u8, layout: Layout, mode: u64) {
        let size = layout.size();
        if Tagged::is_tagged(ptr) {
            // SAFETY: forwarded contract; the block is tagged.
            return unsafe { self.tagged_dealloc(ptr, size, mode) };
        }
        if !process::sampled::free_left_out(size) {
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
        process::sampled::on_untagged_dealloc(size);
        // SAFETY: as in `sampled_dealloc`: an untagged block is its own inner block.
        unsafe {
            self.inner
                .dealloc(ptr, Tagged::inner_allocated(size, false))
        };
    }

    /// `sampled_dealloc` of a tagged block: its record is charged as in exact mode's header path
    /// (`process::on_dealloc`). Out of line, so that the usual free needs no stack frame.
    ///
    /// # Safety
    /// As `sampled_dealloc`, `ptr` tagged, `size` its layout's size.
    #[inline(never)]
    unsafe fn tagged_dealloc(&self, ptr: *mut u8, size: usize, mode: u64) {
        // SAFETY: (1) `sampled_alloc` or `sampled_realloc` made this tagged block and wrote its
        // record; (2) so `Tagged::inner(size, true)` was `Some` for it, and `base` is its inner
        // block.
        unsafe {
            let record = Tagged::read(ptr);
            process::on_dealloc(record, size, ptr as usize, mode);
            self.inner
                .dealloc(Tagged::base(ptr), Tagged::inner_allocated(size, true));
        }
    }

    /// # Safety
    /// As `GlobalAlloc::realloc`; sampled mode (`mean` is its mode word), `layout.align() <= 8`.
    #[inline(always)]
    unsafe fn sampled_realloc(
        &self,
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
        mean: u64,
    ) -> *mut u8 {
        let old_size = layout.size();
        if Tagged::is_tagged(ptr) {
            // SAFETY: forwarded contract; the block is tagged.
            return unsafe { self.tagged_realloc(ptr, old_size, new_size, mean) };
        }
        let thread = match process::sampled::left_out(new_size) {
            Ok(thread) => thread,
            Err(found) => {
                // SAFETY: forwarded contract; the block is untagged.
                return unsafe {
                    self.untagged_realloc_planned(ptr, old_size, new_size, found, mean)
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
            unsafe { process::sampled::count_short_path(thread, live, Some(new_size as u64)) };
        }
        base
    }

    /// `sampled_realloc` of a tagged block: it keeps its tag; its record changes as in exact mode's
    /// header path (`process::on_realloc`).
    ///
    /// # Safety
    /// As `sampled_realloc`, `ptr` tagged.
    #[inline(never)]
    unsafe fn tagged_realloc(
        &self,
        ptr: *mut u8,
        old_size: usize,
        new_size: usize,
        mean: u64,
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
            let record = process::on_realloc(record, old_size, new_size, moved, mean);
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
        mean: u64,
    ) -> *mut u8 {
        config::check(self.request);
        let plan = UntaggedRealloc::plan(found, new_size, mean);
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

/// The current heap as a gzipped pprof `profile.proto` (feature `pprof`): Go's heap sample types
/// (`alloc_objects`, `alloc_space`, `inuse_objects`, `inuse_space`), thread names and task labels as
/// sample labels, in sampled mode the unbiased estimates with the sampling interval as the period.
/// What `go tool pprof`, Pyroscope and Parca read from a `/debug/pprof/heap` endpoint. Runs
/// untracked, and never stops the allocating threads.
#[cfg(feature = "pprof")]
pub fn pprof_heap() -> Vec<u8> {
    let snapshot = process::snapshot();
    ReentrancyGuard::untracked(|| {
        let mut out = Vec::new();
        tracealloc_snapshot::pprof::pprof(&snapshot, &mut out)
            .expect("writing to memory cannot fail");
        out
    })
}

/// What grew since `baseline` (an earlier [`snapshot`]), as a gzipped pprof profile (feature
/// `pprof`): each site's live bytes and its allocations since then, less what it had then (see
/// `model::Snapshot::growth_since`). Serve it beside [`pprof_heap`], with a baseline taken at
/// start-up, and a fleet's continuous profiler watches each process's growth. Runs untracked.
#[cfg(feature = "pprof")]
pub fn pprof_heap_growth(baseline: &Snapshot) -> Vec<u8> {
    let now = process::snapshot();
    ReentrancyGuard::untracked(|| {
        let grown = now.growth_since(baseline.as_model());
        let mut out = Vec::new();
        tracealloc_snapshot::pprof::pprof(&grown, &mut out).expect("writing to memory cannot fail");
        out
    })
}

/// Whole-process heap figures: cheap (no snapshot), callable from any thread at any time.
///
/// Totals follow dhat-rs's `HeapStats`. Exact when the program is quiescent. The peak is exact when
/// one thread allocates at a time; with several allocating at once it may miss up to 64 KiB per
/// other thread. In sampled mode a thread's peak is checked at least every 64 KiB it allocates, so
/// the peak may be up to 64 KiB per thread below the true one.
pub fn stats() -> HeapStats {
    ReentrancyGuard::untracked(|| process::REGISTRY.stats())
}

/// Sets the peak to the current live figures, to measure the peak of a phase.
pub fn reset_peak() {
    ReentrancyGuard::untracked(|| process::REGISTRY.reset_peak());
}

/// Copies every site's counters and symbolizes their stacks. Other threads keep allocating
/// meanwhile (each site's counters are read consistently). The snapshot's own memory is not counted.
pub fn snapshot() -> Snapshot {
    Snapshot(process::snapshot())
}

/// A snapshot of the heap taken by [`snapshot`] or loaded from a file: the one snapshot type of
/// the API. Everything here runs untracked (looking at a snapshot, cloning it or saving it does
/// not change the next one). The data is read through accessors; [`Snapshot::as_model`] gives the
/// plain model, whose own methods are ordinary code, tracked like yours.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot(model::Snapshot);

impl Clone for Snapshot {
    fn clone(&self) -> Self {
        ReentrancyGuard::untracked(|| Snapshot(self.0.clone()))
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // Its blocks were made untracked; freeing them is untracked too.
        let model = std::mem::replace(&mut self.0, model::Snapshot::empty());
        ReentrancyGuard::untracked(|| drop(model));
    }
}

impl Snapshot {
    /// The `n` largest groups by live bytes.
    pub fn top(&self, n: usize, by: GroupBy) -> Vec<Stat> {
        ReentrancyGuard::untracked(|| self.0.top(n, by))
    }

    /// All groups, largest live bytes first.
    pub fn statistics(&self, by: GroupBy) -> Vec<Stat> {
        ReentrancyGuard::untracked(|| self.0.statistics(by))
    }

    /// All groups, largest first by `sort`.
    pub fn statistics_sorted(&self, by: GroupBy, sort: Metric) -> Vec<Stat> {
        ReentrancyGuard::untracked(|| self.0.statistics_sorted(by, sort))
    }

    /// All groups of each thread, by thread index.
    pub fn statistics_per_thread(&self, by: GroupBy) -> Vec<Vec<Stat>> {
        ReentrancyGuard::untracked(|| self.0.statistics_per_thread(by))
    }

    /// Compares this (newer) snapshot with an `older` one.
    pub fn diff<'a>(&'a self, older: &'a Snapshot) -> SnapshotDiff<'a> {
        SnapshotDiff(self.0.diff(&older.0))
    }

    /// A copy keeping the sites the filters select (see [`Filter`]).
    pub fn filter(&self, filters: &[Filter]) -> Snapshot {
        ReentrancyGuard::untracked(|| Snapshot(self.0.filter(filters)))
    }

    /// Folded stacks (`root;...;leaf value`), for flamegraph renderers.
    pub fn folded(&self, options: &model::FoldOptions) -> Vec<String> {
        ReentrancyGuard::untracked(|| self.0.folded(options))
    }

    /// Differential folded stacks (`root;...;leaf old new`) against an `older` snapshot.
    pub fn folded_diff(&self, older: &Snapshot, options: &model::FoldOptions) -> Vec<String> {
        ReentrancyGuard::untracked(|| self.0.folded_diff(&older.0, options))
    }

    /// Writes the snapshot to a file (atomically: a temporary file renamed into place).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), SaveError> {
        ReentrancyGuard::untracked(|| self.0.save(path))
    }

    /// Reads a snapshot file.
    pub fn load(path: impl AsRef<Path>) -> Result<Snapshot, LoadError> {
        ReentrancyGuard::untracked(|| model::Snapshot::load(path).map(Snapshot))
    }

    /// Where and when it was taken, and how stacks were captured.
    pub fn meta(&self) -> &model::Metadata {
        &self.0.meta
    }

    /// Whole-process figures at the moment it was taken.
    pub fn totals(&self) -> &HeapStats {
        &self.0.totals
    }

    /// The profiler's own cost and the outcome of its captures.
    pub fn profiler(&self) -> &model::ProfilerFigures {
        &self.0.profiler
    }

    /// The threads that allocated.
    pub fn threads(&self) -> &[model::ThreadInfo] {
        &self.0.threads
    }

    /// Memory over time, oldest first: the peak is among the points, this snapshot's moment last.
    pub fn timeline(&self) -> &[model::TimePoint] {
        &self.0.timeline
    }

    /// Every (stack, thread) site's counters.
    pub fn sites(&self) -> &[model::Site] {
        &self.0.sites
    }

    /// The model: the same data, with the model crate's methods (which allocate as ordinary,
    /// tracked code).
    pub fn as_model(&self) -> &model::Snapshot {
        &self.0
    }

    /// The model, to keep without the wrapper (its blocks were made untracked; freeing them later
    /// counts as freeing untracked blocks, which the profiler tells apart).
    pub fn into_inner(self) -> model::Snapshot {
        let mut this = std::mem::ManuallyDrop::new(self);
        std::mem::replace(&mut this.0, model::Snapshot::empty())
    }
}

impl From<model::Snapshot> for Snapshot {
    fn from(snapshot: model::Snapshot) -> Self {
        Snapshot(snapshot)
    }
}

/// A newer snapshot compared with an older one.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotDiff<'a>(model::SnapshotDiff<'a>);

impl SnapshotDiff<'_> {
    /// The `n` groups whose live bytes changed most.
    pub fn top(&self, n: usize, by: GroupBy) -> Vec<StatDiff> {
        ReentrancyGuard::untracked(|| self.0.top(n, by))
    }

    /// Every group of either snapshot, largest absolute change first.
    pub fn statistics(&self, by: GroupBy) -> Vec<StatDiff> {
        ReentrancyGuard::untracked(|| self.0.statistics(by))
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "snapshot of {}: {} sites",
            self.0.meta,
            self.0.sites.len()
        )
    }
}
