//! Folding the frames of async runtimes and of std's plumbing that lie between the program's own
//! frames, so that a stack through tokio reads as the program's calls with one marked frame where
//! the runtime was, instead of 55 frames of executor and waker code.
//!
//! Folding rewrites a snapshot (like [`Snapshot::filter`]): every view (tables, leaks, diffs,
//! flamegraphs, exports) then shows the folded stacks, and stacks that differ only inside folded
//! frames (a task polled from a worker's local queue or from its LIFO slot) become one.

use std::collections::{BTreeSet, HashMap};

use crate::frame::{SHORT_BACKTRACE_MARKER, frame_crate};
use crate::model::{Frame, Snapshot, Stack};

/// Which crates' frames fold when they lie between the program's own frames.
///
/// A frame belongs to the crate its demangled path starts with (`tokio` for
/// `tokio::runtime::task::raw::poll`, `core` for `<core::pin::Pin<P> as Future>::poll`; for
/// `<F as core::ops::FnOnce>::call_once`, with a bare type parameter, the trait's crate).
/// std, core and alloc fold as one family, `std`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameFolding {
    crates: BTreeSet<String>,
}

/// The function name of a folded run starts with this: `[folded: tokio, std]`.
pub const FOLDED_FRAME_PREFIX: &str = "[folded: ";

/// The crates folded by default: the standard library and what it vendors, and the async runtimes,
/// executors, service stacks and instrumentation wrappers that sit between a program's own frames.
pub const DEFAULT_FOLDED_CRATES: &[&str] = &[
    "std",
    "core",
    "alloc",
    "hashbrown",
    "tokio",
    "tokio_util",
    "tokio_stream",
    "futures",
    "futures_core",
    "futures_util",
    "futures_executor",
    "futures_task",
    "async_std",
    "async_executor",
    "async_task",
    "async_io",
    "smol",
    "actix_rt",
    "hyper",
    "hyper_util",
    "tower",
    "tower_service",
    "tower_layer",
    "tower_http",
    "axum",
    "axum_core",
    "tonic",
    "tracing",
    "tracing_futures",
    "rayon",
    "rayon_core",
];

/// The crates of the standard library, shown as one family (`std`) in folded frames' names.
const STD_FAMILY: &[&str] = &["std", "core", "alloc", "hashbrown"];

impl Default for FrameFolding {
    /// The crates of [`DEFAULT_FOLDED_CRATES`] (what the CLI folds unless told otherwise).
    ///
    /// ```
    /// use tracealloc_snapshot::{DEFAULT_FOLDED_CRATES, FrameFolding};
    ///
    /// let folding = FrameFolding::default();
    /// assert_eq!(folding.crates().count(), DEFAULT_FOLDED_CRATES.len());
    /// assert!(folding.crates().any(|c| c == "tokio"));
    /// assert!(!folding.is_none());
    /// ```
    fn default() -> Self {
        FrameFolding {
            crates: DEFAULT_FOLDED_CRATES
                .iter()
                .map(|&c| c.to_owned())
                .collect(),
        }
    }
}

impl FrameFolding {
    /// Folds nothing: every frame is kept (what `--full-stacks` shows).
    ///
    /// ```
    /// use tracealloc_snapshot::FrameFolding;
    ///
    /// let folding = FrameFolding::none();
    /// assert!(folding.is_none());
    /// assert_eq!(folding.crates().count(), 0);
    /// ```
    pub fn none() -> Self {
        FrameFolding {
            crates: BTreeSet::new(),
        }
    }

    /// Also folds the frames of `krate` (a crate name as it appears in paths: `my_framework`).
    ///
    /// ```
    /// use tracealloc_snapshot::FrameFolding;
    ///
    /// let mut folding = FrameFolding::none();
    /// folding.fold("my-framework").fold("tokio"); // `-` reads as `_`, as in paths
    /// assert_eq!(folding.crates().collect::<Vec<_>>(), ["my_framework", "tokio"]);
    /// ```
    pub fn fold(&mut self, krate: &str) -> &mut Self {
        self.crates.insert(normalized(krate));
        self
    }

    /// Keeps the frames of `krate` even if the default list folds them (`hyper`).
    ///
    /// ```
    /// use tracealloc_snapshot::{DEFAULT_FOLDED_CRATES, FrameFolding};
    ///
    /// let mut folding = FrameFolding::default();
    /// folding.keep("hyper");
    /// assert!(!folding.crates().any(|c| c == "hyper"));
    /// assert_eq!(folding.crates().count(), DEFAULT_FOLDED_CRATES.len() - 1);
    /// ```
    pub fn keep(&mut self, krate: &str) -> &mut Self {
        self.crates.remove(&normalized(krate));
        self
    }

    /// The crates whose frames fold.
    ///
    /// ```
    /// use tracealloc_snapshot::FrameFolding;
    ///
    /// let mut folding = FrameFolding::none();
    /// folding.fold("tokio-util").fold("rayon");
    /// let crates: Vec<&str> = folding.crates().collect(); // sorted
    /// assert_eq!(crates, ["rayon", "tokio_util"]);
    /// ```
    pub fn crates(&self) -> impl Iterator<Item = &str> {
        self.crates.iter().map(String::as_str)
    }

    /// Whether this folds nothing.
    ///
    /// ```
    /// use tracealloc_snapshot::FrameFolding;
    ///
    /// let mut folding = FrameFolding::none();
    /// assert!(folding.is_none());
    /// folding.fold("tokio");
    /// assert!(!folding.is_none());
    /// folding.keep("tokio");
    /// assert!(folding.is_none());
    /// ```
    pub fn is_none(&self) -> bool {
        self.crates.is_empty()
    }

    /// The family a frame folds under (`std` for std, core and alloc), or `None` if it is kept.
    fn family_of<'f>(&self, frame: &'f Frame) -> Option<&'f str> {
        if frame.is_folded() {
            // Folded before: it stands for its own families (see `run_name`).
            return Some(&frame.function);
        }
        let krate = if frame.is_runtime() && !frame.is_entry_point() {
            // std's own frames, by path or by name (`main` without a file is rustc's shim).
            "std"
        } else if frame.is_entry_point() {
            return self.crates.contains("std").then_some("std");
        } else {
            frame_crate(&frame.function)
        };
        if !self.crates.contains(krate) {
            return None;
        }
        Some(if STD_FAMILY.contains(&krate) {
            "std"
        } else {
            krate
        })
    }
}

/// `tokio-util` and `tokio_util` name one crate; paths use the underscore.
fn normalized(krate: &str) -> String {
    krate.trim().replace('-', "_")
}

/// How one stack folds: its frames (leaf first), with folded runs as names to intern.
enum Folded {
    Frame(u32),
    Run(String),
}

impl Snapshot {
    /// A copy whose stacks have each run of `folding`'s frames between the program's own frames
    /// replaced by one frame named after the run's crates (`[folded: tokio, std]`). What is kept:
    /// - the frames of crates `folding` does not name, and the profiler's own;
    /// - std's start-up at the root, up to the closure a thread runs (the views cut it anyway);
    /// - at the leaf, the call into std the program made (`Vec::push`): a leaf run folds only when
    ///   it holds frames of another folded crate (`tokio::spawn` allocating a task is charged to
    ///   the line that spawned, through a `[folded: tokio, std]` frame);
    /// - stacks with none of the program's frames (the runtime's own allocations), whole.
    ///
    /// Sites, threads, totals and the timeline are as they were; stacks that became equal are
    /// merged (their sites then share a stack).
    ///
    /// ```
    /// use tracealloc_snapshot::*;
    ///
    /// let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// snapshot.threads.push(ThreadInfo::new("tokio-runtime-worker", 2, true));
    /// let tokio = "/home/u/.cargo/registry/src/index.crates.io-1/tokio-1.48.0/src/lib.rs";
    /// snapshot.frames = vec![
    ///     Frame::new("app::cache_it").at("src/main.rs", Some(20), None),
    ///     Frame::new("<core::pin::Pin<P> as core::future::future::Future>::poll")
    ///         .at("/rustc/abc/library/core/src/future/future.rs", Some(124), None),
    ///     Frame::new("tokio::runtime::task::raw::poll").at(tokio, Some(255), None),
    ///     Frame::new("tokio::runtime::task::raw::poll_local").at(tokio, Some(260), None),
    ///     Frame::new("app::serve").at("src/main.rs", Some(10), None),
    /// ];
    /// // Two ways to poll the task, leaf first, that differ only inside tokio.
    /// snapshot.stacks = vec![Stack::new(vec![0, 1, 2, 4]), Stack::new(vec![0, 1, 3, 4])];
    /// for stack in 0..2 {
    ///     let mut site = Site::new(stack, 0);
    ///     (site.live_blocks, site.live_bytes) = (1, 256);
    ///     snapshot.sites.push(site);
    /// }
    ///
    /// let folded = snapshot.fold_frames(&FrameFolding::default());
    /// assert_eq!(folded.stacks.len(), 1); // the two stacks became one
    /// assert!(folded.sites.iter().all(|site| site.stack == 0));
    /// let frames: Vec<String> = folded.stack_frames(0).map(|f| f.label()).collect();
    /// assert_eq!(
    ///     frames,
    ///     [
    ///         "app::cache_it (src/main.rs:20)",
    ///         "[folded: tokio, std]",
    ///         "app::serve (src/main.rs:10)",
    ///     ]
    /// );
    /// assert_eq!(folded.top(1, GroupBy::Line)[0].live_bytes, 512);
    /// // Folding nothing: an unchanged copy.
    /// assert_eq!(snapshot.fold_frames(&FrameFolding::none()), snapshot);
    /// ```
    pub fn fold_frames(&self, folding: &FrameFolding) -> Snapshot {
        let mut folded = self.clone();
        if folding.is_none() {
            return folded;
        }
        let mut frame_index: HashMap<String, u32> = HashMap::new();
        let mut stack_index: HashMap<Vec<u32>, u32> = HashMap::new();
        folded.stacks.clear();
        let mut remap = Vec::with_capacity(self.stacks.len());
        for stack in &self.stacks {
            let frames: Vec<u32> = self
                .fold_stack(stack, folding)
                .into_iter()
                .map(|f| match f {
                    Folded::Frame(i) => i,
                    Folded::Run(name) => *frame_index.entry(name).or_insert_with_key(|name| {
                        folded.frames.push(Frame::new(name.clone()));
                        (folded.frames.len() - 1) as u32
                    }),
                })
                .collect();
            let next = stack_index.len() as u32;
            let index = *stack_index.entry(frames).or_insert_with_key(|frames| {
                folded.stacks.push(Stack::new(frames.clone()));
                next
            });
            remap.push(index);
        }
        for site in &mut folded.sites {
            site.stack = remap[site.stack as usize];
        }
        folded
    }

    fn fold_stack(&self, stack: &Stack, folding: &FrameFolding) -> Vec<Folded> {
        let frames = &stack.frames;
        let frame = |i: usize| &self.frames[frames[i] as usize];
        let unchanged = || frames.iter().map(|&f| Folded::Frame(f)).collect();
        // Leaf first: the profiler's frames, then the program's and the plumbing between them,
        // then std's start-up from the thread closure's caller to the root.
        let leaf = (0..frames.len())
            .find(|&i| !frame(i).is_profiler())
            .unwrap_or(frames.len());
        let start_up = (leaf..frames.len())
            .rev()
            .find(|&i| frame(i).function.contains(SHORT_BACKTRACE_MARKER))
            .map_or(frames.len(), |marker| {
                // The marker and std's glue leafward of it (`FnOnce::call_once` around `main`).
                (leaf..marker)
                    .rev()
                    .find(|&i| !frame(i).is_runtime())
                    .map_or(leaf, |own| own + 1)
            });
        let own = |i: usize| folding.family_of(frame(i)).is_none() && !frame(i).is_profiler();
        let Some(first_own) = (leaf..start_up).find(|&i| own(i)) else {
            return unchanged();
        };
        let mut out: Vec<Folded> = (0..leaf).map(|i| Folded::Frame(frames[i])).collect();
        // The leaf run: kept unless it reaches into a folded crate other than std.
        let leaf_run = leaf..first_own;
        let foreign = leaf_run.clone().any(|i| {
            folding
                .family_of(frame(i))
                .is_some_and(|family| family != "std")
        });
        if foreign {
            out.push(Folded::Run(self.run_name(&frames[leaf_run], folding)));
        } else {
            out.extend(leaf_run.map(|i| Folded::Frame(frames[i])));
        }
        let mut i = first_own;
        while i < start_up {
            if own(i) {
                out.push(Folded::Frame(frames[i]));
                i += 1;
                continue;
            }
            let run_end = (i..start_up).find(|&j| own(j)).unwrap_or(start_up);
            let run = &frames[i..run_end];
            if run.iter().any(|&f| !self.frames[f as usize].is_profiler()) {
                out.push(Folded::Run(self.run_name(run, folding)));
            }
            i = run_end;
        }
        out.extend(frames[start_up..].iter().map(|&f| Folded::Frame(f)));
        out
    }

    /// `[folded: hyper, tokio, std]`: the run's families, std last.
    fn run_name(&self, run: &[u32], folding: &FrameFolding) -> String {
        let families: BTreeSet<&str> = run
            .iter()
            .filter_map(|&f| folding.family_of(&self.frames[f as usize]))
            .flat_map(|family| {
                let listed = family
                    .strip_prefix(FOLDED_FRAME_PREFIX)
                    .and_then(|names| names.strip_suffix(']'));
                listed.unwrap_or(family).split(", ")
            })
            .collect();
        let mut names: Vec<&str> = families.iter().copied().filter(|&f| f != "std").collect();
        if families.contains("std") {
            names.push("std");
        }
        format!("{FOLDED_FRAME_PREFIX}{}]", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CaptureInfo, Metadata, Site, ThreadInfo};

    fn user(function: &str, line: u32) -> Frame {
        Frame::new(function).at("src/main.rs", Some(line), None)
    }

    fn std(function: &str) -> Frame {
        Frame::new(function).at("/rustc/abc/library/std/src/rt.rs", Some(1), None)
    }

    fn dep(function: &str) -> Frame {
        Frame::new(function).at(
            "/home/u/.cargo/registry/src/index.crates.io-1/tokio-1.48.0/src/lib.rs",
            Some(1),
            None,
        )
    }

    /// A leak at `app::cache_it` (src/main.rs:20) from a task polled on a tokio worker, reached
    /// through two polling paths that differ only inside tokio; a `tokio::spawn` from the program;
    /// and tokio's own allocation with none of the program's frames.
    fn tokio_snapshot() -> Snapshot {
        let capture = CaptureInfo::new("frame-pointers", 128, true);
        let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
        snapshot.frames = vec![
            Frame::new("__rustc::__rust_alloc"),          // 0
            std("alloc::raw_vec::RawVec<T,A>::grow_one"), // 1
            std("alloc::vec::Vec<T,A>::push"),            // 2
            user("app::cache_it", 20),                    // 3
            user("app::handle::{{closure}}", 30),         // 4
            std("<core::pin::Pin<P> as core::future::future::Future>::poll"), // 5
            dep("tokio::runtime::task::core::Core<T,S>::poll"), // 6
            dep("tokio::runtime::scheduler::multi_thread::worker::Context::run_task"), // 7
            dep("tokio::runtime::scheduler::multi_thread::worker::Context::run"), // 8
            std("std::sys::backtrace::__rust_begin_short_backtrace"), // 9
            std("core::ops::function::FnOnce::call_once"), // 10
            Frame::new("start_thread"),                   // 11
            dep("tokio::runtime::task::raw::RawTask::new"), // 12
            dep("tokio::task::spawn::spawn"),             // 13
            user("app::main::{{closure}}", 40),           // 14
            dep("tokio::runtime::scheduler::multi_thread::worker::Context::run_lifo"), // 15
            dep("tokio::runtime::blocking::pool::Spawner::spawn_thread::{{closure}}"), // 16
        ];
        snapshot.stacks = vec![
            // From the local queue and from the LIFO slot.
            Stack::new(vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 10, 9, 10, 11]),
            Stack::new(vec![0, 1, 2, 3, 4, 5, 6, 15, 7, 8, 16, 10, 9, 10, 11]),
            // The program spawning: tokio allocates the task.
            Stack::new(vec![0, 12, 13, 14, 5, 6, 7, 8, 16, 9, 11]),
            // tokio's own.
            Stack::new(vec![0, 1, 2, 8, 16, 9, 11]),
        ];
        snapshot.threads = vec![ThreadInfo::new("tokio-runtime-worker", 2, true)];
        for (stack, live) in [(0, 3000), (1, 1000), (2, 500), (3, 64)] {
            let mut site = Site::new(stack, 0);
            site.live_bytes = live;
            site.live_blocks = 1;
            site.total_bytes = live;
            site.total_blocks = 1;
            snapshot.sites.push(site);
        }
        snapshot
    }

    fn names(snapshot: &Snapshot, stack: u32) -> Vec<&str> {
        snapshot.stacks[stack as usize]
            .frames
            .iter()
            .map(|&f| snapshot.frames[f as usize].function.as_str())
            .collect()
    }

    #[test]
    fn runtime_frames_between_the_programs_fold_into_one() {
        let folded = tokio_snapshot().fold_frames(&FrameFolding::default());
        // The two polling paths are one stack now.
        assert_eq!(folded.sites[0].stack, folded.sites[1].stack);
        assert_eq!(
            names(&folded, folded.sites[0].stack),
            [
                "__rustc::__rust_alloc",
                "alloc::raw_vec::RawVec<T,A>::grow_one",
                "alloc::vec::Vec<T,A>::push",
                "app::cache_it",
                "app::handle::{{closure}}",
                "[folded: tokio, std]",
                "core::ops::function::FnOnce::call_once",
                "std::sys::backtrace::__rust_begin_short_backtrace",
                "core::ops::function::FnOnce::call_once",
                "start_thread",
            ]
        );
        // tokio allocating for the program's spawn: charged to the spawning line.
        assert_eq!(
            names(&folded, folded.sites[2].stack),
            [
                "__rustc::__rust_alloc",
                "[folded: tokio]",
                "app::main::{{closure}}",
                "[folded: tokio, std]",
                "std::sys::backtrace::__rust_begin_short_backtrace",
                "start_thread",
            ]
        );
        let spawn = &folded.stacks[folded.sites[2].stack as usize];
        assert_eq!(
            folded.user_frame(spawn).unwrap().function,
            "app::main::{{closure}}"
        );
        // tokio's own allocation keeps its frames.
        assert_eq!(names(&folded, folded.sites[3].stack).len(), 7);
        assert_eq!(folded.stacks.len(), 3);
    }

    #[test]
    fn kept_crates_and_no_folding_keep_their_frames() {
        let snapshot = tokio_snapshot();
        assert_eq!(snapshot.fold_frames(&FrameFolding::none()), snapshot);
        let mut keep_tokio = FrameFolding::default();
        keep_tokio.keep("tokio");
        let folded = snapshot.fold_frames(&keep_tokio);
        let frames = names(&folded, folded.sites[0].stack);
        assert!(frames.contains(&"tokio::runtime::task::core::Core<T,S>::poll"));
        assert!(frames.contains(&"[folded: std]"));
        assert!(!frames.contains(&"<core::pin::Pin<P> as core::future::future::Future>::poll"));
    }
}
