//! The benchmark driver: runs W1, W2, W4 and W3 under the system allocator, jemalloc, tracealloc,
//! dhat-rs (and heaptrack when installed), each in its own process, and prints one table of medians
//! with ns per allocation event and ratios to the system allocator, side by side.
//!
//! Each round runs every variant once, so a slow spell of a shared machine falls on all of them
//! rather than on whichever ran then. The one-thread workloads (W1, W3) are pinned to one core with
//! `taskset` when it is installed; W2 and W4 need the cores they split their work over.
//!
//! `cargo run --release -p tracealloc-examples --features jemalloc --bin bench -- [runs] [scale]`

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Run {
    workload_ns: f64,
    peak_rss: f64,
}

fn run(
    program: &Path,
    prefix: &[&str],
    workload: &str,
    scale: f64,
    pin: bool,
) -> Option<(Run, Option<u64>)> {
    let pin: &[&str] = if pin { &["taskset", "-c", "0"] } else { &[] };
    let command: Vec<String> = pin
        .iter()
        .chain(prefix)
        .map(|s| s.to_string())
        .chain([program.display().to_string()])
        .chain([workload.to_owned(), scale.to_string()])
        .collect();
    let (cmd, args) = command.split_first()?;
    let out = Command::new(cmd)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    // Our programs print `workload_ns peak_rss` then, for tracealloc, the event count; heaptrack
    // interleaves its own lines, which hold no such numbers.
    let text = String::from_utf8_lossy(&out.stdout);
    let numbers: Vec<Vec<f64>> = text
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .map(|t| t.parse::<f64>().ok())
                .collect::<Option<Vec<_>>>()
        })
        .filter(|n| !n.is_empty())
        .collect();
    let first = numbers.iter().find(|n| n.len() == 2)?;
    let (workload_ns, peak_rss) = (first[0], first[1]);
    let events = numbers.iter().find(|n| n.len() == 1).map(|n| n[0] as u64);
    Some((
        Run {
            workload_ns,
            peak_rss,
        },
        events,
    ))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let scale: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let dir: PathBuf = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let heaptrack = Command::new("heaptrack")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let taskset = Command::new("taskset")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let tmp = std::env::temp_dir().join("tracealloc-bench-heaptrack");
    let tmp_str = tmp.display().to_string();
    let mut variants: Vec<(&str, PathBuf, Vec<&str>)> = vec![
        ("system", dir.join("bench-system"), vec![]),
        ("jemalloc", dir.join("bench-jemalloc"), vec![]),
        ("tracealloc", dir.join("bench-tracealloc"), vec![]),
        ("dhat-rs", dir.join("bench-dhat"), vec![]),
        (
            "tracealloc over jemalloc",
            dir.join("bench-tracealloc-jemalloc"),
            vec![],
        ),
        (
            "tracealloc sampled",
            dir.join("bench-tracealloc-sampled"),
            vec![],
        ),
        (
            "tracealloc labeled",
            dir.join("bench-tracealloc-labeled"),
            vec![],
        ),
        (
            "tracealloc with lifetimes",
            dir.join("bench-tracealloc"),
            vec!["env", "TRACEALLOC_LIFETIMES=1"],
        ),
        (
            "tracealloc sampled, capture off",
            dir.join("bench-tracealloc-sampled"),
            vec!["env", "TRACEALLOC_CAPTURE_AT_START=0"],
        ),
    ];
    if heaptrack {
        variants.push((
            "heaptrack",
            dir.join("bench-system"),
            vec!["heaptrack", "--raw", "-o", &tmp_str],
        ));
    }
    println!(
        "tracealloc benchmark: {runs} runs per cell, each round running every variant once, medians, \
         scale {scale}{}; ratio = time / system's time",
        if taskset {
            ", W1 and W3 pinned to one core"
        } else {
            ""
        }
    );
    println!(
        "(workload time measured in-process, so start-up and the profilers' exit work are not counted)\n"
    );
    println!(
        "| workload | events | system ns/event | jemalloc | tracealloc | tracealloc ns/event overhead | tracealloc over jemalloc | tracealloc sampled 512 KiB | tracealloc, every allocation labeled | tracealloc with lifetimes | tracealloc sampled, capture off | dhat-rs | heaptrack | tracealloc peak RSS / system |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for workload in ["w1", "w2", "w4", "w3"] {
        let pin = taskset && matches!(workload, "w1" | "w3");
        let mut samples: Vec<Vec<Run>> = variants.iter().map(|_| Vec::new()).collect();
        let mut events = None;
        for _ in 0..runs {
            for ((_, program, prefix), samples) in variants.iter().zip(&mut samples) {
                if let Some((r, e)) = run(program, prefix, workload, scale, pin) {
                    events = events.or(e);
                    samples.push(r);
                }
            }
        }
        let medians: Vec<Option<(f64, f64)>> = samples
            .iter()
            .map(|samples| {
                (!samples.is_empty()).then(|| {
                    (
                        median(samples.iter().map(|r| r.workload_ns).collect()),
                        median(samples.iter().map(|r| r.peak_rss).collect()),
                    )
                })
            })
            .collect();
        let system = medians[0].expect("the system allocator run must work");
        let events = events.unwrap_or(1) as f64;
        let ratio = |i: usize| match medians.get(i).copied().flatten() {
            Some(m) => format!("{:.2}x", m.0 / system.0),
            None => "n/a".to_owned(),
        };
        let ours = medians[2]
            .map(|m| format!("{:.1}", (m.0 - system.0) / events))
            .unwrap_or_default();
        let rss = medians[2]
            .map(|m| format!("{:.2}x", m.1 / system.1))
            .unwrap_or_default();
        println!(
            "| {} | {:.2}M | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            workload.to_uppercase(),
            events / 1e6,
            system.0 / events,
            ratio(1),
            ratio(2),
            ours,
            ratio(4),
            ratio(5),
            ratio(6),
            ratio(7),
            ratio(8),
            ratio(3),
            ratio(9),
            rss
        );
    }
    for ext in ["", ".zst", ".gz"] {
        std::fs::remove_file(format!("{tmp_str}{ext}")).ok();
    }
}
