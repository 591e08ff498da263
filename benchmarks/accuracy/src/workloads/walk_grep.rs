//! "walk+grep": ripgrep's libraries. The `ignore` crate's parallel walker (2 threads) walks crate
//! directories of the cargo registry's sources, and on each thread a grep-searcher `Searcher`
//! searches every file for function and impl headers with a grep-regex matcher, keeping each
//! matching line. Five passes.
//!
//! The roots come from the command line (the driver picks them once, so that every run of a
//! comparison walks the same files even while other builds unpack new crates); without them, the
//! first crate directories, by name, that hold about 5,000 files. Which thread searches which file
//! varies from run to run; the bytes allocated per file do not, except a searcher's line buffer,
//! which grows on a thread that meets a long line.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use grep_regex::RegexMatcher;
use grep_searcher::sinks::Lossy;
use grep_searcher::{BinaryDetection, SearcherBuilder};
use ignore::{WalkBuilder, WalkState};

const PASSES: usize = 5;
const PATTERN: &str = r"(?-u:\b)(fn|impl)\s+[A-Za-z_][A-Za-z0-9_]*\s*[<(]";
pub const FILE_LIMIT: usize = 5_000;

pub fn run(args: &[OsString]) -> Box<dyn std::any::Any> {
    let roots: Vec<PathBuf> = if args.is_empty() {
        default_roots(FILE_LIMIT)
    } else {
        args.iter().map(PathBuf::from).collect()
    };
    assert!(!roots.is_empty(), "walk+grep: no registry sources found");
    let matches = Mutex::new(Vec::new());
    let mut files = 0;
    for _ in 0..PASSES {
        files = walk_and_search(&roots, &matches);
    }
    let matches = matches.into_inner().unwrap();
    eprintln!(
        "walk+grep: {} roots, {} files searched per pass, {} matching lines in {} passes",
        roots.len(),
        files,
        matches.len(),
        PASSES
    );
    Box::new(matches)
}

fn walk_and_search(roots: &[PathBuf], matches: &Mutex<Vec<String>>) -> usize {
    let matcher = RegexMatcher::new_line_matcher(PATTERN).expect("valid pattern");
    let mut builder = WalkBuilder::new(&roots[0]);
    for root in &roots[1..] {
        builder.add(root);
    }
    let files = std::sync::atomic::AtomicUsize::new(0);
    builder.threads(2).build_parallel().run(|| {
        let matcher = matcher.clone();
        let mut searcher = SearcherBuilder::new()
            .line_number(true)
            .binary_detection(BinaryDetection::quit(0))
            .build();
        let files = &files;
        Box::new(move |entry| {
            let Ok(entry) = entry else {
                return WalkState::Continue;
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            files.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = entry.path();
            let _ = searcher.search_path(
                &matcher,
                path,
                Lossy(|number, line| {
                    let kept = format!("{}:{number}: {}", path.display(), line.trim_end());
                    matches.lock().unwrap().push(kept);
                    Ok(true)
                }),
            );
            WalkState::Continue
        })
    });
    files.into_inner()
}

/// The registry's source directory: `$CARGO_HOME/registry/src`, else `~/.cargo/registry/src`.
fn registry_src() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let src = home.join("registry").join("src");
    src.is_dir().then_some(src)
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match entry.file_type() {
            Ok(t) if t.is_dir() => n += count_files(&entry.path()),
            Ok(t) if t.is_file() => n += 1,
            _ => {}
        }
    }
    n
}

/// The first crate directories of the registry's sources, by path, that hold at least `limit`
/// files between them.
pub fn default_roots(limit: usize) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    let mut files = 0;
    let Some(src) = registry_src() else {
        return roots;
    };
    for index in sorted_dirs(&src) {
        for krate in sorted_dirs(&index) {
            if files >= limit {
                return roots;
            }
            files += count_files(&krate);
            roots.push(krate);
        }
    }
    roots
}
