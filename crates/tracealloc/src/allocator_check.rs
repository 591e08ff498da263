//! The model check at the allocator's surface: random sequences of `alloc`, `alloc_zeroed`,
//! `realloc` (both directions) and `dealloc` with random sizes and alignments, through a
//! `Profiler` instance (headers, padding, the process-wide registry), against a reference that
//! recomputes every figure by hand. Block contents are checked too: the profiler must never
//! touch the caller's bytes.
//!
//! In this unit-test binary the global allocator is the plain system one, so the only operations
//! the process-wide registry sees are this test's.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Mutex;

use proptest::prelude::*;

use crate::Profiler;
use crate::process::REGISTRY;

/// One test at a time owns the process-wide registry.
pub(crate) static REGISTRY_USERS: Mutex<()> = Mutex::new(());

#[derive(Debug, Clone)]
enum Op {
    Alloc {
        size: usize,
        align_log2: u32,
        zeroed: bool,
    },
    Realloc {
        block: usize,
        size: usize,
    },
    Free {
        block: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let size = prop_oneof![1usize..64, 64usize..5000, 5000usize..300_000];
    prop_oneof![
        3 => (size.clone(), 0u32..13, any::<bool>()).prop_map(|(size, align_log2, zeroed)| Op::Alloc { size, align_log2, zeroed }),
        2 => (any::<usize>(), size).prop_map(|(block, size)| Op::Realloc { block, size }),
        2 => any::<usize>().prop_map(|block| Op::Free { block }),
    ]
}

struct Block {
    ptr: *mut u8,
    layout: Layout,
    fill: u8,
}

fn check_contents(block: &Block, len: usize) {
    // SAFETY: the block is live and at least `len` bytes long.
    let bytes = unsafe { std::slice::from_raw_parts(block.ptr, len) };
    assert!(
        bytes.iter().all(|&b| b == block.fill),
        "block contents changed"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn allocator_figures_match_the_reference(ops in prop::collection::vec(op(), 1..200)) {
        let _owner = REGISTRY_USERS.lock().unwrap_or_else(|e| e.into_inner());
        let profiler = Profiler::system();
        crate::reset_peak();
        let start = REGISTRY.stats();
        let (mut live, mut total, mut peak) = ((0u64, 0u64), (0u64, 0u64), (0u64, 0u64));
        let mut blocks: Vec<Block> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Alloc { size, align_log2, zeroed } => {
                    let layout = Layout::from_size_align(size, 1 << align_log2).unwrap();
                    // SAFETY: a non-zero-size layout.
                    let ptr = unsafe { if zeroed { profiler.alloc_zeroed(layout) } else { profiler.alloc(layout) } };
                    prop_assert!(!ptr.is_null());
                    prop_assert!((ptr as usize).is_multiple_of(layout.align()), "alignment {}", layout.align());
                    if zeroed {
                        check_contents(&Block { ptr, layout, fill: 0 }, size);
                    }
                    let fill = i as u8;
                    // SAFETY: the block has `size` bytes.
                    unsafe { ptr.write_bytes(fill, size) };
                    blocks.push(Block { ptr, layout, fill });
                    live = (live.0 + size as u64, live.1 + 1);
                    total = (total.0 + size as u64, total.1 + 1);
                    if live.0 >= peak.0 { peak = live; }
                }
                Op::Realloc { block, size } if !blocks.is_empty() => {
                    let count = blocks.len();
                    let b = &mut blocks[block % count];
                    let old = b.layout.size();
                    // SAFETY: the block is live with this layout; the new size is non-zero.
                    let ptr = unsafe { profiler.realloc(b.ptr, b.layout, size) };
                    prop_assert!(!ptr.is_null());
                    prop_assert!((ptr as usize).is_multiple_of(b.layout.align()));
                    b.ptr = ptr;
                    check_contents(b, old.min(size));
                    b.layout = Layout::from_size_align(size, b.layout.align()).unwrap();
                    // SAFETY: the block now has `size` bytes.
                    unsafe { ptr.write_bytes(b.fill, size) };
                    live.0 = live.0 + size as u64 - old as u64;
                    total = (total.0 + size as u64, total.1 + 1);
                    if live.0 >= peak.0 { peak = live; }
                }
                Op::Free { block } if !blocks.is_empty() => {
                    let b = blocks.swap_remove(block % blocks.len());
                    check_contents(&b, b.layout.size());
                    // SAFETY: the block is live with this layout.
                    unsafe { profiler.dealloc(b.ptr, b.layout) };
                    live = (live.0 - b.layout.size() as u64, live.1 - 1);
                }
                _ => {}
            }
        }
        let now = REGISTRY.stats();
        let result = (
            (now.live_bytes - start.live_bytes, now.live_blocks - start.live_blocks),
            (now.total_bytes - start.total_bytes, now.total_blocks - start.total_blocks),
            (now.peak_bytes - start.live_bytes, now.peak_blocks - start.live_blocks),
        );
        for b in blocks.drain(..) {
            // SAFETY: the block is live with this layout.
            unsafe { profiler.dealloc(b.ptr, b.layout) };
        }
        prop_assert_eq!(result, (live, total, peak));
        prop_assert_eq!(REGISTRY.stats().live_bytes, start.live_bytes, "all freed");
    }
}

/// An inner allocator that remembers the layout of its last request.
#[derive(Default)]
struct RecordingInner {
    last: Mutex<Option<Layout>>,
}

impl RecordingInner {
    fn last(&self) -> Layout {
        self.last.lock().unwrap().expect("a request")
    }
}

// SAFETY: forwards to the system allocator unchanged.
unsafe impl GlobalAlloc for RecordingInner {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        *self.last.lock().unwrap() = Some(layout);
        // SAFETY: forwarded contract.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        *self.last.lock().unwrap() = Some(layout);
        // SAFETY: forwarded contract.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: a valid layout was given for the old block, so this one is valid too.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        *self.last.lock().unwrap() = Some(new);
        // SAFETY: forwarded contract.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

/// What the inner allocator is asked for is at most 16 bytes more than the caller's block, for
/// every alignment: page-aligned buffers and 2 MiB-aligned ones do not pay their alignment again.
#[test]
fn every_alignment_costs_at_most_16_bytes_per_block() {
    let _registry = REGISTRY_USERS.lock().unwrap_or_else(|e| e.into_inner());
    let profiler = Profiler::new(RecordingInner::default());
    for (size, align) in [
        (1, 1),
        (100, 8),
        (100, 16),
        (100, 32),
        (5000, 64),
        (4096, 4096),
        (10_001, 4096),
        (3 << 20, 2 << 20),
        (1, 2 << 20),
    ] {
        let layout = Layout::from_size_align(size, align).unwrap();
        let asked = |what: &str, user_size: usize| {
            let inner = profiler.inner.last();
            assert!(
                inner.size() <= user_size + 16 && inner.align() >= align,
                "{what} of {user_size} bytes aligned to {align}: the inner allocator was asked for {inner:?}"
            );
        };
        // SAFETY: (1) non-zero sizes; (2) each block is freed once, with its current layout.
        unsafe {
            let p = profiler.alloc(layout);
            assert!(!p.is_null() && (p as usize).is_multiple_of(align));
            asked("alloc", size);
            p.write_bytes(0xab, size);
            let grown = profiler.realloc(p, layout, size * 2);
            assert!(!grown.is_null() && (grown as usize).is_multiple_of(align));
            asked("realloc up", size * 2);
            assert!(
                std::slice::from_raw_parts(grown, size)
                    .iter()
                    .all(|&b| b == 0xab)
            );
            let shrunk = profiler.realloc(
                grown,
                Layout::from_size_align(size * 2, align).unwrap(),
                size,
            );
            asked("realloc down", size);
            assert!(
                std::slice::from_raw_parts(shrunk, size)
                    .iter()
                    .all(|&b| b == 0xab)
            );
            let z = profiler.alloc_zeroed(layout);
            asked("alloc_zeroed", size);
            assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
            profiler.dealloc(z, layout);
            profiler.dealloc(shrunk, layout);
            asked("dealloc", size);
        }
    }
}
