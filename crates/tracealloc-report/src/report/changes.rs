//! The Changes tab of `report --diff`: every line whose memory changed since the older
//! snapshot, the largest change first, growth red and shrinkage green.

use std::fmt::Write as _;

use tracealloc_snapshot::{
    GroupBy, Snapshot, human_bytes, human_bytes_signed, human_count, human_count_signed, human_date,
};

use super::{HtmlOptions, Places, apart};

pub(super) fn section(
    html: &mut String,
    snapshot: &Snapshot,
    older: &Snapshot,
    options: &HtmlOptions,
    places: &Places,
) {
    let (t, o) = (&snapshot.totals, &older.totals);
    let all = snapshot.diff(older).statistics(GroupBy::Line);
    let changed: Vec<_> = all
        .iter()
        .filter(|d| d.bytes_diff != 0 || d.blocks_diff != 0 || d.total_bytes_diff != 0)
        .collect();
    let grew = changed.iter().filter(|d| d.bytes_diff > 0).count();
    let shrank = changed.iter().filter(|d| d.bytes_diff < 0).count();
    html.push_str(r#"<section id="changes"><h2>What changed since the older snapshot</h2>"#);
    let _ = writeln!(
        html,
        "<p>Live memory went from {} in {} blocks (taken {}, {}) to {} in {} blocks: {} ({} \
         blocks). By line: {} grew, {} shrank, {} only allocated and freed in between, {} did not \
         change.</p>",
        human_bytes(o.live_bytes),
        human_count(o.live_blocks),
        human_date(older.meta.time_unix_ms),
        apart(snapshot, older),
        human_bytes(t.live_bytes),
        human_count(t.live_blocks),
        human_bytes_signed(t.live_bytes as i64 - o.live_bytes as i64),
        human_count_signed(t.live_blocks as i64 - o.live_blocks as i64),
        human_count(grew as u64),
        human_count(shrank as u64),
        human_count((changed.len() - grew - shrank) as u64),
        human_count((all.len() - changed.len()) as u64)
    );
    if snapshot.meta.capture.sampling_bytes > 0 || older.meta.capture.sampling_bytes > 0 {
        html.push_str(
            "<p class=\"note\">Sampled: each figure is an estimate (see the Top sites tab for \
             their standard errors).</p>\n",
        );
    }
    if changed.is_empty() {
        html.push_str("<p class=\"empty\">Nothing changed.</p></section>\n");
        return;
    }
    // "allocated in between": what the line allocated since the older snapshot (across two runs,
    // the change of its total), which ranks lines whose live memory did not change.
    html.push_str(
        r#"<table class="changes sortable"><thead><tr><th class="n" data-kind="num">change</th><th class="n" data-kind="num">live now</th><th class="wide" data-kind="num">blocks change</th><th class="n" data-kind="num">live blocks</th><th class="wide" data-kind="num">allocated in between</th><th class="text fn" data-kind="text">function</th><th class="text" data-kind="text">line</th></tr></thead><tbody>"#,
    );
    html.push('\n');
    for d in changed.iter().take(options.rows) {
        let class = match d.bytes_diff.signum() {
            1 => "grew",
            -1 => "shrank",
            _ => "same",
        };
        let _ = writeln!(
            html,
            r#"<tr class="{class}"><td class="change" data-v="{}">{}</td><td data-v="{}">{}</td><td data-v="{}">{}</td><td data-v="{}">{}</td><td data-v="{}">{}</td>{}</tr>"#,
            d.bytes_diff,
            human_bytes_signed(d.bytes_diff),
            d.live_bytes,
            human_bytes(d.live_bytes),
            d.blocks_diff,
            human_count_signed(d.blocks_diff),
            d.live_blocks,
            human_count(d.live_blocks),
            d.total_bytes_diff,
            human_bytes_signed(d.total_bytes_diff),
            places.cells(snapshot, &d.key)
        );
    }
    html.push_str("</tbody></table>\n");
    if changed.len() > options.rows {
        let _ = writeln!(
            html,
            r#"<p class="note">The {} largest changes of {}.</p>"#,
            human_count(options.rows as u64),
            human_count(changed.len() as u64)
        );
    }
    html.push_str("</section>\n");
}
