//! A benchmark workload under tracealloc over jemalloc; prints the event count after the timing,
//! like bench-tracealloc.
#[global_allocator]
static ALLOC: tracealloc::Profiler<tikv_jemallocator::Jemalloc> = tracealloc::Profiler::jemalloc();

fn main() {
    tracealloc_examples::run_counting_events();
}
