//! Top-N tables, diffs, leak and thread reports and metadata, as aligned tables, JSON or CSV.
//!
//! JSON and CSV are a stable contract for scripts: `top` gives objects with at least `key,
//! live_bytes, live_blocks, total_bytes, total_blocks`; `diff` objects with at least `key,
//! live_bytes, live_blocks, bytes_diff, blocks_diff`.

use std::io::{self, Write};

use comfy_table::{Cell, CellAlignment, Table, presets};
use serde::Serialize;
use tracealloc_snapshot::{
    Filter, GroupBy, Metric, ReallocCharge, Snapshot, Stat, StatDiff, blocks, human_bytes,
    human_bytes_signed, human_count, human_count_signed, human_date, human_lifetime,
};

/// How results are printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Table,
    Json,
    Csv,
}

/// What to show and how.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReportOptions {
    pub n: usize,
    pub by: GroupBy,
    pub sort: Metric,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub format: Format,
    /// ANSI colors in tables (the CLI turns them on for a terminal without `NO_COLOR`).
    pub color: bool,
    /// The stacks under each leak row with every frame, std's allocation internals and start-up
    /// included ([`GroupBy::FullStack`] rather than [`GroupBy::Stack`]).
    pub full_stacks: bool,
    /// The terminal's width: a wider table leaves out its least needed columns, then shortens
    /// source paths from the left (the CLI sets it on a terminal, see [`terminal_width`]).
    /// `None`, the default: tables are as wide as their contents.
    pub width: Option<usize>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            n: 10,
            by: GroupBy::Line,
            sort: Metric::LiveBytes,
            include: Vec::new(),
            exclude: Vec::new(),
            format: Format::Table,
            color: false,
            full_stacks: false,
            width: None,
        }
    }
}

impl ReportOptions {
    pub(crate) fn filtered(&self, snapshot: &Snapshot) -> Snapshot {
        if self.include.is_empty() && self.exclude.is_empty() {
            return snapshot.clone();
        }
        snapshot.filter(&Filter::from_patterns(&self.include, &self.exclude))
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// `columns` (headers, least needed first) but the one `sort` ranks by, which a table keeps.
fn droppable_columns<'a>(columns: &[&'a str], sort: Metric) -> Vec<&'a str> {
    let kept = match sort {
        Metric::TotalBlocks => "total blocks",
        Metric::PeakBytes => "at peak",
        Metric::TemporaryBlocks => "temporary",
        Metric::ReallocCopiedBytes => "realloc copies",
        Metric::LiveBytes | Metric::TotalBytes | Metric::LiveBlocks => "",
    };
    columns.iter().copied().filter(|&c| c != kept).collect()
}

/// The terminal's width in columns when standard output is a terminal: `COLUMNS` if it is set to
/// a number, else what the terminal says. `None` for a pipe or a file (scripts get whole lines).
pub fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal;
    if let Some(columns) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return Some(columns);
    }
    if !io::stdout().is_terminal() {
        return None;
    }
    ratatui::crossterm::terminal::size()
        .ok()
        .map(|(columns, _)| usize::from(columns))
        .filter(|&columns| columns > 0)
}

fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_header(header.iter().map(Cell::new));
    for i in 0..header.len().saturating_sub(1) {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

pub(crate) const BOLD: &str = "\x1b[1m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
pub(crate) const RESET: &str = "\x1b[0m";

/// Writes a table without the padding comfy-table leaves at the end of each line. With `color`,
/// the header is bold and each row takes its style from `rows`: (ANSI style, lines of the row).
fn write_table(
    out: &mut dyn Write,
    table: &Table,
    color: bool,
    rows: &[(&str, usize)],
) -> io::Result<()> {
    let mut styles = std::iter::once(BOLD).chain(
        rows.iter()
            .flat_map(|&(style, lines)| std::iter::repeat_n(style, lines)),
    );
    for line in table.to_string().lines() {
        let style = styles.next().unwrap_or("");
        if color && !style.is_empty() {
            writeln!(out, "{style}{}{RESET}", line.trim_end())?;
        } else {
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    Ok(())
}

/// Growth red, shrinkage green.
fn change_style(change: i64) -> &'static str {
    match change.signum() {
        1 => RED,
        -1 => GREEN,
        _ => "",
    }
}

/// How wide a table may be, and how it narrows when it is wider: which columns it leaves out
/// first, then how it shortens its longest text (source paths lose their leading directories).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Fit<'a> {
    /// The terminal's width in columns; `None` (a pipe or a file): any width.
    pub(crate) width: Option<usize>,
    /// Headers of the columns that may be left out, least needed first.
    pub(crate) droppable: &'a [&'a str],
    /// The column whose text is shortened: the last unless this is set.
    pub(crate) shorten: Option<usize>,
}

impl<'a> Fit<'a> {
    pub(crate) fn new(width: Option<usize>, droppable: &'a [&'a str]) -> Fit<'a> {
        Fit {
            width,
            droppable,
            shorten: None,
        }
    }
}

/// Shortest text a shortened cell keeps: the file name and line of most source paths.
const SHORTEST_CELL: usize = 24;

/// `text` in at most `room` characters, each line on its own: what does not fit is cut from the
/// start, at a `/` where there is one, and marked with `…`. A stack's frame (`function (path:line)`)
/// keeps its function whole and loses the start of its path.
pub(crate) fn shorten_lines(text: &str, room: usize) -> String {
    text.lines()
        .map(|line| {
            if line.chars().count() <= room {
                return line.to_owned();
            }
            if let Some(open) = line.find(" (").filter(|_| line.ends_with(')')) {
                let (function, location) = (&line[..open], &line[open + 2..line.len() - 1]);
                let left = room.saturating_sub(function.chars().count() + 3);
                return format!("{function} ({})", shorten_tail(location, left.max(12)));
            }
            shorten_tail(line, room)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The end of `text` in at most `room` characters, cut at a `/` where there is one, `…` first.
fn shorten_tail(text: &str, room: usize) -> String {
    let chars = text.chars().count();
    if chars <= room {
        return text.to_owned();
    }
    let tail: String = text.chars().skip(chars - room.saturating_sub(1)).collect();
    let tail = match tail.find('/') {
        Some(cut) if cut + 1 < tail.len() => &tail[cut..],
        _ => tail.as_str(),
    };
    format!("…{tail}")
}

/// A table of rows (cells, ANSI style of the row) under `header`: figures right-aligned, the last
/// column (the key) left-aligned, and the first too when `label_first`. A row is as tall as its
/// last cell (stacks print one frame per line). Wider than `fit.width`, it leaves out
/// `fit.droppable` columns, in order, then shortens the key's lines.
pub(crate) fn write_rows<'s>(
    out: &mut dyn Write,
    header: &[&str],
    rows: impl Iterator<Item = (Vec<String>, &'s str)>,
    color: bool,
    label_first: bool,
    fit: Fit<'_>,
) -> io::Result<()> {
    let mut header: Vec<&str> = header.to_vec();
    let mut rows: Vec<(Vec<String>, &str)> = rows.collect();
    fn render<'r>(
        header: &[&str],
        rows: &[(Vec<String>, &'r str)],
        label_first: bool,
    ) -> (Table, Vec<(&'r str, usize)>) {
        let mut table = new_table(header);
        if label_first && let Some(column) = table.column_mut(0) {
            column.set_cell_alignment(CellAlignment::Left);
        }
        let mut styles = Vec::new();
        for (cells, style) in rows {
            styles.push((*style, cells.last().map_or(1, |c| c.lines().count().max(1))));
            table.add_row(cells);
        }
        (table, styles)
    }
    let widest = |table: &Table| {
        table
            .to_string()
            .lines()
            .map(|line| line.trim_end().chars().count())
            .max()
            .unwrap_or(0)
    };
    let mut shortened = false;
    loop {
        let (table, styles) = render(&header, &rows, label_first);
        let Some(width) = fit
            .width
            .filter(|&width| widest(&table) > width && !shortened)
        else {
            return write_table(out, &table, color, &styles);
        };
        let droppable = fit
            .droppable
            .iter()
            .find_map(|name| header.iter().position(|h| h == name));
        if let Some(column) = droppable {
            header.remove(column);
            for (cells, _) in &mut rows {
                if column < cells.len() {
                    cells.remove(column);
                }
            }
            continue;
        }
        let column = fit.shorten.unwrap_or(header.len().saturating_sub(1));
        let longest = rows
            .iter()
            .filter_map(|(cells, _)| cells.get(column))
            .flat_map(|cell| cell.lines())
            .map(|line| line.chars().count())
            .max()
            .unwrap_or(0);
        let room = longest
            .saturating_sub(widest(&table) - width)
            .max(SHORTEST_CELL);
        for (cells, _) in &mut rows {
            if let Some(cell) = cells.get_mut(column) {
                *cell = shorten_lines(cell, room);
            }
        }
        shortened = true;
    }
}

/// A key as a table shows it: source paths shortened, a stack one frame per line.
fn key_cell(snapshot: &Snapshot, key: &str, by: GroupBy) -> String {
    let key = snapshot.short_paths(key);
    match by {
        GroupBy::Stack => key
            .split(Stat::STACK_SEPARATOR)
            .collect::<Vec<_>>()
            .join("\n"),
        _ => key.into_owned(),
    }
}

pub(crate) fn write_json<T: Serialize>(out: &mut dyn Write, rows: &[T]) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, rows)?;
    writeln!(out)
}

pub(crate) fn write_csv<T: Serialize>(out: &mut dyn Write, rows: &[T]) -> io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    for row in rows {
        writer.serialize(row).map_err(io::Error::other)?;
    }
    writer.flush()
}

/// A group's row of a sampled snapshot in JSON and CSV: each estimate with its standard error, and
/// the figures sampled mode does not estimate as null (empty in CSV), never as 0.
#[derive(Debug, Serialize)]
struct SampledRow<'a> {
    key: &'a str,
    live_bytes: u64,
    live_bytes_stderr: u64,
    live_blocks: u64,
    live_blocks_stderr: u64,
    total_bytes: u64,
    total_bytes_stderr: u64,
    total_blocks: u64,
    total_blocks_stderr: u64,
    peak_bytes: Option<u64>,
    peak_blocks: Option<u64>,
    temporary_blocks: Option<u64>,
    reallocs: Option<u64>,
    realloc_copied_bytes: Option<u64>,
}

impl<'a> SampledRow<'a> {
    fn of(stat: &'a Stat, mean: u64) -> SampledRow<'a> {
        let errors = stat.standard_errors(mean).unwrap_or_default();
        SampledRow {
            key: &stat.key,
            live_bytes: stat.live_bytes,
            live_bytes_stderr: errors.live_bytes,
            live_blocks: stat.live_blocks,
            live_blocks_stderr: errors.live_blocks,
            total_bytes: stat.total_bytes,
            total_bytes_stderr: errors.total_bytes,
            total_blocks: stat.total_blocks,
            total_blocks_stderr: errors.total_blocks,
            peak_bytes: None,
            peak_blocks: None,
            temporary_blocks: None,
            reallocs: None,
            realloc_copied_bytes: None,
        }
    }
}

/// `12.3 MiB ± 1.1 MiB`: an estimate and its standard error.
pub(crate) fn bytes_with_error(bytes: u64, error: u64) -> String {
    format!("{} ± {}", human_bytes(bytes), human_bytes(error))
}

/// What `info` says of a sampling interval changed while the program ran: when, and that
/// earlier blocks were sampled at other intervals (the estimates stay unbiased: each block keeps
/// the weight of the interval it was sampled at).
fn sampling_changes(capture: &tracealloc_snapshot::CaptureInfo) -> String {
    if capture.sampling_changes == 0 {
        return String::new();
    }
    let history: Vec<String> = capture
        .sampling_history
        .iter()
        .map(|&n| human_bytes(n))
        .collect();
    format!(
        "; the interval was changed {} while the program ran, so earlier blocks were sampled at \
         other intervals (used: {}; each block keeps its own interval's weight)",
        match capture.sampling_changes {
            1 => "once".to_owned(),
            n => format!("{n} times"),
        },
        history.join(", ")
    )
}

/// What the top table of a snapshot sampled every `mean` bytes says under it.
pub(crate) fn sampled_note(mean: u64) -> String {
    format!(
        "Sampled every {} on average: each figure is an estimate ± one standard error (a site of \
         B bytes: about sqrt({} x B)). Bytes at the peak, temporary blocks and realloc copies are \
         not estimated in sampled mode.",
        human_bytes(mean),
        human_bytes(mean)
    )
}

/// The top-N groups of a snapshot. In a sampled snapshot, each figure comes with its standard
/// error, and the figures sampled mode does not estimate are left out (null in JSON); sorting by
/// one of them is an error.
pub fn top(snapshot: &Snapshot, options: &ReportOptions, out: &mut dyn Write) -> io::Result<()> {
    let snapshot = options.filtered(snapshot);
    let mean = snapshot.meta.capture.sampling_bytes;
    if mean > 0 && !options.sort.estimated_when_sampled() {
        return Err(io::Error::other(format!(
            "{} are not estimated in sampled mode (the snapshot was sampled every {}); sort by \
             live, total, blocks or allocations, or profile in exact mode",
            options.sort.describe(),
            human_bytes(mean)
        )));
    }
    let all = snapshot.statistics_sorted(options.by, options.sort);
    let live_total: u64 = all.iter().map(|s| s.live_bytes).sum();
    let allocated_total: u64 = all.iter().map(|s| s.total_bytes).sum();
    let sort_total: u64 = all.iter().map(|s| s.figure(options.sort)).sum();
    let rows = &all[..all.len().min(options.n)];
    if mean > 0 {
        let totals = (all.len(), live_total, allocated_total, sort_total);
        return top_sampled(&snapshot, options, rows, totals, out);
    }
    match options.format {
        Format::Json => write_json(out, rows),
        Format::Csv => write_csv(out, rows),
        Format::Table => {
            // Lifetimes, when recorded: the mean lifetime and each group's own maximum.
            let lifetimes = snapshot.meta.capture.lifetimes;
            let table_rows = rows.iter().enumerate().map(|(rank, s)| {
                let mut cells = vec![
                    (rank + 1).to_string(),
                    human_bytes(s.live_bytes),
                    human_count(s.live_blocks),
                    human_bytes(s.peak_bytes),
                    human_bytes(s.total_bytes),
                    human_count(s.total_blocks),
                    human_count(s.temporary_blocks),
                    human_bytes(s.realloc_copied_bytes),
                ];
                if lifetimes {
                    cells.push(s.mean_lifetime_us().map_or_else(String::new, |us| {
                        human_lifetime(us, snapshot.meta.capture.lifetime_clock_ns)
                    }));
                    cells.push(human_bytes(s.max_bytes));
                }
                cells.push(percent(s.figure(options.sort), sort_total));
                cells.push(key_cell(&snapshot, &s.key, options.by));
                (cells, "")
            });
            let share = format!("share of {}", options.sort.describe());
            let mut header = vec![
                "#",
                "live",
                "blocks",
                "at peak",
                "total",
                "total blocks",
                "temporary",
                "realloc copies",
            ];
            if lifetimes {
                header.extend(["mean lifetime", "own max"]);
            }
            header.extend([share.as_str(), "key"]);
            let droppable = droppable_columns(
                &[
                    "temporary",
                    "realloc copies",
                    "own max",
                    "total blocks",
                    "mean lifetime",
                    &share,
                    "at peak",
                ],
                options.sort,
            );
            let fit = Fit::new(options.width, &droppable);
            write_rows(out, &header, table_rows, options.color, false, fit)?;
            writeln!(
                out,
                "{} of {} groups; live {} in all, {} allocated.",
                rows.len(),
                all.len(),
                human_bytes(live_total),
                human_bytes(allocated_total)
            )?;
            // An exit snapshot after the program freed its memory: the live ranking is noise.
            let mostly_freed = live_total.saturating_mul(100) < allocated_total;
            if options.sort == Metric::LiveBytes && mostly_freed {
                writeln!(
                    out,
                    "Almost nothing is live (under 1% of what was allocated): `--sort peak` ranks by bytes live at the peak, `--sort total` by bytes allocated, `--sort allocations` by their number."
                )?;
            }
            Ok(())
        }
    }
}

/// [`top`]'s rows of a sampled snapshot: `(groups, live, allocated, sorted figure)` are the whole
/// snapshot's.
fn top_sampled(
    snapshot: &Snapshot,
    options: &ReportOptions,
    rows: &[Stat],
    (groups, live_total, allocated_total, sort_total): (usize, u64, u64, u64),
    out: &mut dyn Write,
) -> io::Result<()> {
    let mean = snapshot.meta.capture.sampling_bytes;
    let sampled: Vec<SampledRow> = rows.iter().map(|s| SampledRow::of(s, mean)).collect();
    match options.format {
        Format::Json => write_json(out, &sampled),
        Format::Csv => write_csv(out, &sampled),
        Format::Table => {
            let table_rows = sampled
                .iter()
                .zip(rows)
                .enumerate()
                .map(|(rank, (row, s))| {
                    let cells = vec![
                        (rank + 1).to_string(),
                        bytes_with_error(row.live_bytes, row.live_bytes_stderr),
                        human_count(row.live_blocks),
                        bytes_with_error(row.total_bytes, row.total_bytes_stderr),
                        human_count(row.total_blocks),
                        percent(s.figure(options.sort), sort_total),
                        key_cell(snapshot, &s.key, options.by),
                    ];
                    (cells, "")
                });
            let share = format!("share of {}", options.sort.describe());
            let header = [
                "#",
                "live",
                "blocks",
                "total",
                "total blocks",
                share.as_str(),
                "key",
            ];
            let droppable = droppable_columns(&["total blocks", &share], options.sort);
            let fit = Fit::new(options.width, &droppable);
            write_rows(out, &header, table_rows, options.color, false, fit)?;
            writeln!(
                out,
                "{} of {} groups; live {} in all, {} allocated.",
                rows.len(),
                groups,
                human_bytes(live_total),
                human_bytes(allocated_total)
            )?;
            writeln!(out, "{}", sampled_note(mean))
        }
    }
}

/// What changed in `new` since `old`, largest absolute change first. The newer snapshot comes
/// first, as in `new.diff(&old)` and every other comparison of the libraries.
pub fn diff(
    new: &Snapshot,
    old: &Snapshot,
    options: &ReportOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let (old, new) = (options.filtered(old), options.filtered(new));
    let all = new.diff(&old).statistics(options.by);
    let rows: Vec<&StatDiff> = all.iter().take(options.n).collect();
    let means = (
        new.meta.capture.sampling_bytes,
        old.meta.capture.sampling_bytes,
    );
    let sampled = means != (0, 0);
    let errors: Vec<DiffErrors> = rows.iter().map(|d| diff_errors(d, means)).collect();
    match options.format {
        Format::Json if sampled => write_json(out, &sampled_diff_rows(&rows, &errors)),
        Format::Csv if sampled => write_csv(out, &sampled_diff_rows(&rows, &errors)),
        Format::Json => write_json(out, &rows),
        Format::Csv => write_csv(out, &rows),
        Format::Table => {
            let table_rows = rows.iter().zip(&errors).enumerate().map(|(rank, (d, e))| {
                let (live, change) = if sampled {
                    (
                        bytes_with_error(d.live_bytes, e.live_bytes),
                        format!(
                            "{} ± {}",
                            human_bytes_signed(d.bytes_diff),
                            human_bytes(e.bytes_diff)
                        ),
                    )
                } else {
                    (human_bytes(d.live_bytes), human_bytes_signed(d.bytes_diff))
                };
                let cells = vec![
                    (rank + 1).to_string(),
                    live,
                    change,
                    human_count(d.live_blocks),
                    human_count_signed(d.blocks_diff),
                    human_bytes_signed(d.total_bytes_diff),
                    key_cell(&new, &d.key, options.by),
                ];
                (cells, change_style(d.bytes_diff))
            });
            // "allocated": what the group allocated in between (within one run; across two runs, the
            // change of its total), which ranks groups whose live memory did not change.
            let header = [
                "#",
                "live",
                "change",
                "blocks",
                "change",
                "allocated",
                "key",
            ];
            let fit = Fit::new(options.width, &["allocated"]);
            write_rows(out, &header, table_rows, options.color, false, fit)?;
            let change: i64 = all.iter().map(|d| d.bytes_diff).sum();
            writeln!(
                out,
                "{} of {} groups; live memory changed by {}.",
                rows.len(),
                all.len(),
                human_bytes_signed(change)
            )?;
            if sampled {
                writeln!(out, "{}", sampled_note(means.0.max(means.1)))?;
            }
            Ok(())
        }
    }
}

/// The standard errors of a change between two snapshots, either or both sampled (`means`: the
/// newer's and the older's intervals, 0 for exact): the errors of the two estimates combined.
#[derive(Debug, Clone, Copy, Default)]
struct DiffErrors {
    live_bytes: u64,
    bytes_diff: u64,
    blocks_diff: u64,
}

fn diff_errors(d: &StatDiff, (new_mean, old_mean): (u64, u64)) -> DiffErrors {
    let new = Stat {
        key: String::new(),
        live_bytes: d.live_bytes,
        live_blocks: d.live_blocks,
        variance: d.variances.0,
        ..Stat::default()
    };
    let old = Stat {
        key: String::new(),
        live_bytes: (d.live_bytes as i64 - d.bytes_diff).max(0) as u64,
        live_blocks: (d.live_blocks as i64 - d.blocks_diff).max(0) as u64,
        variance: d.variances.1,
        ..Stat::default()
    };
    let new_errors = new.standard_errors(new_mean).unwrap_or_default();
    let old_errors = old.standard_errors(old_mean).unwrap_or_default();
    let combined = |a: u64, b: u64| ((a as f64).powi(2) + (b as f64).powi(2)).sqrt().round() as u64;
    DiffErrors {
        live_bytes: new_errors.live_bytes,
        bytes_diff: combined(new_errors.live_bytes, old_errors.live_bytes),
        blocks_diff: combined(new_errors.live_blocks, old_errors.live_blocks),
    }
}

/// A change's row in JSON and CSV when either snapshot was sampled: each figure with its standard
/// error.
#[derive(Debug, Serialize)]
struct SampledDiffRow<'a> {
    key: &'a str,
    live_bytes: u64,
    live_bytes_stderr: u64,
    live_blocks: u64,
    bytes_diff: i64,
    bytes_diff_stderr: u64,
    blocks_diff: i64,
    blocks_diff_stderr: u64,
    total_bytes_diff: i64,
    total_blocks_diff: i64,
}

fn sampled_diff_rows<'a>(rows: &[&'a StatDiff], errors: &[DiffErrors]) -> Vec<SampledDiffRow<'a>> {
    rows.iter()
        .zip(errors)
        .map(|(d, e)| SampledDiffRow {
            key: &d.key,
            live_bytes: d.live_bytes,
            live_bytes_stderr: e.live_bytes,
            live_blocks: d.live_blocks,
            bytes_diff: d.bytes_diff,
            bytes_diff_stderr: e.bytes_diff,
            blocks_diff: d.blocks_diff,
            blocks_diff_stderr: e.blocks_diff,
            total_bytes_diff: d.total_bytes_diff,
            total_blocks_diff: d.total_blocks_diff,
        })
        .collect()
}

/// One row per thread: its figures and its top site; narrower than `width` (the terminal's, see
/// [`terminal_width`]), the totals are left out, then the top sites' paths shortened.
pub fn threads(
    snapshot: &Snapshot,
    format: Format,
    color: bool,
    width: Option<usize>,
    out: &mut dyn Write,
) -> io::Result<()> {
    #[derive(Serialize)]
    struct Row {
        name: String,
        tid: u64,
        alive: bool,
        /// Threads the row stands for (see `ThreadInfo::threads`).
        threads: u64,
        live_bytes: u64,
        live_blocks: u64,
        total_bytes: u64,
        total_blocks: u64,
        top_site: String,
    }
    let per_thread = snapshot.statistics_per_thread(GroupBy::Line);
    // Exited threads of one name are one row (a pool's workers, reaped and restarted): their
    // figures add up, and the row's top site is the top of their sites together. Running threads
    // keep a row each.
    let mut rows: Vec<Row> = Vec::new();
    let mut sites_of_row: Vec<std::collections::HashMap<&str, (u64, u64)>> = Vec::new();
    for (t, groups) in snapshot.threads.iter().zip(&per_thread) {
        let at = (!t.alive)
            .then(|| rows.iter().position(|r| !r.alive && r.name == t.name))
            .flatten()
            .unwrap_or_else(|| {
                rows.push(Row {
                    name: t.name.clone(),
                    tid: t.tid,
                    alive: t.alive,
                    threads: 0,
                    live_bytes: 0,
                    live_blocks: 0,
                    total_bytes: 0,
                    total_blocks: 0,
                    top_site: String::new(),
                });
                sites_of_row.push(std::collections::HashMap::new());
                rows.len() - 1
            });
        let row = &mut rows[at];
        row.threads += t.threads;
        for s in groups {
            row.live_bytes += s.live_bytes;
            row.live_blocks += s.live_blocks;
            row.total_bytes += s.total_bytes;
            row.total_blocks += s.total_blocks;
            let site = sites_of_row[at].entry(s.key.as_str()).or_default();
            (site.0, site.1) = (site.0 + s.live_bytes, site.1 + s.total_bytes);
        }
    }
    for (row, sites) in rows.iter_mut().zip(&sites_of_row) {
        row.top_site = sites
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(key, _)| (*key).to_owned())
            .unwrap_or_default();
    }
    rows.sort_by(|a, b| {
        b.live_bytes
            .cmp(&a.live_bytes)
            .then(b.total_bytes.cmp(&a.total_bytes))
            .then(a.name.cmp(&b.name))
    });
    match format {
        Format::Json => write_json(out, &rows),
        Format::Csv => write_csv(out, &rows),
        Format::Table => {
            let table_rows = rows.iter().map(|r| {
                let name = match (r.alive, r.threads) {
                    (true, 1) => r.name.clone(),
                    (false, 1) => format!("{} (exited)", r.name),
                    (true, n) => {
                        format!("{} ({} threads, the last running)", r.name, human_count(n))
                    }
                    (false, n) => format!("{} (exited, {} threads)", r.name, human_count(n)),
                };
                let cells = vec![
                    name,
                    human_bytes(r.live_bytes),
                    human_count(r.live_blocks),
                    human_bytes(r.total_bytes),
                    human_count(r.total_blocks),
                    snapshot.short_paths(&r.top_site).into_owned(),
                ];
                (cells, "")
            });
            let header = [
                "thread",
                "live",
                "blocks",
                "total",
                "total blocks",
                "top site",
            ];
            // Narrower, the totals go first, then the top sites' paths are shortened.
            let fit = Fit::new(width, &["total blocks", "total"]);
            write_rows(out, &header, table_rows, color, true, fit)?;
            match snapshot.meta.capture.sampling_bytes {
                0 => Ok(()),
                // The rows show no errors (a thread's figures sum many sites'): say where they are.
                mean => writeln!(
                    out,
                    "Sampled every {} on average: each figure is an estimate; `top --by thread` \
                     gives each with its standard error.",
                    human_bytes(mean)
                ),
            }
        }
    }
}

/// What sampling means for a site's figures: the interval, the seed that reproduces the samples,
/// and the standard error of sites of a few sizes.
fn sampling_meaning(capture: &tracealloc_snapshot::CaptureInfo) -> String {
    let mean = capture.sampling_bytes;
    let share = |site: u64| 100.0 * (mean as f64 / site as f64).sqrt();
    let sizes = [1u64 << 20, 10 << 20, 100 << 20];
    let examples: Vec<String> = sizes
        .iter()
        .map(|&b| format!("±{:.0}% at {}", share(b).min(999.0), human_bytes(b)))
        .collect();
    let seed = match (capture.sampling_seed, capture.sampling_seed_from_env) {
        (Some(seed), true) => format!("; seed {seed}, set by TRACEALLOC_SEED"),
        (Some(seed), false) => {
            format!("; seed {seed} (TRACEALLOC_SEED={seed} draws the same samples again)")
        }
        (None, _) => String::new(),
    };
    format!(
        "one block per {} allocated on average{seed}. A site's figures are estimates: one \
         standard error is about sqrt({} x the estimate), {}",
        human_bytes(mean),
        human_bytes(mean),
        examples.join(", ")
    )
}

/// The share of truncated captures, with the variable that raises the limit when it matters.
fn truncated_share(c: &tracealloc_snapshot::CaptureCounts, depth: u32) -> String {
    let all = c.complete + c.truncated + c.broken;
    if c.truncated == 0 || all == 0 {
        return String::new();
    }
    let share = c.truncated as f64 * 100.0 / all as f64;
    let hint = if depth < 256 {
        format!(
            "; deeper stacks with TRACEALLOC_DEPTH={}",
            (depth * 2).min(256)
        )
    } else {
        String::new()
    };
    format!(" ({share:.1}% at the depth limit of {depth}{hint})")
}

/// What `info` says of a snapshot, as (key, text) rows: what the report's "About this snapshot"
/// says too.
pub(crate) fn info_rows(snapshot: &Snapshot) -> Vec<(String, String)> {
    let m = &snapshot.meta;
    let t = &snapshot.totals;
    let p = &snapshot.profiler;
    let c = &p.captures;
    let rows = [
        ("command", m.command.join(" ")),
        ("pid", m.pid.to_string()),
        ("time", human_date(m.time_unix_ms)),
        (
            "capture",
            format!(
                "{}, depth {}{}{}{}",
                m.capture.method,
                m.capture.max_depth,
                match (m.capture.frame_pointers, m.capture.method_from_env) {
                    (_, true) => " (chosen by TRACEALLOC_CAPTURE=unwind)",
                    (true, false) => "",
                    (false, false) => " (no frame pointers)",
                },
                match (m.capture.sampling_bytes, m.capture.sampling_from_env) {
                    (0, false) => ", exact: every block".to_owned(),
                    (0, true) => ", exact: every block (TRACEALLOC_SAMPLE=0)".to_owned(),
                    (n, from_env) => format!(
                        ", sampled every {} on average, set by {} (site figures are estimates){}",
                        human_bytes(n),
                        if from_env {
                            "TRACEALLOC_SAMPLE"
                        } else {
                            "Profiler::sampled"
                        },
                        sampling_changes(&m.capture),
                    ),
                },
                match (m.capture.lifetimes, m.capture.lifetimes_from_env) {
                    (true, true) => ", with lifetimes (TRACEALLOC_LIFETIMES=1)",
                    (true, false) => ", with lifetimes (Profiler::lifetimes)",
                    (false, true) => ", without lifetimes (TRACEALLOC_LIFETIMES=0)",
                    (false, false) => ", without lifetimes",
                }
            ),
        ),
        (
            "live",
            format!("{} in {}", human_bytes(t.live_bytes), blocks(t.live_blocks)),
        ),
        (
            "total",
            format!(
                "{} in {}",
                human_bytes(t.total_bytes),
                blocks(t.total_blocks)
            ),
        ),
        (
            "peak",
            format!("{} in {}", human_bytes(t.peak_bytes), blocks(t.peak_blocks)),
        ),
        ("process RSS", human_bytes(m.rss_bytes)),
        ("process threads", human_count(m.thread_count)),
        (
            "sites / stacks / frames",
            format!(
                "{} / {} / {}",
                human_count(snapshot.sites.len() as u64),
                human_count(snapshot.stacks.len() as u64),
                human_count(snapshot.frames.len() as u64)
            ),
        ),
        ("threads that allocated", {
            // A state reused by threads that came one after another stands for all of them.
            let threads: u64 = snapshot.threads.iter().map(|t| t.threads).sum();
            if threads == snapshot.threads.len() as u64 {
                human_count(threads)
            } else {
                format!(
                    "{} (in {} rows: exited threads of one name, or numbered names, share one)",
                    human_count(threads),
                    human_count(snapshot.threads.len() as u64)
                )
            }
        }),
        // Counted in allocations (each is one capture in exact mode; sampled, the sites' figures
        // are estimates, and so are these).
        (
            "allocations' stacks",
            format!(
                "{} complete, {} truncated{}, {} broken{}{}{}",
                human_count(c.complete),
                human_count(c.truncated),
                truncated_share(c, m.capture.max_depth),
                human_count(c.broken),
                if c.capture_off > 0 {
                    format!(
                        ", {} allocated while stack capture was off (before it started, or \
                         after a stop: the site {})",
                        human_count(c.capture_off),
                        tracealloc_snapshot::CAPTURE_OFF_FRAME
                    )
                } else {
                    String::new()
                },
                if c.no_stack_bounds > 0 {
                    format!(
                        ", {} not captured: the thread's stack bounds could not be read \
                         (no /proc?)",
                        human_count(c.no_stack_bounds)
                    )
                } else {
                    String::new()
                },
                if m.capture.sampling_bytes > 0 {
                    " (estimated from the samples)"
                } else {
                    ""
                }
            ),
        ),
        (
            "profiler's own memory",
            if p.tables_bytes > 0 {
                format!(
                    "{} ({} of tables, {} of symbol cache and other heap)",
                    human_bytes(p.own_bytes),
                    human_bytes(p.tables_bytes),
                    human_bytes(p.own_bytes.saturating_sub(p.tables_bytes))
                )
            } else {
                human_bytes(p.own_bytes)
            },
        ),
        (
            "tracealloc version",
            format!(
                "{} (file format {})",
                m.tracealloc_version, snapshot.version
            ),
        ),
    ];
    let mut rows: Vec<(String, String)> =
        rows.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    rows.push((
        "reallocs charged to".to_owned(),
        match m.capture.reallocs_charged_to {
            ReallocCharge::Resizer => {
                "the stack that resized the block (its growth is charged where it grew)"
            }
            _ => "the block's first site, as dhat-rs does (TRACEALLOC_REALLOC=origin)",
        }
        .to_owned(),
    ));
    if m.capture.sampling_bytes > 0 {
        rows.push(("sampling".to_owned(), sampling_meaning(&m.capture)));
    }
    if p.other_stacks_allocations > 0 {
        rows.push((
            "[other stacks]".to_owned(),
            format!(
                "{} allocations at stacks past the cap of {} distinct stacks (raise it with \
                 TRACEALLOC_MAX_STACKS)",
                human_count(p.other_stacks_allocations),
                human_count(p.max_stacks)
            ),
        ));
    }
    if p.allocations_without_state > 0 || p.threads_without_state > 0 {
        rows.push((
            "without a thread state".to_owned(),
            format!(
                "{} allocations counted but charged to no stack ({} threads ran out of memory \
                 for their profiler state; the rest came from exiting threads)",
                human_count(p.allocations_without_state),
                human_count(p.threads_without_state)
            ),
        ));
    }
    if p.unreadable_records > 0 {
        rows.push((
            "unreadable records".to_owned(),
            format!(
                "{} (their threads stayed mid-update; their figures are left out)",
                human_count(p.unreadable_records)
            ),
        ));
    }
    if let Some(a) = &m.allocator {
        rows.push((
            a.name.clone(),
            format!(
                "allocated {}, active {}, resident {}, mapped {}, retained {}, metadata {}",
                human_bytes(a.allocated),
                human_bytes(a.active),
                human_bytes(a.resident),
                human_bytes(a.mapped),
                human_bytes(a.retained),
                human_bytes(a.metadata)
            ),
        ));
    }
    rows
}

/// What a snapshot is: its command, time, capture settings, totals, stacks and the profiler's own
/// cost, one `key: value` line each.
pub fn info(snapshot: &Snapshot, out: &mut dyn Write) -> io::Result<()> {
    for (k, v) in info_rows(snapshot) {
        writeln!(out, "{k:>24}: {v}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Snapshot {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cli/tests/data/new.json");
        Snapshot::load(path).unwrap()
    }

    /// Exited threads of one name are one row, standing for all of them; running ones stay apart.
    #[test]
    fn exited_threads_of_one_name_are_one_row() {
        let mut snapshot = fixture();
        let sites = snapshot.sites.len();
        assert!(sites >= 2);
        snapshot.threads = vec![
            tracealloc_snapshot::ThreadInfo::new("worker", 11, false),
            tracealloc_snapshot::ThreadInfo::new("worker", 12, false),
            tracealloc_snapshot::ThreadInfo::new("worker", 13, true),
        ];
        for (i, site) in snapshot.sites.iter_mut().enumerate() {
            site.thread = [0, 1, 2][i % 3];
        }
        let mut out = Vec::new();
        threads(&snapshot, Format::Json, false, None, &mut out).unwrap();
        let rows: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 2, "{rows:#?}");
        let exited = rows.iter().find(|r| r["alive"] == false).unwrap();
        assert_eq!(exited["threads"], 2);
        let live: u64 = snapshot
            .sites
            .iter()
            .filter(|s| s.thread < 2)
            .map(|s| s.live_bytes)
            .sum();
        assert_eq!(exited["live_bytes"].as_u64(), Some(live));
    }

    fn top_text(snapshot: &Snapshot, sort: Metric) -> String {
        let options = ReportOptions {
            sort,
            ..Default::default()
        };
        let mut out = Vec::new();
        top(snapshot, &options, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Shortened, a path loses its leading directories; a stack's frame keeps its function.
    #[test]
    fn shortened_lines_keep_file_names_and_functions() {
        assert_eq!(
            shorten_lines("std/src/sys/pal/unix/thread_info.rs:122", 24),
            "…/thread_info.rs:122"
        );
        assert_eq!(
            shorten_lines(
                "alloc::vec::from_elem (alloc/src/vec/mod.rs:3651)\nmain (a.rs:1)",
                40
            ),
            "alloc::vec::from_elem (…/mod.rs:3651)\nmain (a.rs:1)"
        );
    }

    /// `top` at a terminal's width: the least needed columns go first (never the sorted one),
    /// then source paths lose their leading directories; without a width, every column.
    #[test]
    fn top_fits_the_terminal() {
        let snapshot = fixture();
        let table = |width: Option<usize>, sort: Metric| {
            let options = ReportOptions {
                sort,
                width,
                ..Default::default()
            };
            let mut out = Vec::new();
            top(&snapshot, &options, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            let lines: Vec<String> = text
                .lines()
                .take_while(|line| !line.contains(" groups; "))
                .map(str::to_owned)
                .collect();
            lines
        };
        let widest = |lines: &[String]| lines.iter().map(|l| l.chars().count()).max().unwrap();
        let whole = table(None, Metric::LiveBytes);
        assert!(whole[0].contains("realloc copies") && whole[0].contains("share of live bytes"));
        let whole_width = widest(&whole);

        // Narrower by the two least needed columns' room: those two go, nothing is shortened.
        let narrower = table(Some(whole_width - 20), Metric::LiveBytes);
        assert!(widest(&narrower) <= whole_width - 20, "{narrower:#?}");
        assert!(!narrower[0].contains("temporary") && !narrower[0].contains("realloc copies"));
        assert!(narrower[0].contains("total blocks"), "{narrower:#?}");
        assert!(!narrower.iter().any(|l| l.contains('…')), "{narrower:#?}");

        // Sorted by temporaries, that column stays.
        let by_temporary = table(Some(whole_width - 20), Metric::TemporaryBlocks);
        assert!(by_temporary[0].contains("temporary"), "{by_temporary:#?}");

        // Very narrow: only the figures every table keeps, and keys cut at a `/`.
        let narrow = table(Some(56), Metric::LiveBytes);
        assert!(widest(&narrow) <= 56, "{narrow:#?}");
        let header: Vec<&str> = narrow[0].split_whitespace().collect();
        assert_eq!(header, ["#", "live", "blocks", "total", "key"]);
        assert!(narrow[1..].iter().any(|l| l.contains("…/")), "{narrow:#?}");
        assert_eq!(narrow.len(), whole.len());
    }

    /// An exit snapshot where (almost) everything was freed: `top` says the live ranking is
    /// noise and names the sorts that are not.
    #[test]
    fn top_says_when_almost_nothing_is_live() {
        let mut freed = fixture();
        for site in &mut freed.sites {
            site.live_bytes = 0;
            site.live_blocks = 0;
        }
        let note = "Almost nothing is live";
        assert!(top_text(&freed, Metric::LiveBytes).contains(note));
        assert!(!top_text(&freed, Metric::TotalBytes).contains(note));
        assert!(!top_text(&fixture(), Metric::LiveBytes).contains(note));
    }

    /// Every metric is a sort key: the number of allocations ranks the site that allocated most
    /// often first, whatever is live.
    #[test]
    fn every_metric_sorts() {
        let snapshot = fixture();
        for metric in [
            Metric::LiveBytes,
            Metric::LiveBlocks,
            Metric::TotalBytes,
            Metric::TotalBlocks,
            Metric::PeakBytes,
            Metric::TemporaryBlocks,
            Metric::ReallocCopiedBytes,
        ] {
            let stats = snapshot.statistics_sorted(GroupBy::Line, metric);
            assert!(
                stats
                    .windows(2)
                    .all(|w| w[0].figure(metric) >= w[1].figure(metric)),
                "{metric:?}"
            );
        }
    }
}
