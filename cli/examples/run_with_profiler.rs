//! A program with tracealloc as its global allocator, run under `tracealloc run`: one of the two
//! profilers stands down, so its leak (50 blocks at `leak_here`) is counted once.

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

#[inline(never)]
fn leak_here() {
    std::mem::forget(vec![7u8; 512]);
}

fn main() {
    for _ in 0..50 {
        leak_here();
    }
}
