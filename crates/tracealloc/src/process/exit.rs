//! The snapshot written at process exit when `TRACEALLOC_OUT` is set.

use crate::guard::ReentrancyGuard;

/// The environment variable naming the exit snapshot's path; `{pid}` is replaced by the process id
/// (and, with `TRACEALLOC_INTERVAL`, `{seq}` by the snapshot's number).
pub const OUT_ENV: &str = "TRACEALLOC_OUT";

/// Writes the exit snapshot if `TRACEALLOC_OUT` asks for one. Runs from `atexit`, so at a normal
/// exit: a return from `main` or `std::process::exit`.
pub(crate) fn write_exit_snapshot() {
    ReentrancyGuard::untracked(|| {
        let Some(path) = std::env::var_os(OUT_ENV) else {
            return;
        };
        let pattern = path.to_string_lossy();
        if pattern.is_empty() {
            return;
        }
        // With periodic snapshots, the exit snapshot is the series' last: `exit` for its number.
        let path = if std::env::var_os(super::dump::INTERVAL_ENV).is_some() {
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
