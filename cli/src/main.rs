//! `tracealloc`: reads snapshot files written by the tracealloc library. Each command parses its
//! arguments, makes one library call, and prints.

#![forbid(unsafe_code)]

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tracealloc_report::{FlameOptions, Format, ReportOptions, TimelineOptions};
use tracealloc_snapshot::{FoldOptions, GroupBy, Metric, Snapshot};

#[derive(Parser)]
#[command(
    name = "tracealloc",
    version,
    about = "Read tracealloc heap snapshots: top sites, diffs, leaks, threads, flamegraphs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The top-N groups by live (or total) memory.
    Top {
        file: PathBuf,
        #[command(flatten)]
        select: Select,
        /// Order by live bytes, total bytes, or live blocks.
        #[arg(long, value_enum, default_value_t = MetricArg::Live)]
        sort: MetricArg,
    },
    /// What changed from OLD to NEW, largest absolute change first (works across runs); with more
    /// files, each top site's live bytes across all of them.
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// More snapshots after NEW, oldest first (a running program's periodic snapshots): then
        /// each top site's live bytes in every file, and the change from OLD to the last.
        more: Vec<PathBuf>,
        #[command(flatten)]
        select: Select,
    },
    /// An SVG flamegraph (differential with --diff OLD).
    Flamegraph {
        file: PathBuf,
        /// Output file [default: FILE's stem with .svg, next to FILE].
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
        /// Keep every frame: std's start-up below `main` and each thread's closure too.
        #[arg(long)]
        full_stacks: bool,
        #[arg(long)]
        title: Option<String>,
    },
    /// What is still live, by full stack, largest first.
    Leaks {
        file: PathBuf,
        #[arg(short, default_value_t = 10)]
        n: usize,
        /// Only what grew since this older snapshot.
        #[arg(long, value_name = "OLD")]
        since: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = FormatArg::Table)]
        format: FormatArg,
        /// Every frame, std's allocation internals and start-up included.
        #[arg(long)]
        full_stacks: bool,
    },
    /// One row per thread: live and total memory, and its top site.
    Threads {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = FormatArg::Table)]
        format: FormatArg,
    },
    /// Metadata and totals: command, pid, capture method, live/total/peak, RSS, sites.
    Info { file: PathBuf },
    /// One self-contained HTML report: summary, timeline, sortable top tables, flamegraphs (live,
    /// at the peak, total, temporary, and the change with --diff) and leaks.
    Report {
        file: PathBuf,
        /// Output file [default: FILE's stem with .html, next to FILE].
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Leaks since OLD, and a differential flamegraph.
        #[arg(long, value_name = "OLD")]
        diff: Option<PathBuf>,
        #[arg(long)]
        title: Option<String>,
    },
    /// Memory over time. One file: its timeline (live heap, resident memory, the peak). Several
    /// files, oldest first (a running program's periodic snapshots): each top site's live bytes
    /// across them.
    Timeline {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Draw an SVG chart into this file instead of printing a table.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// With several files: how many sites are shown one by one (the rest are summed).
        #[arg(short, default_value_t = 8)]
        n: usize,
        /// With several files: group sites by allocating function, line, file, stack or thread.
        #[arg(long, value_enum, default_value_t = ByArg::Line)]
        by: ByArg,
        #[arg(long)]
        title: Option<String>,
    },
    /// Convert to a format other tools read: pprof (go tool pprof, Pyroscope, Parca), folded
    /// stacks (flamegraph.pl), speedscope's JSON or DHAT's (Valgrind's dh_view.html).
    Export {
        file: PathBuf,
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Output file [default: FILE's stem with .pb.gz, .folded, .speedscope.json or
        /// .dhat.json, next to FILE].
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
        /// For folded stacks, speedscope and DHAT: keep every frame, std's start-up included.
        #[arg(long)]
        full_stacks: bool,
        /// For folded stacks: a stack holding less than this share of the total is cut where it
        /// parts from bigger ones, in a `[smaller stacks]` frame; the totals stay exact. The
        /// default, 1/20,000, is under what flamegraph.pl and inferno draw at all (0.1 px of 1200);
        /// it keeps a deep-stacked program's folded file near its snapshot's size. 0 keeps every
        /// stack whole.
        #[arg(long, default_value_t = 0.00005, value_parser = share)]
        min_share: f64,
    },
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

#[derive(clap::Args)]
struct Select {
    /// How many groups to show.
    #[arg(short, default_value_t = 10)]
    n: usize,
    /// Group by allocating function, line, file, whole stack, or thread.
    #[arg(long, value_enum, default_value_t = ByArg::Line)]
    by: ByArg,
    /// Keep only sites whose allocating frame (function, file or file:line) matches this glob.
    #[arg(long, value_name = "PAT")]
    include: Vec<String>,
    /// Drop sites whose allocating frame matches this glob.
    #[arg(long, value_name = "PAT")]
    exclude: Vec<String>,
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    format: FormatArg,
    /// With --by stack: every frame, std's allocation internals and start-up included.
    #[arg(long)]
    full_stacks: bool,
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
#[derive(Clone, Copy, ValueEnum)]
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
    fn options(&self, sort: Metric) -> ReportOptions {
        let mut o = ReportOptions::default();
        o.n = self.n;
        o.by = self.by.group(self.full_stacks);
        o.sort = sort;
        o.include = self.include.clone();
        o.exclude = self.exclude.clone();
        o.format = self.format.into();
        o.color = color();
        o
    }
}

/// Color on a terminal only, and never when `NO_COLOR` is set (to anything but the empty string).
fn color() -> bool {
    use std::io::IsTerminal;
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Several snapshot files, each with the name it is shown under.
fn load_series(files: &[PathBuf]) -> anyhow::Result<Vec<(String, Snapshot)>> {
    files
        .iter()
        .map(|f| Ok((f.display().to_string(), load(f)?)))
        .collect()
}

/// The series as the report functions take it.
fn named(snapshots: &[(String, Snapshot)]) -> Vec<(String, &Snapshot)> {
    snapshots
        .iter()
        .map(|(name, s)| (name.clone(), s))
        .collect()
}

fn load(path: &Path) -> anyhow::Result<Snapshot> {
    Ok(tracealloc_report::load_with_progress(path)?)
}

fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    match cli.command {
        Command::Top { file, select, sort } => {
            tracealloc_report::top(&load(&file)?, &select.options(sort.into()), out)?
        }
        Command::Diff {
            old,
            new,
            more,
            select,
        } if more.is_empty() => tracealloc_report::diff(
            &load(&new)?,
            &load(&old)?,
            &select.options(Metric::LiveBytes),
            out,
        )?,
        Command::Diff {
            old,
            new,
            more,
            select,
        } => {
            let files: Vec<PathBuf> = [old, new].into_iter().chain(more).collect();
            let snapshots = load_series(&files)?;
            let named = named(&snapshots);
            let mut options = TimelineOptions::default();
            options.n = select.n;
            options.by = select.by.group(select.full_stacks);
            options.color = color();
            tracealloc_report::growth_table(&named, &options, out)?
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
            full_stacks,
            title,
        } => {
            let snapshot = load(&file)?;
            let older = diff.as_deref().map(load).transpose()?;
            let output = output.unwrap_or_else(|| file.with_extension("svg"));
            let mut options = FlameOptions::default();
            options.metric = metric.into();
            options.by_thread = by_thread;
            options.by_label = by_label;
            options.reverse = reverse;
            options.inverted = inverted;
            options.full_stacks = full_stacks;
            options.title = title;
            write_output(out, &output, |w| {
                tracealloc_report::flamegraph(&snapshot, older.as_ref(), &options, w)
            })?
        }
        Command::Leaks {
            file,
            n,
            since,
            format,
            full_stacks,
        } => {
            let snapshot = load(&file)?;
            let since = since.as_deref().map(load).transpose()?;
            let mut options = ReportOptions::default();
            options.n = n;
            options.format = format.into();
            options.color = color();
            options.by = if full_stacks {
                GroupBy::FullStack
            } else {
                GroupBy::Stack
            };
            tracealloc_report::leaks(&snapshot, since.as_ref(), &options, out)?
        }
        Command::Export {
            file,
            format,
            output,
            metric,
            by_thread,
            by_label,
            full_stacks,
            min_share,
        } => {
            let snapshot = load(&file)?;
            let output = output.unwrap_or_else(|| {
                file.with_extension(match format {
                    ExportFormat::Pprof => "pb.gz",
                    ExportFormat::Folded => "folded",
                    ExportFormat::Speedscope => "speedscope.json",
                    ExportFormat::Dhat => "dhat.json",
                })
            });
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
        Command::Threads { file, format } => {
            tracealloc_report::threads(&load(&file)?, format.into(), color(), out)?
        }
        Command::Report {
            file,
            output,
            diff,
            title,
        } => {
            let snapshot = load(&file)?;
            let older = diff.as_deref().map(load).transpose()?;
            let output = output.unwrap_or_else(|| file.with_extension("html"));
            let mut options = tracealloc_report::HtmlOptions::default();
            options.title = title;
            write_output(out, &output, |w| {
                tracealloc_report::html_report(&snapshot, older.as_ref(), &options, w)
            })?
        }
        Command::Timeline {
            files,
            output,
            n,
            by,
            title,
        } => {
            let snapshots = load_series(&files)?;
            let named = named(&snapshots);
            if let [(name, one)] = named.as_slice() {
                tracealloc_report::check_timeline(one, name)?;
            }
            let mut options = TimelineOptions::default();
            options.n = n;
            options.by = by.group(false);
            options.title = title;
            options.color = color();
            match (named.as_slice(), output) {
                ([(name, one)], Some(path)) => write_output(out, &path, |w| {
                    tracealloc_report::timeline_svg(one, name, &options, w)
                })?,
                ([(name, one)], None) => {
                    tracealloc_report::timeline_table(one, name, &options, out)?
                }
                (_, Some(path)) => write_output(out, &path, |w| {
                    tracealloc_report::growth_svg(&named, &options, w)
                })?,
                (_, None) => tracealloc_report::growth_table(&named, &options, out)?,
            }
        }
        Command::Info { file } => {
            let snapshot = load(&file)?;
            writeln!(out, "{:>24}: {}", "file", file.display())?;
            tracealloc_report::info(&snapshot, out)?
        }
    }
    out.flush()?;
    Ok(())
}

/// Writes an output file whole or not at all, then prints its path.
fn write_output<E: std::fmt::Display>(
    out: &mut dyn Write,
    path: &Path,
    render: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> anyhow::Result<()> {
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
