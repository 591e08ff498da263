//! The real-crates workloads under dhat-rs, the baseline profiler.
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    tracealloc_real_crates::main_for("dhat-rs");
}
