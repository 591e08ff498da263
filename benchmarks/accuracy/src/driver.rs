//! The driver: runs the workloads in exact and sampled mode and compares their site figures.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::workloads;

const MIB: f64 = 1024.0 * 1024.0;
/// Sites above this are the ones the target speaks of.
const MARKED: u64 = 5 << 20;
/// The target: within 3 standard errors in at least 95% of the runs.
const Z_LIMIT: f64 = 3.0;
const SHARE: f64 = 0.95;

struct Options {
    runs: u64,
    mean: u64,
    workloads: Vec<String>,
    raw: Option<std::path::PathBuf>,
}

fn parse(args: &[OsString]) -> Result<Options, String> {
    let mut o = Options {
        runs: 20,
        mean: 524_288,
        workloads: workloads::ALL
            .iter()
            .filter(|(_, built)| *built)
            .map(|(n, _)| n.to_string())
            .collect(),
        raw: None,
    };
    let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--runs" => o.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--sample" => o.mean = value()?.parse().map_err(|e| format!("--sample: {e}"))?,
            "--workloads" => o.workloads = value()?.split(',').map(str::to_owned).collect(),
            "--raw" => o.raw = Some(value()?.into()),
            "-h" | "--help" => {
                return Err(
                    "usage: accuracy [--runs N] [--sample BYTES] [--workloads a,b] \
                            [--raw FILE.jsonl] | accuracy run <workload>"
                        .to_owned(),
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    for w in &o.workloads {
        match workloads::ALL.iter().find(|(n, _)| n == w) {
            Some((_, true)) => {}
            Some((_, false)) => return Err(format!("workload {w} is not in this build (feature)")),
            None => return Err(format!("unknown workload {w}")),
        }
    }
    if o.runs == 0 || o.mean == 0 {
        return Err("--runs and --sample must be positive".to_owned());
    }
    Ok(o)
}

/// One run's figures.
struct Run {
    sites: HashMap<String, (u64, u64)>, // key -> (live, total)
    stats: Value,
    elapsed: Duration,
}

fn run_once(
    workload: &str,
    extra: &[OsString],
    sample: u64,
    seed: Option<u64>,
    raw: &mut Option<std::fs::File>,
) -> Result<Run, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.arg("run").arg(workload).args(extra);
    // Only the two settings under test; nothing else of the profiler's from the environment.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TRACEALLOC_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("TRACEALLOC_SAMPLE", sample.to_string());
    if let Some(seed) = seed {
        cmd.env("TRACEALLOC_SEED", seed.to_string());
    }
    let start = Instant::now();
    let out = cmd.output().map_err(|e| format!("{workload}: {e}"))?;
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{workload} (sample {sample}, seed {seed:?}) failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or(format!("{workload}: no JSON line"))?;
    if let Some(f) = raw {
        let _ = writeln!(f, "{line}");
    }
    let v: Value = serde_json::from_str(line).map_err(|e| format!("{workload}: {e}"))?;
    if v["sampling_bytes"].as_u64() != Some(sample) {
        return Err(format!(
            "{workload}: ran with sampling {} instead of {sample}",
            v["sampling_bytes"]
        ));
    }
    if sample != 0 && v["sampling_seed"].as_u64() != seed {
        return Err(format!(
            "{workload}: ran with seed {} instead of {seed:?}",
            v["sampling_seed"]
        ));
    }
    let sites = v["sites"]
        .as_array()
        .ok_or("no sites")?
        .iter()
        .map(|s| {
            let key = s["key"].as_str().unwrap_or("?").to_owned();
            let live = s["live_bytes"].as_u64().unwrap_or(0);
            let total = s["total_bytes"].as_u64().unwrap_or(0);
            (key, (live, total))
        })
        .collect();
    Ok(Run {
        sites,
        stats: v["stats"].clone(),
        elapsed,
    })
}

/// One site's comparison, for one figure (live or total).
struct Row {
    key: String,
    exact: u64,
    mean_ratio: f64,
    mean_z: f64,
    sd_z: f64,
    within: u64,
    max_z: f64,
    rerun_z: f64,
}

fn compare(
    key: &str,
    exact: u64,
    rerun: u64,
    estimates: impl Iterator<Item = u64>,
    mean: u64,
) -> Row {
    let se = (mean as f64 * exact as f64).sqrt();
    let (mut n, mut sum, mut sum_z, mut sum_z2, mut within, mut max_z) =
        (0u64, 0.0, 0.0, 0.0, 0, 0.0f64);
    for e in estimates {
        let z = (e as f64 - exact as f64) / se;
        n += 1;
        sum += e as f64;
        sum_z += z;
        sum_z2 += z * z;
        if z.abs() <= Z_LIMIT {
            within += 1;
        }
        max_z = max_z.max(z.abs());
    }
    Row {
        key: key.to_owned(),
        exact,
        mean_ratio: sum / n as f64 / exact as f64,
        mean_z: sum_z / n as f64,
        sd_z: if n > 1 {
            ((sum_z2 - sum_z * sum_z / n as f64) / (n - 1) as f64)
                .max(0.0)
                .sqrt()
        } else {
            0.0
        },
        within,
        max_z,
        rerun_z: (rerun as f64 - exact as f64) / se,
    }
}

fn cell(key: &str) -> String {
    format!("`{}`", key.replace('|', "\\|").replace('`', "'"))
}

fn table(out: &mut String, rows: &[Row], runs: u64, figure: &str) {
    let _ = writeln!(
        out,
        "| site | exact {figure} (MiB) | > 5 MiB | mean sampled/exact | mean z | sd z | within 3 SE | max \\|z\\| | exact rerun (SE) |"
    );
    let _ = writeln!(out, "|---|---:|:-:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {:.2} | {} | {:.3} | {:+.2} | {:.2} | {}/{} | {:.2} | {:+.2} |",
            cell(&r.key),
            r.exact as f64 / MIB,
            if r.exact > MARKED { "yes" } else { "" },
            r.mean_ratio,
            r.mean_z,
            r.sd_z,
            r.within,
            runs,
            r.max_z,
            r.rerun_z,
        );
    }
}

fn meets(r: &Row, runs: u64) -> bool {
    r.within as f64 >= SHARE * runs as f64
}

const STAT_FIELDS: &[&str] = &[
    "total_bytes",
    "total_blocks",
    "live_bytes",
    "live_blocks",
    "peak_bytes",
    "peak_blocks",
];

pub fn main(args: &[OsString]) -> Result<(), String> {
    let o = parse(args)?;
    let mut raw = match &o.raw {
        Some(p) => Some(std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => None,
    };
    let started = Instant::now();
    // The walk's roots, chosen once: every run of the comparison walks the same files.
    let roots: Vec<OsString> =
        workloads::walk_grep::default_roots(workloads::walk_grep::FILE_LIMIT)
            .into_iter()
            .map(Into::into)
            .collect();

    let mut out = String::new();
    let mut summary = Vec::new(); // (workload, figure, sites > 5 MiB, meeting the target)
    let mut misses = Vec::new();
    for w in &o.workloads {
        let extra: &[OsString] = if w == "walk+grep" { &roots } else { &[] };
        eprintln!("{w}: exact runs");
        let exact = run_once(w, extra, 0, None, &mut raw)?;
        let rerun = run_once(w, extra, 0, None, &mut raw)?;
        let mut sampled = Vec::new();
        for seed in 1..=o.runs {
            eprint!("\r{w}: sampled run {seed}/{}", o.runs);
            sampled.push(run_once(w, extra, o.mean, Some(seed), &mut raw)?);
        }
        eprintln!();
        let mean_time = |runs: &[&Run]| {
            runs.iter().map(|r| r.elapsed.as_secs_f64()).sum::<f64>() / runs.len() as f64
        };

        let _ = writeln!(out, "### {w}\n");
        let _ = writeln!(
            out,
            "Wall time per run (process start to exit): exact {:.2} s, sampled {:.2} s (mean of {}).\n",
            mean_time(&[&exact, &rerun]),
            mean_time(&sampled.iter().collect::<Vec<_>>()),
            o.runs
        );
        for (figure, pick, min) in [
            (
                "total",
                (|s: (u64, u64)| s.1) as fn((u64, u64)) -> u64,
                workloads::MIN_TOTAL,
            ),
            ("live", |s: (u64, u64)| s.0, MARKED),
        ] {
            let mut keys: Vec<(&String, u64)> = exact
                .sites
                .iter()
                .map(|(k, &s)| (k, pick(s)))
                .filter(|&(_, v)| v >= min)
                .collect();
            keys.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            if keys.is_empty() {
                let _ = writeln!(out, "No site with at least 5 MiB live at the end.\n");
                continue;
            }
            let rows: Vec<Row> = keys
                .iter()
                .map(|&(k, v)| {
                    let again = rerun.sites.get(k).copied().map_or(0, pick);
                    let estimates = sampled
                        .iter()
                        .map(|r| r.sites.get(k).copied().map_or(0, pick));
                    compare(k, v, again, estimates, o.mean)
                })
                .collect();
            let _ = writeln!(
                out,
                "{} bytes, sites (by function) of at least {} MiB in exact mode:\n",
                if figure == "total" {
                    "Total (allocated)"
                } else {
                    "Live"
                },
                min >> 20
            );
            table(&mut out, &rows, o.runs, figure);
            out.push('\n');
            let marked: Vec<&Row> = rows.iter().filter(|r| r.exact > MARKED).collect();
            let ok = marked.iter().filter(|r| meets(r, o.runs)).count();
            summary.push((w.clone(), figure, marked.len(), ok));
            for r in marked.iter().filter(|r| !meets(r, o.runs)) {
                misses.push(format!(
                    "{w}, {figure}: {} ({:.2} MiB, within 3 SE in {}/{}, max |z| {:.2}, mean ratio {:.3})",
                    r.key,
                    r.exact as f64 / MIB,
                    r.within,
                    o.runs,
                    r.max_z,
                    r.mean_ratio
                ));
            }
        }

        // Whole-process totals: exact in both modes.
        let _ = writeln!(
            out,
            "Whole-process totals (`tracealloc::stats()` at the snapshot):\n"
        );
        let _ = writeln!(
            out,
            "| figure | exact | exact rerun | sampled runs equal to exact | sampled min - exact | sampled max - exact |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
        for f in STAT_FIELDS {
            let e = exact.stats[f].as_u64().unwrap_or(0) as i128;
            let again = rerun.stats[f].as_u64().unwrap_or(0) as i128;
            let diffs: Vec<i128> = sampled
                .iter()
                .map(|r| r.stats[f].as_u64().unwrap_or(0) as i128 - e)
                .collect();
            let equal = diffs.iter().filter(|&&d| d == 0).count();
            let _ = writeln!(
                out,
                "| {f} | {e} | {again} | {equal}/{} | {:+} | {:+} |",
                o.runs,
                diffs.iter().min().unwrap(),
                diffs.iter().max().unwrap()
            );
        }
        out.push('\n');
        print!("{out}");
        let _ = std::io::stdout().flush();
        out.clear();
    }

    let _ = writeln!(out, "### Summary\n");
    let _ = writeln!(
        out,
        "Sites above 5 MiB within 3 standard errors of exact mode in at least 95% of {} runs \
         (sampling\nevery {} bytes on average):\n",
        o.runs, o.mean
    );
    let _ = writeln!(
        out,
        "| workload | figure | sites > 5 MiB | meeting the target |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|");
    let (mut all, mut ok) = (0, 0);
    for (w, figure, n, k) in &summary {
        let _ = writeln!(out, "| {w} | {figure} | {n} | {k} |");
        all += n;
        ok += k;
    }
    let _ = writeln!(out, "| all | | {all} | {ok} |\n");
    if misses.is_empty() {
        let _ = writeln!(out, "Every site above 5 MiB meets the target.");
    } else {
        let _ = writeln!(out, "Missing the target:\n");
        for m in &misses {
            let _ = writeln!(out, "- {m}");
        }
    }
    let _ = writeln!(
        out,
        "\nDriver time: {:.0} s.",
        started.elapsed().as_secs_f64()
    );
    print!("{out}");
    Ok(())
}
