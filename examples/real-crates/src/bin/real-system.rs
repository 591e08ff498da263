//! The real-crates workloads over the system allocator (the baseline).
fn main() {
    tracealloc_real_crates::main_for("system");
}
