//! Changing the sampling interval while the program runs (`tracealloc::set_sampling_interval`, the
//! control socket's `sample`): blocks sampled before the change keep the weight of the interval
//! they were sampled at, so every site's estimate stays unbiased, a site's live estimate returns to
//! exactly zero when its blocks are freed, and the whole-process figures stay exact.
//!
//! Sampled every 64 KiB: `a_blocks` keeps N blocks, the interval changes to 4 KiB, `a_blocks`
//! keeps K more (the same stack, now in two records the snapshot merges) and `b_blocks` M; half
//! of A's blocks are freed and a quarter resized (`resize_some`). Each live estimate must be
//! within 4 standard errors of the truth. Charging the frees with the current interval instead
//! (the naive change) puts A's estimate near twice its truth.

use tracealloc::GroupBy;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system().sampled(COARSE);

const COARSE: u64 = 64 * 1024;
const FINE: u64 = 4 * 1024;
const SIZE: usize = 1000;
const N: usize = 20_000;
const K: usize = 10_000;
const M: usize = 20_000;

#[inline(never)]
fn a_blocks(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|_| vec![1u8; SIZE]).collect()
}

#[inline(never)]
fn b_blocks(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|_| vec![2u8; SIZE]).collect()
}

/// Shrinks every block of `blocks` to `SIZE / 2` bytes (a realloc each): they leave their site at
/// the weight they were sampled with, and are sampled afresh here.
#[inline(never)]
fn resize_some(blocks: &mut [Vec<u8>]) {
    for block in blocks {
        block.truncate(SIZE / 2);
        block.shrink_to_fit();
    }
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

/// Whether `estimate` is within 4 standard errors of `truth`; `variance` is the estimate's
/// (for blocks of `s` bytes sampled every `m` on average, about `s * m` per block).
fn within(what: &str, estimate: u64, truth: u64, variance: f64) -> Result<String, String> {
    let error = variance.sqrt();
    let off = (estimate as f64 - truth as f64).abs() / error;
    let line = format!("{what}: {estimate} for {truth} ({off:.2} standard errors of {error:.0})");
    if off <= 4.0 { Ok(line) } else { Err(line) }
}

fn main() {
    let start = tracealloc::stats();
    assert_eq!(tracealloc::sampling_interval(), COARSE);
    assert!(tracealloc::set_sampling_interval(0).is_err());
    assert!(tracealloc::set_sampling_interval((1 << 62) + 1).is_err());
    assert_eq!(tracealloc::sampling_interval(), COARSE);

    let mut a = a_blocks(N);
    tracealloc::set_sampling_interval(FINE).expect("sampled mode");
    assert_eq!(tracealloc::sampling_interval(), FINE);
    a.extend(a_blocks(K));
    let b = b_blocks(M);
    let a_capacity = a.capacity();
    let b_capacity = b.capacity();
    // Half of A's blocks freed, every other one (which of them were sampled plays no part), and
    // a quarter resized: the first 5,000 of each epoch's kept ones.
    let mut kept: Vec<Vec<u8>> = a.into_iter().step_by(2).collect();
    let (before, after) = kept.split_at_mut(N / 2);
    resize_some(&mut before[..N / 4]);
    resize_some(&mut after[..K / 4]);
    let end = tracealloc::stats();

    // The whole-process figures are exact, whatever the interval.
    let kept_bytes = (kept.len() - N / 4 - K / 4) * SIZE + (N / 4 + K / 4) * (SIZE / 2);
    let vectors = (kept.capacity() + b_capacity) * 24;
    assert_eq!(
        end.live_bytes - start.live_bytes,
        (kept_bytes + M * SIZE + vectors) as u64
    );
    assert_eq!(
        end.live_blocks - start.live_blocks,
        (kept.len() + M + 2) as u64
    );
    // A's vector of blocks (`a_capacity` slots) was freed by `into_iter`, its blocks moved.
    let _ = a_capacity;

    let snapshot = tracealloc::snapshot();
    let capture = &snapshot.meta().capture;
    assert_eq!(capture.sampling_bytes, FINE);
    assert_eq!(capture.sampling_changes, 1);
    assert_eq!(capture.sampling_history, [COARSE, FINE]);

    let s = SIZE as f64;
    // A: its N/2 - N/4 unresized blocks of the coarse epoch, K/2 - K/4 of the fine one.
    let a_truth = ((N / 2 - N / 4) + (K / 2 - K / 4)) * SIZE;
    let a_variance =
        (N / 2 - N / 4) as f64 * s * COARSE as f64 + (K / 2 - K / 4) as f64 * s * FINE as f64;
    // B: M blocks and their vector (one block of 480 KB, sampled with weight about 1).
    let b_truth = M * SIZE + b_capacity * 24;
    let b_variance = M as f64 * s * FINE as f64 + (b_capacity * 24) as f64 * FINE as f64;
    // The resized blocks, now at `resize_some` (sampled at the fine interval).
    let r_truth = (N / 4 + K / 4) * (SIZE / 2);
    let r_variance = (N / 4 + K / 4) as f64 * (s / 2.0) * FINE as f64;
    let (a_est, _) = live_of(&snapshot, "sampling_interval::a_blocks");
    let (b_est, _) = live_of(&snapshot, "sampling_interval::b_blocks");
    let (r_est, _) = live_of(&snapshot, "sampling_interval::resize_some");
    // Every site's estimates add up to an estimate of the process's live bytes: the program's
    // other blocks (the kept vector, the runtime's) are sampled at one interval or the other.
    let sites_live: u64 = snapshot.sites().iter().map(|site| site.live_bytes).sum();
    let others = end.live_bytes - (a_truth + b_truth + r_truth) as u64;
    let total_variance =
        a_variance + b_variance + r_variance + others as f64 * COARSE as f64 + COARSE.pow(2) as f64;
    let checks = [
        within("a_blocks", a_est, a_truth as u64, a_variance),
        within("b_blocks", b_est, b_truth as u64, b_variance),
        within("resize_some", r_est, r_truth as u64, r_variance),
        within("all sites", sites_live, end.live_bytes, total_variance),
    ];
    let report: Vec<String> = checks
        .iter()
        .map(|c| c.clone().unwrap_or_else(|e| e))
        .collect();
    assert!(checks.iter().all(Result::is_ok), "{report:#?}");

    // Back to the coarse interval: its epoch again (no new one), one more change.
    tracealloc::set_sampling_interval(COARSE).expect("sampled mode");
    let again = b_blocks(M);
    let snapshot = tracealloc::snapshot();
    let capture = &snapshot.meta().capture;
    assert_eq!(capture.sampling_bytes, COARSE);
    assert_eq!(capture.sampling_changes, 2);
    assert_eq!(capture.sampling_history, [COARSE, FINE]);

    // Every block freed: each site's live estimate returns to exactly zero, whichever interval
    // its blocks were sampled, resized or freed at.
    drop((kept, b, again));
    let freed = tracealloc::snapshot();
    for function in ["a_blocks", "b_blocks", "resize_some"] {
        let function = format!("sampling_interval::{function}");
        assert_eq!(
            live_of(&freed, &function),
            (0, 0),
            "{function} after freeing"
        );
    }
    println!("sampling interval ok: {report:?}");
}
