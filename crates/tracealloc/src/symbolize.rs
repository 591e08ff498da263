//! Return addresses to source frames (with inlined frames), cached for the life of the process.
//! Runs only in snapshots, under the reentrancy guard, never on the allocator path.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tracealloc_snapshot::Frame;

pub(crate) type SymbolCache = Option<HashMap<usize, Vec<Frame>>>;

/// Symbolized addresses. Held across `fork` by the fork hooks, so a child never inherits it locked.
pub(crate) static CACHE: Mutex<SymbolCache> = Mutex::new(None);

/// The frames of each address, innermost (most inlined) first, filling `out` by address.
pub(crate) fn resolve_all(
    addresses: impl IntoIterator<Item = usize>,
    out: &mut HashMap<usize, Vec<Frame>>,
) {
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    let cache = cache.get_or_insert_with(HashMap::new);
    for addr in addresses {
        if out.contains_key(&addr) {
            continue;
        }
        let frames = cache.entry(addr).or_insert_with(|| resolve(addr)).clone();
        out.insert(addr, frames);
    }
}

/// Symbolizes one return address (backtrace-rs steps back into the call instruction itself).
fn resolve(addr: usize) -> Vec<Frame> {
    let mut frames = Vec::new();
    backtrace::resolve(addr as *mut std::ffi::c_void, |symbol| {
        frames.push(Frame {
            function: symbol
                .name()
                .map(|name| format!("{name:#}"))
                .unwrap_or_else(|| "??".to_owned()),
            file: symbol.filename().map(|f| f.display().to_string()),
            line: symbol.lineno(),
            column: symbol.colno(),
            inlined: true,
        });
    });
    match frames.last_mut() {
        Some(outermost) => outermost.inlined = false,
        None => frames.push(Frame {
            function: "??".to_owned(),
            file: None,
            line: None,
            column: None,
            inlined: false,
        }),
    }
    frames
}
