//! The snapshot format's compatibility promise (see the crate's README and `FORMAT_VERSION`): a
//! checked-in file of each version this build reads loads with the same figures, and a file of a
//! version it does not read is refused as such. The fixtures are frozen: unlike
//! `cli/tests/data`, they are never regenerated. A new format version adds its own fixture here
//! (and, if older ones stop loading, says so in the CHANGELOG).

use std::path::{Path, PathBuf};

use tracealloc_snapshot::{FORMAT_VERSION, GroupBy, LoadProblem, ReallocCharge, Snapshot};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Version 1, written by `leak_diff 10` (an exact-mode run on one thread that leaks 10 blocks of
/// 256 bytes at `tests/src/bin/leak_diff.rs:18`) before the sampling and realloc-charge fields
/// existed: absent fields read as their defaults.
#[test]
fn version_1_loads_with_its_figures() {
    let s = Snapshot::load(fixture("v1.json")).unwrap();
    assert_eq!(s.version, 1);
    assert_eq!(s.sites.len(), 8);
    assert_eq!(s.stacks.len(), 8);
    assert_eq!(s.threads.len(), 1);
    assert_eq!((s.totals.live_bytes, s.totals.live_blocks), (11_253, 17));
    assert_eq!((s.totals.total_bytes, s.totals.total_blocks), (16_445, 28));
    assert_eq!((s.totals.peak_bytes, s.totals.peak_blocks), (11_765, 18));
    let live: (u64, u64) = s
        .sites
        .iter()
        .fold((0, 0), |(b, n), x| (b + x.live_bytes, n + x.live_blocks));
    assert_eq!(live, (11_253, 17));

    let leak = s
        .statistics(GroupBy::Line)
        .into_iter()
        .find(|stat| stat.key.ends_with("tests/src/bin/leak_diff.rs:18"))
        .expect("the leaking line");
    assert_eq!((leak.live_bytes, leak.live_blocks), (2_560, 10));

    assert_eq!(s.meta.capture.method, "frame-pointers");
    assert_eq!(s.meta.capture.sampling_bytes, 0);
    assert_eq!(s.meta.capture.reallocs_charged_to, ReallocCharge::Origin);
}

#[test]
fn every_version_this_build_reads_has_a_fixture() {
    // Only version 1 exists; a reader that accepts more versions needs a fixture of each.
    assert_eq!(FORMAT_VERSION, 1);
    assert!(fixture(&format!("v{FORMAT_VERSION}.json")).is_file());
}

#[test]
fn another_version_is_refused_as_such() {
    let err = Snapshot::load(fixture("v2-unsupported.json")).unwrap_err();
    assert!(
        matches!(err.problem, LoadProblem::UnsupportedVersion { found: 2 }),
        "{err:?}"
    );
    assert!(
        err.to_string().ends_with(
            "v2-unsupported.json: has unsupported format version 2 (this build reads version 1)"
        ),
        "{err}"
    );
}
