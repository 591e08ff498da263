//! A benchmark workload under tracealloc sampling every 512 KiB on average (the production
//! setting); prints the event count after the timing, like bench-tracealloc.
#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system().sampled(512 * 1024);

fn main() {
    tracealloc_examples::run_counting_events();
}
