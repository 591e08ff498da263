//! The CLI on a small checked-in pair of snapshots: reference outputs (re-bless with
//! `BLESS=1 cargo test -p tracealloc-cli`), flamegraphs, and every kind of bad input.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{cli, scratch, skip_or_fail, tracealloc, tracealloc_command, tracealloc_in};

fn parse_svg(svg: &str) {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(svg, options).expect("well-formed XML");
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The leaking line of the fixtures (`file:line`), written by `regenerate-fixtures.sh`.
fn leak_line() -> String {
    std::fs::read_to_string(data("leak-line.txt"))
        .unwrap()
        .trim()
        .to_owned()
}

fn stdout_of(args: &[&str]) -> String {
    let out = tracealloc(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Compares with `tests/expected/<name>`, or rewrites it when `BLESS` is set.
fn check_reference(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/expected")
        .join(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("no reference {}; run with BLESS=1", path.display()));
    assert_eq!(
        actual,
        expected,
        "output differs from {}; re-bless with BLESS=1 if intended",
        path.display()
    );
}

#[test]
fn reference_outputs() {
    let old = data("old.json");
    let new = data("new.json");
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    let cases: &[(&str, &[&str])] = &[
        ("top.txt", &["top", new, "-n", "5"]),
        (
            "top-function.json",
            &[
                "top", new, "--by", "function", "--format", "json", "-n", "3",
            ],
        ),
        (
            "top-total.csv",
            &["top", new, "--sort", "total", "--format", "csv", "-n", "4"],
        ),
        (
            "top-stack.txt",
            &[
                "top",
                new,
                "--by",
                "stack",
                "-n",
                "1",
                "--include",
                "leak_diff::*",
            ],
        ),
        ("diff.txt", &["diff", old, new, "-n", "4"]),
        (
            "diff.json",
            &["diff", old, new, "-n", "2", "--format", "json"],
        ),
        (
            "leaks-since.txt",
            &["leaks", new, "--since", old, "-n", "1"],
        ),
        ("threads.txt", &["threads", new]),
    ];
    for (name, args) in cases {
        check_reference(name, &stdout_of(args));
    }
    let info = stdout_of(&["info", new]).replace(new, "new.json");
    check_reference("info.txt", &info);
}

/// The first row of a command's JSON output, checked to have `fields`.
fn first_json_row(args: &[&str], fields: &[&str]) -> serde_json::Value {
    let rows: serde_json::Value = serde_json::from_str(&stdout_of(args)).unwrap();
    let first = rows[0].clone();
    for field in fields {
        assert!(
            first.get(field).is_some(),
            "{args:?}: JSON lacks {field}: {first}"
        );
    }
    first
}

#[test]
fn json_contract_for_scripts() {
    let (old, new) = (data("old.json"), data("new.json"));
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    let stat = [
        "key",
        "live_bytes",
        "live_blocks",
        "total_bytes",
        "total_blocks",
    ];
    first_json_row(&["top", new, "--format", "json"], &stat);
    let change = [
        "key",
        "live_bytes",
        "live_blocks",
        "bytes_diff",
        "blocks_diff",
    ];
    let first = first_json_row(&["diff", old, new, "--format", "json"], &change);
    // The leak: 5 more blocks of 256 bytes at the leaking line.
    assert!(
        first["key"].as_str().unwrap().ends_with(&leak_line()),
        "{first}"
    );
    assert_eq!(
        (first["bytes_diff"].as_i64(), first["blocks_diff"].as_i64()),
        (Some(5 * 256), Some(5))
    );
}

/// `new.json` as if it had been sampled every 64 KiB (its figures then read as estimates), written
/// to a file of its own.
fn sampled_copy(name: &str) -> PathBuf {
    let mut snapshot: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("new.json")).unwrap()).unwrap();
    snapshot["meta"]["capture"]["sampling_bytes"] = 65536.into();
    snapshot["meta"]["capture"]["sampling_seed"] = 42.into();
    let dir = std::env::temp_dir().join(format!("tracealloc-cli-sampled-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, snapshot.to_string()).unwrap();
    path
}

/// In a sampled snapshot, every figure `top` and `diff` print is an estimate with its standard
/// error, and what sampling does not estimate is null, never 0.
#[test]
fn sampled_figures_carry_their_error_and_nothing_reads_as_a_false_zero() {
    let sampled = sampled_copy("top.json");
    let sampled = sampled.to_str().unwrap();
    let rows: serde_json::Value =
        serde_json::from_str(&stdout_of(&["top", sampled, "--format", "json", "-n", "3"])).unwrap();
    let rows = rows.as_array().unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        let error = |bytes: &str| (65536.0 * row[bytes].as_f64().unwrap()).sqrt().round();
        assert_eq!(
            row["live_bytes_stderr"].as_f64(),
            Some(error("live_bytes")),
            "{row}"
        );
        assert_eq!(
            row["total_bytes_stderr"].as_f64(),
            Some(error("total_bytes")),
            "{row}"
        );
        assert!(row["live_blocks_stderr"].is_u64() && row["total_blocks_stderr"].is_u64());
        for unavailable in [
            "peak_bytes",
            "peak_blocks",
            "temporary_blocks",
            "reallocs",
            "realloc_copied_bytes",
        ] {
            assert!(row[unavailable].is_null(), "{unavailable}: {row}");
        }
    }
    let table = stdout_of(&["top", sampled, "-n", "3"]);
    assert!(table.contains(" ± "), "{table}");
    assert!(!table.contains("at peak"), "{table}");
    assert!(table.contains("not estimated in sampled mode"), "{table}");
    let sorted_by_peak = tracealloc(&["top", sampled, "--sort", "peak"]);
    assert!(!sorted_by_peak.status.success());
    let stderr = String::from_utf8_lossy(&sorted_by_peak.stderr);
    assert!(stderr.contains("not estimated in sampled mode"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    // threads shows no errors, and says where they are.
    let threads = stdout_of(&["threads", sampled]);
    assert!(
        !threads.contains(" ± ") && threads.contains("`top --by thread` gives each"),
        "{threads}"
    );
    // Exports by one metric refuse the ones sampled mode does not estimate too, writing nothing.
    for (format, metric) in [("folded", "peak"), ("speedscope", "temporary")] {
        let exported = tracealloc(&[
            "export", sampled, "--format", format, "--metric", metric, "-o", "-",
        ]);
        assert!(!exported.status.success() && exported.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&exported.stderr);
        assert!(stderr.contains("not estimated in sampled mode"), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
    let old = data("old.json");
    let diff: serde_json::Value = serde_json::from_str(&stdout_of(&[
        "diff",
        old.to_str().unwrap(),
        sampled,
        "--format",
        "json",
    ]))
    .unwrap();
    assert!(diff[0]["bytes_diff_stderr"].is_u64(), "{}", diff[0]);
    let info = stdout_of(&["info", sampled]);
    assert!(
        info.contains("one block per 64 KiB allocated on average; seed 42"),
        "{info}"
    );
    assert!(info.contains("TRACEALLOC_SEED=42"), "{info}");
}

#[test]
fn flamegraphs_are_well_formed_and_differ_where_the_snapshots_differ() {
    let dir = scratch("cli-flame");
    let plain = dir.join("plain.svg");
    let diff = dir.join("diff.svg");
    let new = data("new.json");
    let out = stdout_of(&[
        "flamegraph",
        new.to_str().unwrap(),
        "-o",
        plain.to_str().unwrap(),
    ]);
    assert_eq!(out.trim(), plain.to_str().unwrap());
    stdout_of(&[
        "flamegraph",
        new.to_str().unwrap(),
        "--diff",
        data("old.json").to_str().unwrap(),
        "-o",
        diff.to_str().unwrap(),
    ]);
    let plain_svg = std::fs::read_to_string(&plain).unwrap();
    let diff_svg = std::fs::read_to_string(&diff).unwrap();
    for svg in [&plain_svg, &diff_svg] {
        parse_svg(svg);
        assert!(
            svg.contains("leak_diff::leak (") && svg.contains(&format!("{})", leak_line())),
            "the leaking frame is drawn"
        );
    }
    assert_ne!(plain_svg, diff_svg);
    // Growth is drawn red in a differential flamegraph; the plain one uses the memory palette.
    assert!(diff_svg.contains("rgb(255,"), "growth in red");
    let by_thread = dir.join("threads.svg");
    stdout_of(&[
        "flamegraph",
        new.to_str().unwrap(),
        "--by-thread",
        "--reverse",
        "--metric",
        "total",
        "-o",
        by_thread.to_str().unwrap(),
    ]);
    let svg = std::fs::read_to_string(&by_thread).unwrap();
    parse_svg(&svg);
    assert!(
        svg.contains(">main<") || svg.contains("main ("),
        "the thread is a frame"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `timeline`: one file's chart marks the peak; several files stack the top sites across them,
/// with the leaking line growing; a file without a timeline says so on one line.
#[test]
fn timelines_chart_one_file_and_stack_several() {
    let dir = scratch("cli-timeline");
    let (old, new) = (data("old.json"), data("new.json"));
    let chart = dir.join("memory.svg");
    stdout_of(&[
        "timeline",
        new.to_str().unwrap(),
        "-o",
        chart.to_str().unwrap(),
    ]);
    let svg = std::fs::read_to_string(&chart).unwrap();
    parse_svg(&svg);
    let snapshot: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&new).unwrap()).unwrap();
    assert!(snapshot["timeline"].as_array().unwrap().len() >= 2);
    assert!(svg.contains(">peak "), "the peak is marked: {svg}");

    let table = stdout_of(&["timeline", old.to_str().unwrap(), new.to_str().unwrap()]);
    let leaking = table
        .lines()
        .find(|l| l.contains(&leak_line()))
        .unwrap_or_else(|| panic!("the leaking line is a row: {table}"));
    // leak_diff leaks 10 blocks of 256 bytes in old.json, 15 in new.json.
    assert!(
        leaking.contains("2.50 KiB")
            && leaking.contains("3.75 KiB")
            && leaking.contains("+1.25 KiB"),
        "{leaking}"
    );
    // `diff` over a series says the same.
    let series = stdout_of(&[
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        new.to_str().unwrap(),
    ]);
    let leaking = series
        .lines()
        .find(|l| l.contains(&leak_line()))
        .unwrap_or_else(|| panic!("the leaking line is a row: {series}"));
    assert!(
        leaking.contains("+1.25 KiB") && !leaking.contains("#"),
        "{leaking}"
    );
    let stacked = dir.join("growth.svg");
    stdout_of(&[
        "timeline",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "-o",
        stacked.to_str().unwrap(),
    ]);
    let svg = std::fs::read_to_string(&stacked).unwrap();
    parse_svg(&svg);
    assert!(svg.contains(&leak_line()), "the leaking line is a band");

    let mut without: serde_json::Value = snapshot.clone();
    without.as_object_mut().unwrap().remove("timeline");
    let old_file = dir.join("no-timeline.json");
    std::fs::write(&old_file, serde_json::to_vec(&without).unwrap()).unwrap();
    let out = tracealloc(&["timeline", old_file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("has no timeline") && stderr.contains("no-timeline.json"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_gets_one_line_naming_the_file_and_a_failure_exit() {
    let dir = scratch("cli-bad");
    let good = std::fs::read_to_string(data("new.json")).unwrap();
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let cases: Vec<(&str, Option<Vec<u8>>, &str)> = vec![
        ("missing.json", None, "cannot read"),
        ("empty.json", Some(Vec::new()), "is empty"),
        (
            "truncated.json",
            Some(good.as_bytes()[..good.len() / 2].to_vec()),
            "is truncated",
        ),
        ("random.json", Some(random), "is not JSON"),
        (
            "other.json",
            Some(br#"{"hello": [1, 2, 3]}"#.to_vec()),
            "is not a tracealloc snapshot",
        ),
        (
            "v99.json",
            Some(
                good.replacen("\"version\":1", "\"version\":99", 1)
                    .into_bytes(),
            ),
            "unsupported format version 99",
        ),
        (
            "damaged.json",
            Some(
                good.replacen("\"stack\":0", "\"stack\":99999", 1)
                    .into_bytes(),
            ),
            "damaged snapshot",
        ),
    ];
    let mut paths = vec![(dir.clone(), "is a directory".to_owned())];
    for (name, content, message) in &cases {
        let path = dir.join(name);
        if let Some(bytes) = content {
            std::fs::write(&path, bytes).unwrap();
        }
        paths.push((path, message.to_string()));
    }
    for (path, message) in &paths {
        for command in [
            &["top"][..],
            &["info"],
            &["leaks"],
            &["threads"],
            &["flamegraph"],
            &["export", "--format", "pprof"],
            &["timeline"],
        ] {
            let mut args: Vec<&str> = command.to_vec();
            args.push(path.to_str().unwrap());
            let out = tracealloc(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
            assert!(
                stderr.contains(path.to_str().unwrap()) && stderr.contains(message.as_str()),
                "{args:?}: {stderr}"
            );
            assert!(
                !stderr.contains("panicked") && out.stdout.is_empty(),
                "{args:?}: {stderr}"
            );
        }
        let out = tracealloc(&[
            "diff",
            data("old.json").to_str().unwrap(),
            path.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1));
    }
    // No output file (flamegraph or export) is left for a bad input.
    let outputs = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "svg" || x == "gz")
        })
        .count();
    assert_eq!(outputs, 0);
    std::fs::remove_dir_all(&dir).ok();
}

/// A table wider than the terminal (`COLUMNS`) leaves out its least needed columns and shortens
/// paths from the left, so that no line wraps; the leak's row stays first.
#[test]
fn tables_fit_the_terminal_width() {
    let new = data("new.json");
    let out = tracealloc_command(&["top", new.to_str().unwrap()])
        .env("COLUMNS", "60")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let table: Vec<&str> = text
        .lines()
        .take_while(|l| !l.contains(" groups; "))
        .collect();
    assert!(table.iter().all(|l| l.chars().count() <= 60), "{text}");
    assert_eq!(
        table[0].split_whitespace().collect::<Vec<_>>(),
        ["#", "live", "blocks", "total", "key"]
    );
    assert!(table[1].ends_with("…/src/bin/leak_diff.rs:29"), "{text}");
}

#[test]
fn a_closed_pipe_is_success() {
    use std::process::Stdio;
    let mut child = tracealloc_command(&[
        "top",
        data("new.json").to_str().unwrap(),
        "--by",
        "stack",
        "-n",
        "100",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    drop(child.stdout.take()); // the reader goes away at once, like `| head -0`
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Colors and the spinner appear on a terminal only, and colors never with `NO_COLOR`; piped output
/// is plain and stderr stays empty.
#[test]
fn color_and_progress_only_on_a_terminal() {
    let old = data("old.json");
    let new = data("new.json");
    let args = [
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "-n",
        "2",
    ];
    let piped = tracealloc_command(&args)
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(piped.status.success());
    assert!(!piped.stdout.contains(&0x1b), "no escape codes when piped");
    assert!(
        piped.stderr.is_empty(),
        "no progress when piped: {}",
        String::from_utf8_lossy(&piped.stderr)
    );

    // `script` runs the command on a pseudo-terminal (util-linux); skip where it is missing (fail
    // under CI).
    let on_terminal = |no_color: Option<&str>| {
        let command = format!("{} {}", cli().display(), args.join(" "));
        let mut script = Command::new("script");
        script
            .args(["-qec", &command, "/dev/null"])
            .env_remove("NO_COLOR");
        if let Some(value) = no_color {
            script.env("NO_COLOR", value);
        }
        script
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let Some(colored) = on_terminal(None) else {
        skip_or_fail("no `script` to make a terminal");
        return;
    };
    assert!(
        colored.contains("\x1b[31m"),
        "growth in red on a terminal: {colored:?}"
    );
    let plain = on_terminal(Some("1")).unwrap();
    assert!(
        !plain.contains("\x1b[31m") && !plain.contains("\x1b[1m"),
        "NO_COLOR: {plain:?}"
    );
}

/// speedscope exports validate against the schema speedscope's npm package ships, checked with
/// ajv. Needs node and `npm install --prefix DIR speedscope@1 ajv@8` (CI does it, and points
/// `TRACEALLOC_NPM_DIR` at DIR); skipped with a notice otherwise (failed under `CI=true`).
#[test]
fn speedscope_export_validates_against_speedscopes_schema() {
    let Some(dir) = std::env::var_os("TRACEALLOC_NPM_DIR").map(PathBuf::from) else {
        skip_or_fail(
            "set TRACEALLOC_NPM_DIR to a directory with speedscope and ajv installed (see .ci/run)",
        );
        return;
    };
    let schema = dir.join("node_modules/speedscope/dist/release/file-format-schema.json");
    assert!(schema.exists(), "no schema at {}", schema.display());
    let out = scratch("speedscope");
    let new = data("new.json");
    let mut files = Vec::new();
    for (name, extra) in [
        ("plain.json", vec![]),
        (
            "threads.json",
            vec!["--by-thread", "--metric", "allocations"],
        ),
        ("full.json", vec!["--full-stacks", "--metric", "total"]),
    ] {
        let path = out.join(name);
        let mut args = vec![
            "export",
            new.to_str().unwrap(),
            "--format",
            "speedscope",
            "-o",
            path.to_str().unwrap(),
        ];
        args.extend(extra);
        stdout_of(&args);
        files.push(path);
    }
    let script = dir.join("validate-speedscope.mjs");
    std::fs::write(
        &script,
        r#"import Ajv from "ajv";
import fs from "fs";
const schema = JSON.parse(fs.readFileSync("node_modules/speedscope/dist/release/file-format-schema.json"));
const validate = new Ajv({ strict: false }).compile(schema);
let failed = 0;
for (const file of process.argv.slice(2)) {
  if (!validate(JSON.parse(fs.readFileSync(file)))) {
    console.log(file + ": " + JSON.stringify(validate.errors));
    failed++;
  }
}
process.exit(failed ? 1 : 0);
"#,
    )
    .unwrap();
    let result = Command::new("node")
        .current_dir(&dir)
        .arg(&script)
        .args(&files)
        .output()
        .expect("run node");
    assert!(
        result.status.success(),
        "speedscope's schema rejects our export: {}",
        String::from_utf8_lossy(&result.stdout)
    );
    std::fs::remove_dir_all(&out).ok();
}

/// The flamegraph works in a browser: search highlights the leaking function and zoom widens its
/// frame, without script errors (see [`in_chromium`] for what it needs).
#[test]
fn flamegraph_search_and_zoom_work_in_chromium() {
    let out = std::env::temp_dir().join(format!("tracealloc-browser-{}.svg", std::process::id()));
    stdout_of(&[
        "flamegraph",
        data("new.json").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    in_chromium(
        "flamegraph-in-browser.mjs",
        &[out.as_os_str(), "leak_diff::leak".as_ref()],
        "to check flamegraphs in a browser",
    );
    std::fs::remove_file(&out).ok();
}

/// Where the report tests leave their screenshots, one per tab at 1280x800, for people to look at:
/// `target/tmp/report-screenshots/<case>-<tab>.png`.
fn report_screenshots() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots")
}

/// Writes the HTML report of `file` (with `--diff old`) into `dir`, and checks the parts that need
/// no browser: a whole page, the leaking line in it, nothing to load.
fn html_report(dir: &Path, name: &str, file: &Path, old: Option<&Path>) -> PathBuf {
    let report = dir.join(format!("{name}.html"));
    let mut args = vec!["report", file.to_str().unwrap()];
    if let Some(old) = old {
        args.extend(["--diff", old.to_str().unwrap()]);
    }
    args.extend(["-o", report.to_str().unwrap()]);
    stdout_of(&args);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains(&leak_line()));
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "loads nothing"
    );
    report
}

/// The HTML report in Chromium at 1280x800, with and without `--diff`: no script errors, nothing
/// loaded from the network; the Summary's top lines on the first screen and the leaking line first
/// among what leaked; search filters the top table, columns sort, the peak is marked; the Changes
/// tab ranks the leak first; the Leaks tab has one row per line with its stacks; every flamegraph
/// frame is as tall as its graph and runs its own search, and the first graph's largest box is in
/// the first viewport. Screenshots of every tab go to [`report_screenshots`].
#[test]
fn the_html_report_works_in_chromium() {
    let dir = scratch("report");
    let new = data("new.json");
    let old = data("old.json");
    for (name, older) in [("diff", Some(old.as_path())), ("single", None)] {
        let report = html_report(&dir, name, &new, older);
        in_chromium(
            "report-in-browser.mjs",
            &[
                report.as_os_str(),
                leak_line().as_ref(),
                "leak_diff".as_ref(),
                // The largest allocating call: `Vec::with_capacity`, 7.81 KiB of 12.24 KiB live.
                "Vec<T>::with_capacity".as_ref(),
                report_screenshots().as_os_str(),
                name.as_ref(),
            ],
            "to check the report in a browser",
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Deep stacks: the fixture's stacks with 50 more frames between std's start-up and `main` (a
/// framework's layers, as an async runtime's are without folding), so each graph is over 900 px
/// tall. The report's flamegraphs still show their largest box in the first viewport, callers at
/// the top and allocating calls at the top, with nothing to scroll inside a frame.
#[test]
fn the_report_fits_deep_stacks_in_chromium() {
    use tracealloc_snapshot::{Frame, Snapshot};
    const LAYERS: u32 = 50;
    let dir = scratch("report-deep");
    let mut snapshot = Snapshot::load(data("new.json")).unwrap();
    let first = snapshot.frames.len() as u32;
    for layer in 0..LAYERS {
        snapshot
            .frames
            .push(Frame::new(format!("framework::layer{layer}::call")).at(
                "src/framework.rs",
                Some(layer + 1),
                None,
            ));
    }
    let mains: Vec<u32> = (0..first)
        .filter(|&f| snapshot.frames[f as usize].function == "leak_diff::main")
        .collect();
    let mut deepened = 0;
    for stack in &mut snapshot.stacks {
        // Innermost first: the layers go right outside the outermost `main`.
        if let Some(at) = stack.frames.iter().rposition(|f| mains.contains(f)) {
            stack
                .frames
                .splice(at + 1..at + 1, (first..first + LAYERS).rev());
            deepened += 1;
        }
    }
    assert!(
        deepened >= 3,
        "the fixture's stacks through main: {deepened}"
    );
    let deep = dir.join("deep.json");
    snapshot.save(&deep).unwrap();
    let report = html_report(&dir, "deep", &deep, None);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("framework::layer49::call"),
        "the layers are kept"
    );
    in_chromium(
        "report-in-browser.mjs",
        &[
            report.as_os_str(),
            leak_line().as_ref(),
            "leak_diff".as_ref(),
            "Vec<T>::with_capacity".as_ref(),
            report_screenshots().as_os_str(),
            "deep".as_ref(),
        ],
        "to check the report's flamegraphs of deep stacks in a browser",
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Task labels: `top --by label` groups by them, the flamegraph and folded stacks can root at them,
/// and the pprof export carries them as sample labels. (The fixtures leak under the label `cache`.)
#[test]
fn labels_group_root_and_export() {
    let new = data("new.json");
    let top = stdout_of(&["top", new.to_str().unwrap(), "--by", "label"]);
    let cache = top
        .lines()
        .find(|l| l.trim_end().ends_with("cache"))
        .unwrap_or_else(|| panic!("a row for the label: {top}"));
    assert!(
        cache.contains("3.75 KiB") && cache.contains(" 15 "),
        "{cache}"
    );
    assert!(top.contains("(no label)"), "{top}");
    let dir = scratch("cli-labels");
    let folded = dir.join("labels.folded");
    stdout_of(&[
        "export",
        new.to_str().unwrap(),
        "--format",
        "folded",
        "--by-label",
        "-o",
        folded.to_str().unwrap(),
    ]);
    let folded = std::fs::read_to_string(&folded).unwrap();
    assert!(
        folded
            .lines()
            .any(|l| l.starts_with("cache;") && l.contains(&leak_line())),
        "{folded}"
    );
    let pprof = dir.join("labels.pb.gz");
    stdout_of(&[
        "export",
        new.to_str().unwrap(),
        "--format",
        "pprof",
        "-o",
        pprof.to_str().unwrap(),
    ]);
    let mut raw = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&pprof).unwrap()),
        &mut raw,
    )
    .unwrap();
    let has = |needle: &[u8]| raw.windows(needle.len()).any(|w| w == needle);
    assert!(
        has(b"label") && has(b"cache"),
        "the label key and value are in the profile"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs `dh-view-in-browser.mjs` on `file` (skipped with a notice without Chromium, the npm tools
/// or Valgrind's viewer; failed under `CI=true`).
fn check_in_dh_view(file: &Path, bklt: bool) {
    let viewer = std::env::var_os("TRACEALLOC_DH_VIEW")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/libexec/valgrind/dh_view.html"));
    if !viewer.exists() {
        skip_or_fail(
            "the browser part: install valgrind (or set TRACEALLOC_DH_VIEW) to open DHAT files in dh_view (see .ci/run)",
        );
        return;
    }
    in_chromium(
        "dh-view-in-browser.mjs",
        &[
            viewer.as_os_str(),
            file.as_os_str(),
            "leak_diff::leak".as_ref(),
            bklt.to_string().as_ref(),
        ],
        "to open DHAT files in dh_view",
    );
}

/// Runs `tests/<script>` with node in headless Chromium (playwright-core), with `args`; asserts it
/// succeeded. Needs node, Chromium and `npm install --prefix DIR playwright-core` (CI does it and
/// points `TRACEALLOC_NPM_DIR` at DIR, `TRACEALLOC_CHROMIUM` at the browser); skipped with a notice
/// saying what it was `for` otherwise (failed under `CI=true`).
fn in_chromium(script: &str, args: &[&std::ffi::OsStr], purpose: &str) {
    let (Some(npm), Some(chromium)) = (
        std::env::var_os("TRACEALLOC_NPM_DIR").map(PathBuf::from),
        std::env::var_os("TRACEALLOC_CHROMIUM"),
    ) else {
        skip_or_fail(&format!(
            "the browser part: set TRACEALLOC_CHROMIUM and TRACEALLOC_NPM_DIR (with playwright-core) {purpose} (see .ci/run)"
        ));
        return;
    };
    // The script runs from the npm directory, where node finds playwright-core.
    let copy = npm.join(script);
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join(script),
        &copy,
    )
    .unwrap();
    let result = Command::new("node")
        .current_dir(&npm)
        .env("CHROMIUM", chromium)
        .arg(&copy)
        .args(args)
        .output()
        .expect("run node");
    assert!(
        result.status.success(),
        "{script} failed in Chromium with {args:?}: {}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
}

/// `export --format dhat` of a snapshot recorded with `TRACEALLOC_LIFETIMES=1`: the leak's program
/// point has its exact maximum, figures at the peak and at the end (15 blocks of 256 bytes, all
/// still live), and a lifetime; Valgrind's dh_view opens the file and sorts by "At t-gmax". Without
/// lifetimes, the file is DHAT's totals-only form, which dh_view opens too, and the CLI says why.
#[test]
fn dhat_export_opens_in_dh_view() {
    let dir = scratch("dhat");
    let with = dir.join("lifetimes.dhat.json");
    let args = |input: &str, output: &Path| {
        [
            "export".to_owned(),
            data(input).to_str().unwrap().to_owned(),
            "--format".to_owned(),
            "dhat".to_owned(),
            "-o".to_owned(),
            output.to_str().unwrap().to_owned(),
        ]
    };
    let out = tracealloc(&args("lifetimes.json", &with).each_ref().map(String::as_str));
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&with).unwrap()).unwrap();
    assert_eq!(
        (file["bklt"].as_bool(), file["mode"].as_str()),
        (Some(true), Some("rust-heap"))
    );
    let ftbl = file["ftbl"].as_array().unwrap();
    let leak = file["pps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|pp| {
            ftbl[pp["fs"][1].as_u64().unwrap() as usize]
                .as_str()
                .unwrap()
                .starts_with("leak_diff::leak (tests/src/bin/leak_diff.rs:18")
        })
        .expect("the leak's program point");
    for (field, expected) in [
        ("tb", 15 * 256),
        ("tbk", 15),
        ("mb", 15 * 256),
        ("mbk", 15),
        ("gb", 15 * 256),
        ("gbk", 15),
        ("eb", 15 * 256),
        ("ebk", 15),
    ] {
        assert_eq!(leak[field].as_u64(), Some(expected), "{field}: {leak}");
    }
    assert!(leak["tl"].is_u64(), "{leak}");
    check_in_dh_view(&with, true);

    let without = dir.join("totals.dhat.json");
    let out = tracealloc(&args("new.json", &without).each_ref().map(String::as_str));
    assert!(out.status.success(), "{out:?}");
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(note.contains("TRACEALLOC_LIFETIMES=1"), "{note}");
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&without).unwrap()).unwrap();
    assert_eq!(file["bklt"], false);
    check_in_dh_view(&without, false);
    std::fs::remove_dir_all(&dir).ok();
}

/// Folded export: stacks under `--min-share` of the total end in one `[smaller stacks]` frame where
/// they part from bigger ones, the total unchanged; `--min-share 0` keeps every stack; a share
/// outside 0..1 is refused with a clear message.
#[test]
fn folded_export_cuts_small_stacks_and_keeps_the_total() {
    let dir = scratch("folded");
    let fold = |share: &str| {
        let out = dir.join(format!("{share}.folded"));
        stdout_of(&[
            "export",
            data("new.json").to_str().unwrap(),
            "--format",
            "folded",
            "--metric",
            "total",
            "--min-share",
            share,
            "-o",
            out.to_str().unwrap(),
        ]);
        std::fs::read_to_string(&out).unwrap()
    };
    let total = |text: &str| -> u64 {
        text.lines()
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
            .sum()
    };
    let whole = fold("0");
    let cut = fold("0.3");
    assert_eq!(total(&whole), total(&cut));
    assert!(!whole.contains("[smaller stacks]"), "{whole}");
    assert!(cut.lines().count() < whole.lines().count(), "{cut}");
    assert!(
        cut.lines()
            .any(|l| l.contains(";[smaller stacks] ") || l.starts_with("[smaller stacks] ")),
        "{cut}"
    );
    // Each kept line holds at least 30% of the total, or is a cut.
    let all = total(&whole);
    for line in cut.lines() {
        let value: u64 = line.rsplit_once(' ').unwrap().1.parse().unwrap();
        assert!(
            line.contains("[smaller stacks]") || value * 10 >= all * 3,
            "{line}"
        );
    }
    let refused = tracealloc(&[
        "export",
        data("new.json").to_str().unwrap(),
        "--format",
        "folded",
        "--min-share",
        "2",
    ]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("expected a share from 0 to 1"),
        "{message}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A copy of the fixture `source` in `dir`, named `name`, changed by `edit`.
fn fixture_copy(
    dir: &Path,
    source: &str,
    name: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    let mut snapshot: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data(source)).unwrap()).unwrap();
    edit(&mut snapshot);
    let path = dir.join(name);
    std::fs::write(&path, snapshot.to_string()).unwrap();
    path
}

/// The one line a refused command prints, checked to be one line with exit status 1.
#[track_caller]
fn refusal(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("tracealloc: "), "{stderr}");
    stderr
}

/// Several files, as a shell's glob lists them (`heap-1`, `heap-10`, `heap-2`), are ordered by the
/// time each was taken: `timeline` and `diff` of a series print what they print for the files in
/// order, say once on stderr that they reordered them, and label each file by its time since the
/// first.
#[test]
fn several_files_are_ordered_by_the_time_they_were_taken() {
    let dir = scratch("cli-order");
    let t0: u64 = 1_795_733_200_000;
    let at =
        |ms: u64| move |s: &mut serde_json::Value| s["meta"]["time_unix_ms"] = (t0 + ms).into();
    let first = fixture_copy(&dir, "old.json", "heap-1.json", at(0));
    let second = fixture_copy(&dir, "new.json", "heap-2.json", at(1000));
    // The third: the leak grew to 20 blocks.
    let third = fixture_copy(&dir, "new.json", "heap-10.json", |s| {
        at(2500)(s);
        for site in s["sites"].as_array_mut().unwrap() {
            if site["live_blocks"] == 15 {
                for figure in ["live", "total", "peak"] {
                    site[format!("{figure}_blocks")] = 20.into();
                    site[format!("{figure}_bytes")] = (20 * 256).into();
                }
            }
        }
    });
    let [first, second, third] = [&first, &second, &third].map(|p| p.to_str().unwrap());
    let in_order = [first, second, third];
    let as_globbed = [first, third, second];
    let note = "tracealloc: ordered the 3 files by the time they were taken\n";
    let chart = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let (ordered_svg, globbed_svg) = (chart("ordered.svg"), chart("globbed.svg"));
    for (command, ordered_extra, globbed_extra) in [
        (vec!["timeline"], vec![], vec![]),
        (vec!["diff"], vec![], vec![]),
        (
            vec!["timeline", "--by", "function", "-n", "3"],
            vec![],
            vec![],
        ),
        (
            vec!["timeline"],
            vec!["-o", ordered_svg.as_str()],
            vec!["-o", globbed_svg.as_str()],
        ),
    ] {
        let ordered = tracealloc(&[&command[..], &in_order, &ordered_extra].concat());
        let globbed = tracealloc(&[&command[..], &as_globbed, &globbed_extra].concat());
        assert!(
            ordered.status.success() && globbed.status.success(),
            "{command:?}: {}{}",
            String::from_utf8_lossy(&ordered.stderr),
            String::from_utf8_lossy(&globbed.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&ordered.stderr), "", "{command:?}");
        assert_eq!(
            String::from_utf8_lossy(&globbed.stderr),
            note,
            "{command:?}"
        );
        if ordered_extra.is_empty() {
            let text = String::from_utf8(ordered.stdout).unwrap();
            assert_eq!(text, String::from_utf8(globbed.stdout).unwrap());
            // Each file's column is labeled by its time since the first.
            let header = text.lines().next().unwrap();
            assert!(
                header.contains("+0.0s") && header.contains("+1.0s") && header.contains("+2.5s"),
                "{header}"
            );
            assert!(text.contains(&format!("+2.5s: {third}")), "{text}");
        }
    }
    let table = stdout_of(&["timeline", first, third, second]);
    let leaking = table
        .lines()
        .find(|l| l.contains(&leak_line()))
        .unwrap_or_else(|| panic!("{table}"));
    // 10 blocks of 256 bytes, then 15, then 20: oldest first, the change from the first.
    let cells: Vec<&str> = leaking.split_whitespace().collect();
    assert_eq!(
        cells[1..].join(" "),
        "2.50 KiB 3.75 KiB 5 KiB +2.50 KiB",
        "{leaking}"
    );
    let (ordered, globbed) = (
        std::fs::read_to_string(&ordered_svg).unwrap(),
        std::fs::read_to_string(&globbed_svg).unwrap(),
    );
    parse_svg(&ordered);
    assert!(ordered.contains(">+2.5s<"), "time labels on the x axis");
    assert_eq!(ordered, globbed);
    std::fs::remove_dir_all(&dir).ok();
}

/// `-o -` writes to standard output, for every command that takes `-o`, and creates no file `-`.
#[test]
fn dash_writes_to_standard_output() {
    let dir = scratch("cli-stdout");
    let new = data("new.json");
    let new = new.to_str().unwrap();
    let folded = dir.join("new.folded");
    let run = |args: &[&str]| {
        let out = tracealloc_in(&dir, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run(&[
        "export",
        new,
        "--format",
        "folded",
        "-o",
        folded.to_str().unwrap(),
    ]);
    let to_stdout = run(&["export", new, "--format", "folded", "-o", "-"]);
    assert_eq!(to_stdout, std::fs::read(&folded).unwrap());
    let pprof = run(&["export", new, "--format", "pprof", "-o", "-"]);
    assert_eq!(pprof[..2], [0x1f, 0x8b], "gzip");
    let svg = String::from_utf8(run(&["flamegraph", new, "-o", "-"])).unwrap();
    parse_svg(&svg);
    assert!(svg.contains("leak_diff::leak ("));
    let chart = String::from_utf8(run(&["timeline", new, "-o", "-"])).unwrap();
    parse_svg(&chart);
    let html = String::from_utf8(run(&["report", new, "-o", "-"])).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..100]);
    assert!(!dir.join("-").exists(), "no file named `-`");
    std::fs::remove_dir_all(&dir).ok();
}

/// An output of a default name (no `-o`) is never replaced: the command refuses on one line naming
/// the file and `-o`; `-o FILE` replaces it, as the user named it.
#[test]
fn default_outputs_are_never_replaced_silently() {
    let dir = scratch("cli-default");
    let input = fixture_copy(&dir, "new.json", "heap.json", |_| {});
    let input = input.to_str().unwrap();
    for (args, default) in [
        (vec!["flamegraph", input], "heap.svg"),
        (vec!["report", input], "heap.html"),
        (vec!["export", input, "--format", "folded"], "heap.folded"),
        (vec!["export", input, "--format", "pprof"], "heap.pb.gz"),
    ] {
        let default = dir.join(default);
        let written = stdout_of(&args);
        assert_eq!(written.trim(), default.to_str().unwrap());
        std::fs::write(&default, "mine").unwrap();
        let stderr = refusal(&tracealloc(&args));
        assert!(
            stderr.contains(default.to_str().unwrap()) && stderr.contains("-o"),
            "{stderr}"
        );
        assert_eq!(std::fs::read_to_string(&default).unwrap(), "mine");
        let mut explicit = args.clone();
        explicit.extend(["-o", default.to_str().unwrap()]);
        stdout_of(&explicit);
        assert_ne!(
            std::fs::read_to_string(&default).ok().as_deref(),
            Some("mine")
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The selection flags (`-n`, `--by`, `--include`, `--exclude`, `--sort`, `--format`) are the same
/// for every command that lists sites, and each either honours them or refuses on one line.
#[test]
fn selection_flags_are_honoured_or_refused() {
    let (old, new) = (data("old.json"), data("new.json"));
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    // A series of files keeps only the included sites.
    let series = stdout_of(&["diff", old, new, new, "--include", "leak_diff::*"]);
    let rows: Vec<&str> = series
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with('+') && !l.starts_with('#'))
        .collect();
    assert!(!rows.is_empty(), "{series}");
    for row in &rows {
        assert!(
            row.contains("leak_diff.rs") || row.contains("(other)"),
            "{series}"
        );
    }
    let excluded = stdout_of(&["timeline", old, new, "--exclude", "leak_diff::*"]);
    assert!(!excluded.contains("leak_diff.rs"), "{excluded}");
    let by_function = stdout_of(&["timeline", old, new, "--by", "function", "-n", "2"]);
    assert!(by_function.contains("leak_diff::"), "{by_function}");
    assert_eq!(by_function.lines().count(), 1 + 2 + 1 + 2, "{by_function}");
    // leaks filters too.
    let leaks = stdout_of(&["leaks", new, "--include", "leak_diff::leak"]);
    assert!(
        leaks.contains("leak_diff::leak") && leaks.matches("live in").count() == 1,
        "{leaks}"
    );
    let leaks = stdout_of(&["leaks", new, "--exclude", "leak_diff::*", "--by", "stack"]);
    assert!(!leaks.contains("leak_diff::leak"), "{leaks}");
    // std's own per-thread records, live by design, are left out and counted; listed on asking.
    assert_eq!(
        leaks,
        "No live allocations.\nLeft out: 548 B in 2 blocks of std's own (a thread's start-up \
         record, the runtime's statics), live by design; `--full-stacks` lists them.\n"
    );
    let full = stdout_of(&["leaks", new, "--exclude", "leak_diff::*", "--full-stacks"]);
    assert!(
        full.contains("thread_info.rs") && !full.contains("Left out"),
        "{full}"
    );
    // leaks groups by function too, the stacks beneath.
    let leaks = stdout_of(&[
        "leaks",
        new,
        "--by",
        "function",
        "-n",
        "1",
        "--include",
        "*::leak",
    ]);
    assert!(
        leaks.starts_with("#1 leak_diff::leak: 3.75 KiB live in 15 blocks\n")
            && leaks.contains("    leak_diff::leak (tests/src/bin/leak_diff.rs:18)"),
        "{leaks}"
    );
    // `top` takes every figure as a sort key.
    for sort in [
        "live",
        "total",
        "blocks",
        "allocations",
        "peak",
        "temporary",
        "realloc",
    ] {
        stdout_of(&["top", new, "--sort", sort, "-n", "2"]);
    }
    // What a command cannot honour is refused, never ignored.
    for (args, says) in [
        (
            vec!["diff", old, new, new, "--include", "x*", "--format", "json"],
            "--format json",
        ),
        (
            vec!["diff", old, new, new, "--format", "csv"],
            "--format csv",
        ),
        (vec!["diff", old, new, "--sort", "total"], "--sort total"),
        (vec!["timeline", old, new, "--sort", "peak"], "--sort peak"),
        (
            vec!["timeline", old, new, "--format", "json"],
            "--format json",
        ),
        (vec!["timeline", new, "--by", "function"], "--by"),
        (
            vec!["timeline", new, "-n", "3", "--include", "x*"],
            "-n, --include",
        ),
        (vec!["leaks", new, "--sort", "total"], "--sort total"),
    ] {
        let stderr = refusal(&tracealloc(&args));
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// A program built without line tables: every frame has a function and no file or line. `top`
/// names the allocating functions instead of one `??` row, and says under its table how to get
/// file:line.
#[test]
fn without_line_tables_top_names_functions_and_says_why() {
    let dir = scratch("cli-nolines");
    let stripped = fixture_copy(&dir, "new.json", "release.json", |s| {
        for frame in s["frames"].as_array_mut().unwrap() {
            let frame = frame.as_object_mut().unwrap();
            frame.remove("file");
            frame.remove("line");
            frame.remove("column");
        }
    });
    let stripped = stripped.to_str().unwrap();
    let note = "No line tables: build with debug = \"limited\" in [profile.release] (or \"line-tables-only\") for file:line.";
    let top = stdout_of(&["top", stripped]);
    assert!(!top.contains("??"), "{top}");
    let leaking = top
        .lines()
        .find(|l| l.contains("3.75 KiB"))
        .unwrap_or_else(|| panic!("{top}"));
    assert!(leaking.trim_end().ends_with("leak_diff::leak"), "{top}");
    assert_eq!(top.lines().last(), Some(note), "{top}");
    let by_file = stdout_of(&["top", stripped, "--by", "file"]);
    assert!(
        by_file.contains("leak_diff::leak") && by_file.contains(note),
        "{by_file}"
    );
    for args in [
        vec!["top", stripped, "--by", "function"],
        vec!["top", stripped, "--format", "json"],
        vec!["top", data("new.json").to_str().unwrap()],
    ] {
        let out = stdout_of(&args);
        assert!(!out.contains("No line tables"), "{args:?}: {out}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
