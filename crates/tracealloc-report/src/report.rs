//! One self-contained HTML report of a snapshot: a summary, the timeline, sortable and searchable
//! top tables, flamegraphs (live, total, at the peak, temporary, and the change since an older
//! snapshot), and leaks. Everything is inline: it loads nothing from the network and opens from a
//! file or an attachment.
//!
//! Flamegraphs are inferno's interactive SVGs, each in its own frame (a `data:` URL), so that
//! their scripts (search, zoom) run as they do in a standalone file and do not clash.

use std::fmt::Write as _;
use std::io::{self, Write};

use base64::Engine as _;
use tracealloc_snapshot::{GroupBy, Metric, Snapshot, human_bytes};

use crate::flame::{FlameError, FlameOptions, flamegraph};
use crate::leaks::leaks;
use crate::tables::{ReportOptions, info};
use crate::timeline::{TimelineOptions, timeline_svg};

/// What the report holds.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HtmlOptions {
    /// Rows per top table.
    pub rows: usize,
    /// Rows of the leaks section.
    pub leaks: usize,
    /// The page's title (default: "tracealloc report" and the program's command line).
    pub title: Option<String>,
}

impl Default for HtmlOptions {
    fn default() -> Self {
        HtmlOptions {
            rows: 200,
            leaks: 20,
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

fn text_of(render: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> io::Result<String> {
    let mut out = Vec::new();
    render(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
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
        r#"<table class="top" data-by="{by_name}"><thead><tr><th data-kind="num">live</th><th data-kind="num">blocks</th><th data-kind="num">at peak</th><th data-kind="num">total</th><th data-kind="num">allocations</th><th data-kind="num">temporary</th><th data-kind="num">realloc copies</th>{lifetime_heads}<th data-kind="text">{by_name}</th></tr></thead><tbody>"#
    );
    // Sampled: each estimate with its standard error; what sampling does not estimate, unavailable.
    let mean = snapshot.meta.capture.sampling_bytes;
    for s in stats.iter().take(rows) {
        let bytes = |v: u64| format!(r#"<td data-v="{v}">{}</td>"#, human_bytes(v));
        let count = |v: u64| format!(r#"<td data-v="{v}">{v}</td>"#);
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
                crate::tables::human_duration(mean),
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
}

/// A flamegraph in its own frame, or why there is none.
fn flame_frame(
    html: &mut String,
    snapshot: &Snapshot,
    older: Option<&Snapshot>,
    metric: Metric,
    title: &str,
) -> io::Result<()> {
    let options = FlameOptions {
        metric,
        title: Some(title.to_owned()),
        ..FlameOptions::default()
    };
    let mut svg = Vec::new();
    match flamegraph(snapshot, older, &options, &mut svg) {
        Ok(()) => {
            let svg = with_safe_history(&svg);
            let data = base64::engine::general_purpose::STANDARD.encode(&svg);
            let _ = writeln!(
                html,
                r#"<iframe class="flame" title="{}" data-src="data:image/svg+xml;base64,{data}"></iframe>"#,
                escape(title)
            );
        }
        Err(FlameError::NothingToDraw) => {
            let _ = writeln!(
                html,
                r#"<p class="empty">{}: nothing to draw (no allocation has a figure for it).</p>"#,
                escape(title)
            );
        }
        Err(e @ FlameError::NotEstimated(_)) => {
            let _ = writeln!(html, r#"<p class="empty">{}: {e}.</p>"#, escape(title));
        }
        Err(FlameError::Render(e)) => return Err(e),
    }
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

const STYLE: &str = r#"
body { font-family: system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { background: #264653; color: #fff; padding: 14px 24px; }
header h1 { margin: 0; font-size: 20px; } header p { margin: 4px 0 0; opacity: .85; }
nav { display: flex; gap: 4px; padding: 8px 24px; background: #e9ecef; position: sticky; top: 0; }
nav button { border: 0; padding: 6px 14px; border-radius: 4px; background: #fff; cursor: pointer; }
nav button.on { background: #2a9d8f; color: #fff; }
section { display: none; padding: 16px 24px; } section.on { display: block; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 16px; }
.card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 10px 16px; min-width: 150px; }
.card b { display: block; font-size: 22px; } .card span { color: #666; font-size: 12px; }
pre { background: #fff; border: 1px solid #ddd; padding: 12px; overflow-x: auto; font-size: 12px; }
table.top { border-collapse: collapse; background: #fff; font-size: 12px; width: 100%; }
table.top th { background: #e9ecef; cursor: pointer; position: sticky; top: 40px; padding: 6px; text-align: right; }
table.top th[data-kind=text] { text-align: left; }
table.top td { border-top: 1px solid #eee; padding: 4px 6px; text-align: right; white-space: nowrap; }
table.top td.key { text-align: left; white-space: pre; font-family: ui-monospace, monospace; }
.tools { display: flex; gap: 12px; align-items: center; margin-bottom: 10px; }
.tools input { padding: 6px 10px; width: 360px; }
iframe.flame { width: 100%; height: 640px; border: 1px solid #ddd; background: #fff; margin-bottom: 16px; }
.timeline svg { max-width: 100%; height: auto; background: #fff; border: 1px solid #ddd; }
.empty { color: #666; }
"#;

const SCRIPT: &str = r#"
for (const b of document.querySelectorAll("nav button")) {
  b.addEventListener("click", () => {
    for (const o of document.querySelectorAll("nav button, section")) o.classList.remove("on");
    b.classList.add("on");
    const section = document.getElementById(b.dataset.section);
    section.classList.add("on");
    // Flamegraphs load when first shown: laid out while hidden, they would have no width.
    for (const frame of section.querySelectorAll("iframe[data-src]")) {
      frame.src = frame.dataset.src;
      frame.removeAttribute("data-src");
    }
  });
}
const grouping = document.getElementById("grouping");
const search = document.getElementById("search");
function showTable() {
  for (const t of document.querySelectorAll("table.top"))
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
for (const t of document.querySelectorAll("table.top")) {
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
"#;

/// Writes the report of `snapshot`; with `older`, its leaks are those since `older` and a
/// differential flamegraph is added.
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
    let t = &snapshot.totals;
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(&title)
    );
    let _ = writeln!(
        html,
        "<header><h1>{}</h1><p>pid {}, {} sites, {} threads</p></header>",
        escape(&title),
        snapshot.meta.pid,
        snapshot.sites.len(),
        snapshot.threads.iter().map(|t| t.threads).sum::<u64>()
    );
    html.push_str(
        r#"<nav><button class="on" data-section="summary">Summary</button><button data-section="timeline">Timeline</button><button data-section="tables">Top sites</button><button data-section="flamegraphs">Flamegraphs</button><button data-section="leaks">Leaks</button></nav>"#,
    );

    // Summary: headline figures, then everything `info` says.
    html.push_str("<section id=\"summary\" class=\"on\"><div class=\"cards\">");
    let rss = snapshot.meta.rss_bytes;
    let own = snapshot.profiler.own_bytes;
    for (value, label) in [
        (
            human_bytes(t.live_bytes),
            format!("live, {} blocks", t.live_blocks),
        ),
        (
            human_bytes(t.peak_bytes),
            format!("peak, {} blocks", t.peak_blocks),
        ),
        (
            human_bytes(t.total_bytes),
            format!("allocated, {} blocks", t.total_blocks),
        ),
        (human_bytes(rss), "resident (RSS)".to_owned()),
        (human_bytes(own), "the profiler's own memory".to_owned()),
    ] {
        let _ = write!(
            html,
            "<div class=\"card\"><b>{}</b><span>{}</span></div>",
            escape(&value),
            escape(&label)
        );
    }
    html.push_str("</div>");
    let summary = text_of(|o| info(snapshot, o))?;
    let _ = writeln!(html, "<pre>{}</pre></section>", escape(&summary));

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

    // Flamegraphs.
    html.push_str("<section id=\"flamegraphs\">");
    // An exit snapshot after the program freed its memory: the peak says more than what is left.
    let mostly_freed = t.live_bytes.saturating_mul(100) < t.total_bytes;
    let (first, second) = if mostly_freed {
        (
            (Metric::PeakBytes, "Bytes live at the peak"),
            (Metric::LiveBytes, "Live bytes"),
        )
    } else {
        (
            (Metric::LiveBytes, "Live bytes"),
            (Metric::PeakBytes, "Bytes live at the peak"),
        )
    };
    // Sampled mode estimates neither the peak's figures nor temporaries: no graph of them.
    let sampled = snapshot.meta.capture.sampling_bytes > 0;
    for (metric, title) in [first, second] {
        if sampled && metric == Metric::PeakBytes {
            html.push_str(
                "<p class=\"note\">Bytes live at the peak: not estimated in sampled mode.</p>\n",
            );
            continue;
        }
        flame_frame(&mut html, snapshot, None, metric, title)?;
    }
    flame_frame(
        &mut html,
        snapshot,
        None,
        Metric::TotalBytes,
        "Bytes allocated (total)",
    )?;
    if sampled {
        html.push_str(
            "<p class=\"note\">Temporary allocations: not estimated in sampled mode.</p>\n",
        );
    } else {
        flame_frame(
            &mut html,
            snapshot,
            None,
            Metric::TemporaryBlocks,
            "Temporary allocations",
        )?;
    }
    if let Some(older) = older {
        flame_frame(
            &mut html,
            snapshot,
            Some(older),
            Metric::LiveBytes,
            "Change in live bytes since the older snapshot",
        )?;
    }
    html.push_str("</section>\n");

    // Leaks.
    let leak_options = ReportOptions {
        n: options.leaks,
        ..ReportOptions::default()
    };
    let leaks_text = text_of(|o| leaks(snapshot, older, &leak_options, o))?;
    let heading = if older.is_some() {
        "What grew since the older snapshot and is still live, by stack"
    } else {
        "What is still live, by stack"
    };
    let _ = writeln!(
        html,
        "<section id=\"leaks\"><h3>{heading}</h3><pre>{}</pre></section>",
        escape(&leaks_text)
    );
    let _ = writeln!(html, "<script>{SCRIPT}</script></body></html>");
    out.write_all(html.as_bytes())
}
