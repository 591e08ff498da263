//! One self-contained HTML report of a snapshot: a summary that answers what is live now and
//! where, what was live at the peak and where, and what leaked; the timeline; sortable and
//! searchable top tables; flamegraphs (live, at the peak, total, temporary, and the change since
//! an older snapshot); with an older snapshot, a table of what changed; and the leaks, one row per
//! line with its stacks beneath. Everything is inline: it loads nothing from the network and opens
//! from a file or an attachment.
//!
//! Flamegraphs are inferno's interactive SVGs, each in its own frame (a `data:` URL), so that
//! their scripts (search, zoom) run as they do in a standalone file and do not clash. They are
//! icicles (roots at the top, so the widest boxes come first) in frames as tall as their SVG (no
//! scrolling inside a frame), each drawn twice: callers first, and allocation sites first (the
//! allocating calls at the top, whatever the depth of the stacks above them).

mod changes;
mod leaks;
mod summary;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use base64::Engine as _;
use tracealloc_snapshot::{
    GroupBy, Metric, Snapshot, human_bytes, human_bytes_signed, human_count, human_date,
    human_duration_ms, human_lifetime,
};

use crate::flame::{FlameError, FlameOptions, flamegraph};
use crate::timeline::{TimelineOptions, timeline_svg};

/// What the report holds.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HtmlOptions {
    /// Rows per top table (and of the table of changes).
    pub rows: usize,
    /// Rows of the leaks section.
    pub leaks: usize,
    /// Rows of each of the summary's tables.
    pub summary_rows: usize,
    /// The page's title (default: "tracealloc report" and the program's command line).
    pub title: Option<String>,
}

impl Default for HtmlOptions {
    fn default() -> Self {
        HtmlOptions {
            rows: 200,
            leaks: 20,
            summary_rows: 5,
            title: None,
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `1 line`, `2 lines`, `1,000 lines`.
fn plural(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{} {thing}s", human_count(n))
    }
}

/// `part` as a share of `whole`: `64.1%` (`-` of nothing).
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// When the snapshot was taken, and how long after the program's first allocation (its
/// timeline's last moment).
fn taken(snapshot: &Snapshot) -> String {
    let date = human_date(snapshot.meta.time_unix_ms);
    match snapshot.timeline.last() {
        Some(last) => format!(
            "{date}, {} after the program's first allocation",
            human_duration_ms(last.t_ms)
        ),
        None => date,
    }
}

/// How far apart two snapshots were taken: `964 ms earlier`.
fn apart(snapshot: &Snapshot, older: &Snapshot) -> String {
    let (new, old) = (snapshot.meta.time_unix_ms, older.meta.time_unix_ms);
    if new >= old {
        format!("{} earlier", human_duration_ms(new - old))
    } else {
        format!("{} later", human_duration_ms(old - new))
    }
}

/// The moment of the peak in the timeline (the last point at the highest live bytes), in
/// milliseconds since the program's first allocation.
fn peak_moment(snapshot: &Snapshot) -> Option<u64> {
    let highest = snapshot.timeline.iter().map(|p| p.live_bytes).max()?;
    snapshot
        .timeline
        .iter()
        .rev()
        .find(|p| p.live_bytes == highest)
        .map(|p| p.t_ms)
}

/// The function of each `file:line` key (of [`GroupBy::Line`]): the allocating user frame's, so
/// that a row names what allocates, not only where.
struct Places {
    function_of_line: HashMap<String, String>,
}

impl Places {
    fn of(snapshots: &[&Snapshot]) -> Places {
        let mut function_of_line = HashMap::new();
        for snapshot in snapshots {
            for stack in &snapshot.stacks {
                if let Some(frame) = snapshot.user_frame(stack)
                    && let (Some(file), Some(line)) = (&frame.file, frame.line)
                {
                    function_of_line
                        .entry(format!("{file}:{line}"))
                        .or_insert_with(|| frame.function.clone());
                }
            }
        }
        Places { function_of_line }
    }

    /// A line key's function, and its location with short paths (a key without a location is a
    /// function name, then the location is empty).
    fn split(&self, snapshot: &Snapshot, key: &str) -> (String, String) {
        match self.function_of_line.get(key) {
            Some(function) => (function.clone(), snapshot.short_paths(key).into_owned()),
            None => (key.to_owned(), String::new()),
        }
    }

    /// The two cells of a line key: its function and its location.
    fn cells(&self, snapshot: &Snapshot, key: &str) -> String {
        let (function, location) = self.split(snapshot, key);
        format!(
            r#"<td class="fn" title="{}">{}</td><td class="loc" title="{}">{}</td>"#,
            escape(&function),
            escape(&function),
            escape(&location),
            escape(&location)
        )
    }

    /// A line key in words: `function (file:line)`.
    fn text(&self, snapshot: &Snapshot, key: &str) -> String {
        match self.function_of_line.get(key) {
            Some(function) => format!("{function} ({})", snapshot.short_paths(key)),
            None => key.to_owned(),
        }
    }
}

/// A sortable, searchable table of the top groups.
fn top_table(html: &mut String, snapshot: &Snapshot, by: GroupBy, rows: usize) {
    let stats = snapshot.statistics_sorted(by, Metric::LiveBytes);
    let by_name = format!("{by:?}").to_lowercase();
    // Lifetimes, when recorded: the mean lifetime and the group's own maximum.
    let lifetimes = snapshot.meta.capture.lifetimes;
    let lifetime_heads = if lifetimes {
        r#"<th data-kind="num">mean lifetime</th><th data-kind="num">own max</th>"#
    } else {
        ""
    };
    let _ = writeln!(
        html,
        r#"<table class="top sortable" data-by="{by_name}"><thead><tr><th data-kind="num">live</th><th data-kind="num">blocks</th><th data-kind="num">at peak</th><th data-kind="num">total</th><th data-kind="num">allocations</th><th data-kind="num">temporary</th><th data-kind="num">realloc copies</th>{lifetime_heads}<th data-kind="text">{by_name}</th></tr></thead><tbody>"#
    );
    // Sampled: each estimate with its standard error; what sampling does not estimate, unavailable.
    let mean = snapshot.meta.capture.sampling_bytes;
    for s in stats.iter().take(rows) {
        let bytes = |v: u64| format!(r#"<td data-v="{v}">{}</td>"#, human_bytes(v));
        let count = |v: u64| format!(r#"<td data-v="{v}">{}</td>"#, human_count(v));
        let estimate = |v: u64, error: u64| {
            format!(
                r#"<td data-v="{v}">{} ± {}</td>"#,
                human_bytes(v),
                human_bytes(error)
            )
        };
        let unavailable =
            || r#"<td data-v="" title="not estimated in sampled mode">n/a</td>"#.to_owned();
        let errors = s.standard_errors(mean);
        let (live, peak, total, temporary, copies) = match errors {
            Some(e) => (
                estimate(s.live_bytes, e.live_bytes),
                unavailable(),
                estimate(s.total_bytes, e.total_bytes),
                unavailable(),
                unavailable(),
            ),
            None => (
                bytes(s.live_bytes),
                bytes(s.peak_bytes),
                bytes(s.total_bytes),
                count(s.temporary_blocks),
                bytes(s.realloc_copied_bytes),
            ),
        };
        let key = snapshot.short_paths(&s.key);
        let key = match by {
            GroupBy::Stack | GroupBy::FullStack => {
                key.replace(tracealloc_snapshot::Stat::STACK_SEPARATOR, "\n")
            }
            _ => key.into_owned(),
        };
        let lifetime_cells = if lifetimes {
            let mean = s.mean_lifetime_us().unwrap_or(0.0);
            format!(
                r#"<td data-v="{mean}">{}</td>{}"#,
                human_lifetime(mean, snapshot.meta.capture.lifetime_clock_ns),
                bytes(s.max_bytes)
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            html,
            "<tr>{live}{}{peak}{total}{}{temporary}{copies}{lifetime_cells}<td class=\"key\">{}</td></tr>",
            count(s.live_blocks),
            count(s.total_blocks),
            escape(&key)
        );
    }
    html.push_str("</tbody></table>\n");
    if stats.len() > rows {
        let _ = writeln!(
            html,
            r#"<p class="note" data-by="{by_name}">The top {} of {} groups.</p>"#,
            human_count(rows as u64),
            human_count(stats.len() as u64)
        );
    }
}

/// The height an SVG says it has (inferno's `height` attribute on its root).
fn svg_height(svg: &[u8]) -> Option<u32> {
    let svg = std::str::from_utf8(svg).ok()?;
    let root = &svg[svg.find("<svg")?..];
    let root = &root[..root.find('>')?];
    let value = root.split(" height=\"").nth(1)?;
    value[..value.find('"')?].parse().ok()
}

/// One flamegraph of the report: what it draws, and how it is introduced.
struct Graph {
    metric: Metric,
    older: bool,
    /// Its anchor, and the short name of the jump links.
    id: &'static str,
    short: &'static str,
    /// The heading, also the SVG's title.
    title: &'static str,
    /// What its widths mean.
    meaning: String,
}

/// The lines that weigh most in a graph, for the sentence above it: `f (file:line) 64.1%, ...`.
fn largest_lines(
    snapshot: &Snapshot,
    older: Option<&Snapshot>,
    graph: &Graph,
    places: &Places,
) -> String {
    let line = |key: &str, share: String| {
        format!("<b>{}</b> {share}", escape(&places.text(snapshot, key)))
    };
    let parts: Vec<String> = match older.filter(|_| graph.older) {
        Some(older) => {
            let grown: Vec<_> = snapshot
                .diff(older)
                .statistics(GroupBy::Line)
                .into_iter()
                .filter(|d| d.bytes_diff > 0)
                .take(3)
                .collect();
            grown
                .iter()
                .map(|d| line(&d.key, human_bytes_signed(d.bytes_diff)))
                .collect()
        }
        None => {
            let stats = snapshot.statistics_sorted(GroupBy::Line, graph.metric);
            let whole: u64 = stats.iter().map(|s| s.figure(graph.metric)).sum();
            stats
                .iter()
                .filter(|s| s.figure(graph.metric) > 0)
                .take(3)
                .map(|s| line(&s.key, percent(s.figure(graph.metric), whole)))
                .collect()
        }
    };
    if parts.is_empty() {
        return String::new();
    }
    let what = if graph.older {
        "Grew most"
    } else {
        "Largest lines"
    };
    format!("{what}: {}.", parts.join(", "))
}

/// A flamegraph in its own frame, drawn both ways (callers first, allocation sites first), or why
/// there is none.
fn flame_frame(
    html: &mut String,
    snapshot: &Snapshot,
    older: Option<&Snapshot>,
    graph: &Graph,
    places: &Places,
) -> io::Result<()> {
    let _ = write!(
        html,
        r#"<div class="graph" id="graph-{}"><h3>{}</h3><p class="meaning">{}"#,
        graph.id,
        escape(graph.title),
        graph.meaning
    );
    // Sampled mode does not estimate every figure: then the graph says so, and no line is named.
    let sampled = snapshot.meta.capture.sampling_bytes > 0
        || older.is_some_and(|o| o.meta.capture.sampling_bytes > 0);
    let estimated = !sampled || graph.metric.estimated_when_sampled();
    let largest = if estimated {
        largest_lines(snapshot, older, graph, places)
    } else {
        String::new()
    };
    if !largest.is_empty() {
        let _ = write!(html, r#" <span class="largest">{largest}</span>"#);
    }
    html.push_str("</p>\n");
    let mut frames = Vec::new();
    for (reverse, way) in [(false, "callers"), (true, "sites")] {
        let options = FlameOptions {
            metric: graph.metric,
            title: Some(graph.title.to_owned()),
            inverted: true,
            reverse,
            ..FlameOptions::default()
        };
        let mut svg = Vec::new();
        let older = older.filter(|_| graph.older);
        match flamegraph(snapshot, older, &options, &mut svg) {
            Ok(()) => {
                // As tall as the SVG: nothing to scroll inside the frame.
                let height = svg_height(&svg).unwrap_or(600) + 2;
                let svg = with_safe_history(&svg);
                let data = base64::engine::general_purpose::STANDARD.encode(&svg);
                frames.push(format!(
                    r#"<iframe class="flame" data-way="{way}" title="{}" style="height: {height}px" data-src="data:image/svg+xml;base64,{data}"></iframe>"#,
                    escape(graph.title)
                ));
            }
            Err(FlameError::NothingToDraw) => {
                let _ = writeln!(
                    html,
                    r#"<p class="empty">Nothing to draw: no allocation has a figure for it.</p></div>"#,
                );
                return Ok(());
            }
            Err(FlameError::NotEstimated(_)) => {
                let _ = writeln!(
                    html,
                    r#"<p class="empty">Not estimated in sampled mode: profile in exact mode for this graph.</p></div>"#
                );
                return Ok(());
            }
            Err(FlameError::Render(e)) => return Err(e),
        }
    }
    for frame in frames {
        let _ = writeln!(html, "{frame}");
    }
    html.push_str("</div>\n");
    Ok(())
}

/// inferno's script keeps the zoom and search in the page's address (`history.replaceState`),
/// which a `data:` document may not change: every search and zoom would throw. A script run first
/// makes that call best effort.
fn with_safe_history(svg: &[u8]) -> Vec<u8> {
    const GUARD: &[u8] = b"<script type=\"text/ecmascript\"><![CDATA[(function () { var replace = history.replaceState.bind(history); history.replaceState = function () { try { replace.apply(null, arguments); } catch (e) {} }; })();]]></script>";
    let Some(start) = svg.windows(4).position(|w| w == b"<svg") else {
        return svg.to_vec();
    };
    let Some(end) = svg[start..].iter().position(|&b| b == b'>') else {
        return svg.to_vec();
    };
    let at = start + end + 1;
    [&svg[..at], GUARD, &svg[at..]].concat()
}

/// The flamegraphs: live (or, when almost nothing is left, at the peak) first.
fn flamegraphs(
    html: &mut String,
    snapshot: &Snapshot,
    older: Option<&Snapshot>,
    places: &Places,
) -> io::Result<()> {
    let t = &snapshot.totals;
    let live = Graph {
        metric: Metric::LiveBytes,
        older: false,
        id: "live",
        short: "live",
        title: "Live bytes",
        meaning: format!(
            "What the program holds now: {} in {} blocks.",
            human_bytes(t.live_bytes),
            human_count(t.live_blocks)
        ),
    };
    let peak = Graph {
        metric: Metric::PeakBytes,
        older: false,
        id: "peak",
        short: "at the peak",
        title: "Bytes live at the peak",
        meaning: format!(
            "What it held at its highest: {} in {} blocks{}.",
            human_bytes(t.peak_bytes),
            human_count(t.peak_blocks),
            peak_moment(snapshot).map_or_else(String::new, |ms| format!(
                ", {} after its first allocation",
                human_duration_ms(ms)
            ))
        ),
    };
    let total = Graph {
        metric: Metric::TotalBytes,
        older: false,
        id: "total",
        short: "allocated",
        title: "Bytes allocated",
        meaning: format!(
            "Every allocation of the run, freed or not (the churn): {} in {} blocks.",
            human_bytes(t.total_bytes),
            human_count(t.total_blocks)
        ),
    };
    let temporary = Graph {
        metric: Metric::TemporaryBlocks,
        older: false,
        id: "temporary",
        short: "temporary",
        title: "Temporary allocations",
        meaning: "Blocks freed by their thread before its next allocation: short-lived churn, \
                  in blocks."
            .to_owned(),
    };
    let change = older.map(|older| {
        let o = &older.totals;
        Graph {
            metric: Metric::LiveBytes,
            older: true,
            id: "change",
            short: "change",
            title: "Change in live bytes since the older snapshot",
            meaning: format!(
                "Widths are live bytes now; red grew since the older snapshot, blue shrank \
                 (live {} then, {} now).",
                human_bytes(o.live_bytes),
                human_bytes(t.live_bytes)
            ),
        }
    });
    // An exit snapshot after the program freed its memory: the peak says more than what is left.
    let mostly_freed = t.live_bytes.saturating_mul(100) < t.total_bytes;
    let mut graphs = if mostly_freed {
        vec![peak, live]
    } else {
        vec![live, peak]
    };
    if let Some(change) = change {
        // What changed is what a comparison is for: right after the first.
        graphs.insert(1, change);
    }
    graphs.extend([total, temporary]);
    html.push_str(
        r#"<section id="flamegraphs"><div class="tools"><span class="ways">Stacks: <button class="way on" data-way="callers">callers at the top</button><button class="way" data-way="sites">allocating calls at the top</button></span><span class="jump">Graphs:"#,
    );
    for graph in &graphs {
        let _ = write!(
            html,
            r##" <a href="#graph-{}">{}</a>"##,
            graph.id, graph.short
        );
    }
    html.push_str("</span><span>Click a box to zoom, Ctrl+F in a graph to search.</span></div>\n");
    // Sampled mode estimates neither the peak's figures nor temporaries: the graphs say so.
    for graph in &graphs {
        flame_frame(html, snapshot, older, graph, places)?;
    }
    html.push_str("</section>\n");
    Ok(())
}

const STYLE: &str = r#"
body { font-family: system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; font-size: 14px; }
header { background: #264653; color: #fff; padding: 10px 24px; }
header h1 { margin: 0; font-size: 18px; font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
header p { margin: 2px 0 0; opacity: .85; font-size: 13px; }
nav { display: flex; gap: 4px; padding: 6px 24px; background: #e9ecef; position: sticky; top: 0; z-index: 2; }
nav button { border: 0; padding: 6px 14px; border-radius: 4px; background: #fff; cursor: pointer; font-size: 14px; }
nav button.on { background: #2a9d8f; color: #fff; }
section { display: none; padding: 12px 24px; } section.on { display: block; }
h2 { font-size: 16px; margin: 0 0 4px; } h3 { font-size: 15px; margin: 8px 0 2px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin-bottom: 12px; }
.card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 6px 14px; min-width: 140px; }
.card b { display: block; font-size: 20px; } .card span { color: #666; font-size: 12px; }
.card.grew b { color: #b02a37; } .card.shrank b { color: #1e7b34; }
.answer { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; margin-bottom: 10px; }
.answer p { margin: 0 0 4px; color: #444; }
table.sites, table.changes, table.leaks, table.facts { border-collapse: collapse; background: #fff; font-size: 13px; width: 100%; table-layout: auto; }
table.sites th, table.changes th, table.leaks th { text-align: right; color: #555; font-weight: 600; padding: 2px 8px; border-bottom: 1px solid #ddd; }
table.sites td, table.changes td, table.leaks td { padding: 2px 8px; text-align: right; white-space: nowrap; border-top: 1px solid #f0f0f0; }
th.text, td.fn, td.loc, td.key, td.what { text-align: left !important; }
td.fn, td.loc { font-family: ui-monospace, monospace; overflow: hidden; text-overflow: ellipsis; }
td.loc { color: #555; }
table.sites, table.changes { table-layout: fixed; }
th.share { width: 120px; } th.n { width: 90px; } th.wide { width: 110px; } th.fn { width: 40%; }
td.share { width: 130px; } .bar { display: inline-block; width: 60px; height: 8px; background: #e9ecef; margin-right: 6px; vertical-align: middle; }
.bar i { display: block; height: 100%; background: #2a9d8f; }
tr.grew td.change { color: #b02a37; } tr.shrank td.change { color: #1e7b34; }
table.facts td { padding: 2px 8px; border-top: 1px solid #f0f0f0; vertical-align: top; }
table.facts td:first-child { color: #555; white-space: nowrap; width: 200px; }
details.about { margin-top: 6px; } details.about summary { cursor: pointer; color: #264653; }
table.top { border-collapse: collapse; background: #fff; font-size: 12px; width: 100%; }
table.top th { background: #e9ecef; cursor: pointer; position: sticky; top: 40px; padding: 6px; text-align: right; }
table.sortable th { cursor: pointer; }
table.top th[data-kind=text] { text-align: left; }
table.top td { border-top: 1px solid #eee; padding: 4px 6px; text-align: right; white-space: nowrap; }
table.top td.key { text-align: left; white-space: pre; font-family: ui-monospace, monospace; }
table.leaks { table-layout: fixed; } table.leaks td { vertical-align: top; }
table.leaks td.what { white-space: normal; }
table.leaks details summary { cursor: pointer; font-family: ui-monospace, monospace; }
table.leaks details summary .loc { color: #555; margin-left: 8px; }
ol.stacks { margin: 4px 0 8px; padding-left: 22px; }
ol.stacks li { margin-bottom: 6px; } ol.stacks li b { font-weight: 600; }
ol.stacks pre { margin: 2px 0 0; border: 0; padding: 0 0 0 8px; background: none; border-left: 3px solid #e9ecef; }
.tools { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; margin-bottom: 8px; }
.tools input { padding: 6px 10px; width: 360px; }
.tools button.way { border: 1px solid #ccc; background: #fff; padding: 3px 10px; cursor: pointer; }
.tools button.way.on { background: #2a9d8f; color: #fff; border-color: #2a9d8f; }
.tools .jump a { margin-left: 6px; }
.graph { margin-bottom: 18px; scroll-margin-top: 48px; } .graph .meaning { margin: 0 0 4px; color: #444; }
iframe.flame { display: block; width: 100%; border: 1px solid #ddd; background: #fff; }
iframe.flame.off { display: none; }
pre { background: #fff; border: 1px solid #ddd; padding: 12px; overflow-x: auto; font-size: 12px; }
.timeline svg { max-width: 100%; height: auto; background: #fff; border: 1px solid #ddd; }
.empty, .note { color: #666; }
"#;

const SCRIPT: &str = r#"
function show(id) {
  const section = document.getElementById(id);
  if (!section || section.tagName !== "SECTION") return;
  for (const o of document.querySelectorAll("nav button, section")) o.classList.remove("on");
  document.querySelector(`nav button[data-section="${id}"]`).classList.add("on");
  section.classList.add("on");
  loadFrames(section);
}
// Flamegraphs load when first shown: laid out while hidden, they would have no width.
function loadFrames(section) {
  for (const frame of section.querySelectorAll("iframe[data-src]")) {
    if (frame.classList.contains("off")) continue;
    frame.src = frame.dataset.src;
    frame.removeAttribute("data-src");
  }
}
for (const b of document.querySelectorAll("nav button"))
  b.addEventListener("click", () => show(b.dataset.section));
for (const a of document.querySelectorAll("a[data-goto]"))
  a.addEventListener("click", (e) => { e.preventDefault(); show(a.dataset.goto); scrollTo(0, 0); });
// Each flamegraph drawn two ways: callers at the top, or the allocating calls.
for (const b of document.querySelectorAll("button.way")) {
  b.addEventListener("click", () => {
    for (const o of document.querySelectorAll("button.way")) o.classList.toggle("on", o === b);
    for (const f of document.querySelectorAll("iframe.flame"))
      f.classList.toggle("off", f.dataset.way !== b.dataset.way);
    loadFrames(document.getElementById("flamegraphs"));
  });
}
for (const f of document.querySelectorAll("iframe.flame"))
  f.classList.toggle("off", f.dataset.way !== "callers");
const grouping = document.getElementById("grouping");
const search = document.getElementById("search");
function showTable() {
  for (const t of document.querySelectorAll("table.top, p.note[data-by]"))
    t.style.display = t.dataset.by === grouping.value ? "" : "none";
  filterRows();
}
function filterRows() {
  const term = search.value.toLowerCase();
  for (const t of document.querySelectorAll("table.top")) {
    for (const row of t.tBodies[0].rows) {
      const key = row.cells[row.cells.length - 1].textContent.toLowerCase();
      row.style.display = key.includes(term) ? "" : "none";
    }
  }
}
for (const t of document.querySelectorAll("table.sortable")) {
  t.querySelectorAll("th").forEach((th, column) => {
    th.addEventListener("click", () => {
      const numeric = th.dataset.kind === "num";
      const descending = th.dataset.order !== "desc";
      th.dataset.order = descending ? "desc" : "asc";
      const rows = [...t.tBodies[0].rows];
      const value = (r) => numeric ? Number(r.cells[column].dataset.v) : r.cells[column].textContent;
      rows.sort((a, b) => {
        const x = value(a), y = value(b);
        const order = x < y ? -1 : x > y ? 1 : 0;
        return descending ? -order : order;
      });
      for (const r of rows) t.tBodies[0].appendChild(r);
    });
  });
}
grouping.addEventListener("change", showTable);
search.addEventListener("input", filterRows);
showTable();
if (location.hash.length > 1) show(location.hash.slice(1));
"#;

/// Writes the report of `snapshot`; with `older`, what changed since `older`: a table of the
/// changes, a differential flamegraph, and the leaks are what grew.
pub fn html_report(
    snapshot: &Snapshot,
    older: Option<&Snapshot>,
    options: &HtmlOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let command = snapshot.meta.command.join(" ");
    let title = options
        .title
        .clone()
        .unwrap_or_else(|| format!("tracealloc report: {command}"));
    let places = Places::of(
        &[Some(snapshot), older]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
    );
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(&title)
    );
    let threads: u64 = snapshot.threads.iter().map(|t| t.threads).sum();
    let _ = writeln!(
        html,
        "<header><h1 title=\"{}\">{}</h1><p>Taken {}; pid {}; {} allocated.</p></header>",
        escape(&title),
        escape(&title),
        escape(&taken(snapshot)),
        snapshot.meta.pid,
        plural(threads, "thread")
    );
    let changes_tab = if older.is_some() {
        r#"<button data-section="changes">Changes</button>"#
    } else {
        ""
    };
    let _ = write!(
        html,
        r#"<nav><button class="on" data-section="summary">Summary</button><button data-section="timeline">Timeline</button><button data-section="tables">Top sites</button><button data-section="flamegraphs">Flamegraphs</button>{changes_tab}<button data-section="leaks">Leaks</button></nav>"#
    );
    html.push('\n');

    summary::section(&mut html, snapshot, older, options, &places);

    // Timeline.
    html.push_str("<section id=\"timeline\" class=\"timeline\">");
    if snapshot.timeline.is_empty() {
        html.push_str(
            "<p class=\"empty\">This snapshot has no timeline (an older tracealloc wrote it).</p>",
        );
    } else {
        let mut svg = Vec::new();
        timeline_svg(snapshot, "", &TimelineOptions::default(), &mut svg)
            .map_err(io::Error::other)?;
        let svg = String::from_utf8_lossy(&svg);
        // Inline: drop the XML declaration, which HTML does not take.
        let svg = svg.split_once("?>\n").map_or(&*svg, |(_, rest)| rest);
        html.push_str(svg);
    }
    html.push_str("</section>\n");

    // Top tables: one per grouping, the selected one shown.
    let labeled = snapshot.sites.iter().any(|s| s.label.is_some());
    let label_option = if labeled {
        r#"<option value="label">task label</option>"#
    } else {
        ""
    };
    html.push_str(
        &r#"<section id="tables"><div class="tools"><label>Group by <select id="grouping"><option value="line">line</option><option value="function">function</option><option value="stack">stack</option><option value="thread">thread</option>{label_option}</select></label><input id="search" type="search" placeholder="Search keys (function, file:line)"><span>Click a column to sort.</span></div>"#
            .replace("{label_option}", label_option),
    );
    for by in [
        GroupBy::Line,
        GroupBy::Function,
        GroupBy::Stack,
        GroupBy::Thread,
    ] {
        top_table(&mut html, snapshot, by, options.rows);
    }
    if labeled {
        top_table(&mut html, snapshot, GroupBy::Label, options.rows);
    }
    html.push_str("</section>\n");

    flamegraphs(&mut html, snapshot, older, &places)?;
    if let Some(older) = older {
        changes::section(&mut html, snapshot, older, options, &places);
    }
    leaks::section(&mut html, snapshot, older, options, &places);
    let _ = writeln!(html, "<script>{SCRIPT}</script></body></html>");
    out.write_all(html.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_svg_height_is_read_from_its_root() {
        let svg = br#"<?xml version="1.0"?><svg version="1.1" width="1200" height="526" onload="init(evt)"><svg id="frames" height="9">"#;
        assert_eq!(svg_height(svg), Some(526));
        assert_eq!(svg_height(b"<svg width=\"1\">"), None);
    }
}
