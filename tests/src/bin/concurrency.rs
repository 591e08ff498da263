//! Snapshots and stats taken in a loop from one thread while several others allocate: every one
//! finishes, and each site's counters are consistent with each other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

#[inline(never)]
fn churn(seed: u64, stop: &AtomicBool) -> u64 {
    let mut rng = tracealloc_tests::Lcg::new(seed);
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut rounds = 0;
    while !stop.load(Ordering::Relaxed) {
        held.push(vec![0u8; 16 + rng.below(2000) as usize]);
        if held.len() > 100 {
            held.swap_remove(rng.below(100) as usize);
        }
        rounds += 1;
    }
    rounds
}

fn main() {
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|i| {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("churn-{i}"))
                .spawn(move || churn(i, &stop))
                .unwrap()
        })
        .collect();
    for _ in 0..40 {
        let snapshot = tracealloc::snapshot();
        for site in snapshot.sites() {
            assert!(site.live_blocks <= site.total_blocks, "{site:?}");
            assert!(site.live_bytes <= site.total_bytes, "{site:?}");
            assert_eq!(site.live_blocks == 0, site.live_bytes == 0, "{site:?}");
        }
        let stats = tracealloc::stats();
        assert!(stats.live_blocks <= stats.total_blocks);
        assert!(stats.peak_bytes >= stats.live_bytes);
    }
    stop.store(true, Ordering::Relaxed);
    let rounds: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(rounds > 0);
    let by_thread = tracealloc::snapshot().statistics(tracealloc::GroupBy::Thread);
    for i in 0..3 {
        assert!(
            by_thread.iter().any(|s| s.key == format!("churn-{i}")),
            "{by_thread:#?}"
        );
    }
    println!("concurrency ok");
}
