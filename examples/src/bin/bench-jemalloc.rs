//! A benchmark workload over jemalloc, no profiler.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let (name, scale) = tracealloc_examples::args();
    tracealloc_examples::run_workload(&name, scale);
}
