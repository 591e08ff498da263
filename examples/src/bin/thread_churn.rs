//! Thread churn: `thread_churn [--unique-names] [threads] [checkpoints...]`. Threads are spawned 16
//! at a time; each allocates at one of 10 stacks, and one in 100 leaks a 64-byte block. Unnamed
//! threads by default; with `--unique-names`, each is named `conn-<n>`, as servers name a thread per
//! connection. At each checkpoint (a thread count) it prints the profiler's own memory, the thread
//! states it keeps, and the time of a warm snapshot; at the end it checks that the leaked blocks are
//! exactly where they were made.

use std::hint::black_box;
use std::sync::Mutex;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

static LEAKED: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

#[inline(never)]
fn site(which: usize, n: usize) -> usize {
    // Ten distinct stacks: ten call sites of `work`.
    match which {
        0 => work(n),
        1 => work(n + 1),
        2 => work(n + 2),
        3 => work(n + 3),
        4 => work(n + 4),
        5 => work(n + 5),
        6 => work(n + 6),
        7 => work(n + 7),
        8 => work(n + 8),
        _ => work(n + 9),
    }
}

#[inline(never)]
fn work(n: usize) -> usize {
    black_box(vec![n as u8; 100]).len()
}

#[inline(never)]
fn leak() {
    let block = vec![7u8; 64];
    LEAKED.lock().unwrap().push(block);
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let unique_names = args.next_if(|a| a == "--unique-names").is_some();
    let threads: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let mut checkpoints: Vec<usize> = args.filter_map(|s| s.parse().ok()).collect();
    if checkpoints.is_empty() {
        checkpoints = vec![1_000, 10_000, threads];
    }
    LEAKED.lock().unwrap().reserve(threads / 100 + 1);
    println!("| threads | profiler's own memory | thread states | warm snapshot |");
    println!("|---|---|---|---|");
    let started = std::time::Instant::now();
    let mut spawned = 0;
    while spawned < threads {
        let batch: Vec<_> = (spawned..(spawned + 16).min(threads))
            .map(|i| {
                let builder = if unique_names {
                    std::thread::Builder::new().name(format!("conn-{i}"))
                } else {
                    std::thread::Builder::new()
                };
                builder
                    .spawn(move || {
                        site(i % 10, i);
                        if i % 100 == 0 {
                            leak();
                        }
                    })
                    .unwrap()
            })
            .collect();
        let before = spawned;
        spawned += batch.len();
        for thread in batch {
            thread.join().unwrap();
        }
        if checkpoints.iter().any(|&c| before < c && c <= spawned) {
            let _cold = tracealloc::snapshot();
            let warm = tracealloc::snapshot();
            println!(
                "| {spawned} | {} | {} | {} ms |",
                tracealloc::model::human_bytes(warm.profiler().own_bytes),
                warm.threads().len(),
                warm.profiler().snapshot_ms
            );
        }
    }
    let elapsed = started.elapsed();
    let snapshot = tracealloc::snapshot();
    let leaked: u64 = snapshot
        .statistics(tracealloc::GroupBy::Function)
        .iter()
        .filter(|s| s.key == "thread_churn::leak")
        .map(|s| s.live_blocks)
        .sum();
    let expected = threads.div_ceil(100) as u64;
    assert_eq!(leaked, expected, "every leaked block stays attributed");
    println!(
        "\n{threads} threads in {:.1} s; {leaked} leaked blocks, all attributed to thread_churn::leak",
        elapsed.as_secs_f64()
    );
    let mut loop_snapshots = 0;
    let loop_started = std::time::Instant::now();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for t in 0..16 {
            let stop = &stop;
            scope.spawn(move || {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::scope(|inner| {
                        inner.spawn(|| site((t + i) % 10, i));
                    });
                    i += 1;
                }
            });
        }
        while loop_started.elapsed().as_secs_f64() < 2.0 {
            black_box(tracealloc::snapshot());
            loop_snapshots += 1;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    println!(
        "snapshots in a loop while 16 threads churn: {:.0} per second",
        loop_snapshots as f64 / loop_started.elapsed().as_secs_f64()
    );
}
