//! What the live view shows, computed from the figures and snapshots it fetches: kept apart from
//! the terminal so that it can be tested.

use std::collections::HashMap;
use std::time::Instant;

use tracealloc_snapshot::control::LiveStats;
use tracealloc_snapshot::{FrameFolding, GroupBy, Snapshot};

/// How the sites table is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LiveSort {
    Live,
    Change,
    Total,
    Rate,
}

impl LiveSort {
    pub(crate) fn next(self) -> LiveSort {
        match self {
            LiveSort::Live => LiveSort::Change,
            LiveSort::Change => LiveSort::Total,
            LiveSort::Total => LiveSort::Rate,
            LiveSort::Rate => LiveSort::Live,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            LiveSort::Live => "live",
            LiveSort::Change => "change",
            LiveSort::Total => "total",
            LiveSort::Rate => "allocations/s",
        }
    }
}

/// The groupings the view cycles through.
pub(crate) const GROUPINGS: [GroupBy; 4] = [
    GroupBy::Line,
    GroupBy::Function,
    GroupBy::Thread,
    GroupBy::Label,
];

/// One row of the sites table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) key: String,
    pub(crate) live_bytes: u64,
    /// Live bytes now less at the view's start.
    pub(crate) change_bytes: i64,
    pub(crate) total_bytes: u64,
    /// Allocations per second between the last two refreshes.
    pub(crate) rate: f64,
}

/// The view's state: the latest figures, what they were when the view started, the history of
/// live bytes, and how the table is grouped, sorted and filtered.
pub(crate) struct LiveModel {
    pub(crate) by: GroupBy,
    pub(crate) sort: LiveSort,
    pub(crate) filter: String,
    pub(crate) stats: LiveStats,
    /// Live bytes at each refresh, oldest first (at most `HISTORY`).
    pub(crate) history: Vec<u64>,
    pub(crate) snapshot: Snapshot,
    baseline: Snapshot,
    baseline_live: HashMap<String, u64>,
    previous: Option<(Instant, HashMap<String, u64>)>,
    rows: Vec<Row>,
}

/// Refreshes kept for the sparkline: 10 minutes at one a second.
const HISTORY: usize = 600;

impl LiveModel {
    /// The view of a program whose figures and snapshot are these, at the view's start.
    pub(crate) fn new(stats: LiveStats, snapshot: Snapshot, now: Instant) -> LiveModel {
        let snapshot = fold(snapshot);
        let mut model = LiveModel {
            by: GroupBy::Line,
            sort: LiveSort::Live,
            filter: String::new(),
            history: vec![stats.totals.live_bytes],
            stats,
            baseline: snapshot.clone(),
            baseline_live: HashMap::new(),
            snapshot,
            previous: None,
            rows: Vec::new(),
        };
        model.regroup(now);
        model
    }

    /// Takes in a refresh's figures and snapshot.
    pub(crate) fn update(&mut self, stats: LiveStats, snapshot: Snapshot, now: Instant) {
        self.history.push(stats.totals.live_bytes);
        if self.history.len() > HISTORY {
            self.history.remove(0);
        }
        self.stats = stats;
        self.snapshot = fold(snapshot);
        self.recompute(now);
    }

    /// Takes in new figures only (a refresh that did not fetch a snapshot).
    pub(crate) fn update_stats(&mut self, stats: LiveStats) {
        self.stats = stats;
    }

    /// Groups by the next grouping.
    pub(crate) fn next_grouping(&mut self, now: Instant) {
        let at = GROUPINGS.iter().position(|&g| g == self.by).unwrap_or(0);
        self.by = GROUPINGS[(at + 1) % GROUPINGS.len()];
        self.regroup(now);
    }

    fn regroup(&mut self, now: Instant) {
        self.baseline_live = self
            .baseline
            .statistics(self.by)
            .into_iter()
            .map(|s| (s.key, s.live_bytes))
            .collect();
        self.previous = None;
        self.recompute(now);
    }

    fn recompute(&mut self, now: Instant) {
        let stats = self.snapshot.statistics(self.by);
        let blocks: HashMap<String, u64> = stats
            .iter()
            .map(|s| (s.key.clone(), s.total_blocks))
            .collect();
        let rate = |key: &str, total: u64| match &self.previous {
            Some((then, before)) => {
                let seconds = now.duration_since(*then).as_secs_f64();
                let before = before.get(key).copied().unwrap_or(0);
                if seconds > 0.0 {
                    total.saturating_sub(before) as f64 / seconds
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.rows = stats
            .iter()
            .map(|s| Row {
                key: self.snapshot.short_paths(&s.key).into_owned(),
                live_bytes: s.live_bytes,
                change_bytes: s.live_bytes as i64
                    - self.baseline_live.get(&s.key).copied().unwrap_or(0) as i64,
                total_bytes: s.total_bytes,
                rate: rate(&s.key, s.total_blocks),
            })
            .collect();
        self.previous = Some((now, blocks));
    }

    /// The rows to show: those matching the filter (a case-insensitive substring of the key),
    /// ordered by the sort, largest first.
    pub(crate) fn rows(&self) -> Vec<&Row> {
        let filter = self.filter.to_lowercase();
        let mut rows: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| filter.is_empty() || r.key.to_lowercase().contains(&filter))
            .collect();
        let figure = |r: &Row| match self.sort {
            LiveSort::Live => r.live_bytes as f64,
            LiveSort::Change => r.change_bytes as f64,
            LiveSort::Total => r.total_bytes as f64,
            LiveSort::Rate => r.rate,
        };
        rows.sort_by(|a, b| {
            figure(b)
                .total_cmp(&figure(a))
                .then_with(|| a.key.cmp(&b.key))
        });
        rows
    }
}

/// Runtime frames folded, as every other view shows them.
fn fold(snapshot: Snapshot) -> Snapshot {
    snapshot.fold_frames(&FrameFolding::default())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tracealloc_snapshot::{CaptureInfo, Frame, Metadata, Site, Stack, ThreadInfo};

    use super::*;

    /// One site at `src/main.rs:7` with these figures.
    fn snapshot(live: u64, total_blocks: u64) -> Snapshot {
        let capture = CaptureInfo::new("frame-pointers", 128, true);
        let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
        snapshot.frames = vec![Frame::new("app::leak").at("/src/main.rs", Some(7), None)];
        snapshot.stacks = vec![Stack::new(vec![0])];
        snapshot.threads = vec![ThreadInfo::new("main", 1, true)];
        let mut site = Site::new(0, 0);
        site.live_bytes = live;
        site.live_blocks = total_blocks;
        site.total_bytes = live;
        site.total_blocks = total_blocks;
        snapshot.sites.push(site);
        snapshot
    }

    #[test]
    fn rows_show_the_change_since_the_start_and_the_rate() {
        let start = Instant::now();
        let mut model = LiveModel::new(LiveStats::default(), snapshot(1000, 1), start);
        let mut stats = LiveStats::default();
        stats.totals.live_bytes = 5000;
        model.update(
            stats.clone(),
            snapshot(3000, 3),
            start + Duration::from_secs(1),
        );
        model.update(stats, snapshot(5000, 13), start + Duration::from_secs(3));
        let rows = model.rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].key, "/src/main.rs:7");
        assert_eq!((rows[0].live_bytes, rows[0].change_bytes), (5000, 4000));
        assert!((rows[0].rate - 5.0).abs() < 1e-9, "{}", rows[0].rate);
        assert_eq!(model.history, [0, 5000, 5000]);
        model.filter = "MAIN.rs".into();
        assert_eq!(model.rows().len(), 1);
        model.filter = "other".into();
        assert!(model.rows().is_empty());
        model.next_grouping(start + Duration::from_secs(4));
        assert_eq!(model.by, GroupBy::Function);
        model.filter.clear();
        assert_eq!(model.rows()[0].key, "app::leak");
    }
}
