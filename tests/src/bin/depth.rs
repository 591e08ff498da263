//! Stacks deeper than the depth limit: one `[truncated]` root in the folded output, and
//! `TRACEALLOC_DEPTH` sets the limit. Prints how many `recurse` frames the truncated stack kept.

use std::hint::black_box;

use tracealloc::model::FoldOptions;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

#[inline(never)]
#[allow(clippy::vec_box)] // one heap block per box is the point
fn recurse(n: u32, out: &mut Vec<Box<[u8; 64]>>) {
    if n == 0 {
        out.push(Box::new([7u8; 64]));
    } else {
        recurse(black_box(n - 1), out);
    }
    black_box(&*out);
}

fn main() {
    let expected_depth: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .expect("the expected depth limit as the argument");
    let mut out = Vec::with_capacity(100);
    for _ in 0..100 {
        recurse(300, &mut out); // deeper than any limit (at most 256)
    }
    let snapshot = tracealloc::snapshot();
    assert_eq!(snapshot.meta().capture.max_depth, expected_depth);
    // The start-up probe for frame pointers walks two frames whatever the limit.
    println!("method {}", snapshot.meta().capture.method);
    if expected_depth < 8 {
        println!("depth ok");
        return;
    }

    let mut fold = FoldOptions::default();
    fold.metric = tracealloc::model::Metric::LiveBytes;
    let folded = snapshot.folded(&fold);
    let deep: Vec<&String> = folded
        .iter()
        .filter(|l| l.contains("depth::recurse"))
        .collect();
    assert_eq!(deep.len(), 1, "one stack for the 100 boxes: {deep:#?}");
    let line = deep[0];
    assert!(
        line.starts_with("[truncated];depth::recurse"),
        "the truncated stack is rooted at [truncated], then the deepest frame it kept: {line}"
    );
    assert!(line.ends_with(" 6400"), "100 boxes of 64 bytes: {line}");
    assert!(
        snapshot.profiler().captures.truncated >= 100,
        "{:?}",
        snapshot.profiler().captures
    );
    let kept = line.matches("depth::recurse").count();
    println!("recurse frames {kept}");
    black_box(out);
    println!("depth ok");
}
