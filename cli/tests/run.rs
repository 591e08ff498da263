//! `tracealloc run`: programs with no tracealloc code profiled through the preload library, each
//! process's snapshot, and totals checked against heaptrack's on the same program.
//!
//! Needs the preload library beside the CLI (`cargo build -p tracealloc-preload`, as `.ci/run`
//! does), and heaptrack and zstd for the comparison: without them these tests say so and pass,
//! and fail under `CI=true`. The examples they run are built by `cargo test -p tracealloc-cli`
//! (with `--test run` alone, `cargo build -p tracealloc-cli --examples` first). The first-use
//! test builds the library as an installed CLI does, which reads crates.io's index for the
//! runtime's dependencies.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{Tmux, cli, scratch, skip_or_fail, tracealloc_command};

/// The preload library beside the CLI, if built.
fn preload() -> Option<PathBuf> {
    let path = cli().with_file_name("libtracealloc_preload.so");
    if path.is_file() {
        return Some(path);
    }
    skip_or_fail(&format!(
        "{} is not built (cargo build -p tracealloc-preload)",
        path.display()
    ));
    None
}

/// An example program of this crate (built by `cargo test`, but not by `cargo test --test run`).
fn example(name: &str) -> PathBuf {
    let path = cli().parent().unwrap().join("examples").join(name);
    assert!(
        path.is_file(),
        "{} is not built: `cargo build -p tracealloc-cli --examples` (a plain `cargo test -p \
         tracealloc-cli` builds it too)",
        path.display()
    );
    path
}

fn run(dir: &Path, args: &[&str]) -> Output {
    let output = tracealloc_command(&["run"])
        .args(args)
        .current_dir(dir)
        .env_remove("TRACEALLOC_OUT")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "tracealloc run {args:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A snapshot file as JSON, with names: a raw one (the default) is symbolized in place first.
fn json(path: &Path) -> serde_json::Value {
    let read = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    if read()["version"] == 1 {
        return read();
    }
    let symbolized = Command::new(cli())
        .arg("symbolize")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        symbolized.status.success(),
        "{}",
        String::from_utf8_lossy(&symbolized.stderr)
    );
    read()
}

fn snapshots(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        // Not the symbolized copies the CLI caches beside raw snapshots (hidden files).
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    files
}

/// (blocks, bytes) allocated at sites whose stack has a frame whose function contains `name`.
fn allocated_under(snapshot: &serde_json::Value, name: &str) -> (u64, u64) {
    let frames = snapshot["frames"].as_array().unwrap();
    let stacks = snapshot["stacks"].as_array().unwrap();
    let mut found = (0, 0);
    for site in snapshot["sites"].as_array().unwrap() {
        let stack = &stacks[site["stack"].as_u64().unwrap() as usize];
        let under = stack.as_array().unwrap().iter().any(|f| {
            frames[f.as_u64().unwrap() as usize]["function"]
                .as_str()
                .is_some_and(|function| function.contains(name))
        });
        if under {
            found.0 += site["total_blocks"].as_u64().unwrap();
            found.1 += site["total_bytes"].as_u64().unwrap();
        }
    }
    found
}

/// The line of `marker` in an example's source.
fn line_of(example: &str, marker: &str) -> usize {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(example);
    let text = std::fs::read_to_string(source).unwrap();
    text.lines().position(|l| l.contains(marker)).unwrap() + 1
}

/// The leak of a program without tracealloc code: its function and line at the top, the
/// program's output untouched, the snapshot where `-o` says.
#[test]
fn run_finds_the_leak_of_a_program_without_tracealloc() {
    if preload().is_none() {
        return;
    }
    let dir = scratch("run-leak");
    let output = run(
        &dir,
        &[
            "-o",
            "leak.json",
            "--",
            example("run_leak").to_str().unwrap(),
        ],
    );
    assert_finds_run_leak_s_leak(&output, &dir.join("leak.json"));
}

/// What `tracealloc run -o FILE -- run_leak` must show: the program's own output untouched, the
/// leaking line at the top, its 100 blocks of 1,000 bytes in FILE, C allocations counted too.
fn assert_finds_run_leak_s_leak(output: &Output, file: &Path) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let plain = Command::new(example("run_leak")).output().unwrap();
    assert_eq!(
        stdout,
        String::from_utf8_lossy(&plain.stdout),
        "the program's own output"
    );
    let line = format!("run_leak.rs:{}", line_of("run_leak.rs", "// LEAK LINE"));
    let first_row = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap_or_default();
    assert!(first_row.contains(&line), "the leak first: {stderr}");
    assert!(
        first_row.contains("97.66 KiB"),
        "100 x 1000 bytes: {stderr}"
    );
    let snapshot = json(file);
    assert_eq!(allocated_under(&snapshot, "leak_here"), (100, 100_000));
    assert!(
        allocated_under(&snapshot, "strdup").0 >= 1,
        "C allocations too"
    );
    let name = file.file_name().unwrap().to_string_lossy();
    assert!(stderr.contains(&*name), "where the file is: {stderr}");
    // The program's exit snapshot is written under a `-<pid>` name and renamed: no line names
    // that file.
    assert!(
        !stderr.contains("wrote the exit snapshot"),
        "only `run` names files: {stderr}"
    );
    let stem = file.file_stem().unwrap().to_string_lossy();
    let renamed = file.with_file_name(format!("{stem}-"));
    assert!(
        !stderr.contains(&*renamed.to_string_lossy()),
        "no file named before its rename: {stderr}"
    );
}

/// An installed CLI (`cargo install tracealloc-cli`: no library beside it) builds the preload
/// library into the user's cache on first use, then uses the cached one. Built here against this
/// checkout's runtime (`TRACEALLOC_PRELOAD_SOURCE`), in `target/preload-first-use` so that the
/// next test run reuses the build (the first takes a minute or two).
#[test]
fn run_builds_the_preload_library_on_first_use() {
    let dir = scratch("run-first-use");
    let installed = installed_cli(&dir);
    let runtime = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/tracealloc")
        .canonicalize()
        .unwrap();
    let target = cli().parent().unwrap().parent().unwrap();
    let run_installed = |cache: &Path, file: &str| {
        Command::new(&installed)
            .current_dir(&dir)
            .args(["run", "-o", file, "--"])
            .arg(example("run_leak"))
            .env("NO_COLOR", "1")
            .env_remove("TRACEALLOC_OUT")
            .env_remove("TRACEALLOC_PRELOAD")
            .env("XDG_CACHE_HOME", cache)
            .env("TRACEALLOC_PRELOAD_SOURCE", &runtime)
            .env("CARGO", env!("CARGO"))
            .env("CARGO_TARGET_DIR", target.join("preload-first-use"))
            // The runtime's dependencies are in cargo's cache already (this workspace built
            // them): the test needs no network.
            .env("CARGO_NET_OFFLINE", "true")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let finish = |child: std::process::Child| {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    };
    let building = |cache: &Path| {
        format!(
            "tracealloc: building the preload library for tracealloc {} into {} (once; a minute \
             or two)...",
            env!("CARGO_PKG_VERSION"),
            library_dir(cache).display()
        )
    };
    let cache = dir.join("cache");
    let started = std::time::Instant::now();
    let first = finish(run_installed(&cache, "first.json"));
    eprintln!("the first run, building: {:.1?}", started.elapsed());
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(
        stderr.lines().next(),
        Some(building(&cache).as_str()),
        "{stderr}"
    );
    assert_finds_run_leak_s_leak(&first, &dir.join("first.json"));
    let library = library_dir(&cache).join("libtracealloc_preload.so");
    assert!(library.is_file(), "{} is cached", library.display());

    let second = finish(run_installed(&cache, "second.json"));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!stderr.contains("building"), "built once: {stderr}");
    assert_finds_run_leak_s_leak(&second, &dir.join("second.json"));

    // Two first uses at once: each builds (cargo runs one build at a time in a target directory)
    // and puts the library in place whole, and both profile with it.
    let shared = dir.join("shared-cache");
    let (a, b) = (
        run_installed(&shared, "a.json"),
        run_installed(&shared, "b.json"),
    );
    for (output, file) in [(finish(a), "a.json"), (finish(b), "b.json")] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.lines().next(),
            Some(building(&shared).as_str()),
            "{stderr}"
        );
        assert_finds_run_leak_s_leak(&output, &dir.join(file));
    }
    let left: Vec<String> = std::fs::read_dir(library_dir(&shared))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "no temporary file left");
    // Each cache holds a copy of the library (about 14 MB).
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A copy of the CLI in `dir/bin`, with no preload library beside it (as `cargo install` leaves
/// it).
fn installed_cli(dir: &Path) -> PathBuf {
    let installed = dir.join("bin").join("tracealloc");
    std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
    std::fs::copy(cli(), &installed).unwrap();
    installed
}

/// `tracealloc run` of an installed CLI with no library in its cache: its stderr, after checking
/// that it failed without running the program (which would write `ran`).
fn first_use_failure(dir: &Path, env: &[(&str, &str)]) -> String {
    let mut command = Command::new(installed_cli(dir));
    command
        .current_dir(dir)
        .args(["run", "--", "/bin/sh", "-c", "echo > ran"])
        .env_remove("TRACEALLOC_PRELOAD")
        .env_remove("TRACEALLOC_PRELOAD_SOURCE")
        .env_remove("CARGO")
        .env("XDG_CACHE_HOME", dir.join("cache"));
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!dir.join("ran").exists(), "the program did not run");
    stderr
}

/// What the messages of a failed first use end with: the other ways to get the library.
const OTHER_WAYS: &str = "Other ways: build it in tracealloc's repository (`cargo build --release \
    -p tracealloc-preload`) and put target/release/libtracealloc_preload.so beside the tracealloc \
    executable or name it in TRACEALLOC_PRELOAD; or set TRACEALLOC_PRELOAD_SOURCE to a local \
    checkout of the tracealloc crate (crates/tracealloc in the repository) to build against \
    instead of crates.io";

/// Without cargo, a first use says so and what else works, in one line after the notice.
#[test]
fn run_without_cargo_says_so_and_what_else_works() {
    let dir = scratch("run-no-cargo");
    let stderr = first_use_failure(&dir, &[("PATH", "/nonexistent")]);
    let cache = library_dir(&dir.join("cache"));
    assert_eq!(
        stderr,
        format!(
            "tracealloc: building the preload library for tracealloc {} into {} (once; a minute \
             or two)...\ntracealloc: cannot build the preload library: cargo is not on PATH, and \
             tracealloc builds libtracealloc_preload.so with cargo (install Rust with rustup, or \
             set CARGO to a cargo). {OTHER_WAYS}\n",
            env!("CARGO_PKG_VERSION"),
            cache.display()
        )
    );
    let stderr = first_use_failure(&dir, &[("CARGO", "/nonexistent/cargo")]);
    assert!(
        stderr.contains(
            "cannot build the preload library: cannot run /nonexistent/cargo, which CARGO names \
             (No such file or directory (os error 2)), and"
        ),
        "{stderr}"
    );
}

/// A `TRACEALLOC_PRELOAD_SOURCE` that names no crate, and one whose version is not the CLI's
/// (cargo refuses it: the runtime must be the CLI's own version), each fail with one message.
#[test]
fn run_with_a_wrong_preload_source_says_what_failed() {
    let dir = scratch("run-wrong-source");
    let stderr = first_use_failure(&dir, &[("TRACEALLOC_PRELOAD_SOURCE", "/")]);
    assert_eq!(
        stderr,
        "tracealloc: TRACEALLOC_PRELOAD_SOURCE names /, which is not a crate's directory (no \
         Cargo.toml there): it should name a checkout of the tracealloc crate, crates/tracealloc \
         in tracealloc's repository\n"
    );
    let other = dir.join("tracealloc-0.0.1");
    std::fs::create_dir_all(other.join("src")).unwrap();
    std::fs::write(
        other.join("Cargo.toml"),
        "[package]\nname = \"tracealloc\"\nversion = \"0.0.1\"\nedition = \"2024\"\n",
    )
    .unwrap();
    std::fs::write(other.join("src/lib.rs"), "").unwrap();
    let stderr = first_use_failure(
        &dir,
        &[
            ("TRACEALLOC_PRELOAD_SOURCE", other.to_str().unwrap()),
            ("CARGO", env!("CARGO")),
            ("CARGO_NET_OFFLINE", "true"),
        ],
    );
    let requirement = format!("`tracealloc = \"={}\"`", env!("CARGO_PKG_VERSION"));
    assert!(
        stderr.contains(&requirement),
        "cargo's own message: {stderr}"
    );
    assert_eq!(
        stderr.lines().last(),
        Some(
            format!(
                "tracealloc: cannot build the preload library: `{} build --release` in {} failed \
                 (exit status: 101; cargo's messages are above; TRACEALLOC_PRELOAD_SOURCE must \
                 name tracealloc {}, and its dependencies come from crates.io unless cargo's \
                 configuration says otherwise). {OTHER_WAYS}",
                env!("CARGO"),
                library_dir(&dir.join("cache")).display(),
                env!("CARGO_PKG_VERSION")
            )
            .as_str()
        )
    );
    assert!(
        !library_dir(&dir.join("cache"))
            .join("libtracealloc_preload.so")
            .exists()
    );
}

/// Where the cache under `cache` (`XDG_CACHE_HOME`) keeps this version's preload library.
fn library_dir(cache: &Path) -> PathBuf {
    cache
        .join("tracealloc")
        .join(concat!("preload-", env!("CARGO_PKG_VERSION")))
}

/// A program that starts a copy of itself (fork and exec): one snapshot per process.
#[test]
fn run_writes_one_snapshot_per_process() {
    if preload().is_none() {
        return;
    }
    let dir = scratch("run-fork");
    let output = run(&dir, &["--", example("run_fork_exec").to_str().unwrap()]);
    let files = snapshots(&dir);
    assert_eq!(
        files.len(),
        2,
        "{files:?}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut commands: Vec<String> = files
        .iter()
        .map(|f| {
            let s = json(f);
            assert!(s["totals"]["total_blocks"].as_u64().unwrap() >= 10);
            s["meta"]["command"].to_string()
        })
        .collect();
    commands.sort_by_key(|c| c.contains("child"));
    assert!(commands[0].contains("run_fork_exec") && !commands[0].contains("child"));
    assert!(commands[1].contains("child"), "{commands:?}");
}

/// A program with tracealloc as its global allocator: the program's profiler stands down, the
/// preloaded one counts, once.
#[test]
fn run_over_a_program_with_its_own_profiler_counts_once() {
    if preload().is_none() {
        return;
    }
    let dir = scratch("run-own");
    run(
        &dir,
        &["--", example("run_with_profiler").to_str().unwrap()],
    );
    let files = snapshots(&dir);
    assert_eq!(files.len(), 1, "one file: {files:?}");
    assert_eq!(
        allocated_under(&json(&files[0]), "leak_here"),
        (50, 50 * 512)
    );
}

/// What heaptrack recorded: every allocation's size and the functions of its stack.
struct Heaptrack {
    /// (size, functions of the stack, innermost module)
    allocations: Vec<(u64, Vec<String>, String)>,
    /// The frees: (size, innermost module of the block's allocation).
    frees: Vec<(u64, String)>,
}

/// Parses heaptrack's data file (its text format, `v 10400 3`, decompressed with zstd).
fn parse_heaptrack(text: &str) -> Heaptrack {
    let mut strings = vec![String::new()];
    // ip index (1-based) -> (module, functions)
    let mut ips: Vec<(String, Vec<String>)> = vec![(String::new(), Vec::new())];
    // trace index (1-based) -> (ip, parent)
    let mut traces: Vec<(usize, usize)> = vec![(0, 0)];
    let mut infos = Vec::new();
    let mut allocations = Vec::new();
    let mut frees = Vec::new();
    let hex = |s: &str| usize::from_str_radix(s, 16).unwrap();
    for line in text.lines() {
        let mut parts = line.split(' ');
        match parts.next() {
            Some("s") => {
                let _len = parts.next();
                strings.push(parts.collect::<Vec<_>>().join(" "));
            }
            Some("i") => {
                let fields: Vec<usize> = parts.skip(1).map(hex).collect();
                let module = strings.get(fields[0]).cloned().unwrap_or_default();
                let functions = fields[1..]
                    .chunks(3)
                    .map(|f| strings.get(f[0]).cloned().unwrap_or_default())
                    .collect();
                ips.push((module, functions));
            }
            Some("t") => {
                let ip = hex(parts.next().unwrap());
                let parent = hex(parts.next().unwrap());
                traces.push((ip, parent));
            }
            Some("a") => {
                let size = hex(parts.next().unwrap()) as u64;
                let trace = hex(parts.next().unwrap());
                infos.push((size, trace));
            }
            Some(sign @ ("+" | "-")) => {
                let (size, mut trace) = infos[hex(parts.next().unwrap())];
                let mut functions = Vec::new();
                let mut module = None;
                while trace != 0 {
                    let (ip, parent) = traces[trace];
                    module.get_or_insert_with(|| ips[ip].0.clone());
                    functions.extend(ips[ip].1.iter().cloned());
                    trace = parent;
                }
                let module = module.unwrap_or_default();
                if sign == "+" {
                    allocations.push((size, functions, module));
                } else {
                    frees.push((size, module));
                }
            }
            _ => {}
        }
    }
    Heaptrack { allocations, frees }
}

/// heaptrack and `tracealloc run` on the same program: the same allocations (count and bytes),
/// the same leak, the same allocations under the leaking function. heaptrack's preload library
/// loads libstdc++, whose start-up allocates its exception pool: that one allocation is
/// heaptrack's own, and left out.
#[test]
fn run_totals_equal_heaptracks() {
    if preload().is_none() {
        return;
    }
    let tools = ["heaptrack", "zstd"];
    if let Some(missing) = tools.iter().find(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .map_or(true, |o| !o.status.success())
    }) {
        skip_or_fail(&format!("{missing} is not installed"));
        return;
    }
    let dir = scratch("run-heaptrack");
    let program = example("run_leak");
    let recorded = Command::new("heaptrack")
        .arg("-o")
        .arg(dir.join("ht"))
        .arg(&program)
        .output()
        .unwrap();
    assert!(
        recorded.status.success(),
        "{}",
        String::from_utf8_lossy(&recorded.stderr)
    );
    let data = dir.join("ht.zst");
    let text = Command::new("zstd").arg("-dc").arg(&data).output().unwrap();
    let heaptrack = parse_heaptrack(&String::from_utf8_lossy(&text.stdout));
    let own = |module: &str| module.contains("libstdc++") || module.contains("heaptrack");
    let counted: Vec<&(u64, Vec<String>, String)> = heaptrack
        .allocations
        .iter()
        .filter(|(_, _, module)| !own(module))
        .collect();
    let heaptrack_blocks = counted.len() as u64;
    let heaptrack_bytes: u64 = counted.iter().map(|a| a.0).sum();
    let freed_bytes: u64 = heaptrack
        .frees
        .iter()
        .filter(|(_, module)| !own(module))
        .map(|f| f.0)
        .sum();
    let heaptrack_leaked = heaptrack_bytes - freed_bytes;
    let heaptrack_leak_site: u64 = counted
        .iter()
        .filter(|(_, functions, _)| functions.iter().any(|f| f.contains("leak_here")))
        .count() as u64;

    run(&dir, &["-o", "run.json", "--", program.to_str().unwrap()]);
    let snapshot = json(&dir.join("run.json"));
    let totals = &snapshot["totals"];
    assert_eq!(
        (
            totals["total_blocks"].as_u64().unwrap(),
            totals["total_bytes"].as_u64().unwrap()
        ),
        (heaptrack_blocks, heaptrack_bytes),
        "allocations and bytes, as heaptrack counts them"
    );
    assert_eq!(
        totals["live_bytes"].as_u64().unwrap(),
        heaptrack_leaked,
        "leaked bytes"
    );
    assert_eq!(
        allocated_under(&snapshot, "leak_here").0,
        heaptrack_leak_site
    );
    assert_eq!(heaptrack_leak_site, 100);
}

/// `run --live`: the live view opens on the program (its output goes to a log), shows the leaking
/// line while it runs, closes when the program ends, and the summary follows as without `--live`.
#[test]
fn run_live_watches_the_program_until_it_ends() {
    if preload().is_none() {
        return;
    }
    if !Tmux::installed() {
        return;
    }
    let dir = scratch("run-live");
    let command = format!(
        "cd {} && {} run --live -o slow.json -- {}; echo RUN-EXITED-$?; sleep 30",
        dir.display(),
        cli().display(),
        example("run_slow_leak").display()
    );
    let tmux = Tmux::start(
        &format!("tracealloc-run-live-{}", std::process::id()),
        &command,
    );
    let line = format!(
        "run_slow_leak.rs:{}",
        line_of("run_slow_leak.rs", "// SLOW LEAK LINE")
    );
    let wait_for = |what: &str| {
        tmux.wait_for(
            Duration::from_secs(30),
            Duration::from_millis(50),
            format_args!("no {what}"),
            |text| text.contains(what).then(|| text.to_owned()),
        )
    };
    let view = wait_for(&line);
    assert!(view.contains("sites by line"), "the live view: {view}");
    let after = wait_for("RUN-EXITED-0");
    tmux.kill();
    assert!(after.contains("the program's output is in"), "{after}");
    assert!(after.contains("slow.json"), "{after}");
    let log = std::fs::read_to_string(dir.join("slow.json")).map(|_| ());
    assert!(log.is_ok(), "the snapshot is written");
    let summary_row = after
        .lines()
        .find(|l| l.contains(&line))
        .unwrap_or_default()
        .to_owned();
    assert!(
        summary_row.contains("146.48 KiB"),
        "150 x 1000 bytes: {after}"
    );
}

/// Ctrl-C on `tracealloc run` (SIGINT to the terminal's whole foreground group): the program
/// writes its snapshot as it stops, `run` outlives it, summarizes the snapshot and exits as the
/// program did (130); SIGTERM sent to `run` alone goes on to the program, the same way (143).
#[test]
fn run_summarizes_a_program_stopped_by_ctrl_c_or_sigterm() {
    use std::os::unix::process::CommandExt;
    if preload().is_none() {
        return;
    }
    let dir = scratch("run-stopped");
    let program = example("run_slow_leak");
    let line = line_of("run_slow_leak.rs", "// SLOW LEAK LINE");
    for (signal, to_group, code) in [
        (rustix::process::Signal::INT, true, 130),
        (rustix::process::Signal::TERM, false, 143),
    ] {
        let file = dir.join(format!("stopped-{code}.json"));
        let child = tracealloc_command(&["run", "-o", file.to_str().unwrap(), "--"])
            .arg(&program)
            .current_dir(&dir)
            .env_remove("TRACEALLOC_OUT")
            // A group of its own, as a terminal's foreground job has: the group's signal reaches
            // `run` and the program, not this test.
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The program leaks a block every 20 ms for 3 s: stop it part way.
        std::thread::sleep(Duration::from_millis(800));
        let pid = rustix::process::Pid::from_child(&child);
        if to_group {
            rustix::process::kill_process_group(pid, signal).unwrap();
        } else {
            rustix::process::kill_process(pid, signal).unwrap();
        }
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let said = format!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(output.status.code(), Some(code), "{said}");
        assert!(
            !stdout.contains("leaked 150 blocks"),
            "stopped part way: {said}"
        );
        assert!(
            said.contains(&format!(
                "the snapshot of {} is {}",
                program.display(),
                file.display()
            )),
            "{said}"
        );
        assert!(said.contains(&format!("run_slow_leak.rs:{line}")), "{said}");
        let (blocks, bytes) = allocated_under(&json(&file), "leak_slowly");
        assert!((5..150).contains(&blocks), "{blocks} blocks: {said}");
        assert_eq!(bytes, blocks * 1000);
    }
}

/// `tracealloc run` of a program it refuses, with no library to find (a regression that went on
/// would fail at once instead of building one): the exit status and stderr, after checking that
/// the program did not run (it would write `ran` in `dir`) and that no snapshot was written.
fn refused(dir: &Path, program: &Path) -> (Option<i32>, String) {
    let output = Command::new(installed_cli(dir))
        .current_dir(dir)
        .args(["run", "-o", "refused.json", "--"])
        .arg(program)
        .env_remove("TRACEALLOC_PRELOAD")
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("CARGO", "/nonexistent/cargo")
        .output()
        .unwrap();
    assert!(!dir.join("ran").exists(), "the program did not run");
    let written: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(written, Vec::<PathBuf>::new(), "no snapshot");
    assert!(!dir.join("cache").exists(), "no library looked for");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A static executable has no dynamic loader to preload with: refused, with the reason, in one
/// line. Built from C with `gcc -static` (the C library's static archive, libc6-dev).
#[test]
fn run_refuses_a_static_executable() {
    let dir = scratch("run-static");
    let source = dir.join("static_program.c");
    std::fs::write(
        &source,
        "#include <stdio.h>\nint main(void) {\n    FILE *f = fopen(\"ran\", \"w\");\n    \
         if (f) fclose(f);\n    return 0;\n}\n",
    )
    .unwrap();
    let program = dir.join("static_program");
    let built = Command::new("gcc")
        .arg("-static")
        .arg("-o")
        .arg(&program)
        .arg(&source)
        .output();
    match built {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            skip_or_fail(&format!(
                "gcc -static cannot link (the static C library, libc6-dev, is missing?): {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            return;
        }
        Err(e) => {
            skip_or_fail(&format!("gcc is not installed ({e})"));
            return;
        }
    }
    assert_eq!(
        refused(&dir, &program),
        (
            Some(1),
            format!(
                "tracealloc: {} is a static executable: there is no dynamic loader to preload \
                 tracealloc with, so tracealloc cannot see its allocations (build it dynamically \
                 linked, or add tracealloc as its global allocator)\n",
                program.display()
            )
        )
    );
}

/// A program that runs as another user (set-user-ID) or group (set-group-ID): the dynamic
/// loader's secure mode ignores `LD_PRELOAD`, so it is refused, with the reason, in one line. As
/// root, copies of an example owned by `nobody` (uid and gid 65534) with the bit; as another
/// user, a set-user-ID program of the system's (passwd, su...), refused before it runs.
#[test]
fn run_refuses_a_program_that_runs_as_another_user_or_group() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = scratch("run-setuid");
    let me = std::fs::metadata("/proc/self").unwrap();
    let message = |program: &Path| {
        format!(
            "tracealloc: {} runs as another user or group (set-user-ID or set-group-ID): the \
             dynamic loader ignores LD_PRELOAD for it, so tracealloc cannot see its allocations \
             (profile a copy without the bit)\n",
            program.display()
        )
    };
    if me.uid() != 0 {
        let system = ["passwd", "su", "chsh", "newgrp", "gpasswd", "mount"]
            .iter()
            .flat_map(|name| {
                [
                    Path::new("/usr/bin").join(name),
                    Path::new("/bin").join(name),
                ]
            })
            .find(|path| {
                std::fs::metadata(path)
                    .is_ok_and(|m| m.permissions().mode() & 0o4000 != 0 && m.uid() != me.uid())
            });
        let Some(program) = system else {
            skip_or_fail(
                "no set-user-ID program of another user's found (passwd, su...), and a copy of \
                 our own with the bit would run as ourselves: run as root to make one",
            );
            return;
        };
        assert_eq!(refused(&dir, &program), (Some(1), message(&program)));
        return;
    }
    let programs = dir.join("programs");
    std::fs::create_dir_all(&programs).unwrap();
    for (name, bit, owner) in [
        ("setuid", 0o4755, (Some(65534), None)),
        ("setgid", 0o2755, (None, Some(65534))),
    ] {
        let program = programs.join(name);
        std::fs::copy(example("run_leak"), &program).unwrap();
        std::os::unix::fs::chown(&program, owner.0, owner.1).unwrap();
        // After chown, which clears the bits.
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(bit)).unwrap();
        assert_eq!(
            refused(&dir, &program),
            (Some(1), message(&program)),
            "{name}"
        );
    }
    // The bit on a file of our own changes nothing: not refused (it finds no library here).
    let own = programs.join("setuid-own");
    std::fs::copy(example("run_leak"), &own).unwrap();
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let output = Command::new(installed_cli(&dir))
        .args(["run", "--"])
        .arg(&own)
        .env_remove("TRACEALLOC_PRELOAD")
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("CARGO", "/nonexistent/cargo")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot build the preload library: cannot run /nonexistent/cargo"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
