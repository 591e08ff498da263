//! The allocator's edge cases: huge alignments, realloc in both directions, `alloc_zeroed`,
//! allocation failure (null passed through, nothing recorded), zero-size types, allocations in TLS
//! destructors and at thread start and exit, and `fork` while other threads allocate and snapshot.
//! Run in exact mode and in sampled mode (`TRACEALLOC_SAMPLE`), whose blocks are laid out
//! differently: every whole-process figure checked here is exact in both.

use std::alloc::{GlobalAlloc, Layout, alloc, alloc_zeroed, dealloc, realloc};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

fn delta(before: tracealloc::HeapStats) -> (i64, i64, u64, u64) {
    let now = tracealloc::stats();
    (
        now.live_bytes as i64 - before.live_bytes as i64,
        now.live_blocks as i64 - before.live_blocks as i64,
        now.total_bytes - before.total_bytes,
        now.total_blocks - before.total_blocks,
    )
}

fn huge_alignments() {
    for align in [16usize, 64, 4096, 1 << 16, 1 << 21] {
        let start = tracealloc::stats();
        let layout = Layout::from_size_align(100, align).unwrap();
        // SAFETY: a non-zero-size layout; the block is used within its size and freed with it.
        unsafe {
            let p = alloc(layout);
            assert!(
                !p.is_null() && (p as usize).is_multiple_of(align),
                "align {align}"
            );
            p.write_bytes(0xAB, 100);
            assert_eq!(delta(start), (100, 1, 100, 1), "align {align}");
            let p = realloc(p, layout, 50_000); // grow
            assert!(!p.is_null() && (p as usize).is_multiple_of(align));
            assert_eq!(*p.add(99), 0xAB);
            assert_eq!(delta(start), (50_000, 1, 50_100, 2));
            let bigger = Layout::from_size_align(50_000, align).unwrap();
            let p = realloc(p, bigger, 10); // shrink
            assert!(!p.is_null() && (p as usize).is_multiple_of(align));
            assert_eq!(*p.add(9), 0xAB);
            assert_eq!(delta(start), (10, 1, 50_110, 3));
            dealloc(p, Layout::from_size_align(10, align).unwrap());
        }
        assert_eq!(delta(start), (0, 0, 50_110, 3));
    }
}

fn zeroed() {
    let start = tracealloc::stats();
    let layout = Layout::from_size_align(4096, 64).unwrap();
    // SAFETY: non-zero size; read within the block; freed with its layout.
    unsafe {
        let p = alloc_zeroed(layout);
        assert!(std::slice::from_raw_parts(p, 4096).iter().all(|&b| b == 0));
        dealloc(p, layout);
    }
    assert_eq!(delta(start), (0, 0, 4096, 1));
}

fn failures() {
    let start = tracealloc::stats();
    // SAFETY: these layouts are valid; the allocator is expected to fail them and return null.
    unsafe {
        let too_big = Layout::from_size_align(isize::MAX as usize / 2, 8).unwrap();
        assert!(alloc(too_big).is_null());
        assert!(alloc_zeroed(too_big).is_null());
        // So close to the limit that the profiler's header cannot fit: refused, not wrapped.
        let at_limit = Layout::from_size_align(isize::MAX as usize - 7, 8).unwrap();
        assert!(ALLOC.alloc(at_limit).is_null());
        let layout = Layout::new::<[u64; 4]>();
        let p = alloc(layout);
        assert!(realloc(p, layout, isize::MAX as usize / 2).is_null());
        dealloc(p, layout); // the old block is intact after a failed realloc
    }
    assert_eq!(delta(start), (0, 0, 32, 1), "failures record nothing");
}

fn zero_sized() {
    let start = tracealloc::stats();
    let v: Vec<()> = Vec::with_capacity(1000);
    let b = Box::new(());
    let many: Vec<[u8; 0]> = vec![[]; 1 << 20];
    std::hint::black_box((&v, &b, &many));
    drop((v, b, many));
    assert_eq!(delta(start), (0, 0, 0, 0), "zero-size types never allocate");
}

struct AllocatesOnDrop;
impl Drop for AllocatesOnDrop {
    fn drop(&mut self) {
        let v = std::hint::black_box(vec![1u8; 777]);
        drop(v);
        std::mem::forget(std::hint::black_box(vec![2u8; 555])); // a leak from a TLS destructor
    }
}
thread_local! {
    static ON_EXIT: AllocatesOnDrop = const { AllocatesOnDrop };
}

fn thread_start_and_exit() {
    let start = tracealloc::stats();
    let handle = std::thread::Builder::new()
        .name("tls-exit".into())
        .spawn(|| ON_EXIT.with(|_| ()))
        .unwrap();
    handle.join().unwrap();
    let (live_bytes, live_blocks, total_bytes, total_blocks) = delta(start);
    // The TLS destructor's 777 bytes came and went; its 555 stayed.
    assert!(
        total_bytes >= 777 + 555 && total_blocks >= 2,
        "{total_bytes} {total_blocks}"
    );
    assert!(
        live_bytes >= 555 && live_blocks >= 1,
        "{live_bytes} {live_blocks}"
    );
    let snapshot = tracealloc::snapshot();
    let exited = snapshot
        .threads()
        .iter()
        .find(|t| t.name == "tls-exit")
        .expect("the exited thread keeps its name");
    assert!(!exited.alive);
    if snapshot.meta().capture.sampling_bytes != 0 {
        return; // sampled (TRACEALLOC_SAMPLE): site figures are estimates, a few blocks may be left out
    }
    let leaked = snapshot
        .statistics(tracealloc::GroupBy::Thread)
        .into_iter()
        .find(|s| s.key == "tls-exit")
        .unwrap();
    assert!(
        leaked.live_bytes >= 555 && leaked.total_bytes >= 777 + 555,
        "{leaked}"
    );
}

fn fork_while_other_threads_allocate_and_snapshot() {
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::hint::black_box(vec![0u8; 64]);
            }
        })
    };
    // Holds the profiler's locks often: a child forked meanwhile must not inherit them held.
    let snapshotter = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::hint::black_box(tracealloc::snapshot());
                tracealloc::reset_peak();
            }
        })
    };
    for _ in 0..20 {
        // SAFETY: the child only allocates, snapshots and calls _exit; fork is async-signal-safe
        // to call here, and the profiler's fork handler repairs the other threads' state.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let kept = vec![5u8; 1000];
            let snapshot = tracealloc::snapshot();
            tracealloc::reset_peak();
            let ok = !snapshot.sites().is_empty() && tracealloc::stats().live_bytes >= 1000;
            std::hint::black_box(kept);
            // SAFETY: ends the child at once, without running the parent's exit handlers.
            unsafe { libc::_exit(if ok { 0 } else { 3 }) };
        }
        assert!(pid > 0, "fork failed");
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child status {status}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    snapshotter.join().unwrap();
}

fn main() {
    huge_alignments();
    zeroed();
    failures();
    zero_sized();
    thread_start_and_exit();
    fork_while_other_threads_allocate_and_snapshot();
    println!("edges ok");
}
