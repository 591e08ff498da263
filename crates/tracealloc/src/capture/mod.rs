//! Stack capture on the allocator path: a bounds-checked frame-pointer walk, or, when the program
//! was built without frame pointers, the DWARF unwinder (correct, but about 100 times slower).
//!
//! The capture mode is decided once, at the first allocation, by walking from a known chain of our
//! own `#[inline(never)]` functions: if the walk does not see them, frame pointers are missing and a
//! frame-pointer walk would return wrong stacks.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

mod frame_pointers;
pub(crate) mod unwind;

use frame_pointers::{frame_pointers_work, walk_frame_pointers};

/// The most frames a stack can keep (`TRACEALLOC_DEPTH` is capped here).
pub(crate) const MAX_DEPTH: usize = crate::config::MAX_DEPTH;

/// Frames kept per stack (the configuration's `depth`, copied here with the capture mode, where
/// every capture reads it). Deeper stacks are truncated: counted as such, and marked by a
/// `[truncated]` outermost frame.
static DEPTH: AtomicUsize = AtomicUsize::new(crate::config::DEFAULT_DEPTH);

/// Frames kept per stack.
#[inline(always)]
pub(crate) fn depth_limit() -> usize {
    DEPTH.load(Ordering::Relaxed)
}

/// How a stack capture ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum CaptureEnd {
    Complete = 0,
    Truncated = 1,
    Broken = 2,
    /// Not walked: the thread's stack bounds could not be read, and a walk without them could
    /// read past the stack's top.
    NoStackBounds = 3,
    /// Not walked: capture is off ([`set_capturing`]).
    CaptureOff = 4,
}

/// A captured stack: return addresses, innermost first.
pub(crate) struct Captured {
    /// The first `depth` entries are written by the capture; the rest stay uninitialized, so a
    /// capture costs no 512-byte clear.
    frames: [MaybeUninit<usize>; MAX_DEPTH],
    pub(crate) depth: usize,
    pub(crate) hash: StackHash,
    pub(crate) end: CaptureEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum CaptureMode {
    Undecided = 0,
    FramePointers = 1,
    Unwind = 2,
}

static MODE: AtomicU8 = AtomicU8::new(CaptureMode::Undecided as u8);

/// Whether stacks are walked. Off, every capture is an empty stack ending in
/// [`CaptureEnd::CaptureOff`]: each thread's allocations then go to one record, found without a
/// walk, and stay counted. A relaxed flag: a capture that races a switch takes either side.
static CAPTURING: AtomicBool = AtomicBool::new(true);

/// Turns stack capture on or off (`start_capture`, `stop_capture`, the control socket,
/// `TRACEALLOC_CAPTURE_AT_START=0`).
pub(crate) fn set_capturing(on: bool) {
    CAPTURING.store(on, Ordering::Relaxed);
}

/// Whether stacks are captured.
pub(crate) fn capturing() -> bool {
    CAPTURING.load(Ordering::Relaxed)
}

impl CaptureMode {
    #[inline(always)]
    pub(crate) fn current() -> CaptureMode {
        match MODE.load(Ordering::Relaxed) {
            1 => CaptureMode::FramePointers,
            2 => CaptureMode::Unwind,
            _ => CaptureMode::Undecided,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            CaptureMode::FramePointers => "frame-pointers",
            CaptureMode::Unwind => "dwarf-unwind",
            CaptureMode::Undecided => "none",
        }
    }
}

/// Decides the capture mode once (idempotent; racing threads reach the same answer).
#[cold]
///
/// `mapped` counts the bytes the unwinder maps for its rule cache, if it is chosen.
pub(crate) fn decide_mode(
    config: &crate::config::Config,
    stack: (usize, usize),
    mapped: &AtomicU64,
) -> CaptureMode {
    DEPTH.store(config.depth, Ordering::Relaxed);
    #[cfg(tracealloc_unoptimized)]
    crate::sys::write_stderr(UNOPTIMIZED_NOTICE);
    // The probe walks only frames below this one: with no known bounds, this frame bounds it.
    let here = 0u8;
    let probe_bounds = if stack.1 == 0 {
        (0, std::hint::black_box(&here) as *const u8 as usize)
    } else {
        stack
    };
    let mode = if config.force_unwind {
        CaptureMode::Unwind
    } else if frame_pointers_work(probe_bounds) {
        CaptureMode::FramePointers
    } else {
        crate::sys::write_stderr(
            b"tracealloc: this program has no frame pointers; falling back to DWARF unwinding, \
              which costs a few ns more per frame of every allocation's stack. Build with \
              RUSTFLAGS=\"-C force-frame-pointers=yes\".\n",
        );
        CaptureMode::Unwind
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = mapped;
    #[cfg(target_arch = "x86_64")]
    if mode == CaptureMode::Unwind {
        unwind::build(mapped);
    }
    MODE.store(mode as u8, Ordering::Relaxed);
    mode
}

/// Said once at start-up when the profiler itself was compiled at opt-level 0 (a plain debug
/// build): its code then costs several times what it does optimized, on every allocation.
#[cfg(tracealloc_unoptimized)]
const UNOPTIMIZED_NOTICE: &[u8] = concat!(
    "tracealloc: the profiler is compiled without optimization, which makes every allocation\n",
    "several times slower than it needs to be. For fast debug builds, add to your workspace's\n",
    "Cargo.toml\n",
    "    [profile.dev.package.tracealloc]\n",
    "    opt-level = 3\n",
    "and build with frame pointers (see \"Debug builds\" in tracealloc's README).\n",
)
.as_bytes();

/// A stack's identity, built one return address at a time during the walk: two words of state,
/// updated by a step that is a bijection of the state for each address.
///
/// Stacks are told apart by this hash alone (their frames are not compared on lookup, and are
/// stored shared with other stacks'), so it must not collide in practice. Why it does not:
/// - Each step is a bijection of the 128-bit state (the low half of `(a ^ ret) * K` gives back
///   `a`, the high half then gives back `b`): stacks that differ in one frame, or that differ
///   and then share the rest of the walk (the outer frames of one thread), end in different
///   states. The depth is mixed in at the end, by another bijection.
/// - Otherwise two different stacks collide only if a difference in the 128-bit state is undone
///   exactly by later return addresses: about as likely as two random 128-bit values being equal.
///   With a billion distinct stacks in a run, that is about one chance in 10^21.
///
/// The step costs one 64x64->128-bit multiply per frame, in parallel with the walk's own loads.
/// The low half of the product is the next multiplicand and the high half is folded into `b`, so
/// the multiply's result registers (rdx:rax on x86_64) feed the next step as they are: three
/// instructions per frame (xor, mul, xor). With the halves the other way round the compiler added
/// three moves per frame, 46 more instructions per allocation on W1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct StackHash {
    a: u64,
    b: u64,
}

/// An odd 64-bit multiplier with well-spread bits (the golden ratio's).
const STEP: u64 = 0x9e37_79b9_7f4a_7c15;

impl StackHash {
    /// The state of an empty stack.
    pub(crate) const EMPTY: StackHash = StackHash { a: 0, b: 0 };

    /// The state after one more return address.
    #[inline(always)]
    pub(crate) fn add(self, ret: usize) -> StackHash {
        let product = u128::from(self.a ^ ret as u64) * u128::from(STEP);
        StackHash {
            a: product as u64,
            b: (product >> 64) as u64 ^ self.b,
        }
    }

    /// The identity of a stack of `depth` frames with this state: `(hash, check)`, a bijection
    /// of the state for each depth. The table takes its slot from `hash`'s low bits and a tag from
    /// its high bits: `b` is an xor of products' high halves, each of which depends on every bit of
    /// its multiplicand, so it is used as it is, with the depth folded in. That keeps a finalizer
    /// (about 12 cycles) off the path from the walk's last load to the table's slot; `check`, only
    /// compared once the record is loaded, gets one.
    #[inline(always)]
    pub(crate) fn finish(self, depth: usize) -> (u64, u64) {
        let hash = self.b ^ (depth as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        (hash, fmix64(self.a ^ hash))
    }
}

/// murmur3's 64-bit finalizer: a bijection that spreads every bit over the word.
#[inline(always)]
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl Captured {
    pub(crate) fn empty() -> Self {
        Captured {
            frames: [const { MaybeUninit::uninit() }; MAX_DEPTH],
            depth: 0,
            hash: StackHash::EMPTY,
            end: CaptureEnd::Complete,
        }
    }

    /// A capture of the given return addresses (for tests of the bookkeeping).
    #[cfg(test)]
    pub(crate) fn of(stack: &[usize]) -> Self {
        let mut captured = Self::empty();
        for &ret in stack.iter().take(MAX_DEPTH) {
            captured.push(ret);
        }
        captured
    }

    /// Empties the capture before a new walk.
    pub(crate) fn reset(&mut self) {
        self.depth = 0;
        self.hash = StackHash::EMPTY;
        self.end = CaptureEnd::Complete;
    }

    #[cfg(test)]
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    /// The stack's identity: see [`StackHash`].
    #[inline(always)]
    pub(crate) fn identity(&self) -> (u64, u64) {
        self.hash.finish(self.depth)
    }

    /// Appends a return address; the caller checks `depth() < depth_limit()` first.
    #[inline(always)]
    pub(crate) fn push(&mut self, ret: usize) {
        self.frames[self.depth] = MaybeUninit::new(ret);
        self.depth += 1;
        self.hash = self.hash.add(ret);
    }

    pub(crate) fn stack(&self) -> &[usize] {
        // SAFETY: the first `depth` entries were written by `push`; MaybeUninit<usize> has the
        // layout of usize.
        unsafe { std::slice::from_raw_parts(self.frames.as_ptr().cast::<usize>(), self.depth) }
    }

    /// Captures the calling stack with the decided mode, on the thread whose stack `stack` is.
    #[inline(always)]
    pub(crate) fn capture(&mut self, mode: CaptureMode, stack: &ThreadStack) {
        if !capturing() {
            self.end = CaptureEnd::CaptureOff;
            return;
        }
        match mode {
            CaptureMode::FramePointers => {
                walk_frame_pointers(self, stack.bounds(), depth_limit());
            }
            _ => self.unwind(stack),
        }
    }

    /// Unwinds with DWARF call-frame information: our compact rules and framehop where available,
    /// else `_Unwind_Backtrace`.
    #[cold]
    #[inline(never)]
    fn unwind(&mut self, stack: &ThreadStack) {
        if stack.bounds().1 == 0 {
            self.reset();
            self.end = CaptureEnd::NoStackBounds;
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: the cache is this thread's own (made on its first unwind) and the bounds are
            // this thread's stack.
            if unsafe { unwind::unwind(self, stack.unwind_cache(), stack.bounds(), depth_limit()) }
            {
                return;
            }
        }
        let _ = stack;
        self.reset();
        let limit = depth_limit();
        // SAFETY: trace_unsynchronized requires that no other backtrace call runs concurrently with
        // it in a way that breaks the platform unwinder; `_Unwind_Backtrace` (its backend here) is
        // thread-safe. The callback neither allocates nor panics.
        unsafe {
            backtrace::trace_unsynchronized(|frame| {
                if self.depth == limit {
                    self.end = CaptureEnd::Truncated;
                    return false;
                }
                self.push(frame.ip() as usize);
                true
            });
        }
    }
}

/// What a capture needs of the thread it runs on: the bounds of its stack, which every walk checks
/// its reads against, and the unwinder's per-thread cache. Owned by the thread's state; rebound
/// when another thread adopts that state.
pub(crate) struct ThreadStack {
    low: AtomicUsize,
    high: AtomicUsize,
    /// framehop's rule cache for this thread, made on its first DWARF unwind (owner only).
    #[cfg(target_arch = "x86_64")]
    unwind_cache: std::sync::atomic::AtomicPtr<unwind::RuleCache>,
}

impl ThreadStack {
    /// The calling thread's stack.
    pub(crate) fn of_current_thread() -> ThreadStack {
        let (low, high) = current_stack();
        ThreadStack {
            low: AtomicUsize::new(low),
            high: AtomicUsize::new(high),
            #[cfg(target_arch = "x86_64")]
            unwind_cache: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// Points the bounds at the calling thread's stack (the unwinder's cache holds rules, not
    /// addresses of a stack, so it carries over).
    pub(crate) fn rebind_to_current_thread(&self) {
        let (low, high) = current_stack();
        self.low.store(low, Ordering::Relaxed);
        self.high.store(high, Ordering::Relaxed);
    }

    /// `[low, high)` of the owner thread's stack.
    #[inline(always)]
    pub(crate) fn bounds(&self) -> (usize, usize) {
        (
            self.low.load(Ordering::Relaxed),
            self.high.load(Ordering::Relaxed),
        )
    }

    /// This thread's unwinder cache, made on first use. Called by the owner thread only, under the
    /// reentrancy guard (making the cache allocates).
    #[cfg(target_arch = "x86_64")]
    fn unwind_cache(&self) -> *mut unwind::RuleCache {
        let mut cache = self.unwind_cache.load(Ordering::Relaxed);
        if cache.is_null() {
            cache = unwind::new_cache();
            self.unwind_cache.store(cache, Ordering::Relaxed);
        }
        cache
    }
}

/// `[low, high)` of the calling thread's stack. When the C library cannot tell (the main thread in
/// a chroot without `/proc`), the main thread's stack from its entry's stack pointer down, and for
/// another thread `(0, 0)`: no stack is walked there, and each capture says so
/// ([`CaptureEnd::NoStackBounds`]). (The walks bound every read by the current frame from below,
/// so only the top matters.)
fn current_stack() -> (usize, usize) {
    crate::sys::stack_bounds()
        .or_else(|| crate::sys::main_stack_top().map(|top| (0, top)))
        .unwrap_or((0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(stack: &[usize]) -> (u64, u64) {
        Captured::of(stack).identity()
    }

    /// Stacks that a linear hash of the frames (rotate and xor, the one used before stacks were
    /// told apart by their identity alone) gives the same value get different identities, as do
    /// stacks that differ in order, in depth by a zero frame, or in one bit of one frame.
    #[test]
    fn stacks_a_linear_hash_confuses_get_different_identities() {
        let (x, y, z) = (0x5555_1234_5678, 0x5555_8765_4321, 0x5555_0000_0040);
        let d = 0x10;
        let pairs: [(&[usize], &[usize]); 5] = [
            (&[x, y, z], &[x ^ d, y ^ d.rotate_left(5), z]),
            (&[x, y], &[y, x]),
            (&[x, y], &[x, y, 0]),
            (&[0], &[]),
            (&[x, y, z], &[x, y, z ^ (1 << 40)]),
        ];
        for (a, b) in pairs {
            assert_ne!(identity(a), identity(b), "{a:x?} and {b:x?}");
        }
        assert_eq!(identity(&[x, y, z]), identity(&[x, y, z]));
        // The old hash did confuse the first pair.
        let linear = |s: &[usize]| s.iter().fold(0u64, |h, &a| h.rotate_left(5) ^ a as u64);
        assert_eq!(linear(pairs[0].0), linear(pairs[0].1));
    }

    /// Every sequence of up to 6 frames over 6 return addresses (55,986 stacks: permutations,
    /// repeats, prefixes, suffixes of each other) gets an identity of its own: the folding of the
    /// lanes has no symmetry that swaps frames unnoticed.
    #[test]
    fn all_short_stacks_over_a_few_addresses_are_distinct() {
        let alphabet = [
            0x40_1000,
            0x40_1008,
            0x40_2000,
            0x7f00_0000_1000,
            0,
            0x40_1000 ^ 0x20,
        ];
        let mut seen = std::collections::HashSet::new();
        let mut stacks: Vec<Vec<usize>> = vec![Vec::new()];
        let mut count = 0;
        for _ in 0..6 {
            stacks = stacks
                .iter()
                .flat_map(|s| alphabet.iter().map(move |&a| [s.as_slice(), &[a]].concat()))
                .collect();
            for stack in &stacks {
                count += 1;
                assert!(seen.insert(identity(stack)), "{stack:x?} met another stack");
            }
        }
        assert_eq!(count, 55_986);
    }

    /// Across many stacks that share their outer frames, as one thread's do, the 64-bit halves
    /// alone do not collide either (a sanity check of the mixing, not a proof).
    #[test]
    fn many_related_stacks_have_distinct_halves() {
        let mut hashes = std::collections::HashSet::new();
        let mut checks = std::collections::HashSet::new();
        let outer = [0x4000_1000_usize, 0x4000_2000, 0x4000_3000];
        for inner in 0..20_000_usize {
            let mut stack = vec![0x4010_0000 + inner * 8, 0x4020_0000 + (inner % 7) * 16];
            stack.extend(outer);
            let (hash, check) = identity(&stack);
            assert!(hashes.insert(hash) && checks.insert(check));
        }
    }
}
