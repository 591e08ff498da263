//! A benchmark workload under dhat-rs, the baseline profiler.
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    let (name, scale) = tracealloc_examples::args();
    let _profiler = dhat::Profiler::builder().testing().build();
    tracealloc_examples::run_workload(&name, scale);
}
