//! Golden files for every renderer, from the CLI's checked-in snapshots: tables, leaks, info,
//! folded stacks, the SVG flamegraph, speedscope's JSON and the pprof profile. A change in output
//! shows as a diff of `tests/expected/`; rewrite them with `BLESS=1 cargo test -p
//! tracealloc-report --test golden` when it is intended.

use std::path::{Path, PathBuf};

use tracealloc_report::{FlameOptions, Format, ReportOptions};
use tracealloc_snapshot::{FoldOptions, GroupBy, Snapshot};

fn fixture(name: &str) -> Snapshot {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../cli/tests/data")
        .join(name);
    Snapshot::load(path).unwrap()
}

fn expected(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/expected")
        .join(name)
}

/// Compares `actual` with `tests/expected/<name>`, or rewrites it under `BLESS`.
fn check(name: &str, actual: &[u8]) {
    let path = expected(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read(&path)
        .unwrap_or_else(|_| panic!("no golden file {}; run with BLESS=1", path.display()));
    assert!(
        actual == want.as_slice(),
        "{} differs ({} bytes, expected {}); rewrite with BLESS=1 if intended:\n{}",
        path.display(),
        actual.len(),
        want.len(),
        String::from_utf8_lossy(actual)
    );
}

fn render(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut out);
    out
}

#[test]
fn timelines() {
    let (old, new) = (fixture("old.json"), fixture("new.json"));
    let options = tracealloc_report::TimelineOptions::default();
    check(
        "timeline.txt",
        &render(|o| tracealloc_report::timeline_table(&new, "new.json", &options, o).unwrap()),
    );
    check(
        "timeline.svg",
        &render(|o| tracealloc_report::timeline_svg(&new, "new.json", &options, o).unwrap()),
    );
    let both = [("old.json".to_owned(), &old), ("new.json".to_owned(), &new)];
    check(
        "growth.txt",
        &render(|o| tracealloc_report::growth_table(&both, &options, o).unwrap()),
    );
    check(
        "growth.svg",
        &render(|o| tracealloc_report::growth_svg(&both, &options, o).unwrap()),
    );
}

#[test]
fn tables() {
    let (old, new) = (fixture("old.json"), fixture("new.json"));
    for (name, by) in [
        ("top-line.txt", GroupBy::Line),
        ("top-stack.txt", GroupBy::Stack),
    ] {
        let mut options = ReportOptions::default();
        options.by = by;
        check(
            name,
            &render(|o| tracealloc_report::top(&new, &options, o).unwrap()),
        );
    }
    let mut json = ReportOptions::default();
    json.format = Format::Json;
    check(
        "diff.json",
        &render(|o| tracealloc_report::diff(&new, &old, &json, o).unwrap()),
    );
    check(
        "leaks-since.txt",
        &render(|o| {
            tracealloc_report::leaks(&new, Some(&old), &ReportOptions::default(), o).unwrap()
        }),
    );
    check(
        "threads.txt",
        &render(|o| tracealloc_report::threads(&new, Format::Table, false, None, o).unwrap()),
    );
    check(
        "info.txt",
        &render(|o| tracealloc_report::info(&new, o).unwrap()),
    );
}

#[test]
fn folded_flamegraph_speedscope_and_pprof() {
    let (old, new) = (fixture("old.json"), fixture("new.json"));
    let fold = FoldOptions::default();
    check("live.folded", new.folded(&fold).join("\n").as_bytes());
    check(
        "growth.folded",
        new.folded_diff(&old, &fold).join("\n").as_bytes(),
    );
    check(
        "live.svg",
        &render(|o| {
            tracealloc_report::flamegraph(&new, None, &FlameOptions::default(), o).unwrap()
        }),
    );
    check(
        "live.speedscope.json",
        &render(|o| tracealloc_report::speedscope(&new, &fold, o).unwrap()),
    );
    check(
        "live.pb.gz",
        &render(|o| tracealloc_report::pprof(&new, o).unwrap()),
    );
}

/// A sampled snapshot's flamegraph says its widths are estimates (its totals stay exact).
#[test]
fn sampled_flamegraph_says_its_widths_are_estimates() {
    let mut sampled = fixture("new.json");
    let exact = render(|o| {
        tracealloc_report::flamegraph(&sampled, None, &FlameOptions::default(), o).unwrap()
    });
    assert!(!String::from_utf8_lossy(&exact).contains("estimates"));
    sampled.meta.capture.sampling_bytes = 512 * 1024;
    let svg = render(|o| {
        tracealloc_report::flamegraph(&sampled, None, &FlameOptions::default(), o).unwrap()
    });
    assert!(
        String::from_utf8_lossy(&svg)
            .contains("(sampled every 512 KiB on average: widths are estimates)"),
        "no sampling note in the subtitle"
    );
}

/// The part of an HTML report from `<section id="{id}"` to its `</section>`.
fn report_section<'h>(html: &'h str, id: &str) -> &'h str {
    let start = html
        .find(&format!("<section id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section {id} in the report"));
    let end = start + html[start..].find("</section>").unwrap() + "</section>".len();
    &html[start..end]
}

/// The HTML report's tables: the Summary (its three answers with their top lines, alone and
/// compared with the older snapshot), the table of changes under `--diff`, and the leaks, one row
/// per line with its stacks. (The flamegraphs have their own golden file, `live.svg`.)
#[test]
fn report_summary_changes_and_leaks() {
    let (old, new) = (fixture("old.json"), fixture("new.json"));
    let options = tracealloc_report::HtmlOptions::default();
    let report = |older: Option<&Snapshot>| {
        String::from_utf8(render(|o| {
            tracealloc_report::html_report(&new, older, &options, o).unwrap()
        }))
        .unwrap()
    };
    let (alone, compared) = (report(None), report(Some(&old)));
    check(
        "report-summary.html",
        report_section(&alone, "summary").as_bytes(),
    );
    check(
        "report-leaks.html",
        report_section(&alone, "leaks").as_bytes(),
    );
    assert!(
        !alone.contains("<section id=\"changes\""),
        "no table of changes without an older snapshot"
    );
    check(
        "report-summary-diff.html",
        report_section(&compared, "summary").as_bytes(),
    );
    check(
        "report-changes.html",
        report_section(&compared, "changes").as_bytes(),
    );
    check(
        "report-leaks-diff.html",
        report_section(&compared, "leaks").as_bytes(),
    );
}
