//! The oracle workload under dhat-rs. Argument: `single` or `threads`.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    if mode == "points" {
        // Whole stacks (dhat-rs keeps 10 frames by default), written to the file named next.
        let path = std::env::args()
            .nth(2)
            .expect("points needs an output path");
        let profiler = dhat::Profiler::builder()
            .trim_backtraces(None)
            .file_name(path)
            .build();
        let kept = tracealloc_tests::oracle_work(42, 20_000);
        drop(profiler);
        drop(kept);
        return;
    }
    let profiler = dhat::Profiler::builder().testing().build();
    let kept = match mode.as_str() {
        "single" => tracealloc_tests::oracle_work(42, 20_000),
        _ => tracealloc_tests::oracle_threads(4, 10_000),
    };
    let s = dhat::HeapStats::get();
    drop(kept);
    drop(profiler);
    tracealloc_tests::print_figures(
        s.total_blocks,
        s.total_bytes,
        s.curr_blocks as u64,
        s.curr_bytes as u64,
        s.max_blocks as u64,
        s.max_bytes as u64,
    );
}
