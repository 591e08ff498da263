//! The C allocation layer in process (`tracealloc::c_allocations!()`): C allocations (libc's
//! `strdup`) made in a loop at a known line are counted, charged to that Rust line through the C
//! frames, and Rust allocations are counted once (the `Profiler` stands down for the C layer).
//! Run with `TRACEALLOC_CAPTURE=unwind` (the C library has no frame pointers: a frame-pointer
//! walk would skip the Rust frame that called it).

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();
tracealloc::c_allocations!();

unsafe extern "C" {
    fn strdup(s: *const std::ffi::c_char) -> *mut std::ffi::c_char;
}

#[inline(never)]
fn copy_in_c(keep: &mut Vec<*mut std::ffi::c_char>) {
    for _ in 0..25 {
        // SAFETY: strdup copies a NUL-terminated string into a new malloc'd block.
        keep.push(unsafe { strdup(c"eleven char".as_ptr()) }); // STRDUP LINE
    }
}

#[inline(never)]
#[allow(clippy::vec_box)] // Each box is one allocation to count.
fn rust_boxes() -> Vec<Box<[u8; 40]>> {
    (0..30).map(|_| Box::new([1u8; 40])).collect() // BOX LINE
}

fn line_of(marker: &str) -> u32 {
    include_str!("c_allocations.rs")
        .lines()
        .position(|l| l.contains(marker) && !l.contains("line_of"))
        .unwrap() as u32
        + 1
}

fn main() {
    let mut keep = Vec::with_capacity(100);
    copy_in_c(&mut keep);
    let boxes = rust_boxes();
    let snapshot = tracealloc::snapshot();
    let model = snapshot.as_model();
    let (strdup_line, box_line) = (line_of("STRDUP LINE"), line_of("BOX LINE"));
    let mut c_blocks = 0;
    let mut box_blocks = 0;
    for site in &model.sites {
        let frames: Vec<_> = model.stacks[site.stack as usize]
            .frames
            .iter()
            .map(|&f| &model.frames[f as usize])
            .collect();
        let through_strdup = frames.iter().any(|f| f.function.contains("strdup"));
        let at_line = |line: u32| {
            frames.iter().any(|f| {
                f.line == Some(line)
                    && f.file
                        .as_deref()
                        .is_some_and(|p| p.ends_with("c_allocations.rs"))
            })
        };
        if through_strdup && at_line(strdup_line) {
            c_blocks += site.total_blocks;
        }
        if at_line(box_line) {
            box_blocks += site.total_blocks;
        }
    }
    assert_eq!(
        c_blocks, 25,
        "strdup's blocks, charged to line {strdup_line} through strdup"
    );
    assert_eq!(
        box_blocks, 31,
        "each Rust box and their vector once, at line {box_line}"
    );
    let m = tracealloc::measure(|| drop(Box::new(5u64)));
    assert_eq!(
        m.allocations, 1,
        "measure sees Rust allocations through the C layer"
    );
    drop(boxes);
    for p in keep {
        // SAFETY: blocks from strdup, freed once.
        unsafe { libc::free(p.cast()) };
    }
    println!("c allocations: ok");
}
