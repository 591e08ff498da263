//! Flamegraphs of a snapshot (or of the change between two) as interactive SVG, via inferno.
//!
//! Boxes are colored by where their code comes from (the program's own code green, dependencies
//! blue, the standard library orange), labels start with the function name (a narrow box cuts the
//! location, not the name), tooltips give each box's figure in human units (`192 MiB, 96.42%`,
//! `3,400,000 blocks, 50.00%`), and the subtitle gives the metric's own total and the command
//! line. In a differential flamegraph each box is colored by its own change, callees included
//! (growth red, shrink blue, the deeper the larger), and its tooltip says that change; see
//! [`rewrite_frames`] for how.

use std::collections::HashMap;
use std::io::Write;
use std::ops::Range;

use inferno::flamegraph::color::{BackgroundColor, Color, PaletteMap};
use inferno::flamegraph::{self, Direction, Palette, TextTruncateDirection, color::BasicPalette};
use tracealloc_snapshot::{
    FoldOptions, Frame, Metric, Snapshot, human_bytes, human_bytes_signed, human_count,
};

/// How a flamegraph is drawn.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct FlameOptions {
    pub metric: Metric,
    /// Thread names as root frames.
    pub by_thread: bool,
    /// Task labels as root frames (above the threads with `by_thread`).
    pub by_label: bool,
    /// Reversed stack order: allocation sites at the root, their callers above (flamegraph.pl's
    /// and inferno's `--reverse`).
    pub reverse: bool,
    /// An icicle graph: roots at the top, stacks growing down (inferno's `--inverted`).
    pub inverted: bool,
    /// Every frame, std's start-up included (see [`FoldOptions::full_stacks`]).
    pub full_stacks: bool,
    /// The title; a default naming the metric when `None`.
    pub title: Option<String>,
}

/// Where a frame's code comes from, for its color.
fn origin_color(frame: &Frame, label: &str) -> Color {
    // A small variation per label, so neighbouring boxes of one origin stay apart.
    let h = label
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let v = (h % 40) as u8;
    let file = frame.file.as_deref().unwrap_or("");
    if frame.is_runtime() || frame.is_profiler() {
        Color {
            r: 235,
            g: 150 + v,
            b: 50 + v / 2,
        }
    } else if file.contains("/registry/src/") || file.contains("/git/checkouts/") {
        Color {
            r: 70 + v,
            g: 150 + v,
            b: 215,
        }
    } else {
        Color {
            r: 90 + v,
            g: 190 + v / 2,
            b: 90 + v,
        }
    }
}

/// Renders `snapshot` as an SVG flamegraph; with `older`, a differential one: widths from
/// `snapshot`, each frame colored by its own change since `older`, callees included (growth red,
/// shrink blue, deeper for a larger change), its tooltip giving that change (`+9.77 MiB, +94.74%
/// of the total, was 360 KiB`). `older`'s frames are matched to `snapshot`'s by crate-relative
/// path and function, so it may come from another checkout or machine.
pub fn flamegraph(
    snapshot: &Snapshot,
    older: Option<&Snapshot>,
    options: &FlameOptions,
    out: &mut dyn Write,
) -> Result<(), FlameError> {
    let sampled = snapshot.meta.capture.sampling_bytes > 0
        || older.is_some_and(|o| o.meta.capture.sampling_bytes > 0);
    if sampled && !options.metric.estimated_when_sampled() {
        return Err(FlameError::NotEstimated(options.metric.describe()));
    }
    let mut fold = FoldOptions::default();
    fold.metric = options.metric;
    fold.by_thread = options.by_thread;
    fold.by_label = options.by_label;
    fold.full_stacks = options.full_stacks;
    let lines = match older {
        Some(old) => snapshot.folded_diff(old, &fold),
        None => snapshot.folded(&fold),
    };
    if lines.is_empty() {
        return Err(FlameError::NothingToDraw);
    }
    let what = options.metric.describe();
    let mut palette = PaletteMap::default();
    for frame in &snapshot.frames {
        // The label exactly as the fold writes it.
        let label = snapshot.short_paths(&frame.label()).replace(';', ",");
        let color = origin_color(frame, &label);
        palette.insert(label, color);
    }
    let mut opts = flamegraph::Options::default();
    opts.title = options.title.clone().unwrap_or_else(|| match older {
        Some(_) => format!("tracealloc: change of {what}"),
        None => format!("tracealloc: {what}"),
    });
    // In a sampled snapshot the totals are exact but the frames' widths are estimates.
    let sampling = match snapshot.meta.capture.sampling_bytes {
        0 => String::new(),
        mean => format!(
            " (sampled every {} on average: widths are estimates)",
            human_bytes(mean)
        ),
    };
    let shows = match older {
        Some(old) => {
            let (then, now) = (
                metric_total(old, options.metric),
                metric_total(snapshot, options.metric),
            );
            let unit = options.metric.unit();
            format!(
                "{what} {} \u{2192} {} ({}); each frame by its own change: red grew, blue shrank",
                amount(then, unit),
                amount(now, unit),
                signed_amount(signed(now, then), unit)
            )
        }
        None => what_it_shows(snapshot, options.metric),
    };
    opts.subtitle = Some(format!(
        "{shows}{sampling}: {}",
        snapshot.meta.command.join(" ")
    ));
    opts.count_name = options.metric.unit().to_owned();
    opts.colors = Palette::Basic(BasicPalette::Mem);
    match older {
        None => opts.palette_map = Some(&mut palette),
        // Red and blue boxes read best on grey (the memory palette's background is green).
        Some(_) => opts.bgcolors = Some(BackgroundColor::Grey),
    }
    opts.reverse_stack_order = options.reverse;
    if options.inverted {
        opts.direction = Direction::Inverted;
    }
    opts.text_truncate_direction = TextTruncateDirection::Right;
    let changes = older.map(|_| FrameChanges::new(&lines, options.reverse));
    let mut svg = Vec::new();
    crate::progress::with_spinner(format!("rendering {} stacks", lines.len()), || {
        flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), &mut svg)
    })
    .map_err(FlameError::Render)?;
    let svg = String::from_utf8(svg).map_err(|e| FlameError::Render(std::io::Error::other(e)))?;
    let svg = rewrite_frames(
        &svg,
        options.metric.unit(),
        options.inverted,
        changes.as_ref(),
    );
    out.write_all(svg.as_bytes()).map_err(FlameError::Render)
}

/// The metric's figure over the whole snapshot: the exact totals for live, total and peak bytes
/// and blocks; the sites' sum for the others.
fn metric_total(snapshot: &Snapshot, metric: Metric) -> u64 {
    let t = &snapshot.totals;
    match metric {
        Metric::LiveBytes => t.live_bytes,
        Metric::LiveBlocks => t.live_blocks,
        Metric::TotalBytes => t.total_bytes,
        Metric::TotalBlocks => t.total_blocks,
        Metric::PeakBytes => t.peak_bytes,
        _ => snapshot.sites.iter().map(|s| metric.of(s)).sum(),
    }
}

/// What a flamegraph of `metric` shows, in its own total: `total allocated 1.20 GiB in 3,400,000
/// blocks`, `live at the peak 200 MiB in 1,234 blocks`.
fn what_it_shows(snapshot: &Snapshot, metric: Metric) -> String {
    let t = &snapshot.totals;
    let sum = |figure: fn(&tracealloc_snapshot::Site) -> u64| -> u64 {
        snapshot.sites.iter().map(figure).sum()
    };
    match metric {
        Metric::LiveBytes => format!(
            "live {} in {}",
            human_bytes(t.live_bytes),
            amount(t.live_blocks, "blocks")
        ),
        Metric::LiveBlocks => format!(
            "{} live ({})",
            amount(t.live_blocks, "blocks"),
            human_bytes(t.live_bytes)
        ),
        Metric::TotalBytes => format!(
            "total allocated {} in {}",
            human_bytes(t.total_bytes),
            amount(t.total_blocks, "blocks")
        ),
        Metric::TotalBlocks => format!(
            "{} allocated ({} in all)",
            amount(t.total_blocks, "blocks"),
            human_bytes(t.total_bytes)
        ),
        Metric::PeakBytes => format!(
            "live at the peak {} in {}",
            human_bytes(t.peak_bytes),
            amount(t.peak_blocks, "blocks")
        ),
        Metric::TemporaryBlocks => format!(
            "{} temporary (freed by their thread before its next allocation) of {} allocated",
            amount(sum(|s| s.temporary_blocks), "blocks"),
            human_count(t.total_blocks)
        ),
        Metric::ReallocCopiedBytes => format!(
            "copied by reallocs {} ({} reallocs in all)",
            human_bytes(sum(|s| s.realloc_copied_bytes)),
            human_count(sum(|s| s.reallocs))
        ),
    }
}

/// `192 MiB` for bytes, `3,400,000 blocks` (`1 block`) for blocks.
fn amount(n: u64, unit: &str) -> String {
    match unit {
        "bytes" => human_bytes(n),
        _ if n == 1 => "1 block".to_owned(),
        _ => format!("{} blocks", human_count(n)),
    }
}

/// `+9.77 MiB`, `-1,000 blocks`, `0 B`.
fn signed_amount(n: i64, unit: &str) -> String {
    match unit {
        "bytes" => human_bytes_signed(n),
        _ => {
            let sign = match n.signum() {
                1 => "+",
                -1 => "-",
                _ => "",
            };
            format!("{sign}{}", amount(n.unsigned_abs(), unit))
        }
    }
}

fn signed(new: u64, old: u64) -> i64 {
    (i128::from(new) - i128::from(old)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// inferno's name for a frame in tooltips: without a trailing annotation (`_[k]`, `_[j]`, `_[i]`,
/// `_[w]`), as its `deannotate` has it.
fn deannotate(f: &str) -> &str {
    if let Some(at) = f.rfind("_[")
        && f.ends_with(']')
        && f.len() - at == 4
        && "kwij".contains(&f[at + 2..at + 3])
    {
        return &f[..at];
    }
    f
}

/// Each box's own figures in both snapshots of a differential flamegraph, callees included: the
/// folded stacks as a tree (root first, as inferno draws them), each node holding the sums of
/// the lines through it.
struct FrameChanges<'l> {
    children: HashMap<(usize, &'l str), usize>,
    /// (older, newer) per node; node 0 is the root, the sum of every line.
    figures: Vec<(u64, u64)>,
}

impl<'l> FrameChanges<'l> {
    /// From differential folded lines `root;...;leaf old new`; `reverse` as inferno's
    /// `reverse_stack_order`.
    fn new(lines: &'l [String], reverse: bool) -> Self {
        let mut changes = FrameChanges {
            children: HashMap::new(),
            figures: vec![(0, 0)],
        };
        for line in lines {
            let mut fields = line.rsplitn(3, ' ');
            let (Some(new), Some(old), Some(stack)) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let (Ok(old), Ok(new)) = (old.parse::<u64>(), new.parse::<u64>()) else {
                continue;
            };
            let mut frames: Vec<&str> = stack.split(';').map(deannotate).collect();
            if reverse {
                frames.reverse();
            }
            changes.figures[0].0 += old;
            changes.figures[0].1 += new;
            let mut node = 0;
            for frame in frames {
                let next = changes.figures.len();
                node = *changes.children.entry((node, frame)).or_insert(next);
                if node == next {
                    changes.figures.push((0, 0));
                }
                changes.figures[node].0 += old;
                changes.figures[node].1 += new;
            }
        }
        changes
    }
}

/// One frame box of inferno's SVG: `<g><title>NAME (...)</title><rect x=".." y=".." width=".."
/// height=".." fill="rgb(..)" fg:x=".." fg:w=".."/>...</g>`.
struct SvgBox {
    /// The title's text, escaped, and the name in it (before ` (`), unescaped.
    title: Range<usize>,
    name: String,
    fill: Range<usize>,
    y: i64,
    /// Start and width in the metric's units.
    x: u64,
    w: u64,
}

/// The value range of attribute `name` in the tag `tag` (which starts at `offset` in the SVG).
fn attribute(tag: &str, offset: usize, name: &str) -> Option<Range<usize>> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = start + tag[start..].find('"')?;
    Some(offset + start..offset + end)
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The frame boxes of an SVG inferno wrote, in order.
fn frame_boxes(svg: &str) -> Vec<SvgBox> {
    let mut boxes = Vec::new();
    let Some(mut at) = svg.find("<svg id=\"frames\"") else {
        return boxes;
    };
    while let Some(found) = svg[at..].find("<title>") {
        let start = at + found + "<title>".len();
        let Some(len) = svg[start..].find("</title>") else {
            break;
        };
        let title = start..start + len;
        let Some(rect) = svg[title.end..].find("<rect ").map(|r| title.end + r) else {
            break;
        };
        let Some(rect_len) = svg[rect..].find("/>") else {
            break;
        };
        at = rect + rect_len;
        let tag = &svg[rect..at];
        let number =
            |name: &str| attribute(tag, rect, name).and_then(|r| svg[r].parse::<u64>().ok());
        let (Some(fill), Some(y), Some(x), Some(w)) = (
            attribute(tag, rect, "fill"),
            number("y"),
            number("fg:x"),
            number("fg:w"),
        ) else {
            continue;
        };
        let text = &svg[title.clone()];
        let name = unescape(&text[..text.rfind(" (").unwrap_or(text.len())]);
        boxes.push(SvgBox {
            title,
            name,
            fill,
            y: y as i64,
            x,
            w,
        });
    }
    boxes
}

/// The SVG inferno wrote, with each box's tooltip in human units and, in a differential
/// flamegraph (`changes`), each box's color and tooltip from its own change.
///
/// inferno colors a differential flamegraph by each folded line's change, given to the line's
/// leaf alone (flamegraph.pl's rule): a caller whose callees grew by 9.77 MiB reads white and
/// `0.00%`, as if nothing under it had changed, and its palette map colors by function name, so
/// one function gets one color wherever it is. So the boxes are recolored here, after inferno
/// lays them out: each box's place in the tree is read back from the SVG (its depth from its `y`,
/// its parent the box one level nearer the root whose `fg:x..fg:x+fg:w` span holds its own, its
/// name from its title), its figures in both snapshots are its node's in the tree of folded
/// stacks ([`FrameChanges`]), and its color is that node's change, callees included, against the
/// largest change of any frame. Tooltips keep inferno's shape, `NAME (...)` with no `(` in the
/// last parentheses, which inferno's script cuts to relabel boxes on zoom.
fn rewrite_frames(
    svg: &str,
    unit: &str,
    inverted: bool,
    changes: Option<&FrameChanges<'_>>,
) -> String {
    let boxes = frame_boxes(svg);
    // Depth by `y`: the root's row is the lowest in a flamegraph, the highest in an icicle graph.
    let mut rows: Vec<i64> = boxes.iter().map(|b| b.y).collect();
    rows.sort_unstable();
    rows.dedup();
    if !inverted {
        rows.reverse();
    }
    let depth_of: HashMap<i64, usize> = rows.iter().enumerate().map(|(d, &y)| (y, d)).collect();
    let mut by_depth: Vec<Vec<usize>> = vec![Vec::new(); rows.len()];
    for (i, b) in boxes.iter().enumerate() {
        by_depth[depth_of[&b.y]].push(i);
    }
    for row in &mut by_depth {
        row.sort_by_key(|&i| boxes[i].x);
    }
    let total = by_depth
        .first()
        .and_then(|root| root.first())
        .map_or(0, |&root| boxes[root].w);
    // Each box's node in the tree of changes (the root box is the root node).
    let mut node: Vec<Option<usize>> = vec![None; boxes.len()];
    if let Some(changes) = changes {
        for (depth, row) in by_depth.iter().enumerate() {
            for &i in row {
                node[i] = if depth == 0 {
                    Some(0)
                } else {
                    let parents = &by_depth[depth - 1];
                    let after = parents.partition_point(|&p| boxes[p].x <= boxes[i].x);
                    after
                        .checked_sub(1)
                        .map(|p| parents[p])
                        .filter(|&p| boxes[i].x < boxes[p].x + boxes[p].w)
                        .and_then(|p| node[p])
                        .and_then(|parent| {
                            changes
                                .children
                                .get(&(parent, boxes[i].name.as_str()))
                                .copied()
                        })
                };
            }
        }
    }
    let change_of = |i: usize| -> Option<(u64, u64)> { Some(changes?.figures[node[i]?]) };
    let largest = (0..boxes.len())
        .filter(|&i| node[i] != Some(0))
        .filter_map(change_of)
        .map(|(old, new)| signed(new, old).unsigned_abs())
        .max()
        .unwrap_or(0);
    let share = |n: u64| {
        if total == 0 {
            0.0
        } else {
            100.0 * n as f64 / total as f64
        }
    };
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    for (i, b) in boxes.iter().enumerate() {
        let name =
            &svg[b.title.start..b.title.start + svg[b.title.clone()].rfind(" (").unwrap_or(0)];
        let is_root = depth_of[&b.y] == 0;
        let name = if is_root { "all" } else { name };
        let percent = if is_root {
            "100%".to_owned()
        } else {
            format!("{:.2}%", share(b.w))
        };
        let mut title = format!("{name} ({}, {percent}", amount(b.w, unit));
        if changes.is_some() {
            match change_of(i) {
                Some((old, new)) => {
                    let change = signed(new, old);
                    if change == 0 {
                        title.push_str("; unchanged");
                    } else {
                        title.push_str(&format!(
                            "; {}, {:+.2}% of the total, was {}",
                            signed_amount(change, unit),
                            if total == 0 {
                                0.0
                            } else {
                                100.0 * change as f64 / total as f64
                            },
                            amount(old, unit)
                        ));
                    }
                    let color = change_color(change, largest);
                    edits.push((
                        b.fill.clone(),
                        format!("rgb({},{},{})", color.r, color.g, color.b),
                    ));
                }
                // Not in the tree (cannot happen with inferno's layout): inferno's own tooltip.
                None => continue,
            }
        }
        title.push(')');
        edits.push((b.title.clone(), title));
    }
    edits.sort_by_key(|(range, _)| range.start);
    let mut out = String::with_capacity(svg.len() + svg.len() / 8);
    let mut copied = 0;
    for (range, text) in edits {
        out.push_str(&svg[copied..range.start]);
        out.push_str(&text);
        copied = range.end;
    }
    out.push_str(&svg[copied..]);
    out
}

/// Growth red, shrink blue, no change near-white; the larger the change against the largest of
/// any frame, the deeper. Any change is tinted, so that it never reads as none.
fn change_color(change: i64, largest: u64) -> Color {
    if change == 0 {
        return Color {
            r: 250,
            g: 250,
            b: 250,
        };
    }
    let ratio = (change.unsigned_abs() as f64 / largest.max(1) as f64).min(1.0);
    let c = (230.0 - 130.0 * ratio).round() as u8;
    if change > 0 {
        Color { r: 255, g: c, b: c }
    } else {
        Color { r: c, g: c, b: 255 }
    }
}

/// Why a flamegraph could not be drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlameError {
    /// No site has a non-zero figure for the metric.
    #[error("nothing to draw: no allocations for this metric")]
    NothingToDraw,
    /// The snapshot was sampled, and sampling does not estimate the metric.
    #[error(
        "{0} are not estimated in sampled mode; draw live or total bytes, or profile in exact mode"
    )]
    NotEstimated(&'static str),
    /// The renderer failed to write the SVG.
    #[error("cannot render the flamegraph")]
    Render(#[source] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracealloc_snapshot::{CaptureInfo, Metadata, Site, Stack, ThreadInfo};

    const VEC_RS: &str =
        "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/alloc/src/vec/mod.rs";
    const STRING_RS: &str =
        "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/alloc/src/string.rs";

    /// A request handler: `handle` renders a response into a buffer from `Vec::with_capacity`
    /// and parses the request with `String::push_str`. `figures`: live bytes and blocks of the
    /// two stacks.
    fn handler(figures: [(u64, u64); 2]) -> Snapshot {
        let capture = CaptureInfo::new("frame-pointers", 128, true);
        let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
        snapshot.meta.workspace_dir = Some("/work/app".to_owned());
        let main_rs = "/work/app/src/main.rs";
        snapshot.frames = vec![
            Frame::new("alloc::vec::Vec<T>::with_capacity").at(VEC_RS, Some(524), None),
            Frame::new("app::render_response").at(main_rs, Some(20), None),
            Frame::new("app::handle").at(main_rs, Some(40), None),
            Frame::new("app::main").at(main_rs, Some(50), None),
            Frame::new("app::parse_request").at(main_rs, Some(30), None),
            Frame::new("alloc::string::String::push_str").at(STRING_RS, Some(1093), None),
        ];
        snapshot.stacks = vec![Stack::new(vec![0, 1, 2, 3]), Stack::new(vec![5, 4, 2, 3])];
        snapshot.threads = vec![ThreadInfo::new("main", 1, true)];
        for (stack, (bytes, blocks)) in figures.into_iter().enumerate() {
            let mut site = Site::new(stack as u32, 0);
            site.live_bytes = bytes;
            site.live_blocks = blocks;
            site.total_bytes = bytes * 3;
            site.total_blocks = blocks * 500_000;
            site.peak_bytes = bytes;
            site.peak_blocks = blocks;
            site.temporary_blocks = blocks * 1_000;
            site.reallocs = blocks * 10;
            site.realloc_copied_bytes = bytes / 2;
            snapshot.totals.live_bytes += site.live_bytes;
            snapshot.totals.live_blocks += site.live_blocks;
            snapshot.totals.total_bytes += site.total_bytes;
            snapshot.totals.total_blocks += site.total_blocks;
            snapshot.totals.peak_bytes += site.peak_bytes;
            snapshot.totals.peak_blocks += site.peak_blocks;
            snapshot.sites.push(site);
        }
        snapshot
    }

    fn old() -> Snapshot {
        handler([(368_640, 1), (400_000, 4)])
    }

    fn new() -> Snapshot {
        handler([(10_608_640, 5), (200_000, 2)])
    }

    fn render(new: &Snapshot, old: Option<&Snapshot>, options: &FlameOptions) -> String {
        let mut svg = Vec::new();
        flamegraph(new, old, options, &mut svg).unwrap();
        String::from_utf8(svg).unwrap()
    }

    /// Each box's tooltip (unescaped) and fill, by the name its tooltip starts with.
    fn boxes(svg: &str) -> Vec<(String, String)> {
        frame_boxes(svg)
            .into_iter()
            .map(|b| (unescape(&svg[b.title]), svg[b.fill].to_owned()))
            .collect()
    }

    fn tooltip_of<'b>(boxes: &'b [(String, String)], name: &str) -> (&'b str, &'b str) {
        let found: Vec<_> = boxes
            .iter()
            .filter(|(title, _)| title.starts_with(&format!("{name} (")))
            .collect();
        assert_eq!(found.len(), 1, "one box of {name} in {boxes:#?}");
        (found[0].0.as_str(), found[0].1.as_str())
    }

    /// The user's frame that called `Vec::with_capacity` shows its own growth, in red as deep as
    /// the callee's, and so do its callers; the shrinking parser is blue, pale for its small
    /// change; tooltips say each change in bytes.
    #[test]
    fn each_frame_of_a_differential_flamegraph_shows_its_own_change() {
        let svg = render(&new(), Some(&old()), &FlameOptions::default());
        let boxes = boxes(&svg);
        assert_eq!(
            tooltip_of(&boxes, "app::render_response"),
            (
                "app::render_response (src/main.rs:20) (10.12 MiB, 98.15%; +9.77 MiB, +94.74% of \
                 the total, was 360 KiB)",
                "rgb(255,100,100)"
            )
        );
        assert_eq!(
            tooltip_of(&boxes, "alloc::vec::Vec<T>::with_capacity"),
            (
                "alloc::vec::Vec<T>::with_capacity (alloc/src/vec/mod.rs:524) (10.12 MiB, 98.15%; \
                 +9.77 MiB, +94.74% of the total, was 360 KiB)",
                "rgb(255,100,100)"
            )
        );
        // 10,040,000 of the largest change, 10,240,000: 230 - 130 x 0.98 = 102.5.
        assert_eq!(
            tooltip_of(&boxes, "app::handle"),
            (
                "app::handle (src/main.rs:40) (10.31 MiB, 100.00%; +9.57 MiB, +92.89% of the \
                 total, was 750.62 KiB)",
                "rgb(255,103,103)"
            )
        );
        // 200,000 of 10,240,000: 230 - 130 x 0.0195 = 227.5.
        assert_eq!(
            tooltip_of(&boxes, "app::parse_request"),
            (
                "app::parse_request (src/main.rs:30) (195.31 KiB, 1.85%; -195.31 KiB, -1.85% of \
                 the total, was 390.62 KiB)",
                "rgb(227,227,255)"
            )
        );
        assert_eq!(
            tooltip_of(&boxes, "all"),
            (
                "all (10.31 MiB, 100%; +9.57 MiB, +92.89% of the total, was 750.62 KiB)",
                "rgb(255,103,103)"
            )
        );
        assert!(svg.contains(
            ">live bytes 750.62 KiB \u{2192} 10.31 MiB (+9.57 MiB); each frame by its own \
             change: red grew, blue shrank: app<"
        ));
    }

    /// Reversed stacks (callers above the allocating frame) and an icicle graph: each box is
    /// still matched to its own frame and change.
    #[test]
    fn reversed_and_inverted_differential_flamegraphs_match_their_boxes() {
        let options = FlameOptions {
            reverse: true,
            inverted: true,
            ..FlameOptions::default()
        };
        let svg = render(&new(), Some(&old()), &options);
        let boxes = boxes(&svg);
        // Reversed, `handle` is twice a box: above `render_response` and above `parse_request`.
        let handles: Vec<&(String, String)> = boxes
            .iter()
            .filter(|(title, _)| title.starts_with("app::handle ("))
            .collect();
        assert_eq!(
            handles,
            [
                &(
                    "app::handle (src/main.rs:40) (195.31 KiB, 1.85%; -195.31 KiB, -1.85% of the \
                     total, was 390.62 KiB)"
                        .to_owned(),
                    "rgb(227,227,255)".to_owned()
                ),
                &(
                    "app::handle (src/main.rs:40) (10.12 MiB, 98.15%; +9.77 MiB, +94.74% of the \
                     total, was 360 KiB)"
                        .to_owned(),
                    "rgb(255,100,100)".to_owned()
                ),
            ]
        );
    }

    /// Tooltips in human units (bytes as KiB and MiB, blocks with separators), and subtitles that
    /// say what each metric's graph shows, in its own total.
    #[test]
    fn tooltips_and_subtitles_say_what_each_metric_shows() {
        let snapshot = new();
        let cases = [
            (
                Metric::LiveBytes,
                "app::render_response (src/main.rs:20) (10.12 MiB, 98.15%)",
                "all (10.31 MiB, 100%)",
                "live 10.31 MiB in 7 blocks",
            ),
            (
                Metric::LiveBlocks,
                "app::render_response (src/main.rs:20) (5 blocks, 71.43%)",
                "all (7 blocks, 100%)",
                "7 blocks live (10.31 MiB)",
            ),
            (
                Metric::TotalBytes,
                "app::render_response (src/main.rs:20) (30.35 MiB, 98.15%)",
                "all (30.92 MiB, 100%)",
                "total allocated 30.92 MiB in 3,500,000 blocks",
            ),
            (
                Metric::TotalBlocks,
                "app::render_response (src/main.rs:20) (2,500,000 blocks, 71.43%)",
                "all (3,500,000 blocks, 100%)",
                "3,500,000 blocks allocated (30.92 MiB in all)",
            ),
            (
                Metric::PeakBytes,
                "app::render_response (src/main.rs:20) (10.12 MiB, 98.15%)",
                "all (10.31 MiB, 100%)",
                "live at the peak 10.31 MiB in 7 blocks",
            ),
            (
                Metric::TemporaryBlocks,
                "app::render_response (src/main.rs:20) (5,000 blocks, 71.43%)",
                "all (7,000 blocks, 100%)",
                "7,000 blocks temporary (freed by their thread before its next allocation) of \
                 3,500,000 allocated",
            ),
            (
                Metric::ReallocCopiedBytes,
                "app::render_response (src/main.rs:20) (5.06 MiB, 98.15%)",
                "all (5.15 MiB, 100%)",
                "copied by reallocs 5.15 MiB (70 reallocs in all)",
            ),
        ];
        for (metric, user, all, subtitle) in cases {
            let options = FlameOptions {
                metric,
                ..FlameOptions::default()
            };
            let svg = render(&snapshot, None, &options);
            let boxes = boxes(&svg);
            assert_eq!(
                tooltip_of(&boxes, "app::render_response").0,
                user,
                "{metric:?}"
            );
            assert_eq!(tooltip_of(&boxes, "all").0, all, "{metric:?}");
            assert!(
                svg.contains(&format!(">{subtitle}: app<")),
                "{metric:?}: {subtitle}\n{svg}"
            );
        }
    }
}
