//! A benchmark workload under tracealloc sampling every 512 KiB on average (the production
//! setting); prints the event count after the timing, like bench-tracealloc.
#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system().sampled(512 * 1024);

fn main() {
    let (name, scale) = tracealloc_examples::args();
    let before = tracealloc::stats().total_blocks;
    tracealloc_examples::run_workload(&name, scale);
    println!("{}", tracealloc::stats().total_blocks - before);
}
