//! The oracle workload under tracealloc over jemalloc (feature `jemalloc`), figures relative to the start. Argument: `single` or
//! `threads`.

#[global_allocator]
static ALLOC: tracealloc::Profiler<tracealloc::Jemalloc> = tracealloc::Profiler::jemalloc();

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    tracealloc::reset_peak();
    let start = tracealloc::stats();
    let kept = match mode.as_str() {
        "single" => tracealloc_tests::oracle_work(42, 20_000),
        _ => tracealloc_tests::oracle_threads(4, 10_000),
    };
    let end = tracealloc::stats();
    drop(kept);
    tracealloc_tests::print_figures(
        end.total_blocks - start.total_blocks,
        end.total_bytes - start.total_bytes,
        end.live_blocks - start.live_blocks,
        end.live_bytes - start.live_bytes,
        end.peak_blocks - start.live_blocks,
        end.peak_bytes - start.live_bytes,
    );
}
