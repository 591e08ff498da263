//! Renders tracealloc snapshots for people and scripts: top-N tables, diffs, leak and thread
//! reports, metadata, and flamegraphs (through inferno). Renderers take `impl Write`; the CLI is a
//! thin layer over these functions.

#![forbid(unsafe_code)]

mod dhat;
mod flame;
mod leaks;
mod live;
mod progress;
mod report;
mod speedscope;
mod tables;
mod timeline;

pub use dhat::dhat;
pub use flame::{FlameError, FlameOptions, flamegraph};
pub use leaks::leaks;
pub use live::{LiveEnd, LiveError, LiveOptions, live, live_stats};
pub use progress::{load_with_progress, with_spinner};
pub use report::{HtmlOptions, html_report};
pub use speedscope::speedscope;
pub use tables::{Format, ReportOptions, diff, info, terminal_width, threads, top};
pub use timeline::{
    TimelineError, TimelineOptions, check_timeline, growth_svg, growth_table, timeline_svg,
    timeline_table,
};
pub use tracealloc_snapshot::pprof::pprof;
pub use tracealloc_snapshot::{SaveError as OutputError, write_atomically};
