//! The exit snapshot of a program stopped by a signal: Ctrl-C (`SIGINT`), `kill`, systemd or a
//! container runtime (`SIGTERM`), a closed terminal (`SIGHUP`). Their default action ends the
//! process without running `atexit`, so without this a service stopped the usual way, or a
//! program under `tracealloc run` stopped with Ctrl-C, wrote nothing.
//!
//! With `TRACEALLOC_OUT` set, each of those signals whose disposition is still the default when
//! the profiler starts gets a handler. A program's own handler (installed before, or after, which
//! replaces ours, even when it calls ours in turn) is left alone: it decides how the program ends,
//! and a normal exit writes the snapshot. The handler only writes the signal's number to a pipe (all a handler may safely do);
//! a thread of the profiler's own reads it, writes the exit snapshot, restores the default action
//! and sends the signal again, so the process ends as it would have (its parent sees "killed by
//! SIGINT", a shell prints nothing new).
//!
//! ```text
//!  SIGINT ──> on_signal: write(pipe, signo) ──> watcher thread: exit snapshot,
//!                                                 SIG_DFL, kill(getpid(), signo) ──> process ends
//! ```

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use crate::config::Config;
use crate::guard::ReentrancyGuard;

/// The signals whose default action ends the process without `atexit` and that ask a program to
/// stop (not the ones that report a crash: a crashed program's memory is not worth a snapshot).
const STOPPING: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// The pipe from the handler to the watcher: read end, write end (-1 until made).
static PIPE: [AtomicI32; 2] = [AtomicI32::new(-1), AtomicI32::new(-1)];

/// The process that installed the handlers: a forked child inherits them, but not the watcher.
static INSTALLER: AtomicU32 = AtomicU32::new(0);

/// Installs the handlers and starts the watcher when the configuration writes an exit snapshot.
/// Called once, with the process's hooks.
pub(crate) fn start_if_configured(config: &'static Config) {
    if config.out().is_none() || config.other_layer {
        return;
    }
    let mut fds = [-1; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`, which has room for two.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    PIPE[0].store(fds[0], Ordering::Relaxed);
    PIPE[1].store(fds[1], Ordering::Relaxed);
    INSTALLER.store(std::process::id(), Ordering::Relaxed);
    let mut thread: libc::pthread_t = 0;
    // SAFETY: (1) `watch` is an `extern "C"` function that never unwinds (it catches panics);
    // (2) it takes no argument; (3) the thread is detached at once, so nothing has to join it.
    let started = unsafe {
        libc::pthread_create(&mut thread, std::ptr::null(), watch, std::ptr::null_mut()) == 0
    };
    if !started {
        return;
    }
    // SAFETY: a thread just created, detached once.
    unsafe { libc::pthread_detach(thread) };
    for signal in STOPPING {
        // SAFETY: (1) `sigaction` reads and writes the two structures given, zeroed `sigaction`s
        // being valid; (2) `on_signal` is an `extern "C"` handler that only calls async-signal-safe
        // functions (write, getpid, signal, raise) and never unwinds.
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut current) != 0
                || current.sa_sigaction != libc::SIG_DFL
            {
                continue; // the program's own, or ignored: left as it is
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// The handler: hands the signal to the watcher. In a forked child, which has no watcher, it ends
/// the process by the signal's default action at once. Called by a handler the program installed
/// since, which chains to the one it replaced (signal-hook's registry, and so tokio's signals, do),
/// it does nothing: the program's handler decides how the program ends.
extern "C" fn on_signal(signal: libc::c_int) {
    // SAFETY: sigaction, getpid, write, signal and raise are async-signal-safe; the structure and
    // the byte written are on this handler's stack; a failed write leaves the signal unhandled, as
    // below.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction != on_signal as *const () as libc::sighandler_t
        {
            return;
        }
        if libc::getpid() as u32 == INSTALLER.load(Ordering::Relaxed) {
            let byte = signal as u8;
            if libc::write(
                PIPE[1].load(Ordering::Relaxed),
                (&byte as *const u8).cast(),
                1,
            ) == 1
            {
                return;
            }
        }
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

/// The watcher thread: waits for a signal, writes the exit snapshot, then ends the process by
/// that signal's default action.
extern "C" fn watch(_: *mut libc::c_void) -> *mut libc::c_void {
    // A panic must not unwind into C: the process then ends by the signal without a snapshot.
    let _ = std::panic::catch_unwind(|| {
        // Everything this thread does is the profiler's own, for its whole life.
        let _inside = ReentrancyGuard::enter();
        // SAFETY: PR_SET_NAME reads a NUL-terminated name of at most 16 bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, c"tracealloc-sig".as_ptr()) };
        let mut byte = 0u8;
        loop {
            // SAFETY: reads one byte into `byte`, from the pipe's read end, which stays open.
            let read = unsafe {
                libc::read(
                    PIPE[0].load(Ordering::Relaxed),
                    (&mut byte as *mut u8).cast(),
                    1,
                )
            };
            if read == 1 {
                break;
            }
            if read == 0
                || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
            {
                return;
            }
        }
        let signal = libc::c_int::from(byte);
        crate::process::exit::write_exit_snapshot();
        // SAFETY: restoring the default action and sending the signal to this process: it ends
        // as the signal's default action ends it.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::kill(libc::getpid(), signal);
        }
    });
    std::ptr::null_mut()
}
