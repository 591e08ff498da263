//! `tracealloc run [-o FILE] [--sample BYTES] -- CMD [ARGS...]`: profiles a program without a
//! code change. The program runs with tracealloc's preload library (`LD_PRELOAD`), which counts
//! every allocation of the process, C and Rust, and writes a snapshot at exit to `TRACEALLOC_OUT`
//! (one file per process, by `{pid}`: `tracealloc run -- cargo test` profiles each test binary).
//! At the end, the top sites of the program's own snapshot and where the files are.
//!
//! The library is `libtracealloc_preload.so`: see [`crate::preload`] for where it is found, and
//! built on first use.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tracealloc_report::ReportOptions;
use tracealloc_snapshot::FrameFolding;

/// `tracealloc run --live`: the program serves a control socket in a directory of its own, its
/// output goes to a log beside it, and the live view watches it until the view is quit or the
/// program ends.
struct LiveRun {
    dir: PathBuf,
    log: PathBuf,
}

impl LiveRun {
    fn prepare(command: &mut Command) -> anyhow::Result<LiveRun> {
        let dir = std::env::temp_dir().join(format!("tracealloc-run-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let log = dir.join("output.log");
        let file = std::fs::File::create(&log)?;
        command
            .env("TRACEALLOC_LISTEN", dir.join("{pid}.sock"))
            .stdin(std::process::Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        Ok(LiveRun { dir, log })
    }

    /// Opens the live view once the program serves its socket; returns when the view is quit or
    /// the program has ended.
    fn watch(&self, child: &mut std::process::Child, out: &mut dyn Write) -> anyhow::Result<()> {
        let socket = self.dir.join(format!("{}.sock", child.id()));
        while !socket.exists() {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let mut symbolizer = crate::symbolize::symbolizer();
        tracealloc_report::live(
            &socket,
            &tracealloc_report::LiveOptions::default(),
            &mut |s| symbolizer.symbolize(s),
        )?;
        if child.try_wait()?.is_none() {
            writeln!(
                out,
                "tracealloc: the live view is closed; waiting for the program to end (Ctrl-C \
                 stops it)"
            )?;
        }
        Ok(())
    }
}

/// The arguments of `tracealloc run`.
#[derive(clap::Args)]
#[command(after_help = crate::preload::HELP)]
pub(crate) struct RunArgs {
    /// Where the program's snapshot goes (default `tracealloc-{pid}.json`). `{pid}` is the process
    /// id; without it, the program's own snapshot is FILE and the processes it starts write
    /// FILE's name with `-{pid}` before the extension.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Sample one block per BYTES allocated on average instead of counting every block
    /// (`TRACEALLOC_SAMPLE`).
    #[arg(long, value_name = "BYTES")]
    sample: Option<u64>,
    /// How many top sites to print at the end.
    #[arg(short = 'n', long, default_value_t = 10)]
    n: usize,
    /// The program and the code its allocations come through have frame pointers (built with
    /// `-C force-frame-pointers=yes`): walk them alone, which is a little faster. By default
    /// stacks are unwound with DWARF information, which is right for any build (a program built
    /// without frame pointers, a plain `cargo build`, gives wrong stacks to a frame-pointer walk,
    /// and the preload library cannot tell), stepping by frame pointer through the functions
    /// that keep them.
    #[arg(long)]
    frame_pointers: bool,
    /// Watch the program in the live view while it runs (`tracealloc live`); its output goes to
    /// a log file instead of the terminal, named at the end.
    #[arg(long)]
    live: bool,
    /// The program and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<OsString>,
}

/// The program's path, as the shell would find it.
fn resolve(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return Some(program.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// Why the preloaded library cannot see into this program, if it cannot: a static executable
/// (no dynamic loader to preload with) or one that runs as another user or group through its
/// set-user-ID or set-group-ID bit (the loader's secure mode ignores `LD_PRELOAD` then; a bit
/// that changes nothing, on a file of the user's own, leaves it alone, root included).
fn unpreloadable(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let mode = meta.permissions().mode();
    let me = std::fs::metadata("/proc/self").ok()?;
    if (mode & 0o4000 != 0 && meta.uid() != me.uid())
        || (mode & 0o2000 != 0 && meta.gid() != me.gid())
    {
        return Some(format!(
            "{} runs as another user or group (set-user-ID or set-group-ID): the dynamic loader \
             ignores LD_PRELOAD for it, so tracealloc cannot see its allocations (profile a copy \
             without the bit)",
            path.display()
        ));
    }
    let bytes = std::fs::read(path).ok()?;
    if bytes.get(..4) != Some(b"\x7fELF") {
        return None; // A script: the interpreter it names is what runs.
    }
    if !has_interpreter(&bytes) {
        return Some(format!(
            "{} is a static executable: there is no dynamic loader to preload tracealloc with, so \
             tracealloc cannot see its allocations (build it dynamically linked, or add \
             tracealloc as its global allocator)",
            path.display()
        ));
    }
    None
}

/// Whether a 64-bit little-endian ELF file has a `PT_INTERP` program header (a dynamic loader).
fn has_interpreter(elf: &[u8]) -> bool {
    let word = |at: usize, len: usize| -> Option<u64> {
        let bytes = elf.get(at..at + len)?;
        Some(
            bytes
                .iter()
                .rev()
                .fold(0u64, |v, &b| (v << 8) | u64::from(b)),
        )
    };
    if elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        return true; // Not ELF64 little-endian: let the loader decide.
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (word(0x20, 8), word(0x36, 2), word(0x38, 2))
    else {
        return true;
    };
    (0..phnum).any(|i| word((phoff + i * phentsize) as usize, 4) == Some(3))
}

/// The snapshot path pattern given to the program, and the file its own snapshot is renamed to
/// when `-o` named one without `{pid}`.
fn patterns(output: Option<PathBuf>) -> anyhow::Result<(String, Option<PathBuf>)> {
    let cwd = std::env::current_dir()?;
    let given = output.unwrap_or_else(|| PathBuf::from("tracealloc-{pid}.json"));
    let given = cwd.join(given);
    let text = given.to_string_lossy().into_owned();
    if text.contains("{pid}") {
        return Ok((text, None));
    }
    let stem = given.file_stem().unwrap_or_default().to_string_lossy();
    let name = match given.extension() {
        Some(ext) => format!("{stem}-{{pid}}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{{pid}}"),
    };
    Ok((
        given.with_file_name(name).to_string_lossy().into_owned(),
        Some(given),
    ))
}

/// The snapshot files a pattern's processes wrote since `since`, oldest first.
fn written(pattern: &str, since: std::time::SystemTime) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let Some((prefix, suffix)) = name.split_once("{pid}") else {
        return Vec::new();
    };
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let file = entry.file_name().to_string_lossy().into_owned();
            let pid = file.strip_prefix(prefix)?.strip_suffix(suffix)?;
            if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let modified = entry.metadata().ok()?.modified().ok()?;
            (modified >= since).then(|| (modified, entry.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, path)| path).collect()
}

/// Runs `tracealloc run`; returns the program's exit code.
pub(crate) fn run(args: RunArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let program = PathBuf::from(&args.command[0]);
    let resolved = resolve(&program)
        .ok_or_else(|| anyhow::anyhow!("{}: command not found", program.display()))?;
    if let Some(why) = unpreloadable(&resolved) {
        anyhow::bail!("{why}");
    }
    // After the program's checks: a refused program should not wait for a first-use build.
    let preload = crate::preload::find_preload(out)?;
    let (pattern, rename_to) = patterns(args.output)?;
    let mut preloads = OsString::from(&preload);
    if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        preloads.push(" ");
        preloads.push(existing);
    }
    let mut command = Command::new(&args.command[0]);
    command
        .args(&args.command[1..])
        .env("LD_PRELOAD", &preloads)
        .env("TRACEALLOC_OUT", &pattern)
        // The program's own line would name its file before the rename to `-o`'s: the summary
        // names every file instead.
        .env("TRACEALLOC_EXIT_NOTICE", "0");
    if let Some(sample) = args.sample {
        command.env("TRACEALLOC_SAMPLE", sample.to_string());
    }
    if !args.frame_pointers && std::env::var_os("TRACEALLOC_CAPTURE").is_none() {
        command.env("TRACEALLOC_CAPTURE", "unwind");
    }
    let live = args
        .live
        .then(|| LiveRun::prepare(&mut command))
        .transpose()?;
    // A second's slack: file times may be rounded below the clock read here.
    let since = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    // Registered before the program starts, so that no stop signal finds `run` without them.
    let stops = StopSignals::register()?;
    let mut child = command
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", program.display()))?;
    let pid = child.id();
    if let Some(live) = &live {
        live.watch(&mut child, out)?;
    }
    let status = stops.wait(&mut child)?;
    if let Some(live) = &live {
        writeln!(
            out,
            "tracealloc: the program's output is in {}",
            live.log.display()
        )?;
    }
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    let own = PathBuf::from(pattern.replace("{pid}", &pid.to_string()));
    let mut own = own.is_file().then_some(own);
    if let (Some(file), Some(target)) = (&own, &rename_to) {
        std::fs::rename(file, target)?;
        own = Some(target.clone());
    }
    let others: Vec<PathBuf> = written(&pattern, since)
        .into_iter()
        .filter(|p| Some(p) != own.as_ref())
        .collect();
    let Some(own) = own else {
        let why = match status.signal() {
            Some(signal) => format!("it was killed by signal {signal} before it could write one"),
            None => "it ended without running its exit handlers (`_exit`, as dash does), it reset \
                     LD_PRELOAD before running the real program, or the dynamic loader refused \
                     the library (see its messages above)"
                .to_owned(),
        };
        writeln!(
            out,
            "tracealloc: {} wrote no snapshot: {why}",
            program.display()
        )?;
        if !others.is_empty() {
            writeln!(out, "tracealloc: the processes it started wrote:")?;
            for other in &others {
                writeln!(out, "  {}", other.display())?;
            }
        }
        return Ok(if code == 0 { 1 } else { code });
    };
    let snapshot = crate::symbolize::load(&own)?.fold_frames(&FrameFolding::default());
    let mut options = ReportOptions::default();
    options.n = args.n;
    options.width = tracealloc_report::terminal_width();
    writeln!(out)?;
    tracealloc_report::top(&snapshot, &options, out)?;
    writeln!(
        out,
        "tracealloc: the snapshot of {} is {}",
        program.display(),
        own.display()
    )?;
    if !others.is_empty() {
        writeln!(
            out,
            "tracealloc: {} more from the processes it started:",
            others.len()
        )?;
        for other in &others {
            writeln!(out, "  {}", other.display())?;
        }
    }
    writeln!(
        out,
        "tracealloc: more with `tracealloc top {}`, `tracealloc leaks`, `tracealloc report`",
        own.display()
    )?;
    Ok(code)
}

/// The signals that ask `run` to stop, caught while the program runs: the program stops first,
/// writing its snapshot (the preloaded library catches them too), and `run` summarizes it. A
/// Ctrl-C reaches every process of the terminal's foreground group, the program included, so it
/// is not sent on (a program that stops gracefully on the first and at once on the second would
/// take two); `SIGTERM` and `SIGHUP`, usually sent to one process, are.
struct StopSignals {
    interrupted: std::sync::Arc<std::sync::atomic::AtomicBool>,
    terminated: std::sync::Arc<std::sync::atomic::AtomicBool>,
    hung_up: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl StopSignals {
    fn register() -> anyhow::Result<StopSignals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let flag = |signal| -> anyhow::Result<_> {
            let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            signal_hook::flag::register(signal, flag.clone())?;
            Ok(flag)
        };
        Ok(StopSignals {
            interrupted: flag(SIGINT)?,
            terminated: flag(SIGTERM)?,
            hung_up: flag(SIGHUP)?,
        })
    }

    /// Waits for `child` to end, sending on each `SIGTERM` and `SIGHUP` that `run` receives.
    fn wait(&self, child: &mut std::process::Child) -> anyhow::Result<std::process::ExitStatus> {
        use std::sync::atomic::Ordering;
        let pid = rustix::process::Pid::from_child(child);
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            for (flag, signal) in [
                (&self.terminated, rustix::process::Signal::TERM),
                (&self.hung_up, rustix::process::Signal::HUP),
            ] {
                if flag.swap(false, Ordering::Relaxed) {
                    // The program may have ended meanwhile: then there is no one to tell.
                    let _ = rustix::process::kill_process(pid, signal);
                }
            }
            // A Ctrl-C has reached the program already.
            self.interrupted.store(false, Ordering::Relaxed);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
