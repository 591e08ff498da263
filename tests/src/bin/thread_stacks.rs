//! Stacks as flamegraphs and folded output show them, in any build: every stack of a leak reaches
//! from the thread's closure (or `main`) to the allocating call, without std's start-up, and
//! `full_stacks` keeps the start-up. Frames are recognized by file and line, so the checks hold
//! with full names (`debug = "limited"`), short ones (`"line-tables-only"`), frame pointers or the
//! DWARF unwinder, debug or release (CI runs those).

use tracealloc::model::{FoldOptions, Metric};

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

const LEAK_LINE: u32 = line!() + 4;
#[inline(never)]
#[allow(clippy::vec_box)] // one heap block per element is the point
fn leak_blocks(count: usize) -> Vec<Box<[u8; 16]>> {
    (0..count).map(|_| Box::new([3u8; 16])).collect()
}

fn main() {
    const SPAWN_LINE: u32 = line!() + 3;
    let leaked = std::thread::Builder::new()
        .name("leaker".into())
        .spawn(|| leak_blocks(1000))
        .unwrap()
        .join()
        .unwrap();
    const MAIN_LINE: u32 = line!() + 1;
    let from_main = leak_blocks(10);
    let snapshot = tracealloc::snapshot();
    let mut fold = FoldOptions::default();
    fold.metric = Metric::LiveBlocks;
    let folded = snapshot.folded(&fold);
    let at = |line: u32| format!("thread_stacks.rs:{line})");
    // A box's stack goes through the closure given to `map` on LEAK_LINE; its Vec's buffer's does
    // not (in release `leak_blocks` may even tail-call `collect` and leave no frame of its own).
    let is_box = |l: &&String| {
        l.split(';')
            .any(|frame| frame.contains("{{closure}}") && frame.ends_with(&at(LEAK_LINE)))
    };
    let leaks: Vec<&String> = folded.iter().filter(is_box).collect();
    let root_of = |l: &str| l.split(';').next().unwrap_or_default().to_owned();
    let blocks = |root_line: u32| -> u64 {
        leaks
            .iter()
            .filter(|l| root_of(l).ends_with(&at(root_line)))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    for line in &leaks {
        assert!(
            !line.contains("lang_start") && !line.contains("catch_unwind"),
            "std's start-up is not shown: {line}"
        );
    }
    assert_eq!(
        blocks(SPAWN_LINE),
        1000,
        "1,000 boxes rooted at the leaker's closure: {leaks:#?}"
    );
    assert_eq!(blocks(MAIN_LINE), 10, "10 boxes rooted at main: {leaks:#?}");
    assert_eq!(
        leaks
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum::<u64>(),
        1010,
        "no other stack: {leaks:#?}"
    );
    let mut full = FoldOptions::default();
    full.full_stacks = true;
    assert!(
        snapshot
            .folded(&full)
            .iter()
            .any(|l| l.contains("__rust_begin_short_backtrace") && l.contains(&at(LEAK_LINE))),
        "full stacks keep std's start-up"
    );
    std::hint::black_box((leaked, from_main));
    println!("thread stacks ok ({})", snapshot.meta().capture.method);
}
