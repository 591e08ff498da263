//! The process-wide profiler: the registry, each thread's pointer to its state, and the hooks that
//! run once per process (fork, thread exit, process exit).
//!
//! ```text
//!  first allocation of a thread ──> register_thread ──> CURRENT (TLS) = state
//!        │ (first of the process) └─> decide capture mode, pthread key (thread exit), atfork, atexit
//!  every allocation ──> CURRENT ──> capture stack ──> state's record ──> block header
//!  dealloc / realloc ──> block header ──> record (+ the freeing thread's state for global figures)
//!  (how each event is accounted: `policy`; the blocks' layouts: `block`)
//! ```

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

pub(crate) mod dump;
pub(crate) mod exit;
pub(crate) mod fork;
pub(crate) mod listen;
pub(crate) mod signals;

use crate::accounting::registry::Registry;
use crate::accounting::sampling::whole_blocks;
use crate::capture::{CaptureMode, Captured, decide_mode};
use crate::config::Request;
use crate::guard::ReentrancyGuard;
use crate::state::budget::STACK_BUDGET;
use crate::state::counters::Counts;
use crate::state::measures::MeasureLevel;
use crate::state::record::SiteRecord;
use crate::state::record::{Label, MeasuredSite, non_negative};
use crate::state::thread::ThreadState;

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

/// What `CURRENT` holds on a thread that has no state and will not get one: it handed its state
/// back (in its exit hooks), or memory for a state ran out when it started. Its allocations are
/// counted without a state, as orphans; only a later thread tries to make a state again.
const NO_STATE: *const ThreadState = std::ptr::dangling();

/// The calling thread's state, made on its first use; `None` when memory for it is exhausted or
/// the thread is exiting.
#[inline(always)]
pub(crate) fn current_thread() -> Option<&'static ThreadState> {
    current_thread_for(None)
}

/// [`current_thread`] on behalf of a `Profiler` value with the settings `request`, when known:
/// checked against the configuration (see `config`) when the thread gets its state.
#[inline(always)]
pub(crate) fn current_thread_for(request: Option<Request>) -> Option<&'static ThreadState> {
    existing_thread().or_else(|| {
        // No state: make one, unless this thread will not get one (see `NO_STATE`).
        if CURRENT.with(Cell::get).is_null() {
            new_thread(request)
        } else {
            None
        }
    })
}

/// The calling thread's state if it has one already (never makes one).
#[inline(always)]
pub(crate) fn existing_thread() -> Option<&'static ThreadState> {
    let state = CURRENT.with(Cell::get);
    // SAFETY: above `NO_STATE`, a published state, never freed.
    (state as usize > NO_STATE as usize).then(|| unsafe { &*state })
}

#[cold]
#[inline(never)]
fn new_thread(request: Option<Request>) -> Option<&'static ThreadState> {
    let _guard = ReentrancyGuard::enter();
    // Decided at the process's first allocation already, unless this thread's first call is a
    // `measure` or a label before any allocation: then the default settings decide.
    let config = crate::config::decide_quietly(request.unwrap_or(Request::DEFAULT));
    if let Some(request) = request {
        crate::config::check_request(config, request);
    }
    install_process_hooks(config);
    let Some(state) = REGISTRY.register_thread() else {
        CURRENT.with(|c| c.set(NO_STATE));
        return None;
    };
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
        STACK_BUDGET.configure(config);
        decide_mode(config, state.stack().bounds(), &REGISTRY.mapped_bytes);
    }
    Some(state)
}

/// Registers the fork, thread-exit and process-exit hooks, once; a thread that loses the race goes
/// on without waiting (nothing on the allocator path waits on another thread).
#[cold]
fn install_process_hooks(config: &'static crate::config::Config) {
    if PROCESS_HOOKS
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    REGISTRY.timeline.start();
    crate::capture::set_capturing(config.capture_at_start);
    dump::start_if_configured(config);
    listen::start_if_configured(config);
    signals::start_if_configured(config);
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: (1) pthread_key_create, pthread_atfork and atexit only register callbacks, which
    // are `extern "C"` functions that never unwind; (2) none of them calls our allocator.
    unsafe {
        if libc::pthread_key_create(&mut key, Some(on_thread_exit)) == 0 {
            EXIT_KEY.store(key, Ordering::Release);
        }
        libc::pthread_atfork(
            Some(crate::process::fork::prepare),
            Some(crate::process::fork::release),
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
        CURRENT.with(|c| c.set(NO_STATE));
        REGISTRY.retire(state);
    }
}

/// In a forked child only the forking thread survives: the others' states stop being alive, and
/// an update they had under way will never end.
extern "C" fn on_fork_child() {
    crate::process::fork::release();
    REGISTRY.timeline.after_fork();
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

/// Why a measure could not begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MeasureRefused {
    /// Allocations of this thread do not reach the profiler: it is not the global allocator.
    NotGlobalAllocator,
    /// More than [`MAX_NESTED_MEASURES`] measures would be nested on this thread.
    TooDeep,
}

/// A finished measure: its own figures and, for each site it allocated at, that site's.
pub(crate) struct MeasureEnd {
    pub(crate) level: MeasureLevel,
    pub(crate) sites: Vec<MeasuredSite>,
    /// The measure's records (never freed), to read again later.
    pub(crate) records: Vec<&'static SiteRecord>,
}

/// The figures of `records` now, as in [`MeasureEnd::sites`]: the owner's half of the totals (its
/// thread's allocations), the live figures whoever freed. Read from any thread (each counter is
/// atomic; a record being updated meanwhile may be read between two of its counters).
pub(crate) fn sites_of(records: &[&'static SiteRecord]) -> Vec<MeasuredSite> {
    let sampled = sampling_mean() > 0;
    ReentrancyGuard::untracked(|| {
        records
            .iter()
            .map(|record| {
                let own = record.read_local(0);
                let live = own.plus(record.read_remote(0));
                let counts = Counts {
                    live_bytes: non_negative(live.live_bytes),
                    live_blocks: non_negative(live.live_blocks),
                    total_bytes: own.total_bytes,
                    total_blocks: own.total_blocks,
                    ..Counts::default()
                };
                // Sampled mode's records count blocks in fractions (`accounting::sampling`).
                MeasuredSite {
                    frames: record.frames().collect(),
                    counts: if sampled {
                        whole_blocks(counts)
                    } else {
                        counts
                    },
                }
            })
            .collect()
    })
}

/// Lets the global allocator decide the configuration, with its `Profiler` value's settings, if no
/// allocation has yet: a call that needs the thread's state before any allocation (a `measure`, a
/// label) would otherwise decide it with the default settings.
fn decide_through_the_global_allocator() {
    if crate::config::get().is_none() {
        drop(std::hint::black_box(Box::new(0u64)));
    }
}

/// Begins a measure of the calling thread's allocations.
pub(crate) fn measure_begin() -> Result<(), MeasureRefused> {
    decide_through_the_global_allocator();
    let thread = current_thread().ok_or(MeasureRefused::NotGlobalAllocator)?;
    // SAFETY: the calling thread's own state; the borrow ends within the statement.
    let outermost = unsafe { thread.measures().depth == 0 };
    if outermost {
        // A probe allocation: if it does not reach us, we are not the global allocator. (Inside a
        // measure we are, and the probe would count in it.)
        let before = thread.total_blocks();
        drop(std::hint::black_box(Box::new(0u64)));
        if thread.total_blocks() == before {
            return Err(MeasureRefused::NotGlobalAllocator);
        }
    }
    let _guard = ReentrancyGuard::enter();
    // SAFETY: the calling thread's own state.
    let pushed = unsafe {
        thread.push_measure(MeasureLevel {
            scope: REGISTRY.new_scope(),
            first_record: thread.record_mark(),
            ..MeasureLevel::default()
        })
    };
    if !pushed {
        return Err(MeasureRefused::TooDeep);
    }
    Ok(())
}

/// Ends the innermost measure of the calling thread (begun by [`measure_begin`]).
pub(crate) fn measure_end() -> Option<MeasureEnd> {
    let thread = current_thread()?;
    ReentrancyGuard::untracked(|| {
        // SAFETY: the calling thread's own state.
        let level = unsafe { thread.pop_measure() }?;
        let records: Vec<&'static SiteRecord> = thread.records_since(level.first_record).collect();
        // The owner reads its own records: no update of them can be under way.
        let mut sites = sites_of(&records);
        sites.retain(|site| site.counts.total_blocks != 0 || site.counts.live_blocks != 0);
        Some(MeasureEnd {
            level,
            sites,
            records,
        })
    })
}

/// The calling thread's task label, set for as long as this lives (see `tracealloc::labeled`):
/// dropped, it restores the previous one, on the same thread.
pub(crate) struct LabelGuard {
    thread: Option<&'static ThreadState>,
    previous: Label,
    /// Restored on the thread that set it: not `Send`.
    _here: std::marker::PhantomData<*const ()>,
}

/// Sets the calling thread's task label until the guard is dropped. Nothing happens on a thread
/// that has no state (memory for it ran out).
#[inline]
pub(crate) fn enter_label(label: Label) -> LabelGuard {
    decide_through_the_global_allocator();
    let thread = current_thread();
    // SAFETY: the calling thread's own state.
    let previous = thread.map_or(Label::NONE, |t| unsafe { t.swap_label(label) });
    LabelGuard {
        thread,
        previous,
        _here: std::marker::PhantomData,
    }
}

impl LabelGuard {
    /// The label that was set before (for the `tracing` layer, which restores it itself).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn previous(&self) -> Label {
        self.previous
    }
}

impl Drop for LabelGuard {
    #[inline]
    fn drop(&mut self) {
        if let Some(thread) = self.thread {
            // SAFETY: the guard is not `Send`: this is the thread that set the label, the state's
            // owner.
            unsafe { thread.swap_label(self.previous) };
        }
    }
}

/// The sampling interval in use (0: exact mode, or no allocation yet).
pub(crate) fn sampling_mean() -> u64 {
    crate::config::get().map_or(0, |config| config.policy.sampling_mean())
}

/// A snapshot of the process's registry, untracked.
pub(crate) fn snapshot() -> tracealloc_snapshot::Snapshot {
    ReentrancyGuard::untracked(|| crate::snapshot::take_from(&REGISTRY))
}

/// A snapshot for the files written without code (the exit snapshot, `TRACEALLOC_INTERVAL`'s):
/// raw, to be symbolized by the CLI, unless `TRACEALLOC_SYMBOLIZE=process` (`default_later`: what
/// applies when the variable is unset). Untracked.
pub(crate) fn snapshot_to_write(default_later: bool) -> tracealloc_snapshot::Snapshot {
    let later = crate::config::get()
        .and_then(|config| config.symbolize_later)
        .unwrap_or(default_later);
    ReentrancyGuard::untracked(|| {
        if later {
            crate::snapshot::take_raw_from(&REGISTRY)
        } else {
            crate::snapshot::take_from(&REGISTRY)
        }
    })
}

extern "C" fn on_process_exit() {
    // A panic must not unwind into C; the exit snapshot is best effort.
    let _ = std::panic::catch_unwind(crate::process::exit::write_exit_snapshot);
}

/// A capture of the calling thread's stack (`thread` is its state).
pub(crate) fn capture_here(thread: &ThreadState) -> Captured {
    let mut captured = Captured::empty();
    captured.capture(CaptureMode::current(), thread.stack());
    captured
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout};
    use std::sync::atomic::Ordering;

    use super::{CURRENT, NO_STATE, REGISTRY};
    use crate::Profiler;

    /// Allocates and frees `n` blocks of 64 bytes through a profiler on the calling thread; returns
    /// what `CURRENT` held after.
    fn churn(n: usize) -> *const super::ThreadState {
        let profiler = Profiler::system();
        let layout = Layout::from_size_align(64, 8).unwrap();
        for _ in 0..n {
            // SAFETY: a valid non-zero layout; the block is freed with the same layout.
            unsafe {
                let block = profiler.alloc(layout);
                assert!(!block.is_null());
                profiler.dealloc(block, layout);
            }
        }
        CURRENT.with(std::cell::Cell::get)
    }

    /// A thread whose stack bounds cannot be read (as in a chroot without `/proc`): its
    /// allocations succeed and are counted, and no stack is walked; each capture says why.
    #[test]
    fn without_stack_bounds_allocations_are_counted_and_not_walked() {
        let _registry = crate::allocator_check::REGISTRY_USERS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let unbounded = || {
            crate::snapshot::take_from(&REGISTRY)
                .profiler
                .captures
                .no_stack_bounds
        };
        let before = (unbounded(), REGISTRY.stats().total_blocks);
        std::thread::Builder::new()
            .name("no-proc".into())
            .spawn(|| {
                crate::sys::fail_stack_bounds_on_this_thread();
                churn(10);
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(REGISTRY.stats().total_blocks, before.1 + 10, "counted");
        assert_eq!(
            unbounded(),
            before.0 + 10,
            "each capture says why it was skipped"
        );
    }

    /// A thread that cannot get memory for its state tries once, then goes on without one: its
    /// allocations succeed and are counted; a later thread tries again and gets a state.
    #[test]
    fn out_of_memory_for_a_state_is_retried_only_by_a_later_thread() {
        let _registry = crate::allocator_check::REGISTRY_USERS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let failed_before = REGISTRY.threads_without_state.load(Ordering::Relaxed);
        let orphans_before = REGISTRY.allocations_without_state();
        let current = std::thread::Builder::new()
            .name("oom-probe".into())
            .spawn(|| {
                crate::state::carve::fail_on_this_thread();
                churn(10) as usize
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(current, NO_STATE as usize);
        assert_eq!(
            REGISTRY.threads_without_state.load(Ordering::Relaxed),
            failed_before + 1,
            "ten allocations, one attempt"
        );
        assert_eq!(REGISTRY.allocations_without_state(), orphans_before + 10);

        let current = std::thread::Builder::new()
            .name("oom-later".into())
            .spawn(|| churn(1) as usize)
            .unwrap()
            .join()
            .unwrap();
        assert!(current > NO_STATE as usize, "a later thread gets a state");
        assert_eq!(
            REGISTRY.threads_without_state.load(Ordering::Relaxed),
            failed_before + 1
        );
    }
}
