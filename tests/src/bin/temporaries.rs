//! Temporaries and realloc growth, exactly: a scratch buffer freed before the next allocation is a
//! temporary; kept blocks are not; a Vec grown by push reallocs once per doubling, and its block
//! stays the same allocation (not a new one) while it grows.

use std::hint::black_box;

use tracealloc::GroupBy;
use tracealloc_tests::stat_ending_with;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

#[inline(never)]
fn scratch(rounds: usize) -> String {
    let mut line = 0;
    for _ in 0..rounds {
        let buffer;
        (buffer, line) = (vec![0u8; 100], line!());
        black_box(&buffer);
        drop(buffer);
    }
    format!("{}:{line}", file!())
}

// Boxes, to have one allocation per element at one line.
#[allow(clippy::vec_box)]
#[inline(never)]
fn kept(blocks: usize) -> (Vec<Box<[u8; 64]>>, String) {
    let mut kept = Vec::with_capacity(blocks);
    let mut line = 0;
    for _ in 0..blocks {
        ((), line) = (kept.push(Box::new([1u8; 64])), line!());
    }
    (kept, format!("{}:{line}", file!()))
}

#[inline(never)]
fn grown(items: u64) -> (Vec<u64>, String) {
    let mut grow = Vec::new();
    let mut line = 0;
    for i in 0..items {
        ((), line) = (grow.push(i), line!());
    }
    (grow, format!("{}:{line}", file!()))
}

fn main() {
    let scratch_line = scratch(1000);
    let (grow, grow_line) = grown(1000);
    let (kept, kept_line) = kept(500);
    // The grown Vec is not the latest allocation any more (the kept boxes came after): not a
    // temporary when it goes.
    drop(grow);
    let snapshot = tracealloc::snapshot();
    let lines = snapshot.statistics(GroupBy::Line);

    let s = stat_ending_with(&lines, &scratch_line);
    assert_eq!(
        (s.total_blocks, s.temporary_blocks, s.reallocs),
        (1000, 1000, 0),
        "{s:?}"
    );
    let k = stat_ending_with(&lines, &kept_line);
    assert_eq!((k.total_blocks, k.temporary_blocks), (500, 0), "{k:?}");
    let g = stat_ending_with(&lines, &grow_line);
    // Capacity 4 (u64), then doubled to 1024: eight reallocs, one first allocation.
    assert_eq!(
        (g.total_blocks, g.reallocs, g.temporary_blocks),
        (9, 8, 0),
        "{g:?}"
    );
    // Each realloc copies the old contents when the block moves: a sum of some of the old sizes
    // 32, 64, ..., 4096 bytes (which ones moved is the allocator's choice).
    assert!(
        g.realloc_copied_bytes <= 8160 && g.realloc_copied_bytes.is_multiple_of(32),
        "{g:?}"
    );
    println!("temporaries ok: copied {} bytes", g.realloc_copied_bytes);
    black_box(kept);
}
