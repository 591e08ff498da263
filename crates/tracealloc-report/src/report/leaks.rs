//! The Leaks tab: one row per line still holding memory (with an older snapshot, per line that
//! grew), each with the distinct stacks that reached it beneath, to expand.

use std::collections::HashMap;
use std::fmt::Write as _;

use tracealloc_snapshot::{
    GroupBy, Metric, Snapshot, Stat, human_bytes, human_bytes_signed, human_count,
    human_count_signed,
};

use super::{HtmlOptions, Places, escape, plural};

/// Stacks shown under a row at most.
const STACKS_PER_ROW: usize = 20;

/// A row or a stack beneath it: its key, live figures, and change when compared.
struct Leak {
    key: String,
    live_bytes: u64,
    live_blocks: u64,
    change: Option<(i64, i64)>,
}

impl Leak {
    fn live(stat: &Stat) -> Leak {
        Leak {
            key: stat.key.clone(),
            live_bytes: stat.live_bytes,
            live_blocks: stat.live_blocks,
            change: None,
        }
    }

    fn grown(diff: &tracealloc_snapshot::StatDiff) -> Leak {
        Leak {
            key: diff.key.clone(),
            live_bytes: diff.live_bytes,
            live_blocks: diff.live_blocks,
            change: Some((diff.bytes_diff, diff.blocks_diff)),
        }
    }

    /// `4 KiB in 16 blocks`, with `(+1 KiB, +4 blocks)` when compared.
    fn figures(&self) -> String {
        let live = format!(
            "{} in {}",
            human_bytes(self.live_bytes),
            plural(self.live_blocks, "block")
        );
        match self.change {
            Some((bytes, blocks)) => format!(
                "{} ({} blocks), {live} now",
                human_bytes_signed(bytes),
                human_count_signed(blocks)
            ),
            None => live,
        }
    }
}

/// The rows: lines still live, largest first, each with its stacks.
fn live_rows(snapshot: &Snapshot, n: usize) -> Vec<(Leak, Vec<Leak>)> {
    snapshot
        .statistics_with_stacks(GroupBy::Line, Metric::LiveBytes)
        .iter()
        .filter(|(s, _)| s.live_bytes > 0)
        .take(n)
        .map(|(line, stacks)| {
            let stacks = stacks.iter().filter(|s| s.live_bytes > 0);
            (Leak::live(line), stacks.map(Leak::live).collect())
        })
        .collect()
}

/// The rows: lines that grew since `older`, largest growth first, each with its stacks that grew.
fn grown_rows(snapshot: &Snapshot, older: &Snapshot, n: usize) -> Vec<(Leak, Vec<Leak>)> {
    let diff = snapshot.diff(older);
    let lines = diff.statistics(GroupBy::Line);
    let lines: Vec<_> = lines.iter().filter(|d| d.bytes_diff > 0).take(n).collect();
    // Each stack under its line in the newer snapshot (a stack gone from it cannot have grown).
    let line_of = snapshot.group_of(GroupBy::Line, GroupBy::Stack);
    let mut beneath: HashMap<&str, Vec<Leak>> = HashMap::new();
    let stacks = diff.statistics(GroupBy::Stack);
    for stack in stacks.iter().filter(|d| d.bytes_diff > 0) {
        if let Some(line) = line_of.get(&stack.key) {
            beneath.entry(line).or_default().push(Leak::grown(stack));
        }
    }
    lines
        .into_iter()
        .map(|d| {
            let stacks = beneath.remove(d.key.as_str()).unwrap_or_default();
            (Leak::grown(d), stacks)
        })
        .collect()
}

pub(super) fn section(
    html: &mut String,
    snapshot: &Snapshot,
    older: Option<&Snapshot>,
    options: &HtmlOptions,
    places: &Places,
) {
    let (rows, heading, head) = match older {
        Some(older) => (
            grown_rows(snapshot, older, options.leaks),
            "What grew since the older snapshot and is still live, by line",
            "grew by",
        ),
        None => (
            live_rows(snapshot, options.leaks),
            "What is still live, by line",
            "live",
        ),
    };
    let _ = writeln!(
        html,
        r#"<section id="leaks"><h2>{heading}</h2><p class="note">One row per allocating line; open a row for the stacks that reached it, innermost frame first.</p>"#
    );
    if rows.is_empty() {
        let nothing = if older.is_some() {
            "No line grew."
        } else {
            "No line holds live memory."
        };
        let _ = writeln!(html, r#"<p class="empty">{nothing}</p></section>"#);
        return;
    }
    let live_head = if older.is_some() {
        r#"<th class="n">live now</th>"#
    } else {
        ""
    };
    let _ = writeln!(
        html,
        r#"<table class="leaks"><thead><tr><th class="n">{head}</th>{live_head}<th class="n">blocks</th><th class="text">line, and the stacks that reached it</th></tr></thead><tbody>"#
    );
    for (rank, (line, stacks)) in rows.iter().enumerate() {
        let (first, blocks) = match line.change {
            Some((bytes, blocks)) => (
                format!(
                    "<td>{}</td><td>{}</td>",
                    human_bytes_signed(bytes),
                    human_bytes(line.live_bytes)
                ),
                human_count_signed(blocks),
            ),
            None => (
                format!("<td>{}</td>", human_bytes(line.live_bytes)),
                human_count(line.live_blocks),
            ),
        };
        let (function, location) = places.split(snapshot, &line.key);
        let open = if rank == 0 { " open" } else { "" };
        let count = match stacks.len() {
            1 => "1 stack".to_owned(),
            n => format!("{} stacks", human_count(n as u64)),
        };
        let _ = write!(
            html,
            r#"<tr>{first}<td>{blocks}</td><td class="what"><details{open}><summary><span class="fn">{}</span><span class="loc">{}</span> <span class="note">({count})</span></summary><ol class="stacks">"#,
            escape(&function),
            escape(&location)
        );
        for stack in stacks.iter().take(STACKS_PER_ROW) {
            let frames: Vec<String> = snapshot
                .short_paths(&stack.key)
                .split(Stat::STACK_SEPARATOR)
                .map(escape)
                .collect();
            let _ = write!(
                html,
                "<li><b>{}</b><pre>{}</pre></li>",
                stack.figures(),
                frames.join("\n")
            );
        }
        html.push_str("</ol>");
        if stacks.len() > STACKS_PER_ROW {
            let _ = write!(
                html,
                r#"<p class="note">And {} smaller stacks.</p>"#,
                human_count((stacks.len() - STACKS_PER_ROW) as u64)
            );
        }
        html.push_str("</details></td></tr>\n");
    }
    html.push_str("</tbody></table></section>\n");
}
