//! Named threads' allocations appear under their names; a block freed by another thread stays
//! charged to the thread that allocated it; unnamed threads are `thread-<n>`.

use tracealloc::{Filter, GroupBy};

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

#[inline(never)]
fn make_blocks(count: usize, size: usize) -> Vec<Vec<u8>> {
    (0..count).map(|_| vec![1u8; size]).collect()
}

fn main() {
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
