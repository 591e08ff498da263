//! Threads that come and go reuse the states of exited threads: the profiler keeps a few states,
//! not one per thread that ever lived, and every block stays attributed to its stack, leaked ones
//! included.

use std::sync::Mutex;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

static LEAKED: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

#[inline(never)]
fn leak() {
    let block = vec![9u8; 64];
    LEAKED.lock().unwrap().push(block);
}

#[inline(never)]
fn churn_work(i: usize) -> usize {
    std::hint::black_box(vec![i as u8; 100]).len()
}

fn main() {
    const THREADS: usize = 2_000;
    LEAKED.lock().unwrap().reserve(THREADS);
    for batch in 0..THREADS / 16 {
        let handles: Vec<_> = (0..16)
            .map(|j| {
                let i = batch * 16 + j;
                std::thread::Builder::new()
                    .name("churner".into())
                    .spawn(move || {
                        churn_work(i);
                        if i % 100 == 0 {
                            leak();
                        }
                    })
                    .unwrap()
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    }
    let snapshot = tracealloc::snapshot();
    let states = snapshot.threads().len();
    assert!(
        states <= 64,
        "{states} thread states kept for {THREADS} threads (16 at a time)"
    );
    let by_function = snapshot.statistics(tracealloc::GroupBy::Function);
    let get = |name: &str| {
        by_function
            .iter()
            .find(|s| s.key == name)
            .unwrap_or_else(|| panic!("no {name} in {by_function:#?}"))
    };
    let leaked = get("churn::leak");
    assert_eq!(
        (leaked.live_blocks, leaked.live_bytes),
        (20, 20 * 64),
        "the leaked blocks stay attributed after their threads exited"
    );
    let work = get("churn::churn_work");
    assert_eq!(
        (work.total_blocks, work.total_bytes, work.live_blocks),
        (THREADS as u64, THREADS as u64 * 100, 0)
    );
    let by_thread = snapshot.statistics(tracealloc::GroupBy::Thread);
    let churners: u64 = by_thread
        .iter()
        .filter(|s| s.key == "churner")
        .map(|s| s.live_blocks)
        .sum();
    assert_eq!(
        churners, 20,
        "the leaks are charged to the threads' name: {by_thread:#?}"
    );
    println!("churn ok: {states} states for {THREADS} threads");
}
