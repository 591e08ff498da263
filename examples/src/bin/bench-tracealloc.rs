//! A benchmark workload under tracealloc (exact mode, frame pointers); prints the number of
//! allocation events (allocs + reallocs) after the timing, for ns per event.
#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

fn main() {
    let (name, scale) = tracealloc_examples::args();
    let before = tracealloc::stats().total_blocks;
    tracealloc_examples::run_workload(&name, scale);
    println!("{}", tracealloc::stats().total_blocks - before);
}
