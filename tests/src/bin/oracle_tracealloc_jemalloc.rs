//! The oracle workload under tracealloc over jemalloc (feature `jemalloc`), figures relative to the start. Argument: `single` or
//! `threads`.

#[global_allocator]
static ALLOC: tracealloc::Profiler<tracealloc::Jemalloc> = tracealloc::Profiler::jemalloc();

fn main() {
    tracealloc_tests::oracle_main();
}
