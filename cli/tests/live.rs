//! A running program serving a control socket (`TRACEALLOC_LISTEN`), leaking on command: this test
//! runs itself as that program (with `LIVE_TEST_ROLE=leaker`) and checks, from outside,
//! - `tracealloc snapshot` twice (by process id, then by socket) and the diff names the leak;
//! - 1,000 connections that go away, send garbage, oversized or half requests leave the program's
//!   memory and threads as they were; a client that holds its connection silently and one that
//!   trickles its request hold nobody else back, and are cut off at the program's deadline;
//! - `tracealloc control PID reset-peak` sets the peak to the live figures, and it counts from
//!   there;
//! - another user is refused, by the socket's mode and, past it, by the peer's credentials;
//! - started with capture off, stacks appear only for blocks allocated after `start`, and the
//!   totals stay exact throughout;
//! - started sampled (`TRACEALLOC_SAMPLE`), `tracealloc control PID sample 4096` changes the
//!   interval (`stats` and the snapshot show it, `info` says it changed); bad values are refused
//!   by the CLI and by the program; a program in exact mode refuses with a clear message;
//! - `tracealloc live` under tmux: the leak's row appears and its change grows; `s` saves a
//!   snapshot file; `+` on a program in exact mode says why it cannot sample; `r` brings the peak
//!   down to live; `o` sorts, `b` groups (by function: the function's name); `c` switches capture
//!   off (new blocks go to the capture-off row) and on; `/` filters the rows; `p` freezes them.
//!
//! (A test without the harness, so that tracealloc is the program's global allocator.)

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{Tmux, scratch, skip_or_fail, stderr_of_failure_in, stdout_in, wait_until};
use tracealloc::model::control::{self, Request};
use tracealloc_snapshot::symbolize::{SymbolizeOptions, Symbolizer};

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

static CACHE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

const LEAK_LINE: u32 = line!() + 4;
#[inline(never)]
fn leak(n: usize) {
    for i in 0..n {
        let block = vec![(i % 251) as u8; 1000];
        CACHE.lock().unwrap().push(block);
    }
}

/// Allocates a block of `n` bytes and frees it: the peak rises by `n`, live memory is unchanged.
#[inline(never)]
fn spike(n: usize) {
    std::hint::black_box(vec![1u8; n]);
}

/// The program: reads commands (`leak N`, `spike N`, `ping`) and answers `done` to each.
fn leaker() {
    CACHE.lock().unwrap().reserve_exact(10_000);
    let stdin = std::io::stdin();
    let mut line = String::with_capacity(64);
    let mut out = std::io::stdout().lock();
    while stdin.lock().read_line(&mut line).unwrap_or(0) > 0 {
        if let Some(n) = line.trim().strip_prefix("leak ") {
            leak(n.parse().unwrap());
        } else if let Some(n) = line.trim().strip_prefix("spike ") {
            spike(n.parse().unwrap());
        }
        line.clear();
        out.write_all(b"done\n").unwrap();
        out.flush().unwrap();
    }
}

/// A running leaker and its socket.
struct Program {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    socket: PathBuf,
}

impl Program {
    fn start(dir: &Path, envs: &[(&str, &str)]) -> Program {
        let pattern = dir.join("heap-{pid}.sock");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("LIVE_TEST_ROLE", "leaker")
            .env("TRACEALLOC_LISTEN", &pattern)
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
        let socket = dir.join(format!("heap-{}.sock", child.id()));
        let mut program = Program {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            socket,
        };
        program.command("ping");
        let listening = wait_until(Duration::from_secs(10), Duration::from_millis(10), || {
            program.socket.exists().then_some(())
        });
        assert!(listening.is_some(), "no socket");
        program
    }

    fn command(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").unwrap();
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).unwrap();
        assert_eq!(answer, "done\n");
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A line of `/proc/PID/status`, as a number (`Threads`, `VmRSS` in KiB).
    fn status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
            .unwrap()
            .parse()
            .unwrap()
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn leak_key() -> String {
    format!("live.rs:{LEAK_LINE}")
}

fn snapshots_from_outside_name_the_leak(dir: &Path) {
    let mut program = Program::start(dir, &[]);
    let pid = program.pid().to_string();
    stdout_in(dir, &["snapshot", &pid, "-o", "a.json"]);
    program.command("leak 50");
    let socket = program.socket.to_str().unwrap();
    stdout_in(dir, &["snapshot", socket, "-o", "b.json"]);
    let diff = stdout_in(dir, &["diff", "a.json", "b.json", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&diff).unwrap();
    let top = &rows[0];
    assert!(
        top["key"].as_str().unwrap().ends_with(&leak_key()),
        "{diff}"
    );
    assert_eq!(
        (top["bytes_diff"].as_i64(), top["blocks_diff"].as_i64()),
        (Some(50_000), Some(50))
    );
    let stats = stdout_in(dir, &["control", &pid, "stats"]);
    assert!(
        stats.contains("capture: on") && stats.contains("mode: exact"),
        "{stats}"
    );
}

fn bad_clients_leave_the_program_as_it_was(dir: &Path) {
    let mut program = Program::start(dir, &[]);
    program.command("leak 5");
    let ask = || control::ask_stats(&program.socket, Request::Stats).unwrap();
    let (before, threads, rss) = (ask(), program.status("Threads"), program.status("VmRSS"));
    for i in 0..1000u32 {
        let mut stream = UnixStream::connect(&program.socket).unwrap();
        match i % 4 {
            0 => {} // connects and goes away
            1 => {
                let _ = stream.write_all(&u32::MAX.to_le_bytes()); // oversized
            }
            2 => {
                let _ = stream.write_all(&5u32.to_le_bytes());
                let _ = stream.write_all(b"\xff\xfe\x00ab"); // not UTF-8
            }
            _ => {
                let _ = stream.write_all(&9u32.to_le_bytes());
                let _ = stream.write_all(b"snap"); // half a request
            }
        }
    }
    // Two clients that hold their connection, one silent, one trickling a long request a byte
    // every 100 ms: others are answered meanwhile (sooner than the 2 s the program gives a
    // request, so not after it), and the program cuts both off at that deadline.
    let cut_off = "the program refused: cannot read the request: past the deadline";
    let started = Instant::now();
    let silent = UnixStream::connect(&program.socket).unwrap();
    let mut trickling = UnixStream::connect(&program.socket).unwrap();
    for held in [&silent, &trickling] {
        held.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
    }
    trickling.write_all(&4000u32.to_le_bytes()).unwrap();
    let trickler = std::thread::spawn(move || {
        while trickling.write_all(b"s").is_ok() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let reply = control::read_response(&mut trickling, 1024);
        (reply.map_err(|e| e.to_string()), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    let meanwhile = ask();
    assert!(
        asked.elapsed() < Duration::from_millis(1500),
        "stats took {:?} behind the slow clients",
        asked.elapsed()
    );
    assert_eq!(meanwhile.totals.live_bytes, before.totals.live_bytes);
    let silence = control::read_response(&mut &silent, 1024).map_err(|e| e.to_string());
    assert_eq!(silence, Err(cut_off.to_owned()));
    let (trickled, held) = trickler.join().unwrap();
    assert_eq!(trickled, Err(cut_off.to_owned()));
    assert!(
        (Duration::from_secs(2)..Duration::from_secs(6)).contains(&held),
        "the trickling client was cut off after {held:?}"
    );
    drop(silent);
    let garbage = control::ask(&program.socket, Request::Stats, 0, Duration::from_secs(5));
    assert!(
        garbage.is_err(),
        "a reply over the client's limit is refused"
    );
    let after = ask();
    assert_eq!(after.totals.live_bytes, before.totals.live_bytes);
    assert_eq!(after.totals.live_blocks, before.totals.live_blocks);
    assert_eq!(program.status("Threads"), threads, "no thread left behind");
    let grown = program.status("VmRSS").saturating_sub(rss);
    assert!(grown < 2048, "resident memory grew by {grown} KiB");
}

fn the_peak_resets_when_asked(dir: &Path) {
    let mut program = Program::start(dir, &[]);
    let pid = program.pid().to_string();
    program.command("leak 5");
    program.command("spike 1000000");
    let socket = program.socket.clone();
    let ask = || control::ask_stats(&socket, Request::Stats).unwrap();
    let before = ask();
    assert!(
        before.totals.peak_bytes >= before.totals.live_bytes + 1_000_000,
        "{before:?}"
    );
    // `control reset-peak` prints the figures after the reset: the peak is the live figures.
    let printed = stdout_in(dir, &["control", &pid, "reset-peak"]);
    let figures_of = |label: &str| {
        printed
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label} in {printed}"))
            .to_owned()
    };
    assert_eq!(figures_of("peak: "), figures_of("live: "), "{printed}");
    let reset = ask();
    assert_eq!(reset.totals.live_bytes, before.totals.live_bytes);
    assert_eq!(
        (reset.totals.peak_bytes, reset.totals.peak_blocks),
        (reset.totals.live_bytes, reset.totals.live_blocks)
    );
    // The peak counts again from there: a block of 2,000 bytes freed at once is all it gains.
    program.command("spike 2000");
    let after = ask();
    assert_eq!(after.totals.live_bytes, reset.totals.live_bytes);
    assert_eq!(after.totals.peak_bytes, reset.totals.live_bytes + 2000);
    assert_eq!(after.totals.peak_blocks, reset.totals.live_blocks + 1);
}

fn other_users_are_refused(dir: &Path) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        skip_or_fail("connecting as another user needs root to switch users");
        return;
    }
    let program = Program::start(dir, &[]);
    // A copy of the CLI that user `nobody` can run.
    let cli = dir.join("tracealloc");
    std::fs::copy(common::cli(), &cli).unwrap();
    std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = || {
        let out = Command::new(&cli)
            .args(["control", program.socket.to_str().unwrap(), "stats"])
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{:?} {} {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let mode = std::fs::metadata(&program.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is the user's alone");
    let denied = as_nobody();
    assert!(denied.contains("Permission denied"), "{denied}");
    // Past the file's mode, the server checks who is calling.
    std::fs::set_permissions(&program.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let refused = as_nobody();
    assert!(
        refused.contains("the program refused: user 65534 is not the program's user (0)"),
        "{refused}"
    );
    assert_eq!(
        refused.matches("refused").count(),
        1,
        "said once: {refused}"
    );
}

fn capture_starts_when_asked(dir: &Path) {
    let mut program = Program::start(dir, &[("TRACEALLOC_CAPTURE_AT_START", "0")]);
    program.command("leak 10");
    let pid = program.pid().to_string();
    assert!(stdout_in(dir, &["control", &pid, "stats"]).contains("capture: off"));
    stdout_in(dir, &["control", &pid, "start"]);
    program.command("leak 20");
    // The program sends its return addresses (it loads no debug info); the client names them.
    let mut snapshot = control::ask_snapshot(&program.socket).unwrap();
    assert!(snapshot.is_raw());
    let mut symbolizer = Symbolizer::new(SymbolizeOptions::default());
    symbolizer.symbolize(&mut snapshot);
    assert!(!snapshot.is_raw() && snapshot.symbolization_notes.is_empty());
    let stats = snapshot.statistics(tracealloc::GroupBy::Line);
    let leak = stats.iter().find(|s| s.key.ends_with(&leak_key())).unwrap();
    assert_eq!((leak.live_bytes, leak.live_blocks), (20_000, 20));
    let off = stats
        .iter()
        .find(|s| s.key == tracealloc::model::CAPTURE_OFF_FRAME)
        .expect("a site for what was allocated while capture was off");
    assert!(off.live_bytes >= 10_000 && off.live_blocks >= 10, "{off:?}");
    assert!(snapshot.profiler.captures.capture_off >= 10);
    snapshot.save(dir.join("started.json")).unwrap();
    let info = stdout_in(dir, &["info", "started.json"]);
    let explained = format!(
        "{} allocated while stack capture was off (before it started, or after a stop: the site \
         [allocated while capture was off])",
        tracealloc::model::human_count(snapshot.profiler.captures.capture_off)
    );
    assert!(info.contains(&explained), "{info}");
    let live: u64 = snapshot.sites.iter().map(|s| s.live_bytes).sum();
    assert_eq!(
        live, snapshot.totals.live_bytes,
        "every live byte is counted"
    );
}

fn the_sampling_interval_changes_when_asked(dir: &Path) {
    let mut program = Program::start(dir, &[("TRACEALLOC_SAMPLE", "65536")]);
    let pid = program.pid().to_string();
    program.command("leak 100");
    let stats = stdout_in(dir, &["control", &pid, "stats"]);
    assert!(stats.contains("(65536 bytes)"), "{stats}");
    let changed = stdout_in(dir, &["control", &pid, "sample", "4096"]);
    assert!(
        changed.contains("mode: sampled every 4 KiB on average (4096 bytes)"),
        "{changed}"
    );
    let stats = stdout_in(dir, &["control", &pid, "stats"]);
    assert!(stats.contains("(4096 bytes)"), "{stats}");
    program.command("leak 100");
    let snapshot = control::ask_snapshot(&program.socket).unwrap();
    assert_eq!(snapshot.meta.capture.sampling_bytes, 4096);
    assert_eq!(snapshot.meta.capture.sampling_changes, 1);
    assert_eq!(snapshot.meta.capture.sampling_history, [65536, 4096]);
    // Totals stay exact whatever the interval.
    assert!(snapshot.totals.live_blocks >= 200);
    snapshot.save(dir.join("sampled.json")).unwrap();
    let info = stdout_in(dir, &["info", "sampled.json"]);
    assert!(
        info.contains("sampled every 4 KiB") && info.contains("changed once"),
        "{info}"
    );
    // Bad values: refused by the CLI, and by the program when a script sends them.
    for bad in [
        "0",
        "-4096",
        "4k",
        "4611686018427387905",
        "99999999999999999999",
    ] {
        let refused = stderr_of_failure_in(dir, &["control", &pid, "sample", bad]);
        assert!(refused.contains("sample BYTES"), "{bad}: {refused}");
    }
    let missing = stderr_of_failure_in(dir, &["control", &pid, "sample"]);
    assert!(missing.contains("sample needs the interval"), "{missing}");
    let extra = stderr_of_failure_in(dir, &["control", &pid, "stats", "4096"]);
    assert!(extra.contains("only `sample` takes a value"), "{extra}");
    let by_script = control::ask_stats(&program.socket, Request::Sample(0)).unwrap_err();
    assert!(
        by_script.to_string().contains("out of range"),
        "{by_script}"
    );
    let still = control::ask_stats(&program.socket, Request::Stats).unwrap();
    assert_eq!(still.sampling_bytes, 4096);

    // Exact mode refuses, saying how to sample.
    let exact = Program::start(dir, &[("TRACEALLOC_SAMPLE", "0")]);
    let pid = exact.pid().to_string();
    let refused = stderr_of_failure_in(dir, &["control", &pid, "sample", "4096"]);
    assert!(
        refused.contains(
            "the program runs in exact mode; start it with TRACEALLOC_SAMPLE=<bytes> to sample"
        ),
        "{refused}"
    );
    assert!(stdout_in(dir, &["control", &pid, "stats"]).contains("mode: exact"));
}

fn the_live_view_shows_the_leak_growing(dir: &Path) {
    if !Tmux::installed() {
        return;
    }
    let mut program = Program::start(dir, &[]);
    let command = format!(
        "cd {} && {} live {} --refresh 0.2",
        dir.display(),
        common::cli().display(),
        program.socket.display()
    );
    let tmux = Tmux::start(&format!("tracealloc-live-{}", std::process::id()), &command);
    // The leak's row: its change since the view started, once it shows.
    let change_of_leak = |wanted: &str| {
        tmux.wait_for(
            Duration::from_secs(20),
            Duration::from_millis(100),
            format_args!("no row with {wanted} for {}", leak_key()),
            |text| {
                text.lines()
                    .find(|l| l.contains(&leak_key()))
                    .filter(|row| row.contains(wanted))
                    .map(str::to_owned)
            },
        )
    };
    // The view's start (what the change is counted from) is its first screen.
    tmux.wait_for(
        Duration::from_secs(20),
        Duration::from_millis(50),
        "no view",
        |text| text.contains("sites by line").then_some(()),
    );
    program.command("leak 30");
    let first = change_of_leak("+29.30 KiB");
    program.command("leak 30");
    let second = change_of_leak("+58.59 KiB");
    assert!(first.contains("29.30 KiB") && second.contains("58.59 KiB"));
    tmux.send_keys("s");
    let saved = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        std::fs::read_dir(dir).unwrap().find_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            (name.starts_with(&format!("tracealloc-{}-", program.pid())) && name.ends_with(".json"))
                .then_some(name)
        })
    })
    .unwrap_or_else(|| panic!("s saved nothing:\n{}", tmux.screen()));
    let top = stdout_in(dir, &["top", &saved, "-n", "5"]);
    assert!(top.contains(&leak_key()), "{top}");
    // `+` samples finer; this program runs in exact mode, and the status line says so.
    tmux.send_keys("+");
    tmux.wait_for(
        Duration::from_secs(10),
        Duration::from_millis(100),
        "+ said nothing",
        |text| {
            text.contains("the program runs in exact mode; start it with TRACEALLOC_SAMPLE")
                .then_some(())
        },
    );
    the_live_view_keys_do_what_they_say(&tmux, &mut program);
    tmux.send_keys("q");
    std::thread::sleep(Duration::from_millis(300));
    tmux.kill();
}

/// The sites table's rows on a screen of the live view, as drawn (between the table's borders).
fn table_rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .skip_while(|l| !l.contains("since start"))
        .skip(1)
        .take_while(|l| !l.contains('└'))
        .map(|l| l.trim_matches(|c: char| c == '│' || c.is_whitespace()))
        .filter(|row| !row.is_empty())
        .collect()
}

/// The live and peak figures in the live view's header (`live 310 KiB in 78 blocks · peak ...`).
fn live_and_peak(screen: &str) -> Option<(&str, &str)> {
    let line = screen.lines().find(|l| l.contains(" · peak "))?;
    let live = line.split("live ").nth(1)?.split(" in ").next()?;
    let peak = line.split(" · peak ").nth(1)?.split(" · ").next()?;
    Some((live, peak))
}

/// `r`, `o`, `b`, `c`, `/` and `p` on the live view of `program` (which has leaked 60 blocks of
/// 1,000 bytes at the leak's line since the view started).
fn the_live_view_keys_do_what_they_say(tmux: &Tmux, program: &mut Program) {
    let wait = Duration::from_secs(20);
    let every = Duration::from_millis(100);
    let shows = |what: &'static str| {
        tmux.wait_for(wait, every, format_args!("no {what:?}"), |text| {
            text.contains(what).then(|| text.to_owned())
        })
    };
    let leak = leak_key();

    // `r`: a freed megabyte raised the peak; the reset brings it down to the live figure.
    program.command("spike 1000000");
    tmux.wait_for(wait, every, "the peak over live", |text| {
        live_and_peak(text)
            .filter(|(live, peak)| live != peak)
            .map(|_| ())
    });
    tmux.send_keys("r");
    let reset = shows("peak reset to the live figures");
    let (live, peak) = live_and_peak(&reset).expect("the header");
    assert_eq!(peak, live, "{reset}");

    // `o`: by live, the leak's 60 KB come after the 240 KB the program reserved at its start; by
    // change since the view started, the leak comes first.
    let by_live = shows("sorted by live");
    assert!(!table_rows(&by_live)[0].contains(&leak), "{by_live}");
    tmux.send_keys("o");
    let by_change = shows("sorted by change");
    assert!(table_rows(&by_change)[0].contains(&leak), "{by_change}");
    for order in [
        "sorted by total",
        "sorted by allocations/s",
        "sorted by live",
    ] {
        tmux.send_keys("o");
        shows(order);
    }

    // `b`: grouped by function, the leak's row is its function's.
    tmux.send_keys("b");
    let by_function = shows("by function, sorted by live");
    assert!(
        table_rows(&by_function)
            .iter()
            .any(|row| row.ends_with(" live::leak")),
        "{by_function}"
    );
    assert!(!by_function.contains(&leak), "{by_function}");
    for grouping in ["by thread, sorted", "by label, sorted", "by line, sorted"] {
        tmux.send_keys("b");
        shows(grouping);
    }

    // `c`: with capture off, new blocks go to one row without a stack; on again, to their line.
    tmux.send_keys("c");
    shows("stack capture stopped: new blocks are counted without stacks");
    shows("capture OFF");
    program.command("leak 10");
    let off = tmux.wait_for(wait, every, "no capture-off row", |text| {
        table_rows(text)
            .into_iter()
            .find(|row| row.contains("[allocated while capture was off]"))
            .map(str::to_owned)
    });
    assert!(
        off.contains("+9.77 KiB"),
        "10,000 bytes since the start: {off}"
    );
    tmux.send_keys("c");
    shows("stack capture started");
    shows("capture on");
    program.command("leak 10");
    let change_of_leak = |wanted: &'static str| {
        tmux.wait_for(
            wait,
            every,
            format_args!("no {leak} row with {wanted}"),
            |text| {
                table_rows(text)
                    .into_iter()
                    .find(|row| row.contains(&leak) && row.contains(wanted))
                    .map(str::to_owned)
            },
        )
    };
    change_of_leak("+68.36 KiB"); // 70 blocks of 1,000 bytes: 60 before, 10 since capture is on

    // `/`: typing a pattern leaves the matching rows only; Escape clears it.
    tmux.send_keys("/");
    tmux.send_keys(&leak);
    tmux.send_keys("Enter");
    let filtered = shows("1 site by line, sorted by live, matching");
    assert_eq!(table_rows(&filtered).len(), 1, "{filtered}");
    assert!(table_rows(&filtered)[0].contains(&leak), "{filtered}");
    tmux.send_keys("/");
    tmux.send_keys("Escape");
    let unfiltered = tmux.wait_for(wait, every, "the filter not cleared", |text| {
        (!text.contains("matching") && table_rows(text).len() > 1).then(|| text.to_owned())
    });
    assert!(unfiltered.contains(&leak), "{unfiltered}");

    // `p`: paused, the figures stay as they were while the program leaks; resumed, they move.
    tmux.send_keys("p");
    let paused = shows("paused (p to resume)");
    program.command("leak 10");
    // Nothing to wait for here: the view must not change. Ten refreshes' time (at 0.2 s) is long
    // enough for an unpaused view to show the new blocks.
    std::thread::sleep(Duration::from_secs(2));
    let still = tmux.screen();
    assert_eq!(table_rows(&still), table_rows(&paused), "{still}");
    assert_eq!(live_and_peak(&still), live_and_peak(&paused), "{still}");
    tmux.send_keys("p");
    change_of_leak("+78.12 KiB");
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

fn main() {
    if std::env::var("LIVE_TEST_ROLE").is_ok_and(|r| r == "leaker") {
        return leaker();
    }
    let dir = scratch("live");
    // Open to others' traversal, for the refused user's check.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    snapshots_from_outside_name_the_leak(&dir);
    bad_clients_leave_the_program_as_it_was(&dir);
    the_peak_resets_when_asked(&dir);
    other_users_are_refused(&dir);
    capture_starts_when_asked(&dir);
    the_sampling_interval_changes_when_asked(&dir);
    the_live_view_shows_the_leak_growing(&dir);
    std::fs::remove_dir_all(&dir).ok();
    println!(
        "live ok: snapshots from outside, bad clients, peak reset, other users, capture switch, \
         sampling interval, live view"
    );
}
