//! The timeline: times never go back, the peak is among the points with the peak's exact figures,
//! the curve goes up and comes down as the program's memory did, and the last point is now.

use std::time::Duration;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

const MIB: usize = 1 << 20;

/// Holds `mib` more MiB, one at a time, with pauses so the timeline sees the climb.
fn climb(held: &mut Vec<Vec<u8>>, mib: usize) {
    for _ in 0..mib {
        held.push(vec![1u8; MIB]);
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn main() {
    let mut held = Vec::new();
    climb(&mut held, 16);
    let at_top = tracealloc::stats();
    held.truncate(2);
    std::thread::sleep(Duration::from_millis(20));
    climb(&mut held, 4);
    let snapshot = tracealloc::snapshot();
    let totals = *snapshot.totals();
    let timeline = snapshot.timeline();

    assert!(timeline.len() >= 10, "points: {timeline:?}");
    assert!(
        timeline.windows(2).all(|w| w[0].t_ms <= w[1].t_ms),
        "time goes on: {timeline:?}"
    );
    let highest = timeline.iter().max_by_key(|p| p.live_bytes).unwrap();
    assert_eq!(highest.live_bytes, totals.peak_bytes, "the peak is a point");
    assert_eq!(highest.live_blocks, totals.peak_blocks);
    assert_eq!(
        totals.peak_bytes, at_top.live_bytes,
        "the peak was at the top of the first climb"
    );
    // Up 16 MiB, down to 2, up to 6: the curve has the valley after the peak.
    let after_peak = timeline
        .iter()
        .skip_while(|p| p.live_bytes < totals.peak_bytes);
    let valley = after_peak.map(|p| p.live_bytes).min().unwrap();
    assert!(
        valley < (totals.peak_bytes - 12 * MIB as u64),
        "valley {valley} after the peak"
    );
    let last = timeline.last().unwrap();
    assert_eq!(
        (last.live_bytes, last.live_blocks),
        (totals.live_bytes, totals.live_blocks)
    );
    assert!(
        last.rss_bytes >= 6 * MIB as u64,
        "resident memory is read: {last:?}"
    );
    let climbed = timeline
        .iter()
        .filter(|p| p.live_bytes > 4 * MIB as u64)
        .count();
    assert!(
        climbed >= 5,
        "the climb is drawn, not just its top: {timeline:?}"
    );
    println!(
        "timeline ok: {} points, peak at {} ms",
        timeline.len(),
        highest.t_ms
    );
    drop(held);
}
