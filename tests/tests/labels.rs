//! Task labels: every allocation a labeled future makes while polled, on whichever worker polls it,
//! is charged to its label; blocks keep their label wherever they are freed; allocations outside
//! any label are charged to none.

use std::hint::black_box;

use tracealloc::{GroupBy, Stat};

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

const LABELS: [&str; 4] = ["alpha", "beta", "gamma", "delta"];
const PIECES: usize = 5;

/// One task's work: `PIECES` blocks of `size` bytes, kept in a vector, with a yield between them so
/// the task moves between workers.
async fn task_work(size: usize) -> usize {
    let mut kept = Vec::new();
    for _ in 0..PIECES {
        kept.push(black_box(vec![1u8; size]));
        tokio::task::yield_now().await;
    }
    kept.iter().map(Vec::len).sum()
}

/// The sites of one label (or of none), grouped by line.
fn lines_of(snapshot: &tracealloc::Snapshot, label: Option<&str>) -> Vec<Stat> {
    let mut model = snapshot.as_model().clone();
    model.sites.retain(|s| s.label.as_deref() == label);
    model.statistics(GroupBy::Line)
}

fn this_file(stats: &[Stat]) -> (u64, u64) {
    stats
        .iter()
        .filter(|s| s.key.contains("tests/labels.rs"))
        .fold((0, 0), |(blocks, bytes), s| {
            (blocks + s.total_blocks, bytes + s.total_bytes)
        })
}

#[test]
fn forty_tasks_under_four_labels_on_four_workers() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let workers = runtime.block_on(async {
        let handles: Vec<_> = (0..40usize)
            .map(|i| {
                let label = LABELS[i % 4];
                tokio::spawn(tracealloc::labeled(label, task_work(1000 * (i % 4 + 1))))
            })
            .collect();
        let mut total = 0;
        for handle in handles {
            total += handle.await.unwrap();
        }
        total
    });
    assert_eq!(workers, 10 * PIECES * (1000 + 2000 + 3000 + 4000));
    let snapshot = tracealloc::snapshot();
    drop(runtime);
    for (i, label) in LABELS.into_iter().enumerate() {
        let lines = lines_of(&snapshot, Some(label));
        // Ten tasks, each: five pieces, and its vector (capacity 4, then 8: an allocation and a
        // realloc of 4 and 8 times 24 bytes).
        let size = 1000 * (i as u64 + 1);
        let expected = (
            10 * (PIECES as u64 + 2),
            10 * (PIECES as u64 * size + 96 + 192),
        );
        assert_eq!(this_file(&lines), expected, "{label}: {lines:#?}");
        // tokio's own allocations during the polls are charged to the label too: its list of
        // deferred wakers growing (tokio/src/runtime/scheduler/defer.rs), a few blocks per worker.
        let all: u64 = lines.iter().map(|s| s.total_blocks).sum();
        assert!(all - expected.0 <= 16, "{label}: tokio's share: {lines:#?}");
    }
    // The tasks' own work is always under a label; spawning them (outside) is under none.
    let unlabeled = lines_of(&snapshot, None);
    let task_lines: Vec<String> = LABELS
        .iter()
        .flat_map(|label| lines_of(&snapshot, Some(label)))
        .filter(|s| s.key.contains("tests/labels.rs"))
        .map(|s| s.key)
        .collect();
    assert!(!task_lines.is_empty());
    assert!(
        unlabeled.iter().all(|s| !task_lines.contains(&s.key)),
        "no piece of a task is unlabeled: {unlabeled:#?}"
    );
    assert!(
        this_file(&unlabeled).0 > 0,
        "the runtime and the spawns: {unlabeled:#?}"
    );
}

#[test]
fn with_label_is_exact() {
    let kept = tracealloc::with_label("sync-work", || {
        let a = black_box(vec![0u8; 100]);
        let b = black_box(vec![0u8; 300]);
        (a, b)
    });
    let snapshot = tracealloc::snapshot();
    let lines = lines_of(&snapshot, Some("sync-work"));
    assert_eq!(this_file(&lines), (2, 400), "{lines:#?}");
    let labels = snapshot.statistics(GroupBy::Label);
    let sync = labels.iter().find(|s| s.key == "sync-work").unwrap();
    assert_eq!((sync.live_blocks, sync.live_bytes), (2, 400));
    drop(kept);
}

/// A block keeps its label when something else frees it: here, code under no label.
#[test]
fn a_block_freed_elsewhere_keeps_its_label() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let block = runtime.block_on(async {
        tokio::spawn(tracealloc::labeled("producer", async {
            black_box(vec![7u8; 4096])
        }))
        .await
        .unwrap()
    });
    let before = tracealloc::snapshot();
    drop(block); // on this thread, under no label
    let after = tracealloc::snapshot();
    let producer = |s: &tracealloc::Snapshot| {
        let stats = lines_of(s, Some("producer"));
        let (blocks, bytes) = this_file(&stats);
        let live: u64 = stats
            .iter()
            .filter(|s| s.key.contains("tests/labels.rs"))
            .map(|s| s.live_bytes)
            .sum();
        (blocks, bytes, live)
    };
    assert_eq!(producer(&before), (1, 4096, 4096));
    assert_eq!(
        producer(&after),
        (1, 4096, 0),
        "freed, still charged to its label"
    );
    drop(runtime);
}

/// The `tracing` layer: allocations inside a span are charged to the span's name, the innermost
/// span winning, and the label ends with the span.
#[test]
fn tracing_spans_name_the_labels() {
    use tracing_subscriber::prelude::*;
    let subscriber = tracing_subscriber::registry().with(tracealloc::LabelLayer);
    let kept = tracing::subscriber::with_default(subscriber, || {
        let outer = tracing::info_span!("ingest").entered();
        let a = black_box(vec![0u8; 111]);
        let b = {
            let _inner = tracing::info_span!("decode").entered();
            black_box(vec![0u8; 222])
        };
        drop(outer);
        let c = black_box(vec![0u8; 333]);
        (a, b, c)
    });
    let snapshot = tracealloc::snapshot();
    assert_eq!(this_file(&lines_of(&snapshot, Some("ingest"))).1, 111);
    assert_eq!(this_file(&lines_of(&snapshot, Some("decode"))).1, 222);
    let unlabeled = lines_of(&snapshot, None);
    assert!(
        unlabeled
            .iter()
            .any(|s| s.key.contains("tests/labels.rs") && s.total_bytes == 333),
        "after the span, no label: {unlabeled:#?}"
    );
    drop(kept);
}

/// The same work as `task_work`, apart: the tests of this file run at once in one process, and
/// the labels test checks that `task_work`'s lines are never unlabeled.
async fn measured_work(size: usize) -> usize {
    let mut kept = Vec::new();
    for _ in 0..PIECES {
        kept.push(black_box(vec![1u8; size]));
        tokio::task::yield_now().await;
    }
    kept.iter().map(Vec::len).sum()
}

/// `measure_future` counts a future's allocations across its awaits, on whichever workers poll it.
#[test]
fn a_measured_future_counts_every_poll_on_every_worker() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let (total, m) = runtime.block_on(async {
        tokio::spawn(tracealloc::measure_future(measured_work(1000)))
            .await
            .unwrap()
    });
    assert_eq!(total, PIECES * 1000);
    // Its own: five pieces and its vector (an allocation and a realloc); tokio's deferred wakers
    // may add a few blocks during the polls.
    let own = (PIECES as u64 + 2, PIECES as u64 * 1000 + 96 + 192);
    assert!(m.allocations >= own.0 && m.allocations <= own.0 + 8, "{m}");
    assert!(m.bytes >= own.1 && m.bytes <= own.1 + 8 * 2048, "{m}");
    // Everything of its own was freed by the end (tokio may keep its deferred-waker list).
    let live = m.top_sites(5, tracealloc::Metric::LiveBytes);
    assert!(!live.contains("tests/labels.rs"), "{live}");
    assert!(m.live_blocks <= 1, "{m}");
    assert!(
        m.peak_bytes >= PIECES as u64 * 1000 + 192,
        "all five pieces at once: {m}"
    );
    let top = m.top_sites(1, tracealloc::Metric::TotalBytes);
    assert!(
        top.contains("tests/labels.rs") && top.contains("5 allocations, 4.88 KiB"),
        "{top}"
    );
    drop(runtime);
}
