//! Built sampling every 64 KiB; `TRACEALLOC_SAMPLE=0` switches it to exact mode.
#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system().sampled(64 * 1024);

fn main() {
    tracealloc_tests::sample_env_report();
}
