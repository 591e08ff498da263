//! What is still live (or grew since an older snapshot): one row per leaking line (or function,
//! file, thread...), the distinct stacks that reached it beneath.

use std::collections::HashMap;
use std::io::{self, Write};

use serde::Serialize;
use tracealloc_snapshot::{
    GroupBy, HeapStats, Snapshot, Stat, Variance, blocks, human_bytes, human_bytes_signed,
};

use crate::tables::{
    BOLD, Format, RESET, ReportOptions, bytes_with_error, sampled_note, shorten_lines, write_csv,
    write_json,
};

/// How many stacks a row shows in a table; JSON lists them all.
const STACKS_PER_ROW: usize = 3;

/// One leak row, or one stack beneath it.
#[derive(Serialize)]
struct Leak {
    key: String,
    live_bytes: u64,
    live_blocks: u64,
    bytes_diff: Option<i64>,
    blocks_diff: Option<i64>,
    /// The distinct stacks of a row, largest first (absent when rows are stacks themselves).
    #[serde(skip_serializing_if = "Option::is_none")]
    stacks: Option<Vec<Leak>>,
    /// Sampled snapshots: the variances of the live figures' estimates.
    #[serde(skip)]
    variance: Option<Variance>,
}

/// A row as CSV has it: the number of its stacks instead of the stacks.
#[derive(Serialize)]
struct LeakRow<'a> {
    key: &'a str,
    live_bytes: u64,
    live_blocks: u64,
    bytes_diff: Option<i64>,
    blocks_diff: Option<i64>,
    stacks: Option<usize>,
}

impl Leak {
    fn live(stat: &Stat) -> Leak {
        Leak {
            key: stat.key.clone(),
            live_bytes: stat.live_bytes,
            live_blocks: stat.live_blocks,
            bytes_diff: None,
            blocks_diff: None,
            stacks: None,
            variance: stat.variance,
        }
    }

    fn grown(diff: &tracealloc_snapshot::StatDiff) -> Leak {
        Leak {
            key: diff.key.clone(),
            live_bytes: diff.live_bytes,
            live_blocks: diff.live_blocks,
            bytes_diff: Some(diff.bytes_diff),
            blocks_diff: Some(diff.blocks_diff),
            stacks: None,
            variance: diff.variances.0,
        }
    }
}

/// What is still live, largest first; with `since`, only what grew since then, largest growth
/// first. Rows are grouped by `options.by` (a line by default) with the distinct stacks that
/// reached each beneath it, so one leaking line is one row however many paths led to it; with
/// [`GroupBy::Stack`] or [`GroupBy::FullStack`], each stack is a row. The stacks are readable
/// ones ([`Snapshot::readable_frames`]) unless `options.full_stacks`. Uses `options.n`,
/// `include`, `exclude`, `format` and `color`.
pub fn leaks(
    snapshot: &Snapshot,
    since: Option<&Snapshot>,
    options: &ReportOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let stacks_by = if options.full_stacks {
        GroupBy::FullStack
    } else {
        GroupBy::Stack
    };
    let by = match options.by {
        GroupBy::Stack | GroupBy::FullStack => stacks_by,
        by => by,
    };
    let nested = by != stacks_by;
    let (snapshot, left_out) = without_std_own(options.filtered(snapshot), options.full_stacks);
    let snapshot = &snapshot;
    let rows = match since {
        Some(old) => {
            let (old, _) = without_std_own(options.filtered(old), options.full_stacks);
            grown_rows(snapshot, &old, by, stacks_by, nested, options.n)
        }
        None => live_rows(snapshot, by, stacks_by, nested, options.n),
    };
    match options.format {
        Format::Json => write_json(out, &rows),
        Format::Csv => {
            let flat: Vec<LeakRow<'_>> = rows
                .iter()
                .map(|leak| LeakRow {
                    key: &leak.key,
                    live_bytes: leak.live_bytes,
                    live_blocks: leak.live_blocks,
                    bytes_diff: leak.bytes_diff,
                    blocks_diff: leak.blocks_diff,
                    stacks: leak.stacks.as_ref().map(Vec::len),
                })
                .collect();
            write_csv(out, &flat)
        }
        Format::Table => {
            let layout = (options.color, options.width);
            write_leaks_table(snapshot, since.is_some(), &rows, layout, out)?;
            if left_out.live_blocks > 0 && since.is_none() {
                writeln!(
                    out,
                    "Left out: {} in {} of std's own (a thread's start-up record, the runtime's \
                     statics), live by design; `--full-stacks` lists them.",
                    human_bytes(left_out.live_bytes),
                    blocks(left_out.live_blocks)
                )?;
            }
            Ok(())
        }
    }
}

/// `snapshot` without the sites whose stack is std's alone (with `full_stacks`, as it is), and
/// what those held: a thread's start-up record and the runtime's lazy statics stay live for the
/// thread's or the process's life by design, and would otherwise be on every list of leaks.
fn without_std_own(mut snapshot: Snapshot, full_stacks: bool) -> (Snapshot, HeapStats) {
    let mut left_out = HeapStats::default();
    if full_stacks {
        return (snapshot, left_out);
    }
    let std_own = |stack: u32| {
        snapshot.stacks[stack as usize].frames.iter().all(|&f| {
            let frame = &snapshot.frames[f as usize];
            frame.is_runtime() || frame.is_profiler() || frame.is_entry_point()
        })
    };
    let keep: Vec<bool> = snapshot.sites.iter().map(|s| !std_own(s.stack)).collect();
    for (site, _) in snapshot.sites.iter().zip(&keep).filter(|(_, keep)| !**keep) {
        left_out.live_bytes += site.live_bytes;
        left_out.live_blocks += site.live_blocks;
    }
    let mut keep = keep.into_iter();
    snapshot.sites.retain(|_| keep.next().unwrap_or(true));
    (snapshot, left_out)
}

fn live_rows(
    snapshot: &Snapshot,
    by: GroupBy,
    stacks_by: GroupBy,
    nested: bool,
    n: usize,
) -> Vec<Leak> {
    if !nested {
        let stats = snapshot.statistics(by);
        return stats
            .iter()
            .filter(|s| s.live_bytes > 0)
            .take(n)
            .map(Leak::live)
            .collect();
    }
    let groups = snapshot.statistics_within(by, stacks_by, tracealloc_snapshot::Metric::LiveBytes);
    groups
        .iter()
        .filter(|(s, _)| s.live_bytes > 0)
        .take(n)
        .map(|(stat, stacks)| Leak {
            stacks: Some(
                stacks
                    .iter()
                    .filter(|s| s.live_bytes > 0)
                    .map(Leak::live)
                    .collect(),
            ),
            ..Leak::live(stat)
        })
        .collect()
}

fn grown_rows(
    snapshot: &Snapshot,
    old: &Snapshot,
    by: GroupBy,
    stacks_by: GroupBy,
    nested: bool,
    n: usize,
) -> Vec<Leak> {
    let diff = snapshot.diff(old);
    let mut rows: Vec<Leak> = diff
        .statistics(by)
        .iter()
        .filter(|d| d.bytes_diff > 0)
        .take(n)
        .map(Leak::grown)
        .collect();
    if !nested {
        return rows;
    }
    // Each grown stack under its row: the stack's group in the newer snapshot (or in the older,
    // for a stack that is no longer there, which cannot have grown anyway).
    let mut group_of = old.group_of(by, stacks_by);
    group_of.extend(snapshot.group_of(by, stacks_by));
    let mut beneath: HashMap<&str, Vec<Leak>> = HashMap::new();
    let stacks = diff.statistics(stacks_by);
    for stack in stacks.iter().filter(|d| d.bytes_diff > 0) {
        if let Some(group) = group_of.get(&stack.key) {
            beneath.entry(group).or_default().push(Leak::grown(stack));
        }
    }
    for row in &mut rows {
        row.stacks = Some(beneath.remove(row.key.as_str()).unwrap_or_default());
    }
    rows
}

fn write_leaks_table(
    snapshot: &Snapshot,
    since: bool,
    rows: &[Leak],
    (color, width): (bool, Option<usize>),
    out: &mut dyn Write,
) -> io::Result<()> {
    if rows.is_empty() {
        return writeln!(
            out,
            "No live allocations{}.",
            if since { " grew" } else { "" }
        );
    }
    let mean = snapshot.meta.capture.sampling_bytes;
    let amount = |leak: &Leak| {
        let live = match mean {
            0 => human_bytes(leak.live_bytes),
            mean => {
                let stat = Stat {
                    live_bytes: leak.live_bytes,
                    live_blocks: leak.live_blocks,
                    variance: leak.variance,
                    ..Stat::default()
                };
                let errors = stat.standard_errors(mean).unwrap_or_default();
                bytes_with_error(leak.live_bytes, errors.live_bytes)
            }
        };
        let grown = match leak.bytes_diff {
            Some(d) => format!(" ({} since the older snapshot)", human_bytes_signed(d)),
            None => String::new(),
        };
        format!("{live} live in {}{grown}", blocks(leak.live_blocks))
    };
    let (bold, reset) = if color { (BOLD, RESET) } else { ("", "") };
    let write_stack = |out: &mut dyn Write, key: &str, indent: &str| -> io::Result<()> {
        for frame in snapshot.short_paths(key).split(Stat::STACK_SEPARATOR) {
            // On a narrow terminal, a frame keeps its function and loses the start of its path.
            let frame = match width {
                Some(width) => shorten_lines(frame, width.saturating_sub(indent.len()).max(24)),
                None => frame.to_owned(),
            };
            writeln!(out, "{indent}{frame}")?;
        }
        Ok(())
    };
    for (rank, leak) in rows.iter().enumerate() {
        let Some(stacks) = &leak.stacks else {
            writeln!(out, "{bold}#{} {}{reset}", rank + 1, amount(leak))?;
            write_stack(out, &leak.key, "    ")?;
            writeln!(out)?;
            continue;
        };
        writeln!(
            out,
            "{bold}#{} {}: {}{reset}",
            rank + 1,
            snapshot.short_paths(&leak.key),
            amount(leak)
        )?;
        match stacks.as_slice() {
            [only] => write_stack(out, &only.key, "    ")?,
            _ => {
                for (i, stack) in stacks.iter().take(STACKS_PER_ROW).enumerate() {
                    writeln!(
                        out,
                        "  stack {} of {}: {}",
                        i + 1,
                        stacks.len(),
                        amount(stack)
                    )?;
                    write_stack(out, &stack.key, "    ")?;
                }
                if let Some(rest) = stacks.get(STACKS_PER_ROW..).filter(|r| !r.is_empty()) {
                    let bytes: u64 = rest.iter().map(|s| s.live_bytes).sum();
                    writeln!(
                        out,
                        "  and {} more stacks holding {} (`--by stack` lists every stack)",
                        rest.len(),
                        human_bytes(bytes)
                    )?;
                }
            }
        }
        writeln!(out)?;
    }
    if mean > 0 {
        writeln!(out, "{}", sampled_note(mean))?;
    }
    Ok(())
}
