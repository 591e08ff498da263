//! The report's first tab: the headline figures, then the three questions a memory report is
//! opened for, each answered with its top lines: what is live now and where, what was live at the
//! peak and where, and what leaked (grew since the older snapshot, or was never freed).

use std::fmt::Write as _;

use tracealloc_snapshot::{
    GroupBy, Metric, Snapshot, Stat, human_bytes, human_bytes_signed, human_count,
    human_count_signed, human_date, human_duration_ms,
};

use super::{HtmlOptions, Places, apart, escape, peak_moment, percent, plural, taken};

/// `the top 5 hold` or `the top line holds` (`many` and `one`: the words after the number).
fn the_top(n: usize, many: &str, one: &str) -> String {
    match n {
        1 => format!("the top line {one}"),
        n => format!("the top {n} {many}"),
    }
}

/// A share cell: a small bar and the percentage.
fn share_cell(part: u64, whole: u64) -> String {
    let width = if whole == 0 {
        0.0
    } else {
        (part as f64 * 100.0 / whole as f64).min(100.0)
    };
    format!(
        r#"<td class="share"><span class="bar"><i style="width: {width:.0}%"></i></span>{}</td>"#,
        percent(part, whole)
    )
}

/// Bytes, with their standard error in a sampled snapshot: the group's own when they are its live
/// or total bytes, else `sqrt(mean x bytes)`.
fn bytes_cell(snapshot: &Snapshot, stat: &Stat, bytes: u64) -> String {
    let mean = snapshot.meta.capture.sampling_bytes;
    match stat.standard_errors(mean) {
        Some(errors) => {
            let error = if bytes == stat.live_bytes {
                errors.live_bytes
            } else if bytes == stat.total_bytes {
                errors.total_bytes
            } else {
                (mean as f64 * bytes as f64).sqrt().round() as u64
            };
            format!("<td>{} ± {}</td>", human_bytes(bytes), human_bytes(error))
        }
        None => format!("<td>{}</td>", human_bytes(bytes)),
    }
}

fn card(html: &mut String, class: &str, value: &str, label: &str) {
    let _ = write!(
        html,
        r#"<div class="card{class}"><span>{}</span><b>{}</b><span>{}</span></div>"#,
        escape(label.split_once('|').map_or(label, |(head, _)| head)),
        escape(value),
        escape(label.split_once('|').map_or("", |(_, tail)| tail))
    );
    html.push('\n');
}

/// The moment `ms` after the program's first allocation, as a date (when the snapshot's own
/// moment is in its timeline).
fn date_after_start(snapshot: &Snapshot, ms: u64) -> Option<String> {
    let last = snapshot.timeline.last()?;
    let start = snapshot.meta.time_unix_ms.checked_sub(last.t_ms)?;
    Some(human_date(start + ms))
}

fn cards(html: &mut String, snapshot: &Snapshot, older: Option<&Snapshot>) {
    let t = &snapshot.totals;
    html.push_str(r#"<div class="cards">"#);
    card(
        html,
        "",
        &human_bytes(t.live_bytes),
        &format!("live now|in {} blocks", human_count(t.live_blocks)),
    );
    let when = peak_moment(snapshot).map_or_else(String::new, |ms| {
        format!(", {} after start", human_duration_ms(ms))
    });
    card(
        html,
        "",
        &human_bytes(t.peak_bytes),
        &format!("at the peak|in {} blocks{when}", human_count(t.peak_blocks)),
    );
    if let Some(older) = older {
        let o = &older.totals;
        let change = t.live_bytes as i64 - o.live_bytes as i64;
        let class = match change.signum() {
            1 => " grew",
            -1 => " shrank",
            _ => "",
        };
        card(
            html,
            class,
            &human_bytes_signed(change),
            &format!(
                "live since the older snapshot|{} blocks, from {}",
                human_count_signed(t.live_blocks as i64 - o.live_blocks as i64),
                human_bytes(o.live_bytes)
            ),
        );
    }
    card(
        html,
        "",
        &human_bytes(t.total_bytes),
        &format!("allocated in all|in {} blocks", human_count(t.total_blocks)),
    );
    card(
        html,
        "",
        &human_bytes(snapshot.meta.rss_bytes),
        "resident (RSS)|the whole process",
    );
    card(
        html,
        "",
        &human_bytes(snapshot.profiler.own_bytes),
        "the profiler's own memory|not counted above",
    );
    html.push_str("</div>\n");
}

/// The table of lines under an answer: `(stat, figure)` rows, the figure's share of `whole`.
fn lines_table(
    html: &mut String,
    snapshot: &Snapshot,
    places: &Places,
    head: &str,
    rows: &[(&Stat, u64, u64)],
    whole: u64,
) {
    let _ = write!(
        html,
        r#"<table class="sites"><thead><tr><th class="share">share</th><th class="n">{head}</th><th class="n">blocks</th><th class="text fn">function</th><th class="text">line</th></tr></thead><tbody>"#
    );
    for &(stat, bytes, blocks) in rows {
        let _ = writeln!(
            html,
            "<tr>{}{}<td>{}</td>{}</tr>",
            share_cell(bytes, whole),
            bytes_cell(snapshot, stat, bytes),
            human_count(blocks),
            places.cells(snapshot, &stat.key)
        );
    }
    html.push_str("</tbody></table>\n");
}

fn live_now(html: &mut String, snapshot: &Snapshot, options: &HtmlOptions, places: &Places) {
    let t = &snapshot.totals;
    let stats = snapshot.statistics_sorted(GroupBy::Line, Metric::LiveBytes);
    let live: Vec<&Stat> = stats.iter().filter(|s| s.live_bytes > 0).collect();
    html.push_str(r#"<div class="answer" id="live-now"><h2>What is live now, and where</h2>"#);
    if live.is_empty() {
        html.push_str("<p>No line holds live memory.</p></div>\n");
        return;
    }
    let shown = &live[..live.len().min(options.summary_rows)];
    let whole: u64 = stats.iter().map(|s| s.live_bytes).sum();
    let held: u64 = shown.iter().map(|s| s.live_bytes).sum();
    let _ = write!(
        html,
        "<p>{} in {} blocks, allocated at {}; {} {}.",
        human_bytes(t.live_bytes),
        human_count(t.live_blocks),
        plural(live.len() as u64, "line"),
        the_top(shown.len(), "hold", "holds"),
        percent(held, whole)
    );
    if t.live_bytes.saturating_mul(100) < t.total_bytes {
        let _ = write!(
            html,
            " Almost nothing is live (under 1% of the {} allocated): the peak, below, says where \
             the memory went.",
            human_bytes(t.total_bytes)
        );
    }
    html.push_str("</p>\n");
    let rows: Vec<_> = shown
        .iter()
        .map(|s| (*s, s.live_bytes, s.live_blocks))
        .collect();
    lines_table(html, snapshot, places, "live", &rows, whole);
    html.push_str(
        r##"<p class="note">Every line, function, stack and thread: <a href="#tables" data-goto="tables">Top sites</a>; as a graph: <a href="#flamegraphs" data-goto="flamegraphs">Flamegraphs</a>.</p></div>"##,
    );
    html.push('\n');
}

fn at_the_peak(html: &mut String, snapshot: &Snapshot, options: &HtmlOptions, places: &Places) {
    let t = &snapshot.totals;
    html.push_str(
        r#"<div class="answer" id="at-peak"><h2>What was live at the peak, and where</h2>"#,
    );
    let when = match peak_moment(snapshot) {
        Some(ms) => format!(
            ", {} after the first allocation{}",
            human_duration_ms(ms),
            date_after_start(snapshot, ms).map_or_else(String::new, |d| format!(" ({d})"))
        ),
        None => String::new(),
    };
    let _ = write!(
        html,
        "<p>The peak: {} in {} blocks{when}.",
        human_bytes(t.peak_bytes),
        human_count(t.peak_blocks)
    );
    if snapshot.meta.capture.sampling_bytes > 0 {
        html.push_str(
            " Sampled mode does not estimate where that memory was: profile in exact mode to \
             see it.</p></div>\n",
        );
        return;
    }
    let stats = snapshot.statistics_sorted(GroupBy::Line, Metric::PeakBytes);
    let at_peak: Vec<&Stat> = stats.iter().filter(|s| s.peak_bytes > 0).collect();
    if at_peak.is_empty() {
        html.push_str(" This snapshot has no figures of its lines at the peak.</p></div>\n");
        return;
    }
    let shown = &at_peak[..at_peak.len().min(options.summary_rows)];
    let whole: u64 = stats.iter().map(|s| s.peak_bytes).sum();
    let held: u64 = shown.iter().map(|s| s.peak_bytes).sum();
    let _ = writeln!(
        html,
        " {} then held {}.</p>",
        match shown.len() {
            1 => "The top line".to_owned(),
            n => format!("The top {n} lines"),
        },
        percent(held, whole)
    );
    let rows: Vec<_> = shown
        .iter()
        .map(|s| (*s, s.peak_bytes, s.peak_blocks))
        .collect();
    lines_table(html, snapshot, places, "at peak", &rows, whole);
    html.push_str("</div>\n");
}

fn leaked(
    html: &mut String,
    snapshot: &Snapshot,
    older: Option<&Snapshot>,
    options: &HtmlOptions,
    places: &Places,
) {
    html.push_str(r#"<div class="answer" id="leaked"><h2>What leaked</h2>"#);
    let more = r##"<p class="note">Each line's stacks: <a href="#leaks" data-goto="leaks">Leaks</a>.</p></div>"##;
    let Some(older) = older else {
        // One snapshot: the lines none of whose blocks was ever freed.
        let stats = snapshot.statistics_sorted(GroupBy::Line, Metric::LiveBytes);
        let kept: Vec<&Stat> = stats
            .iter()
            .filter(|s| {
                s.live_bytes > 0 && s.live_blocks >= s.total_blocks.saturating_sub(s.reallocs)
            })
            .collect();
        html.push_str(
            "<p>Lines that never freed a block: everything they allocated is still live. At \
             exit, that is a leak; in a running program, memory it keeps. To see what grows, \
             compare with an earlier snapshot: <code>tracealloc report NEW --diff OLD</code>.",
        );
        if kept.is_empty() {
            html.push_str("</p><p>Every line freed some of its blocks.</p></div>\n");
            return;
        }
        let shown = &kept[..kept.len().min(options.summary_rows)];
        let whole: u64 = stats.iter().map(|s| s.live_bytes).sum();
        let held: u64 = kept.iter().map(|s| s.live_bytes).sum();
        let _ = writeln!(
            html,
            " {}, {} of the live bytes.</p>",
            plural(kept.len() as u64, "line"),
            percent(held, whole)
        );
        let rows: Vec<_> = shown
            .iter()
            .map(|s| (*s, s.live_bytes, s.live_blocks))
            .collect();
        lines_table(html, snapshot, places, "live", &rows, whole);
        html.push_str(more);
        html.push('\n');
        return;
    };
    let (t, o) = (&snapshot.totals, &older.totals);
    let change = t.live_bytes as i64 - o.live_bytes as i64;
    let _ = write!(
        html,
        "<p>Since the older snapshot (taken {}, {}), live memory changed by {} ({} blocks).",
        human_date(older.meta.time_unix_ms),
        apart(snapshot, older),
        human_bytes_signed(change),
        human_count_signed(t.live_blocks as i64 - o.live_blocks as i64)
    );
    let diffs = snapshot.diff(older).statistics(GroupBy::Line);
    let grown: Vec<_> = diffs.iter().filter(|d| d.bytes_diff > 0).collect();
    if grown.is_empty() {
        html.push_str(" No line grew.</p></div>\n");
        return;
    }
    let shown = &grown[..grown.len().min(options.summary_rows)];
    let growth: u64 = grown.iter().map(|d| d.bytes_diff as u64).sum();
    let _ = writeln!(
        html,
        " {} grew, by {} in all:</p>",
        plural(grown.len() as u64, "line"),
        human_bytes(growth)
    );
    html.push_str(
        r#"<table class="sites"><thead><tr><th class="share">share</th><th class="n">grew by</th><th class="n">live now</th><th class="n">blocks</th><th class="text fn">function</th><th class="text">line</th></tr></thead><tbody>"#,
    );
    for d in shown {
        let _ = writeln!(
            html,
            "<tr>{}<td>{}</td><td>{}</td><td>{}</td>{}</tr>",
            share_cell(d.bytes_diff as u64, growth),
            human_bytes_signed(d.bytes_diff),
            human_bytes(d.live_bytes),
            human_count_signed(d.blocks_diff),
            places.cells(snapshot, &d.key)
        );
    }
    html.push_str("</tbody></table>\n");
    html.push_str(
        r##"<p class="note">Every change: <a href="#changes" data-goto="changes">Changes</a>; each line's stacks: <a href="#leaks" data-goto="leaks">Leaks</a>.</p></div>"##,
    );
    html.push('\n');
}

/// What the snapshot is: how it was taken, how complete its stacks are, what the profiler cost
/// (what `tracealloc info` says), and what it is compared with.
fn about(html: &mut String, snapshot: &Snapshot, older: Option<&Snapshot>) {
    let mut rows = crate::tables::info_rows(snapshot);
    if let Some(time) = rows.iter_mut().find(|(k, _)| k == "time") {
        *time = ("taken".to_owned(), taken(snapshot));
    }
    if let Some(older) = older {
        let after_pid = rows
            .iter()
            .position(|(k, _)| k == "pid")
            .map_or(0, |i| i + 1);
        let compared = format!(
            "{}, taken {} ({}), pid {}",
            older.meta.command.join(" "),
            human_date(older.meta.time_unix_ms),
            apart(snapshot, older),
            older.meta.pid
        );
        rows.insert(after_pid, ("compared with".to_owned(), compared));
    }
    html.push_str(
        r#"<details class="about"><summary>About this snapshot</summary><table class="facts"><tbody>"#,
    );
    for (k, v) in rows {
        let _ = writeln!(html, "<tr><td>{k}</td><td>{}</td></tr>", escape(&v));
    }
    html.push_str("</tbody></table></details>\n");
}

/// The Summary tab.
pub(super) fn section(
    html: &mut String,
    snapshot: &Snapshot,
    older: Option<&Snapshot>,
    options: &HtmlOptions,
    places: &Places,
) {
    html.push_str("<section id=\"summary\" class=\"on\">\n");
    cards(html, snapshot, older);
    live_now(html, snapshot, options, places);
    at_the_peak(html, snapshot, options, places);
    leaked(html, snapshot, older, options, places);
    about(html, snapshot, older);
    html.push_str("</section>\n");
}
