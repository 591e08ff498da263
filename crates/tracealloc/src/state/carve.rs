//! The profiler's own memory for its tables: carved, lock-free, from large lazily-committed
//! mappings, and never freed (blocks may outlive their thread and still point at its records).
//!
//! Carving packs the small structures of each thread (its state, a small table, a first chunk of
//! records, a first block of stack nodes) next to each other, so a short-lived thread costs about
//! one page of resident memory and no mapping of its own: programs that start thousands of threads
//! neither bloat nor run out of the kernel's mapping count.
//!
//! ```text
//!  REGIONS[0] ──> [ state | table | chunk | nodes | state | table | ... ]  (64 MiB, on demand)
//!  REGIONS[1] ──> ...                   CURRENT: the region being carved
//! ```

use std::alloc::GlobalAlloc;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

const REGION_BYTES: usize = 64 << 20;
const MAX_REGIONS: usize = 256;
/// Carved pieces are aligned to a cache line, so two threads' pieces never share one.
pub(crate) const ALIGN: usize = 64;

static REGIONS: [AtomicPtr<u8>; MAX_REGIONS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_REGIONS];
static CURSORS: [AtomicUsize; MAX_REGIONS] = [const { AtomicUsize::new(0) }; MAX_REGIONS];
static CURRENT: AtomicUsize = AtomicUsize::new(0);

/// The region `i`, mapped on first use; null when memory is exhausted.
fn region(i: usize) -> *mut u8 {
    let base = REGIONS[i].load(Ordering::Acquire);
    if !base.is_null() {
        return base;
    }
    let fresh = map_low(REGION_BYTES);
    if fresh.is_null() {
        return fresh;
    }
    match REGIONS[i].compare_exchange(
        std::ptr::null_mut(),
        fresh,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => fresh,
        Err(winner) => {
            // SAFETY: `fresh` is our own mapping of REGION_BYTES, never shared.
            unsafe { unmap(fresh, REGION_BYTES) };
            winner
        }
    }
}

/// A lazily-committed mapping that lies below 2^48, or null. Record tables keep 16 bits of hash in
/// the bits above (see `table::entry_tag`); Linux maps there unless asked for higher addresses,
/// and a mapping that is not there counts as memory exhausted.
fn map_low(bytes: usize) -> *mut u8 {
    let p = map(bytes);
    if !p.is_null() && (p.addr().checked_add(bytes)).is_none_or(|end| end as u64 > 1 << 48) {
        // SAFETY: our own fresh mapping of `bytes`, never shared.
        unsafe { unmap(p, bytes) };
        return std::ptr::null_mut();
    }
    p
}

/// Zeroed memory committed page by page as it is touched: a mapping of its own, never freed but by
/// [`unmap`]. Under Miri, whose `mmap` takes no `MAP_NORESERVE` (and which has no `madvise`), it
/// is zeroed memory from the system allocator (never the global allocator, which may be the
/// profiler), page-aligned as a mapping is. Miri places its allocations far below 2^48, so the
/// check of [`map_low`] runs there too, and passes.
fn map(bytes: usize) -> *mut u8 {
    if !cfg!(miri) {
        return crate::sys::map_zeroed_lazily(bytes);
    }
    match std::alloc::Layout::from_size_align(bytes, PAGE) {
        // SAFETY: the layout's size is not zero.
        Ok(layout) if bytes != 0 => unsafe { std::alloc::System.alloc_zeroed(layout) },
        _ => std::ptr::null_mut(),
    }
}

/// The alignment of [`map`]'s memory under Miri: a page's, as a mapping's.
const PAGE: usize = 4096;

/// Gives back a whole mapping from [`map`].
///
/// # Safety
/// `p` and `bytes` come from one successful `map(bytes)`, and nothing uses the memory after.
unsafe fn unmap(p: *mut u8, bytes: usize) {
    if !cfg!(miri) {
        // SAFETY: the caller's own mapping, unused from now on.
        return unsafe { crate::sys::unmap(p, bytes) };
    }
    // SAFETY: under Miri, `map(bytes)` allocated `p` from the system allocator with this layout.
    unsafe {
        std::alloc::System.dealloc(
            p,
            std::alloc::Layout::from_size_align_unchecked(bytes, PAGE),
        )
    }
}

/// `bytes` of zeroed memory aligned to 64 and below 2^48, or null when memory is exhausted. Adds
/// the bytes to `carved` (the profiler's own-memory figure) when it succeeds.
pub(crate) fn carve(bytes: usize, carved: &AtomicU64) -> *mut u8 {
    let bytes = bytes.div_ceil(ALIGN) * ALIGN;
    let p = carve_uncounted(bytes);
    if !p.is_null() {
        carved.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    p
}

/// Gives back the pages of a piece carved with `carve(bytes, carved)` that nothing uses any more,
/// and takes what was given back off `carved`. The addresses stay reserved, never carved again.
///
/// # Safety
/// `p` came from `carve(bytes, carved)`, and nothing reads or writes the piece after.
pub(crate) unsafe fn give_back(p: *mut u8, bytes: usize, carved: &AtomicU64) {
    // Miri has no `madvise`: there the pages stay, as when the kernel refuses the advice.
    let released = if cfg!(miri) {
        0
    } else {
        // SAFETY: the caller's piece, unused from now on, in one of our mappings.
        unsafe { crate::sys::release_pages(p, bytes) }
    };
    carved.fetch_sub(released as u64, Ordering::Relaxed);
}

fn carve_uncounted(bytes: usize) -> *mut u8 {
    #[cfg(test)]
    if FAIL_ON_THIS_THREAD.with(std::cell::Cell::get) {
        return std::ptr::null_mut();
    }
    if bytes > REGION_BYTES / 8 {
        return map_low(bytes); // big tables get mappings of their own
    }
    loop {
        let i = CURRENT.load(Ordering::Acquire);
        if i >= MAX_REGIONS {
            return map_low(bytes);
        }
        let base = region(i);
        if base.is_null() {
            return base;
        }
        let start = CURSORS[i].fetch_add(bytes, Ordering::Relaxed);
        if start + bytes <= REGION_BYTES {
            // SAFETY: [start, start + bytes) lies inside region i, and no other carve got it.
            return unsafe { base.add(start) };
        }
        let _ = CURRENT.compare_exchange(i, i + 1, Ordering::AcqRel, Ordering::Acquire);
    }
}

#[cfg(test)]
thread_local! {
    static FAIL_ON_THIS_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// From now on, every carve of the calling thread fails as if memory were exhausted (tests only).
#[cfg(test)]
pub(crate) fn fail_on_this_thread() {
    FAIL_ON_THIS_THREAD.with(|fail| fail.set(true));
}
