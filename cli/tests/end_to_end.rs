//! End to end: this program profiles itself with the library, takes two snapshots around a leak,
//! and the built `tracealloc` binary finds the leaking line at the top of `diff`. Then every CLI
//! example of the README runs as written on those files. (A test without the harness, so that
//! tracealloc is its global allocator.)

mod common;

use std::path::Path;

use common::{scratch, stdout_in};

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

const LEAK_LINE: u32 = line!() + 3;
#[inline(never)]
fn leak(into: &mut Vec<String>, i: usize) {
    into.push(format!("{i:0>1000}"));
}

/// The commands between the README's `cli-examples` markers, without the prompt and the program name.
fn readme_examples() -> Vec<Vec<String>> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let start = readme
        .find("<!-- cli-examples")
        .expect("README marks its CLI examples");
    let end = readme
        .find("<!-- end cli-examples -->")
        .expect("end marker");
    readme[start..end]
        .lines()
        .filter_map(|l| l.strip_prefix("$ tracealloc "))
        .map(|l| {
            l.split_whitespace()
                .map(|w| w.trim_matches('\'').to_owned())
                .collect()
        })
        .collect()
}

/// `snapshot` (a saved snapshot's JSON) as the same program built in another checkout on another
/// machine and run from elsewhere: its workspace's files under another root, its registry crates
/// under another cargo home and index, and no workspace or working directory to shorten paths by.
fn in_another_checkout(snapshot: &str) -> String {
    let mut snapshot: serde_json::Value = serde_json::from_str(snapshot).unwrap();
    let root = snapshot["meta"]["workspace_dir"]
        .as_str()
        .expect("the snapshot knows its workspace")
        .to_owned();
    let meta = snapshot["meta"].as_object_mut().unwrap();
    meta.remove("workspace_dir");
    meta.remove("working_dir");
    let (mut own, mut registry) = (0, 0);
    for frame in snapshot["frames"].as_array_mut().unwrap() {
        let Some(file) = frame["file"].as_str() else {
            continue;
        };
        let moved = if let Some(rest) = file.strip_prefix(&format!("{root}/")) {
            own += 1;
            format!("/tmp/elsewhere/tracealloc-checkout/{rest}")
        } else if let Some(at) = file.find("/registry/src/") {
            registry += 1;
            let in_index = file[at + "/registry/src/".len()..]
                .split_once('/')
                .unwrap()
                .1;
            format!(
                "/home/elsewhere/.cargo/registry/src/index.crates.io-0123456789abcdef/{in_index}"
            )
        } else {
            continue;
        };
        frame["file"] = moved.into();
    }
    assert!(own > 0, "the workspace's own frames moved");
    assert!(registry > 0, "registry crates' frames moved");
    snapshot.to_string()
}

/// Two snapshots of the same program at two checkout paths (and two cargo homes) compare as two
/// of one checkout do: `diff` has one row per line, `leaks --since` the same leaks, and the
/// differential flamegraph is the same picture.
fn diff_across_checkouts(dir: &Path) {
    let before = std::fs::read_to_string(dir.join("tracealloc-before.json")).unwrap();
    std::fs::write(
        dir.join("elsewhere-before.json"),
        in_another_checkout(&before),
    )
    .unwrap();
    let run = |older: &str, args: &[&str]| {
        let replaced: Vec<String> = args[1..].iter().map(|a| a.replace("OLD", older)).collect();
        let mut all = vec![args[0]];
        all.extend(replaced.iter().map(String::as_str));
        stdout_in(dir, &all)
    };
    let diff = [
        "diff",
        "OLD",
        "tracealloc-after.json",
        "--format",
        "json",
        "-n",
        "1000",
    ];
    let here = run("tracealloc-before.json", &diff);
    let elsewhere = run("elsewhere-before.json", &diff);
    assert_eq!(elsewhere, here, "the same rows, figures and keys");
    let rows: serde_json::Value = serde_json::from_str(&elsewhere).unwrap();
    let leak = format!("end_to_end.rs:{LEAK_LINE}");
    let leaking: Vec<&serde_json::Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["key"].as_str().unwrap().ends_with(&leak))
        .collect();
    assert_eq!(
        leaking.len(),
        1,
        "one row for the leaking line: {leaking:?}"
    );
    assert_eq!(leaking[0]["blocks_diff"], 40, "{leaking:?}");
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| !r["key"].as_str().unwrap().contains("/tmp/elsewhere/")),
        "no row of the other checkout's paths: {elsewhere}"
    );
    let leaks = ["leaks", "tracealloc-after.json", "--since", "OLD"];
    assert_eq!(
        run("elsewhere-before.json", &leaks),
        run("tracealloc-before.json", &leaks)
    );
    for (older, svg) in [
        ("tracealloc-before.json", "here.svg"),
        ("elsewhere-before.json", "elsewhere.svg"),
    ] {
        run(
            older,
            &[
                "flamegraph",
                "tracealloc-after.json",
                "--diff",
                "OLD",
                "-o",
                svg,
            ],
        );
    }
    let read = |svg: &str| std::fs::read_to_string(dir.join(svg)).unwrap();
    assert!(
        read("here.svg") == read("elsewhere.svg"),
        "the same differential flamegraph"
    );
}

fn main() {
    let mut kept = Vec::with_capacity(100);
    // Memory a registry crate allocated, live in both snapshots (for `diff_across_checkouts`).
    let parsed: serde_json::Value =
        serde_json::from_str(r#"{"kept": [1, 2, 3], "by": "a registry crate"}"#).unwrap();
    let before = tracealloc::snapshot();
    for i in 0..40 {
        leak(&mut kept, i);
    }
    let after = tracealloc::snapshot();
    let dir = scratch("e2e");
    before.save(dir.join("tracealloc-before.json")).unwrap();
    after.save(dir.join("tracealloc-after.json")).unwrap();

    let text = stdout_in(
        &dir,
        &[
            "diff",
            "tracealloc-before.json",
            "tracealloc-after.json",
            "-n",
            "1",
        ],
    );
    // Shown relative to the working directory (the package's, under cargo test).
    let expected = format!("tests/end_to_end.rs:{LEAK_LINE}");
    let top = text.lines().nth(1).unwrap_or_default();
    assert!(
        top.contains(&expected) && top.contains("+40"),
        "top of the diff is the leak {expected}:\n{text}"
    );

    diff_across_checkouts(&dir);

    let examples = readme_examples();
    assert!(examples.len() >= 8, "README examples: {examples:?}");
    for args in &examples {
        stdout_in(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    }
    assert!(dir.join("growth.svg").exists());
    std::fs::remove_dir_all(&dir).ok();
    std::hint::black_box((kept, parsed));
    println!(
        "end_to_end ok: the leak tops the diff, across checkouts too; {} README examples ran",
        examples.len()
    );
}
