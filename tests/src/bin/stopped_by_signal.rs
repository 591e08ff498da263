//! A program stopped by a signal still writes its exit snapshot: it leaks 10 blocks of 1000 bytes
//! at one line, says `ready`, and waits. Stopped by SIGTERM or SIGINT (the test sends them), it
//! ends by that signal, after the profiler wrote the snapshot (`TRACEALLOC_OUT`). With the
//! argument `own-handler`, it catches SIGTERM itself, as services do for a graceful stop: the
//! profiler leaves that handler alone, and the program leaks one more block and exits with code 3.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

static LEAKED: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

#[inline(never)]
fn leak() {
    let block = vec![7u8; 1000]; // STOPPED LEAK LINE
    LEAKED.lock().unwrap().push(block);
}

fn main() {
    let own_handler = std::env::args().nth(1).as_deref() == Some("own-handler");
    LEAKED.lock().unwrap().reserve(16);
    let stop = Arc::new(AtomicBool::new(false));
    if own_handler {
        signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone()).unwrap();
    }
    for _ in 0..10 {
        leak();
    }
    println!("ready");
    std::io::stdout().flush().unwrap();
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(60) {
        if stop.load(Ordering::Relaxed) {
            leak();
            std::process::exit(3);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("no signal came within a minute");
}
