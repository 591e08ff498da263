//! More distinct stacks than the cap (run with `TRACEALLOC_MAX_STACKS=50`): the profiler keeps at
//! most that many records, charges the rest to the thread's `[other stacks]` site with exact
//! counts, and says how many allocations went there.

use tracealloc::GroupBy;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

/// Each depth is a distinct stack.
#[inline(never)]
fn shape(depth: u32, out: &mut Vec<Vec<u8>>) {
    if depth == 0 {
        out.push(vec![1u8; 32]);
    } else {
        shape(std::hint::black_box(depth - 1), out);
    }
}

fn main() {
    const SHAPES: u32 = 300;
    let mut out = Vec::with_capacity(SHAPES as usize);
    for depth in 0..SHAPES {
        shape(depth, &mut out);
    }
    let snapshot = tracealloc::snapshot();
    let figures = snapshot.profiler();
    assert_eq!(figures.max_stacks, 50);
    assert!(
        figures.stacks_captured <= 50,
        "{} records for a cap of 50",
        figures.stacks_captured
    );
    let by_function = snapshot.statistics(GroupBy::Function);
    let live_of = |key: &str| -> u64 {
        by_function
            .iter()
            .filter(|s| s.key == key)
            .map(|s| s.live_blocks)
            .sum()
    };
    let recorded = live_of("stack_cap::shape");
    let other = live_of(tracealloc::model::OTHER_STACKS_FRAME);
    assert!(recorded > 0 && other > 0, "{by_function:#?}");
    assert_eq!(
        recorded + other,
        u64::from(SHAPES),
        "every block counted once, at its stack or in [other stacks]"
    );
    assert!(figures.other_stacks_allocations >= other);
    std::hint::black_box(out);
    println!("stack cap ok: {recorded} blocks at their stacks, {other} in [other stacks]");
}
