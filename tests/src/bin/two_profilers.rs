//! Two `Profiler` values with different settings: the global allocator's (exact) decides the
//! configuration at the first allocation; a second value asking for sampling is refused, said once
//! on stderr, and every block, whichever value made or frees it, keeps the decided layout.

use std::alloc::{GlobalAlloc, Layout};

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

/// Layouts of every scheme: headers of 8 and 16 bytes, a trailer (alignment above 16), a large
/// alignment.
const LAYOUTS: [(usize, usize); 5] = [(24, 8), (100, 1), (33, 32), (4096, 4096), (1 << 20, 16)];

/// On a thread of its own, a C library thread whose first allocation goes through `second` (a
/// Rust thread's start may allocate through the global allocator first): see [`churn`].
fn churn_through(second: &'static tracealloc::Profiler) -> (u64, u64, i64, i64) {
    extern "C" fn start(argument: *mut libc::c_void) -> *mut libc::c_void {
        // SAFETY: the argument is the `&'static Profiler` passed below.
        let second = unsafe { &*argument.cast_const().cast::<tracealloc::Profiler>() };
        let figures = churn(second);
        Box::into_raw(Box::new(figures)).cast()
    }
    let mut thread: libc::pthread_t = 0;
    let mut result = std::ptr::null_mut();
    // SAFETY: (1) `start` never unwinds across the C boundary (a panic in an `extern "C"`
    // function aborts the process, which fails the test); (2) the argument lives for the whole process; (3) the
    // thread is joined once and its result is the box made in `start`.
    unsafe {
        let argument = (second as *const tracealloc::Profiler).cast_mut().cast();
        assert_eq!(
            libc::pthread_create(&mut thread, std::ptr::null(), start, argument),
            0
        );
        assert_eq!(libc::pthread_join(thread, &mut result), 0);
        *Box::from_raw(result.cast::<(u64, u64, i64, i64)>())
    }
}

/// Makes a block of each layout with `second`, grows and shrinks them through the global
/// allocator, frees half through each; returns the change in (total blocks, total bytes, live
/// blocks, live bytes).
fn churn(second: &'static tracealloc::Profiler) -> (u64, u64, i64, i64) {
    let before = tracealloc::stats();
    let mut blocks = [(std::ptr::null_mut::<u8>(), Layout::new::<u8>()); LAYOUTS.len()];
    for (slot, &(size, align)) in blocks.iter_mut().zip(&LAYOUTS) {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: a valid layout of non-zero size.
        let block = unsafe { second.alloc(layout) };
        assert!(!block.is_null());
        // SAFETY: the block has `size` writable bytes.
        unsafe { block.write_bytes(0xa5, size) };
        *slot = (block, layout);
    }
    for (i, (block, layout)) in blocks.iter_mut().enumerate() {
        let new_size = if i % 2 == 0 {
            layout.size() * 3
        } else {
            layout.size() / 2
        };
        // SAFETY: the block was made with `layout`, by a profiler of the same process; the new
        // size is non-zero and keeps the layout valid.
        let grown = unsafe { std::alloc::realloc(*block, *layout, new_size) };
        assert!(!grown.is_null());
        // SAFETY: the first byte is within both sizes and was written above.
        assert_eq!(unsafe { grown.read() }, 0xa5, "realloc kept the contents");
        *block = grown;
        *layout = Layout::from_size_align(new_size, layout.align()).unwrap();
    }
    for (i, &(block, layout)) in blocks.iter().enumerate() {
        // SAFETY: live blocks with their current layouts.
        unsafe {
            if i % 2 == 0 {
                std::alloc::dealloc(block, layout);
            } else {
                second.dealloc(block, layout);
            }
        }
    }
    let after = tracealloc::stats();
    (
        after.total_blocks - before.total_blocks,
        after.total_bytes - before.total_bytes,
        after.live_blocks as i64 - before.live_blocks as i64,
        after.live_bytes as i64 - before.live_bytes as i64,
    )
}

static SAMPLED: tracealloc::Profiler = tracealloc::Profiler::system().sampled(4096);
static WITH_LIFETIMES: tracealloc::Profiler = tracealloc::Profiler::system().lifetimes();

fn main() {
    let allocated: u64 = LAYOUTS.iter().map(|&(size, _)| size as u64).sum();
    let resized: u64 = LAYOUTS
        .iter()
        .enumerate()
        .map(|(i, &(size, _))| {
            if i % 2 == 0 {
                size as u64 * 3
            } else {
                size as u64 / 2
            }
        })
        .sum();
    let expected = (2 * LAYOUTS.len() as u64, allocated + resized, 0, 0);
    assert_eq!(churn_through(&SAMPLED), expected, "exact totals");
    assert_eq!(churn_through(&WITH_LIFETIMES), expected, "exact totals");
    let snapshot = tracealloc::snapshot();
    assert_eq!(
        snapshot.meta().capture.sampling_bytes,
        0,
        "still exact mode"
    );
    assert!(
        !snapshot.meta().capture.lifetimes,
        "still without lifetimes"
    );
    println!("two profilers ok");
}
