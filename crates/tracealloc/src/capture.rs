//! Stack capture on the allocator path: a bounds-checked frame-pointer walk, or, when the program
//! was built without frame pointers, the DWARF unwinder (correct, but about 100 times slower).
//!
//! The capture mode is decided once, at the first allocation, by walking from a known chain of our
//! own `#[inline(never)]` functions: if the walk does not see them, frame pointers are missing and a
//! frame-pointer walk would return wrong stacks.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::thread::ThreadState;

/// The most frames a stack can keep (`TRACEALLOC_DEPTH` is capped here).
pub(crate) const MAX_DEPTH: usize = 256;
/// Frames kept per stack unless `TRACEALLOC_DEPTH` says otherwise: enough for recursive-descent
/// parsers in debug builds (syn parsing real code goes 40-110 frames deep there).
pub(crate) const DEFAULT_DEPTH: usize = 128;

/// The environment variable that sets how many frames a stack keeps (1 to 256; default 128).
/// Deeper stacks are truncated: counted as such, and marked by a `[truncated]` outermost frame.
pub const DEPTH_ENV: &str = "TRACEALLOC_DEPTH";

/// Frames kept per stack, set once with the capture mode.
static DEPTH: AtomicUsize = AtomicUsize::new(DEFAULT_DEPTH);

/// Frames kept per stack.
#[inline(always)]
pub(crate) fn depth_limit() -> usize {
    DEPTH.load(Ordering::Relaxed)
}

/// `TRACEALLOC_DEPTH`, when set to a number from 1 to [`MAX_DEPTH`]. Read with `getenv`, which
/// does not allocate.
fn requested_depth() -> Option<usize> {
    // SAFETY: the name is NUL-terminated; getenv returns null or a NUL-terminated string that we
    // only read here.
    let value = unsafe {
        let value = libc::getenv(c"TRACEALLOC_DEPTH".as_ptr());
        if value.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr(value).to_bytes()
    };
    let depth = std::str::from_utf8(value)
        .ok()?
        .trim()
        .parse::<usize>()
        .ok()?;
    if (1..=MAX_DEPTH).contains(&depth) {
        Some(depth)
    } else {
        crate::sys::write_stderr(
            b"tracealloc: TRACEALLOC_DEPTH must be a number from 1 to 256; using 128\n",
        );
        None
    }
}

/// How a stack capture ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum CaptureEnd {
    Complete = 0,
    Truncated = 1,
    Broken = 2,
}

/// A captured stack: return addresses, innermost first.
pub(crate) struct Captured {
    /// The first `depth` entries are written by the capture; the rest stay uninitialized, so a
    /// capture costs no 512-byte clear.
    frames: [MaybeUninit<usize>; MAX_DEPTH],
    pub(crate) depth: usize,
    pub(crate) hash: u64,
    pub(crate) end: CaptureEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum CaptureMode {
    Undecided = 0,
    FramePointers = 1,
    Unwind = 2,
}

static MODE: AtomicU8 = AtomicU8::new(CaptureMode::Undecided as u8);

impl CaptureMode {
    #[inline(always)]
    pub(crate) fn current() -> CaptureMode {
        match MODE.load(Ordering::Relaxed) {
            1 => CaptureMode::FramePointers,
            2 => CaptureMode::Unwind,
            _ => CaptureMode::Undecided,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            CaptureMode::FramePointers => "frame-pointers",
            CaptureMode::Unwind => "dwarf-unwind",
            CaptureMode::Undecided => "none",
        }
    }
}

/// Decides the capture mode once (idempotent; racing threads reach the same answer).
#[cold]
pub(crate) fn decide_mode(stack: (usize, usize)) -> CaptureMode {
    if let Some(depth) = requested_depth() {
        DEPTH.store(depth, Ordering::Relaxed);
    }
    crate::thread::STACK_BUDGET.configure();
    #[cfg(tracealloc_unoptimized)]
    crate::sys::write_stderr(UNOPTIMIZED_NOTICE);
    let mode = if unwind_requested() {
        CaptureMode::Unwind
    } else if frame_pointers_work(stack) {
        CaptureMode::FramePointers
    } else {
        crate::sys::write_stderr(
            b"tracealloc: this program has no frame pointers; falling back to DWARF unwinding, \
              which costs a few ns more per frame of every allocation's stack. Build with \
              RUSTFLAGS=\"-C force-frame-pointers=yes\".\n",
        );
        CaptureMode::Unwind
    };
    #[cfg(target_arch = "x86_64")]
    if mode == CaptureMode::Unwind {
        crate::unwind::build();
    }
    MODE.store(mode as u8, Ordering::Relaxed);
    mode
}

/// Said once at start-up when the profiler itself was compiled at opt-level 0 (a plain debug
/// build): its code then costs several times what it does optimized, on every allocation.
#[cfg(tracealloc_unoptimized)]
const UNOPTIMIZED_NOTICE: &[u8] = concat!(
    "tracealloc: the profiler is compiled without optimization, which makes every allocation\n",
    "several times slower than it needs to be. For fast debug builds, add to your workspace's\n",
    "Cargo.toml\n",
    "    [profile.dev.package.tracealloc]\n",
    "    opt-level = 3\n",
    "and build with frame pointers (see \"Debug builds\" in tracealloc's README).\n",
)
.as_bytes();

/// The environment variable that forces a capture method: `TRACEALLOC_CAPTURE=unwind` uses the
/// DWARF unwinder even when frame pointers work (to compare the two, or to work around a library
/// built without frame pointers in the middle of the stacks).
pub const CAPTURE_ENV: &str = "TRACEALLOC_CAPTURE";

/// Whether `TRACEALLOC_CAPTURE=unwind` is set. Read with `getenv`, which does not allocate.
fn unwind_requested() -> bool {
    // SAFETY: the name is NUL-terminated; getenv returns null or a NUL-terminated string that we
    // only read here, before anything in this process could have changed the environment.
    unsafe {
        let value = libc::getenv(c"TRACEALLOC_CAPTURE".as_ptr());
        !value.is_null() && std::ffi::CStr::from_ptr(value).to_bytes() == b"unwind"
    }
}

/// Frame pointers as this build was compiled, seen by walking from our own known call chain.
pub(crate) fn frame_pointers_work(stack: (usize, usize)) -> bool {
    std::hint::black_box(probe_outer(stack)) == 2
}

#[inline(never)]
fn probe_outer(stack: (usize, usize)) -> u32 {
    let seen = probe_middle(stack);
    std::hint::black_box(seen)
}

#[inline(never)]
fn probe_middle(stack: (usize, usize)) -> u32 {
    let seen = probe_inner(stack);
    std::hint::black_box(seen)
}

/// Counts how many of the two expected return addresses (into `probe_middle`, then into
/// `probe_outer`) the frame-pointer walk finds.
#[inline(never)]
fn probe_inner(stack: (usize, usize)) -> u32 {
    let mut captured = Captured::empty();
    if !walk_frame_pointers(&mut captured, stack) {
        return 0;
    }
    let within = |ret: usize, f: usize| ret > f && ret < f + 1024;
    let middle = probe_middle as fn((usize, usize)) -> u32 as usize;
    let outer = probe_outer as fn((usize, usize)) -> u32 as usize;
    let mut seen = 0;
    let stack = captured.stack();
    if stack.len() >= 2 && within(stack[0], middle) {
        seen += 1;
        if within(stack[1], outer) {
            seen += 1;
        }
    }
    seen
}

/// Folds one return address into a stack's hash. Two one-cycle operations, so the walk is not
/// held up by a multiply per frame; [`table_place`] mixes the result before it picks a slot (stacks
/// are compared whole on lookup, so the hash only spreads them).
#[inline(always)]
fn mix(hash: u64, addr: usize) -> u64 {
    hash.rotate_left(5) ^ addr as u64
}

/// Where a stack hash goes in a table of `mask + 1` slots, and the tag its entry carries (murmur3's
/// 64-bit finalizer: the low bits pick the slot, the high ones make the tag).
#[inline(always)]
pub(crate) fn table_place(hash: u64, mask: usize) -> (usize, usize) {
    let mut h = hash;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h as usize & mask, crate::thread::entry_tag(h))
}

impl Captured {
    pub(crate) fn empty() -> Self {
        Captured {
            frames: [const { MaybeUninit::uninit() }; MAX_DEPTH],
            depth: 0,
            hash: 0,
            end: CaptureEnd::Complete,
        }
    }

    /// A capture of the given return addresses (for tests of the bookkeeping).
    #[cfg(test)]
    pub(crate) fn of(stack: &[usize]) -> Self {
        let mut captured = Self::empty();
        for &ret in stack.iter().take(MAX_DEPTH) {
            captured.push(ret);
        }
        captured
    }

    /// Empties the capture before a new walk.
    pub(crate) fn reset(&mut self) {
        self.depth = 0;
        self.hash = 0;
        self.end = CaptureEnd::Complete;
    }

    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    /// Appends a return address; the caller checks `depth() < depth_limit()` first.
    #[inline(always)]
    pub(crate) fn push(&mut self, ret: usize) {
        self.frames[self.depth] = MaybeUninit::new(ret);
        self.depth += 1;
        self.hash = mix(self.hash, ret);
    }

    pub(crate) fn stack(&self) -> &[usize] {
        // SAFETY: the first `depth` entries were written by `push`; MaybeUninit<usize> has the
        // layout of usize.
        unsafe { std::slice::from_raw_parts(self.frames.as_ptr().cast::<usize>(), self.depth) }
    }

    /// Captures the calling stack with the decided mode, for the calling thread's `state`.
    #[inline(always)]
    pub(crate) fn capture(&mut self, mode: CaptureMode, state: &ThreadState) {
        match mode {
            CaptureMode::FramePointers => {
                walk_frame_pointers(self, state.stack());
            }
            _ => self.unwind(state),
        }
    }

    /// Unwinds with DWARF call-frame information: framehop where available, else
    /// `_Unwind_Backtrace`.
    #[cold]
    #[inline(never)]
    fn unwind(&mut self, state: &ThreadState) {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: the cache is this thread's own (made on its first unwind) and `stack`
            // bounds this thread's stack.
            if unsafe {
                crate::unwind::unwind(self, state.unwind_cache(), state.stack(), depth_limit())
            } {
                return;
            }
        }
        let _ = state;
        self.reset();
        let limit = depth_limit();
        // SAFETY: trace_unsynchronized requires that no other backtrace call runs concurrently with
        // it in a way that breaks the platform unwinder; `_Unwind_Backtrace` (its backend here) is
        // thread-safe. The callback neither allocates nor panics.
        unsafe {
            backtrace::trace_unsynchronized(|frame| {
                if self.depth == limit {
                    self.end = CaptureEnd::Truncated;
                    return false;
                }
                self.push(frame.ip() as usize);
                true
            });
        }
    }
}

/// Walks the frame-pointer chain from the caller of the function this is inlined into. Every
/// pointer is checked against the thread's stack, so a broken chain ends the walk instead of
/// reading wild memory. Returns false on architectures without a frame-pointer walk.
#[inline(always)]
fn walk_frame_pointers(out: &mut Captured, (low, high): (usize, usize)) -> bool {
    let mut fp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reading rbp has no side effects.
    unsafe {
        std::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reading x29 has no side effects.
    unsafe {
        std::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = (out, low, high);
        return false;
    }
    // Frames below our own are not part of the chain; the current frame bounds it from below.
    let low = low.max(&fp as *const usize as usize);
    // Depth and hash stay in registers through the loop (through `out`, each step would wait on
    // the store of the previous one).
    // At most MAX_DEPTH, which the compiler sees: no bounds check per frame.
    let limit = depth_limit().min(MAX_DEPTH);
    let mut depth = 0;
    let mut hash = 0u64;
    let end = loop {
        if fp == 0 || fp < low || fp > high.saturating_sub(16) {
            break CaptureEnd::Complete;
        }
        if !fp.is_multiple_of(std::mem::align_of::<usize>()) {
            break CaptureEnd::Broken;
        }
        // SAFETY: (1) fp is 8-aligned and `fp + 16 <= high`, so both words lie in
        // `[low, high)`; (2) that range is the live part of this thread's stack (from our own
        // frame up to the stack's top), which is mapped and readable.
        let (next, ret) = unsafe {
            let frame = fp as *const usize;
            (frame.read(), frame.add(1).read())
        };
        if ret == 0 {
            break CaptureEnd::Complete;
        }
        if depth >= limit {
            break CaptureEnd::Truncated;
        }
        out.frames[depth] = MaybeUninit::new(ret);
        depth += 1;
        hash = mix(hash, ret);
        if next != 0 && next <= fp {
            break CaptureEnd::Broken;
        }
        fp = next;
    };
    out.depth = depth;
    out.hash = hash;
    out.end = end;
    true
}
