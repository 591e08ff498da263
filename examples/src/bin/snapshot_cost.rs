//! What a snapshot costs: 10,000 distinct allocating call sites (generated code), one block each,
//! then the first snapshot (symbolization cold) and a second one (warm), timed.
//!
//! `cargo run --release -p tracealloc-examples --bin snapshot_cost`

use std::time::Instant;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

#[inline(never)]
fn leaf(n: usize) -> Box<[u8]> {
    vec![0u8; 16 + n % 64].into_boxed_slice()
}

mod sites {
    use super::leaf;
    include!(concat!(env!("OUT_DIR"), "/sites.rs"));
}

fn main() {
    let mut blocks = Vec::with_capacity(10_000);
    for site in sites::SITES {
        for which in 0..10 {
            site(which, &mut blocks);
        }
    }
    let started = Instant::now();
    let cold = tracealloc::snapshot();
    let cold_time = started.elapsed();
    let started = Instant::now();
    let warm = tracealloc::snapshot();
    let warm_time = started.elapsed();
    let addresses = cold
        .as_model()
        .stacks
        .iter()
        .flat_map(|s| s.frames.iter())
        .collect::<std::collections::HashSet<_>>()
        .len();
    println!(
        "{} sites, {} stacks, {} distinct frames (with inlined ones): first snapshot {:.0} ms (symbolization cold), second {:.0} ms",
        cold.sites().len(),
        cold.as_model().stacks.len(),
        addresses,
        cold_time.as_secs_f64() * 1e3,
        warm_time.as_secs_f64() * 1e3
    );
    let by_stack = warm.statistics(tracealloc::GroupBy::Stack);
    assert!(
        by_stack.len() >= 10_000,
        "every call site is a stack of its own"
    );
    std::hint::black_box(blocks);
}
