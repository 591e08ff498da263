//! Writes a large synthetic snapshot file, to measure the CLI on big inputs:
//! `big_snapshot <path> <stacks> [seed]` (300,000 stacks make a file of about 100 MB).
//! The same stacks with another seed give different counters, for `diff`.

use tracealloc::model::{CaptureInfo, Frame, Metadata, Site, Snapshot, Stack, ThreadInfo};
use tracealloc_examples::Lcg;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: big_snapshot <path> <stacks> [seed]");
    let stacks: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(300_000);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut snapshot = Snapshot::new(Metadata {
        pid: 1,
        command: vec!["big_snapshot".into()],
        time_unix_ms: 0,
        capture: CaptureInfo {
            method: "frame-pointers".into(),
            max_depth: 64,
            frame_pointers: true,
            sampling_bytes: 0,
            sampling_from_env: false,
        },
        rss_bytes: 0,
        thread_count: 8,
        tracealloc_version: "synthetic".into(),
        working_dir: None,
        workspace_dir: None,
        allocator: None,
    });
    let frames = (stacks / 10).max(100);
    snapshot.frames = (0..frames)
        .map(|i| Frame {
            function: format!(
                "big_app::module_{}::Handler{}::process_request_{i}",
                i % 97,
                i % 13
            ),
            file: Some(format!(
                "/home/user/src/big_app/src/module_{}/handler.rs",
                i % 97
            )),
            line: Some((i % 2000) as u32 + 1),
            column: Some(9),
            inlined: i % 5 == 0,
        })
        .collect();
    snapshot.threads = (0..8)
        .map(|i| ThreadInfo {
            name: if i == 0 {
                "main".into()
            } else {
                format!("worker-{i}")
            },
            tid: 100 + i,
            alive: true,
        })
        .collect();
    let mut structure = Lcg::new(7);
    let mut counts = Lcg::new(seed);
    for s in 0..stacks {
        let depth = 8 + structure.below(24) as usize;
        let frames = (0..depth)
            .map(|_| structure.below(frames as u64) as u32)
            .collect();
        snapshot.stacks.push(Stack { frames });
        for thread in 0..2 {
            let total_blocks = 1 + counts.below(1000);
            let live_blocks = counts.below(total_blocks + 1);
            let size = 8 + counts.below(4096);
            snapshot.sites.push(Site {
                stack: s as u32,
                thread: ((s + thread) % 8) as u32,
                live_bytes: live_blocks * size,
                live_blocks,
                total_bytes: total_blocks * size,
                total_blocks,
            });
        }
    }
    snapshot.totals.live_bytes = snapshot.site_sum().live_bytes;
    snapshot.save(&path).expect("write");
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "{path}: {stacks} stacks, {} sites, {:.1} MB",
        snapshot.sites.len(),
        size as f64 / 1e6
    );
}
