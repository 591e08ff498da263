//! The real-crates workloads under tracealloc: only the one `#[global_allocator]` line.
#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

fn main() {
    tracealloc_real_crates::main_for("tracealloc");
}
