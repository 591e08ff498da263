//! Shared pieces of the test programs: deterministic workloads and small helpers.

use std::hint::black_box;

/// A tiny deterministic generator (an LCG), so every run allocates the same sizes in the same order.
#[derive(Debug, Clone)]
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Lcg(seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407))
    }

    pub fn next_value(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_value() % n
    }
}

/// The oracle's single-threaded work: boxes, vectors grown by push (reallocs), strings, shrinks,
/// frees in random order; returns what it keeps (every 16th object).
#[inline(never)]
pub fn oracle_work(seed: u64, rounds: usize) -> Vec<Vec<u8>> {
    let mut rng = Lcg::new(seed);
    let mut live: Vec<Vec<u8>> = Vec::new();
    let mut kept = Vec::new();
    for i in 0..rounds {
        match rng.below(4) {
            0 => live.push(vec![7u8; 8 + rng.below(500) as usize]),
            1 => {
                let mut v = Vec::new();
                for b in 0..rng.below(300) {
                    v.push(b as u8);
                }
                live.push(v);
            }
            2 => live.push(format!("item {i} {}", rng.next_value()).into_bytes()),
            _ => {
                if !live.is_empty() {
                    let at = rng.below(live.len() as u64) as usize;
                    let mut v = live.swap_remove(at);
                    v.truncate(v.len() / 2);
                    v.shrink_to_fit();
                    black_box(&v);
                }
            }
        }
        if i % 16 == 0
            && let Some(v) = live.pop()
        {
            kept.push(v);
        }
        if live.len() > 64 {
            let at = rng.below(live.len() as u64) as usize;
            drop(live.swap_remove(at));
        }
    }
    drop(live);
    kept
}

/// The oracle's multi-threaded work: `threads` threads each run [`oracle_work`]; what they keep is
/// handed to the calling thread, which frees half of it (cross-thread frees) and returns the rest.
pub fn oracle_threads(threads: usize, rounds: usize) -> Vec<Vec<u8>> {
    let handles: Vec<_> = (0..threads)
        .map(|t| std::thread::spawn(move || oracle_work(t as u64 + 1, rounds)))
        .collect();
    let mut kept = Vec::new();
    for handle in handles {
        let mut got = handle.join().expect("worker panicked");
        let half = got.len() / 2;
        got.truncate(half);
        kept.append(&mut got);
    }
    kept
}

/// Figures printed by the oracle programs, one JSON line, compared by the oracle test.
pub fn print_figures(
    total_blocks: u64,
    total_bytes: u64,
    live_blocks: u64,
    live_bytes: u64,
    peak_blocks: u64,
    peak_bytes: u64,
) {
    println!(
        "{{\"total_blocks\":{total_blocks},\"total_bytes\":{total_bytes},\"live_blocks\":{live_blocks},\"live_bytes\":{live_bytes},\"peak_blocks\":{peak_blocks},\"peak_bytes\":{peak_bytes}}}"
    );
}

/// The one group whose key ends with `suffix` (a `file!():line` pair), or a panic naming the keys.
pub fn stat_ending_with<'s>(stats: &'s [tracealloc::Stat], suffix: &str) -> &'s tracealloc::Stat {
    let found: Vec<_> = stats.iter().filter(|s| s.key.ends_with(suffix)).collect();
    match found.as_slice() {
        [one] => one,
        _ => panic!(
            "expected one key ending with {suffix}, found {}: {:#?}",
            found.len(),
            stats.iter().map(|s| &s.key).collect::<Vec<_>>()
        ),
    }
}

#[inline(never)]
fn sample_env_blocks() -> Vec<Vec<u8>> {
    (0..2000).map(|_| vec![5u8; 1000]).collect()
}

/// The body of the `sample_env*` programs: allocates 2,000 blocks of 1,000 bytes at one site and
/// prints the mode the profiler ran in and that site's live blocks, as
/// `sampling <bytes> from_env <bool> blocks <n>`.
pub fn sample_env_report() {
    let blocks = sample_env_blocks();
    let snapshot = tracealloc::snapshot();
    let site: u64 = snapshot
        .statistics(tracealloc::GroupBy::Function)
        .iter()
        .filter(|s| s.key.contains("sample_env_blocks"))
        .map(|s| s.live_blocks)
        .sum();
    let capture = &snapshot.meta().capture;
    println!(
        "sampling {} from_env {} blocks {site}",
        capture.sampling_bytes, capture.sampling_from_env
    );
    std::hint::black_box(blocks);
}

/// The line of a stack's innermost frame in [`oracle_work`]: the program point of the oracle
/// workload that made the allocation (the oracle test groups dhat-rs's program points the same way).
fn workload_line(snapshot: &tracealloc::model::Snapshot, stack: u32) -> Option<u32> {
    snapshot.stacks[stack as usize]
        .frames
        .iter()
        .map(|&f| &snapshot.frames[f as usize])
        .find(|f| {
            f.function.ends_with("oracle_work")
                && f.file
                    .as_deref()
                    .is_some_and(|p| p.ends_with("tests/src/lib.rs"))
        })
        .and_then(|f| f.line)
}

/// Prints, as one JSON object keyed by line of this file, each program point's figures at the
/// peak and in total: `{"37": [peak_bytes, peak_blocks, total_bytes, total_blocks], ...}`; with
/// `lifetimes`, also the point's own maximum and what is live now:
/// `[..., max_bytes, max_blocks, live_bytes, live_blocks]` (dhat-rs's gb, gbk, tb, tbk, mb, mbk,
/// eb, ebk).
pub fn print_program_points(snapshot: &tracealloc::Snapshot, lifetimes: bool) {
    let model = snapshot.as_model();
    let mut points = std::collections::BTreeMap::<u32, Vec<u64>>::new();
    for site in &model.sites {
        if let Some(line) = workload_line(model, site.stack) {
            let p = points
                .entry(line)
                .or_insert_with(|| vec![0; if lifetimes { 8 } else { 4 }]);
            p[0] += site.peak_bytes;
            p[1] += site.peak_blocks;
            p[2] += site.total_bytes;
            p[3] += site.total_blocks;
            if lifetimes {
                p[4] += site.max_bytes;
                p[5] += site.max_blocks;
                p[6] += site.live_bytes;
                p[7] += site.live_blocks;
            }
        }
    }
    let json: serde_json::Map<String, serde_json::Value> = points
        .into_iter()
        .map(|(line, p)| (line.to_string(), serde_json::json!(p)))
        .collect();
    println!("{}", serde_json::Value::Object(json));
}

/// The body of the `oracle_tracealloc*` programs: the oracle workload named by the argument
/// (`single` or `threads`), its figures relative to the start printed as one JSON line; with
/// `points`, the single-threaded workload's figures per program point instead.
pub fn oracle_main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    if mode == "points" || mode == "lifetime-points" {
        tracealloc::reset_peak();
        let kept = oracle_work(42, 20_000);
        let snapshot = tracealloc::snapshot();
        let lifetimes = snapshot.meta().capture.lifetimes;
        assert_eq!(lifetimes, mode == "lifetime-points", "lifetimes recorded");
        print_program_points(&snapshot, lifetimes);
        drop(kept);
        return;
    }
    tracealloc::reset_peak();
    let start = tracealloc::stats();
    let kept = match mode.as_str() {
        "single" => oracle_work(42, 20_000),
        _ => oracle_threads(4, 10_000),
    };
    let end = tracealloc::stats();
    drop(kept);
    print_figures(
        end.total_blocks - start.total_blocks,
        end.total_bytes - start.total_bytes,
        end.live_blocks - start.live_blocks,
        end.live_bytes - start.live_bytes,
        end.peak_blocks - start.live_blocks,
        end.peak_bytes - start.live_bytes,
    );
}
