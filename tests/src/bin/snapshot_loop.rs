//! A program that looks at its own heap in a loop (`snapshot().top()` every iteration, as a
//! service's debug endpoint would): its resident memory stays flat, because each snapshot releases
//! the debug info's parsed tables once it has its names, and the names stay right.

use tracealloc::GroupBy;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

const KEEP_LINE: u32 = line!() + 3;
#[inline(never)]
fn keep(into: &mut Vec<Vec<u8>>, i: usize) {
    into.push(vec![i as u8; 4096]);
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap()
}

fn main() {
    let mut kept = Vec::with_capacity(1000);
    let mut warm = 0;
    for round in 0..40 {
        for i in 0..20 {
            keep(&mut kept, i);
        }
        let top = tracealloc::snapshot().top(3, GroupBy::Line);
        let line = format!("{}:{KEEP_LINE}", file!());
        assert!(top[0].key.ends_with(&line), "round {round}: {top:?}");
        assert_eq!(top[0].live_blocks, (round + 1) * 20);
        if round == 4 {
            warm = resident_kib();
        }
    }
    // 700 more blocks of 4 KiB (2.7 MiB) were kept after the warm-up; the snapshots add nothing.
    let grown = resident_kib().saturating_sub(warm);
    assert!(
        grown < 2_800 + 2_048,
        "resident memory grew by {grown} KiB over 35 snapshots"
    );
    println!("snapshot_loop ok: grew {grown} KiB over 35 snapshots");
}
