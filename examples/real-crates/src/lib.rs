//! W5 of `shared/workloads.md`: real crates with deep stacks, run the same way under every allocator.
//!
//! - `syn`: parses a large Rust source file 5 times with `syn` (recursive descent, 40-60 frames deep).
//! - `json`: parses and re-serializes a generated JSON document with `serde_json`.
//! - `regex`: compiles 200 patterns with `regex` and matches them against 64 KiB of the same text.
//! - `depth<N>`: 400,000 allocations `N` frames deep, for the cost of a stack's depth.
//!
//! Each `real-*` binary runs one workload (`real-tracealloc syn`) and prints `workload_ns events`;
//! the `bench-real` driver builds them in debug and release, with and without frame pointers, and
//! prints one table.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

/// The source file the `syn` and `regex` workloads read: zerocopy 0.8's `src/lib.rs` (315 KB) from
/// the cargo registry, as `workloads.md` defines W5, or `TRACEALLOC_W5_INPUT`.
pub fn input_path() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("TRACEALLOC_W5_INPUT") {
        return Ok(PathBuf::from(path));
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let registry = cargo_home.join("registry").join("src");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&registry)
        .map_err(|e| format!("{}: {e}", registry.display()))?
        .flatten()
        .flat_map(|index| {
            std::fs::read_dir(index.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter(|krate| {
            krate
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("zerocopy-0.8."))
        })
        .map(|krate| krate.path().join("src").join("lib.rs"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop().ok_or_else(|| {
        format!(
            "no zerocopy-0.8.*/src/lib.rs under {} (run `cargo fetch` in this workspace, or set TRACEALLOC_W5_INPUT)",
            registry.display()
        )
    })
}

fn read_input() -> String {
    let path = input_path().unwrap_or_else(|e| {
        eprintln!("bench-real: {e}");
        std::process::exit(2);
    });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("bench-real: {}: {e}", path.display());
        std::process::exit(2);
    })
}

/// Parses `source` 5 times; returns the number of items seen (so the work is not optimized away).
pub fn syn_workload(source: &str) -> usize {
    (0..5)
        .map(|_| {
            let file = syn::parse_file(source).expect("the input parses");
            black_box(&file).items.len()
        })
        .sum()
}

/// A deterministic JSON document of about `records` objects with nested arrays and strings.
pub fn json_document(records: usize) -> String {
    let mut out = String::from("[");
    for i in 0..records {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"id":{i},"name":"record number {i}","tags":["a{}","b{}","c"],"score":{}.{},"nested":{{"depth":[{i},{},{{"leaf":"{}"}}]}}}}"#,
            i % 7,
            i % 13,
            i % 1000,
            i % 97,
            i * 3,
            "x".repeat(i % 40)
        ));
    }
    out.push(']');
    out
}

/// Parses `document` into a `Value` and prints it back, 3 times.
pub fn json_workload(document: &str) -> usize {
    (0..3)
        .map(|_| {
            let value: serde_json::Value = serde_json::from_str(document).expect("valid JSON");
            serde_json::to_string(&value).expect("serializes").len()
        })
        .sum()
}

/// Compiles 200 patterns and counts their matches in `text`.
pub fn regex_workload(text: &str) -> usize {
    let words = [
        "fn", "impl", "unsafe", "pub", "struct", "enum", "trait", "where", "let", "match",
    ];
    // The first 64 KiB: an unoptimized regex spends seconds matching, and the point here is the
    // compiler's allocations.
    let end = (0..=text.len().min(64 * 1024))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let text = &text[..end];
    let mut matches = 0;
    for i in 0..200 {
        let word = words[i % words.len()];
        let pattern = match i % 4 {
            0 => format!(r"\b{word}\s+\w+"),
            1 => format!(r"{word}[a-z_]{{{},}}", i % 5 + 1),
            2 => format!(r"(?m)^\s*{word}\b.*\d"),
            _ => format!(r"[A-Z]\w*{}\w*", &word[..1]),
        };
        let re = regex::Regex::new(&pattern).expect("valid pattern");
        matches += re.find_iter(text).count();
    }
    matches
}

/// Allocations made by [`depth_workload`].
pub const DEPTH_ALLOCATIONS: usize = 400_000;

#[inline(never)]
fn leaf(site: usize, out: &mut Vec<Box<[u8]>>) {
    let block = match site {
        0 => vec![0u8; 24],
        1 => vec![1u8; 48],
        2 => vec![2u8; 96],
        _ => vec![3u8; 200],
    };
    out.push(block.into_boxed_slice());
}

#[inline(never)]
fn descend(depth: u32, site: usize, out: &mut Vec<Box<[u8]>>) {
    if depth == 0 {
        leaf(site, out);
    } else {
        descend(black_box(depth - 1), site, out);
    }
    black_box(&*out);
}

/// The cost of a stack's depth: [`DEPTH_ALLOCATIONS`] allocations, each `depth` frames below the
/// workload (plus a few for `main` and the allocation itself), from 4 sites.
pub fn depth_workload(depth: u32) -> usize {
    let mut out = Vec::with_capacity(64);
    let mut seen = 0;
    for i in 0..DEPTH_ALLOCATIONS {
        descend(depth, i % 4, &mut out);
        if out.len() == 64 {
            seen += out.len();
            out.clear();
        }
    }
    seen
}

/// Runs the workload named on the command line and prints `workload_ns`.
pub fn main_for(allocator: &str) {
    let name = std::env::args().nth(1).unwrap_or_else(|| "syn".to_owned());
    let (elapsed, seen) = match name.as_str() {
        "syn" => {
            let source = read_input();
            let start = Instant::now();
            let seen = syn_workload(&source);
            (start.elapsed(), seen)
        }
        "json" => {
            let document = json_document(20_000);
            let start = Instant::now();
            let seen = json_workload(&document);
            (start.elapsed(), seen)
        }
        "regex" => {
            let source = read_input();
            let start = Instant::now();
            let seen = regex_workload(&source);
            (start.elapsed(), seen)
        }
        other => match other.strip_prefix("depth").and_then(|d| d.parse().ok()) {
            Some(depth) => {
                let start = Instant::now();
                let seen = depth_workload(depth);
                (start.elapsed(), seen)
            }
            None => {
                eprintln!("{allocator}: unknown workload {other:?} (syn, json, regex or depth<N>)");
                std::process::exit(2);
            }
        },
    };
    black_box(seen);
    println!("{}", elapsed.as_nanos());
}
