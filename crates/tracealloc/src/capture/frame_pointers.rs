//! The frame-pointer walk: about a nanosecond per frame, bounds-checked against the thread's stack,
//! and the probe that tells, at start-up, whether this build keeps frame pointers.

use std::mem::MaybeUninit;

use super::{CaptureEnd, Captured, MAX_DEPTH, StackHash};

/// Frame pointers as this build was compiled, seen by walking from our own known call chain.
pub(super) fn frame_pointers_work(stack: (usize, usize)) -> bool {
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
    // The probe needs two frames whatever `TRACEALLOC_DEPTH` says.
    if !walk_frame_pointers(&mut captured, stack, MAX_DEPTH) {
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

/// Walks the frame-pointer chain from the caller of the function this is inlined into, keeping up
/// to `limit` frames. Every pointer is checked against the thread's stack, so a broken chain ends
/// the walk instead of reading wild memory. Returns false on architectures without a
/// frame-pointer walk.
#[inline(always)]
pub(super) fn walk_frame_pointers(
    out: &mut Captured,
    (low, high): (usize, usize),
    limit: usize,
) -> bool {
    let mut fp: usize;
    // The stack pointer, read rather than taken as a local's address: a local whose address is
    // taken lives in memory, and the loop would store the frame pointer to it on every frame.
    let sp: usize;
    // `out` lives in this function's frame or a caller's: the register reads take its address as
    // an input, so they cannot be scheduled before the prologue that sets this frame up. (Without
    // it, LLVM's shrink-wrapping may read rbp before `push rbp; mov rbp, rsp`: the walk would start
    // at the caller's frame and miss the innermost return address.)
    let frame = std::ptr::from_mut(out) as usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reading rbp and rsp has no side effects; `frame` is only named in a comment.
    unsafe {
        std::arch::asm!("mov {fp}, rbp", "mov {sp}, rsp", "/* {frame} */",
            fp = out(reg) fp, sp = out(reg) sp, frame = in(reg) frame,
            options(nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reading x29 and sp has no side effects; `frame` is only named in a comment.
    unsafe {
        std::arch::asm!("mov {fp}, x29", "mov {sp}, sp", "/* {frame} */",
            fp = out(reg) fp, sp = out(reg) sp, frame = in(reg) frame,
            options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = (out, low, high, limit, frame);
        return false;
    }
    // Frames below our own are not part of the chain; the current frame bounds it from below.
    let low = low.max(sp);
    // The highest frame address whose two words lie below the stack's top.
    let top = high.saturating_sub(16);
    // Depth and hash stay in registers through the loop (through `out`, each step would wait on
    // the store of the previous one).
    // At most MAX_DEPTH, which the compiler sees: no bounds check per frame.
    let limit = limit.min(MAX_DEPTH);
    let mut depth = 0;
    let mut hash = StackHash::EMPTY;
    if fp < low || fp > top {
        out.depth = 0;
        out.hash = StackHash::EMPTY;
        out.end = if high == 0 {
            CaptureEnd::NoStackBounds
        } else {
            CaptureEnd::Complete
        };
        return true;
    }
    // Two compares per frame check the next frame pointer: a frame is always further up the stack
    // than the one it called (so the walk ends), and within the stack (so it is readable). Whether
    // the chain ended or broke is only told apart once, at the end.
    let end = loop {
        // SAFETY: (1) `low <= fp <= top`, so both words lie in `[low, high)`: checked before the
        // loop and for each `next` below; (2) that range is the live part of this thread's stack
        // (from our own frame up to the stack's top), which is mapped and readable;
        // (3) unaligned reads: a misaligned pointer in a broken chain is read, not trusted.
        let (next, ret) = unsafe {
            let frame = fp as *const usize;
            (frame.read_unaligned(), frame.add(1).read_unaligned())
        };
        // (No test for a zero return address: chains end at a null or out-of-stack frame pointer,
        // which the compare below catches; a zero in a broken chain is kept as a frame, unknown.)
        if depth >= limit {
            break CaptureEnd::Truncated;
        }
        out.frames[depth] = MaybeUninit::new(ret);
        depth += 1;
        hash = hash.add(ret);
        if next <= fp || next > top {
            break chain_end(next, fp + 1);
        }
        fp = next;
    };
    out.depth = depth;
    out.hash = hash;
    out.end = end;
    true
}

/// How a walk ends at a frame pointer `next` that is not a frame between `floor` and the stack's
/// top: null, or past the top, is the chain's end; below `floor` (not above the frame that holds
/// it) is a broken chain.
#[cold]
fn chain_end(next: usize, floor: usize) -> CaptureEnd {
    if next == 0 || next >= floor {
        CaptureEnd::Complete
    } else {
        CaptureEnd::Broken
    }
}
