//! A program that leaks steadily, for the periodic snapshots (`TRACEALLOC_INTERVAL`): it leaks a
//! KiB at each of many distinct stacks (so each snapshot takes a while to write) every few
//! milliseconds, for the number of milliseconds given (default 600); with `until N`, until the
//! periodic snapshot number N exists (at most a minute), however slow the machine.

use std::hint::black_box;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

#[inline(never)]
fn leak_at_depth(depth: u32, leaked: &mut Vec<Vec<u8>>) {
    if depth == 0 {
        leaked.push(black_box(vec![0u8; 1024]));
    } else {
        leak_at_depth(depth - 1, leaked);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let until_file = match args.as_slice() {
        [until, n] if until == "until" => std::env::var("TRACEALLOC_OUT")
            .ok()
            .map(|pattern| pattern.replace("{seq}", &format!("{n:0>6}"))),
        _ => None,
    };
    let millis: u64 = match &until_file {
        Some(_) => 60_000,
        None => args.first().and_then(|a| a.parse().ok()).unwrap_or(600),
    };
    let mut leaked = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(millis)
        && !until_file
            .as_ref()
            .is_some_and(|f| std::path::Path::new(f).exists())
    {
        for depth in 0..64 {
            leak_at_depth(depth, &mut leaked);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("periodic ok: {} blocks leaked", leaked.len());
    std::mem::forget(leaked);
}
