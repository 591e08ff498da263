//! `tracealloc`: reads snapshot files written by the tracealloc library. Each command parses its
//! arguments, makes one library call, and prints.

#![forbid(unsafe_code)]

mod symbolize;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod preload;
mod run;
use tracealloc_report::{FlameOptions, Format, ReportOptions, TimelineOptions};
use tracealloc_snapshot::{Filter, FoldOptions, FrameFolding, GroupBy, Metric, Snapshot, control};

#[derive(Parser)]
#[command(
    name = "tracealloc",
    version,
    about = "Read tracealloc heap snapshots: top sites, diffs, leaks, threads, flamegraphs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Where to find debug files by build ID (`DIR/.build-id/xx/rest.debug`, as gdb and
    /// debuginfod lay them out), to symbolize raw snapshots of stripped binaries; repeatable.
    /// TRACEALLOC_DEBUG_DIR adds more (`:`-separated); /usr/lib/debug is searched last.
    #[arg(long, global = true, value_name = "DIR")]
    debug_dir: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a program with tracealloc preloaded (no code change): every allocation of each of its
    /// processes, C and Rust, is counted and a snapshot written at exit; prints the top sites.
    Run(run::RunArgs),
    /// The top-N groups by live memory (or by another figure with --sort).
    Top {
        /// A snapshot file (written by the program with TRACEALLOC_OUT or tracealloc::snapshot).
        file: PathBuf,
        #[command(flatten)]
        select: Select,
    },
    /// What changed from OLD to NEW, largest absolute change first (works across runs); with more
    /// files, each top site's live bytes across all of them.
    Diff {
        /// The older snapshot file.
        old: PathBuf,
        /// The newer snapshot file.
        new: PathBuf,
        /// More snapshot files (a running program's periodic snapshots): then each top site's live
        /// bytes in every file, and the change from the first to the last. The files are ordered
        /// by the time each was taken, whatever their order here.
        more: Vec<PathBuf>,
        #[command(flatten)]
        select: Select,
    },
    /// An SVG flamegraph (differential with --diff OLD).
    Flamegraph {
        /// A snapshot file.
        file: PathBuf,
        /// Output file, `-` for standard output [default: FILE's stem with .svg, next to FILE,
        /// which must not exist yet].
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = MetricArg::Live)]
        metric: MetricArg,
        /// Draw the change since OLD: growth red, shrink blue.
        #[arg(long, value_name = "OLD")]
        diff: Option<PathBuf>,
        /// The allocating thread as the root frame.
        #[arg(long)]
        by_thread: bool,
        /// The task label (`tracealloc::labeled`) as the root frame.
        #[arg(long)]
        by_label: bool,
        /// Reversed stacks: allocation sites at the root, their callers above.
        #[arg(long)]
        reverse: bool,
        /// An icicle graph: roots at the top, stacks growing down.
        #[arg(long)]
        inverted: bool,
        #[command(flatten)]
        frames: FrameArgs,
        #[command(flatten)]
        narrow: Narrow,
        /// The title [default: one naming the metric].
        #[arg(long)]
        title: Option<String>,
    },
    /// What is still live, one row per line (or --by function, file, stack...) with the stacks
    /// that reached it beneath, largest first.
    Leaks {
        /// A snapshot file.
        file: PathBuf,
        /// Only what grew since this older snapshot.
        #[arg(long, value_name = "OLD")]
        since: Option<PathBuf>,
        #[command(flatten)]
        select: Select,
    },
    /// One row per thread: live and total memory, and its top site.
    Threads {
        /// A snapshot file.
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = FormatArg::Table)]
        format: FormatArg,
    },
    /// A snapshot of a running program, through its control socket (a program started with
    /// TRACEALLOC_LISTEN=/tmp/heap-{pid}.sock).
    Snapshot {
        /// The program: its control socket, or its process id.
        #[arg(value_name = "SOCKET|PID")]
        target: String,
        /// Output file, `-` for standard output [default: tracealloc-PID-TIME.json in the
        /// current directory].
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// A live view of a running program's memory in the terminal, refreshed every second: live,
    /// peak and resident memory, a sparkline, and the top sites with their change since the view
    /// started; keys save a snapshot, reset the peak, switch stack capture, group, sort, filter.
    Live {
        /// The program: its control socket, or its process id (a program started with
        /// TRACEALLOC_LISTEN=/tmp/heap-{pid}.sock).
        #[arg(value_name = "SOCKET|PID")]
        target: String,
        /// Seconds between refreshes.
        #[arg(long, default_value_t = 1.0, value_parser = seconds)]
        refresh: f64,
    },
    /// Control a running program through its control socket: start or stop stack capture, reset
    /// the peak, read its figures, or change its sampling interval (`sample BYTES`).
    ///
    /// Prints the program's figures after the change.
    #[command(after_help = "Examples:
  tracealloc control 4242 stats
  tracealloc control /tmp/heap-4242.sock stop
  tracealloc control 4242 sample 4096    # sample finer: one block per 4 KiB on average

`sample BYTES` needs a program started in sampled mode (TRACEALLOC_SAMPLE=<bytes> or
Profiler::sampled); a program in exact mode refuses it. Blocks sampled before keep the weight of
their interval, so the estimates stay unbiased across the change.")]
    Control {
        /// The program: its control socket, or its process id.
        #[arg(value_name = "SOCKET|PID")]
        target: String,
        #[arg(value_enum)]
        action: ControlAction,
        /// For `sample`: the mean bytes between samples, 1 to 2^62 (digits only).
        #[arg(value_name = "BYTES", allow_negative_numbers = true)]
        bytes: Option<String>,
    },
    /// Symbolize a raw snapshot (written with TRACEALLOC_SYMBOLIZE=later, the default for
    /// TRACEALLOC_OUT): names from the binary it recorded, or its debug file (--debug-dir). Other
    /// commands do it on their first read and cache the result beside the file.
    Symbolize {
        /// A raw snapshot file.
        file: PathBuf,
        /// Output file [default: FILE itself, replaced].
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Metadata and totals: command, pid, capture method, live/total/peak, RSS, sites.
    Info {
        /// A snapshot file.
        file: PathBuf,
    },
    /// One self-contained HTML report: summary, timeline, sortable top tables, flamegraphs (live,
    /// at the peak, total, temporary, and the change with --diff) and leaks.
    Report {
        /// A snapshot file.
        file: PathBuf,
        /// Output file, `-` for standard output [default: FILE's stem with .html, next to FILE,
        /// which must not exist yet].
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Compare with OLD: a table of what changed, a differential flamegraph, and leaks as what
        /// grew since OLD.
        #[arg(long, value_name = "OLD")]
        diff: Option<PathBuf>,
        /// The page's title [default: "tracealloc report" and the command line].
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        frames: FrameArgs,
        #[command(flatten)]
        narrow: Narrow,
    },
    /// Memory over time. One file: its timeline (live heap, resident memory, the peak). Several
    /// files (a running program's periodic snapshots): each top site's live bytes across them,
    /// the files ordered by the time each was taken.
    Timeline {
        /// Snapshot files: one for its own timeline, several for the top sites across them.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Draw an SVG chart into this file (`-` for standard output) instead of printing a table.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        select: Select,
        /// The chart's title, with -o [default: "Memory over time" and the command line].
        #[arg(long)]
        title: Option<String>,
    },
    /// Convert to a format other tools read: pprof (go tool pprof, Pyroscope, Parca), folded
    /// stacks (flamegraph.pl), speedscope's JSON or DHAT's (Valgrind's dh_view.html).
    Export {
        /// A snapshot file.
        file: PathBuf,
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Output file, `-` for standard output [default: FILE's stem with .pb.gz, .folded,
        /// .speedscope.json or .dhat.json, next to FILE, which must not exist yet].
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// For folded stacks and speedscope: the figure counted.
        #[arg(long, value_enum, default_value_t = MetricArg::Live)]
        metric: MetricArg,
        /// For folded stacks: the allocating thread as the root frame; for speedscope, one profile
        /// per thread.
        #[arg(long)]
        by_thread: bool,
        /// For folded stacks: the task label as the root frame.
        #[arg(long)]
        by_label: bool,
        #[command(flatten)]
        frames: FrameArgs,
        #[command(flatten)]
        narrow: Narrow,
        /// For folded stacks: a stack holding less than this share of the total is cut where it
        /// parts from bigger ones, in a `[smaller stacks]` frame; the totals stay exact. The
        /// default, 1/20,000, is under what flamegraph.pl and inferno draw at all (0.1 px of 1200);
        /// it keeps a deep-stacked program's folded file near its snapshot's size. 0 keeps every
        /// stack whole.
        #[arg(long, default_value_t = 0.00005, value_parser = share)]
        min_share: f64,
        /// For pprof, from a raw snapshot: addresses in mappings with the modules' paths and build
        /// IDs, unsymbolized, for go tool pprof, Parca or Pyroscope to symbolize themselves.
        #[arg(long)]
        unsymbolized: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ControlAction {
    /// Start capturing stacks: blocks allocated from now on are charged to their stacks.
    Start,
    /// Stop capturing stacks: allocations are still counted, charged to no stack.
    Stop,
    /// Set the peak to the current live figures.
    ResetPeak,
    /// Print the program's figures.
    Stats,
    /// Set the mean bytes between samples to BYTES (sampled mode only).
    Sample,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    /// pprof's profile.proto, gzipped: alloc_objects, alloc_space, inuse_objects, inuse_space.
    Pprof,
    /// One line per stack: `root;...;leaf value`.
    Folded,
    /// speedscope's JSON: a sampled profile weighted by the metric (one per thread with
    /// --by-thread), for https://www.speedscope.app.
    Speedscope,
    /// DHAT's JSON, for Valgrind's dh_view.html: totals, at t-gmax, at t-end, and (from a
    /// program run with TRACEALLOC_LIFETIMES=1) lifetimes and each point's maximum.
    Dhat,
}

/// Which sites are listed and how: the same flags for every command that lists sites (`top`,
/// `diff`, `leaks`, `timeline` of several files). A flag a command cannot honour is refused, never
/// ignored.
#[derive(clap::Args)]
struct Select {
    /// How many groups to show [default: 10; timeline: 8, the rest summed as "(other)"].
    #[arg(short)]
    n: Option<usize>,
    /// Group sites by allocating function, line (file:line, or the function without line
    /// tables), file, whole stack, thread or task label [default: line; leaks: stack, its only
    /// grouping].
    #[arg(long, value_enum)]
    by: Option<ByArg>,
    #[command(flatten)]
    narrow: Narrow,
    /// Rank by: live, total, blocks, allocations, peak, temporary or realloc [default: live]. Only
    /// `top` ranks by any of them; `leaks`, `timeline` and `diff` of several files rank by live
    /// bytes (`--sort live` only), `diff` of two files by the change in live bytes.
    #[arg(long, value_enum)]
    sort: Option<MetricArg>,
    /// An aligned table, JSON or CSV [default: table]. JSON and CSV for one or two files.
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    #[command(flatten)]
    frames: FrameArgs,
}

/// Which frames stacks show: the same flags for every command that shows stacks.
#[derive(clap::Args)]
struct FrameArgs {
    /// Every frame: no runtime frames folded, std's allocation internals and start-up kept.
    #[arg(long)]
    full_stacks: bool,
    /// Also fold the frames of this crate (`my_framework`) where they lie between the program's
    /// own frames; repeatable. Folded by default: std (with core and alloc), the async runtimes
    /// (tokio, futures, async-std, smol), service stacks (hyper, tower, axum, tonic), tracing and
    /// rayon: the README lists them all.
    #[arg(long, value_name = "CRATE")]
    fold_frames: Vec<String>,
    /// Keep the frames of this crate even though it is folded by default (`hyper`); repeatable.
    #[arg(long, value_name = "CRATE")]
    keep_frames: Vec<String>,
}

impl FrameArgs {
    /// The folding these flags ask for (none with --full-stacks).
    fn folding(&self) -> FrameFolding {
        if self.full_stacks {
            return FrameFolding::none();
        }
        let mut folding = FrameFolding::default();
        for krate in &self.fold_frames {
            folding.fold(krate);
        }
        for krate in &self.keep_frames {
            folding.keep(krate);
        }
        folding
    }

    /// `snapshot` with its runtime frames folded as asked.
    fn apply(&self, snapshot: Snapshot) -> Snapshot {
        let folding = self.folding();
        if folding.is_none() {
            return snapshot;
        }
        snapshot.fold_frames(&folding)
    }

    /// Loads a snapshot file and folds its runtime frames.
    fn load(&self, path: &Path) -> anyhow::Result<Snapshot> {
        Ok(self.apply(load(path)?))
    }
}

/// Which sites a view that shows no table keeps (`flamegraph`, `report`, `export`).
#[derive(clap::Args)]
struct Narrow {
    /// Keep only sites whose allocating frame (function, file or file:line) matches this glob;
    /// repeated, any of them.
    #[arg(long, value_name = "PAT")]
    include: Vec<String>,
    /// Drop sites whose allocating frame matches this glob; repeatable.
    #[arg(long, value_name = "PAT")]
    exclude: Vec<String>,
}

impl Narrow {
    fn apply(&self, snapshot: Snapshot) -> Snapshot {
        if self.include.is_empty() && self.exclude.is_empty() {
            return snapshot;
        }
        snapshot.filter(&Filter::from_patterns(&self.include, &self.exclude))
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ByArg {
    Function,
    Line,
    File,
    Stack,
    Thread,
    /// The task label (`tracealloc::labeled`).
    Label,
}
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
/// A figure to rank by or to draw: one set of names for `--sort` and `--metric`.
enum MetricArg {
    /// Live bytes.
    Live,
    /// Bytes ever allocated.
    Total,
    /// Live blocks.
    Blocks,
    /// Blocks ever allocated: the number of allocations.
    Allocations,
    /// Bytes live at the peak: when the process's live bytes last reached their maximum.
    Peak,
    /// Temporary blocks: freed by the allocating thread before its next allocation.
    Temporary,
    /// Bytes copied by reallocs that moved their block (growth without reserving).
    Realloc,
}
#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Table,
    Json,
    Csv,
}

impl From<MetricArg> for Metric {
    fn from(m: MetricArg) -> Self {
        match m {
            MetricArg::Live => Metric::LiveBytes,
            MetricArg::Total => Metric::TotalBytes,
            MetricArg::Blocks => Metric::LiveBlocks,
            MetricArg::Allocations => Metric::TotalBlocks,
            MetricArg::Peak => Metric::PeakBytes,
            MetricArg::Temporary => Metric::TemporaryBlocks,
            MetricArg::Realloc => Metric::ReallocCopiedBytes,
        }
    }
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Table => Format::Table,
            FormatArg::Json => Format::Json,
            FormatArg::Csv => Format::Csv,
        }
    }
}

impl ByArg {
    fn group(self, full_stacks: bool) -> GroupBy {
        match self {
            ByArg::Function => GroupBy::Function,
            ByArg::Line => GroupBy::Line,
            ByArg::File => GroupBy::File,
            ByArg::Stack if full_stacks => GroupBy::FullStack,
            ByArg::Stack => GroupBy::Stack,
            ByArg::Thread => GroupBy::Thread,
            ByArg::Label => GroupBy::Label,
        }
    }
}

impl Select {
    /// The grouping, `default` when `--by` is not given.
    fn group(&self, default: ByArg) -> GroupBy {
        self.by.unwrap_or(default).group(self.frames.full_stacks)
    }

    /// The options of the one- and two-file tables (`top`, `diff`, `leaks`).
    fn options(&self, by: ByArg, sort: Metric) -> ReportOptions {
        let mut o = ReportOptions::default();
        o.n = self.n.unwrap_or(10);
        o.by = self.group(by);
        o.sort = sort;
        o.include = self.narrow.include.clone();
        o.exclude = self.narrow.exclude.clone();
        o.format = self.format.unwrap_or(FormatArg::Table).into();
        o.color = color();
        o.full_stacks = self.frames.full_stacks;
        o.width = tracealloc_report::terminal_width();
        o
    }

    /// The options of the views of several files.
    fn timeline_options(&self) -> TimelineOptions {
        let mut o = TimelineOptions::default();
        o.n = self.n.unwrap_or(o.n);
        o.by = self.group(ByArg::Line);
        o.color = color();
        o.width = tracealloc_report::terminal_width();
        o
    }

    /// `snapshot` narrowed by `--include` and `--exclude`, for the views that do not filter
    /// themselves.
    fn filter(&self, snapshot: Snapshot) -> Snapshot {
        self.narrow.apply(snapshot)
    }

    /// Refuses `--sort` unless it names `allowed` (what the command ranks by anyway): `what`
    /// says how the command ranks.
    fn sort_only(&self, allowed: Option<MetricArg>, what: &str) -> anyhow::Result<()> {
        match self.sort {
            Some(sort) if Some(sort) != allowed => anyhow::bail!(
                "{what}: `--sort {}` is not supported there (`top --sort {}` ranks one file by it)",
                name(sort),
                name(sort)
            ),
            _ => Ok(()),
        }
    }

    /// Refuses `--format json` and `csv`: `what` names the view that prints a table only.
    fn table_only(&self, what: &str) -> anyhow::Result<()> {
        match self.format {
            Some(format @ (FormatArg::Json | FormatArg::Csv)) => anyhow::bail!(
                "{what} is a table only: `--format {}` is not supported there (it is for `top`, \
                 `leaks` and `diff` of two files)",
                name(format)
            ),
            _ => Ok(()),
        }
    }

    /// The flags given, for the views that take none of them.
    fn given(&self) -> Vec<&'static str> {
        [
            (self.n.is_some(), "-n"),
            (self.by.is_some(), "--by"),
            (!self.narrow.include.is_empty(), "--include"),
            (!self.narrow.exclude.is_empty(), "--exclude"),
            (self.sort.is_some(), "--sort"),
            (self.format.is_some(), "--format"),
            (self.frames.full_stacks, "--full-stacks"),
            (!self.frames.fold_frames.is_empty(), "--fold-frames"),
            (!self.frames.keep_frames.is_empty(), "--keep-frames"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect()
    }
}

/// A value's name on the command line (`total`, `json`).
fn name(value: impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_owned())
}

/// Color on a terminal only, and never when `NO_COLOR` is set (to anything but the empty string).
fn color() -> bool {
    use std::io::IsTerminal;
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Several snapshot files, each with the name it is shown under, ordered by the time each was taken
/// (`meta.time_unix_ms`; equal times keep their order here), and narrowed by `select`. Says so on
/// stderr when that order is not the arguments' (a shell's glob lists `heap-10.json` before
/// `heap-2.json`).
fn load_series(files: &[PathBuf], select: &Select) -> anyhow::Result<Vec<(String, Snapshot)>> {
    let mut series: Vec<(usize, String, Snapshot)> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let snapshot = select.filter(select.frames.load(f)?);
            Ok((i, f.display().to_string(), snapshot))
        })
        .collect::<anyhow::Result<_>>()?;
    series.sort_by_key(|(i, _, s)| (s.meta.time_unix_ms, *i));
    if series.iter().enumerate().any(|(at, (i, _, _))| at != *i) {
        eprintln!(
            "tracealloc: ordered the {} files by the time they were taken",
            series.len()
        );
    }
    Ok(series
        .into_iter()
        .map(|(_, name, snapshot)| (name, snapshot))
        .collect())
}

/// The series as the report functions take it.
fn named(snapshots: &[(String, Snapshot)]) -> Vec<(String, &Snapshot)> {
    snapshots
        .iter()
        .map(|(name, s)| (name.clone(), s))
        .collect()
}

/// What `top`'s table says under it when most of the live bytes are charged to frames without
/// file and line (a release build without line tables).
const NO_LINE_TABLES: &str = "No line tables: build with debug = \"limited\" in [profile.release] (or \"line-tables-only\") for file:line.";

/// Where an output goes: `-o` as given (`-` is standard output; a file is replaced, the user named
/// it), or `default` next to the input, which is never replaced silently.
fn output_path(given: Option<PathBuf>, default: PathBuf) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path);
    }
    if default.symlink_metadata().is_ok() {
        anyhow::bail!(
            "{} already exists: pass `-o {}` to overwrite it, or `-o` another file",
            default.display(),
            default.display()
        );
    }
    Ok(default)
}

fn load(path: &Path) -> anyhow::Result<Snapshot> {
    symbolize::load(path)
}

fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(_) => unreachable!("`run` is handled in main"),
        Command::Top { file, select } => {
            let snapshot = select.frames.load(&file)?;
            let sort = select.sort.unwrap_or(MetricArg::Live);
            let options = select.options(ByArg::Line, sort.into());
            tracealloc_report::top(&snapshot, &options, out)?;
            let located = matches!(
                options.by,
                GroupBy::Line | GroupBy::File | GroupBy::Stack | GroupBy::FullStack
            );
            // (Lines missing from a raw snapshot's symbolization: its notes said why, and what to give.)
            if options.format == Format::Table
                && located
                && snapshot.symbolization_notes.is_empty()
                && snapshot.lacks_line_tables()
            {
                writeln!(out, "{NO_LINE_TABLES}")?;
            }
        }
        Command::Diff {
            old,
            new,
            more,
            select,
        } if more.is_empty() => {
            select.sort_only(None, "diff ranks by the change in live bytes")?;
            tracealloc_report::diff(
                &select.frames.load(&new)?,
                &select.frames.load(&old)?,
                &select.options(ByArg::Line, Metric::LiveBytes),
                out,
            )?
        }
        Command::Diff {
            old,
            new,
            more,
            select,
        } => {
            select.sort_only(
                Some(MetricArg::Live),
                "diff of several files ranks sites by their live bytes",
            )?;
            select.table_only("diff of more than two files")?;
            let files: Vec<PathBuf> = [old, new].into_iter().chain(more).collect();
            let snapshots = load_series(&files, &select)?;
            tracealloc_report::growth_table(&named(&snapshots), &select.timeline_options(), out)?
        }
        Command::Flamegraph {
            file,
            output,
            metric,
            diff,
            by_thread,
            by_label,
            reverse,
            inverted,
            frames,
            narrow,
            title,
        } => {
            let output = output_path(output, file.with_extension("svg"))?;
            let snapshot = narrow.apply(frames.load(&file)?);
            let older = diff
                .as_deref()
                .map(|f| Ok::<_, anyhow::Error>(narrow.apply(frames.load(f)?)))
                .transpose()?;
            let mut options = FlameOptions::default();
            options.metric = metric.into();
            options.by_thread = by_thread;
            options.by_label = by_label;
            options.reverse = reverse;
            options.inverted = inverted;
            options.full_stacks = frames.full_stacks;
            options.title = title;
            write_output(out, &output, |w| {
                tracealloc_report::flamegraph(&snapshot, older.as_ref(), &options, w)
            })?
        }
        Command::Leaks {
            file,
            since,
            select,
        } => {
            select.sort_only(
                Some(MetricArg::Live),
                "leaks ranks by live bytes (by their growth with --since)",
            )?;
            let snapshot = select.frames.load(&file)?;
            let since = since
                .as_deref()
                .map(|f| select.frames.load(f))
                .transpose()?;
            let options = select.options(ByArg::Line, Metric::LiveBytes);
            tracealloc_report::leaks(&snapshot, since.as_ref(), &options, out)?
        }
        Command::Export {
            file,
            format,
            output,
            metric,
            by_thread,
            by_label,
            frames,
            narrow,
            min_share,
            unsymbolized,
        } => {
            let full_stacks = frames.full_stacks;
            let output = output_path(
                output,
                file.with_extension(match format {
                    ExportFormat::Pprof => "pb.gz",
                    ExportFormat::Folded => "folded",
                    ExportFormat::Speedscope => "speedscope.json",
                    ExportFormat::Dhat => "dhat.json",
                }),
            )?;
            let snapshot = if unsymbolized {
                symbolize::load_unsymbolized(&file, matches!(format, ExportFormat::Pprof))?
            } else {
                narrow.apply(frames.load(&file)?)
            };
            if matches!(format, ExportFormat::Dhat) && !snapshot.meta.capture.lifetimes {
                eprintln!(
                    "tracealloc: note: {} was recorded without lifetimes: DHAT's viewer will show \
                     totals only; run the program with TRACEALLOC_LIFETIMES=1 (or \
                     Profiler::lifetimes()) for at-t-gmax, lifetimes and maxima",
                    file.display()
                );
            }
            let mut fold = FoldOptions::default();
            fold.metric = metric.into();
            let mean = snapshot.meta.capture.sampling_bytes;
            let by_metric = matches!(format, ExportFormat::Folded | ExportFormat::Speedscope);
            if by_metric && mean > 0 && !fold.metric.estimated_when_sampled() {
                anyhow::bail!(
                    "{}: {} are not estimated in sampled mode (it was sampled every {} bytes); \
                     export live or total bytes, or profile in exact mode",
                    file.display(),
                    fold.metric.describe(),
                    mean
                );
            }
            fold.by_thread = by_thread;
            fold.by_label = by_label;
            fold.full_stacks = full_stacks;
            fold.min_share = min_share;
            write_output(out, &output, |w| match format {
                ExportFormat::Pprof => tracealloc_report::pprof(&snapshot, w),
                ExportFormat::Folded => snapshot
                    .folded(&fold)
                    .iter()
                    .try_for_each(|line| writeln!(w, "{line}")),
                ExportFormat::Speedscope => tracealloc_report::speedscope(&snapshot, &fold, w),
                ExportFormat::Dhat => tracealloc_report::dhat(&snapshot, full_stacks, w),
            })?
        }
        Command::Threads { file, format } => tracealloc_report::threads(
            &load(&file)?,
            format.into(),
            color(),
            tracealloc_report::terminal_width(),
            out,
        )?,
        Command::Report {
            file,
            output,
            diff,
            title,
            frames,
            narrow,
        } => {
            let output = output_path(output, file.with_extension("html"))?;
            let snapshot = narrow.apply(frames.load(&file)?);
            let older = diff
                .as_deref()
                .map(|f| Ok::<_, anyhow::Error>(narrow.apply(frames.load(f)?)))
                .transpose()?;
            let mut options = tracealloc_report::HtmlOptions::default();
            options.title = title;
            write_output(out, &output, |w| {
                tracealloc_report::html_report(&snapshot, older.as_ref(), &options, w)
            })?
        }
        Command::Timeline {
            files,
            output,
            select,
            title,
        } if files.len() == 1 => {
            let given = select.given();
            if !given.is_empty() {
                anyhow::bail!(
                    "{} {} for the top sites across several files: with one file, timeline \
                     shows its totals over time",
                    given.join(", "),
                    if given.len() == 1 { "is" } else { "are" }
                );
            }
            let snapshot = load(&files[0])?;
            let name = files[0].display().to_string();
            tracealloc_report::check_timeline(&snapshot, &name)?;
            let mut options = TimelineOptions::default();
            options.title = title;
            options.color = color();
            match output {
                Some(path) => write_output(out, &path, |w| {
                    tracealloc_report::timeline_svg(&snapshot, &name, &options, w)
                })?,
                None => tracealloc_report::timeline_table(&snapshot, &name, &options, out)?,
            }
        }
        Command::Timeline {
            files,
            output,
            select,
            title,
        } => {
            select.sort_only(
                Some(MetricArg::Live),
                "timeline of several files ranks sites by their live bytes",
            )?;
            if output.is_some() && select.format.is_some() {
                anyhow::bail!(
                    "timeline -o draws an SVG chart: --format is for its table (without -o)"
                );
            }
            select.table_only("timeline of several files")?;
            let snapshots = load_series(&files, &select)?;
            let named = named(&snapshots);
            let mut options = select.timeline_options();
            options.title = title;
            match output {
                Some(path) => write_output(out, &path, |w| {
                    tracealloc_report::growth_svg(&named, &options, w)
                })?,
                None => tracealloc_report::growth_table(&named, &options, out)?,
            }
        }
        Command::Snapshot { target, output } => {
            let socket = control::socket_of(&target)?;
            let mut snapshot = control::ask_snapshot(&socket)?;
            symbolize::symbolizer().symbolize(&mut snapshot);
            symbolize::say_notes(&socket, &snapshot);
            let default = PathBuf::from(format!(
                "tracealloc-{}-{}.json",
                snapshot.meta.pid,
                tracealloc_snapshot::file_stamp(snapshot.meta.time_unix_ms)
            ));
            let output = output_path(output, default)?;
            write_output(out, &output, |w| snapshot.write_json(w))?
        }
        Command::Live { target, refresh } => {
            let socket = control::socket_of(&target)?;
            let mut options = tracealloc_report::LiveOptions::default();
            options.refresh = std::time::Duration::from_secs_f64(refresh);
            let mut symbolizer = symbolize::symbolizer();
            if tracealloc_report::live(&socket, &options, &mut |s| symbolizer.symbolize(s))?
                == tracealloc_report::LiveEnd::ProgramEnded
            {
                writeln!(
                    out,
                    "tracealloc: the program ended ({} is gone)",
                    socket.display()
                )?;
            }
        }
        Command::Control {
            target,
            action,
            bytes,
        } => {
            let request = match (action, bytes) {
                (ControlAction::Sample, Some(bytes)) => control::Request::Sample(
                    control::parse_sampling_bytes(&bytes)
                        .map_err(|e| anyhow::anyhow!("sample BYTES: {e}"))?,
                ),
                (ControlAction::Sample, None) => {
                    anyhow::bail!("sample needs the interval: tracealloc control PID sample BYTES")
                }
                (_, Some(bytes)) => anyhow::bail!(
                    "unexpected argument {bytes:?}: only `sample` takes a value (BYTES)"
                ),
                (ControlAction::Start, None) => control::Request::StartCapture,
                (ControlAction::Stop, None) => control::Request::StopCapture,
                (ControlAction::ResetPeak, None) => control::Request::ResetPeak,
                (ControlAction::Stats, None) => control::Request::Stats,
            };
            let socket = control::socket_of(&target)?;
            let stats = control::ask_stats(&socket, request)?;
            tracealloc_report::live_stats(&stats, out)?
        }
        Command::Info { file } => {
            let snapshot = load(&file)?;
            writeln!(out, "{:>24}: {}", "file", file.display())?;
            tracealloc_report::info(&snapshot, out)?;
            for note in &snapshot.symbolization_notes {
                writeln!(out, "{:>24}: {note}", "not symbolized")?;
            }
        }
        Command::Symbolize { file, output } => {
            let written = symbolize::symbolize(&file, output.as_deref())?;
            writeln!(out, "{}", written.display())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Writes an output file whole or not at all, then prints its path; `-` is standard output
/// (`out`), written once the render succeeded.
fn write_output<E: std::fmt::Display>(
    out: &mut dyn Write,
    path: &Path,
    render: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        let mut rendered = Vec::new();
        render(&mut rendered).map_err(|e| anyhow::anyhow!("standard output: {e}"))?;
        out.write_all(&rendered)?;
        return Ok(());
    }
    tracealloc_report::write_atomically(path, render)?;
    writeln!(out, "{}", path.display())?;
    Ok(())
}

/// A closed pipe (`tracealloc top f | head`) is success, not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = symbolize::DEBUG_DIRS.set(cli.debug_dir.clone());
    if let Command::Run(args) = cli.command {
        // The program's output stays on stdout; the summary goes to stderr.
        let mut err = io::stderr();
        return match run::run(args, &mut err) {
            Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            Err(e) => {
                eprintln!("tracealloc: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match run(cli, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            drop(out);
            // `{:#}`: the error and its causes on one line ("file: cannot read: No such file").
            eprintln!("tracealloc: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A share of a total, from 0 to 1.
fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!(
            "expected a share from 0 to 1, like 0.00001, not {text:?}"
        )),
    }
}

/// A number of seconds from 0.1 to one hour.
fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.1..=3600.0).contains(&s) => Ok(s),
        _ => Err(format!(
            "`{text}` is not a number of seconds from 0.1 to 3600"
        )),
    }
}
