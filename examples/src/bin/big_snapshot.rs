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
    let capture = CaptureInfo::new("frame-pointers", 64, true);
    let mut meta = Metadata::new(1, vec!["big_snapshot".into()], capture);
    meta.thread_count = 8;
    meta.tracealloc_version = "synthetic".into();
    let mut snapshot = Snapshot::new(meta);
    let frames = (stacks / 10).max(100);
    snapshot.frames = (0..frames)
        .map(|i| {
            let function = format!(
                "big_app::module_{}::Handler{}::process_request_{i}",
                i % 97,
                i % 13
            );
            let file = format!("/home/user/src/big_app/src/module_{}/handler.rs", i % 97);
            let mut frame = Frame::new(function).at(file, Some((i % 2000) as u32 + 1), Some(9));
            frame.inlined = i % 5 == 0;
            frame
        })
        .collect();
    snapshot.threads = (0..8)
        .map(|i| {
            let name = if i == 0 {
                "main".into()
            } else {
                format!("worker-{i}")
            };
            ThreadInfo::new(name, 100 + i, true)
        })
        .collect();
    let mut structure = Lcg::new(7);
    let mut counts = Lcg::new(seed);
    for s in 0..stacks {
        let depth = 8 + structure.below(24) as usize;
        let frames = (0..depth)
            .map(|_| structure.below(frames as u64) as u32)
            .collect();
        snapshot.stacks.push(Stack::new(frames));
        for thread in 0..2 {
            let total_blocks = 1 + counts.below(1000);
            let live_blocks = counts.below(total_blocks + 1);
            let size = 8 + counts.below(4096);
            let mut site = Site::new(s as u32, ((s + thread) % 8) as u32);
            site.live_bytes = live_blocks * size;
            site.live_blocks = live_blocks;
            site.total_bytes = total_blocks * size;
            site.total_blocks = total_blocks;
            snapshot.sites.push(site);
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
