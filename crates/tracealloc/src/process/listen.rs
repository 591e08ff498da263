//! The control socket (`TRACEALLOC_LISTEN`): a Unix socket served by a background thread, through
//! which `tracealloc snapshot`, `tracealloc live` and scripts take snapshots, read the figures,
//! reset the peak and switch stack capture on and off while the program runs. The protocol is
//! `tracealloc_snapshot::control`'s.
//!
//! Like the dump thread, the server is the C library's own thread (`pthread_create`), started with
//! the process's hooks at the first allocation, inside the profiler for its whole life: nothing it
//! does is counted, and it never holds anything an allocating thread waits on. It serves one
//! connection at a time, one request per connection, each bounded in size and time, so a client
//! that sends garbage, sends nothing or goes away costs the program one short-lived socket.
//!
//! Only the program's user may connect: the socket is made with mode 0600 (bound under a
//! temporary name, restricted, then renamed into place, so it is never open to others), and each
//! peer's credentials are checked (`SO_PEERCRED`) before its request is read.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use tracealloc_snapshot::control::{self, LiveStats, Request};

use crate::config::Config;
use crate::guard::ReentrancyGuard;

/// How long a client has to send its request, and the server to write the reply.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the server when `TRACEALLOC_LISTEN` names a socket. Called once, with the process's
/// hooks, at the first allocation.
pub(crate) fn start_if_configured(config: &'static Config) {
    if config.listen().is_none() {
        return;
    }
    let mut thread: libc::pthread_t = 0;
    // SAFETY: (1) `serve_loop` is an `extern "C"` function that never unwinds (it catches panics);
    // (2) its argument is the configuration, which lives for the whole process; (3) the thread is
    // detached at once, so nothing has to join it.
    unsafe {
        if libc::pthread_create(
            &mut thread,
            std::ptr::null(),
            serve_loop,
            (config as *const Config).cast_mut().cast(),
        ) == 0
        {
            libc::pthread_detach(thread);
        }
    }
}

/// The socket's path: the pattern with `{pid}` replaced.
pub(crate) fn socket_path(pattern: &[u8]) -> String {
    String::from_utf8_lossy(pattern).replace("{pid}", &std::process::id().to_string())
}

extern "C" fn serve_loop(argument: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: the argument is the process's configuration (`start_if_configured`), never freed.
    let config = unsafe { &*argument.cast_const().cast::<Config>() };
    // A panic must not unwind into C: the server stops, the program goes on.
    let _ = std::panic::catch_unwind(|| {
        // Everything this thread does is the profiler's own, for its whole life.
        let _inside = ReentrancyGuard::enter();
        // SAFETY: PR_SET_NAME reads a NUL-terminated name of at most 16 bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, c"tracealloc-ctl".as_ptr()) };
        let Some(pattern) = config.listen() else {
            return;
        };
        let path = socket_path(pattern);
        let listener = match bind_private(&path) {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("tracealloc: cannot serve the control socket {path}: {e}");
                return;
            }
        };
        crate::process::exit::remove_socket_at_exit(path);
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => serve(stream, config),
                // A peer that went away before it was accepted, or a short resource shortage:
                // slow down a little, never spin.
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    std::ptr::null_mut()
}

/// Binds a socket at `path` that only this user can connect to. A stale socket left there by a
/// process that is gone is replaced; any other file is left alone (an error).
fn bind_private(path: &str) -> std::io::Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a file that is not a socket is in the way",
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another process serves it",
            ));
        }
        std::fs::remove_file(path)?;
    }
    let staging = format!("{path}.{}.tmp", std::process::id());
    let _ = std::fs::remove_file(&staging);
    let listener = UnixListener::bind(&staging)?;
    let published = std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&staging, path));
    if let Err(e) = published {
        let _ = std::fs::remove_file(&staging);
        return Err(e);
    }
    Ok(listener)
}

/// The user id of the process at the other end of `stream`.
fn peer_uid(stream: &UnixStream) -> Option<u32> {
    let mut credentials = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut size = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt(SO_PEERCRED) writes at most `size` bytes (one `ucred`) into
    // `credentials`, which is valid for them, and the updated size into `size`.
    let ok = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut credentials as *mut libc::ucred).cast(),
            &mut size,
        )
    } == 0;
    ok.then_some(credentials.uid)
}

/// Answers one connection's one request.
fn serve(mut stream: UnixStream, config: &Config) {
    let _ = stream.set_read_timeout(Some(TIMEOUT));
    let _ = stream.set_write_timeout(Some(TIMEOUT));
    // SAFETY: geteuid has no preconditions.
    let owner = unsafe { libc::geteuid() };
    match peer_uid(&stream) {
        Some(uid) if uid == owner => {}
        Some(uid) => {
            let message = format!("refused: user {uid} is not the program's user ({owner})");
            let _ = control::write_response(&mut stream, Err(&message));
            return;
        }
        None => return,
    }
    let request = match control::read_request(&mut stream) {
        Ok(request) => request,
        Err(e) => {
            let _ = control::write_response(&mut stream, Err(&e.to_string()));
            return;
        }
    };
    let reply = match request {
        Request::Snapshot => serde_json::to_vec(&crate::process::snapshot()),
        Request::Stats => serde_json::to_vec(&live_stats(config)),
        Request::ResetPeak => {
            crate::process::REGISTRY.reset_peak();
            serde_json::to_vec(&live_stats(config))
        }
        Request::StartCapture | Request::StopCapture => {
            crate::capture::set_capturing(request == Request::StartCapture);
            serde_json::to_vec(&live_stats(config))
        }
        Request::Sample(bytes) => match crate::accounting::sampling::set_interval(bytes) {
            Ok(()) => serde_json::to_vec(&live_stats(config)),
            Err(message) => {
                let _ = control::write_response(&mut stream, Err(message));
                return;
            }
        },
        other => {
            let message = format!("{} is not served by this version", other.word());
            let _ = control::write_response(&mut stream, Err(&message));
            return;
        }
    };
    let _ = match reply {
        Ok(payload) => control::write_response(&mut stream, Ok(&payload)),
        Err(e) => control::write_response(&mut stream, Err(&e.to_string())),
    };
    let _ = stream.flush();
}

/// The process's figures now.
pub(crate) fn live_stats(config: &Config) -> LiveStats {
    let registry = &crate::process::REGISTRY;
    let mut stats = LiveStats::default();
    stats.pid = std::process::id();
    stats.totals = registry.stats();
    stats.rss_bytes = crate::sys::resident_bytes();
    stats.capturing = crate::capture::capturing();
    stats.sampling_bytes = crate::accounting::sampling::current_mean(config.policy.sampling_mean());
    stats.uptime_ms = registry.timeline.elapsed_ms(crate::sys::coarse_now_ms());
    stats
}
