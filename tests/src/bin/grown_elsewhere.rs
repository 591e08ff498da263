//! Buffers made in one function and grown in another, in several sizes and growth patterns: the
//! figures the test compares between exact mode and sampled mode (`TRACEALLOC_SAMPLE`, with
//! `TRACEALLOC_SEED`). Prints one JSON object: the sampling interval and seed, and for each of the
//! program's functions its live and total bytes and blocks, and in sampled mode their standard
//! errors.

use std::hint::black_box;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

/// Born small, here.
#[inline(never)]
fn make_buffer(capacity: usize) -> Vec<u8> {
    Vec::with_capacity(capacity)
}

/// Grown by pushes, doubling, here: every realloc of these buffers.
#[inline(never)]
fn fill(buffer: &mut Vec<u8>, bytes: usize) {
    for i in 0..bytes {
        buffer.push(i as u8);
    }
}

/// Born large, here.
#[inline(never)]
fn make_large(capacity: usize) -> Vec<u64> {
    Vec::with_capacity(capacity)
}

/// Grown once, by a reserve several times its size, here.
#[inline(never)]
fn reserve_more(buffer: &mut Vec<u64>, more: usize) {
    buffer.reserve_exact(more);
}

/// A string built by appends, the way a serializer writes into a buffer it was handed.
#[inline(never)]
fn make_text() -> String {
    String::with_capacity(16)
}

#[inline(never)]
fn write_text(text: &mut String, pieces: usize) {
    for i in 0..pieces {
        text.push_str(if i % 2 == 0 {
            "0123456789abcdef"
        } else {
            "fedcba98"
        });
    }
}

/// Made and grown in one function: every figure is charged here.
#[inline(never)]
fn push_loop(n: usize) -> Vec<u32> {
    let mut v = Vec::with_capacity(16);
    for i in 0..n {
        v.push(i as u32);
    }
    v
}

/// Shrunk after growing, in another function.
#[inline(never)]
fn shrink(buffer: &mut Vec<u8>) {
    buffer.truncate(buffer.len() / 8);
    buffer.shrink_to_fit();
}

/// Blocks of two sizes at one line, all kept: one of 256 KiB for every 99 of 32 bytes. Sampled,
/// the big ones are almost always seen and the small ones rarely, each standing for thousands:
/// the site's block count is as uncertain as its small blocks make it.
#[inline(never)]
fn mixed_sizes(kept: &mut Vec<Vec<u8>>) {
    for i in 0..20_000 {
        let size = if i % 100 == 0 { 256 * 1024 } else { 32 };
        kept.push(black_box(Vec::with_capacity(size)));
    }
}

fn main() {
    let mut kept_mixed = Vec::with_capacity(20_000);
    mixed_sizes(&mut kept_mixed);
    let mut kept_small = Vec::new();
    for i in 0..300 {
        let mut buffer = make_buffer(64);
        fill(&mut buffer, 16 * 1024 + (i % 7) * 4096);
        if i % 4 == 0 {
            shrink(&mut buffer);
        }
        if i % 3 == 0 {
            kept_small.push(buffer);
        } else {
            drop(black_box(buffer));
        }
    }
    let mut kept_large = Vec::new();
    for i in 0..60 {
        let mut buffer = make_large(32 * 1024);
        reserve_more(&mut buffer, 96 * 1024);
        if i % 2 == 0 {
            kept_large.push(buffer);
        }
    }
    let mut kept_text = Vec::new();
    for i in 0..300 {
        let mut text = make_text();
        write_text(&mut text, 600 + i);
        if i % 5 == 0 {
            kept_text.push(text);
        }
    }
    let pushed = push_loop(600_000);
    let snapshot = tracealloc::snapshot();
    let capture = &snapshot.meta().capture;
    let stats: Vec<(String, tracealloc::model::Stat)> = snapshot
        .statistics(tracealloc::GroupBy::Function)
        .into_iter()
        .filter_map(|s| Some((s.key.strip_prefix("grown_elsewhere::")?.to_owned(), s)))
        .collect();
    let functions: serde_json::Map<String, serde_json::Value> = stats
        .iter()
        .map(|(name, s)| {
            let figures = [s.live_bytes, s.live_blocks, s.total_bytes, s.total_blocks];
            (name.clone(), serde_json::json!(figures))
        })
        .collect();
    let errors: serde_json::Map<String, serde_json::Value> = stats
        .iter()
        .filter_map(|(name, s)| {
            let e = s.standard_errors(capture.sampling_bytes)?;
            let errors = [e.live_bytes, e.live_blocks, e.total_bytes, e.total_blocks];
            Some((name.clone(), serde_json::json!(errors)))
        })
        .collect();
    let out = serde_json::json!({
        "sampling_bytes": capture.sampling_bytes,
        "seed": capture.sampling_seed,
        "functions": functions,
        "errors": errors,
    });
    println!("{out}");
    black_box((kept_small, kept_large, kept_text, pushed, kept_mixed));
}
