//! `tracealloc::measure` and the assertion macros under the default parallel test harness: every
//! test asserts exact counts while the others run on their own threads. (CI runs this file
//! several times.)

use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;

use tracealloc::{Metric, measure, measure_with};

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

#[test]
fn one_vector_with_capacity() {
    let m = measure(|| drop(black_box(Vec::<u8>::with_capacity(10))));
    assert_eq!(
        (m.allocations, m.bytes, m.live_blocks, m.live_bytes),
        (1, 10, 0, 0)
    );
    assert_eq!(m.peak_bytes, 10);
}

#[test]
fn a_kept_box_is_live_at_the_end() {
    let (kept, m) = measure_with(|| Box::new(black_box(7u64)));
    assert_eq!(
        (m.allocations, m.bytes, m.live_blocks, m.live_bytes),
        (1, 8, 1, 8)
    );
    drop(kept);
}

#[test]
fn a_string_from_a_literal() {
    let (s, m) = measure_with(|| String::from(black_box("hello")));
    assert_eq!((m.allocations, m.bytes, m.live_bytes), (1, 5, 5));
    drop(s);
}

#[test]
fn growth_by_push_counts_every_realloc() {
    let (v, m) = measure_with(|| {
        let mut v = Vec::new();
        for i in 0..100u32 {
            v.push(black_box(i));
        }
        v
    });
    // Capacities 4, 8, 16, 32, 64, 128 (u32): one allocation and five reallocs.
    assert_eq!(
        (m.allocations, m.bytes),
        (6, 16 + 32 + 64 + 128 + 256 + 512)
    );
    assert_eq!((m.live_blocks, m.live_bytes), (1, 512));
    drop(v);
}

#[test]
fn arithmetic_allocates_nothing() {
    let total = tracealloc::assert_no_alloc!((0..1000u64).map(black_box).sum::<u64>());
    assert_eq!(total, 499_500);
}

#[test]
fn nested_measures_each_see_their_own_and_the_outer_sees_both() {
    let mut inner = None;
    let outer = measure(|| {
        let a = black_box(vec![0u8; 100]);
        inner = Some(measure(|| drop(black_box(vec![0u8; 40]))));
        drop(a);
    });
    let inner = inner.unwrap();
    assert_eq!(
        (inner.allocations, inner.bytes, inner.peak_bytes),
        (1, 40, 40)
    );
    assert_eq!(
        (outer.allocations, outer.bytes, outer.peak_bytes),
        (2, 140, 140)
    );
    assert_eq!((outer.live_blocks, inner.live_blocks), (0, 0));
}

#[test]
fn frees_of_older_blocks_are_counted_apart() {
    let old = black_box(vec![1u8; 64]);
    let m = measure(move || drop(old));
    assert_eq!((m.allocations, m.live_blocks), (0, 0));
    assert_eq!((m.freed_before_blocks, m.freed_before_bytes), (1, 64));
}

#[test]
fn the_peak_is_the_most_held_at_once() {
    let (kept, m) = measure_with(|| {
        drop(black_box(vec![0u8; 1000]));
        black_box(vec![0u8; 500])
    });
    assert_eq!((m.peak_bytes, m.live_bytes, m.bytes), (1000, 500, 1500));
    drop(kept);
}

#[test]
fn a_boxed_slice() {
    let (b, m) = measure_with(|| black_box(vec![0u8; 100]).into_boxed_slice());
    assert_eq!((m.allocations, m.bytes, m.live_bytes), (1, 100, 100));
    drop(b);
}

#[test]
fn a_clone() {
    let original = vec![3u8; 50];
    let (copy, m) = measure_with(|| black_box(&original).clone());
    assert_eq!((m.allocations, m.bytes, m.live_blocks), (1, 50, 1));
    drop((copy, original));
}

#[test]
fn vectors_of_vectors() {
    let (all, m) = measure_with(|| {
        let mut all = Vec::with_capacity(10);
        for _ in 0..10 {
            all.push(black_box(vec![0u8; 8]));
        }
        all
    });
    assert_eq!(
        (m.allocations, m.bytes, m.live_blocks),
        (11, 10 * 8 + 10 * 24, 11)
    );
    drop(all);
}

#[test]
fn an_rc_and_an_arc() {
    let ((rc, arc), m) = measure_with(|| (Rc::new(black_box(5u32)), Arc::new(black_box(6u64))));
    // Two counters (16 bytes) before the value, rounded up to the alignment.
    assert_eq!((m.allocations, m.bytes), (2, 24 + 24));
    drop((rc, arc));
}

#[test]
fn a_string_grown_twice() {
    let (s, m) = measure_with(|| {
        let mut s = String::new();
        s.push_str(black_box("aaaaaaaaaa"));
        s.push_str(black_box("bbbbbbbbbb"));
        s
    });
    // Capacity 10 for the first push, then 20 (twice 10): an allocation and a realloc.
    assert_eq!((m.allocations, m.bytes, m.live_bytes), (2, 10 + 20, 20));
    drop(s);
}

#[test]
fn assert_max_allocations_passes_at_the_limit_and_returns_the_value() {
    let v = tracealloc::assert_max_allocations!(1, black_box(vec![1u8, 2, 3]));
    assert_eq!(v, [1, 2, 3]);
}

#[test]
fn assert_max_bytes_passes_at_the_limit() {
    tracealloc::assert_max_bytes!(300, {
        drop(black_box(vec![0u8; 100]));
        drop(black_box(vec![0u8; 200]));
    });
}

#[test]
fn assert_max_peak_passes_when_blocks_come_and_go() {
    tracealloc::assert_max_peak!(200, {
        for _ in 0..10 {
            drop(black_box(vec![0u8; 200]));
        }
    });
}

#[test]
fn assert_no_leaks_passes_when_everything_is_freed() {
    tracealloc::assert_no_leaks!({
        let v: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        black_box(v);
    });
}

/// A broken budget panics with the figures and the offending line, first among the sites.
#[test]
fn a_failing_assertion_names_the_offending_line() {
    let line = line!() + 3;
    let failure = std::panic::catch_unwind(|| {
        tracealloc::assert_max_allocations!(2, {
            let v: Vec<Box<u32>> = (0..5).map(|i| Box::new(black_box(i))).collect();
            drop(v);
        })
    })
    .expect_err("five boxes and a vector break a budget of two");
    let message = failure
        .downcast_ref::<String>()
        .expect("a formatted message")
        .clone();
    assert!(
        message.contains("assert_max_allocations!(2) failed: 6 allocations, at most 2 allowed"),
        "{message}"
    );
    let first_site = message.split("allocations, ").nth(2).unwrap_or_default();
    assert!(
        first_site.contains(&format!("tests/tests/measure.rs:{line}")),
        "the boxes' line ({line}) comes first:\n{message}"
    );
    assert!(
        first_site.starts_with("20 B") || message.contains("  5 allocations, 20 B"),
        "{message}"
    );
}

/// Other threads' allocations never count: four threads measure 200 closures each with exact
/// counts while a fifth allocates all along.
#[test]
fn threads_measure_exactly_while_another_allocates() {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let noise = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                kept.push(black_box(vec![0u8; 32]));
                if kept.len() > 1000 {
                    kept.clear();
                }
            }
        })
    };
    let workers: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..200u64 {
                    let n = (t * 200 + i) % 7 + 1;
                    let m = measure(|| {
                        let blocks: Vec<Box<u64>> =
                            (0..n).map(|k| Box::new(black_box(k))).collect();
                        drop(blocks);
                    });
                    // n boxes of 8 bytes and one vector of n pointers (exact size from the iterator).
                    assert_eq!(
                        (m.allocations, m.bytes),
                        (n + 1, n * 8 + n * 8),
                        "thread {t} round {i}"
                    );
                    assert_eq!((m.live_blocks, m.freed_before_blocks), (0, 0));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    noise.join().unwrap();
}

/// Threads started inside a measure are not counted: only what the calling thread allocates.
#[test]
fn threads_started_inside_are_not_counted() {
    let m = measure(|| {
        std::thread::spawn(|| {
            for _ in 0..1000 {
                drop(black_box(vec![0u8; 16]));
            }
        })
        .join()
        .unwrap();
    });
    assert!(m.allocations < 100, "only the spawn's own allocations: {m}");
}

#[test]
fn top_sites_rank_by_the_metric() {
    let (kept, m) = measure_with(|| {
        let small = black_box(vec![0u8; 10]);
        let large = black_box(vec![0u8; 1000]);
        (small, large)
    });
    let top = m.top_sites(1, Metric::LiveBytes);
    let line = line!() - 4;
    assert!(
        top.starts_with("  1 allocation, 1000 B (1000 B live in 1 block) at"),
        "{top}"
    );
    assert!(
        top.contains(&format!("tests/tests/measure.rs:{line})")),
        "{top}"
    );
    assert!(
        !top.contains("tracealloc::measure"),
        "the stack stops at the measure: {top}"
    );
    drop(kept);
}

/// The README's example, as written there.
fn parse(input: &str) -> Vec<String> {
    input.split(',').map(str::to_owned).collect()
}

#[test]
fn parsing_allocates_once_per_field_and_once_for_the_vector() {
    let fields = tracealloc::assert_max_allocations!(4, parse("a,b,c"));
    assert_eq!(fields.len(), 3);
    let m = tracealloc::measure(|| drop(parse("a,b,c")));
    assert_eq!((m.allocations, m.live_blocks), (4, 0));
}

/// The opt-in for threads: scoped threads started with the measured scope count, exactly, and
/// what they leave live is live at the end.
#[test]
fn scoped_threads_count_when_asked() {
    fn work() -> Vec<u8> {
        for _ in 0..10 {
            drop(black_box(vec![0u8; 100]));
        }
        black_box(vec![1u8; 50])
    }
    // The same code, once with plain scoped threads (the default: the calling thread only), once
    // with the measured scope: the difference is exactly the threads' own work.
    let (kept, alone) = measure_with(|| {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..3).map(|_| scope.spawn(work)).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        })
    });
    drop(kept);
    let (kept, both) = tracealloc::measure_scoped(|scope| {
        let handles: Vec<_> = (0..3).map(|_| scope.spawn(work)).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(
        both.allocations - alone.allocations,
        3 * 11,
        "{both} / {alone}"
    );
    // Each spawn also boxes a closure one pointer larger (it holds where the thread's figures go).
    let spawn_boxes = 3 * std::mem::size_of::<usize>() as u64;
    assert_eq!(
        both.bytes - alone.bytes,
        3 * (10 * 100 + 50) + spawn_boxes,
        "{both} / {alone}"
    );
    assert_eq!(
        (
            both.live_blocks - alone.live_blocks,
            both.live_bytes - alone.live_bytes
        ),
        (3, 150),
        "the three kept vectors are live: {both} / {alone}"
    );
    drop(kept);
}

/// A baseline: recorded on the first run (a missing one fails instead under CI), passes while the
/// figures hold, fails when they grow, and takes the new figures when updated.
#[test]
fn a_baseline_grows_fails_and_updates() {
    let dir = std::env::temp_dir().join(format!("tracealloc-baselines-{}", std::process::id()));
    let mut baseline = tracealloc::measure::Baseline::new(&dir, "parse");
    baseline.update = false;
    baseline.record_missing = true;
    let small = measure(|| drop(parse("a,b")));
    let large = measure(|| drop(parse("a,b,c,d")));
    let mut in_ci = tracealloc::measure::Baseline::new(&dir, "missing");
    in_ci.update = false;
    in_ci.record_missing = false;
    let missing = in_ci
        .check(&small)
        .expect_err("under CI a missing baseline fails");
    assert!(
        missing.contains("missing.json") && missing.contains("TRACEALLOC_UPDATE_BASELINES=1"),
        "{missing}"
    );
    assert!(!dir.join("missing.json").exists(), "and is not recorded");
    assert_eq!(baseline.check(&small), Ok(()), "the first run records");
    let stored = std::fs::read_to_string(dir.join("parse.json")).unwrap();
    assert!(stored.contains("\"allocations\": 3"), "{stored}");
    assert_eq!(baseline.check(&small), Ok(()), "the same figures pass");
    let grown = baseline
        .check(&large)
        .expect_err("two more fields allocate more");
    assert!(grown.contains("allocations grew from 3 to 5"), "{grown}");
    baseline.tolerance_percent = 100.0;
    assert_eq!(baseline.check(&large), Ok(()), "within a 100% tolerance");
    baseline.tolerance_percent = 0.0;
    baseline.update = true;
    assert_eq!(
        baseline.check(&large),
        Ok(()),
        "updating takes the new figures"
    );
    baseline.update = false;
    assert_eq!(baseline.check(&large), Ok(()));
    assert!(
        baseline
            .check(&measure(|| drop(parse("a,b,c,d,e"))))
            .is_err()
    );
    std::fs::remove_dir_all(&dir).ok();
}
