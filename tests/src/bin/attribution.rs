//! Allocations at known lines show up under those `file:line` keys with exact figures, including
//! `Vec::push` growth, `format!`, and an allocation made before `main`.

use tracealloc::{GroupBy, Snapshot};
use tracealloc_tests::stat_ending_with;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

static mut BEFORE_MAIN_LINE: u32 = 0;

extern "C" fn before_main() {
    // SAFETY: runs once, single-threaded, before main.
    unsafe { BEFORE_MAIN_LINE = line!() + 1 };
    std::hint::black_box(Box::leak(Box::new([1u8; 333])));
}

#[used]
#[unsafe(link_section = ".init_array")]
static BEFORE_MAIN: extern "C" fn() = before_main;

fn key(line: u32) -> String {
    format!("{}:{line}", file!())
}

#[inline(never)]
#[allow(
    clippy::vec_box,
    reason = "ten separate heap blocks are what is measured"
)]
fn boxes() -> (Vec<Box<[u8; 100]>>, u32, u32) {
    let vec_line = line!() + 1;
    let mut v = Vec::with_capacity(10);
    let box_line = line!() + 2;
    for _ in 0..10 {
        v.push(Box::new([0u8; 100]));
    }
    (v, vec_line, box_line)
}

#[inline(never)]
fn pushes() -> (Vec<u64>, u32) {
    let mut v = Vec::new();
    let line = line!() + 2;
    for i in 0..100 {
        v.push(i);
    }
    (v, line)
}

#[inline(never)]
fn formatted() -> (String, u32) {
    let line = line!() + 1;
    let s = format!("{}-{}-{}", "abc", 42, std::hint::black_box("tail"));
    (s, line)
}

fn main() {
    let expected_method = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "frame-pointers".to_owned());
    let before = tracealloc::snapshot();
    assert_eq!(before.meta().capture.method, expected_method);
    assert_eq!(
        before.profiler().captures.broken,
        0,
        "{:?}",
        before.profiler().captures
    );
    let (boxes, vec_line, box_line) = boxes();
    let (pushed, push_line) = pushes();
    let (text, format_line) = formatted();
    let after = tracealloc::snapshot();
    let lines = after.statistics(GroupBy::Line);

    let s = stat_ending_with(&lines, &key(box_line));
    assert_eq!(
        (s.live_bytes, s.live_blocks, s.total_bytes, s.total_blocks),
        (1000, 10, 1000, 10),
        "{s}"
    );
    let s = stat_ending_with(&lines, &key(vec_line));
    assert_eq!(
        (s.live_bytes, s.live_blocks, s.total_bytes, s.total_blocks),
        (80, 1, 80, 1),
        "{s}"
    );
    // Growth by push: one alloc of 4 elements, then reallocs to 8, 16, 32, 64 and 128 elements.
    let s = stat_ending_with(&lines, &key(push_line));
    assert_eq!(pushed.capacity(), 128);
    assert_eq!(
        (s.live_bytes, s.live_blocks, s.total_bytes, s.total_blocks),
        (1024, 1, 2016, 6),
        "{s}"
    );
    let s = stat_ending_with(&lines, &key(format_line));
    assert_eq!(
        (s.live_bytes, s.live_blocks),
        (text.capacity() as u64, 1),
        "{s}"
    );
    // SAFETY: written once before main, read after.
    let before_main_line = unsafe { BEFORE_MAIN_LINE };
    let s = stat_ending_with(&lines, &key(before_main_line));
    assert_eq!((s.live_bytes, s.live_blocks), (333, 1), "{s}");

    // Functions and files group the same sites.
    let functions = after.statistics(GroupBy::Function);
    let s = functions
        .iter()
        .find(|s| s.key == "attribution::boxes")
        .expect("boxes() is a key");
    assert_eq!((s.live_bytes, s.live_blocks), (1080, 11), "{s}");
    let files = after.statistics(GroupBy::File);
    let s = stat_ending_with(&files, file!());
    let ours = 1080 + 1024 + text.capacity() as u64 + 333;
    assert!(s.live_bytes >= ours, "{s}");
    // The stack of the push site starts at the line that pushed and goes up through main.
    let stacks = after.statistics(GroupBy::Stack);
    let push_stack = stacks
        .iter()
        .find(|s| {
            s.frames().any(|f| {
                f.starts_with("attribution::pushes ") && f.ends_with(&(key(push_line) + ")"))
            })
        })
        .expect("a stack through pushes()");
    assert!(
        push_stack
            .frames()
            .any(|f| f.starts_with("attribution::main ")),
        "{}",
        push_stack.key
    );

    // The snapshots' own memory is not counted: the diff holds exactly the four sites above.
    let diff = after.diff(&before);
    let grown: u64 = diff
        .statistics(GroupBy::Line)
        .iter()
        .map(|d| d.bytes_diff.max(0) as u64)
        .sum();
    assert_eq!(grown, 1000 + 80 + 1024 + text.capacity() as u64);

    // Save and load give the same snapshot.
    let path = std::env::temp_dir().join(format!(
        "tracealloc-attribution-{}.json",
        std::process::id()
    ));
    after.save(&path).expect("save");
    let loaded = Snapshot::load(&path).expect("load");
    std::fs::remove_file(&path).ok();
    assert_eq!(loaded, after);
    std::hint::black_box((boxes, pushed, text));
    println!("attribution ok");
}
