//! A benchmark workload under tracealloc over jemalloc; prints the snapshot's jemalloc figures'
//! presence after the timing (for the driver, an event count line like bench-tracealloc's).
#[global_allocator]
static ALLOC: tracealloc::Profiler<tikv_jemallocator::Jemalloc> = tracealloc::Profiler::jemalloc();

fn main() {
    let (name, scale) = tracealloc_examples::args();
    let before = tracealloc::stats().total_blocks;
    tracealloc_examples::run_workload(&name, scale);
    println!("{}", tracealloc::stats().total_blocks - before);
}
