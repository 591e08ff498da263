//! The snapshot format's compatibility promise (see the crate's README and `FORMAT_VERSION`): a
//! checked-in file of each version this build reads loads with the same figures, and a file of a
//! version it does not read is refused as such. The fixtures are frozen: unlike
//! `cli/tests/data`, they are never regenerated. A new format version adds its own fixture here
//! (and, if older ones stop loading, says so in the CHANGELOG).

use std::path::{Path, PathBuf};

use tracealloc_snapshot::{
    FORMAT_VERSION, GroupBy, LoadProblem, RAW_FORMAT_VERSION, ReallocCharge, Snapshot,
};

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

/// Version 2, a raw snapshot: written at exit by `exit_snapshot` (which leaks 12,345 bytes at
/// `leak_at_exit`) with `TRACEALLOC_OUT` and the default `TRACEALLOC_SYMBOLIZE=later`: frames
/// without names, each with its module and address in the module's file.
#[test]
fn version_2_raw_loads_with_its_addresses() {
    let s = Snapshot::load(fixture("v2-raw.json")).unwrap();
    assert_eq!(s.version, RAW_FORMAT_VERSION);
    assert!(s.is_raw());
    assert_eq!(s.sites.len(), 5);
    assert_eq!((s.totals.live_bytes, s.totals.live_blocks), (12_889, 2));
    let raw = s.unsymbolized.as_ref().unwrap();
    assert_eq!(raw.addresses.len(), s.frames.len());
    assert!(raw.addresses.iter().all(Option::is_some));
    assert_eq!(s.modules.len(), 2);
    assert!(s.modules.iter().any(|m| m.path.ends_with("/exit_snapshot")));
    assert!(
        s.modules
            .iter()
            .any(|m| m.file_name().starts_with("libc.so"))
    );
    assert!(s.modules.iter().all(|m| m.build_id.is_some()));
}

#[test]
fn every_version_this_build_reads_has_a_fixture() {
    // Version 1 (symbolized) and 2 (raw); a reader that accepts more versions needs a fixture of
    // each.
    assert_eq!((FORMAT_VERSION, RAW_FORMAT_VERSION), (1, 2));
    assert!(fixture(&format!("v{FORMAT_VERSION}.json")).is_file());
    assert!(fixture(&format!("v{RAW_FORMAT_VERSION}-raw.json")).is_file());
}

#[test]
fn another_version_is_refused_as_such() {
    // (Version 2 is a raw snapshot's since raw snapshots exist: this fixture was
    // `v2-unsupported.json` before, with version 2.)
    let err = Snapshot::load(fixture("v3-unsupported.json")).unwrap_err();
    assert!(
        matches!(err.problem, LoadProblem::UnsupportedVersion { found: 3 }),
        "{err:?}"
    );
    assert!(
        err.to_string().ends_with(
            "v3-unsupported.json: has unsupported format version 3 (this build reads versions \
             1 and 2)"
        ),
        "{err}"
    );
}
