//! Periodic snapshots without code: with `TRACEALLOC_OUT` and `TRACEALLOC_INTERVAL` set, a
//! background thread writes a numbered snapshot every interval (`{seq}` in the path, else a
//! number before the extension), keeping the last `TRACEALLOC_KEEP` of them. Each file is written
//! to a temporary file and renamed: a process killed mid-write leaves no half-written snapshot.
//!
//! The thread is the C library's own (`pthread_create`), started with the process's hooks at the
//! first allocation, and runs inside the profiler from its first instruction: nothing it does is
//! counted, and it never holds anything an allocating thread waits on.

use std::time::Duration;

use crate::config::Config;
use crate::guard::ReentrancyGuard;

/// Starts the dumping thread when the configuration asks for it (`TRACEALLOC_OUT` and
/// `TRACEALLOC_INTERVAL`). Called once, with the process's hooks, at the first allocation.
pub(crate) fn start_if_configured(config: &'static Config) {
    if config.interval_ms.is_none() || config.out().is_none() || config.other_layer {
        return;
    }
    let mut thread: libc::pthread_t = 0;
    // SAFETY: (1) `dump_loop` is an `extern "C"` function that never unwinds (it catches panics);
    // (2) its argument is the configuration, which lives for the whole process; (3) the thread
    // is detached at once, so nothing has to join it.
    unsafe {
        if libc::pthread_create(
            &mut thread,
            std::ptr::null(),
            dump_loop,
            (config as *const Config).cast_mut().cast(),
        ) == 0
        {
            libc::pthread_detach(thread);
        }
    }
}

/// The path of snapshot `seq`: `{pid}` and `{seq}` replaced; without `{seq}`, the number goes
/// before the extension (`heap.json` -> `heap.000003.json`). A number is zero-padded to six
/// digits, so that a shell's glob (`heap-*.json`) lists the snapshots in the order they were
/// taken; a name (`exit`) is kept as it is.
pub(crate) fn numbered(pattern: &str, seq: &str) -> String {
    let path = pattern.replace("{pid}", &std::process::id().to_string());
    let seq = if !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()) {
        format!("{seq:0>6}")
    } else {
        seq.to_owned()
    };
    if path.contains("{seq}") {
        return path.replace("{seq}", &seq);
    }
    match path.rfind('.') {
        Some(dot) if dot > path.rfind('/').map_or(0, |slash| slash + 1) => {
            format!("{}.{seq}{}", &path[..dot], &path[dot..])
        }
        _ => format!("{path}.{seq}"),
    }
}

extern "C" fn dump_loop(argument: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: the argument is the process's configuration (`start_if_configured`), never freed.
    let config = unsafe { &*argument.cast_const().cast::<Config>() };
    // A panic must not unwind into C: the dumps stop, the program goes on.
    let _ = std::panic::catch_unwind(|| {
        // Everything this thread does is the profiler's own, for its whole life.
        let _inside = ReentrancyGuard::enter();
        // SAFETY: PR_SET_NAME reads a NUL-terminated name of at most 16 bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, c"tracealloc-dump".as_ptr()) };
        let (Some(pattern), Some(interval)) = (config.out(), config.interval_ms) else {
            return;
        };
        let interval = Duration::from_millis(interval);
        let pattern = String::from_utf8_lossy(pattern).into_owned();
        let keep = config.keep;
        for seq in 1u64.. {
            std::thread::sleep(interval);
            let path = numbered(&pattern, &seq.to_string());
            if let Err(e) = crate::process::snapshot_to_write(true).save(&path) {
                eprintln!("tracealloc: cannot write the periodic snapshot: {e}");
                continue;
            }
            if let Some(old) = keep
                .and_then(|keep| seq.checked_sub(keep))
                .filter(|&s| s > 0)
            {
                let _ = std::fs::remove_file(numbered(&pattern, &old.to_string()));
            }
        }
    });
    std::ptr::null_mut()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let pid = std::process::id();
        assert_eq!(numbered("/tmp/h-{seq}.json", "3"), "/tmp/h-000003.json");
        assert_eq!(numbered("/tmp/h-{seq}.json", "12"), "/tmp/h-000012.json");
        assert_eq!(
            numbered("/tmp/h-{seq}.json", "1234567"),
            "/tmp/h-1234567.json"
        );
        assert_eq!(numbered("/tmp/h.json", "3"), "/tmp/h.000003.json");
        assert_eq!(numbered("/tmp/h", "3"), "/tmp/h.000003");
        assert_eq!(numbered("/a.b/h", "3"), "/a.b/h.000003");
        assert_eq!(numbered("/tmp/h-{seq}.json", "exit"), "/tmp/h-exit.json");
        assert_eq!(
            numbered("h-{pid}.json", "exit"),
            format!("h-{pid}.exit.json")
        );
    }
}
