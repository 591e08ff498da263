//! The process-wide profiler: the registry, each thread's pointer to its state, and the hooks that
//! run once per process (fork, thread exit, process exit).
//!
//! ```text
//!  first allocation of a thread ──> register_thread ──> CURRENT (TLS) = state
//!        │ (first of the process) └─> decide capture mode, pthread key (thread exit), atfork, atexit
//!  every allocation ──> CURRENT ──> capture stack ──> state's record ──> block header
//!  dealloc / realloc ──> block header ──> record (+ the freeing thread's state for global figures)
//! ```

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

use crate::capture::{CaptureMode, Captured, decide_mode};
use crate::guard::ReentrancyGuard;
use crate::record::SiteRecord;
use crate::registry::{Registry, Site, SiteDelta};
use crate::thread::ThreadState;

/// A thread flushes its live delta to the shared counters every 64 KiB of change: rare enough to
/// keep the shared cache line cold, small enough to bound the peak's error with several threads.
const FLUSH_THRESHOLD: i64 = 64 * 1024;

pub(crate) static REGISTRY: Registry = Registry::new(FLUSH_THRESHOLD);

thread_local! {
    static CURRENT: Cell<*const ThreadState> = const { Cell::new(std::ptr::null()) };
}

const NO_KEY: u32 = u32::MAX;
static EXIT_KEY: AtomicU32 = AtomicU32::new(NO_KEY);
static PROCESS_HOOKS: AtomicU8 = AtomicU8::new(0);

/// What `CURRENT` holds once the thread has handed its state back (in its exit hooks): later
/// allocations of that thread are counted without a state, as orphans.
const EXITED: *const ThreadState = std::ptr::dangling();

/// The calling thread's state, made on its first use; `None` when memory for it is exhausted or
/// the thread is exiting.
#[inline(always)]
fn current_thread() -> Option<&'static ThreadState> {
    let state = CURRENT.with(Cell::get);
    if state as usize <= EXITED as usize {
        return if state.is_null() { new_thread() } else { None };
    }
    // SAFETY: states are published once and never freed.
    Some(unsafe { &*state })
}

#[cold]
#[inline(never)]
fn new_thread() -> Option<&'static ThreadState> {
    let _guard = ReentrancyGuard::enter();
    install_process_hooks();
    let state = REGISTRY.register_thread()?;
    CURRENT.with(|c| c.set(state));
    let key = EXIT_KEY.load(Ordering::Acquire);
    if key != NO_KEY {
        // SAFETY: `key` is a live key made by pthread_key_create (keys are never deleted), and the
        // value is a state that is never freed, so the key's destructor may read it at any time.
        // (Allocation: glibc keeps the first 32 keys' values in the thread descriptor; beyond
        // them it may call its own malloc, never ours.)
        unsafe { libc::pthread_setspecific(key, (state as *const ThreadState).cast()) };
    }
    if CaptureMode::current() == CaptureMode::Undecided {
        decide_mode(state.stack());
    }
    Some(state)
}

/// Registers the fork, thread-exit and process-exit hooks, once; a thread that loses the race goes
/// on without waiting (nothing on the allocator path waits on another thread).
#[cold]
fn install_process_hooks() {
    if PROCESS_HOOKS
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: (1) pthread_key_create, pthread_atfork and atexit only register callbacks, which
    // are `extern "C"` functions that never unwind; (2) none of them calls our allocator.
    unsafe {
        if libc::pthread_key_create(&mut key, Some(on_thread_exit)) == 0 {
            EXIT_KEY.store(key, Ordering::Release);
        }
        libc::pthread_atfork(
            Some(crate::fork::prepare),
            Some(crate::fork::release),
            Some(on_fork_child),
        );
        libc::atexit(on_process_exit);
    }
    PROCESS_HOOKS.store(2, Ordering::Release);
}

/// Thread exit (a pthread key destructor, after Rust's TLS destructors): keep the thread's name,
/// stop using the state (what the thread still allocates is counted without it), and hand the
/// state to the pool for a later thread of the same name.
extern "C" fn on_thread_exit(state: *mut libc::c_void) {
    // SAFETY: the key's value is the thread's published state, never freed.
    if let Some(state) = unsafe { state.cast::<ThreadState>().as_ref() } {
        state.capture_name();
        CURRENT.with(|c| c.set(EXITED));
        REGISTRY.retire(state);
    }
}

/// In a forked child only the forking thread survives: the others' states stop being alive, and
/// an update they had under way will never end.
extern "C" fn on_fork_child() {
    crate::fork::release();
    let current = CURRENT.with(Cell::get);
    for thread in REGISTRY.threads() {
        if std::ptr::eq(thread, current) {
            thread
                .tid
                .store(crate::sys::current_tid(), Ordering::Relaxed);
        } else {
            thread.abandon();
        }
    }
}

extern "C" fn on_process_exit() {
    // A panic must not unwind into C; the exit snapshot is best effort.
    let _ = std::panic::catch_unwind(crate::exit::write_exit_snapshot);
}

/// The header record of blocks left out by sampling: they count in the whole-process figures only.
pub(crate) static UNSAMPLED: SiteRecord = SiteRecord::empty(std::ptr::null());
/// The sampling interval in use (0: exact mode), decided at the process's first allocation from
/// `TRACEALLOC_SAMPLE` or the profiler's own setting; [`SAMPLING_UNDECIDED`] before.
static SAMPLING_BYTES: AtomicU64 = AtomicU64::new(SAMPLING_UNDECIDED);
const SAMPLING_UNDECIDED: u64 = u64::MAX;
/// Who chose the sampling interval: 0 the code (`Profiler::sampled`, or exact by default), 1
/// `TRACEALLOC_SAMPLE`.
static SAMPLING_FROM_ENV: AtomicU8 = AtomicU8::new(0);

/// The environment variable that chooses sampling at start-up without a rebuild: the mean bytes
/// between samples, `0` for exact mode. It overrides `Profiler::sampled`.
pub const SAMPLE_ENV: &str = "TRACEALLOC_SAMPLE";

/// The sampling interval in use: 0 for exact mode.
#[inline(always)]
fn sampling_bytes(configured: u64) -> u64 {
    match SAMPLING_BYTES.load(Ordering::Relaxed) {
        SAMPLING_UNDECIDED => decide_sampling(configured),
        mean => mean,
    }
}

/// Decides the sampling interval once, at the first allocation; racing threads reach the same
/// answer (the environment and the profiler's setting do not change).
#[cold]
#[inline(never)]
fn decide_sampling(configured: u64) -> u64 {
    let from_env = crate::sys::env_u64(c"TRACEALLOC_SAMPLE");
    let mean = from_env.unwrap_or(configured);
    SAMPLING_FROM_ENV.store(u8::from(from_env.is_some()), Ordering::Relaxed);
    SAMPLING_BYTES.store(mean, Ordering::Relaxed);
    mean
}

/// The sampling interval and whether `TRACEALLOC_SAMPLE` chose it, for the snapshot's metadata.
pub(crate) fn sampling() -> (u64, bool) {
    match SAMPLING_BYTES.load(Ordering::Relaxed) {
        SAMPLING_UNDECIDED => (0, false),
        mean => (mean, SAMPLING_FROM_ENV.load(Ordering::Relaxed) == 1),
    }
}

fn capture_here(thread: &ThreadState) -> Captured {
    let mut captured = Captured::empty();
    captured.capture(CaptureMode::current(), thread);
    captured
}

/// Accounts a new block of `size` bytes (`mean`: the sampling interval, 0 for exact mode);
/// returns the record to store in its header (null for the profiler's own blocks).
// `Profiler::alloc` is generic, so it is compiled in the user's crate at the user's opt-level.
// In a dev profile (debug assertions on) this is not inlined into it, so that it runs as compiled
// here: optimized when the user follows the README's debug setup (`opt-level = 3` for tracealloc
// alone). In release it is inlined: the call would cost about 30 instructions per event.
#[cfg_attr(debug_assertions, inline(never))]
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn on_alloc(size: usize, configured_mean: u64) -> *const SiteRecord {
    let Some(_guard) = ReentrancyGuard::enter() else {
        REGISTRY.record_own(size as i64);
        return std::ptr::null();
    };
    let mean = sampling_bytes(configured_mean);
    let Some(thread) = current_thread() else {
        return REGISTRY.record_orphan_alloc(size);
    };
    if mean != 0 {
        return on_sampled_alloc(thread, size, mean);
    }
    // Not `capture_here`: returning the 520-byte capture by value costs W1 about 0.15x (measured).
    let mut captured = Captured::empty();
    captured.capture(CaptureMode::current(), thread);
    // SAFETY: `thread` is the calling thread's own state.
    unsafe { REGISTRY.record_alloc(thread, &captured, size) }
}

#[inline(always)]
fn on_sampled_alloc(thread: &ThreadState, size: usize, mean: u64) -> *const SiteRecord {
    let allocated = Some(size as u64);
    // SAFETY: `thread` is the calling thread's own state.
    if !unsafe { thread.take_sample(size, mean) } {
        // SAFETY: as above.
        unsafe {
            REGISTRY.apply(
                thread,
                Site::Untracked,
                SiteDelta::default(),
                (size as i64, 1),
                allocated,
            )
        };
        return &UNSAMPLED;
    }
    let delta = SiteDelta::sampled_alloc(size, mean);
    let captured = capture_here(thread);
    // SAFETY: as above.
    unsafe {
        REGISTRY.apply(
            thread,
            Site::Captured(&captured),
            delta,
            (size as i64, 1),
            allocated,
        )
    }
}

/// Accounts a realloc of a block of `record` from `old` to `new` bytes; returns the record for the
/// new block's header (the same, except when sampling picks a block that was left out).
// `Profiler::alloc` is generic, so it is compiled in the user's crate at the user's opt-level.
// In a dev profile (debug assertions on) this is not inlined into it, so that it runs as compiled
// here: optimized when the user follows the README's debug setup (`opt-level = 3` for tracealloc
// alone). In release it is inlined: the call would cost about 30 instructions per event.
#[cfg_attr(debug_assertions, inline(never))]
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn on_realloc(
    record: *const SiteRecord,
    old: usize,
    new: usize,
    configured_mean: u64,
) -> *const SiteRecord {
    // SAFETY: header records are null, the sampling sentinel, or published records, never freed.
    let Some(site) = (unsafe { record.as_ref() }) else {
        REGISTRY.record_own(new as i64 - old as i64);
        return record;
    };
    // A sampled realloc may capture a stack, and a capture may allocate (the unwinder's caches):
    // nested allocations must go straight to the inner allocator.
    let Some(_guard) = ReentrancyGuard::enter() else {
        REGISTRY.record_orphan_change(site, old, new, false);
        return record;
    };
    let mean = sampling_bytes(configured_mean);
    let thread = match current_thread() {
        Some(thread) if !site.owner.is_null() || (mean != 0 && std::ptr::eq(site, &UNSAMPLED)) => {
            thread
        }
        _ => {
            REGISTRY.record_orphan_change(site, old, new, false);
            return record;
        }
    };
    if mean == 0 {
        // SAFETY: `thread` is the calling thread's own state.
        unsafe { REGISTRY.record_realloc(thread, site, old, new) };
        return record;
    }
    on_sampled_realloc(thread, site, old, new, mean)
}

#[inline(always)]
fn on_sampled_realloc(
    thread: &ThreadState,
    site: &SiteRecord,
    old: usize,
    new: usize,
    mean: u64,
) -> *const SiteRecord {
    let live = (new as i64 - old as i64, 0);
    let allocated = Some(new as u64);
    if !std::ptr::eq(site, &UNSAMPLED) {
        let delta = SiteDelta::sampled_realloc(old, new, mean);
        // SAFETY: `thread` is the calling thread's own state.
        return unsafe { REGISTRY.apply(thread, Site::Record(site), delta, live, allocated) };
    }
    // The new size is allocated bytes: a sample point may fall in it.
    // SAFETY: as above.
    if !unsafe { thread.take_sample(new, mean) } {
        let delta = SiteDelta::default();
        // SAFETY: as above.
        unsafe { REGISTRY.apply(thread, Site::Untracked, delta, live, allocated) };
        return site;
    }
    let captured = capture_here(thread);
    let delta = SiteDelta::sampled_alloc(new, mean);
    // SAFETY: as above.
    unsafe { REGISTRY.apply(thread, Site::Captured(&captured), delta, live, allocated) }
}

/// Accounts the free of a block of `record` of `size` bytes.
// `Profiler::alloc` is generic, so it is compiled in the user's crate at the user's opt-level.
// In a dev profile (debug assertions on) this is not inlined into it, so that it runs as compiled
// here: optimized when the user follows the README's debug setup (`opt-level = 3` for tracealloc
// alone). In release it is inlined: the call would cost about 30 instructions per event.
#[cfg_attr(debug_assertions, inline(never))]
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn on_dealloc(record: *const SiteRecord, size: usize, configured_mean: u64) {
    // SAFETY: header records are null, the sampling sentinel, or published records, never freed.
    let Some(site) = (unsafe { record.as_ref() }) else {
        REGISTRY.record_own(-(size as i64));
        return;
    };
    // Making the thread's state (its first event may be a free) takes the guard itself; nothing
    // else here allocates, but the guard keeps every hook under one rule.
    let Some(_guard) = ReentrancyGuard::enter() else {
        REGISTRY.record_orphan_change(site, size, 0, true);
        return;
    };
    let mean = sampling_bytes(configured_mean);
    let live = (-(size as i64), -1);
    match current_thread() {
        Some(thread) if mean == 0 && !site.owner.is_null() => {
            // SAFETY: `thread` is the calling thread's own state.
            unsafe { REGISTRY.record_dealloc(thread, site, size) }
        }
        Some(thread) if mean != 0 && std::ptr::eq(site, &UNSAMPLED) => {
            let delta = SiteDelta::default();
            // SAFETY: as above.
            unsafe { REGISTRY.apply(thread, Site::Untracked, delta, live, None) };
        }
        Some(thread) if mean != 0 && !site.owner.is_null() => {
            let delta = SiteDelta::sampled_free(size, mean);
            // SAFETY: as above.
            unsafe { REGISTRY.apply(thread, Site::Record(site), delta, live, None) };
        }
        _ => REGISTRY.record_orphan_change(site, size, 0, true),
    }
}
