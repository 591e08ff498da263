//! Memory over time. One snapshot: its timeline as a chart (live heap and resident memory, the
//! peak marked) or as a table. Several snapshots, such as a running service's periodic dumps: the
//! top sites' live bytes across them, as stacked bands or as a table.
//!
//! Charts are self-contained SVG (no script, nothing loaded), with a tooltip on every band.

use std::fmt::Write as _;
use std::io::{self, Write};

use tracealloc_snapshot::{
    GroupBy, Snapshot, TimePoint, human_bytes, human_bytes_signed, human_count,
};

use crate::tables::{Fit, write_rows};

/// What the timeline views show.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TimelineOptions {
    /// Sites drawn one by one across several snapshots; the rest make one "other" band.
    pub n: usize,
    /// How sites are grouped across several snapshots.
    pub by: GroupBy,
    /// The chart's title (default: "Memory over time" and the program's command line).
    pub title: Option<String>,
    /// Rows of the one-snapshot table (points are picked evenly in time, the peak always).
    pub rows: usize,
    /// Colors in tables.
    pub color: bool,
    /// The terminal's width (see [`crate::ReportOptions::width`]): the bands table shortens its
    /// keys to fit.
    pub width: Option<usize>,
}

impl Default for TimelineOptions {
    fn default() -> Self {
        TimelineOptions {
            n: 8,
            by: GroupBy::Line,
            title: None,
            rows: 24,
            color: false,
            width: None,
        }
    }
}

/// Why a timeline could not be shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TimelineError {
    /// The snapshot was written by a tracealloc that kept no timeline.
    #[error("{0} has no timeline: it was written by an older tracealloc; take a new snapshot")]
    NoTimeline(String),
    /// Several snapshots were expected.
    #[error("give at least one snapshot")]
    NoSnapshots,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The point of the peak: the highest live bytes (the latest of equal ones).
fn peak_of(points: &[TimePoint]) -> Option<&TimePoint> {
    points.iter().rev().max_by_key(|p| p.live_bytes)
}

/// Whether `snapshot` (read from `name`) has a timeline to show.
pub fn check_timeline(snapshot: &Snapshot, name: &str) -> Result<(), TimelineError> {
    if snapshot.timeline.is_empty() {
        return Err(TimelineError::NoTimeline(name.to_owned()));
    }
    Ok(())
}

/// Seconds or milliseconds, as the span calls for.
fn time_label(ms: u64, span_ms: u64) -> String {
    if span_ms >= 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

/// One snapshot's timeline as a table: `rows` points evenly spread in time, the peak among them.
pub fn timeline_table(
    snapshot: &Snapshot,
    name: &str,
    options: &TimelineOptions,
    out: &mut dyn Write,
) -> Result<(), TimelineError> {
    check_timeline(snapshot, name)?;
    let points = &snapshot.timeline;
    let span = points.last().map_or(0, |p| p.t_ms);
    let peak = peak_of(points).copied();
    let mut picked: Vec<TimePoint> = Vec::new();
    let rows = options.rows.max(2);
    for i in 0..rows {
        let t = span * i as u64 / (rows as u64 - 1);
        let at = points.partition_point(|p| p.t_ms < t).min(points.len() - 1);
        if picked.last() != Some(&points[at]) {
            picked.push(points[at]);
        }
    }
    if let Some(peak) = peak
        && !picked.contains(&peak)
    {
        let at = picked.partition_point(|p| p.t_ms <= peak.t_ms);
        picked.insert(at, peak);
    }
    let table_rows = picked.iter().map(|p| {
        let cells = vec![
            time_label(p.t_ms, span),
            human_bytes(p.live_bytes),
            human_count(p.live_blocks),
            human_bytes(p.rss_bytes),
            if Some(*p) == peak { "peak" } else { "" }.to_owned(),
        ];
        (cells, "")
    });
    write_rows(
        out,
        &["time", "live", "blocks", "resident", ""],
        table_rows,
        options.color,
        false,
        Fit::default(),
    )?;
    writeln!(
        out,
        "{} points over {}; `-o FILE.svg` draws them.",
        points.len(),
        time_label(span, span)
    )?;
    Ok(())
}

/// A chart's frame: the plot area and the scales.
struct Plot {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    max_x: f64,
    max_y: f64,
}

impl Plot {
    const WIDTH: f64 = 960.0;
    /// Height of the plot area; the legend adds a row each below it.
    const PLOT_HEIGHT: f64 = 300.0;

    fn new(max_x: f64, max_y: f64, legend_rows: usize) -> Plot {
        let _ = legend_rows;
        Plot {
            left: 90.0,
            top: 64.0,
            width: Self::WIDTH - 90.0 - 24.0,
            height: Self::PLOT_HEIGHT,
            max_x: max_x.max(1.0),
            max_y: max_y.max(1.0) * 1.08,
        }
    }

    /// The whole image's height with `legend_rows` rows of legend.
    fn image_height(&self, legend_rows: usize) -> f64 {
        self.bottom() + 40.0 + 18.0 * legend_rows as f64
    }

    fn x(&self, value: f64) -> f64 {
        self.left + value / self.max_x * self.width
    }

    fn y(&self, value: f64) -> f64 {
        self.top + self.height - value / self.max_y * self.height
    }

    fn bottom(&self) -> f64 {
        self.top + self.height
    }
}

/// About `count` round tick values from 0 to `max` (steps of 1, 2 or 5 times a power of ten, or of
/// two for byte sizes).
fn ticks(max: f64, count: usize, bytes: bool) -> Vec<f64> {
    let raw = max / count.max(1) as f64;
    let step = if bytes && raw >= 1024.0 {
        // Powers of two times 1, 2 or 5 read well as KiB, MiB and GiB.
        let unit = 1024f64.powf((raw.log2() / 10.0).floor());
        let scaled = raw / unit;
        unit * [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1024.0]
            .into_iter()
            .find(|&s| s >= scaled)
            .unwrap_or(1024.0)
    } else {
        let power = 10f64.powf(raw.max(1e-9).log10().floor());
        power
            * [1.0, 2.0, 5.0, 10.0]
                .into_iter()
                .find(|&s| s * power >= raw)
                .unwrap_or(10.0)
    };
    (0..)
        .map(|i| i as f64 * step)
        .take_while(|&v| v <= max)
        .collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn svg_start(svg: &mut String, height: f64, title: &str, subtitle: &str) {
    let _ = write!(
        svg,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="Verdana, sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{cx}" y="24" font-size="17" text-anchor="middle">{title}</text>
<text x="{cx}" y="44" fill="#555555" text-anchor="middle">{subtitle}</text>
"##,
        w = Plot::WIDTH,
        h = height,
        cx = Plot::WIDTH / 2.0,
        title = escape(title),
        subtitle = escape(subtitle),
    );
}

/// Axes, grid lines and tick labels; each of `x_ticks` is a tick of the x axis and its label (none
/// when empty).
fn axes(svg: &mut String, plot: &Plot, x_ticks: &[(f64, String)]) {
    for value in ticks(plot.max_y / 1.08, 6, true) {
        let y = plot.y(value);
        let _ = writeln!(
            svg,
            r##"<line x1="{l}" x2="{r}" y1="{y:.1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{tx}" y="{ty:.1}" text-anchor="end" fill="#333333">{label}</text>"##,
            l = plot.left,
            r = plot.left + plot.width,
            tx = plot.left - 8.0,
            ty = y + 4.0,
            label = human_bytes(value as u64),
        );
    }
    for (value, label) in x_ticks {
        let x = plot.x(*value);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{b}" y2="{b2}" stroke="#888888"/>"##,
            b = plot.bottom(),
            b2 = plot.bottom() + 5.0,
        );
        if !label.is_empty() {
            let _ = write!(
                svg,
                r##"<text x="{x:.1}" y="{ty}" text-anchor="middle" fill="#333333">{label}</text>"##,
                ty = plot.bottom() + 19.0,
                label = escape(label),
            );
        }
        svg.push('\n');
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{l}" x2="{r}" y1="{b}" y2="{b}" stroke="#444444"/><line x1="{l}" x2="{l}" y1="{t}" y2="{b}" stroke="#444444"/>"##,
        l = plot.left,
        r = plot.left + plot.width,
        t = plot.top,
        b = plot.bottom(),
    );
}

/// One legend entry per row below the plot.
fn legend(svg: &mut String, plot: &Plot, entries: &[(String, &str, bool)]) {
    for (i, (label, color, dashed)) in entries.iter().enumerate() {
        let y = plot.bottom() + 40.0 + 18.0 * i as f64;
        let dash = if *dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            r##"<line x1="{x}" x2="{x2}" y1="{y}" y2="{y}" stroke="{color}" stroke-width="6"{dash}/><text x="{tx}" y="{ty}" fill="#222222">{label}</text>"##,
            x = plot.left,
            x2 = plot.left + 24.0,
            tx = plot.left + 32.0,
            ty = y + 4.0,
            label = escape(label),
        );
    }
}

/// One snapshot's timeline as an SVG chart: live heap bytes as an area, resident memory as a
/// dashed line, the peak marked with its size and time.
pub fn timeline_svg(
    snapshot: &Snapshot,
    name: &str,
    options: &TimelineOptions,
    out: &mut dyn Write,
) -> Result<(), TimelineError> {
    check_timeline(snapshot, name)?;
    let points = &snapshot.timeline;
    let span = points.last().map_or(0, |p| p.t_ms);
    let max_live = points.iter().map(|p| p.live_bytes).max().unwrap_or(0);
    let max_rss = points.iter().map(|p| p.rss_bytes).max().unwrap_or(0);
    let plot = Plot::new(span as f64, max_live.max(max_rss) as f64, 2);
    let title = options.title.clone().unwrap_or_else(|| {
        format!(
            "Memory over time: {}",
            snapshot.meta.command.first().map_or("", String::as_str)
        )
    });
    let peak = peak_of(points).copied().unwrap_or_default();
    let subtitle = format!(
        "peak {} at {}; live {} in {} blocks at the end",
        human_bytes(peak.live_bytes),
        time_label(peak.t_ms, span),
        human_bytes(snapshot.totals.live_bytes),
        snapshot.totals.live_blocks
    );
    let mut svg = String::new();
    svg_start(&mut svg, plot.image_height(2), &title, &subtitle);
    let x_ticks: Vec<(f64, String)> = ticks(span as f64, 8, false)
        .into_iter()
        .map(|t| (t, time_label(t as u64, span)))
        .collect();
    axes(&mut svg, &plot, &x_ticks);

    // The live heap as a step area: each point's figure holds until the next.
    let mut area = format!("{:.1},{:.1}", plot.x(0.0), plot.bottom());
    let mut previous_y = plot.bottom();
    for p in points {
        let x = plot.x(p.t_ms as f64);
        let y = plot.y(p.live_bytes as f64);
        let _ = write!(area, " {x:.1},{previous_y:.1} {x:.1},{y:.1}");
        previous_y = y;
    }
    let _ = write!(
        area,
        " {:.1},{previous_y:.1} {:.1},{:.1}",
        plot.x(span as f64),
        plot.x(span as f64),
        plot.bottom()
    );
    let _ = writeln!(
        svg,
        r##"<polygon points="{area}" fill="#f4a261" fill-opacity="0.55" stroke="#e76f51" stroke-width="1.2"><title>live heap bytes</title></polygon>"##
    );
    if max_rss > 0 {
        // Steps too: resident memory is known at the points only.
        let mut rss: Vec<String> = Vec::new();
        let mut previous: Option<f64> = None;
        for p in points.iter().filter(|p| p.rss_bytes > 0) {
            let (x, y) = (plot.x(p.t_ms as f64), plot.y(p.rss_bytes as f64));
            if let Some(previous) = previous {
                rss.push(format!("{x:.1},{previous:.1}"));
            }
            rss.push(format!("{x:.1},{y:.1}"));
            previous = Some(y);
        }
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#264653" stroke-width="1.5" stroke-dasharray="6 4"><title>resident memory</title></polyline>"##,
            rss.join(" ")
        );
    }
    let (px, py) = (plot.x(peak.t_ms as f64), plot.y(peak.live_bytes as f64));
    let anchor = if px > plot.left + plot.width * 0.75 {
        "end"
    } else {
        "start"
    };
    let _ = writeln!(
        svg,
        r##"<circle cx="{px:.1}" cy="{py:.1}" r="5" fill="#d62828"><title>peak: {label}</title></circle><text x="{tx:.1}" y="{ty:.1}" text-anchor="{anchor}" fill="#d62828" font-weight="bold">peak {label}</text>"##,
        label = escape(&format!(
            "{} in {} blocks at {}",
            human_bytes(peak.live_bytes),
            peak.live_blocks,
            time_label(peak.t_ms, span)
        )),
        tx = if anchor == "end" { px - 9.0 } else { px + 9.0 },
        ty = (py - 8.0).max(plot.top + 12.0),
    );
    legend(
        &mut svg,
        &plot,
        &[
            ("live heap bytes".to_owned(), "#f4a261", false),
            ("resident memory (RSS)".to_owned(), "#264653", true),
        ],
    );
    svg.push_str("</svg>\n");
    out.write_all(svg.as_bytes())?;
    Ok(())
}

/// Live bytes per group in each snapshot: the top `n` groups (by their highest live bytes in any
/// snapshot), each with one figure per snapshot, then the rest summed.
struct Bands {
    keys: Vec<String>,
    /// `values[band][snapshot]`; the last band is "other".
    values: Vec<Vec<u64>>,
}

fn bands(
    snapshots: &[(String, &Snapshot)],
    options: &TimelineOptions,
) -> Result<Bands, TimelineError> {
    if snapshots.is_empty() {
        return Err(TimelineError::NoSnapshots);
    }
    let per_snapshot: Vec<std::collections::HashMap<String, u64>> = snapshots
        .iter()
        .map(|(_, s)| {
            let mut live = std::collections::HashMap::new();
            for stat in s.statistics(options.by) {
                *live
                    .entry(s.short_paths(&stat.key).into_owned())
                    .or_default() += stat.live_bytes;
            }
            live
        })
        .collect();
    let mut highest: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for map in &per_snapshot {
        for (key, &live) in map {
            let entry = highest.entry(key).or_default();
            *entry = (*entry).max(live);
        }
    }
    let mut ranked: Vec<(&str, u64)> = highest.into_iter().filter(|(_, v)| *v > 0).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let keys: Vec<String> = ranked
        .iter()
        .take(options.n)
        .map(|(k, _)| (*k).to_owned())
        .collect();
    let mut values: Vec<Vec<u64>> = keys
        .iter()
        .map(|key| {
            per_snapshot
                .iter()
                .map(|m| m.get(key).copied().unwrap_or(0))
                .collect()
        })
        .collect();
    let other: Vec<u64> = per_snapshot
        .iter()
        .enumerate()
        .map(|(i, map)| {
            let shown: u64 = values.iter().map(|v| v[i]).sum();
            map.values().sum::<u64>() - shown
        })
        .collect();
    values.push(other);
    Ok(Bands { keys, values })
}

/// What each of several snapshots is called in tables and charts: the time it was taken relative to
/// the first (`+0.0s`, `+1.2s`; `+12m05s` over longer spans), when every snapshot knows its time
/// (`meta.time_unix_ms`) and no two were taken in the same millisecond; else its number (`#1`).
fn snapshot_labels(snapshots: &[(String, &Snapshot)]) -> Vec<String> {
    let times: Vec<u64> = snapshots.iter().map(|(_, s)| s.meta.time_unix_ms).collect();
    let numbers = || (1..=times.len()).map(|i| format!("#{i}")).collect();
    let mut sorted = times.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if times.contains(&0) || sorted.len() != times.len() {
        return numbers();
    }
    let offsets: Vec<i128> = times
        .iter()
        .map(|&t| t as i128 - times[0] as i128)
        .collect();
    let span = offsets.iter().map(|o| o.unsigned_abs()).max().unwrap_or(0);
    let distinct = |labels: &Vec<String>| {
        let mut sorted = labels.clone();
        sorted.sort_unstable();
        sorted.dedup();
        sorted.len() == labels.len()
    };
    if span >= 600_000 {
        let labels: Vec<String> = offsets.iter().map(|&o| minutes_label(o)).collect();
        if distinct(&labels) {
            return labels;
        }
    }
    // Seconds, with as many decimals as it takes to tell the snapshots apart (milliseconds do).
    (1..=3)
        .map(|decimals| {
            offsets
                .iter()
                .map(|&o| {
                    let sign = if o < 0 { '-' } else { '+' };
                    format!("{sign}{:.decimals$}s", o.unsigned_abs() as f64 / 1000.0)
                })
                .collect::<Vec<String>>()
        })
        .find(distinct)
        .unwrap_or_else(numbers)
}

/// `+12m05s`, `+1h02m03s`: an offset of `ms` milliseconds, to the second.
fn minutes_label(ms: i128) -> String {
    let sign = if ms < 0 { '-' } else { '+' };
    let seconds = (ms.unsigned_abs() + 500) / 1000;
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{sign}{hours}h{minutes:02}m{seconds:02}s")
    } else {
        format!("{sign}{minutes}m{seconds:02}s")
    }
}

/// Several snapshots (oldest first): each top group's live bytes across them, with the change
/// from the first to the last. Each snapshot's column is labeled with its time relative to the
/// first (`+1.2s`; its number, `#2`, when the times are unknown or equal), and the file names
/// follow the table.
pub fn growth_table(
    snapshots: &[(String, &Snapshot)],
    options: &TimelineOptions,
    out: &mut dyn Write,
) -> Result<(), TimelineError> {
    let bands = bands(snapshots, options)?;
    let labels = snapshot_labels(snapshots);
    let mut header: Vec<String> = vec!["key".to_owned()];
    header.extend(labels.iter().cloned());
    header.push("change".to_owned());
    let keys = bands.keys.iter().cloned().chain(["(other)".to_owned()]);
    let rows: Vec<(Vec<String>, &str)> = keys
        .zip(&bands.values)
        .map(|(key, values)| {
            let mut cells = vec![key];
            cells.extend(values.iter().map(|&v| human_bytes(v)));
            let change = *values.last().unwrap_or(&0) as i64 - *values.first().unwrap_or(&0) as i64;
            cells.push(human_bytes_signed(change));
            (cells, "")
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let fit = Fit {
        shorten: Some(0),
        ..Fit::new(options.width, &[])
    };
    write_rows(out, &header, rows.into_iter(), options.color, true, fit)?;
    for (label, (name, _)) in labels.iter().zip(snapshots) {
        writeln!(out, "{label}: {name}")?;
    }
    Ok(())
}

/// Band colors, then gray for "other".
const PALETTE: [&str; 10] = [
    "#e76f51", "#2a9d8f", "#e9c46a", "#264653", "#f4a261", "#8ab17d", "#b56576", "#6d597a",
    "#457b9d", "#e63946",
];

/// Several snapshots (oldest first) as stacked bands: each top group's live bytes across them,
/// each snapshot labeled with its time relative to the first (as in [`growth_table`]).
pub fn growth_svg(
    snapshots: &[(String, &Snapshot)],
    options: &TimelineOptions,
    out: &mut dyn Write,
) -> Result<(), TimelineError> {
    let bands = bands(snapshots, options)?;
    let count = snapshots.len();
    let totals: Vec<u64> = (0..count)
        .map(|i| bands.values.iter().map(|v| v[i]).sum())
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0);
    let plot = Plot::new((count.max(2) - 1) as f64, max as f64, bands.values.len());
    let title = options.title.clone().unwrap_or_else(|| {
        format!(
            "Live memory across {count} snapshots: {}",
            snapshots[0]
                .1
                .meta
                .command
                .first()
                .map_or("", String::as_str)
        )
    });
    let subtitle = format!(
        "top {} by {}, stacked; {} at the first, {} at the last",
        bands.keys.len(),
        format!("{:?}", options.by).to_lowercase(),
        human_bytes(totals[0]),
        human_bytes(totals[count - 1])
    );
    let mut svg = String::new();
    svg_start(
        &mut svg,
        plot.image_height(bands.values.len()),
        &title,
        &subtitle,
    );
    let labels = snapshot_labels(snapshots);
    // A tick per snapshot; a label on every one of them while they fit (about 12), else on every
    // few.
    let every = count.div_ceil(12).max(1);
    let x_ticks: Vec<(f64, String)> = labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let shown = if i % every == 0 {
                label.clone()
            } else {
                String::new()
            };
            (i as f64, shown)
        })
        .collect();
    axes(&mut svg, &plot, &x_ticks);
    let x_of = |i: usize| {
        if count == 1 {
            plot.x(0.5)
        } else {
            plot.x(i as f64)
        }
    };
    let mut below = vec![0u64; count];
    let mut entries = Vec::new();
    for (band, values) in bands.values.iter().enumerate() {
        let is_other = band == bands.keys.len();
        let label = if is_other {
            "(other)".to_owned()
        } else {
            bands.keys[band].clone()
        };
        let color = if is_other {
            "#bbbbbb"
        } else {
            PALETTE[band % PALETTE.len()]
        };
        let top: Vec<u64> = below.iter().zip(values).map(|(b, v)| b + v).collect();
        let mut outline: Vec<String> = (0..count)
            .map(|i| format!("{:.1},{:.1}", x_of(i), plot.y(top[i] as f64)))
            .collect();
        outline.extend(
            (0..count)
                .rev()
                .map(|i| format!("{:.1},{:.1}", x_of(i), plot.y(below[i] as f64))),
        );
        let tooltip: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{}: {}", labels[i], human_bytes(*v)))
            .collect();
        let _ = writeln!(
            svg,
            r##"<polygon points="{}" fill="{color}" fill-opacity="0.85" stroke="#ffffff" stroke-width="0.5"><title>{}</title></polygon>"##,
            outline.join(" "),
            escape(&format!("{label}\n{}", tooltip.join(", "))),
        );
        entries.push((label, color, false));
        below = top;
    }
    legend(&mut svg, &plot, &entries);
    svg.push_str("</svg>\n");
    out.write_all(svg.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels_at(times: &[u64]) -> Vec<String> {
        let snapshots: Vec<Snapshot> = times
            .iter()
            .map(|&t| {
                let mut s = Snapshot::empty();
                s.meta.time_unix_ms = t;
                s
            })
            .collect();
        let named: Vec<(String, &Snapshot)> = snapshots
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("heap-{i}.json"), s))
            .collect();
        snapshot_labels(&named)
    }

    /// Several snapshots are labeled by their time since the first, precise enough to tell them
    /// apart, in minutes over long spans; by number when a time is unknown or two are equal.
    #[test]
    fn snapshots_are_labeled_by_their_time_since_the_first() {
        let t0 = 1_700_000_000_000;
        assert_eq!(
            labels_at(&[t0, t0 + 1200, t0 + 2400]),
            ["+0.0s", "+1.2s", "+2.4s"]
        );
        assert_eq!(
            labels_at(&[t0, t0 + 10, t0 + 20]),
            ["+0.00s", "+0.01s", "+0.02s"]
        );
        assert_eq!(
            labels_at(&[t0, t0 + 1, t0 + 2]),
            ["+0.000s", "+0.001s", "+0.002s"]
        );
        assert_eq!(
            labels_at(&[t0, t0 + 60_000, t0 + 3_723_000]),
            ["+0m00s", "+1m00s", "+1h02m03s"]
        );
        assert_eq!(labels_at(&[t0, t0 - 1500]), ["+0.0s", "-1.5s"]);
        assert_eq!(labels_at(&[t0, t0, t0 + 5]), ["#1", "#2", "#3"]);
        assert_eq!(labels_at(&[0, t0]), ["#1", "#2"]);
    }
}
