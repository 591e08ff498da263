//! Runs each test program in its own process (allocation counts are per process) and checks it
//! succeeded; the programs assert exact figures themselves.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `program`, killing it (and failing) if it takes longer than `limit`.
fn run(program: &str, args: &[&str], envs: &[(&str, &str)], limit: Duration) -> String {
    let mut child = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start test program");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            panic!("{program} did not finish within {limit:?}: a hang");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

const LIMIT: Duration = Duration::from_secs(120);

/// The numbered snapshots in `dir`: (seq, live bytes), in order, each loaded whole.
fn periodic_snapshots(dir: &std::path::Path) -> Vec<(u64, u64)> {
    let mut found: Vec<(u64, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name()?.to_str()?.to_owned();
            let seq = name
                .strip_prefix("heap-")?
                .strip_suffix(".json")?
                .parse()
                .ok()?;
            let snapshot = tracealloc::model::Snapshot::load(&path)
                .unwrap_or_else(|e| panic!("a complete snapshot: {e:#}"));
            Some((seq, snapshot.totals.live_bytes))
        })
        .collect();
    found.sort();
    found
}

/// `TRACEALLOC_INTERVAL` writes numbered snapshots while the program runs, keeps the last
/// `TRACEALLOC_KEEP`, and the exit snapshot ends the series.
#[test]
fn periodic_snapshots_are_numbered_and_the_oldest_removed() {
    let dir = std::env::temp_dir().join(format!("tracealloc-periodic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pattern = dir.join("heap-{seq}.json");
    let out = run(
        env!("CARGO_BIN_EXE_periodic"),
        &["until", "6"],
        &[
            ("TRACEALLOC_OUT", pattern.to_str().unwrap()),
            ("TRACEALLOC_INTERVAL", "100ms"),
            ("TRACEALLOC_KEEP", "3"),
        ],
        LIMIT,
    );
    assert!(out.contains("periodic ok"), "{out}");
    let found = periodic_snapshots(&dir);
    // Three kept; a fourth when the program exited between writing one and removing the oldest.
    assert!(
        (3..=4).contains(&found.len()),
        "the last three are kept: {found:?}"
    );
    assert!(found[0].0 >= 3, "older ones were removed: {found:?}");
    assert!(
        found.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "consecutive: {found:?}"
    );
    // The leak grows while the program runs (the last one may come as it stops).
    assert!(found[1].1 > found[0].1, "the leak grows: {found:?}");
    assert!(
        dir.join("heap-exit.json").exists(),
        "the exit snapshot ends the series"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A process killed while it writes snapshots leaves only complete snapshot files.
#[test]
fn a_process_killed_mid_dump_leaves_only_complete_files() {
    let dir = std::env::temp_dir().join(format!("tracealloc-killed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pattern = dir.join("heap-{seq}.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_periodic"))
        .arg("60000")
        .env("TRACEALLOC_OUT", &pattern)
        .env("TRACEALLOC_INTERVAL", "10ms")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it at some point while it dumps, once at least one snapshot is complete.
    let started = Instant::now();
    while periodic_snapshots(&dir).is_empty() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(137));
    child.kill().unwrap();
    child.wait().unwrap();
    let found = periodic_snapshots(&dir);
    assert!(!found.is_empty(), "snapshots were written");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn measure_without_the_profiler_says_what_to_add() {
    let out = run(
        env!("CARGO_BIN_EXE_measure_without_profiler"),
        &[],
        &[],
        LIMIT,
    );
    assert!(out.contains("measure without profiler ok"), "{out}");
}

#[test]
fn temporaries_and_realloc_growth_are_exact() {
    let out = run(env!("CARGO_BIN_EXE_temporaries"), &[], &[], LIMIT);
    assert!(out.contains("temporaries ok"), "{out}");
}

#[test]
fn the_timeline_climbs_to_the_peak_and_comes_down() {
    let out = run(env!("CARGO_BIN_EXE_timeline"), &[], &[], LIMIT);
    assert!(out.contains("timeline ok"), "{out}");
}

#[test]
fn attribution_by_line_function_file_and_stack() {
    let out = run(env!("CARGO_BIN_EXE_attribution"), &[], &[], LIMIT);
    assert!(out.contains("attribution ok"));
}

/// Without frame pointers (forced here), the DWARF unwinder gives the same attribution, exactly.
#[test]
fn attribution_is_the_same_with_the_unwinder() {
    let out = run(
        env!("CARGO_BIN_EXE_attribution"),
        &["dwarf-unwind"],
        &[("TRACEALLOC_CAPTURE", "unwind")],
        LIMIT,
    );
    assert!(out.contains("attribution ok"));
}

#[test]
fn threads_are_named_and_cross_thread_frees_stay_charged_to_the_allocator() {
    let out = run(env!("CARGO_BIN_EXE_threads"), &[], &[], LIMIT);
    assert!(out.contains("threads ok"));
}

#[test]
fn diff_shows_exact_growth_of_a_leak_and_zero_for_a_balanced_site() {
    let out = run(env!("CARGO_BIN_EXE_leak_diff"), &[], &[], LIMIT);
    assert!(out.contains("leak_diff ok"));
}

#[test]
fn snapshots_of_two_runs_diff_by_symbols() {
    let dir = std::env::temp_dir().join(format!("tracealloc-runs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (old, new) = (dir.join("old.json"), dir.join("new.json"));
    let program = env!("CARGO_BIN_EXE_leak_diff");
    run(program, &["10", old.to_str().unwrap()], &[], LIMIT);
    let leak_line = run(program, &["30", new.to_str().unwrap()], &[], LIMIT);
    let old = tracealloc::Snapshot::load(&old).unwrap();
    let new = tracealloc::Snapshot::load(&new).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_ne!(old.meta().pid, new.meta().pid);
    let top = new.diff(&old).top(1, tracealloc::GroupBy::Line);
    assert!(top[0].key.ends_with(leak_line.trim()), "{top:#?}");
    assert_eq!((top[0].bytes_diff, top[0].blocks_diff), (20 * 256, 20));
    let by_function = new.diff(&old).top(1, tracealloc::GroupBy::Function);
    assert_eq!(by_function[0].key, "leak_diff::leak");
}

#[test]
fn snapshots_in_a_loop_while_threads_allocate_finish() {
    let out = run(env!("CARGO_BIN_EXE_concurrency"), &[], &[], LIMIT);
    assert!(out.contains("concurrency ok"));
}

#[test]
fn alignments_reallocs_failures_zero_sizes_tls_destructors_and_fork() {
    let out = run(env!("CARGO_BIN_EXE_edges"), &[], &[], LIMIT);
    assert!(out.contains("edges ok"));
    // Sampled mode lays small blocks out without a header (most of them at 4 KiB) or with one
    // (nearly all at 1 byte): the same edges, the same exact figures.
    for mean in ["4096", "1"] {
        let sampled = [("TRACEALLOC_SAMPLE", mean)];
        let out = run(env!("CARGO_BIN_EXE_edges"), &[], &sampled, LIMIT);
        assert!(
            out.contains("edges ok"),
            "sampled every {mean} bytes: {out}"
        );
    }
}

/// The exit snapshot is raw by default (return addresses and modules, symbolized when read, here
/// as the CLI does it) and symbolized in process with `TRACEALLOC_SYMBOLIZE=process`: the same
/// figures either way.
#[test]
fn a_snapshot_is_written_at_exit_when_asked() {
    let dir = std::env::temp_dir().join(format!("tracealloc-exit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (how, symbolize) in [
        ("return", "later"),
        ("exit", "later"),
        ("return", "process"),
    ] {
        let name = format!("{how}-{symbolize}-");
        let pattern = dir.join(format!("{name}{{pid}}.json"));
        let mut envs = vec![("TRACEALLOC_OUT", pattern.to_str().unwrap())];
        if symbolize == "process" {
            envs.push(("TRACEALLOC_SYMBOLIZE", "process"));
        }
        run(env!("CARGO_BIN_EXE_exit_snapshot"), &[how], &envs, LIMIT);
        let written: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(&name))
            .collect();
        assert_eq!(written.len(), 1, "{written:?}");
        assert!(
            !written[0].to_str().unwrap().contains("{pid}"),
            "the pid is filled in"
        );
        let raw = tracealloc::model::Snapshot::load(&written[0]).unwrap();
        assert_eq!(raw.is_raw(), symbolize == "later");
        let options = tracealloc_snapshot::symbolize::SymbolizeOptions::default();
        let (snapshot, _) =
            tracealloc_snapshot::symbolize::load_symbolized(&written[0], &options).unwrap();
        assert!(!snapshot.is_raw() && snapshot.symbolization_notes.is_empty());
        let leak = snapshot
            .statistics(tracealloc::GroupBy::Function)
            .into_iter()
            .find(|s| s.key == "exit_snapshot::leak_at_exit")
            .expect("the leak is in the exit snapshot");
        assert_eq!((leak.live_bytes, leak.live_blocks), (12_345, 1));
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A program stopped by SIGTERM or SIGINT (a service manager's stop, a Ctrl-C) writes its exit
/// snapshot, then ends by that signal as it would have; a program that handles SIGTERM itself
/// keeps its handler, and its normal exit writes the snapshot.
#[test]
fn a_snapshot_is_written_when_a_signal_stops_the_program() {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let dir = std::env::temp_dir().join(format!("tracealloc-signal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (signal, argument, blocks) in [
        (libc::SIGTERM, "", 10),
        (libc::SIGINT, "", 10),
        (libc::SIGTERM, "own-handler", 11),
    ] {
        let path = dir.join(format!("stopped-{signal}-{argument}.json"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_stopped_by_signal"))
            .arg(argument)
            .env("TRACEALLOC_OUT", &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready, "ready\n");
        let sent = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = child.wait().unwrap();
        if argument == "own-handler" {
            assert_eq!(status.code(), Some(3), "{status}");
        } else {
            assert_eq!(
                status.signal(),
                Some(signal),
                "ends by the signal: {status}"
            );
        }
        let options = tracealloc_snapshot::symbolize::SymbolizeOptions::default();
        let (snapshot, _) = tracealloc_snapshot::symbolize::load_symbolized(&path, &options)
            .unwrap_or_else(|e| panic!("no snapshot after signal {signal} {argument}: {e}"));
        let leak = snapshot
            .statistics(tracealloc::GroupBy::Function)
            .into_iter()
            .find(|s| s.key == "stopped_by_signal::leak")
            .expect("the leak is in the snapshot");
        assert_eq!((leak.live_blocks, leak.live_bytes), (blocks, blocks * 1000));
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sampling_keeps_totals_exact_and_estimates_sites() {
    let out = run(env!("CARGO_BIN_EXE_sampling"), &[], &[], LIMIT);
    assert!(out.contains("sampling ok"), "{out}");
}

/// The `recurse` frames kept in the truncated stack of the `depth` program run with `depth`.
fn recurse_frames_kept(depth: Option<&str>) -> usize {
    let expected = depth.unwrap_or("128");
    let envs: Vec<(&str, &str)> = depth.map(|d| ("TRACEALLOC_DEPTH", d)).into_iter().collect();
    let out = run(env!("CARGO_BIN_EXE_depth"), &[expected], &envs, LIMIT);
    assert!(out.contains("depth ok"), "{out}");
    out.lines()
        .find_map(|l| l.strip_prefix("recurse frames "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no frame count in {out}"))
}

/// A recursion deeper than the limit is one stack rooted at `[truncated]`; the default limit is
/// 128 frames and `TRACEALLOC_DEPTH` moves it frame for frame.
#[test]
fn truncated_stacks_are_marked_and_the_depth_is_configurable() {
    let default = recurse_frames_kept(None);
    let at_16 = recurse_frames_kept(Some("16"));
    let at_32 = recurse_frames_kept(Some("32"));
    assert_eq!(at_32 - at_16, 16, "16 more frames kept: {at_16} -> {at_32}");
    assert_eq!(
        default - at_32,
        96,
        "128 frames by default: {at_32} -> {default}"
    );
    // A limit of one frame still finds the frame pointers (the probe walks two).
    let out = run(
        env!("CARGO_BIN_EXE_depth"),
        &["1"],
        &[("TRACEALLOC_DEPTH", "1")],
        LIMIT,
    );
    assert!(out.contains("method frame-pointers"), "{out}");
}

/// An unoptimized profiler says so once per process, on stderr, with the fix; an optimized one
/// says nothing. (This workspace optimizes tracealloc in dev builds too, as the README recommends;
/// CI runs this test once more with `opt-level = 0` for it, for the other side.)
#[test]
fn the_unoptimized_build_notice_appears_once() {
    let out = Command::new(env!("CARGO_BIN_EXE_threads"))
        .output()
        .expect("run threads");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = usize::from(!tracealloc::PROFILER_OPTIMIZED);
    assert_eq!(
        stderr
            .matches("the profiler is compiled without optimization")
            .count(),
        expected,
        "{stderr}"
    );
    if expected == 1 {
        assert!(
            stderr.contains("[profile.dev.package.tracealloc]\n    opt-level = 3"),
            "{stderr}"
        );
    }
}

/// A sampled realloc that is a thread's first event captures with the DWARF unwinder, whose caches
/// allocate: it must not re-enter the profiler (it would recurse until the stack overflows).
#[test]
fn a_sampled_realloc_does_not_reenter_the_profiler() {
    let out = run(
        env!("CARGO_BIN_EXE_realloc_reentry"),
        &[],
        &[("TRACEALLOC_CAPTURE", "unwind")],
        LIMIT,
    );
    assert!(out.contains("realloc reentry ok"), "{out}");
}

/// Two `Profiler` values with different settings: the one that made the first allocation decides;
/// the other's request is refused, said once on stderr, and every block is freed under the layout
/// it was made with (the program checks its contents and totals across every scheme).
#[test]
fn a_second_profiler_with_other_settings_is_refused_once() {
    let out = Command::new(env!("CARGO_BIN_EXE_two_profilers"))
        .output()
        .expect("run two_profilers");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("two profilers ok"), "{stdout}");
    assert_eq!(
        stderr
            .matches("tracealloc: a second Profiler asks for")
            .count(),
        1,
        "said once: {stderr}"
    );
    assert!(
        stderr.contains(
            "a second Profiler asks for sampling every 4096 bytes, but the first allocation set \
             the profiler up with exact mode (running: exact); the mode is decided once per \
             process, so the second request is ignored"
        ),
        "{stderr}"
    );
}

/// `(sampling bytes, chosen by TRACEALLOC_SAMPLE, live blocks of the site: 2,000 blocks and their Vec)`.
fn sample_env(program: &str, sample: Option<&str>) -> (u64, bool, u64) {
    let envs: Vec<(&str, &str)> = sample
        .map(|s| ("TRACEALLOC_SAMPLE", s))
        .into_iter()
        .collect();
    let out = run(program, &[], &envs, LIMIT);
    let words: Vec<&str> = out.split_whitespace().collect();
    match words.as_slice() {
        ["sampling", bytes, "from_env", from_env, "blocks", blocks] => (
            bytes.parse().unwrap(),
            from_env.parse().unwrap(),
            blocks.parse().unwrap(),
        ),
        _ => panic!("unexpected output: {out}"),
    }
}

/// `TRACEALLOC_SAMPLE` switches an exact build to sampling and a sampled build to exact mode, and
/// the snapshot says which mode ran and who chose it.
#[test]
fn tracealloc_sample_switches_the_mode_without_a_rebuild() {
    let exact = env!("CARGO_BIN_EXE_sample_env");
    let sampled = env!("CARGO_BIN_EXE_sample_env_sampled");
    assert_eq!(sample_env(exact, None), (0, false, 2001));
    let (bytes, from_env, estimate) = sample_env(exact, Some("65536"));
    assert_eq!((bytes, from_env), (65536, true));
    assert_ne!(estimate, 2001, "sampled: the site's figure is an estimate");
    let (bytes, from_env, _) = sample_env(sampled, None);
    assert_eq!((bytes, from_env), (65536, false));
    assert_eq!(sample_env(sampled, Some("0")), (0, true, 2001));
}

/// 2,000 named threads, 16 at a time: a few reused states, every leaked block still attributed.
#[test]
fn exited_threads_are_reclaimed_and_their_blocks_stay_attributed() {
    let out = run(env!("CARGO_BIN_EXE_churn"), &[], &[], LIMIT);
    assert!(out.contains("churn ok"), "{out}");
}

/// 100,000 threads named `conn-<n>`, `req-<hex>` or `conn-<letters>`: a few reused states, the
/// profiler's memory bounded, every block attributed, the threads shown as their family (`conn-*`,
/// `req-*`) or, named in ways no family catches, as threads of several names.
#[test]
fn uniquely_named_threads_share_a_few_states() {
    for scheme in ["numbered", "hex", "words"] {
        let out = run(
            env!("CARGO_BIN_EXE_unique_thread_names"),
            &[scheme],
            &[],
            LIMIT,
        );
        assert!(
            out.contains(&format!("unique thread names ok ({scheme})")),
            "{out}"
        );
    }
}

/// Past the cap on distinct stacks, new stacks go to `[other stacks]`, counted exactly.
#[test]
fn distinct_stacks_are_capped_and_the_rest_counted_in_other_stacks() {
    let out = run(
        env!("CARGO_BIN_EXE_stack_cap"),
        &[],
        &[("TRACEALLOC_MAX_STACKS", "50")],
        LIMIT,
    );
    assert!(out.contains("stack cap ok"), "{out}");
}

/// Every method of the snapshot type runs untracked, clone and drop included.
#[test]
fn looking_at_a_snapshot_does_not_change_the_next_one() {
    let out = run(env!("CARGO_BIN_EXE_untracked"), &[], &[], LIMIT);
    assert!(out.contains("untracked ok"), "{out}");
}

/// Stacks reach from the thread's closure or `main` to the allocating call (CI runs this program
/// in release too, with short names, with and without the unwinder).
#[test]
fn thread_stacks_start_at_the_threads_closure_or_main() {
    let out = run(env!("CARGO_BIN_EXE_thread_stacks"), &[], &[], LIMIT);
    assert!(out.contains("thread stacks ok"), "{out}");
    let out = run(
        env!("CARGO_BIN_EXE_thread_stacks"),
        &[],
        &[("TRACEALLOC_CAPTURE", "unwind")],
        LIMIT,
    );
    assert!(out.contains("thread stacks ok (dwarf-unwind)"), "{out}");
}

/// Lifetimes mode: a site's mean lifetime is how long its blocks lived (blocks freed after 200 ms,
/// blocks freed at once, blocks live 100 ms at the snapshot), within the coarse clock's steps (up
/// to 4 ms); `TRACEALLOC_LIFETIMES=0` turns the program's `Profiler::lifetimes()` off.
#[test]
fn lifetimes_mode_measures_how_long_blocks_live() {
    let program = env!("CARGO_BIN_EXE_lifetimes");
    let out: serde_json::Value = serde_json::from_str(&run(program, &[], &[], LIMIT)).unwrap();
    assert_eq!(out["lifetimes"], true, "{out}");
    let mean = |name: &str| {
        let pair = &out["mean_us"][name];
        (pair[0].as_f64().unwrap(), pair[1].as_u64().unwrap())
    };
    let (long, long_blocks) = mean("long_lived");
    assert_eq!(long_blocks, 100, "{out}");
    // Slept 200 ms; a loaded machine may oversleep, never undersleep.
    assert!((195_000.0..2_000_000.0).contains(&long), "{out}");
    let (short, short_blocks) = mean("short_lived");
    assert_eq!(short_blocks, 100_000, "{out}");
    assert!(short < 100.0, "freed at once: {out}");
    let (live, live_blocks) = mean("still_live");
    assert_eq!(live_blocks, 10, "{out}");
    assert!((95_000.0..2_000_000.0).contains(&live), "{out}");

    let off: serde_json::Value =
        serde_json::from_str(&run(program, &[], &[("TRACEALLOC_LIFETIMES", "0")], LIMIT)).unwrap();
    assert_eq!(off["lifetimes"], false, "{off}");
    assert_eq!(off["mean_us"]["long_lived"][0], 0.0, "{off}");
}

/// Sampled mode: blocks left out carry nothing, the inner allocator is asked for exactly what the
/// program asked for, and every figure stays exact through reallocs, cross-thread frees and the
/// profiler's own blocks.
#[test]
fn sampled_blocks_carry_a_record_only_when_sampled() {
    let out = run(env!("CARGO_BIN_EXE_sampled_blocks"), &[], &[], LIMIT);
    assert!(out.contains("sampled blocks ok"), "{out}");
}

/// Sampled mode's short path for events left out by sampling: exact figures, visible to other
/// threads at once, a peak within 64 KiB of the true one, and measures that count every event.
#[test]
fn sampled_short_path_keeps_figures_exact_and_the_peak_close() {
    let out = run(env!("CARGO_BIN_EXE_sampled_short_path"), &[], &[], LIMIT);
    assert!(out.contains("sampled short path ok"), "{out}");
}

/// The C allocation layer in process (`tracealloc::c_allocations!()`): libc's `strdup` called in
/// a loop is charged to the Rust line that called it, through the C frames (DWARF unwinding: the
/// C library has no frame pointers), and each Rust allocation is counted once.
#[test]
fn c_allocations_are_charged_to_the_rust_line_through_the_c_frames() {
    let out = Command::new(env!("CARGO_BIN_EXE_c_allocations"))
        .env("TRACEALLOC_CAPTURE", "unwind")
        .output()
        .expect("run c_allocations");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("c allocations: ok"), "{stdout}");
}

#[test]
fn a_program_calling_top_in_a_loop_stays_flat() {
    let out = run(env!("CARGO_BIN_EXE_snapshot_loop"), &[], &[], LIMIT);
    assert!(out.contains("snapshot_loop ok"), "{out}");
}

/// The sampling interval changed while the program runs: estimates unbiased across the change,
/// live estimates back to zero once freed, totals exact.
#[test]
fn sampling_interval_changes_keep_estimates_unbiased() {
    let out = run(env!("CARGO_BIN_EXE_sampling_interval"), &[], &[], LIMIT);
    assert!(out.contains("sampling interval ok"), "{out}");
}
