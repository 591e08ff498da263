//! The file format is stable: the CLI's checked-in snapshots load and save back byte for byte, and
//! a group table of each renders as recorded in `tests/expected/` (rewrite with `BLESS=1 cargo
//! test -p tracealloc-snapshot --test golden` when a change is intended).

use std::path::Path;

use tracealloc_snapshot::{GroupBy, Snapshot};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../cli/tests/data")
        .join(name)
}

#[test]
fn snapshots_round_trip_byte_for_byte() {
    for name in ["old.json", "new.json"] {
        let original = std::fs::read(fixture(name)).unwrap();
        let snapshot = Snapshot::load(fixture(name)).unwrap();
        let copy =
            std::env::temp_dir().join(format!("tracealloc-golden-{}-{name}", std::process::id()));
        snapshot.save(&copy).unwrap();
        let saved = std::fs::read(&copy).unwrap();
        std::fs::remove_file(&copy).ok();
        assert!(saved == original, "{name} did not save back identically");
    }
}

#[test]
fn groupings_render_as_recorded() {
    let snapshot = Snapshot::load(fixture("new.json")).unwrap();
    let mut text = String::new();
    for by in [
        GroupBy::Function,
        GroupBy::Line,
        GroupBy::File,
        GroupBy::Stack,
        GroupBy::Thread,
    ] {
        text.push_str(&format!("# {by:?}\n"));
        // Keys as recorded (full paths): `Display` shortens paths relative to where it runs.
        for s in snapshot.statistics(by) {
            text.push_str(&format!(
                "{} | live {} in {} | total {} in {}\n",
                s.key, s.live_bytes, s.live_blocks, s.total_bytes, s.total_blocks
            ));
        }
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expected/groupings.txt");
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("no golden file {}; run with BLESS=1", path.display()));
    assert_eq!(text, want, "rewrite with BLESS=1 if intended");
}
