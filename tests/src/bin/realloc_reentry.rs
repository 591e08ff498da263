//! A thread whose first event is a realloc that sampling picks, with the DWARF unwinder (run with
//! `TRACEALLOC_CAPTURE=unwind`): the capture makes the thread's unwinder caches, which allocates.
//! Without the reentrancy guard on realloc, that allocation re-enters the profiler, which captures
//! again and makes the caches again, until the stack overflows.

use std::alloc::Layout;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system().sampled(4096);

const OLD: usize = 1;
const NEW: usize = 1 << 20;

/// A pthread of its own, so that nothing of std allocates on it before the realloc.
extern "C" fn first_event_is_a_realloc(block: *mut libc::c_void) -> *mut libc::c_void {
    let layout = Layout::from_size_align(OLD, 1).unwrap();
    // SAFETY: `block` came from the global allocator with `layout`.
    unsafe { std::alloc::realloc(block.cast(), layout, NEW) }.cast()
}

fn main() {
    assert_eq!(
        std::env::var("TRACEALLOC_CAPTURE").as_deref(),
        Ok("unwind"),
        "run with TRACEALLOC_CAPTURE=unwind"
    );
    let layout = Layout::from_size_align(OLD, 1).unwrap();
    // SAFETY: a non-zero size. Sampling at 4 KiB leaves a 1-byte block out almost surely (the
    // snapshot below checks that the realloc, not this, made the site).
    let block = unsafe { std::alloc::alloc(layout) };
    assert!(!block.is_null());
    let before = tracealloc::stats();
    let mut thread: libc::pthread_t = 0;
    let mut grown: *mut libc::c_void = std::ptr::null_mut();
    // SAFETY: a plain pthread running an extern "C" function; joined below.
    unsafe {
        assert_eq!(
            libc::pthread_create(
                &mut thread,
                std::ptr::null(),
                first_event_is_a_realloc,
                block.cast()
            ),
            0
        );
        assert_eq!(libc::pthread_join(thread, &mut grown), 0);
    }
    assert!(!grown.is_null());
    let after = tracealloc::stats();
    // Exact whole-process figures: one realloc, counted once.
    assert_eq!(after.total_blocks - before.total_blocks, 1, "{after:?}");
    assert_eq!(after.total_bytes - before.total_bytes, NEW as u64);
    assert_eq!(after.live_bytes - before.live_bytes, (NEW - OLD) as u64);
    let snapshot = tracealloc::snapshot();
    assert_eq!(snapshot.meta().capture.method, "dwarf-unwind");
    let captured_by_the_realloc = snapshot
        .statistics(tracealloc::GroupBy::Stack)
        .iter()
        .any(|s| s.key.contains("first_event_is_a_realloc"));
    assert!(
        captured_by_the_realloc,
        "the sampled realloc captured its stack on the new thread"
    );
    // SAFETY: `grown` is the live block of NEW bytes.
    unsafe { std::alloc::dealloc(grown.cast(), Layout::from_size_align(NEW, 1).unwrap()) };
    println!("realloc reentry ok");
}
