//! Flamegraphs of a snapshot (or of the change between two) as interactive SVG, via inferno.
//!
//! Boxes are colored by where their code comes from (the program's own code green, dependencies
//! blue, the standard library orange), labels start with the function name (a narrow box cuts the
//! location, not the name), and the subtitle gives the metric, the totals and the command line.

use std::io::Write;

use inferno::flamegraph::color::{Color, PaletteMap};
use inferno::flamegraph::{self, Direction, Palette, TextTruncateDirection, color::BasicPalette};
use tracealloc_snapshot::{FoldOptions, Frame, Metric, Snapshot, human_bytes};

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

/// Renders `snapshot` as an SVG flamegraph; with `older`, a differential one (growth red, shrink
/// blue, widths from `snapshot`).
pub fn flamegraph(
    snapshot: &Snapshot,
    older: Option<&Snapshot>,
    options: &FlameOptions,
    out: &mut dyn Write,
) -> Result<(), FlameError> {
    let sampled = snapshot.meta.capture.sampling_bytes > 0
        || older.is_some_and(|o| o.meta.capture.sampling_bytes > 0);
    if sampled && !crate::tables::estimated_when_sampled(options.metric) {
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
    let t = &snapshot.totals;
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
    opts.subtitle = Some(format!(
        "live {} in {} blocks, total {} in {} blocks, peak {}{sampling}: {}",
        human_bytes(t.live_bytes),
        t.live_blocks,
        human_bytes(t.total_bytes),
        t.total_blocks,
        human_bytes(t.peak_bytes),
        snapshot.meta.command.join(" ")
    ));
    opts.count_name = options.metric.unit().to_owned();
    opts.colors = Palette::Basic(BasicPalette::Mem);
    if older.is_none() {
        opts.palette_map = Some(&mut palette);
    }
    opts.reverse_stack_order = options.reverse;
    if options.inverted {
        opts.direction = Direction::Inverted;
    }
    opts.text_truncate_direction = TextTruncateDirection::Right;
    crate::progress::with_spinner(format!("rendering {} stacks", lines.len()), || {
        flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), out)
    })
    .map_err(FlameError::Render)
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
