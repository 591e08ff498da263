//! End to end: this program profiles itself with the library, takes two snapshots around a leak,
//! and the built `tracealloc` binary finds the leaking line at the top of `diff`.
//! (A test of its own, without the test harness, so that tracealloc is its global allocator.)

use std::process::Command;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

const LEAK_LINE: u32 = line!() + 3;
#[inline(never)]
fn leak(into: &mut Vec<String>, i: usize) {
    into.push(format!("{i:0>1000}"));
}

fn main() {
    let mut kept = Vec::with_capacity(100);
    let before = tracealloc::snapshot();
    for i in 0..40 {
        leak(&mut kept, i);
    }
    let after = tracealloc::snapshot();
    let dir = std::env::temp_dir().join(format!("tracealloc-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (old, new) = (dir.join("before.json"), dir.join("after.json"));
    before.save(&old).unwrap();
    after.save(&new).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tracealloc"))
        .args([
            "diff",
            old.to_str().unwrap(),
            new.to_str().unwrap(),
            "-n",
            "1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = format!("{}:{LEAK_LINE}", file!());
    let top = text.lines().nth(1).unwrap_or_default();
    assert!(
        top.contains(&expected) && top.contains("+40"),
        "top of the diff is the leak {expected}:\n{text}"
    );
    std::hint::black_box(kept);
    println!("end_to_end ok");
}
