//! The control socket (`TRACEALLOC_LISTEN`): a Unix socket served by a background thread, through
//! which `tracealloc snapshot`, `tracealloc live` and scripts take snapshots, read the figures,
//! reset the peak and switch stack capture on and off while the program runs. The protocol is
//! `tracealloc_snapshot::control`'s.
//!
//! Like the dump thread, the server's threads are the C library's own (`pthread_create`), the
//! first started with the process's hooks at the first allocation, inside the profiler for their
//! whole life: nothing they do is counted, and they never hold anything an allocating thread waits
//! on. [`SERVERS`] threads accept on the one socket, each serving one connection at a time, one
//! request per connection, bounded in size (4 KiB) and in time: the whole request must come within
//! [`REQUEST_DEADLINE`] and the whole reply go within [`REPLY_DEADLINE`], however the client
//! spaces its bytes. So a client that sends garbage, sends nothing, trickles its request or goes
//! away costs the program one short-lived socket and holds one thread for a few seconds at most,
//! while the others answer; the threads are made once, so the memory they use stays bounded.
//!
//! Only the program's user may connect: the socket is made with mode 0600 (bound under a
//! temporary name, restricted, then renamed into place, so it is never open to others), and each
//! peer's credentials are checked (`SO_PEERCRED`) before its request is read.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::OnceLock;
use std::time::Duration;

use tracealloc_snapshot::control::{self, Deadline, LiveStats, Request};

use crate::config::Config;
use crate::guard::ReentrancyGuard;

/// How many connections are served at once: a client that stalls holds one thread (for the
/// deadlines below at most) and the others go on answering `tracealloc live`'s requests.
const SERVERS: usize = 4;

/// How long a client has to send its whole request: at most 4 KiB, which every client of the
/// protocol writes at once as it connects.
const REQUEST_DEADLINE: Duration = Duration::from_secs(2);

/// How long the server has to write the whole reply: a snapshot can be tens of megabytes, which a
/// client that reads takes milliseconds to receive.
const REPLY_DEADLINE: Duration = Duration::from_secs(10);

/// The socket all the server's threads accept on, bound by the first.
static LISTENER: OnceLock<UnixListener> = OnceLock::new();

/// Starts the server when `TRACEALLOC_LISTEN` names a socket. Called once, with the process's
/// hooks, at the first allocation.
pub(crate) fn start_if_configured(config: &'static Config) {
    if config.listen().is_some() {
        spawn(bind_and_serve, config);
    }
}

/// Starts `routine` on a detached thread of the C library's own, with the configuration.
fn spawn(routine: extern "C" fn(*mut libc::c_void) -> *mut libc::c_void, config: &'static Config) {
    let mut thread: libc::pthread_t = 0;
    // SAFETY: (1) `routine` is one of this module's `extern "C"` functions, which never unwind
    // (`inside_the_profiler` catches panics); (2) its argument is the configuration, which lives
    // for the whole process; (3) the thread is detached at once, so nothing has to join it.
    unsafe {
        if libc::pthread_create(
            &mut thread,
            std::ptr::null(),
            routine,
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

/// Runs a server thread's `body` inside the profiler, named `tracealloc-ctl`. A panic must not
/// unwind into C: that thread stops, the program goes on.
fn inside_the_profiler(
    argument: *mut libc::c_void,
    body: fn(&'static Config),
) -> *mut libc::c_void {
    // SAFETY: the argument is the process's configuration (`spawn`), never freed.
    let config = unsafe { &*argument.cast_const().cast::<Config>() };
    let _ = std::panic::catch_unwind(|| {
        // Everything this thread does is the profiler's own, for its whole life.
        let _inside = ReentrancyGuard::enter();
        // SAFETY: PR_SET_NAME reads a NUL-terminated name of at most 16 bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, c"tracealloc-ctl".as_ptr()) };
        body(config);
    });
    std::ptr::null_mut()
}

/// The first server thread: binds the socket, starts the others, serves.
extern "C" fn bind_and_serve(argument: *mut libc::c_void) -> *mut libc::c_void {
    inside_the_profiler(argument, |config| {
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
        let listener = LISTENER.get_or_init(|| listener);
        for _ in 1..SERVERS {
            spawn(serve_too, config);
        }
        accept_loop(listener, config);
    })
}

/// The other server threads: serve the socket the first bound.
extern "C" fn serve_too(argument: *mut libc::c_void) -> *mut libc::c_void {
    inside_the_profiler(argument, |config| {
        if let Some(listener) = LISTENER.get() {
            accept_loop(listener, config);
        }
    })
}

/// Accepts connections, one at a time, for ever.
fn accept_loop(listener: &UnixListener, config: &Config) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => serve(&stream, config),
            // A peer that went away before it was accepted, or a short resource shortage:
            // slow down a little, never spin.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
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

/// Answers one connection's one request: the request read within [`REQUEST_DEADLINE`], the
/// reply written within [`REPLY_DEADLINE`].
fn serve(stream: &UnixStream, config: &Config) {
    let Some(reply) = answer(stream, config) else {
        return;
    };
    let mut out = Deadline::new(stream, REPLY_DEADLINE);
    let _ = control::write_response(&mut out, reply.as_deref().map_err(String::as_str));
}

/// The reply to the connection's request (the payload, or why not); `None` when nothing can be
/// said (the peer is unknown).
fn answer(stream: &UnixStream, config: &Config) -> Option<Result<Vec<u8>, String>> {
    // SAFETY: geteuid has no preconditions.
    let owner = unsafe { libc::geteuid() };
    match peer_uid(stream)? {
        uid if uid == owner => {}
        // The client says that the program refused, before this.
        uid => {
            return Some(Err(format!(
                "user {uid} is not the program's user ({owner})"
            )));
        }
    }
    let request = match control::read_request(&mut Deadline::new(stream, REQUEST_DEADLINE)) {
        Ok(request) => request,
        Err(e) => return Some(Err(e.to_string())),
    };
    let figures = || serde_json::to_vec(&live_stats(config)).map_err(|e| e.to_string());
    Some(match request {
        // Raw, as the files written without code are (unless `TRACEALLOC_SYMBOLIZE=process`):
        // the client names the frames, and the program loads no debug info, however often the
        // live view asks.
        Request::Snapshot => {
            serde_json::to_vec(&crate::process::snapshot_to_write(true)).map_err(|e| e.to_string())
        }
        Request::Stats => figures(),
        Request::ResetPeak => {
            crate::process::REGISTRY.reset_peak();
            figures()
        }
        Request::StartCapture | Request::StopCapture => {
            crate::capture::set_capturing(request == Request::StartCapture);
            figures()
        }
        Request::Sample(bytes) => crate::accounting::sampling::set_interval(bytes)
            .map_err(str::to_owned)
            .and_then(|()| figures()),
        other => Err(format!("{} is not served by this version", other.word())),
    })
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
