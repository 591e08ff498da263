//! Periodic snapshots without code: with `TRACEALLOC_OUT` and `TRACEALLOC_INTERVAL` set, a
//! background thread writes a numbered snapshot every interval (`{seq}` in the path, else a
//! number before the extension), keeping the last `TRACEALLOC_KEEP` of them. Each file is written
//! to a temporary file and renamed: a process killed mid-write leaves no half-written snapshot.
//!
//! The thread is the C library's own (`pthread_create`), started with the process's hooks at the
//! first allocation, and runs inside the profiler from its first instruction: nothing it does is
//! counted, and it never holds anything an allocating thread waits on.

use std::time::Duration;

use crate::guard::ReentrancyGuard;
use crate::process::exit::OUT_ENV;

/// The environment variable that sets the period of the snapshots: `30s`, `500ms`, `5m`, or a
/// number of seconds.
pub const INTERVAL_ENV: &str = "TRACEALLOC_INTERVAL";
/// The environment variable that sets how many periodic snapshots are kept (the oldest go).
pub const KEEP_ENV: &str = "TRACEALLOC_KEEP";

/// Starts the dumping thread when both variables ask for it. Called once, with the process's
/// hooks, at the first allocation; reads the environment with `getenv`, which does not allocate.
pub(crate) fn start_if_configured() {
    let Some(interval) = interval_ms() else {
        return;
    };
    // SAFETY: the name is NUL-terminated; only checked for presence.
    if unsafe { libc::getenv(c"TRACEALLOC_OUT".as_ptr()) }.is_null() {
        return;
    }
    let mut thread: libc::pthread_t = 0;
    // SAFETY: (1) `dump_loop` is an `extern "C"` function that never unwinds (it catches panics);
    // (2) its argument is the interval, passed by value in the pointer; (3) the thread is detached
    // at once, so nothing has to join it.
    unsafe {
        if libc::pthread_create(
            &mut thread,
            std::ptr::null(),
            dump_loop,
            interval as usize as *mut libc::c_void,
        ) == 0
        {
            libc::pthread_detach(thread);
        }
    }
}

/// `TRACEALLOC_INTERVAL` in milliseconds (at least 1), or `None` when unset or not a duration.
fn interval_ms() -> Option<u64> {
    // SAFETY: the name is NUL-terminated; getenv returns null or a NUL-terminated string that we
    // only read here.
    let value = unsafe {
        let value = libc::getenv(c"TRACEALLOC_INTERVAL".as_ptr());
        if value.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr(value).to_bytes()
    };
    parse_interval(std::str::from_utf8(value).ok()?)
}

/// `30s`, `500ms`, `5m` or `30` (seconds) in milliseconds.
fn parse_interval(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number.parse().ok()?;
    let ms = match unit.trim() {
        "ms" => number,
        "s" => number.checked_mul(1000)?,
        "m" | "min" => number.checked_mul(60_000)?,
        _ => return None,
    };
    (ms > 0).then_some(ms)
}

/// The path of snapshot `seq`: `{pid}` and `{seq}` replaced; without `{seq}`, the number goes
/// before the extension (`heap.json` -> `heap.3.json`).
pub(crate) fn numbered(pattern: &str, seq: &str) -> String {
    let path = pattern.replace("{pid}", &std::process::id().to_string());
    if path.contains("{seq}") {
        return path.replace("{seq}", seq);
    }
    match path.rfind('.') {
        Some(dot) if dot > path.rfind('/').map_or(0, |slash| slash + 1) => {
            format!("{}.{seq}{}", &path[..dot], &path[dot..])
        }
        _ => format!("{path}.{seq}"),
    }
}

extern "C" fn dump_loop(argument: *mut libc::c_void) -> *mut libc::c_void {
    let interval = Duration::from_millis(argument as usize as u64);
    // A panic must not unwind into C: the dumps stop, the program goes on.
    let _ = std::panic::catch_unwind(|| {
        // Everything this thread does is the profiler's own, for its whole life.
        let _inside = ReentrancyGuard::enter();
        // SAFETY: PR_SET_NAME reads a NUL-terminated name of at most 16 bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, c"tracealloc-dump".as_ptr()) };
        let Some(pattern) = std::env::var_os(OUT_ENV) else {
            return;
        };
        let pattern = pattern.to_string_lossy().into_owned();
        let keep = crate::sys::env_u64(c"TRACEALLOC_KEEP").filter(|&keep| keep > 0);
        for seq in 1u64.. {
            std::thread::sleep(interval);
            let path = numbered(&pattern, &seq.to_string());
            if let Err(e) = crate::process::snapshot().save(&path) {
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
    fn intervals_and_names() {
        assert_eq!(parse_interval("30s"), Some(30_000));
        assert_eq!(parse_interval("250ms"), Some(250));
        assert_eq!(parse_interval("2m"), Some(120_000));
        assert_eq!(parse_interval("5"), Some(5_000));
        assert_eq!(parse_interval("0s"), None);
        assert_eq!(parse_interval("soon"), None);
        let pid = std::process::id();
        assert_eq!(numbered("/tmp/h-{seq}.json", "3"), "/tmp/h-3.json");
        assert_eq!(numbered("/tmp/h.json", "3"), "/tmp/h.3.json");
        assert_eq!(numbered("/tmp/h", "3"), "/tmp/h.3");
        assert_eq!(numbered("/a.b/h", "3"), "/a.b/h.3");
        assert_eq!(
            numbered("h-{pid}.json", "exit"),
            format!("h-{pid}.exit.json")
        );
    }
}
