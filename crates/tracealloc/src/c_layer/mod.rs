//! The C allocation layer: the process's `malloc` family, exported under the C names by the binary
//! that asks for it ([`crate::c_allocations!`], and the preload library `tracealloc run` uses), so
//! that ELF symbol interposition sends every C allocation of the process (the C library's own, `opendir`'s buffers, `strdup`, every C or C++
//! library's) through the profiler, charged to its full stack.
//!
//! ```text
//!  malloc / calloc / realloc / free / posix_memalign / aligned_alloc / memalign / valloc /
//!  pvalloc / reallocarray / malloc_usable_size
//!     │  (the policy word, as the Rust entry points read it: `policy::*` hooks, same registry)
//!     └─> glibc's own allocator through its exported `__libc_malloc` family (no `dlsym`, so
//!         nothing to bootstrap: the first allocation of the process, in the dynamic loader's
//!         start-up, is served like every other)
//!
//!  each block:  [ (pad - 16 bytes) | size, pad, magic (8) | record (8) ][ user bytes ... ]
//!               ^ glibc's block                                          ^ returned
//! ```
//! The 16-byte header holds what `free` needs (C's `free` gets no size): the size asked for, the
//! padding in front (16, or the alignment for `posix_memalign` and its kin, whose blocks come from
//! `__libc_memalign`), and the site's record. A 16-bit magic number in the header tells a block
//! that glibc made without us (none is expected: the dynamic loader's start-up blocks are never
//! freed through `free`) from ours; such a block is handed to glibc untouched.
//!
//! Rust's `System` allocator calls `malloc`, `calloc`, `realloc`, `posix_memalign` and `free`: with
//! this layer in the process, the Rust layer (`Profiler<System>`) stands down and forwards to
//! `System`, so a Rust allocation is seen once, here, with its whole stack.
//!
//! Blocks the profiler makes for itself (under the reentrancy guard) carry a null record, as in
//! the Rust layer: they are counted as the profiler's own memory.

use std::ffi::c_void;

use crate::guard::ReentrancyGuard;

use crate::config::{self, LIFETIMES_WORD, ORIGIN_WORD, Request, UNDECIDED_WORD, is_sampled};
use crate::policy::{Exact, ExactOrigin, Lifetimes, Policy, Sampled};
use crate::state::record::SiteRecord;

unsafe extern "C" {
    fn __libc_malloc(size: usize) -> *mut c_void;
    fn __libc_calloc(count: usize, size: usize) -> *mut c_void;
    fn __libc_realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn __libc_free(ptr: *mut c_void);
    fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
}

/// The header in front of every block: two words.
const HEADER: usize = 16;
/// Sizes are kept in the low 40 bits (1 TiB); larger requests fail with `ENOMEM`.
const SIZE_BITS: u32 = 40;
const SIZE_MASK: u64 = (1 << SIZE_BITS) - 1;
/// The padding's log2 sits in bits 40..48.
const PAD_SHIFT: u32 = 40;
/// Bits 48..64: the magic number of our headers.
const MAGIC: u64 = 0x7a11 << 48;
const MAGIC_MASK: u64 = 0xffff << 48;
/// The largest size the header can hold.
const MAX_SIZE: usize = SIZE_MASK as usize;

/// This copy of the runtime, as [`crate::c_allocations!`]'s exported `tracealloc_c_layer_v1`
/// names it (kept with the configuration, which looks it up: see `config`).
pub use crate::config::C_LAYER_IDENTITY as IDENTITY;
use crate::config::mark_c_layer_in_use as mark_in_use;

/// Sets the profiler up on the calling thread now (the preload library's constructor calls it):
/// the exit snapshot is then written even by a process that never allocates.
pub fn start() {
    mark_in_use();
    let _ = word();
    let _ = crate::process::current_thread();
}

/// A block's header, read.
#[derive(Clone, Copy)]
struct Header {
    size: usize,
    pad: usize,
    record: *const SiteRecord,
}

impl Header {
    /// Reads the header of a block returned by this layer, or `None` when the magic number is not
    /// ours (a block glibc made without us).
    ///
    /// # Safety
    /// `user` is a live block returned by a `malloc`-family function of the process.
    #[inline(always)]
    unsafe fn read(user: *mut c_void) -> Option<Header> {
        // SAFETY: every block of the process's allocator has at least 16 readable bytes in front
        // of it: our header, or glibc's chunk header (its previous chunk's size and its own).
        let (word, record) = unsafe {
            let slot = user.cast::<u64>().sub(2);
            (slot.read(), slot.add(1).read() as *const SiteRecord)
        };
        if word & MAGIC_MASK != MAGIC {
            return None;
        }
        Some(Header {
            size: (word & SIZE_MASK) as usize,
            pad: 1 << ((word >> PAD_SHIFT) & 0xff),
            record,
        })
    }

    /// Writes the header of the block at `user`.
    ///
    /// # Safety
    /// `user` is `base + pad` of a live glibc block of at least `pad + size` bytes, `pad >= 16`, a
    /// power of two; `size <= MAX_SIZE`.
    #[inline(always)]
    unsafe fn write(user: *mut c_void, size: usize, pad: usize, record: *const SiteRecord) {
        let word = MAGIC | (u64::from(pad.trailing_zeros()) << PAD_SHIFT) | size as u64;
        // SAFETY: the 16 bytes before `user` lie in the padding of the block, 8-aligned.
        unsafe {
            let slot = user.cast::<u64>().sub(2);
            slot.write(word);
            slot.add(1).write(record as u64);
        }
    }

    /// The glibc block this header's block lives in.
    fn base(&self, user: *mut c_void) -> *mut c_void {
        user.cast::<u8>().wrapping_sub(self.pad).cast()
    }
}

fn set_errno(code: i32) {
    // SAFETY: the calling thread's errno, always valid.
    unsafe { *libc::__errno_location() = code };
}

/// The policy word, deciding the configuration at the process's first allocation.
#[inline(always)]
fn word() -> u64 {
    let word = config::policy_word_of_c_layer();
    if word == UNDECIDED_WORD {
        return decide();
    }
    word
}

#[cold]
#[inline(never)]
fn decide() -> u64 {
    mark_in_use();
    config::decide_quietly(Request::DEFAULT).policy.word()
}

/// Accounts a new block under the decided policy; returns its record.
#[inline(always)]
fn on_alloc(size: usize, user: *mut c_void) -> *const SiteRecord {
    let (request, address) = (Request::DEFAULT, user as usize);
    if config::policy_word_of_c_layer() == UNDECIDED_WORD && ReentrancyGuard::is_held() {
        // An allocation of the decision itself (the look-up of another copy's C layer, made by
        // the Rust layer's first allocation, and its probe of who owns `malloc`): the
        // profiler's own block; and this copy's C layer owns `malloc`.
        mark_in_use();
        crate::process::REGISTRY.record_own(size as i64);
        return std::ptr::null();
    }
    match word() {
        0 => Exact.on_alloc(size, address, request),
        word if is_sampled(word) => Sampled { mean: word }.on_alloc(size, address, request),
        ORIGIN_WORD => ExactOrigin.on_alloc(size, address, request),
        LIFETIMES_WORD => Lifetimes.on_alloc(size, address, request),
        _ => Exact.on_alloc(size, address, request),
    }
}

#[inline(always)]
fn on_dealloc(record: *const SiteRecord, size: usize, user: *mut c_void) {
    let address = user as usize;
    match word() {
        0 => Exact.on_dealloc(record, size, address),
        word if is_sampled(word) => Sampled { mean: word }.on_dealloc(record, size, address),
        ORIGIN_WORD => ExactOrigin.on_dealloc(record, size, address),
        LIFETIMES_WORD => Lifetimes.on_dealloc(record, size, address),
        _ => Exact.on_dealloc(record, size, address),
    }
}

#[inline(always)]
fn on_realloc(
    record: *const SiteRecord,
    old: usize,
    new: usize,
    moved: (usize, usize),
) -> *const SiteRecord {
    match word() {
        0 => Exact.on_realloc(record, old, new, moved),
        word if is_sampled(word) => Sampled { mean: word }.on_realloc(record, old, new, moved),
        ORIGIN_WORD => ExactOrigin.on_realloc(record, old, new, moved),
        LIFETIMES_WORD => Lifetimes.on_realloc(record, old, new, moved),
        _ => Exact.on_realloc(record, old, new, moved),
    }
}

/// A new block of `size` bytes aligned to `pad` (16, or a larger power of two).
///
/// # Safety
/// `pad` is a power of two, at least 16.
#[inline(always)]
unsafe fn allocate(size: usize, pad: usize, zeroed: bool) -> *mut c_void {
    if size > MAX_SIZE {
        set_errno(libc::ENOMEM);
        return std::ptr::null_mut();
    }
    // SAFETY: glibc's own allocator; sizes cannot overflow (size <= 2^40, pad <= 2^63 checked by
    // the callers, which refuse alignments that do not fit).
    let base = unsafe {
        if pad == HEADER {
            if zeroed {
                __libc_calloc(1, size + HEADER)
            } else {
                __libc_malloc(size + HEADER)
            }
        } else {
            let Some(total) = size.checked_add(pad) else {
                set_errno(libc::ENOMEM);
                return std::ptr::null_mut();
            };
            let base = __libc_memalign(pad, total);
            if zeroed && !base.is_null() {
                base.cast::<u8>().write_bytes(0, total);
            }
            base
        }
    };
    if base.is_null() {
        return base;
    }
    let user = base.cast::<u8>().wrapping_add(pad).cast::<c_void>();
    let record = on_alloc(size, user);
    // SAFETY: `user` is base + pad of a live block of pad + size bytes.
    unsafe { Header::write(user, size, pad, record) };
    user
}

/// # Safety
/// `ptr` is null or a live block of the process's allocator.
#[inline(always)]
unsafe fn release(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: the caller's contract.
    let Some(header) = (unsafe { Header::read(ptr) }) else {
        // SAFETY: not ours: glibc's own block, handed back to it.
        return unsafe { __libc_free(ptr) };
    };
    on_dealloc(header.record, header.size, ptr);
    // SAFETY: the glibc block our `allocate` made.
    unsafe { __libc_free(header.base(ptr)) };
}

/// # Safety
/// `ptr` is null or a live block of the process's allocator.
#[inline(always)]
unsafe fn resize(ptr: *mut c_void, size: usize) -> *mut c_void {
    if ptr.is_null() {
        // SAFETY: 16 is a valid padding.
        return unsafe { allocate(size, HEADER, false) };
    }
    if size == 0 {
        // glibc's realloc(ptr, 0) frees the block and returns NULL.
        // SAFETY: the caller's contract.
        unsafe { release(ptr) };
        return std::ptr::null_mut();
    }
    // SAFETY: the caller's contract.
    let Some(header) = (unsafe { Header::read(ptr) }) else {
        // SAFETY: glibc's own block: resized by glibc, untracked.
        return unsafe { __libc_realloc(ptr, size) };
    };
    if size > MAX_SIZE {
        set_errno(libc::ENOMEM);
        return std::ptr::null_mut();
    }
    let user = if header.pad == HEADER {
        // SAFETY: the glibc block our `allocate` made, resized with room for the header.
        let base = unsafe { __libc_realloc(header.base(ptr), size + HEADER) };
        if base.is_null() {
            return base;
        }
        base.cast::<u8>().wrapping_add(HEADER).cast::<c_void>()
    } else {
        // An aligned block moves to an ordinary one, as glibc's realloc does (it keeps 16-byte
        // alignment only).
        // SAFETY: glibc's allocator; the copy stays within both live blocks; the old block is
        // freed after it.
        unsafe {
            let base = __libc_malloc(size + HEADER);
            if base.is_null() {
                return base;
            }
            let user = base.cast::<u8>().add(HEADER).cast::<c_void>();
            std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), user.cast(), header.size.min(size));
            __libc_free(header.base(ptr));
            user
        }
    };
    let record = on_realloc(
        header.record,
        header.size,
        size,
        (ptr as usize, user as usize),
    );
    // SAFETY: `user` is base + 16 of a live block of size + 16 bytes.
    unsafe { Header::write(user, size, HEADER, record) };
    user
}

/// The padding for an alignment: 16, or the alignment when larger; `None` when it is not a power
/// of two or too large to pad.
fn pad_for(align: usize) -> Option<usize> {
    if !align.is_power_of_two() || align > 1 << 40 {
        return None;
    }
    Some(align.max(HEADER))
}

/// `malloc(3)`, tracked.
///
/// # Safety
/// As `malloc(3)`.
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    // SAFETY: 16 is a valid padding.
    unsafe { allocate(size, HEADER, false) }
}

/// `calloc(3)`, tracked.
///
/// # Safety
/// As `calloc(3)`.
pub unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    let Some(total) = count.checked_mul(size) else {
        set_errno(libc::ENOMEM);
        return std::ptr::null_mut();
    };
    // SAFETY: 16 is a valid padding.
    unsafe { allocate(total, HEADER, true) }
}

/// `realloc(3)`, tracked.
///
/// # Safety
/// As `realloc(3)`: `ptr` is null or a live block of the process's allocator.
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: the caller's contract.
    unsafe { resize(ptr, size) }
}

/// `reallocarray(3)`, tracked.
///
/// # Safety
/// As `reallocarray(3)`.
pub unsafe extern "C" fn reallocarray(ptr: *mut c_void, count: usize, size: usize) -> *mut c_void {
    let Some(total) = count.checked_mul(size) else {
        set_errno(libc::ENOMEM);
        return std::ptr::null_mut();
    };
    // SAFETY: the caller's contract.
    unsafe { resize(ptr, total) }
}

/// `free(3)`, tracked.
///
/// # Safety
/// As `free(3)`: `ptr` is null or a live block of the process's allocator.
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    // SAFETY: the caller's contract.
    unsafe { release(ptr) }
}

/// `posix_memalign(3)`, tracked.
///
/// # Safety
/// As `posix_memalign(3)`: `out` is valid for a pointer's write.
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> i32 {
    let Some(pad) = pad_for(align).filter(|_| align.is_multiple_of(std::mem::size_of::<usize>()))
    else {
        return libc::EINVAL;
    };
    // posix_memalign leaves errno as it was.
    // SAFETY: the calling thread's errno, always valid.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: `pad` is a power of two, at least 16.
    let user = unsafe { allocate(size, pad, false) };
    if user.is_null() {
        set_errno(errno);
        return libc::ENOMEM;
    }
    // SAFETY: the caller's contract.
    unsafe { out.write(user) };
    0
}

/// `aligned_alloc(3)`, tracked.
///
/// # Safety
/// As `aligned_alloc(3)`.
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    let Some(pad) = pad_for(align) else {
        set_errno(libc::EINVAL);
        return std::ptr::null_mut();
    };
    // SAFETY: `pad` is a power of two, at least 16.
    unsafe { allocate(size, pad, false) }
}

/// `memalign(3)`, tracked: an alignment that is not a power of two is rounded up to one, as
/// glibc does.
///
/// # Safety
/// As `memalign(3)`.
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    let Some(pad) = pad_for(align.checked_next_power_of_two().unwrap_or(0)) else {
        set_errno(libc::EINVAL);
        return std::ptr::null_mut();
    };
    // SAFETY: `pad` is a power of two, at least 16.
    unsafe { allocate(size, pad, false) }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 { page as usize } else { 4096 }
}

/// `valloc(3)`, tracked.
///
/// # Safety
/// As `valloc(3)`.
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    // SAFETY: a page is a power of two, at least 16.
    unsafe { allocate(size, page_size(), false) }
}

/// `pvalloc(3)`, tracked: the size rounded up to whole pages.
///
/// # Safety
/// As `pvalloc(3)`.
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let page = page_size();
    let Some(size) = size.max(1).checked_next_multiple_of(page) else {
        set_errno(libc::ENOMEM);
        return std::ptr::null_mut();
    };
    // SAFETY: a page is a power of two, at least 16.
    unsafe { allocate(size, page, false) }
}

/// `malloc_usable_size(3)`: the size the program asked for (the bytes it may use, and the bytes
/// the profiler counts), 0 for null.
///
/// # Safety
/// As `malloc_usable_size(3)`: `ptr` is null or a live block of the process's allocator.
pub unsafe extern "C" fn malloc_usable_size(ptr: *mut c_void) -> usize {
    if ptr.is_null() {
        return 0;
    }
    // SAFETY: the caller's contract.
    match unsafe { Header::read(ptr) } {
        Some(header) => header.size,
        // A block glibc made without us: its size word, as glibc's own function reads it (the
        // chunk's size less its header and flags).
        // SAFETY: glibc's chunk header precedes its block.
        None => unsafe { (ptr.cast::<usize>().sub(1).read() & !7).saturating_sub(16) },
    }
}

/// Counts the process's C allocations too: defines the `malloc` family in the binary that invokes
/// it (once, in the crate of its `main`, beside the `#[global_allocator]` line), so that every
/// `malloc`, `calloc`, `realloc`, `reallocarray`, `free`, `posix_memalign`, `aligned_alloc`,
/// `memalign`, `valloc`, `pvalloc` and `malloc_usable_size` of the process, the C library's own
/// and every C or C++ library's, goes through tracealloc, charged to its whole stack (the C frames
/// and the Rust frames that called them).
///
/// ```no_run
/// #[global_allocator]
/// static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();
/// tracealloc::c_allocations!();
/// # fn main() {}
/// ```
///
/// (Compile-only: it replaces the process's `malloc`; the workspace's test program
/// `tests/src/bin/c_allocations.rs` runs with it.)
///
/// Rust's `System` allocator calls `malloc` itself: the `Profiler` then stands down and forwards
/// to it, so each Rust allocation is counted once, in the C layer, with the same stack. A macro
/// rather than a feature, so that only the binary that asks for it replaces `malloc` (a feature
/// would reach every binary of a workspace built together). Settings come from the environment
/// (`TRACEALLOC_SAMPLE`...): the C layer's first allocation comes before the `Profiler` value's.
#[macro_export]
macro_rules! c_allocations {
    () => {
        const _: () = {
            use ::core::ffi::c_void;
            #[unsafe(no_mangle)]
            unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
                // SAFETY: forwarded contract.
                unsafe { $crate::c_layer::malloc(size) }
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
                // SAFETY: forwarded contract.
                unsafe { $crate::c_layer::calloc(count, size) }
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
                // SAFETY: forwarded contract.
                unsafe { $crate::c_layer::realloc(ptr, size) }
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn reallocarray(
                ptr: *mut c_void,
                count: usize,
                size: usize,
            ) -> *mut c_void {
                // SAFETY: forwarded contract.
                unsafe { $crate::c_layer::reallocarray(ptr, count, size) }
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn free(ptr: *mut c_void) {
                // SAFETY: forwarded contract.
                unsafe { $crate::c_layer::free(ptr) }
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn posix_memalign(
                out: *mut *mut c_void,
                align: usize,
                size: usize,
            ) -> i32 {
                // SAFETY: forwarded contract.
                unsafe { $crate::c_layer::posix_memalign(out, align, size) }
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
                // SAFETY: forwarded contract.
                unsafe { $crate::c_layer::aligned_alloc(align, size) }
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
                // SAFETY: forwarded contract.
                unsafe { $crate::c_layer::memalign(align, size) }
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
                // SAFETY: forwarded contract.
                unsafe { $crate::c_layer::valloc(size) }
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
                // SAFETY: forwarded contract.
                unsafe { $crate::c_layer::pvalloc(size) }
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn malloc_usable_size(ptr: *mut c_void) -> usize {
                // SAFETY: forwarded contract.
                unsafe { $crate::c_layer::malloc_usable_size(ptr) }
            }
            /// Names this copy of the runtime to the others (see `tracealloc::c_layer::IDENTITY`).
            #[unsafe(no_mangle)]
            extern "C" fn tracealloc_c_layer_v1() -> *const u8 {
                &$crate::c_layer::IDENTITY
            }
        };
    };
}
