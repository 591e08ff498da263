//! Fork safety for the profiler's two locks (the symbol cache and the peak floor), which are taken
//! only by snapshots, `stats` and `reset_peak`, never on the allocator path. A child process has
//! only the forking thread; had another thread held one of them at the fork, the child would wait on
//! it forever. So the forking thread takes both before `fork` and releases them after, in the parent
//! and in the child.

use std::cell::UnsafeCell;
use std::sync::{MutexGuard, PoisonError};

use crate::process::REGISTRY;
use crate::snapshot::symbolize::{CACHE, SymbolCache};

type Held = (
    MutexGuard<'static, SymbolCache>,
    MutexGuard<'static, (u64, u64, u64)>,
);

struct ForkLocks(UnsafeCell<Option<Held>>);

// SAFETY: the cell is written by the prepare hook and emptied by the parent or child hook, all on
// the forking thread, and glibc serializes forks.
unsafe impl Sync for ForkLocks {}

static HELD: ForkLocks = ForkLocks(UnsafeCell::new(None));

/// Before `fork`: take both locks (waiting for a snapshot under way on another thread to finish).
pub(crate) extern "C" fn prepare() {
    let _guard = crate::guard::ReentrancyGuard::enter();
    let cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    let floor = REGISTRY
        .peak_floor
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    // SAFETY: only the forking thread touches HELD between prepare and parent/child.
    unsafe { *HELD.0.get() = Some((cache, floor)) };
}

/// After `fork`, in the parent and in the child: release them.
pub(crate) extern "C" fn release() {
    let _guard = crate::guard::ReentrancyGuard::enter();
    // SAFETY: as in `prepare`.
    drop(unsafe { (*HELD.0.get()).take() });
}
