//! What scraping costs the service: 16 threads allocate and free (small blocks at a few hundred
//! sites) for a fixed time, once undisturbed and once while another thread builds the heap profile
//! (`pprof_heap`) 100 times in a row; allocations per second in each, and the slowest scrape. Run:
//! `cargo run --release -p tracealloc-pprof-service --bin scrape_cost`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

const THREADS: usize = 16;

#[inline(never)]
fn work(site: u64, kept: &mut Vec<Vec<u8>>) {
    if site == 0 {
        kept.push(black_box(vec![0u8; 64]));
    } else {
        work(site - 1, kept);
    }
}

/// Allocations per second by `THREADS` threads over `run`, while `scrape` runs on another thread
/// (it gets the stop flag); returns the rate and the scraper's result.
fn allocations_per_second<T: Send + 'static>(
    run: Duration,
    scrape: impl FnOnce(&AtomicBool) -> T + Send + 'static,
) -> (f64, T) {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..THREADS as u64)
        .map(|t| {
            let (stop, count) = (Arc::clone(&stop), Arc::clone(&count));
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    work((n + t) % 32, &mut kept);
                    if kept.len() > 256 {
                        kept.clear();
                    }
                    n += 1;
                }
                count.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    let scraper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || scrape(&stop))
    };
    let started = Instant::now();
    std::thread::sleep(run);
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for worker in workers {
        worker.join().unwrap();
    }
    let scraped = scraper.join().unwrap();
    (count.load(Ordering::Relaxed) as f64 / elapsed, scraped)
}

fn main() {
    let run = Duration::from_secs(10);
    let (quiet, ()) = allocations_per_second(run, |_| ());
    let (scraped, (scrapes, slowest)) = allocations_per_second(run, |stop| {
        let mut slowest = Duration::ZERO;
        let mut scrapes = 0;
        while scrapes < 100 && !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            black_box(tracealloc::pprof_heap());
            slowest = slowest.max(started.elapsed());
            scrapes += 1;
        }
        (scrapes, slowest)
    });
    println!("| {THREADS} threads allocating | allocations per second |");
    println!("|---|---|");
    println!("| undisturbed | {quiet:.0} |");
    println!("| while scraping ({scrapes} scrapes, slowest {slowest:.1?}) | {scraped:.0} |");
    println!("| change | {:+.1}% |", (scraped / quiet - 1.0) * 100.0);
}
