//! A leaking site shows its exact growth in a diff, a balanced site shows zero. With `<count> <path>`,
//! leaks `count` blocks of 256 bytes under the task label `cache`, saves a snapshot to `path` (for
//! the diff across two runs) and prints the leaking line's `file:line`.
#![allow(
    clippy::vec_box,
    reason = "one heap block per leaked object is the point"
)]

use tracealloc::GroupBy;
use tracealloc_tests::stat_ending_with;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

const LEAK_LINE: u32 = line!() + 3;
#[inline(never)]
fn leak(cache: &mut Vec<Box<[u8; 256]>>) {
    cache.push(Box::new([0u8; 256]));
}

const BALANCED_LINE: u32 = line!() + 3;
#[inline(never)]
fn balanced() -> usize {
    let scratch = vec![0u8; 512];
    std::hint::black_box(scratch).len()
}

fn main() {
    let mut cache = Vec::with_capacity(1000);
    let args: Vec<String> = std::env::args().collect();
    if let [_, count, path] = args.as_slice() {
        for _ in 0..count.parse::<usize>().unwrap() {
            tracealloc::with_label("cache", || leak(&mut cache));
            balanced();
        }
        tracealloc::snapshot().save(path).unwrap();
        println!("{}:{LEAK_LINE}", file!());
        return;
    }
    for _ in 0..10 {
        leak(&mut cache);
        balanced();
    }
    let before = tracealloc::snapshot();
    for _ in 0..25 {
        leak(&mut cache);
        balanced();
    }
    let after = tracealloc::snapshot();
    let diffs = after.diff(&before).statistics(GroupBy::Line);
    let key = |line: u32| format!("{}:{line}", file!());
    let leaking = diffs
        .iter()
        .find(|d| d.key.ends_with(&key(LEAK_LINE)))
        .expect("leak line");
    assert_eq!(
        (leaking.bytes_diff, leaking.blocks_diff),
        (25 * 256, 25),
        "{leaking}"
    );
    assert_eq!(
        (leaking.live_bytes, leaking.live_blocks),
        (35 * 256, 35),
        "{leaking}"
    );
    assert_eq!(diffs[0].key, leaking.key, "the leak is the top change");
    let even = diffs
        .iter()
        .find(|d| d.key.ends_with(&key(BALANCED_LINE)))
        .expect("balanced line");
    assert_eq!(
        (even.bytes_diff, even.blocks_diff, even.live_bytes),
        (0, 0, 0),
        "{even}"
    );
    assert_eq!(
        (even.total_bytes_diff, even.total_blocks_diff),
        (25 * 512, 25),
        "{even}"
    );
    let lines = after.statistics(GroupBy::Line);
    assert_eq!(
        stat_ending_with(&lines, &key(BALANCED_LINE)).total_blocks,
        35
    );
    println!("leak_diff ok");
}
