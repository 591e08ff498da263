//! Sampled mode estimates exact mode's figures without bias, wherever a buffer grows: buffers made
//! in one function and grown in another (`grown_elsewhere`), over many seeds. And the seed: fresh
//! per run, or `TRACEALLOC_SEED` to draw the same samples again.

use std::process::Command;

use serde_json::Value;

/// The mean interval of the sampled runs: small enough that every site is sampled many times.
const MEAN: u64 = 64 * 1024;
const SEEDS: u64 = 16;

fn run(sample: Option<u64>, seed: Option<u64>) -> Value {
    let mut command = Command::new(env!("CARGO_BIN_EXE_grown_elsewhere"));
    command
        .env_remove("TRACEALLOC_SAMPLE")
        .env_remove("TRACEALLOC_SEED");
    if let Some(mean) = sample {
        command.env("TRACEALLOC_SAMPLE", mean.to_string());
    }
    if let Some(seed) = seed {
        command.env("TRACEALLOC_SEED", seed.to_string());
    }
    let out = command.output().expect("run grown_elsewhere");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// `[live bytes, live blocks, total bytes, total blocks]` of `function`, 0 when absent.
fn figure(run: &Value, function: &str, index: usize) -> f64 {
    run["functions"][function][index].as_f64().unwrap_or(0.0)
}

#[test]
fn sampled_estimates_match_exact_figures_where_buffers_grow_elsewhere() {
    let exact = run(None, None);
    assert_eq!(exact["sampling_bytes"], 0);
    // Growth is charged where it happens: `fill`, not `make_buffer`, holds the grown buffers.
    let (fill, made) = (figure(&exact, "fill", 2), figure(&exact, "make_buffer", 2));
    assert!(fill > 50.0 * made, "fill {fill}, make_buffer {made}");
    let sites: Vec<String> = exact["functions"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, figures)| figures[2].as_u64().unwrap() >= 1 << 20)
        .map(|(name, _)| name.clone())
        .collect();
    for expected in [
        "fill",
        "reserve_more",
        "write_text",
        "push_loop",
        "make_large",
    ] {
        assert!(
            sites.iter().any(|s| s == expected),
            "{expected} in {sites:?}"
        );
    }
    let runs: Vec<Value> = (1..=SEEDS)
        .map(|seed| run(Some(MEAN), Some(seed)))
        .collect();
    let mut within = 0;
    let mut all = 0;
    let mut report = String::new();
    for site in &sites {
        for (index, name) in [(0, "live bytes"), (2, "total bytes")] {
            let truth = figure(&exact, site, index);
            if truth < (1 << 20) as f64 {
                continue;
            }
            // One standard error of an estimate of `truth` bytes (see `Stat::standard_errors`).
            let error = (MEAN as f64 * truth).sqrt();
            let estimates: Vec<f64> = runs.iter().map(|r| figure(r, site, index)).collect();
            for estimate in &estimates {
                all += 1;
                if (estimate - truth).abs() <= 3.0 * error {
                    within += 1;
                }
            }
            let mean = estimates.iter().sum::<f64>() / estimates.len() as f64;
            let bias_bound = 3.0 * error / (SEEDS as f64).sqrt();
            report.push_str(&format!(
                "{site} {name}: exact {truth:.0}, mean of {SEEDS} sampled runs {mean:.0} \
                 (ratio {:.3}, bound {bias_bound:.0})\n",
                mean / truth
            ));
            assert!(
                (mean - truth).abs() <= bias_bound,
                "biased: {site} {name}: exact {truth}, sampled mean {mean}\n{report}"
            );
        }
    }
    // Block counts: each sampled block stands for `1 / p` blocks, a fraction counted as whole
    // blocks without bias; the mean over the seeds stays close to exact mode's count. Sites of
    // small blocks spread widely (a 128-byte block sampled every 64 KiB stands for 512: one run's
    // count is +-20% at `fill`), so their bound is wide; sites of large blocks, whose weights are
    // fractions near 1 (rounded to the nearest, 1.02 always counted 1), have a tight one.
    for (site, bound) in [
        ("fill", 0.2),
        ("write_text", 0.2),
        ("reserve_more", 0.05),
        ("make_large", 0.05),
    ] {
        let truth = figure(&exact, site, 3);
        let mean = runs.iter().map(|r| figure(r, site, 3)).sum::<f64>() / SEEDS as f64;
        report.push_str(&format!(
            "{site} total blocks: exact {truth:.0}, mean of {SEEDS} sampled runs {mean:.0} \
             (ratio {:.3})\n",
            mean / truth
        ));
        assert!(
            (mean / truth - 1.0).abs() < bound,
            "biased block count: {site}: exact {truth}, sampled mean {mean}\n{report}"
        );
    }
    eprintln!("{report}");
    assert!(
        within * 100 >= all * 95,
        "only {within} of {all} estimates within 3 standard errors\n{report}"
    );
}

/// A site of mixed block sizes (`mixed_sizes`: 200 blocks of 256 KiB, 19,800 of 32 bytes):
/// its block count's standard error is the one its small blocks give it, `sqrt(sum (1 - p) / p)`
/// over its blocks, about 6,400 blocks at 64 KiB, not the share of its bytes' error (about 720,
/// which an approximation from the figures would say); and the estimates fall within it as they
/// should.
#[test]
fn standard_errors_of_mixed_block_sizes_are_their_small_blocks() {
    let exact = run(None, None);
    let truth = figure(&exact, "mixed_sizes", 1);
    assert_eq!(truth, 20_000.0);
    let probability = |size: f64| 1.0 - (-size / MEAN as f64).exp();
    let expected_error = (200.0 * (1.0 - probability(262_144.0)) / probability(262_144.0)
        + 19_800.0 * (1.0 - probability(32.0)) / probability(32.0))
    .sqrt();
    let runs: Vec<Value> = (1..=SEEDS)
        .map(|seed| run(Some(MEAN), Some(seed)))
        .collect();
    let mut errors: Vec<f64> = runs
        .iter()
        .map(|r| r["errors"]["mixed_sizes"][1].as_f64().unwrap())
        .collect();
    let within = runs
        .iter()
        .zip(&errors)
        .filter(|&(r, &error)| (figure(r, "mixed_sizes", 1) - truth).abs() <= 3.0 * error.max(1.0))
        .count();
    errors.sort_by(f64::total_cmp);
    let median = errors[errors.len() / 2];
    let report = format!(
        "expected error {expected_error:.0}, reported {errors:?}; estimates {:?}",
        runs.iter()
            .map(|r| figure(r, "mixed_sizes", 1))
            .collect::<Vec<_>>()
    );
    // The reported error is itself estimated from the ~10 small blocks each run samples.
    assert!(
        (0.6..1.6).contains(&(median / expected_error)),
        "median reported error off: {report}"
    );
    assert!(
        within >= 14,
        "{within} of {SEEDS} within 3 errors: {report}"
    );
}

#[test]
fn a_seed_reproduces_the_samples_and_runs_differ_without_one() {
    let first = run(Some(MEAN), Some(7));
    let again = run(Some(MEAN), Some(7));
    assert_eq!(first["seed"], 7);
    assert_eq!(first, again, "the same seed draws the same samples");
    let (a, b) = (run(Some(MEAN), None), run(Some(MEAN), None));
    assert_ne!(a["seed"], b["seed"], "each run draws a fresh seed");
    assert_ne!(
        a["functions"], b["functions"],
        "and different samples: errors average out over runs"
    );
}
