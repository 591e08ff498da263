//! Sampled mode's block layout: blocks aligned to at most 8 carry a record only when they need one
//! (sampled, the profiler's own, or made without a thread state), and the address says which.
//! Checked through a counting inner allocator, against figures recomputed by hand:
//! - what the inner allocator is asked for: exactly the program's size (16 at least) for a block
//!   left out, 8 bytes more for a tagged one, and a header or trailer as in exact mode above 8;
//! - random allocs, zeroed allocs, reallocs both ways and frees, on two threads with cross-thread
//!   frees: contents kept, alignment kept, whole-process figures exact;
//! - a block left out that sampling picks when it grows moves to a tagged block and is charged;
//! - the profiler's own blocks freed by the program, and the program's blocks freed inside the
//!   profiler, leave the figures exact.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use tracealloc::GroupBy;

/// System, remembering the size and alignment of the last block it was asked for.
struct Counting;

static LAST_SIZE: AtomicUsize = AtomicUsize::new(0);
static LAST_ALIGN: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to System unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LAST_SIZE.store(layout.size(), Ordering::Relaxed);
        LAST_ALIGN.store(layout.align(), Ordering::Relaxed);
        // SAFETY: the caller's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LAST_SIZE.store(layout.size(), Ordering::Relaxed);
        LAST_ALIGN.store(layout.align(), Ordering::Relaxed);
        // SAFETY: the caller's contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LAST_SIZE.store(new_size, Ordering::Relaxed);
        LAST_ALIGN.store(layout.align(), Ordering::Relaxed);
        // SAFETY: the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

const MEAN: u64 = 4096;

#[global_allocator]
static ALLOC: tracealloc::Profiler<Counting> = tracealloc::Profiler::new(Counting).sampled(MEAN);

/// A deterministic generator (the same sequence every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn tagged(ptr: *mut u8) -> bool {
    ptr as usize & 8 != 0
}

/// Blocks of alignment up to 8: what the inner allocator was asked for, for each of many sizes.
/// Returns how many were tagged (sampled).
fn inner_requests() -> usize {
    let mut sampled = 0;
    for size in (0..2000).chain([4096, 100_000]) {
        for align in [1, 2, 4, 8] {
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: a valid layout (zero-size too: the profiler asks for 16 bytes at least);
            // freed below with the same layout.
            let ptr = unsafe { ALLOC.alloc(layout) };
            assert!(!ptr.is_null());
            let (asked, asked_align) = (
                LAST_SIZE.load(Ordering::Relaxed),
                LAST_ALIGN.load(Ordering::Relaxed),
            );
            let expected = if tagged(ptr) { size + 8 } else { size }.max(16);
            assert_eq!(
                (asked, asked_align),
                (expected, 16),
                "{size} bytes aligned to {align}, tagged {}",
                tagged(ptr)
            );
            sampled += usize::from(tagged(ptr));
            // SAFETY: allocated above with `layout`.
            unsafe { ALLOC.dealloc(ptr, layout) };
        }
    }
    // Above 8, a header as in exact mode (pad = the alignment) or a trailer (at most 15 bytes).
    for (size, align, expected) in [(24, 16, 40), (100, 64, 112), (4096, 4096, 4104)] {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: a valid layout, freed below.
        let ptr = unsafe { ALLOC.alloc(layout) };
        assert!(!ptr.is_null() && (ptr as usize).is_multiple_of(align));
        assert_eq!(
            LAST_SIZE.load(Ordering::Relaxed),
            expected,
            "{size}/{align}"
        );
        // SAFETY: allocated above with `layout`.
        unsafe { ALLOC.dealloc(ptr, layout) };
    }
    sampled
}

struct Block {
    ptr: *mut u8,
    layout: Layout,
    fill: u8,
}

// SAFETY: a block is owned by one thread at a time (handed over whole).
unsafe impl Send for Block {}

/// The figures the operations below must change: (live bytes, live blocks, total bytes, total
/// blocks), with reallocs counted as dhat-rs counts them (a new block of the new size).
#[derive(Default, Clone, Copy, PartialEq, Debug)]
struct Expected(i64, i64, u64, u64);

fn check(block: &Block, len: usize) {
    // SAFETY: the block is live and at least `len` bytes long.
    let bytes = unsafe { std::slice::from_raw_parts(block.ptr, len) };
    assert!(bytes.iter().all(|&b| b == block.fill), "contents changed");
}

/// Random operations on `blocks` (some handed over from another thread); returns what they change.
fn random_ops(seed: u64, blocks: &mut Vec<Block>, ops: usize) -> Expected {
    let mut rng = Lcg(seed);
    let mut expected = Expected::default();
    for _ in 0..ops {
        let size = match rng.below(10) {
            0 => 5000 + rng.below(300_000) as usize,
            1..=3 => 64 + rng.below(5000) as usize,
            _ => rng.below(64) as usize,
        };
        match rng.below(7) {
            0..=2 => {
                let align = [1, 2, 4, 8, 8, 8, 16, 64, 4096][rng.below(9) as usize];
                let layout = Layout::from_size_align(size, align).unwrap();
                let zeroed = rng.below(2) == 0;
                // SAFETY: a valid layout; freed or resized below with it.
                let ptr = unsafe {
                    if zeroed {
                        ALLOC.alloc_zeroed(layout)
                    } else {
                        ALLOC.alloc(layout)
                    }
                };
                assert!(!ptr.is_null() && (ptr as usize).is_multiple_of(align));
                if zeroed {
                    // SAFETY: live, `size` bytes long.
                    let bytes = unsafe { std::slice::from_raw_parts(ptr, size) };
                    assert!(bytes.iter().all(|&b| b == 0), "zeroed block");
                }
                let fill = rng.below(255) as u8 + 1;
                // SAFETY: live, `size` bytes long.
                unsafe { ptr.write_bytes(fill, size) };
                blocks.push(Block { ptr, layout, fill });
                expected.0 += size as i64;
                expected.1 += 1;
                expected.2 += size as u64;
                expected.3 += 1;
            }
            3..=4 if !blocks.is_empty() => {
                let i = rng.below(blocks.len() as u64) as usize;
                let block = &mut blocks[i];
                let old = block.layout.size();
                check(block, old);
                // SAFETY: the block is live with this layout; the new size keeps it valid.
                let ptr = unsafe { ALLOC.realloc(block.ptr, block.layout, size) };
                assert!(!ptr.is_null() && (ptr as usize).is_multiple_of(block.layout.align()));
                block.ptr = ptr;
                block.layout = Layout::from_size_align(size, block.layout.align()).unwrap();
                check(block, old.min(size));
                // SAFETY: live, `size` bytes long.
                unsafe { ptr.write_bytes(block.fill, size) };
                expected.0 += size as i64 - old as i64;
                expected.2 += size as u64;
                expected.3 += 1;
            }
            5..=6 if !blocks.is_empty() => {
                let i = rng.below(blocks.len() as u64) as usize;
                let block = blocks.swap_remove(i);
                check(&block, block.layout.size());
                // SAFETY: live, allocated with this layout.
                unsafe { ALLOC.dealloc(block.ptr, block.layout) };
                expected.0 -= block.layout.size() as i64;
                expected.1 -= 1;
            }
            _ => {}
        }
    }
    expected
}

fn delta(before: &tracealloc::HeapStats, after: &tracealloc::HeapStats) -> Expected {
    Expected(
        after.live_bytes as i64 - before.live_bytes as i64,
        after.live_blocks as i64 - before.live_blocks as i64,
        after.total_bytes - before.total_bytes,
        after.total_blocks - before.total_blocks,
    )
}

/// Each thread's blocks, handed to the other thread to free (room reserved up front, so handing
/// over allocates nothing), and what each thread's operations changed.
static HANDOVER: [Mutex<Vec<Block>>; 2] = [const { Mutex::new(Vec::new()) }; 2];
static CHANGED: Mutex<[Expected; 2]> = Mutex::new([Expected(0, 0, 0, 0); 2]);
const OPS: usize = 4000;

/// Thread `me` of two: random operations, then frees the other thread's blocks. Between the
/// barriers' waits, nothing but the operations allocates or frees.
fn exchange(me: usize, barrier: &Barrier) {
    let mut blocks: Vec<Block> = Vec::with_capacity(OPS);
    HANDOVER[me].lock().unwrap().reserve(OPS);
    barrier.wait(); // ready
    barrier.wait(); // the main thread read the figures before
    let changed = random_ops(3 + me as u64 * 4, &mut blocks, OPS);
    HANDOVER[me].lock().unwrap().extend(blocks.drain(..));
    CHANGED.lock().unwrap()[me] = changed;
    barrier.wait(); // both handed over
    for block in HANDOVER[1 - me].lock().unwrap().drain(..) {
        check(&block, block.layout.size());
        // SAFETY: live, allocated with this layout (on the other thread).
        unsafe { ALLOC.dealloc(block.ptr, block.layout) };
    }
    barrier.wait(); // both freed
    barrier.wait(); // the main thread read the figures after
}

/// A buffer grown by push from empty to 1 MiB: sampling picks it on the way (at 4 KiB, a 1 MiB
/// block is sampled with probability 1 - e^-256), so it moves to a tagged block and its site holds
/// it exactly (a block far above the mean stands for itself).
#[inline(never)]
fn grown_buffer() -> Vec<u8> {
    let mut buffer = Vec::new();
    for i in 0..(1 << 20) {
        buffer.push(i as u8);
    }
    buffer
}

fn main() {
    let sampled = inner_requests();
    assert!(sampled > 0 && sampled < 8008, "{sampled} of 8,008 tagged");

    // Random operations on two threads, then each frees the other's blocks: every figure exact.
    let barrier = Arc::new(Barrier::new(2));
    let worker = std::thread::spawn({
        let barrier = Arc::clone(&barrier);
        move || exchange(1, &barrier)
    });
    let mut blocks: Vec<Block> = Vec::with_capacity(OPS);
    HANDOVER[0].lock().unwrap().reserve(OPS);
    barrier.wait(); // ready
    let start = tracealloc::stats();
    barrier.wait();
    let changed = random_ops(3, &mut blocks, OPS);
    HANDOVER[0].lock().unwrap().extend(blocks.drain(..));
    CHANGED.lock().unwrap()[0] = changed;
    barrier.wait(); // both handed over
    for block in HANDOVER[1].lock().unwrap().drain(..) {
        check(&block, block.layout.size());
        // SAFETY: live, allocated with this layout (on the worker).
        unsafe { ALLOC.dealloc(block.ptr, block.layout) };
    }
    barrier.wait(); // both freed
    let end = tracealloc::stats();
    barrier.wait();
    worker.join().unwrap();
    let [mine, theirs] = *CHANGED.lock().unwrap();
    assert!(mine.1 > 100 && theirs.1 > 100, "{mine:?} {theirs:?}");
    assert_eq!(
        delta(&start, &end),
        Expected(0, 0, mine.2 + theirs.2, mine.3 + theirs.3),
        "live figures back to where they were, totals of both threads' operations"
    );

    // A block grown from untagged to tagged by a sampled realloc.
    let before = tracealloc::stats();
    let buffer = grown_buffer();
    assert!(
        tagged(buffer.as_ptr().cast_mut()),
        "the grown buffer is sampled"
    );
    let grew = delta(&before, &tracealloc::stats());
    assert_eq!((grew.0, grew.1), (buffer.capacity() as i64, 1));
    let snapshot = tracealloc::snapshot();
    let site: u64 = snapshot
        .statistics(GroupBy::Function)
        .iter()
        .filter(|s| s.key.starts_with("sampled_blocks::grown_buffer"))
        .map(|s| s.live_bytes)
        .sum();
    assert_eq!(site, buffer.capacity() as u64, "its site holds it exactly");

    // Blocks made inside the profiler and freed by the program, and the program's freed inside.
    let before = tracealloc::stats();
    // Live figures below zero would read as zero: the buffer is live, so they are not.
    assert!(before.live_bytes >= buffer.capacity() as u64, "{before:?}");
    let top = snapshot.top(10, GroupBy::Line);
    assert!(!top.is_empty());
    drop(top);
    let folded = snapshot.folded(&Default::default());
    drop(folded);
    let model = snapshot.clone().into_inner();
    let rewrapped = tracealloc::Snapshot::from(model);
    drop(rewrapped);
    drop(snapshot);
    let after = tracealloc::stats();
    assert_eq!(
        (after.live_bytes, after.live_blocks),
        (before.live_bytes, before.live_blocks),
        "the profiler's blocks freed by the program, and the program's freed inside it"
    );
    drop(buffer);
    println!("sampled blocks ok: {sampled} of 8008 tagged");
}
