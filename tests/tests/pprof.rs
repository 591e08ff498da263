//! `tracealloc::pprof_heap()`: the live heap as a gzipped pprof profile, built in process, with Go's
//! heap sample types and the thread and task labels.

use std::hint::black_box;
use std::io::Read;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

#[test]
fn the_heap_profile_carries_go_sample_types_and_labels() {
    let kept = tracealloc::with_label("ingest", || black_box(vec![3u8; 12345]));
    // The test harness's own thread may allocate meanwhile (its timeout watch): building the
    // profile adds nothing in at least one of three tries.
    let mut uncounted = Vec::new();
    let mut gzipped = Vec::new();
    for _ in 0..3 {
        let before = tracealloc::stats();
        gzipped = tracealloc::pprof_heap();
        uncounted.push(tracealloc::stats().total_blocks - before.total_blocks);
    }
    assert!(
        uncounted.contains(&0),
        "building the profile is not counted: {uncounted:?}"
    );
    assert_eq!(&gzipped[..2], &[0x1f, 0x8b], "gzip");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&gzipped[..])
        .read_to_end(&mut raw)
        .unwrap();
    let has = |needle: &str| raw.windows(needle.len()).any(|w| w == needle.as_bytes());
    for needle in [
        "alloc_objects",
        "alloc_space",
        "inuse_objects",
        "inuse_space",
        "thread",
        "label",
        "ingest",
        "tests/pprof.rs",
    ] {
        assert!(has(needle), "the profile names {needle}");
    }
    drop(kept);
}
