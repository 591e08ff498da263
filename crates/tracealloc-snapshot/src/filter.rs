//! Narrowing a snapshot to the sites whose frames match (or do not match) glob patterns, like
//! tracemalloc's `Snapshot.filter_traces`.

use wildmatch::WildMatch;

use crate::model::{Frame, Snapshot, Stack};

/// A glob pattern (`*`, `?`) matched against a frame's file, function or `file:line`.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Keep matching sites (`true`) or drop them (`false`).
    pub inclusive: bool,
    /// Match any frame of the stack, not only the allocating user frame.
    pub all_frames: bool,
    pattern: WildMatch,
    source: String,
}

impl Filter {
    /// Keeps only sites matching `pattern` (several inclusive filters: matching any of them).
    ///
    /// ```
    /// use tracealloc_snapshot::Filter;
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
    /// let snapshot = snapshot_of(&[
    ///     ("app::cache::insert", "src/cache.rs:12", 4, 4),
    ///     ("app::parse::token", "src/parse.rs:30", 1, 20),
    ///     ("serde_json::de::parse", "/registry/src/index/serde_json-1.0.140/src/de.rs:9", 2, 2),
    /// ]);
    /// // Patterns match the allocating frame's function, its file, or its file:line.
    /// let app = snapshot.filter(&[Filter::include("app::*")]);
    /// assert_eq!(app.sites.len(), 2);
    /// let either = [Filter::include("src/cache.rs"), Filter::include("*/serde_json-*")];
    /// let either = snapshot.filter(&either);
    /// assert_eq!(either.sites.len(), 2);
    /// assert_eq!(snapshot.filter(&[Filter::include("src/parse.rs:30")]).sites.len(), 1);
    /// ```
    pub fn include(pattern: &str) -> Self {
        Self::new(true, pattern)
    }

    /// Drops sites matching `pattern`.
    ///
    /// ```
    /// use tracealloc_snapshot::{Filter, GroupBy};
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
    /// let snapshot = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 4, 4),
    ///     ("app::tests::fixture", "tests/fixture.rs:3", 1, 1),
    /// ]);
    /// let kept = snapshot.filter(&[Filter::include("app::*"), Filter::exclude("tests/*")]);
    /// assert_eq!(kept.top(10, GroupBy::Function)[0].key, "app::cache");
    /// assert_eq!(kept.sites.len(), 1);
    /// ```
    pub fn exclude(pattern: &str) -> Self {
        Self::new(false, pattern)
    }

    /// The filters of command-line style patterns: an inclusive one for each of `include`, an
    /// exclusive one for each of `exclude` (none at all keeps every site).
    ///
    /// ```
    /// use tracealloc_snapshot::Filter;
    ///
    /// // `--include 'app::*' --exclude '*/tests/*'`
    /// let filters = Filter::from_patterns(&["app::*".to_owned()], &["*/tests/*".to_owned()]);
    /// let described: Vec<(bool, &str)> =
    ///     filters.iter().map(|f| (f.inclusive, f.pattern())).collect();
    /// assert_eq!(described, [(true, "app::*"), (false, "*/tests/*")]);
    /// assert!(Filter::from_patterns(&[], &[]).is_empty()); // keeps every site
    /// ```
    pub fn from_patterns(include: &[String], exclude: &[String]) -> Vec<Filter> {
        include
            .iter()
            .map(|p| Filter::include(p))
            .chain(exclude.iter().map(|p| Filter::exclude(p)))
            .collect()
    }

    fn new(inclusive: bool, pattern: &str) -> Self {
        Filter {
            inclusive,
            all_frames: false,
            pattern: WildMatch::new(pattern),
            source: pattern.to_owned(),
        }
    }

    /// Matches against every frame of the stack instead of only the allocating user frame.
    ///
    /// ```
    /// use tracealloc_snapshot::{Filter, Frame};
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
    /// let mut snapshot = snapshot_of(&[("app::cache::insert", "src/cache.rs:12", 4, 4)]);
    /// // The stack's outer frame: `app::handle_request` called `insert`.
    /// snapshot.frames.push(Frame::new("app::handle_request").at("src/server.rs", Some(40), None));
    /// snapshot.stacks[0].frames.push(1);
    /// assert!(snapshot.filter(&[Filter::include("app::handle_*")]).sites.is_empty());
    /// let under = snapshot.filter(&[Filter::include("app::handle_*").all_frames()]);
    /// assert_eq!(under.sites.len(), 1);
    /// ```
    pub fn all_frames(mut self) -> Self {
        self.all_frames = true;
        self
    }

    /// The pattern as given.
    ///
    /// ```
    /// use tracealloc_snapshot::Filter;
    ///
    /// assert_eq!(Filter::exclude("*/tests/*").pattern(), "*/tests/*");
    /// ```
    pub fn pattern(&self) -> &str {
        &self.source
    }

    fn matches_frame(&self, frame: &Frame) -> bool {
        self.pattern.matches(&frame.function)
            || frame
                .file
                .as_deref()
                .is_some_and(|f| self.pattern.matches(f))
            || self.pattern.matches(&frame.location())
    }

    fn matches(&self, snapshot: &Snapshot, stack: &Stack) -> bool {
        if self.all_frames {
            stack
                .frames
                .iter()
                .any(|&f| self.matches_frame(&snapshot.frames[f as usize]))
        } else {
            snapshot
                .user_frame(stack)
                .is_some_and(|f| self.matches_frame(f))
        }
    }
}

impl Snapshot {
    /// A copy keeping the sites that match at least one inclusive filter (when there is any) and no
    /// exclusive one. Totals and metadata are kept as they were.
    ///
    /// ```
    /// use tracealloc_snapshot::{Filter, GroupBy};
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
    /// let snapshot = snapshot_of(&[
    ///     ("app::cache", "src/cache.rs:12", 4, 4),
    ///     ("app::parse", "src/parse.rs:30", 1, 20),
    /// ]);
    /// let parse = snapshot.filter(&[Filter::include("src/parse.rs")]);
    /// assert_eq!(parse.statistics(GroupBy::Line).len(), 1);
    /// assert_eq!(parse.site_sum().live_bytes, 1024);
    /// assert_eq!(parse.totals, snapshot.totals); // the whole process's, as they were
    /// ```
    pub fn filter(&self, filters: &[Filter]) -> Snapshot {
        let (includes, excludes): (Vec<&Filter>, Vec<&Filter>) =
            filters.iter().partition(|f| f.inclusive);
        let keep_stack: Vec<bool> = self
            .stacks
            .iter()
            .map(|stack| {
                (includes.is_empty() || includes.iter().any(|f| f.matches(self, stack)))
                    && !excludes.iter().any(|f| f.matches(self, stack))
            })
            .collect();
        let mut filtered = self.clone();
        filtered
            .sites
            .retain(|site| keep_stack[site.stack as usize]);
        filtered
    }
}
