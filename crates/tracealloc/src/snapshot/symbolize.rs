//! Return addresses to source frames (with inlined frames), cached for the life of the process.
//! Runs only in snapshots, under the reentrancy guard, never on the allocator path.

use rustc_hash::FxHashMap as HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use std::collections::hash_map::Entry;

use tracealloc_snapshot::Frame;

use crate::snapshot::c_library::CLibrary;

pub(crate) type SymbolCache = Option<HashMap<usize, Vec<Frame>>>;

/// Symbolized addresses. Held across `fork` by the fork hooks, so a child never inherits it locked.
pub(crate) static CACHE: Mutex<SymbolCache> = Mutex::new(None);

/// The symbolized addresses a snapshot asked for, read from the cache (held locked meanwhile).
pub(crate) struct Resolved {
    cache: MutexGuard<'static, SymbolCache>,
}

impl Resolved {
    /// The frames of a resolved address, innermost (most inlined) first.
    pub(crate) fn frames(&self, addr: usize) -> &[Frame] {
        self.cache
            .as_ref()
            .and_then(|cache| cache.get(&addr))
            .map_or(&[], Vec::as_slice)
    }
}

/// Resolves each address the cache does not hold yet; the cache stays locked until the returned
/// view is dropped.
pub(crate) fn resolve_all(addresses: impl IntoIterator<Item = usize>) -> Resolved {
    let mut guard = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    let cache = guard.get_or_insert_with(HashMap::default);
    // Found at the first address not cached yet.
    let mut c_library: Option<Option<CLibrary>> = None;
    for addr in addresses {
        if let Entry::Vacant(slot) = cache.entry(addr) {
            let c_library = c_library.get_or_insert_with(CLibrary::find).as_mut();
            let named = c_library
                .filter(|library| library.contains(addr))
                .and_then(|library| library.function(addr))
                .map(|function| vec![Frame::new(function)]);
            slot.insert(named.unwrap_or_else(|| resolve(addr)));
        }
    }
    // The parsed debug info is most of the profiler's own memory (tens of MiB for a program that
    // uses a few crates), and the next snapshot needs it only for addresses it has not seen:
    // those resolved are kept above, the rest is parsed again on demand.
    backtrace::clear_symbol_cache();
    Resolved { cache: guard }
}

/// Symbolizes one return address (backtrace-rs steps back into the call instruction itself).
fn resolve(addr: usize) -> Vec<Frame> {
    let mut frames = Vec::new();
    backtrace::resolve(addr as *mut std::ffi::c_void, |symbol| {
        let function = symbol
            .name()
            .map(|name| tracealloc_snapshot::one_closure_spelling(format!("{name:#}")))
            .unwrap_or_else(|| "??".to_owned());
        let mut frame = Frame::new(function);
        if let Some(file) = symbol.filename() {
            frame = frame.at(file.display().to_string(), symbol.lineno(), symbol.colno());
        }
        frame.inlined = true;
        frames.push(frame);
    });
    match frames.last_mut() {
        Some(outermost) => outermost.inlined = false,
        None => frames.push(Frame::new("??")),
    }
    frames
}
