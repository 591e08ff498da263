//! DHAT's JSON (`dhatFileVersion` 2, mode `rust-heap`, as dhat-rs writes it), which Valgrind's
//! `dh_view.html` opens: one program point per readable stack, with its totals, its figures at the
//! peak (`gb`, `gbk`) and at the snapshot (`eb`, `ebk`), and, when lifetimes were recorded, its
//! summed lifetimes (`tl`) and own maximum (`mb`, `mbk`).
//!
//! Without lifetimes the file says so (`bklt: false`), and DHAT's viewer shows the totals only:
//! it needs `tl`, `mb` and `mbk` for every other view, and those are not made up here.

use std::collections::HashMap;
use std::io::{self, Write};

use serde::Serialize;
use tracealloc_snapshot::Snapshot;

#[derive(Serialize)]
#[allow(non_snake_case, reason = "DHAT's field names")]
struct File {
    dhatFileVersion: u32,
    mode: &'static str,
    verb: &'static str,
    bklt: bool,
    bkacc: bool,
    tu: &'static str,
    Mtu: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tuth: Option<u64>,
    cmd: String,
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    tg: Option<u64>,
    te: u64,
    pps: Vec<ProgramPoint>,
    ftbl: Vec<String>,
}

#[derive(Serialize, Default)]
struct ProgramPoint {
    tb: u64,
    tbk: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tl: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mbk: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gbk: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    eb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ebk: Option<u64>,
    fs: Vec<usize>,
}

fn add(field: &mut Option<u64>, value: u64, kept: bool) {
    if kept {
        *field = Some(field.unwrap_or(0) + value);
    }
}

/// Writes `snapshot` as DHAT's JSON. `full_stacks` keeps every frame (std's start-up and
/// allocation internals too), as for flamegraphs.
pub fn dhat(snapshot: &Snapshot, full_stacks: bool, out: &mut dyn Write) -> io::Result<()> {
    let lifetimes = snapshot.meta.capture.lifetimes;
    // Frame 0 is DHAT's root.
    let mut ftbl = vec!["[root]".to_owned()];
    let mut frame_index: HashMap<u32, usize> = HashMap::new();
    let mut point_index: HashMap<Vec<usize>, usize> = HashMap::new();
    let mut pps: Vec<ProgramPoint> = Vec::new();
    for site in &snapshot.sites {
        // DHAT's frames run from the allocation point outwards.
        let mut frames =
            snapshot.readable_frames(&snapshot.stacks[site.stack as usize], full_stacks);
        frames.reverse();
        let fs: Vec<usize> = frames
            .iter()
            .map(|&f| {
                *frame_index.entry(f).or_insert_with(|| {
                    ftbl.push(frame_text(snapshot, f));
                    ftbl.len() - 1
                })
            })
            .collect();
        let at = *point_index.entry(fs.clone()).or_insert_with(|| {
            pps.push(ProgramPoint {
                fs,
                ..ProgramPoint::default()
            });
            pps.len() - 1
        });
        let pp = &mut pps[at];
        pp.tb += site.total_bytes;
        pp.tbk += site.total_blocks;
        add(&mut pp.tl, site.lifetimes_us, lifetimes);
        add(&mut pp.mb, site.max_bytes, lifetimes);
        add(&mut pp.mbk, site.max_blocks, lifetimes);
        add(&mut pp.gb, site.peak_bytes, lifetimes);
        add(&mut pp.gbk, site.peak_blocks, lifetimes);
        add(&mut pp.eb, site.live_bytes, lifetimes);
        add(&mut pp.ebk, site.live_blocks, lifetimes);
    }
    // The snapshot's moment and the peak's, from the timeline (µs since the first allocation).
    let end_ms = snapshot.timeline.last().map_or(0, |p| p.t_ms);
    let peak_ms = snapshot
        .timeline
        .iter()
        .rev()
        .find(|p| p.live_bytes == snapshot.totals.peak_bytes)
        .map_or(end_ms, |p| p.t_ms);
    let file = File {
        dhatFileVersion: 2,
        mode: "rust-heap",
        verb: "Allocated",
        bklt: lifetimes,
        bkacc: false,
        tu: "µs",
        Mtu: "s",
        tuth: lifetimes.then_some(10),
        cmd: snapshot.meta.command.join(" "),
        pid: snapshot.meta.pid,
        tg: lifetimes.then_some(peak_ms * 1000),
        te: end_ms * 1000,
        pps,
        ftbl,
    };
    serde_json::to_writer(&mut *out, &file)?;
    writeln!(out)
}

/// A frame as dhat-rs writes one, without the address: `function (file:line:column)`, the path
/// shortened as everywhere a person reads it.
fn frame_text(snapshot: &Snapshot, frame: u32) -> String {
    let frame = &snapshot.frames[frame as usize];
    match &frame.file {
        Some(file) => {
            let mut text = format!("{} ({}", frame.function, snapshot.short_paths(file));
            for n in [frame.line, frame.column].into_iter().map_while(|n| n) {
                text.push_str(&format!(":{n}"));
            }
            text.push(')');
            text
        }
        None => frame.function.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(snapshot: &Snapshot) -> serde_json::Value {
        let mut out = Vec::new();
        dhat(snapshot, false, &mut out).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    /// A snapshot without lifetimes gives DHAT's totals-only form: no field that would have to
    /// be made up; the program points' totals are the snapshot's, frames from the allocating
    /// function outwards.
    #[test]
    fn without_lifetimes_only_totals_are_written() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cli/tests/data/new.json");
        let snapshot = Snapshot::load(path).unwrap();
        let file = export(&snapshot);
        assert_eq!(file["dhatFileVersion"], 2);
        assert_eq!(file["mode"], "rust-heap");
        assert_eq!(file["bklt"], false);
        assert!(file.get("tg").is_none() && file.get("tuth").is_none());
        let ftbl = file["ftbl"].as_array().unwrap();
        assert_eq!(ftbl[0], "[root]");
        let pps = file["pps"].as_array().unwrap();
        let tb: u64 = pps.iter().map(|p| p["tb"].as_u64().unwrap()).sum();
        assert_eq!(tb, snapshot.site_sum().total_bytes);
        assert!(
            pps.iter()
                .all(|p| p.get("tl").is_none() && p.get("mb").is_none())
        );
        let frame = |p: &serde_json::Value, i: usize| {
            ftbl[p["fs"][i].as_u64().unwrap() as usize]
                .as_str()
                .unwrap()
        };
        let leak = pps
            .iter()
            .find(|p| {
                frame(p, 0).starts_with("alloc::boxed::Box<T>::new (alloc/src/boxed.rs:")
                    && frame(p, 1).starts_with("leak_diff::leak (tests/src/bin/leak_diff.rs:18")
            })
            .expect("a program point whose allocation is the leak's Box::new");
        let last = leak["fs"].as_array().unwrap().last().unwrap();
        assert!(
            ftbl[last.as_u64().unwrap() as usize]
                .as_str()
                .unwrap()
                .starts_with("leak_diff::main ("),
            "{leak}"
        );
    }

    /// With lifetimes, every program point has all of DHAT's heap fields, summed from its sites.
    #[test]
    fn with_lifetimes_every_field_is_written() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cli/tests/data/new.json");
        let mut snapshot = Snapshot::load(path).unwrap();
        snapshot.meta.capture.lifetimes = true;
        for (i, site) in snapshot.sites.iter_mut().enumerate() {
            site.lifetimes_us = 1000 * (i as u64 + 1);
            site.max_bytes = site.live_bytes.max(site.peak_bytes) + 1;
            site.max_blocks = site.live_blocks + 1;
        }
        let file = export(&snapshot);
        assert_eq!(file["bklt"], true);
        assert!(file["tg"].as_u64() <= file["te"].as_u64());
        let pps = file["pps"].as_array().unwrap();
        for field in ["tl", "mb", "mbk", "gb", "gbk", "eb", "ebk"] {
            assert!(pps.iter().all(|p| p[field].is_u64()), "{field}");
        }
        let sum = |field: &str| -> u64 { pps.iter().map(|p| p[field].as_u64().unwrap()).sum() };
        let sites = &snapshot.sites;
        assert_eq!(sum("tl"), sites.iter().map(|s| s.lifetimes_us).sum::<u64>());
        assert_eq!(sum("mb"), sites.iter().map(|s| s.max_bytes).sum::<u64>());
        assert_eq!(sum("eb"), snapshot.site_sum().live_bytes);
        assert_eq!(sum("gb"), sites.iter().map(|s| s.peak_bytes).sum::<u64>());
    }
}
