//! Built in exact mode; `TRACEALLOC_SAMPLE` switches it to sampling (see `sample_env_report`).
#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

fn main() {
    tracealloc_tests::sample_env_report();
}
