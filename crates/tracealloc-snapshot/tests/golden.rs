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

/// `growth_since`: between the fixtures, the leaking line grew by 5 blocks of 256 bytes (10 leaked
/// then 15) and the balanced line allocated 5 more blocks of 512 bytes, all freed.
#[test]
fn growth_since_keeps_what_grew() {
    let (old, new) = (
        Snapshot::load(fixture("old.json")).unwrap(),
        Snapshot::load(fixture("new.json")).unwrap(),
    );
    let leak_line = std::fs::read_to_string(fixture("leak-line.txt")).unwrap();
    let grown = new.growth_since(&old);
    let lines = grown.statistics(GroupBy::Line);
    let leak = lines
        .iter()
        .find(|s| s.key.ends_with(leak_line.trim()))
        .expect("the leaking line grew");
    assert_eq!(
        (leak.live_bytes, leak.live_blocks, leak.total_blocks),
        (5 * 256, 5, 5)
    );
    assert_eq!(lines[0].key, leak.key, "the leak is the largest growth");
    let balanced = lines
        .iter()
        .find(|s| s.key.ends_with("leak_diff.rs:24"))
        .expect("the balanced line allocated in between");
    assert_eq!(
        (
            balanced.live_bytes,
            balanced.total_bytes,
            balanced.total_blocks
        ),
        (0, 5 * 512, 5)
    );
    assert!(
        lines.iter().all(|s| s.live_bytes > 0 || s.total_blocks > 0),
        "nothing that did not grow: {lines:#?}"
    );
}
