//! The snapshot written at process exit when `TRACEALLOC_OUT` is set.

use crate::guard::ReentrancyGuard;

/// Writes the exit snapshot if `TRACEALLOC_OUT` asks for one. Runs from `atexit`, so at a normal
/// exit: a return from `main` or `std::process::exit`.
pub(crate) fn write_exit_snapshot() {
    ReentrancyGuard::untracked(|| {
        let Some(config) = crate::config::get() else {
            return;
        };
        if config.other_layer {
            // Another copy's C layer counts this process and writes its snapshot.
            return;
        }
        let Some(pattern) = config.out() else {
            return;
        };
        let pattern = String::from_utf8_lossy(pattern);
        // With periodic snapshots, the exit snapshot is the series' last: `exit` for its number.
        let path = if config.interval_ms.is_some() {
            super::dump::numbered(&pattern, "exit")
        } else {
            pattern.replace("{pid}", &std::process::id().to_string())
        };
        let snapshot = crate::process::snapshot();
        match snapshot.save(&path) {
            Ok(()) => eprintln!("tracealloc: wrote the exit snapshot to {path}"),
            Err(e) => eprintln!("tracealloc: cannot write the exit snapshot: {e}"),
        }
    });
}
