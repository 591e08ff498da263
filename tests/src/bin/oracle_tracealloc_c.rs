//! The oracle workload under tracealloc with its C allocation layer (`c_allocations!()`): the
//! Rust allocations reach the profiler through `System`'s `malloc`, where they must count once.
//! Arguments as `oracle_tracealloc`'s, and:
//!
//! - `with-c`: the single-threaded workload after direct calls of the C library's allocation
//!   functions ([`c_calls`]), whose blocks stay live through it; the figures as `single`'s, with
//!   the calling site's own as `c_site`.
//! - `threads-rust`: the four-thread workload's totals and live figures counting only the
//!   allocations made through Rust's allocator (their stacks pass through its `__rust_alloc` or
//!   `__rust_realloc` shims). The C library also allocates for each thread it starts (its
//!   thread-local storage vector, thread attributes, destructor lists), which the C layer counts
//!   and dhat-rs cannot see.

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();
tracealloc::c_allocations!();

/// Direct C allocations of known sizes, none through Rust (the pointers live in an array): 8
/// `malloc(100)`, one `calloc(4, 25)`, one `posix_memalign` of 256 bytes, the first block grown to
/// 300 bytes by `realloc` and two others freed. 11 allocations of 1,456 bytes in all; 8 blocks of
/// 1,156 bytes live after.
#[inline(never)]
fn c_calls() -> [*mut libc::c_void; 10] {
    let mut blocks = [std::ptr::null_mut(); 10];
    // SAFETY: the C library's allocation functions, each result checked; the realloc'd and freed
    // blocks are ones allocated here, each freed once.
    unsafe {
        for block in &mut blocks[..8] {
            *block = libc::malloc(100);
        }
        blocks[8] = libc::calloc(4, 25);
        assert_eq!(libc::posix_memalign(&mut blocks[9], 64, 256), 0);
        blocks[0] = libc::realloc(blocks[0], 300);
        libc::free(blocks[1]);
        libc::free(blocks[2]);
        blocks[1] = std::ptr::null_mut();
        blocks[2] = std::ptr::null_mut();
    }
    assert!(
        blocks
            .iter()
            .enumerate()
            .all(|(i, b)| !b.is_null() || i == 1 || i == 2)
    );
    blocks
}

/// Totals and live figures of the sites whose stack passes through Rust's allocator shims.
fn through_rust_allocator(snapshot: &tracealloc::Snapshot) -> [u64; 4] {
    let model = snapshot.as_model();
    let mut figures = [0; 4];
    for site in &model.sites {
        let rust = model.stacks[site.stack as usize].frames.iter().any(|&f| {
            let function = &model.frames[f as usize].function;
            function.contains("__rust_alloc") || function.contains("__rust_realloc")
        });
        if rust {
            figures[0] += site.total_blocks;
            figures[1] += site.total_bytes;
            figures[2] += site.live_blocks;
            figures[3] += site.live_bytes;
        }
    }
    figures
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("with-c") => {}
        Some("threads-rust") => {
            let before = through_rust_allocator(&tracealloc::snapshot());
            let kept = tracealloc_tests::oracle_threads(4, 10_000);
            let after = through_rust_allocator(&tracealloc::snapshot());
            drop(kept);
            println!(
                "{}",
                serde_json::json!({
                    "total_blocks": after[0] - before[0],
                    "total_bytes": after[1] - before[1],
                    "live_blocks": after[2] - before[2],
                    "live_bytes": after[3] - before[3],
                })
            );
            return;
        }
        _ => {
            tracealloc_tests::oracle_main();
            return;
        }
    }
    tracealloc::reset_peak();
    let start = tracealloc::stats();
    let blocks = c_calls();
    let kept = tracealloc_tests::oracle_work(42, 20_000);
    let end = tracealloc::stats();
    let snapshot = tracealloc::snapshot();
    let c_site: Vec<u64> = snapshot
        .statistics(tracealloc::GroupBy::Function)
        .iter()
        .filter(|s| s.key.ends_with("oracle_tracealloc_c::c_calls"))
        .flat_map(|s| [s.total_blocks, s.total_bytes, s.live_blocks, s.live_bytes])
        .collect();
    drop(kept);
    for block in blocks {
        // SAFETY: blocks from `c_calls`, each freed once (free(NULL) does nothing).
        unsafe { libc::free(block) };
    }
    println!(
        "{}",
        serde_json::json!({
            "total_blocks": end.total_blocks - start.total_blocks,
            "total_bytes": end.total_bytes - start.total_bytes,
            "live_blocks": end.live_blocks - start.live_blocks,
            "live_bytes": end.live_bytes - start.live_bytes,
            "peak_blocks": end.peak_blocks - start.live_blocks,
            "peak_bytes": end.peak_bytes - start.live_bytes,
            "c_site": c_site,
        })
    );
}
