//! With `TRACEALLOC_OUT` set, a snapshot is written at exit: by returning from `main`, or (with the
//! argument `exit`) by `std::process::exit`.

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

#[inline(never)]
fn leak_at_exit() {
    std::mem::forget(vec![9u8; 12_345]);
}

fn main() {
    leak_at_exit();
    if std::env::args().nth(1).as_deref() == Some("exit") {
        std::process::exit(0);
    }
}
