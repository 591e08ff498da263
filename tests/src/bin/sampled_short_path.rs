//! Sampled mode's short path: an event that sampling leaves out is added to its thread's figures
//! without a flush or a peak check, within an allowance of 64 KiB (the flush threshold); the
//! event that finds the allowance used up takes the full path. With a mean so large that nothing
//! is sampled, so that every event is left out:
//! - totals and live figures stay exact, and another thread's left-out events are in `stats()`
//!   while that thread waits (nothing has to flush them);
//! - the peak is found within 64 KiB below the true one;
//! - a measure counts every event exactly (while it runs, no event takes the short path).

use std::sync::{Arc, Barrier};

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system().sampled(1 << 40);

/// The allowance: at most this many bytes are allocated between two peak checks.
const ALLOWANCE: u64 = 64 * 1024;

#[inline(never)]
fn block(size: usize) -> Box<[u8]> {
    vec![1u8; size].into_boxed_slice()
}

/// 1,000 blocks of 1,000 bytes, all live at once, then freed: the peak is within the allowance
/// below the true one, every other figure exact.
fn peak_within_the_allowance() {
    let mut blocks: Vec<Box<[u8]>> = Vec::with_capacity(1000);
    tracealloc::reset_peak();
    let before = tracealloc::stats();
    for _ in 0..1000 {
        blocks.push(block(1000));
    }
    blocks.clear();
    let after = tracealloc::stats();
    let true_peak = before.live_bytes + 1_000_000;
    assert!(
        after.peak_bytes <= true_peak && after.peak_bytes + ALLOWANCE >= true_peak,
        "peak {} for a true peak of {true_peak}",
        after.peak_bytes
    );
    assert_eq!(
        (after.live_bytes, after.live_blocks),
        (before.live_bytes, before.live_blocks)
    );
    assert_eq!(
        (
            after.total_bytes - before.total_bytes,
            after.total_blocks - before.total_blocks
        ),
        (1_000_000, 1000)
    );
}

/// A thread's left-out blocks are in the figures another thread reads while it waits.
fn other_threads_events_are_read_at_once() {
    let barrier = Arc::new(Barrier::new(2));
    let worker = std::thread::spawn({
        let barrier = Arc::clone(&barrier);
        move || {
            let mut held: [Option<Box<[u8]>>; 10] = Default::default();
            barrier.wait(); // ready: the main thread reads the figures before
            barrier.wait();
            for slot in &mut held {
                *slot = Some(block(100));
            }
            barrier.wait(); // allocated: the main thread reads the figures
            barrier.wait();
            held = Default::default();
            barrier.wait(); // freed: the main thread reads the figures
            barrier.wait();
            drop(held);
        }
    });
    barrier.wait();
    let before = tracealloc::stats();
    barrier.wait();
    barrier.wait();
    let during = tracealloc::stats();
    barrier.wait();
    barrier.wait();
    let after = tracealloc::stats();
    barrier.wait();
    worker.join().unwrap();
    assert_eq!(
        (
            during.live_bytes - before.live_bytes,
            during.live_blocks - before.live_blocks,
            during.total_bytes - before.total_bytes,
            during.total_blocks - before.total_blocks,
        ),
        (1000, 10, 1000, 10),
        "the waiting thread's blocks"
    );
    assert_eq!(
        (after.live_bytes, after.live_blocks),
        (before.live_bytes, before.live_blocks),
        "freed"
    );
}

/// Inside a measure every event is counted, left out by sampling or not.
fn measures_count_every_event() {
    // Warm up the short path: its allowance is in use when the measure starts.
    drop(block(100));
    let measured = tracealloc::measure(|| {
        let blocks: Vec<Box<[u8]>> = (0..50).map(|_| block(64)).collect();
        drop(blocks);
    });
    assert!(measured.sampled);
    assert_eq!(
        (measured.allocations, measured.bytes),
        (51, 50 * 16 + 50 * 64),
        "{measured:?}"
    );
}

fn main() {
    peak_within_the_allowance();
    other_threads_events_are_read_at_once();
    measures_count_every_event();
    println!("sampled short path ok");
}
