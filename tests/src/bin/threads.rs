//! Named threads' allocations appear under their names; a block freed by another thread stays
//! charged to the thread that allocated it; unnamed threads are `thread-<n>`.

use tracealloc::model::{FoldOptions, Metric};
use tracealloc::{Filter, GroupBy};

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

#[inline(never)]
fn make_blocks(count: usize, size: usize) -> Vec<Vec<u8>> {
    (0..count).map(|_| vec![1u8; size]).collect()
}

#[inline(never)]
#[allow(clippy::vec_box)] // one heap block per element is the point
fn leak_blocks(count: usize) -> Vec<Box<[u8; 16]>> {
    (0..count).map(|_| Box::new([3u8; 16])).collect()
}

/// Every folded stack of a leak reaches from the thread's closure (or `main`) to the leaking
/// function, without std's start-up: a named thread's 1,000 blocks and their Vec are all there.
fn check_folded_stacks() {
    let leaked = std::thread::Builder::new()
        .name("leaker".into())
        .spawn(|| leak_blocks(1000))
        .unwrap()
        .join()
        .unwrap();
    let from_main = leak_blocks(10);
    let snapshot = tracealloc::snapshot();
    let mut fold = FoldOptions::default();
    fold.metric = Metric::LiveBlocks;
    let folded = snapshot.folded(&fold);
    let leaks: Vec<&String> = folded
        .iter()
        .filter(|l| l.contains("threads::leak_blocks"))
        .collect();
    let blocks = |root: &str| -> u64 {
        leaks
            .iter()
            .filter(|l| l.starts_with(root))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    for line in &leaks {
        assert!(
            !line.contains("lang_start") && !line.contains("catch_unwind"),
            "std's start-up is not shown: {line}"
        );
    }
    // The closure is `threads::check_folded_stacks::{{closure}}` (or `{closure#0}`).
    assert_eq!(
        blocks("threads::check_folded_stacks::{"),
        1001,
        "1,000 boxes and their Vec from the leaker's closure: {leaks:#?}"
    );
    assert_eq!(
        blocks("threads::main ("),
        11,
        "10 boxes and their Vec from main: {leaks:#?}"
    );
    assert_eq!(blocks(""), 1012, "no other stack: {leaks:#?}");
    let mut full = FoldOptions::default();
    full.full_stacks = true;
    assert!(
        snapshot
            .folded(&full)
            .iter()
            .any(|l| l.contains("__rust_begin_short_backtrace") && l.contains("leak_blocks")),
        "--full-stacks keeps std's start-up"
    );
    std::hint::black_box((leaked, from_main));
}

fn main() {
    check_folded_stacks();
    let worker = std::thread::Builder::new()
        .name("worker-a".into())
        .spawn(|| make_blocks(10, 1000))
        .unwrap();
    let mut from_worker = worker.join().unwrap();
    from_worker.truncate(5); // main frees 5 of worker-a's blocks

    let ours = make_blocks(4, 500);
    let freer = std::thread::Builder::new()
        .name("freer".into())
        .spawn(move || drop(ours)) // frees main's blocks
        .unwrap();
    freer.join().unwrap();

    let unnamed = std::thread::spawn(|| make_blocks(3, 100)).join().unwrap();

    let snapshot = tracealloc::snapshot().filter(&[Filter::include("threads::make_blocks*")]);
    let by_thread = snapshot.statistics(GroupBy::Thread);
    let get = |name: &str| {
        by_thread
            .iter()
            .find(|s| s.key == name)
            .unwrap_or_else(|| panic!("no thread {name} in {by_thread:#?}"))
    };
    // worker-a: 10 blocks of 1000 and their Vec of 10 (24-byte) handles; 5 blocks still live.
    let a = get("worker-a");
    assert_eq!(
        (a.live_bytes, a.live_blocks, a.total_bytes, a.total_blocks),
        (5000 + 240, 6, 10_000 + 240, 11),
        "{a}"
    );
    // main: its 4 blocks of 500 (freed by `freer`) and their Vec handle (freed too).
    let main = get("main");
    assert_eq!(
        (
            main.live_bytes,
            main.live_blocks,
            main.total_bytes,
            main.total_blocks
        ),
        (0, 0, 2000 + 96, 5),
        "{main}"
    );
    assert!(
        by_thread.iter().all(|s| s.key != "freer"),
        "freer allocated nothing here: {by_thread:#?}"
    );
    let unnamed_stat = by_thread
        .iter()
        .find(|s| s.key.starts_with("thread-"))
        .unwrap_or_else(|| panic!("an unnamed thread: {by_thread:#?}"));
    assert_eq!(
        (unnamed_stat.live_bytes, unnamed_stat.live_blocks),
        (300 + 72, 4),
        "{unnamed_stat}"
    );
    let names: Vec<_> = snapshot.threads().iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"freer"),
        "every allocating thread is listed: {names:?}"
    );
    std::hint::black_box((from_worker, unnamed));
    println!("threads ok");
}
