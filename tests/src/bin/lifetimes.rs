//! Lifetimes mode (`Profiler::lifetimes`): blocks that live about 200 ms, blocks freed at once,
//! and blocks still live at the snapshot 100 ms after their allocation. Prints one JSON object:
//! whether lifetimes were recorded, then each site's mean lifetime in microseconds (by function).
//! `TRACEALLOC_LIFETIMES=0` turns the mode off.

use std::hint::black_box;
use std::time::Duration;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system().lifetimes();

#[inline(never)]
fn long_lived() {
    let blocks: Vec<Box<[u8; 64]>> = (0..100).map(|_| Box::new([1u8; 64])).collect();
    std::thread::sleep(Duration::from_millis(200));
    drop(black_box(blocks));
}

#[inline(never)]
fn short_lived() {
    for i in 0..100_000u32 {
        drop(black_box(Box::new(i)));
    }
}

#[inline(never)]
#[allow(
    clippy::vec_box,
    reason = "each box is a block of its own, which the test counts"
)]
fn still_live() -> Vec<Box<[u8; 32]>> {
    (0..10).map(|_| Box::new([2u8; 32])).collect()
}

fn main() {
    long_lived();
    short_lived();
    let kept = still_live();
    std::thread::sleep(Duration::from_millis(100));
    let snapshot = tracealloc::snapshot();
    let model = snapshot.as_model();
    let mut means = serde_json::Map::new();
    for name in ["long_lived", "short_lived", "still_live"] {
        let (lifetimes_us, allocations) = model
            .sites
            .iter()
            .filter(|site| {
                model.stack_frames(site.stack).any(|f| {
                    f.function.ends_with(&format!("lifetimes::{name}"))
                        && !f.function.contains("{{closure}}")
                })
            })
            // The innermost frames of `still_live` and `long_lived` are the boxes, not the Vec
            // that collects them: count only blocks of the 64- and 32-byte boxes and the u32s.
            .filter(|site| {
                let size = site.total_bytes / site.total_blocks.max(1);
                size == 64 || size == 32 || size == 4
            })
            .fold((0, 0), |(us, n), site| {
                (
                    us + site.lifetimes_us,
                    n + site.total_blocks - site.reallocs,
                )
            });
        means.insert(
            name.to_owned(),
            serde_json::json!([lifetimes_us as f64 / allocations.max(1) as f64, allocations]),
        );
    }
    println!(
        "{}",
        serde_json::json!({"lifetimes": model.meta.capture.lifetimes, "mean_us": means})
    );
    drop(black_box(kept));
}
