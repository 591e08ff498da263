//! A tokio program leaking at one line from tasks polled on both workers (spawned from outside,
//! from the LIFO slot of a task, and driven by `block_on` on the main thread): `tracealloc leaks`
//! shows exactly one row for that line, with the program's frames and the runtime folded into
//! one frame; `--full-stacks` shows tokio's frames. (A test without the harness, so that
//! tracealloc is its global allocator.)

mod common;

use std::sync::Mutex;

use common::{scratch, stdout_in};

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

static CACHE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

const LEAK_LINE: u32 = line!() + 3;
#[inline(never)]
fn remember(id: usize) {
    let entry = vec![(id % 251) as u8; 1000];
    CACHE.lock().unwrap().push(entry);
}

async fn handle(id: usize) {
    tokio::task::yield_now().await;
    remember(id);
}

/// Spawns from inside a task: the child goes to the worker's LIFO slot.
async fn fan_out(first: usize) {
    let children: Vec<_> = (first..first + 10)
        .map(|id| tokio::spawn(handle(id)))
        .collect();
    for child in children {
        child.await.unwrap();
    }
}

const LEAKS: usize = 300;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("app-worker")
        .build()
        .unwrap();
    CACHE.lock().unwrap().reserve_exact(LEAKS);
    // The runtime's own start-up allocations happen before the first snapshot.
    runtime.block_on(async { tokio::spawn(async {}).await.unwrap() });
    let before = tracealloc::snapshot();

    // 100 from outside the runtime, 100 fanned out from tasks, 100 on the main thread.
    let outside: Vec<_> = (0..100).map(|id| runtime.spawn(handle(id))).collect();
    let fanned: Vec<_> = (0..10)
        .map(|batch| runtime.spawn(fan_out(100 + batch * 10)))
        .collect();
    runtime.block_on(async {
        for task in outside.into_iter().chain(fanned) {
            task.await.unwrap();
        }
        for id in 200..300 {
            handle(id).await;
        }
    });
    let after = tracealloc::snapshot();
    assert_eq!(CACHE.lock().unwrap().len(), LEAKS);

    let dir = scratch("async");
    before.save(dir.join("before.json")).unwrap();
    after.save(dir.join("after.json")).unwrap();

    let line = format!("tests/async_leaks.rs:{LEAK_LINE}");
    let json = stdout_in(
        &dir,
        &[
            "leaks",
            "after.json",
            "--since",
            "before.json",
            "--format",
            "json",
        ],
    );
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rows = rows.as_array().unwrap();
    let ours: Vec<_> = rows
        .iter()
        .filter(|r| r["key"].as_str().unwrap().ends_with(&line))
        .collect();
    assert_eq!(ours.len(), 1, "one row for {line}: {json}");
    let row = ours[0];
    assert_eq!(row["bytes_diff"], LEAKS * 1000, "{json}");
    assert_eq!(row["blocks_diff"], LEAKS, "{json}");
    assert_eq!(
        rows[0]["key"], row["key"],
        "the leak is the top row: {json}"
    );
    let stacks = row["stacks"].as_array().unwrap();
    let stack_bytes: u64 = stacks
        .iter()
        .map(|s| s["bytes_diff"].as_u64().unwrap())
        .sum();
    assert_eq!(stack_bytes, (LEAKS * 1000) as u64, "{json}");
    // The workers' paths (outside spawn, LIFO slot) fold into one stack; the main thread's
    // block_on is the other.
    assert_eq!(stacks.len(), 2, "{json}");
    for stack in stacks {
        let key = stack["key"].as_str().unwrap();
        assert!(!key.contains("tokio::"), "no tokio frame by default: {key}");
        assert!(key.contains("async_leaks::remember"), "{key}");
        assert!(key.contains("async_leaks::handle::{{closure}}"), "{key}");
    }
    // The main thread's: its `block_on`, tokio folded, between `main` and the task.
    assert!(
        stacks.iter().any(|s| s["key"]
            .as_str()
            .unwrap()
            .contains("<- [folded: tokio] <- async_leaks::main (")),
        "{json}"
    );

    let table = stdout_in(&dir, &["leaks", "after.json", "--since", "before.json"]);
    let first = table.lines().next().unwrap();
    assert!(
        first.starts_with("#1 ")
            && first.contains(&format!(
                "{line}: 292.97 KiB live in 300 blocks (+292.97 KiB"
            )),
        "{table}"
    );
    assert!(table.lines().count() < 40, "a short answer: {table}");

    let full = stdout_in(
        &dir,
        &[
            "leaks",
            "after.json",
            "--since",
            "before.json",
            "--full-stacks",
            "--format",
            "json",
        ],
    );
    assert!(
        full.contains("tokio::runtime::"),
        "--full-stacks keeps tokio's frames"
    );
    let kept = stdout_in(
        &dir,
        &[
            "leaks",
            "after.json",
            "--since",
            "before.json",
            "--keep-frames",
            "tokio",
        ],
    );
    assert!(
        kept.contains("tokio::runtime::"),
        "--keep-frames tokio keeps them: {kept}"
    );

    std::fs::remove_dir_all(&dir).ok();
    println!("async_leaks ok: one row for the leaking line, runtime frames folded");
}
