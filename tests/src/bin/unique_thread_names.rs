//! 100,000 short-lived threads, each with a name of its own (`conn-<n>`, as servers name a thread
//! per connection), 16 at a time: they reuse a few profiler states, so the profiler's memory stays
//! bounded (at most 32 MiB; about 350 KiB measured), every leaked block stays attributed, and the
//! threads show as one family, `conn-*`, standing for all of them.

use std::sync::Mutex;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

static LEAKED: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

const THREADS: usize = 100_000;

#[inline(never)]
fn leak() {
    let block = vec![3u8; 64];
    LEAKED.lock().unwrap().push(block);
}

#[inline(never)]
fn connection_work(i: usize) -> usize {
    std::hint::black_box(vec![i as u8; 100]).len()
}

fn main() {
    LEAKED.lock().unwrap().reserve(THREADS / 100);
    for batch in 0..THREADS / 16 {
        let handles: Vec<_> = (0..16)
            .map(|j| {
                let i = batch * 16 + j;
                std::thread::Builder::new()
                    .name(format!("conn-{i}"))
                    .spawn(move || {
                        connection_work(i);
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
    let own = snapshot.profiler().own_bytes;
    assert!(
        own <= 32 << 20,
        "the profiler keeps {own} bytes for {THREADS} uniquely named threads"
    );
    let individually_named: Vec<&str> = snapshot
        .threads()
        .iter()
        .filter(|t| t.name.starts_with("conn-") && t.name != "conn-*")
        .map(|t| t.name.as_str())
        .collect();
    assert!(
        individually_named.is_empty(),
        "states held by one thread each read as their family too: {individually_named:?}"
    );
    let conns: Vec<_> = snapshot
        .threads()
        .iter()
        .filter(|t| t.name == "conn-*")
        .collect();
    let stood_for: u64 = conns.iter().map(|t| t.threads).sum();
    assert_eq!(
        stood_for,
        THREADS as u64,
        "every thread is counted once: {:#?}",
        snapshot.threads()
    );
    let by_thread = snapshot.statistics(tracealloc::GroupBy::Thread);
    let family = by_thread
        .iter()
        .find(|s| s.key == "conn-*")
        .unwrap_or_else(|| panic!("no conn-* in {by_thread:#?}"));
    assert_eq!(
        (family.live_blocks, family.live_bytes),
        (THREADS as u64 / 100, THREADS as u64 / 100 * 64),
        "the leaks stay charged to the threads' family"
    );
    let by_function = snapshot.statistics(tracealloc::GroupBy::Function);
    let work = by_function
        .iter()
        .find(|s| s.key == "unique_thread_names::connection_work")
        .unwrap_or_else(|| panic!("no connection_work in {by_function:#?}"));
    assert_eq!(
        (work.total_blocks, work.total_bytes, work.live_blocks),
        (THREADS as u64, THREADS as u64 * 100, 0)
    );
    println!(
        "unique thread names ok: {} states, {own} bytes of the profiler's own",
        snapshot.threads().len()
    );
}
