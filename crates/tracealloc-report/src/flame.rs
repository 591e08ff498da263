//! Flamegraphs of a snapshot (or of the change between two) as interactive SVG, via inferno.

use std::io::Write;

use inferno::flamegraph::{self, Palette, color::BasicPalette};
use tracealloc_snapshot::{FoldOptions, Metric, Snapshot};

/// How a flamegraph is drawn.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct FlameOptions {
    pub metric: Metric,
    /// Thread names as root frames.
    pub by_thread: bool,
    /// Reversed stacks: allocation sites at the root, their callers above.
    pub inverted: bool,
    /// Every frame, std's start-up included (see [`FoldOptions::full_stacks`]).
    pub full_stacks: bool,
    /// The title; a default naming the metric when `None`.
    pub title: Option<String>,
}

/// Renders `snapshot` as an SVG flamegraph; with `older`, a differential one (growth red, shrink
/// blue, widths from `snapshot`).
pub fn flamegraph(
    snapshot: &Snapshot,
    older: Option<&Snapshot>,
    options: &FlameOptions,
    out: &mut dyn Write,
) -> Result<(), String> {
    let mut fold = FoldOptions::default();
    fold.metric = options.metric;
    fold.by_thread = options.by_thread;
    fold.full_stacks = options.full_stacks;
    let lines = match older {
        Some(old) => snapshot.folded_diff(old, &fold),
        None => snapshot.folded(&fold),
    };
    if lines.is_empty() {
        return Err("nothing to draw: no allocations for this metric".to_owned());
    }
    let what = match options.metric {
        Metric::LiveBytes => "live bytes",
        Metric::TotalBytes => "total bytes allocated",
        Metric::LiveBlocks => "live blocks",
        Metric::TotalBlocks => "total blocks allocated",
    };
    let mut opts = flamegraph::Options::default();
    opts.title = options.title.clone().unwrap_or_else(|| match older {
        Some(_) => format!("tracealloc: change of {what}"),
        None => format!("tracealloc: {what}"),
    });
    opts.count_name = options.metric.unit().to_owned();
    opts.colors = Palette::Basic(BasicPalette::Mem);
    opts.reverse_stack_order = options.inverted;
    crate::progress::with_spinner(format!("rendering {} stacks", lines.len()), || {
        flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), out)
    })
    .map_err(|e| e.to_string())
}
