//! Many short-lived threads: what the profiler keeps per thread. `thread_churn [threads]`.

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000);
    let started = std::time::Instant::now();
    for i in 0..threads {
        std::thread::spawn(move || std::hint::black_box(vec![i as u8; 100]).len())
            .join()
            .unwrap();
    }
    let elapsed = started.elapsed();
    let snapshot = tracealloc::snapshot();
    println!(
        "{threads} threads in {:.0} ms; profiler's own memory {} ({} per thread), process RSS {}; snapshot took {} ms",
        elapsed.as_secs_f64() * 1e3,
        tracealloc::model::human_bytes(snapshot.profiler.own_bytes),
        tracealloc::model::human_bytes(snapshot.profiler.own_bytes / threads as u64),
        tracealloc::model::human_bytes(snapshot.meta.rss_bytes),
        snapshot.profiler.snapshot_ms
    );
}
