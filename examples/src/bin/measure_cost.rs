//! What `tracealloc::measure` adds per allocation: the same loop of allocations and frees
//! (64-byte boxes) outside any measure and inside one, medians of several runs, in ns per
//! allocation; and what setting and restoring a task label costs (as `labeled` does per poll). Run: `cargo run --release -p tracealloc-examples --bin measure_cost`.

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

#[inline(never)]
fn at_depth_of_measure(f: fn()) {
    one_more_frame(f);
    black_box(());
}

#[inline(never)]
fn one_more_frame(f: fn()) {
    f();
    black_box(());
}

/// Medians of 11 timings of each run, taken alternately (the machine's speed drifts).
fn ns_per_allocation(runs: [&dyn Fn(); 2]) -> [f64; 2] {
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..11 {
        for (run, times) in runs.iter().zip(&mut times) {
            let started = Instant::now();
            run();
            times.push(started.elapsed().as_nanos() as f64 / ALLOCATIONS as f64);
        }
    }
    times.map(|mut t| {
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    })
}

fn main() {
    // For profilers: one mode alone.
    match std::env::args().nth(1).as_deref() {
        Some("measured-only") => return drop(tracealloc::measure(churn)),
        Some("plain-only") => return churn(),
        _ => {}
    }
    churn(); // warm: the site's record exists
    let measured = || {
        let m = tracealloc::measure(churn);
        assert_eq!(m.allocations, ALLOCATIONS);
    };
    // The same stack depth for both (`measure` and its closure are two frames more to walk).
    let plain = || at_depth_of_measure(churn);
    let [plain, measured] = ns_per_allocation([&plain, &measured]);
    println!("| allocation and free | ns |");
    println!("|---|---|");
    println!("| outside a measure | {plain:.1} |");
    println!("| inside a measure | {measured:.1} |");
    println!("| added by the measure | {:.1} |", measured - plain);

    // A label set and restored around each step, as `labeled` does around each poll.
    const STEPS: u32 = 10_000_000;
    let mut times: Vec<f64> = (0..7)
        .map(|_| {
            let started = Instant::now();
            for i in 0..STEPS {
                black_box(tracealloc::with_label("step", || black_box(i)));
            }
            started.elapsed().as_nanos() as f64 / f64::from(STEPS)
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!("| setting and restoring a task label | {:.1} |", times[3]);
}
