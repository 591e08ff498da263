//! The real-crates benchmark driver (W5): builds `real-system`, `real-tracealloc` and `real-dhat`
//! the ways users build them, runs each workload under each allocator in its own process, and
//! prints one table of medians with the ratios to the system allocator in the same build.
//!
//! ```sh
//! cargo run --release -p tracealloc-real-crates --bin bench-real -- [runs] [--release] [--only TEXT] [workloads...]
//! ```
//!
//! Workloads: `syn`, `json`, `regex` (the default), and `depth<N>` (400,000 allocations `N` frames
//! deep: the table then also gives the profiler's cost in ns per allocation). `--release` runs
//! the release builds only; `--only TEXT` the builds whose name contains TEXT.
//!
//! Builds (each in its own target directory under `target/bench-real/`):
//! - `debug`: a plain `cargo build`, no frame pointers, the profiler unoptimized;
//! - `debug, recommended`: the README's debug setup (frame pointers, `opt-level = 3` for tracealloc);
//! - `debug, frame pointers`: frame pointers only;
//! - `release, frame pointers` and `release, no frame pointers`.
//!
//! Processes are pinned to one core with `taskset` when it is installed (the figures vary much
//! less); the time is measured in the process, around the workload only.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Build {
    name: &'static str,
    release: bool,
    frame_pointers: bool,
    optimized_profiler: bool,
}

const BUILDS: &[Build] = &[
    Build {
        name: "debug",
        release: false,
        frame_pointers: false,
        optimized_profiler: false,
    },
    Build {
        name: "debug, recommended setup",
        release: false,
        frame_pointers: true,
        optimized_profiler: true,
    },
    Build {
        name: "debug, frame pointers",
        release: false,
        frame_pointers: true,
        optimized_profiler: false,
    },
    Build {
        name: "release, frame pointers",
        release: true,
        frame_pointers: true,
        optimized_profiler: true,
    },
    Build {
        name: "release, no frame pointers",
        release: true,
        frame_pointers: false,
        optimized_profiler: true,
    },
];

const ALLOCATORS: [&str; 3] = ["real-system", "real-tracealloc", "real-dhat"];

/// Builds the three binaries for `build`; returns the directory holding them.
fn compile(workspace: &Path, build: &Build, index: usize) -> Result<PathBuf, String> {
    let target = workspace
        .join("target")
        .join("bench-real")
        .join(index.to_string());
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .current_dir(workspace)
        .args(["build", "--quiet", "-p", "tracealloc-real-crates"])
        .args(ALLOCATORS.iter().flat_map(|b| ["--bin", b]))
        .arg("--target-dir")
        .arg(&target)
        .env(
            "RUSTFLAGS",
            if build.frame_pointers {
                "-C force-frame-pointers=yes"
            } else {
                "-C force-frame-pointers=no"
            },
        );
    // This workspace optimizes tracealloc in dev builds: set the level either way.
    if build.release {
        cargo.arg("--release");
    } else if build.optimized_profiler {
        cargo.args(["--config", "profile.dev.package.tracealloc.opt-level=3"]);
    } else {
        cargo.args(["--config", "profile.dev.package.tracealloc.opt-level=0"]);
    }
    let status = cargo
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build for {:?} failed", build.name));
    }
    Ok(target.join(if build.release { "release" } else { "debug" }))
}

/// One run: the workload's time in ms, or `None` when the program failed.
fn run(program: &Path, workload: &str, pin: bool) -> Option<f64> {
    let mut command = if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", "0"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let out = command.arg(workload).stderr(Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e6)
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied()
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let release_only = args.next_if(|a| a == "--release").is_some();
    let only: Option<String> = args.next_if(|a| a == "--only").and_then(|_| args.next());
    let mut workloads: Vec<String> = args.collect();
    if workloads.is_empty() {
        workloads = vec!["syn".into(), "json".into(), "regex".into()];
    }
    if let Err(e) = tracealloc_real_crates::input_path() {
        eprintln!("bench-real: {e}");
        std::process::exit(2);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the workspace root")
        .to_path_buf();
    let pin = Command::new("taskset")
        .args(["-c", "0", "true"])
        .status()
        .is_ok_and(|s| s.success());
    println!(
        "tracealloc on real crates (W5): {runs} runs per cell, medians of the workload's time{}; \
         ratio = time / the system allocator's time in the same build\n",
        if pin { ", pinned to one core" } else { "" }
    );
    println!("| build | workload | system | tracealloc | dhat-rs |");
    println!("|---|---|---|---|---|");
    for (index, build) in BUILDS.iter().enumerate() {
        if (release_only && !build.release)
            || only.as_deref().is_some_and(|o| !build.name.contains(o))
        {
            continue;
        }
        let dir = match compile(&workspace, build, index) {
            Ok(dir) => dir,
            Err(e) => {
                eprintln!("bench-real: {e}");
                std::process::exit(1);
            }
        };
        for workload in &workloads {
            let mut medians = Vec::new();
            for allocator in ALLOCATORS {
                let program = dir.join(allocator);
                let times: Vec<f64> = (0..runs)
                    .filter_map(|_| run(&program, workload, pin))
                    .collect();
                medians.push(median(times));
            }
            let Some(system) = medians[0] else {
                eprintln!("bench-real: the system allocator's run of {workload} failed");
                std::process::exit(1);
            };
            let per_allocation = workload.starts_with("depth");
            let cell = |m: Option<f64>| match m {
                Some(ms) if per_allocation => format!(
                    "{ms:.0} ms ({:.2}x, +{:.0} ns per allocation)",
                    ms / system,
                    (ms - system) * 1e6 / tracealloc_real_crates::DEPTH_ALLOCATIONS as f64
                ),
                Some(ms) => format!("{ms:.0} ms ({:.2}x)", ms / system),
                None => "failed".to_owned(),
            };
            println!(
                "| {} | {workload} | {system:.0} ms | {} | {} |",
                build.name,
                cell(medians[1]),
                cell(medians[2])
            );
        }
    }
}
