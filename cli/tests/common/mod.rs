//! What the CLI's integration tests share: running the built `tracealloc`, scratch directories,
//! skipping what needs a missing tool, and driving the live view in tmux. Each test file includes
//! it with `mod common;` and uses part of it (hence `dead_code` allowed).

#![allow(dead_code)]

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Skips a check that needs a tool beyond cargo, printing `skipped: {notice}`; under `CI=true` (or
/// `CI=1`), where `.ci/run` installs the tools, fails instead.
#[track_caller]
pub(crate) fn skip_or_fail(notice: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("required in CI: {notice}");
    }
    eprintln!("skipped: {notice}");
}

/// The `tracealloc` executable cargo built for these tests.
pub(crate) fn cli() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tracealloc"))
}

/// `tracealloc args`, as the tests run it: tables as wide as their contents, whatever the terminal
/// running the tests (no `COLUMNS`), and no colors (`NO_COLOR`).
pub(crate) fn tracealloc_command(args: &[&str]) -> Command {
    let mut command = Command::new(cli());
    command
        .env_remove("COLUMNS")
        .args(args)
        .env("NO_COLOR", "1");
    command
}

/// Runs `tracealloc args` (see [`tracealloc_command`]) in the test's working directory.
pub(crate) fn tracealloc(args: &[&str]) -> Output {
    tracealloc_command(args).output().expect("run tracealloc")
}

/// Runs `tracealloc args` (see [`tracealloc_command`]) in `dir`, where relative paths and default
/// outputs go.
pub(crate) fn tracealloc_in(dir: &Path, args: &[&str]) -> Output {
    tracealloc_command(args)
        .current_dir(dir)
        .output()
        .expect("run tracealloc")
}

/// Runs `tracealloc args` in `dir`, asserting that it succeeds; its stdout.
#[track_caller]
pub(crate) fn stdout_in(dir: &Path, args: &[&str]) -> String {
    let out = tracealloc_in(dir, args);
    assert!(
        out.status.success(),
        "tracealloc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `tracealloc args` in `dir`, asserting that it fails; its stderr.
#[track_caller]
pub(crate) fn stderr_of_failure_in(dir: &Path, args: &[&str]) -> String {
    let out = tracealloc_in(dir, args);
    assert!(
        !out.status.success(),
        "tracealloc {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fresh directory for one test's files, `tracealloc-{name}-{pid}` in the system's temporary
/// directory: the process id keeps concurrent runs apart, and what a failed earlier run left there
/// (kept for a look) is removed first. Tests running in one process need names of their own.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tracealloc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Calls `check` every `every` until it finds something, for what another process does in its own
/// time; `None` once `within` has passed (the caller says what was missing).
pub(crate) fn wait_until<T>(
    within: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let started = Instant::now();
    loop {
        if let Some(found) = check() {
            return Some(found);
        }
        if started.elapsed() >= within {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// A tmux session running `command` on a detached 160x40 terminal, to drive a full-screen view as
/// a user does (keys in, the screen's text out). Dropping it kills the session, so that a test
/// ends it whether it passes or fails.
pub(crate) struct Tmux {
    session: String,
}

impl Tmux {
    /// Whether tmux is installed; when not, the live view's test is skipped (failed under CI).
    #[track_caller]
    pub(crate) fn installed() -> bool {
        if Command::new("tmux").arg("-V").output().is_err() {
            skip_or_fail("tmux is not installed: the live view's test drives it in tmux");
            return false;
        }
        true
    }

    /// Starts `command` in a new session named `session`.
    pub(crate) fn start(session: &str, command: &str) -> Tmux {
        let tmux = Tmux {
            session: session.to_owned(),
        };
        run_tmux(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "160",
            "-y",
            "40",
            command,
        ]);
        tmux
    }

    /// The text on the screen now.
    pub(crate) fn screen(&self) -> String {
        run_tmux(&["capture-pane", "-p", "-t", &self.session])
    }

    /// Types `keys` (tmux's key names).
    pub(crate) fn send_keys(&self, keys: &str) {
        run_tmux(&["send-keys", "-t", &self.session, keys]);
    }

    /// Reads the screen every `every` until `found` finds something on it; fails after `within`,
    /// saying `what` is missing, with the last screen.
    #[track_caller]
    pub(crate) fn wait_for<T>(
        &self,
        within: Duration,
        every: Duration,
        what: impl Display,
        mut found: impl FnMut(&str) -> Option<T>,
    ) -> T {
        let mut text = String::new();
        let seen = wait_until(within, every, || {
            text = self.screen();
            found(&text)
        });
        match seen {
            Some(seen) => seen,
            None => panic!("{what}:\n{text}"),
        }
    }

    /// Ends the session (and its command) now.
    pub(crate) fn kill(&self) {
        run_tmux(&["kill-session", "-t", &self.session]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .output();
    }
}

/// Runs `tmux args`; its stdout.
fn run_tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
