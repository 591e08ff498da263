//! `measure` in a program whose global allocator is not tracealloc fails with the line to add,
//! never with silent zeros.

fn main() {
    let failure = std::panic::catch_unwind(|| tracealloc::measure(|| drop(vec![0u8; 10])))
        .expect_err("no profiler, no measure");
    let message = failure
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| failure.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        message.contains("static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();"),
        "{message}"
    );
    println!("measure without profiler ok");
}
