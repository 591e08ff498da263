//! What changed between two snapshots, matched by symbolized keys (never by addresses), so two runs
//! of the same program compare as well as two moments of one run, and two checkouts or two
//! machines as well as one: before comparing, the older snapshot's source paths are matched to the
//! newer's by crate-relative path and function (`Snapshot::matched_to`).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::group::{GroupBy, Stat};
use crate::model::{Snapshot, Variance};

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
    /// Sampled snapshots: the variances of the group's estimates in the newer and in the older
    /// snapshot ([`Stat::variance`]), from which the change's standard errors come. Left out of
    /// the JSON a diff is written as.
    #[serde(skip)]
    pub variances: (Option<Variance>, Option<Variance>),
}

/// `file:line: live 4.30 MiB (+3.91 MiB) in 1100 blocks (+1000)`, followed by
/// `, allocated +488.09 KiB (+4000 blocks)` when the group allocated more (or, across two runs, a
/// different amount) than its live memory grew by: that churn is what ranks groups whose live
/// memory did not change.
impl fmt::Display for StatDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: live {} ({}) in {} ({})",
            crate::paths::short_paths_here(&self.key),
            crate::human_bytes(self.live_bytes),
            crate::human_bytes_signed(self.bytes_diff),
            crate::blocks(self.live_blocks),
            crate::human_count_signed(self.blocks_diff)
        )?;
        if self.total_bytes_diff != self.bytes_diff {
            write!(
                f,
                ", allocated {} ({} blocks)",
                crate::human_bytes_signed(self.total_bytes_diff),
                crate::human_count_signed(self.total_blocks_diff)
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
    ///
    /// ```
    /// use tracealloc_snapshot::GroupBy;
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc_snapshot::Snapshot {
    /// #     use tracealloc_snapshot::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot
    /// # }
    ///
    /// let before = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 4, 4),
    ///     ("app::parse", "src/parse.rs:30", 1, 20),
    /// ]);
    /// let after = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 104, 104), // kept 100 more blocks: the leak
    ///     ("app::parse", "src/parse.rs:30", 1, 120),   // allocated 100 more, freed them
    /// ]);
    /// let growth = after.diff(&before).top(10, GroupBy::Line);
    /// assert_eq!(
    ///     growth[0].to_string(),
    ///     "src/cache.rs:12: live 104 KiB (+100 KiB) in 104 blocks (+100)"
    /// );
    /// assert_eq!(
    ///     growth[1].to_string(),
    ///     "src/parse.rs:30: live 1 KiB (0 B) in 1 block (0), allocated +100 KiB (+100 blocks)"
    /// );
    /// ```
    pub fn diff<'a>(&'a self, older: &'a Snapshot) -> SnapshotDiff<'a> {
        SnapshotDiff {
            new: self,
            old: older,
        }
    }
}

/// The source files of `older` that are files of `newer` under another path: the same source in
/// another checkout (`/tmp/b/proj/src/main.rs` for `/home/a/proj/src/main.rs`) or on another
/// machine (another cargo home or registry index). A file is matched when one of its frames has a
/// frame in `newer` of the same function in a file of the same crate-relative path
/// ([`crate::paths::crate_relative_path`]); the function tells apart the crates of a workspace,
/// whose files share such paths (`src/lib.rs`). Files `newer` has under the same path stay as
/// they are; an identity that names two files in `newer`, or a file whose frames point to two,
/// is left unmatched rather than guessed.
fn moved_files<'o, 'n>(older: &'o Snapshot, newer: &'n Snapshot) -> HashMap<&'o str, &'n str> {
    let newer_files: HashSet<&str> = newer
        .frames
        .iter()
        .filter_map(|f| f.file.as_deref())
        .collect();
    let mut by_identity: HashMap<(&str, Cow<'_, str>), Option<&str>> = HashMap::new();
    for frame in &newer.frames {
        let Some(file) = frame.file.as_deref() else {
            continue;
        };
        let identity = (
            frame.function.as_str(),
            crate::paths::crate_relative_path(file),
        );
        by_identity
            .entry(identity)
            .and_modify(|known| {
                if *known != Some(file) {
                    *known = None;
                }
            })
            .or_insert(Some(file));
    }
    let mut moved: HashMap<&str, Option<&str>> = HashMap::new();
    for frame in &older.frames {
        let Some(file) = frame.file.as_deref() else {
            continue;
        };
        if newer_files.contains(file) {
            continue;
        }
        let identity = (
            frame.function.as_str(),
            crate::paths::crate_relative_path(file),
        );
        let Some(&Some(to)) = by_identity.get(&identity) else {
            continue;
        };
        moved
            .entry(file)
            .and_modify(|known| {
                if *known != Some(to) {
                    *known = None;
                }
            })
            .or_insert(Some(to));
    }
    moved
        .into_iter()
        .filter_map(|(from, to)| Some((from, to?)))
        .collect()
}

impl Snapshot {
    /// This (older) snapshot with the paths of its source files replaced by `newer`'s where they
    /// are the same files in another checkout or on another machine (matched by crate-relative
    /// path and function, see [`moved_files`]), so that its group keys, stacks and folded stacks
    /// compare with `newer`'s as those of one checkout do. Borrowed when nothing moved.
    pub(crate) fn matched_to(&self, newer: &Snapshot) -> Cow<'_, Snapshot> {
        let moved = moved_files(self, newer);
        if moved.is_empty() {
            return Cow::Borrowed(self);
        }
        let mut matched = self.clone();
        for frame in &mut matched.frames {
            if let Some(file) = &frame.file
                && let Some(to) = moved.get(file.as_str())
            {
                frame.file = Some((*to).to_owned());
            }
        }
        Cow::Owned(matched)
    }

    /// [`Snapshot::matched_to`], made to fold with `newer`'s labels: unless `full_paths`, the
    /// files `newer` does not have are shortened here, by this snapshot's own roots, and the rest
    /// (`newer`'s files) are left to be shortened as `newer` shortens them.
    pub(crate) fn matched_for_folding(
        &self,
        newer: &Snapshot,
        full_paths: bool,
    ) -> Cow<'_, Snapshot> {
        let matched = self.matched_to(newer);
        let same_roots = self.meta.workspace_dir == newer.meta.workspace_dir
            && self.meta.working_dir == newer.meta.working_dir;
        if full_paths || same_roots {
            return matched;
        }
        let newer_files: HashSet<&str> = newer
            .frames
            .iter()
            .filter_map(|f| f.file.as_deref())
            .collect();
        let mut relabeled = matched.into_owned();
        for frame in &mut relabeled.frames {
            if let Some(file) = &frame.file
                && !newer_files.contains(file.as_str())
            {
                frame.file = Some(self.short_paths(file).into_owned());
            }
        }
        relabeled.meta.workspace_dir = newer.meta.workspace_dir.clone();
        relabeled.meta.working_dir = newer.meta.working_dir.clone();
        Cow::Owned(relabeled)
    }
}

impl Snapshot {
    /// What grew since `older` (an earlier snapshot of this program), as a snapshot of its own:
    /// each site's live figures and its allocations in between, less the same site's (the same
    /// stack by symbols, thread name and label, its files matched as [`SnapshotDiff::statistics`]
    /// matches them) in `older`, never below zero; sites that did not
    /// grow are left out. Serve it as a pprof profile to watch a service's growth since start-up.
    ///
    /// ```
    /// use tracealloc_snapshot::GroupBy;
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc_snapshot::Snapshot {
    /// #     use tracealloc_snapshot::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot
    /// # }
    ///
    /// let start = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 4, 4),
    ///     ("app::parse", "src/parse.rs:30", 1, 20),
    /// ]);
    /// let now = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 104, 104),
    ///     ("app::parse", "src/parse.rs:30", 1, 20), // did not grow: left out
    /// ]);
    /// let grown = now.growth_since(&start);
    /// assert_eq!(grown.sites.len(), 1);
    /// let line = &grown.top(1, GroupBy::Line)[0];
    /// assert_eq!(line.key, "src/cache.rs:12");
    /// assert_eq!((line.live_bytes, line.total_blocks), (100 * 1024, 100));
    /// ```
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
        let older = older.matched_to(self);
        let older = older.as_ref();
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
    /// larger absolute change of blocks, then key). The older snapshot's source files are first
    /// matched to the newer's by crate-relative path and function: a group of the same source in
    /// two checkouts, or of a registry crate on two machines, is one row, keyed as in the newer
    /// snapshot. Groups that did not change at all are kept, with
    /// zero changes, after the others.
    ///
    /// ```
    /// use tracealloc_snapshot::GroupBy;
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc_snapshot::Snapshot {
    /// #     use tracealloc_snapshot::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot
    /// # }
    ///
    /// let before = snapshot_of(&[
    ///     ("app::old", "src/old.rs:1", 1, 1),
    ///     ("app::same", "src/same.rs:2", 1, 1),
    /// ]);
    /// let after = snapshot_of(&[
    ///     ("app::same", "src/same.rs:2", 1, 1),
    ///     ("app::new", "src/new.rs:3", 2, 2),
    /// ]);
    /// let changes = after.diff(&before).statistics(GroupBy::Function);
    /// let rows: Vec<(&str, u64, i64)> =
    ///     changes.iter().map(|d| (d.key.as_str(), d.live_bytes, d.bytes_diff)).collect();
    /// assert_eq!(
    ///     rows,
    ///     [("app::new", 2048, 2048), ("app::old", 0, -1024), ("app::same", 1024, 0)]
    /// );
    /// ```
    pub fn statistics(&self, by: GroupBy) -> Vec<StatDiff> {
        let new = self.new.statistics(by);
        let old: HashMap<String, Stat> = self
            .old
            .matched_to(self.new)
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
    ///
    /// ```
    /// use tracealloc_snapshot::GroupBy;
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc_snapshot::Snapshot {
    /// #     use tracealloc_snapshot::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot
    /// # }
    ///
    /// let before = snapshot_of(&[("app::cache", "src/cache.rs:12", 4, 4)]);
    /// let after = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 2, 10), // shrank by 2 KiB
    ///     ("app::parse", "src/parse.rs:30", 3, 3),  // new: 3 KiB
    /// ]);
    /// let top = after.diff(&before).top(1, GroupBy::Line);
    /// assert_eq!((top[0].key.as_str(), top[0].bytes_diff), ("src/parse.rs:30", 3072));
    /// ```
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
        variances: (new.variance, old.variance),
        key: new.key,
    }
}

#[cfg(test)]
mod tests {
    use super::StatDiff;
    use crate::{
        CaptureInfo, FoldOptions, Frame, GroupBy, Metadata, Site, Snapshot, Stack, ThreadInfo,
    };

    const RUSTC: &str = "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library";

    /// One program built in the checkout at `root` with the cargo home `cargo_home` (a registry
    /// index of hash `index`): `render_response` (src/main.rs:20) fills a buffer, serde_json
    /// parses, and a workspace crate's `load` (its src/lib.rs:7) allocates; `crate_name` names
    /// that crate, as two different crates of one workspace. `figures` per stack: live bytes,
    /// live blocks, total bytes, total blocks.
    fn checkout(
        root: &str,
        cargo_home: &str,
        index: &str,
        crate_name: &str,
        figures: [[u64; 4]; 3],
    ) -> Snapshot {
        let capture = CaptureInfo::new("frame-pointers", 128, true);
        let mut snapshot = Snapshot::new(Metadata::new(1, vec!["proj".into()], capture));
        snapshot.meta.workspace_dir = Some(root.to_owned());
        snapshot.meta.working_dir = Some(root.to_owned());
        let main_rs = format!("{root}/src/main.rs");
        snapshot.frames = vec![
            Frame::new("alloc::vec::Vec<T>::with_capacity").at(
                format!("{RUSTC}/alloc/src/vec/mod.rs"),
                Some(524),
                None,
            ),
            Frame::new("proj::render_response").at(main_rs.as_str(), Some(20), None),
            Frame::new("proj::main").at(main_rs.as_str(), Some(31), None),
            Frame::new("serde_json::de::from_str").at(
                format!(
                    "{cargo_home}/registry/src/index.crates.io-{index}/serde_json-1.0.140/src/de.rs"
                ),
                Some(2699),
                None,
            ),
            Frame::new(format!("{crate_name}::load")).at(
                format!("{root}/crates/{crate_name}/src/lib.rs"),
                Some(7),
                None,
            ),
        ];
        snapshot.stacks = vec![
            Stack::new(vec![0, 1, 2]),
            Stack::new(vec![3, 2]),
            Stack::new(vec![0, 4, 2]),
        ];
        snapshot.threads = vec![ThreadInfo::new("main", 1, true)];
        for (stack, [live_bytes, live_blocks, total_bytes, total_blocks]) in
            figures.into_iter().enumerate()
        {
            let mut site = Site::new(stack as u32, 0);
            site.live_bytes = live_bytes;
            site.live_blocks = live_blocks;
            site.total_bytes = total_bytes;
            site.total_blocks = total_blocks;
            snapshot.sites.push(site);
        }
        snapshot
    }

    /// The older run, in another checkout on another machine, and the newer one. Their
    /// workspace crates `other` and `mine` both have a `src/lib.rs`, and are different crates.
    fn two_checkouts() -> (Snapshot, Snapshot) {
        let old = checkout(
            "/tmp/b/proj",
            "/home/ci/.cargo",
            "6f17d22bba15001f",
            "other",
            [
                [10_240_000, 4, 20_480_000, 8],
                [1000, 1, 1000, 1],
                [4096, 1, 4096, 1],
            ],
        );
        let new = checkout(
            "/home/a/proj",
            "/home/a/.cargo",
            "1949cf8c6b5b557f",
            "mine",
            [
                [12_800_000, 5, 25_600_000, 10],
                [1000, 1, 1000, 1],
                [8192, 2, 8192, 2],
            ],
        );
        (old, new)
    }

    fn row(key: &str, live: [u64; 2], change: [i64; 4]) -> StatDiff {
        StatDiff {
            key: key.to_owned(),
            live_bytes: live[0],
            live_blocks: live[1],
            bytes_diff: change[0],
            blocks_diff: change[1],
            total_bytes_diff: change[2],
            total_blocks_diff: change[3],
            variances: (None, None),
        }
    }

    /// The same source at two checkout paths, and the same registry crate under two cargo homes,
    /// is one row with its change, keyed as in the newer snapshot; two crates that only share a
    /// crate-relative path (`src/lib.rs`) stay apart.
    #[test]
    fn frames_that_differ_only_by_checkout_root_are_one_row() {
        let (old, new) = two_checkouts();
        let serde = "/home/a/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/\
                     serde_json-1.0.140/src/de.rs";
        assert_eq!(
            new.diff(&old).statistics(GroupBy::Line),
            [
                row(
                    "/home/a/proj/src/main.rs:20",
                    [12_800_000, 5],
                    [2_560_000, 1, 5_120_000, 2]
                ),
                row(
                    "/home/a/proj/crates/mine/src/lib.rs:7",
                    [8192, 2],
                    [8192, 2, 8192, 2]
                ),
                row(
                    "/tmp/b/proj/crates/other/src/lib.rs:7",
                    [0, 0],
                    [-4096, -1, -4096, -1]
                ),
                row(&format!("{serde}:2699"), [1000, 1], [0, 0, 0, 0]),
            ]
        );
        assert_eq!(
            new.diff(&old).statistics(GroupBy::File),
            [
                row(
                    "/home/a/proj/src/main.rs",
                    [12_800_000, 5],
                    [2_560_000, 1, 5_120_000, 2]
                ),
                row(
                    "/home/a/proj/crates/mine/src/lib.rs",
                    [8192, 2],
                    [8192, 2, 8192, 2]
                ),
                row(
                    "/tmp/b/proj/crates/other/src/lib.rs",
                    [0, 0],
                    [-4096, -1, -4096, -1]
                ),
                row(serde, [1000, 1], [0, 0, 0, 0]),
            ]
        );
        let stacks = new.diff(&old).statistics(GroupBy::Stack);
        assert_eq!(stacks.len(), 4, "{stacks:#?}");
        assert_eq!(
            stacks[0],
            row(
                "alloc::vec::Vec<T>::with_capacity \
                 (/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/alloc/src/vec/mod.rs:524) \
                 <- proj::render_response (/home/a/proj/src/main.rs:20) \
                 <- proj::main (/home/a/proj/src/main.rs:31)",
                [12_800_000, 5],
                [2_560_000, 1, 5_120_000, 2]
            )
        );
    }

    /// What grew since the other checkout's snapshot is the change of each matched site, not the
    /// whole of the newer one's.
    #[test]
    fn growth_since_another_checkout_is_the_change() {
        let (old, new) = two_checkouts();
        let grown = new.growth_since(&old);
        let figures: Vec<(u32, u64, u64)> = grown
            .sites
            .iter()
            .map(|s| (s.stack, s.live_bytes, s.total_blocks))
            .collect();
        assert_eq!(figures, [(0, 2_560_000, 2), (2, 8192, 2)]);
    }

    /// A differential fold against another checkout has one line per stack, labeled as the newer
    /// snapshot shows it; the older's own files read relative to its own checkout. Without known
    /// roots (a program run outside its workspace, from elsewhere) the paths stay whole, and
    /// still match.
    #[test]
    fn differential_fold_matches_stacks_across_checkouts() {
        let (mut old, mut new) = two_checkouts();
        for snapshot in [&mut old, &mut new] {
            snapshot.meta.workspace_dir = None;
            snapshot.meta.working_dir = None;
        }
        assert_eq!(
            new.folded_diff(&old, &FoldOptions::default()),
            [
                "proj::main (/home/a/proj/src/main.rs:31);\
                 mine::load (/home/a/proj/crates/mine/src/lib.rs:7);\
                 alloc::vec::Vec<T>::with_capacity (alloc/src/vec/mod.rs:524) 0 8192",
                // `other` is only in the older checkout, whose `main` is the newer's.
                "proj::main (/home/a/proj/src/main.rs:31);\
                 other::load (/tmp/b/proj/crates/other/src/lib.rs:7);\
                 alloc::vec::Vec<T>::with_capacity (alloc/src/vec/mod.rs:524) 4096 0",
                "proj::main (/home/a/proj/src/main.rs:31);\
                 proj::render_response (/home/a/proj/src/main.rs:20);\
                 alloc::vec::Vec<T>::with_capacity (alloc/src/vec/mod.rs:524) 10240000 12800000",
                "proj::main (/home/a/proj/src/main.rs:31);\
                 serde_json::de::from_str (serde_json-1.0.140/src/de.rs:2699) 1000 1000",
            ]
        );
        let (old, new) = two_checkouts();
        assert_eq!(
            new.folded_diff(&old, &FoldOptions::default()),
            [
                "proj::main (src/main.rs:31);mine::load (crates/mine/src/lib.rs:7);\
                 alloc::vec::Vec<T>::with_capacity (alloc/src/vec/mod.rs:524) 0 8192",
                "proj::main (src/main.rs:31);other::load (crates/other/src/lib.rs:7);\
                 alloc::vec::Vec<T>::with_capacity (alloc/src/vec/mod.rs:524) 4096 0",
                "proj::main (src/main.rs:31);proj::render_response (src/main.rs:20);\
                 alloc::vec::Vec<T>::with_capacity (alloc/src/vec/mod.rs:524) 10240000 12800000",
                "proj::main (src/main.rs:31);serde_json::de::from_str \
                 (serde_json-1.0.140/src/de.rs:2699) 1000 1000",
            ]
        );
    }

    fn diff(bytes_diff: i64, total_bytes_diff: i64, total_blocks_diff: i64) -> StatDiff {
        StatDiff {
            key: "src/main.rs:8".to_owned(),
            live_bytes: 4096,
            live_blocks: 1,
            bytes_diff,
            blocks_diff: bytes_diff.signum(),
            total_bytes_diff,
            total_blocks_diff,
            variances: (None, None),
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
            "src/main.rs:8: live 4 KiB (0 B) in 1 block (0), allocated +2.50 KiB (+40 blocks)"
        );
        assert_eq!(
            diff(-4096, -1024, -2).to_string(),
            "src/main.rs:8: live 4 KiB (-4 KiB) in 1 block (-1), allocated -1 KiB (-2 blocks)"
        );
    }
}
