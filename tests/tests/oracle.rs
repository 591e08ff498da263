//! tracealloc's totals equal dhat-rs's on the same deterministic workload, each in its own process.

use std::process::Command;

fn figures(program: &str, mode: &str) -> serde_json::Value {
    let out = Command::new(program)
        .arg(mode)
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
