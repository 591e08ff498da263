//! tracealloc's totals equal dhat-rs's on the same deterministic workload, each in its own process.

use std::process::Command;

/// `program`'s figures in `mode`. Reallocs are charged to the block's origin, dhat-rs's rule
/// (`TRACEALLOC_REALLOC=origin`; lifetimes mode always does), so that per program point the
/// figures compare; the whole-process totals are the same under either rule.
fn figures(program: &str, mode: &str) -> serde_json::Value {
    let out = Command::new(program)
        .arg(mode)
        .env(
            "TRACEALLOC_LIFETIMES",
            if mode == "lifetime-points" { "1" } else { "0" },
        )
        .env("TRACEALLOC_REALLOC", "origin")
        .output()
        .expect("run oracle program");
    assert!(
        out.status.success(),
        "{program} {mode} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON line")
}

#[test]
fn single_thread_totals_live_and_peak_equal_dhat() {
    let dhat = figures(env!("CARGO_BIN_EXE_oracle_dhat"), "single");
    let ours = figures(env!("CARGO_BIN_EXE_oracle_tracealloc"), "single");
    assert!(
        dhat["total_blocks"].as_u64().unwrap() > 20_000,
        "the workload must do real work: {dhat}"
    );
    assert!(dhat["peak_bytes"].as_u64().unwrap() > dhat["live_bytes"].as_u64().unwrap());
    assert_eq!(ours, dhat);
}

/// dhat-rs's program points of the oracle workload, grouped by their innermost frame in
/// `oracle_work` (as `print_program_points` groups ours): `line -> [each of fields]`.
fn dhat_program_points(fields: &[&str]) -> serde_json::Value {
    // One directory per call: the tests that call this run in parallel.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tracealloc-oracle-{}-{}",
        std::process::id(),
        CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dhat-heap.json");
    let out = Command::new(env!("CARGO_BIN_EXE_oracle_dhat"))
        .arg("points")
        .arg(&path)
        .output()
        .expect("run oracle_dhat");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).expect("dhat's JSON");
    std::fs::remove_dir_all(&dir).ok();
    let frames = profile["ftbl"].as_array().unwrap();
    let mut points = std::collections::BTreeMap::<String, Vec<u64>>::new();
    for pp in profile["pps"].as_array().unwrap() {
        // Frame strings read `0x...: tracealloc_tests::oracle_work (tests/src/lib.rs:37:23)`.
        let line = pp["fs"].as_array().unwrap().iter().find_map(|f| {
            let text = frames[f.as_u64().unwrap() as usize].as_str().unwrap();
            let (function, location) = text.rsplit_once(" (")?;
            if !function.ends_with("oracle_work") {
                return None;
            }
            let rest = location.strip_prefix("tests/src/lib.rs:")?;
            rest.split(':').next().map(str::to_owned)
        });
        if let Some(line) = line {
            let p = points.entry(line).or_insert_with(|| vec![0; fields.len()]);
            for (i, field) in fields.iter().enumerate() {
                p[i] += pp[field].as_u64().unwrap();
            }
        }
    }
    serde_json::to_value(points).unwrap()
}

/// Each program point's live bytes and blocks at the peak are dhat-rs's "At t-gmax" (`gb`, `gbk`),
/// exactly; its totals are dhat-rs's `tb`, `tbk`.
#[test]
fn single_thread_figures_at_the_peak_equal_dhat_per_program_point() {
    let dhat = dhat_program_points(&["gb", "gbk", "tb", "tbk"]);
    let ours = figures(env!("CARGO_BIN_EXE_oracle_tracealloc"), "points");
    let points = dhat.as_object().unwrap();
    assert!(
        points.len() >= 4,
        "the workload's vec!, push, format! and kept sites: {dhat}"
    );
    assert!(
        points.values().filter(|p| p[0].as_u64() > Some(0)).count() >= 3,
        "several points hold memory at the peak: {dhat}"
    );
    assert_eq!(ours, dhat);
}

/// In lifetimes mode (`TRACEALLOC_LIFETIMES=1`), each program point's own maximum is dhat-rs's
/// `mb`, `mbk`, and what is live at the end its `eb`, `ebk`, exactly; the figures at the peak and
/// the totals stay dhat-rs's.
#[test]
fn single_thread_maxima_in_lifetimes_mode_equal_dhat_per_program_point() {
    let dhat = dhat_program_points(&["gb", "gbk", "tb", "tbk", "mb", "mbk", "eb", "ebk"]);
    let ours = figures(env!("CARGO_BIN_EXE_oracle_tracealloc"), "lifetime-points");
    let points = dhat.as_object().unwrap();
    assert!(
        points
            .values()
            .filter(|p| p[4].as_u64() > p[0].as_u64())
            .count()
            >= 2,
        "points whose own maximum is above their share of the peak: {dhat}"
    );
    assert_eq!(ours, dhat);
}

/// Under the default rule (a realloc charges the block to the stack that resized it), the
/// whole-process totals, live figures and peak are still dhat-rs's.
#[test]
fn totals_are_dhat_s_whichever_site_reallocs_charge() {
    let dhat = figures(env!("CARGO_BIN_EXE_oracle_dhat"), "single");
    let out = Command::new(env!("CARGO_BIN_EXE_oracle_tracealloc"))
        .arg("single")
        .env("TRACEALLOC_REALLOC", "resizer")
        .env("TRACEALLOC_LIFETIMES", "0")
        .output()
        .expect("run oracle program");
    assert!(out.status.success());
    let ours: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(ours, dhat);
}

#[test]
fn four_thread_totals_and_live_equal_dhat() {
    let dhat = figures(env!("CARGO_BIN_EXE_oracle_dhat"), "threads");
    let ours = figures(env!("CARGO_BIN_EXE_oracle_tracealloc"), "threads");
    assert!(
        dhat["total_blocks"].as_u64().unwrap() > 40_000,
        "the workload must do real work: {dhat}"
    );
    for field in ["total_blocks", "total_bytes", "live_blocks", "live_bytes"] {
        assert_eq!(
            ours[field], dhat[field],
            "{field}: ours {ours}, dhat {dhat}"
        );
    }
}

/// With the C allocation layer on (`c_allocations!()`, as `tracealloc run`'s library has it), a
/// Rust allocation reaches the profiler through `System`'s `malloc`, and is counted there once:
/// the totals, the peak and each program point's figures are dhat-rs's. Direct calls of the C
/// library's allocation functions count once each, with their exact bytes, at the Rust function
/// that made them: `c_calls`' 11 allocations of 1,456 bytes, 8 blocks of 1,156 bytes live.
#[test]
fn with_the_c_layer_rust_figures_equal_dhat_and_c_calls_count_once() {
    let program = env!("CARGO_BIN_EXE_oracle_tracealloc_c");
    let dhat = figures(env!("CARGO_BIN_EXE_oracle_dhat"), "single");
    assert_eq!(figures(program, "single"), dhat, "Rust allocations alone");
    assert_eq!(
        figures(program, "points"),
        dhat_program_points(&["gb", "gbk", "tb", "tbk"]),
        "per program point"
    );
    let mut ours = figures(program, "with-c");
    let c_site = ours.as_object_mut().unwrap().remove("c_site").unwrap();
    assert_eq!(
        c_site,
        serde_json::json!([11, 1456, 8, 1156]),
        "c_calls' site"
    );
    let plus = |field: &str, n: u64| dhat[field].as_u64().unwrap() + n;
    // The C blocks stay live through the workload: its peak is theirs on top of dhat-rs's.
    assert_eq!(
        ours,
        serde_json::json!({
            "total_blocks": plus("total_blocks", 11),
            "total_bytes": plus("total_bytes", 1456),
            "live_blocks": plus("live_blocks", 8),
            "live_bytes": plus("live_bytes", 1156),
            "peak_blocks": plus("peak_blocks", 8),
            "peak_bytes": plus("peak_bytes", 1156),
        }),
        "the Rust workload's figures and the C calls' together"
    );
    // On four threads, the allocations made through Rust's allocator (the C library's own for
    // each thread it starts are counted too, and dhat-rs cannot see them).
    let dhat = figures(env!("CARGO_BIN_EXE_oracle_dhat"), "threads");
    let ours = figures(program, "threads-rust");
    let fields = ["total_blocks", "total_bytes", "live_blocks", "live_bytes"];
    let dhat: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .map(|&f| (f.to_owned(), dhat[f].clone()))
        .collect();
    assert_eq!(ours, serde_json::Value::Object(dhat), "on four threads");
}

/// Over jemalloc (the `jemalloc` feature, at tikv-jemallocator's current release), the totals are
/// dhat-rs's too.
#[cfg(feature = "jemalloc")]
#[test]
fn totals_over_jemalloc_equal_dhat() {
    let dhat = figures(env!("CARGO_BIN_EXE_oracle_dhat"), "single");
    let ours = figures(env!("CARGO_BIN_EXE_oracle_tracealloc_jemalloc"), "single");
    assert_eq!(ours, dhat);
    let dhat = figures(env!("CARGO_BIN_EXE_oracle_dhat"), "threads");
    let ours = figures(env!("CARGO_BIN_EXE_oracle_tracealloc_jemalloc"), "threads");
    for field in ["total_blocks", "total_bytes", "live_blocks", "live_bytes"] {
        assert_eq!(
            ours[field], dhat[field],
            "{field}: ours {ours}, dhat {dhat}"
        );
    }
}
