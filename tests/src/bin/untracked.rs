//! Looking at a snapshot never changes the next one: every method of `tracealloc::Snapshot`
//! (cloning and dropping included) runs untracked.

use tracealloc::GroupBy;
use tracealloc::model::FoldOptions;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

fn main() {
    let kept: Vec<Vec<u8>> = (0..100).map(|i| vec![i as u8; 100]).collect();
    let snapshot = tracealloc::snapshot();
    let filters = [tracealloc::Filter::include("untracked::*")];
    let before = tracealloc::stats();
    for _ in 0..3 {
        let copy = snapshot.clone();
        std::hint::black_box(copy.top(5, GroupBy::Line));
        std::hint::black_box(copy.statistics(GroupBy::Stack));
        std::hint::black_box(
            copy.statistics_sorted(GroupBy::Function, tracealloc::Metric::TotalBytes),
        );
        std::hint::black_box(copy.statistics_per_thread(GroupBy::Line));
        std::hint::black_box(copy.folded(&FoldOptions::default()));
        std::hint::black_box(copy.folded_diff(&snapshot, &FoldOptions::default()));
        std::hint::black_box(copy.diff(&snapshot).statistics(GroupBy::Line));
        std::hint::black_box(copy.filter(&filters));
        drop(copy);
    }
    let after = tracealloc::stats();
    assert_eq!(
        (after.total_blocks, after.live_blocks, after.live_bytes),
        (before.total_blocks, before.live_blocks, before.live_bytes),
        "a snapshot's methods allocated through the profiler"
    );
    std::hint::black_box(kept);
    println!("untracked ok");
}
