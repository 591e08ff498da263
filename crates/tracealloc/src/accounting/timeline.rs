//! Memory over time: a bounded series of (time, live bytes, live blocks, resident bytes).
//!
//! A point is offered each time a thread flushes its live delta (every 64 KiB of change per
//! thread, so an idle program offers none), and kept at most once per interval. When the series is
//! full, neighbours are merged pairwise, keeping the higher of each pair so that spikes survive,
//! and the interval doubles: a run of any length keeps between 2,048 and 4,096 points, about
//! evenly spread. Recording never waits: a thread that finds another one recording skips its
//! point.
//!
//! ```text
//!  flush ──> now >= next? ──> busy.swap(true) ──> append (thin when full) ──> next = now + interval
//!                 │ no: return           │ was busy: return (never wait)
//! ```

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::sys::{coarse_now_ms, resident_bytes};

/// Points kept at most.
pub(crate) const CAPACITY: usize = 4096;
/// Resident memory is read (a few microseconds) at most this often; points in between repeat it.
const RSS_INTERVAL_MS: u64 = 10;

/// One moment of the timeline. Times are milliseconds since the profiler's first allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Point {
    pub(crate) t_ms: u64,
    pub(crate) live_bytes: u64,
    pub(crate) live_blocks: u64,
    pub(crate) rss_bytes: u64,
}

struct Series {
    len: usize,
    interval_ms: u64,
    rss_read_ms: u64,
    rss_bytes: u64,
    points: [Point; CAPACITY],
}

/// The series and who may write it.
pub(crate) struct Timeline {
    /// Held by the one thread appending or copying the series.
    busy: AtomicBool,
    /// `CLOCK_MONOTONIC_COARSE` at the first allocation, in ms (0 before).
    start_ms: AtomicU64,
    /// No point is kept before this time (read before taking `busy`, to skip cheaply).
    next_ms: AtomicU64,
    series: UnsafeCell<Series>,
}

// SAFETY: `series` is only touched by the thread that set `busy` (Acquire) and until it clears it
// (Release); everything else is atomics.
unsafe impl Sync for Timeline {}

impl Timeline {
    pub(crate) const fn new() -> Timeline {
        Timeline {
            busy: AtomicBool::new(false),
            start_ms: AtomicU64::new(0),
            next_ms: AtomicU64::new(0),
            series: UnsafeCell::new(Series {
                len: 0,
                interval_ms: 1,
                rss_read_ms: 0,
                rss_bytes: 0,
                points: [Point {
                    t_ms: 0,
                    live_bytes: 0,
                    live_blocks: 0,
                    rss_bytes: 0,
                }; CAPACITY],
            }),
        }
    }

    /// Sets time zero: the process's first allocation.
    pub(crate) fn start(&self) {
        let _ = self.start_ms.compare_exchange(
            0,
            coarse_now_ms().max(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Milliseconds since time zero.
    pub(crate) fn elapsed_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.start_ms.load(Ordering::Relaxed))
    }

    /// Offers the live figures a flush just made; kept when the interval has passed and no other
    /// thread is recording.
    #[inline]
    pub(crate) fn offer(&self, live_bytes: i64, live_blocks: i64) {
        let now = coarse_now_ms();
        if now < self.next_ms.load(Ordering::Relaxed) {
            return;
        }
        self.record(now, live_bytes, live_blocks);
    }

    #[cold]
    #[inline(never)]
    fn record(&self, now: u64, live_bytes: i64, live_blocks: i64) {
        if self.busy.swap(true, Ordering::Acquire) {
            return; // another thread is recording or copying: skip, never wait
        }
        // SAFETY: `busy` is ours: no other thread touches the series until we clear it.
        let series = unsafe { &mut *self.series.get() };
        if series.len == CAPACITY {
            thin(series);
        }
        if now >= series.rss_read_ms + RSS_INTERVAL_MS || series.rss_read_ms == 0 {
            series.rss_bytes = resident_bytes();
            series.rss_read_ms = now;
        }
        series.points[series.len] = Point {
            t_ms: self.elapsed_ms(now),
            live_bytes: live_bytes.max(0) as u64,
            live_blocks: live_blocks.max(0) as u64,
            rss_bytes: series.rss_bytes,
        };
        series.len += 1;
        self.next_ms
            .store(now + series.interval_ms, Ordering::Relaxed);
        self.busy.store(false, Ordering::Release);
    }

    /// Appends the series to `out` (which has room for [`CAPACITY`] more points, so nothing
    /// allocates while the series is held). Waits for a recording thread to finish (it holds the
    /// series for microseconds); gives up after a second, when a thread stopped mid-record.
    pub(crate) fn copy_into(&self, out: &mut Vec<Point>) {
        let started = std::time::Instant::now();
        while self.busy.swap(true, Ordering::Acquire) {
            if started.elapsed() > std::time::Duration::from_secs(1) {
                return;
            }
            std::thread::yield_now();
        }
        // SAFETY: `busy` is ours, as in `record`.
        let series = unsafe { &*self.series.get() };
        out.extend_from_slice(&series.points[..series.len]);
        self.busy.store(false, Ordering::Release);
    }

    /// In a forked child: a thread of the parent that was recording does not exist here.
    pub(crate) fn after_fork(&self) {
        self.busy.store(false, Ordering::Release);
    }
}

/// Halves the series: each pair of neighbours becomes the one with more live bytes, and points
/// come half as often from now on.
fn thin(series: &mut Series) {
    for i in 0..CAPACITY / 2 {
        let (a, b) = (series.points[2 * i], series.points[2 * i + 1]);
        series.points[i] = if b.live_bytes >= a.live_bytes { b } else { a };
    }
    series.len = CAPACITY / 2;
    series.interval_ms = series.interval_ms.saturating_mul(2);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(timeline: &Timeline) -> Vec<Point> {
        let mut out = Vec::with_capacity(CAPACITY);
        timeline.copy_into(&mut out);
        out
    }

    /// Points are kept at most once per interval; a full series halves, keeping spikes, and its
    /// interval doubles.
    #[test]
    fn the_series_stays_bounded_and_keeps_spikes() {
        let timeline = Box::new(Timeline::new());
        timeline.start();
        for i in 0..CAPACITY as u64 {
            // Past the interval each time (times are made up; the clock is not read here).
            timeline.record(1_000 + i * 10, (i % 7) as i64 * 100, 1);
        }
        assert_eq!(recorded(&timeline).len(), CAPACITY);
        timeline.record(1_000_000, 5, 1);
        let points = recorded(&timeline);
        assert_eq!(points.len(), CAPACITY / 2 + 1);
        // Of each pair, the higher: pairs (0,1)->100, (2,3)->300, (6,0)->600 ...
        assert_eq!(points[0].live_bytes, 100);
        assert_eq!(points[1].live_bytes, 300);
        assert_eq!(points[3].live_bytes, 600);
        assert!(points.windows(2).all(|w| w[0].t_ms <= w[1].t_ms));
        // SAFETY: no other thread uses this timeline.
        assert_eq!(unsafe { (*timeline.series.get()).interval_ms }, 2);
    }

    /// A recording thread is never made to wait: with the series held, a point is skipped.
    #[test]
    fn a_held_series_skips_points() {
        let timeline = Box::new(Timeline::new());
        timeline.busy.store(true, Ordering::Relaxed);
        timeline.record(10, 1, 1);
        timeline.busy.store(false, Ordering::Relaxed);
        assert!(recorded(&timeline).is_empty());
        timeline.record(20, 2, 1);
        assert_eq!(recorded(&timeline).len(), 1);
    }
}
