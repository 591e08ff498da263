//! Sampling mode: whole-process figures stay exact, site figures are unbiased estimates close to
//! the truth, and a site's live estimate returns to exactly zero when its blocks are freed.

use tracealloc::GroupBy;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system().sampled(64 * 1024);

#[inline(never)]
fn small_blocks(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|_| vec![1u8; 1000]).collect()
}

#[inline(never)]
fn large_blocks(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|_| vec![2u8; 256 * 1024]).collect()
}

/// Blocks below the short path's allowance (64 KiB) but large enough that every few of them
/// take the full path: the bytes of the event that renews the allowance must not come out of it
/// (they are already counted against the sampling interval), or sampling runs faster than its mean
/// and the estimate comes out too high.
#[inline(never)]
fn medium_blocks(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|_| vec![3u8; 48 * 1024]).collect()
}

#[inline(never)]
fn grown_by_push() -> Vec<u32> {
    let mut v = Vec::new();
    for i in 0..250_000 {
        v.push(i);
    }
    v
}

/// Many small vectors, each grown by push through four reallocs (16, 32, 64, 128, 256 bytes).
/// Each realloc is a sampling point of its own: a block is sampled at its current size with the
/// probability of that size, whatever happened at its earlier sizes, or the estimate would count
/// every size it went through (about twice its bytes for a doubling vector).
#[inline(never)]
fn small_vectors_grown(n: usize) -> Vec<Vec<u32>> {
    (0..n)
        .map(|i| {
            let mut v = Vec::new();
            for j in 0..64 {
                v.push(i as u32 + j);
            }
            v
        })
        .collect()
}

fn live_of(snapshot: &tracealloc::Snapshot, function: &str) -> (u64, u64) {
    snapshot
        .statistics(GroupBy::Function)
        .iter()
        .filter(|s| s.key.starts_with(function))
        .fold((0, 0), |acc, s| {
            (acc.0 + s.live_bytes, acc.1 + s.live_blocks)
        })
}

fn peak_of(snapshot: &tracealloc::Snapshot, function: &str) -> u64 {
    snapshot
        .statistics(GroupBy::Function)
        .iter()
        .filter(|s| s.key.starts_with(function))
        .map(|s| s.peak_bytes)
        .sum()
}

fn within(estimate: u64, truth: u64, tolerance: f64) -> bool {
    (estimate as f64 - truth as f64).abs() <= truth as f64 * tolerance
}

fn main() {
    let start = tracealloc::stats();
    let small = small_blocks(20_000);
    let large = large_blocks(100);
    let medium = medium_blocks(2_000);
    let grown = grown_by_push();
    let end = tracealloc::stats();
    let truth_small = 20_000 * 1000 + small.capacity() as u64 * 24;
    let truth_large = 100 * 256 * 1024 + large.capacity() as u64 * 24;
    let truth_medium = 2_000 * 48 * 1024 + medium.capacity() as u64 * 24;
    let truth_grown = grown.capacity() as u64 * 4;
    // Whole-process figures are exact, sampled or not.
    assert_eq!(
        end.live_bytes - start.live_bytes,
        truth_small + truth_large + truth_medium + truth_grown
    );
    assert_eq!(
        end.live_blocks - start.live_blocks,
        20_000 + 1 + 100 + 1 + 2_000 + 1 + 1
    );

    let snapshot = tracealloc::snapshot();
    assert_eq!(snapshot.meta().capture.sampling_bytes, 64 * 1024);
    let (small_est, small_blocks_est) = live_of(&snapshot, "sampling::small_blocks");
    let (large_est, _) = live_of(&snapshot, "sampling::large_blocks");
    let (medium_est, _) = live_of(&snapshot, "sampling::medium_blocks");
    let (grown_est, grown_blocks_est) = live_of(&snapshot, "sampling::grown_by_push");
    assert!(
        within(small_est, truth_small, 0.15),
        "small blocks: {small_est} for {truth_small}"
    );
    assert!(
        within(small_blocks_est, 20_001, 0.15),
        "small blocks: {small_blocks_est} blocks"
    );
    assert!(
        within(large_est, truth_large, 0.10),
        "large blocks: {large_est} for {truth_large}"
    );
    assert!(
        within(medium_est, truth_medium, 0.10),
        "medium blocks: {medium_est} for {truth_medium}"
    );
    assert!(
        within(grown_est, truth_grown, 0.01),
        "grown vector: {grown_est} for {truth_grown}"
    );
    assert_eq!(grown_blocks_est, 1);
    // Far fewer stacks were captured than blocks allocated.
    assert!(
        snapshot.profiler().stacks_captured < 50,
        "{}",
        snapshot.profiler().stacks_captured
    );

    drop((small, large, medium, grown));
    let freed = tracealloc::snapshot();
    for function in [
        "sampling::small_blocks",
        "sampling::large_blocks",
        "sampling::medium_blocks",
        "sampling::grown_by_push",
    ] {
        assert_eq!(
            live_of(&freed, function),
            (0, 0),
            "{function} after freeing"
        );
        // The peak was with everything live, as the first snapshot saw it (snapshots allocate
        // untracked): each site's estimate at the peak is its live estimate then, exactly.
        assert_eq!(
            peak_of(&freed, function),
            live_of(&snapshot, function).0,
            "{function} at the peak"
        );
    }
    assert_eq!(tracealloc::stats().live_bytes, start.live_bytes);

    let vectors = small_vectors_grown(100_000);
    let truth_vectors = 100_000 * 256 + vectors.capacity() as u64 * 24;
    let (vectors_est, _) = live_of(&tracealloc::snapshot(), "sampling::small_vectors_grown");
    assert!(
        within(vectors_est, truth_vectors, 0.15),
        "vectors grown by reallocs: {vectors_est} for {truth_vectors}"
    );
    drop(vectors);

    // A measure in sampled mode: its counts stay exact.
    let m = tracealloc::measure(|| drop(small_blocks(100)));
    assert_eq!(
        (m.allocations, m.bytes),
        (101, 100 * 1000 + 100 * 24),
        "{m}"
    );
    assert!(m.sampled && m.to_string().contains("estimates"), "{m}");
    println!(
        "sampling ok: small {small_est} for {truth_small}, large {large_est} for {truth_large}, medium {medium_est} for {truth_medium}, grown {grown_est} for {truth_grown}, vectors {vectors_est} for {truth_vectors}"
    );
}
