//! What `tracealloc::measure` adds per allocation: the same loop of allocations and frees
//! (64-byte boxes) outside any measure and inside one, medians of several runs, in ns per
//! allocation. Run: `cargo run --release -p tracealloc-examples --bin measure_cost`.

use std::hint::black_box;
use std::time::Instant;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

const ALLOCATIONS: u64 = 2_000_000;

#[inline(never)]
fn churn() {
    for i in 0..ALLOCATIONS {
        drop(black_box(Box::new([i; 8])));
    }
}

fn ns_per_allocation(run: impl Fn()) -> f64 {
    let mut times: Vec<f64> = (0..7)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed().as_nanos() as f64 / ALLOCATIONS as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    // For profilers: one mode alone.
    match std::env::args().nth(1).as_deref() {
        Some("measured-only") => return drop(tracealloc::measure(churn)),
        Some("plain-only") => return churn(),
        _ => {}
    }
    churn(); // warm: the site's record exists
    let plain = ns_per_allocation(churn);
    let measured = ns_per_allocation(|| {
        let m = tracealloc::measure(churn);
        assert_eq!(m.allocations, ALLOCATIONS);
    });
    println!("| allocation and free | ns |");
    println!("|---|---|");
    println!("| outside a measure | {plain:.1} |");
    println!("| inside a measure | {measured:.1} |");
    println!("| added by the measure | {:.1} |", measured - plain);
}
