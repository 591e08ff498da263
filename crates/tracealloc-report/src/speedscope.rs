//! speedscope's file format (<https://www.speedscope.app/file-format-schema.json>): "sampled"
//! profiles whose samples are the snapshot's stacks (root first), weighted by a metric; one
//! profile for the process, or one per thread.

use std::collections::HashMap;
use std::io::{self, Write};

use serde::Serialize;
use tracealloc_snapshot::{FoldOptions, Metric, Snapshot, human_bytes};

#[derive(Serialize)]
struct File<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    shared: Shared,
    profiles: Vec<Profile>,
    name: String,
    #[serde(rename = "activeProfileIndex")]
    active_profile_index: usize,
    exporter: &'a str,
}

#[derive(Serialize)]
struct Shared {
    frames: Vec<Frame>,
}

#[derive(Serialize)]
struct Frame {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
}

#[derive(Serialize)]
struct Profile {
    #[serde(rename = "type")]
    kind: &'static str,
    name: String,
    unit: &'static str,
    #[serde(rename = "startValue")]
    start_value: u64,
    #[serde(rename = "endValue")]
    end_value: u64,
    samples: Vec<Vec<usize>>,
    weights: Vec<u64>,
}

/// Writes `snapshot` in speedscope's format: `options.metric` weighs the stacks,
/// `options.by_thread` makes one profile per thread, `options.full_stacks` keeps every frame and
/// `options.full_paths` the full source paths.
pub fn speedscope(
    snapshot: &Snapshot,
    options: &FoldOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut frames = Vec::new();
    let mut frame_index: HashMap<u32, usize> = HashMap::new();
    let mut profiles: Vec<(u32, Profile)> = Vec::new();
    let unit = match options.metric {
        Metric::LiveBytes | Metric::TotalBytes | Metric::PeakBytes | Metric::ReallocCopiedBytes => {
            "bytes"
        }
        Metric::LiveBlocks | Metric::TotalBlocks | Metric::TemporaryBlocks => "none",
    };
    let new_profile = |name: String| Profile {
        kind: "sampled",
        name,
        unit,
        start_value: 0,
        end_value: 0,
        samples: Vec::new(),
        weights: Vec::new(),
    };
    let readable: Vec<Vec<u32>> = snapshot
        .stacks
        .iter()
        .map(|stack| snapshot.readable_frames(stack, options.full_stacks))
        .collect();
    for site in &snapshot.sites {
        let weight = options.metric.of(site);
        if weight == 0 {
            continue;
        }
        let key = if options.by_thread { site.thread } else { 0 };
        let at = match profiles.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                let name = if options.by_thread {
                    snapshot.threads[site.thread as usize].name.clone()
                } else {
                    format!(
                        "{} ({})",
                        snapshot.meta.command.join(" "),
                        options.metric.describe()
                    )
                };
                // A sampled snapshot's weights are estimates: the name says how far off they
                // may be, where speedscope shows it.
                let name = match snapshot.meta.capture.sampling_bytes {
                    0 => name,
                    mean => format!(
                        "{name}, sampled every {}: estimates, ± sqrt({} x value)",
                        tracealloc_snapshot::human_bytes(mean),
                        tracealloc_snapshot::human_bytes(mean)
                    ),
                };
                profiles.push((key, new_profile(name)));
                profiles.len() - 1
            }
        };
        let sample: Vec<usize> = readable[site.stack as usize]
            .iter()
            .map(|&f| {
                *frame_index.entry(f).or_insert_with(|| {
                    let frame = &snapshot.frames[f as usize];
                    let file = frame.file.as_deref().map(|path| {
                        if options.full_paths {
                            path.to_owned()
                        } else {
                            snapshot.short_paths(path).into_owned()
                        }
                    });
                    frames.push(Frame {
                        name: frame.function.clone(),
                        file,
                        line: frame.line,
                    });
                    frames.len() - 1
                })
            })
            .collect();
        let profile = &mut profiles[at].1;
        profile.samples.push(sample);
        profile.weights.push(weight);
        profile.end_value += weight;
    }
    profiles.sort_by_key(|(_, p)| std::cmp::Reverse(p.end_value));
    let total: u64 = profiles.iter().map(|(_, p)| p.end_value).sum();
    let file = File {
        schema: "https://www.speedscope.app/file-format-schema.json",
        shared: Shared { frames },
        profiles: profiles.into_iter().map(|(_, p)| p).collect(),
        name: format!(
            "tracealloc: {} of {} ({})",
            options.metric.describe(),
            snapshot.meta.command.join(" "),
            match unit {
                "bytes" => human_bytes(total),
                _ => total.to_string(),
            }
        ),
        active_profile_index: 0,
        exporter: concat!("tracealloc ", env!("CARGO_PKG_VERSION")),
    };
    serde_json::to_writer(&mut *out, &file)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture's leak appears as samples whose weights add up to the snapshot's live bytes,
    /// rooted at `main`, with every field speedscope requires.
    #[test]
    fn samples_weigh_the_metric_and_start_at_main() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cli/tests/data/new.json");
        let snapshot = Snapshot::load(path).unwrap();
        let mut out = Vec::new();
        speedscope(&snapshot, &FoldOptions::default(), &mut out).unwrap();
        let file: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            file["$schema"],
            "https://www.speedscope.app/file-format-schema.json"
        );
        let profile = &file["profiles"][0];
        assert_eq!(profile["type"], "sampled");
        assert_eq!(profile["unit"], "bytes");
        let weights: u64 = profile["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_u64().unwrap())
            .sum();
        assert_eq!(weights, snapshot.site_sum().live_bytes);
        assert_eq!(profile["endValue"].as_u64(), Some(weights));
        let frames = file["shared"]["frames"].as_array().unwrap();
        let leak = frames
            .iter()
            .position(|f| f["name"] == "leak_diff::leak")
            .expect("the leaking function is a frame");
        let sample_with_leak = profile["samples"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s.as_array()
                    .unwrap()
                    .iter()
                    .any(|i| i.as_u64() == Some(leak as u64))
            })
            .expect("a sample through the leak");
        let root = sample_with_leak[0].as_u64().unwrap() as usize;
        assert_eq!(frames[root]["name"], "leak_diff::main");
    }
}
