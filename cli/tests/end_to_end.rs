//! End to end: this program profiles itself with the library, takes two snapshots around a leak,
//! and the built `tracealloc` binary finds the leaking line at the top of `diff`. Then every CLI
//! example of the README runs as written on those files. (A test without the harness, so that
//! tracealloc is its global allocator.)

use std::path::Path;
use std::process::Command;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

const LEAK_LINE: u32 = line!() + 3;
#[inline(never)]
fn leak(into: &mut Vec<String>, i: usize) {
    into.push(format!("{i:0>1000}"));
}

fn tracealloc_cli(dir: &Path, args: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tracealloc"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tracealloc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
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

fn main() {
    let mut kept = Vec::with_capacity(100);
    let before = tracealloc::snapshot();
    for i in 0..40 {
        leak(&mut kept, i);
    }
    let after = tracealloc::snapshot();
    let dir = std::env::temp_dir().join(format!("tracealloc-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    before.save(dir.join("tracealloc-before.json")).unwrap();
    after.save(dir.join("tracealloc-after.json")).unwrap();

    let args = [
        "diff",
        "tracealloc-before.json",
        "tracealloc-after.json",
        "-n",
        "1",
    ]
    .map(String::from);
    let text = tracealloc_cli(&dir, &args);
    // Shown relative to the working directory (the package's, under cargo test).
    let expected = format!("tests/end_to_end.rs:{LEAK_LINE}");
    let top = text.lines().nth(1).unwrap_or_default();
    assert!(
        top.contains(&expected) && top.contains("+40"),
        "top of the diff is the leak {expected}:\n{text}"
    );

    let examples = readme_examples();
    assert!(examples.len() >= 8, "README examples: {examples:?}");
    for args in &examples {
        tracealloc_cli(&dir, args);
    }
    assert!(dir.join("growth.svg").exists());
    std::fs::remove_dir_all(&dir).ok();
    std::hint::black_box(kept);
    println!(
        "end_to_end ok: the leak tops the diff; {} README examples ran",
        examples.len()
    );
}
