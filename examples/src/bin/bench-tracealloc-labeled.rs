//! A benchmark workload under tracealloc with every allocation under a task label (as an async
//! service would run with `tracealloc::labeled`).
#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

fn main() {
    tracealloc::with_label("bench", tracealloc_examples::run_counting_events);
}
