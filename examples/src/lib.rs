//! The benchmark workloads (W1, W2, W4, W3 of `shared/workloads.md`), shared by one binary per
//! allocator so that every allocator runs exactly the same work.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

/// A deterministic generator, so every allocator sees the same sizes in the same order.
#[derive(Debug, Clone)]
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Lcg(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// An object of the workload: one of four shapes.
#[derive(Debug)]
pub enum Object {
    Boxed(Box<[u8]>),
    Text(String),
    Bytes(Vec<u8>),
    Grown(Vec<u32>),
}

#[inline(never)]
fn make(rng: &mut Lcg) -> Object {
    let size = 8 + rng.below(505) as usize;
    match rng.below(8) {
        0..=2 => Object::Boxed(vec![1u8; size].into_boxed_slice()),
        3..=4 => {
            let mut s = String::with_capacity(size);
            s.push('w');
            Object::Text(s)
        }
        5..=6 => Object::Bytes(Vec::with_capacity(size)),
        _ => {
            let mut v = Vec::new();
            for i in 0..(8 + size / 8) as u32 {
                v.push(i);
            }
            Object::Grown(v)
        }
    }
}

/// Makes an object under `depth` more frames of `#[inline(never)]` helpers.
#[inline(never)]
fn nested(depth: u32, rng: &mut Lcg) -> Object {
    if depth == 0 {
        return make(rng);
    }
    let object = nested(depth - 1, rng);
    black_box(object)
}

/// W1's work on one thread: `ops` objects made under 3-12 helper frames, freed in random and batch
/// order, every 64th kept; returns the kept ones.
#[inline(never)]
pub fn w1(ops: usize, seed: u64) -> Vec<Object> {
    let mut rng = Lcg::new(seed);
    let mut ring: Vec<Option<Object>> = (0..256).map(|_| None).collect();
    let mut kept = Vec::with_capacity(ops / 64 + 1);
    for i in 0..ops {
        let depth = 3 + rng.below(10) as u32;
        let object = nested(depth, &mut rng);
        if i % 64 == 0 {
            kept.push(object);
            continue;
        }
        let slot = rng.below(256) as usize;
        ring[slot] = Some(object);
        if i % 1024 == 0 {
            for slot in ring.iter_mut().take(64) {
                *slot = None;
            }
        }
    }
    kept
}

/// W2/W4: W1's work split over `threads` threads; the kept objects are freed by the caller.
pub fn split(ops: usize, threads: usize) -> usize {
    let handles: Vec<_> = (0..threads)
        .map(|t| std::thread::spawn(move || w1(ops / threads, t as u64 + 1)))
        .collect();
    let mut kept = Vec::new();
    for h in handles {
        kept.extend(h.join().expect("worker"));
    }
    let n = kept.len();
    drop(kept);
    n
}

/// W3: a `HashMap<String, Vec<u32>>` of `entries` built with `format!` keys and grown vectors,
/// serialized with `format!`, then half of it dropped.
#[inline(never)]
pub fn w3(entries: usize) -> usize {
    let mut rng = Lcg::new(3);
    let mut map: HashMap<String, Vec<u32>> = HashMap::new();
    for i in 0..entries {
        let key = format!("user:{i}:{}", rng.below(1_000_000));
        let values = map.entry(key).or_default();
        for v in 0..(16 + rng.below(200)) as u32 {
            values.push(v);
        }
    }
    let mut out = String::new();
    for (k, v) in &map {
        out.push_str(&format!("{k}={}\n", v.len()));
    }
    let keys: Vec<String> = map.keys().take(entries / 2).cloned().collect();
    for k in keys {
        map.remove(&k);
    }
    black_box(&out);
    map.len()
}

/// The default size of each workload.
pub const W1_OPS: usize = 3_800_000;
pub const W3_ENTRIES: usize = 200_000;

/// Runs one workload by name and prints `elapsed_ns peak_rss_bytes` for the driver.
pub fn run_workload(name: &str, scale: f64) {
    let ops = (W1_OPS as f64 * scale) as usize;
    let started = Instant::now();
    match name {
        "w1" => drop(black_box(w1(ops, 1))),
        "w2" => drop(black_box(split(ops, 2))),
        "w4" => drop(black_box(split(ops, 4))),
        "w3" => drop(black_box(w3((W3_ENTRIES as f64 * scale) as usize))),
        other => {
            eprintln!("unknown workload {other}");
            std::process::exit(2);
        }
    }
    let elapsed = started.elapsed().as_nanos();
    println!("{elapsed} {}", peak_rss_bytes());
}

/// The process's peak resident set size (VmHWM).
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// The body of the profiled benchmark binaries: runs the workload named on the command line, then
/// prints the allocation events (allocs + reallocs) the profiler counted, for ns per event.
pub fn run_counting_events() {
    let (name, scale) = args();
    let before = tracealloc::stats().total_blocks;
    run_workload(&name, scale);
    println!("{}", tracealloc::stats().total_blocks - before);
}

/// Workload name and scale from the command line.
pub fn args() -> (String, f64) {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "w1".to_owned());
    let scale = args.next().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    (name, scale)
}
