//! A benchmark workload over the plain system allocator (the baseline).
fn main() {
    let (name, scale) = tracealloc_examples::args();
    tracealloc_examples::run_workload(&name, scale);
}
