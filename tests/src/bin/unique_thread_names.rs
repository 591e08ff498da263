//! 100,000 short-lived threads, each with a name of its own, 16 at a time: they reuse a few
//! profiler states, so the profiler's memory stays bounded (at most 32 MiB; about 350 KiB
//! measured), and every leaked block stays attributed. Named as the argument says:
//! - `numbered` (the default): `conn-<n>`, as servers name a thread per connection; the threads
//!   show as one family, `conn-*`, standing for all of them;
//! - `hex`: `req-<8 hex digits>`, a request id; one family too, `req-*`;
//! - `words`: names of letters only (`conn-bcqd`), which no family catches: once the pool of
//!   exited threads' states is half full, new threads take any of them, shown as threads of several
//!   names.

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

/// Thread `i`'s name under `scheme`.
fn name(scheme: &str, i: usize) -> String {
    match scheme {
        "hex" => format!("req-{:08x}", (i as u32).wrapping_mul(2_654_435_761)),
        "words" => {
            let mut letters = String::new();
            let mut n = i;
            for _ in 0..4 {
                letters.push(char::from(b'a' + (n % 26) as u8));
                n /= 26;
            }
            format!("conn-{letters}")
        }
        _ => format!("conn-{i}"),
    }
}

fn main() {
    let scheme = std::env::args().nth(1).unwrap_or_else(|| "numbered".into());
    let family = match scheme.as_str() {
        "hex" => Some("req-*"),
        "words" => None,
        _ => Some("conn-*"),
    };
    LEAKED.lock().unwrap().reserve(THREADS / 100);
    for batch in 0..THREADS / 16 {
        let handles: Vec<_> = (0..16)
            .map(|j| {
                let i = batch * 16 + j;
                std::thread::Builder::new()
                    .name(name(&scheme, i))
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
    // Every thread is counted once, in the rows that stand for them; the leaks stay charged to
    // those rows.
    let rows: Vec<_> = snapshot
        .threads()
        .iter()
        .filter(|t| match family {
            Some(family) => t.name == family,
            None => t.name.starts_with("conn-") || t.name.starts_with("[several names"),
        })
        .collect();
    let stood_for: u64 = rows.iter().map(|t| t.threads).sum();
    assert_eq!(
        stood_for,
        THREADS as u64,
        "every thread is counted once: {:#?}",
        snapshot.threads()
    );
    let by_thread = snapshot.statistics(tracealloc::GroupBy::Thread);
    let leaked: (u64, u64) = by_thread
        .iter()
        .filter(|s| rows.iter().any(|t| t.name == s.key))
        .fold((0, 0), |(blocks, bytes), s| {
            (blocks + s.live_blocks, bytes + s.live_bytes)
        });
    assert_eq!(
        leaked,
        (THREADS as u64 / 100, THREADS as u64 / 100 * 64),
        "the leaks stay charged to the threads' rows: {by_thread:#?}"
    );
    if let Some(family) = family {
        let individually_named: Vec<&str> = snapshot
            .threads()
            .iter()
            .filter(|t| t.name.starts_with(&family[..4]) && t.name != family)
            .map(|t| t.name.as_str())
            .collect();
        assert!(
            individually_named.is_empty(),
            "states held by one thread each read as their family too: {individually_named:?}"
        );
    } else {
        assert!(
            rows.iter().any(|t| t.name.starts_with("[several names")),
            "{:#?}",
            snapshot.threads()
        );
    }
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
        "unique thread names ok ({scheme}): {} states, {own} bytes of the profiler's own",
        snapshot.threads().len()
    );
}
