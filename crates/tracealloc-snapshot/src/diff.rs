//! What changed between two snapshots, matched by symbolized keys (never by addresses), so two runs
//! of the same program compare as well as two moments of one run.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::group::{GroupBy, Stat};
use crate::model::Snapshot;

/// The change of one group: its figures in the newer snapshot and the signed change since the older.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatDiff {
    pub key: String,
    /// Live bytes in the newer snapshot.
    pub live_bytes: u64,
    /// Live blocks in the newer snapshot.
    pub live_blocks: u64,
    /// Change of live bytes.
    pub bytes_diff: i64,
    /// Change of live blocks.
    pub blocks_diff: i64,
    /// Change of total bytes allocated (the churn in between).
    pub total_bytes_diff: i64,
    /// Change of total blocks allocated.
    pub total_blocks_diff: i64,
}

/// `file:line: live 4.30 MiB (+3.91 MiB) in 1100 blocks (+1000)`, followed by
/// `, allocated +488.09 KiB (+4000 blocks)` when the group allocated more (or, across two runs, a
/// different amount) than its live memory grew by: that churn is what ranks groups whose live
/// memory did not change.
impl fmt::Display for StatDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: live {} ({}) in {} ({:+})",
            crate::paths::short_paths_here(&self.key),
            crate::human_bytes(self.live_bytes),
            crate::human_bytes_signed(self.bytes_diff),
            crate::blocks(self.live_blocks),
            self.blocks_diff
        )?;
        if self.total_bytes_diff != self.bytes_diff {
            write!(
                f,
                ", allocated {} ({:+} blocks)",
                crate::human_bytes_signed(self.total_bytes_diff),
                self.total_blocks_diff
            )?;
        }
        Ok(())
    }
}

/// A newer snapshot compared with an older one; see [`Snapshot::diff`].
#[derive(Debug, Clone, Copy)]
pub struct SnapshotDiff<'a> {
    pub new: &'a Snapshot,
    pub old: &'a Snapshot,
}

impl Snapshot {
    /// Compares this (newer) snapshot with an `older` one, like tracemalloc's `compare_to`.
    pub fn diff<'a>(&'a self, older: &'a Snapshot) -> SnapshotDiff<'a> {
        SnapshotDiff {
            new: self,
            old: older,
        }
    }
}

impl Snapshot {
    /// What grew since `older` (an earlier snapshot of this program), as a snapshot of its own:
    /// each site's live figures and its allocations in between, less the same site's (the same
    /// stack by symbols, thread name and label) in `older`, never below zero; sites that did not
    /// grow are left out. Serve it as a pprof profile to watch a service's growth since start-up.
    pub fn growth_since(&self, older: &Snapshot) -> Snapshot {
        let key = |snapshot: &Snapshot, labels: &[String], site: &crate::Site| {
            let stack = snapshot.stacks[site.stack as usize]
                .frames
                .iter()
                .map(|&f| labels[f as usize].as_str())
                .collect::<Vec<_>>()
                .join(";");
            let thread = &snapshot.threads[site.thread as usize].name;
            format!("{thread};{};{stack}", site.label.as_deref().unwrap_or(""))
        };
        let old_labels = older.frame_labels();
        let mut before: HashMap<String, [u64; 4]> = HashMap::new();
        for site in &older.sites {
            let figures = before.entry(key(older, &old_labels, site)).or_default();
            figures[0] += site.live_bytes;
            figures[1] += site.live_blocks;
            figures[2] += site.total_bytes;
            figures[3] += site.total_blocks;
        }
        let labels = self.frame_labels();
        let mut grown = self.clone();
        grown.sites = self
            .sites
            .iter()
            .filter_map(|site| {
                let then = before
                    .get(&key(self, &labels, site))
                    .copied()
                    .unwrap_or_default();
                let mut delta = crate::Site::new(site.stack, site.thread);
                delta.label = site.label.clone();
                delta.live_bytes = site.live_bytes.saturating_sub(then[0]);
                delta.live_blocks = site.live_blocks.saturating_sub(then[1]);
                delta.total_bytes = site.total_bytes.saturating_sub(then[2]);
                delta.total_blocks = site.total_blocks.saturating_sub(then[3]);
                (delta.live_bytes | delta.total_blocks != 0).then_some(delta)
            })
            .collect();
        let (t, o) = (&self.totals, &older.totals);
        grown.totals.live_bytes = t.live_bytes.saturating_sub(o.live_bytes);
        grown.totals.live_blocks = t.live_blocks.saturating_sub(o.live_blocks);
        grown.totals.total_bytes = t.total_bytes.saturating_sub(o.total_bytes);
        grown.totals.total_blocks = t.total_blocks.saturating_sub(o.total_blocks);
        grown.timeline.clear();
        grown
    }
}

fn signed(a: u64, b: u64) -> i64 {
    (i128::from(a) - i128::from(b)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

impl SnapshotDiff<'_> {
    /// Every group present in either snapshot, largest absolute change of live bytes first (ties:
    /// larger absolute change of blocks, then key). Groups that did not change at all are kept, with
    /// zero changes, after the others.
    pub fn statistics(&self, by: GroupBy) -> Vec<StatDiff> {
        let new = self.new.statistics(by);
        let old: HashMap<String, Stat> = self
            .old
            .statistics(by)
            .into_iter()
            .map(|s| (s.key.clone(), s))
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut diffs: Vec<StatDiff> = new
            .into_iter()
            .map(|n| {
                seen.insert(n.key.clone());
                let o = old.get(&n.key).cloned().unwrap_or_default();
                stat_diff(n, &o)
            })
            .collect();
        for (key, o) in &old {
            if !seen.contains(key) {
                diffs.push(stat_diff(
                    Stat {
                        key: key.clone(),
                        ..Stat::default()
                    },
                    o,
                ));
            }
        }
        diffs.sort_by(|a, b| {
            b.bytes_diff
                .unsigned_abs()
                .cmp(&a.bytes_diff.unsigned_abs())
                .then_with(|| {
                    b.blocks_diff
                        .unsigned_abs()
                        .cmp(&a.blocks_diff.unsigned_abs())
                })
                .then_with(|| {
                    b.total_bytes_diff
                        .unsigned_abs()
                        .cmp(&a.total_bytes_diff.unsigned_abs())
                })
                .then_with(|| a.key.cmp(&b.key))
        });
        diffs
    }

    /// The `n` groups whose live bytes changed most.
    pub fn top(&self, n: usize, by: GroupBy) -> Vec<StatDiff> {
        let mut diffs = self.statistics(by);
        diffs.truncate(n);
        diffs
    }
}

fn stat_diff(new: Stat, old: &Stat) -> StatDiff {
    StatDiff {
        bytes_diff: signed(new.live_bytes, old.live_bytes),
        blocks_diff: signed(new.live_blocks, old.live_blocks),
        total_bytes_diff: signed(new.total_bytes, old.total_bytes),
        total_blocks_diff: signed(new.total_blocks, old.total_blocks),
        live_bytes: new.live_bytes,
        live_blocks: new.live_blocks,
        key: new.key,
    }
}

#[cfg(test)]
mod tests {
    use super::StatDiff;

    fn diff(bytes_diff: i64, total_bytes_diff: i64, total_blocks_diff: i64) -> StatDiff {
        StatDiff {
            key: "src/main.rs:8".to_owned(),
            live_bytes: 4096,
            live_blocks: 1,
            bytes_diff,
            blocks_diff: bytes_diff.signum(),
            total_bytes_diff,
            total_blocks_diff,
        }
    }

    /// A line that only grew reads as before; one that allocated more than it kept says how much,
    /// which is what ranks it among lines whose live memory did not change.
    #[test]
    fn the_churn_in_between_is_shown_when_it_differs_from_the_growth() {
        assert_eq!(
            diff(4096, 4096, 1).to_string(),
            "src/main.rs:8: live 4 KiB (+4 KiB) in 1 block (+1)"
        );
        assert_eq!(
            diff(0, 2560, 40).to_string(),
            "src/main.rs:8: live 4 KiB (0 B) in 1 block (+0), allocated +2.50 KiB (+40 blocks)"
        );
        assert_eq!(
            diff(-4096, -1024, -2).to_string(),
            "src/main.rs:8: live 4 KiB (-4 KiB) in 1 block (-1), allocated -1 KiB (-2 blocks)"
        );
    }
}
