//! The snapshot written at process exit when `TRACEALLOC_OUT` is set.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::guard::ReentrancyGuard;

/// The control socket's path once it is served, to remove at exit.
static SOCKET: OnceLock<String> = OnceLock::new();

/// Removes the control socket at `path` when the process exits normally (a killed process leaves
/// it; the next server at that path replaces a stale one).
pub(crate) fn remove_socket_at_exit(path: String) {
    let _ = SOCKET.set(path);
}

/// Whether the exit snapshot was written (or is being written): a signal during a normal exit,
/// or a second signal, must not write it again.
static WRITTEN: AtomicBool = AtomicBool::new(false);

/// Writes the exit snapshot if `TRACEALLOC_OUT` asks for one, once. Runs from `atexit`, so at a
/// normal exit (a return from `main` or `std::process::exit`), or when a signal stops the
/// program (`signals`).
pub(crate) fn write_exit_snapshot() {
    if WRITTEN.swap(true, Ordering::AcqRel) {
        return;
    }
    ReentrancyGuard::untracked(|| {
        if let Some(socket) = SOCKET.get() {
            let _ = std::fs::remove_file(socket);
        }
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
        let started = std::time::Instant::now();
        let snapshot = crate::process::snapshot_to_write(true);
        match snapshot.save(&path) {
            Ok(()) if !config.exit_notice => {}
            // With the time taken and written: what the exit costs the program.
            Ok(()) => eprintln!(
                "tracealloc: wrote the exit snapshot to {path} ({} ms{})",
                started.elapsed().as_millis(),
                if snapshot.is_raw() {
                    ", raw: `tracealloc` symbolizes it when it reads it"
                } else {
                    ""
                }
            ),
            Err(e) => eprintln!("tracealloc: cannot write the exit snapshot: {e}"),
        }
    });
}
