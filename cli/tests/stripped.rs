//! Raw snapshots of a stripped binary, symbolized by the CLI from its debug file.
//!
//! This test program profiles itself (tracealloc is its global allocator). Run by cargo, it copies
//! its own executable, splits the debug info out as a release pipeline does (`objcopy
//! --only-keep-debug`, then `strip --strip-debug`), lays the debug file out by build ID
//! (`.build-id/xx/rest.debug`), and runs the stripped copy, which leaks at `LEAK_LINE` and writes a
//! raw snapshot at exit (`TRACEALLOC_OUT`). Then `tracealloc top`:
//! - without `--debug-dir` names the leaking function from the symbol table and says which debug
//!   file it needs (the build ID's path), and where it looked;
//! - with `--debug-dir` (and with `TRACEALLOC_DEBUG_DIR`) names the function and its line;
//! - `export --format pprof --unsymbolized` carries the binary's mapping with its build ID, which
//!   `go tool pprof -raw` shows (skipped with a notice without `go`, failing under `CI=true`);
//! - once the binary at the recorded path is replaced, says that it no longer matches the build
//!   ID, and still names the line from the debug file.
//!
//! (A test without the harness, so that tracealloc is its global allocator; `cargo test
//! --release` runs it on a release binary.)

use std::path::{Path, PathBuf};
use std::process::Command;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

const LEAK_LINE: u32 = line!() + 3;
#[inline(never)]
fn leak_in_production(into: &mut Vec<Vec<u8>>) {
    into.push(vec![7u8; 100_000]);
}

/// Skips a check that needs a tool beyond cargo, printing `skipped: {notice}`; under `CI=true`
/// (or `CI=1`) fails instead.
fn skip_or_fail(notice: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("required in CI: {notice}");
    }
    eprintln!("skipped: {notice}");
}

/// Runs `program` with `args`, asserting success; returns (stdout, stderr).
fn run(program: &Path, args: &[&str], envs: &[(&str, &Path)]) -> (String, String) {
    let out = Command::new(program)
        .args(args)
        .env_remove("TRACEALLOC_DEBUG_DIR")
        .envs(envs.iter().map(|(k, v)| (k, v.as_os_str())))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "{} {args:?}: {}{}",
        program.display(),
        text(&out.stdout),
        text(&out.stderr)
    );
    (text(&out.stdout), text(&out.stderr))
}

fn tool(name: &str, args: &[&Path]) -> bool {
    Command::new(name)
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

fn build_id(binary: &Path) -> String {
    tracealloc_snapshot::symbolize::build_id_of(binary)
        .unwrap()
        .expect("rustc links with a build ID")
}

fn main() {
    if std::env::var_os("STRIPPED_TEST_CHILD").is_some() {
        let mut kept = Vec::new();
        for _ in 0..3 {
            leak_in_production(&mut kept);
        }
        std::mem::forget(kept);
        return;
    }
    let dir = std::env::temp_dir().join(format!("tracealloc-stripped-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join("service");
    std::fs::copy(std::env::current_exe().unwrap(), &binary).unwrap();
    let id = build_id(&binary);
    let debug_dir = dir.join("debug");
    let debug_file: PathBuf = debug_dir
        .join(".build-id")
        .join(&id[..2])
        .join(format!("{}.debug", &id[2..]));
    std::fs::create_dir_all(debug_file.parent().unwrap()).unwrap();
    if !tool(
        "objcopy",
        &[Path::new("--only-keep-debug"), &binary, &debug_file],
    ) || !tool("strip", &[Path::new("--strip-debug"), &binary])
    {
        skip_or_fail("objcopy and strip (binutils) are needed to split the debug info");
        return;
    }
    assert_eq!(build_id(&binary), id, "strip keeps the build ID");

    let snapshot = dir.join("heap.json");
    Command::new(&binary)
        .env("STRIPPED_TEST_CHILD", "1")
        .env("TRACEALLOC_OUT", &snapshot)
        .status()
        .unwrap();
    let raw = tracealloc_snapshot::Snapshot::load(&snapshot).unwrap();
    assert!(raw.is_raw(), "the exit snapshot is raw by default");

    let cli = Path::new(env!("CARGO_BIN_EXE_tracealloc"));
    let snap = snapshot.to_str().unwrap();
    let top = |args: &[&str], envs: &[(&str, &Path)]| {
        let mut all = vec!["top", snap, "-n", "1", "--by", "stack"];
        all.extend(args);
        run(cli, &all, envs)
    };
    let expected_line = format!("stripped.rs:{LEAK_LINE}");

    // Without the debug file: the function from the symbol table, and what is needed.
    let (out, err) = top(&[], &[]);
    assert!(out.contains("stripped::leak_in_production"), "{out}");
    assert!(!out.contains(&expected_line), "{out}");
    let wanted = format!(".build-id/{}/{}.debug", &id[..2], &id[2..]);
    assert!(
        err.contains("has no debug info") && err.contains(&wanted) && err.contains("--debug-dir"),
        "says what it needs: {err}"
    );

    // With it: the function and its line, inlined frames included (the cache of the first read
    // lacked them, so it is not reused).
    let (out, err) = top(&["--debug-dir", debug_dir.to_str().unwrap()], &[]);
    assert!(
        out.contains("stripped::leak_in_production") && out.contains(&expected_line),
        "{out}\n{err}"
    );
    assert!(!err.contains("has no debug info"), "{err}");
    // The cache now holds the names: read again, without the option, they are there.
    let (out, err) = top(&[], &[]);
    assert!(out.contains(&expected_line), "{out}");
    assert!(!err.contains("symbolized"), "read from the cache: {err}");

    // TRACEALLOC_DEBUG_DIR, on a file symbolized in place by `tracealloc symbolize`.
    let copy = dir.join("copy.json");
    std::fs::copy(&snapshot, &copy).unwrap();
    run(
        cli,
        &["symbolize", copy.to_str().unwrap()],
        &[("TRACEALLOC_DEBUG_DIR", &debug_dir)],
    );
    let symbolized = tracealloc_snapshot::Snapshot::load(&copy).unwrap();
    assert!(!symbolized.is_raw());
    assert!(
        symbolized
            .frames
            .iter()
            .any(|f| f.line == Some(LEAK_LINE) && f.function.ends_with("leak_in_production")),
        "named by TRACEALLOC_DEBUG_DIR's debug file"
    );

    // pprof of the raw snapshot: mappings with the build ID, for go tool pprof (Parca,
    // Pyroscope) to symbolize itself.
    let pprof = dir.join("heap.pb.gz");
    run(
        cli,
        &[
            "export",
            snap,
            "--format",
            "pprof",
            "--unsymbolized",
            "-o",
            pprof.to_str().unwrap(),
        ],
        &[],
    );
    match Command::new("go")
        .args(["tool", "pprof", "-raw", "-symbolize=none"])
        .arg(&pprof)
        .output()
    {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let mappings = text.split("Mappings").nth(1).unwrap_or_default();
            let service = mappings
                .lines()
                .find(|l| l.contains(binary.to_str().unwrap()));
            assert!(
                service.is_some_and(|l| l.contains(&id)),
                "go tool pprof -raw shows the binary's mapping with its build ID {id}:\n{text}"
            );
        }
        Ok(out) => panic!(
            "go tool pprof -raw failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => skip_or_fail("`go` is not installed: go tool pprof reads the raw pprof export"),
    }

    // The binary replaced (rebuilt): it no longer matches; the debug file still names the line.
    std::fs::copy(cli, &binary).unwrap();
    let fresh = dir.join("again.json");
    std::fs::copy(&snapshot, &fresh).unwrap();
    let (out, err) = run(
        cli,
        &[
            "top",
            fresh.to_str().unwrap(),
            "-n",
            "1",
            "--by",
            "stack",
            "--debug-dir",
            debug_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert!(err.contains("no longer matches"), "{err}");
    assert!(out.contains(&expected_line), "{out}\n{err}");
    // Without the debug file: nothing names the executable's frames but module+offset, and
    // the notes say why.
    let bare = dir.join("bare.json");
    std::fs::copy(&snapshot, &bare).unwrap();
    let (out, err) = run(
        cli,
        &["top", bare.to_str().unwrap(), "-n", "1", "--by", "function"],
        &[],
    );
    assert!(out.contains("service+0x"), "module+offset: {out}");
    assert!(
        err.contains("no longer matches") && err.contains(&wanted),
        "{err}"
    );

    std::fs::remove_dir_all(&dir).ok();
    println!("stripped ok");
}
