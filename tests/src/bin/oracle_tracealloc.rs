//! The oracle workload under tracealloc, figures relative to the start. Argument: `single` or
//! `threads`.

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

fn main() {
    tracealloc_tests::oracle_main();
}
