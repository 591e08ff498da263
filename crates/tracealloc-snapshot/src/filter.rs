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
    pub fn include(pattern: &str) -> Self {
        Self::new(true, pattern)
    }

    /// Drops sites matching `pattern`.
    pub fn exclude(pattern: &str) -> Self {
        Self::new(false, pattern)
    }

    /// The filters of command-line style patterns: an inclusive one for each of `include`, an
    /// exclusive one for each of `exclude` (none at all keeps every site).
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
    pub fn all_frames(mut self) -> Self {
        self.all_frames = true;
        self
    }

    /// The pattern as given.
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
