//! A benchmark workload under tracealloc (exact mode, frame pointers); prints the number of
//! allocation events (allocs + reallocs) after the timing, for ns per event.
#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

fn main() {
    tracealloc_examples::run_counting_events();
}
