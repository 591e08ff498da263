//! The snapshot file: versioned JSON, written atomically, read with one clear error per problem.
//!
//! Compatibility: a file names its format (`"format": "tracealloc-snapshot"`) and its version
//! (`"version"`, [`FORMAT_VERSION`]). This build, and the `tracealloc` CLI built on it, writes and
//! reads version 1 (symbolized snapshots) and version 2 ([`crate::RAW_FORMAT_VERSION`]: raw
//! snapshots, return addresses to symbolize, which a version-1 reader would misread). Fields added
//! within a version are optional (absent ones read as their defaults) and unknown fields are
//! ignored, so every version-1 file loads; a file of any other version is refused with
//! [`LoadProblem::UnsupportedVersion`]. A change that an older reader
//! could misread takes a new version. `tests/compat.rs` loads a checked-in file of each version
//! read (`tests/fixtures/`) and checks its figures.

use std::fmt;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::Snapshot;

/// The `format` field of every snapshot file.
pub const FORMAT_NAME: &str = "tracealloc-snapshot";
/// The file format version of symbolized snapshots: version 1 files load (fields absent from
/// older ones read as their defaults, unknown ones are ignored), and so do raw ones
/// ([`crate::RAW_FORMAT_VERSION`]); any other version is refused with [`LoadProblem::UnsupportedVersion`]. The `tracealloc` CLI reads what
/// this crate reads.
pub const FORMAT_VERSION: u32 = 1;
/// Files larger than this are refused before reading (4 GiB): a snapshot of that size is almost
/// certainly not one, and reading it would take the machine's memory.
pub const MAX_FILE_BYTES: u64 = 4 << 30;

/// Why a snapshot file could not be read. Displays as one line: the file, then the problem; an
/// I/O error's own message is its [`source`](std::error::Error::source), so `{:#}` (anyhow) and
/// error-chain printers show it once.
#[derive(Debug)]
pub struct LoadError {
    pub path: PathBuf,
    pub problem: LoadProblem,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.problem {
            LoadProblem::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// What was wrong with the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadProblem {
    /// The I/O error is the [`LoadError`]'s source.
    #[error("cannot read")]
    Io(std::io::Error),
    #[error("is a directory, not a snapshot file")]
    Directory,
    #[error("is empty")]
    Empty,
    #[error("is too large ({size} bytes; the limit is {limit} bytes)")]
    TooLarge { size: u64, limit: u64 },
    #[error("is truncated: the JSON ends early (line {line}, column {column})")]
    Truncated { line: usize, column: usize },
    #[error("is not JSON: {0}")]
    NotJson(String),
    #[error("is not a tracealloc snapshot (no \"format\": \"{FORMAT_NAME}\" field)")]
    NotASnapshot,
    #[error(
        "has unsupported format version {found} (this build reads versions {FORMAT_VERSION} and \
         {})",
        crate::RAW_FORMAT_VERSION
    )]
    UnsupportedVersion { found: u64 },
    #[error("is a damaged snapshot: {0}")]
    Invalid(String),
}

/// A file that could not be written (a snapshot, or any output written with
/// [`write_atomically`]). Displays as one line naming the file and the step that failed; the I/O
/// error, when there is one, is the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[error("{}: {what}", path.display())]
pub struct SaveError {
    pub path: PathBuf,
    /// The step that failed, or the renderer's own message.
    pub what: String,
    #[source]
    pub io: Option<std::io::Error>,
}

/// Writes `path` through a temporary file in the same directory, renamed into place only when
/// `render` succeeded: a failure never leaves a half-written file.
///
/// What is renamed into place is always a regular file, so the path's own kind is kept:
/// - a symbolic link stays a link: the file it points to is written (atomically, beside it);
/// - a device, a FIFO or a socket (`/dev/null`, `/dev/stdout`, a named pipe) is written to directly,
///   as it is. Renaming over `/dev/null` would replace the device with a regular file for every
///   program on the machine.
///
/// ```
/// use std::io::Write;
/// use tracealloc_snapshot::write_atomically;
///
/// let path = std::env::temp_dir().join(format!("report-{}.txt", std::process::id()));
/// write_atomically(&path, |out| writeln!(out, "live: 4 KiB"))?;
/// assert_eq!(std::fs::read_to_string(&path)?, "live: 4 KiB\n");
///
/// // A failing render leaves the file as it was.
/// let failed = write_atomically(&path, |out| {
///     writeln!(out, "half")?;
///     Err(std::io::Error::other("the renderer gave up"))
/// });
/// let message = failed.unwrap_err().to_string();
/// assert_eq!(message, format!("{}: the renderer gave up", path.display()));
/// assert_eq!(std::fs::read_to_string(&path)?, "live: 4 KiB\n");
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_atomically<E: fmt::Display>(
    path: &Path,
    render: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> Result<(), SaveError> {
    let io_fail = |what: &str| {
        let path = path.to_owned();
        let what = what.to_owned();
        move |io: std::io::Error| SaveError {
            path,
            what,
            io: Some(io),
        }
    };
    let render_fail = |e: E| SaveError {
        path: path.to_owned(),
        what: e.to_string(),
        io: None,
    };
    // `metadata` follows links: the kind of what would really be written.
    let target = std::fs::metadata(path).ok();
    if target.as_ref().is_some_and(|t| t.is_dir()) {
        return Err(SaveError {
            path: path.to_owned(),
            what: "is a directory".to_owned(),
            io: None,
        });
    }
    if target.is_some_and(|t| !t.is_file()) {
        // Rendered first, so that a failed render writes nothing and a failed write (a closed
        // pipe) is reported as the I/O error it is.
        let mut rendered = Vec::new();
        render(&mut rendered).map_err(render_fail)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_fail("cannot open for writing"))?;
        return file.write_all(&rendered).map_err(io_fail("cannot write"));
    }
    let resolved;
    let path_in_place = if path.is_symlink() {
        resolved = link_target(path).map_err(io_fail("cannot follow the link"))?;
        resolved.as_path()
    } else {
        path
    };
    let dir = match path_in_place.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Err(e) => return Err(io_fail(&format!("cannot write in {}", dir.display()))(e)),
        Ok(d) if !d.is_dir() => {
            return Err(SaveError {
                path: path.to_owned(),
                what: format!("{} is not a directory", dir.display()),
                io: None,
            });
        }
        Ok(_) => {}
    }
    let mut tmp = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .prefix(".tracealloc-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io_fail("cannot create a file here"))?;
    {
        let mut out = BufWriter::new(tmp.as_file_mut());
        render(&mut out).map_err(render_fail)?;
        out.flush().map_err(io_fail("cannot write"))?;
    }
    tmp.persist(path_in_place)
        .map_err(|e| io_fail("cannot move the written file into place")(e.error))?;
    Ok(())
}

/// Where the link at `path` leads: the file itself when it exists, else the path the link names
/// (relative to the link's directory), which writing then creates.
fn link_target(path: &Path) -> std::io::Result<std::path::PathBuf> {
    match std::fs::canonicalize(path) {
        Ok(target) => Ok(target),
        Err(_) => {
            let named = std::fs::read_link(path)?;
            Ok(path.parent().unwrap_or(Path::new(".")).join(named))
        }
    }
}

/// The fields every version has, read to tell a wrong version from a corrupt file.
#[derive(Deserialize)]
struct Header {
    format: Option<String>,
    version: Option<serde_json::Value>,
}

impl Snapshot {
    /// Writes the snapshot as JSON to `path`, through a temporary file in the same directory that is
    /// renamed into place: a failure never leaves a half-written file.
    ///
    /// ```
    /// use tracealloc_snapshot::Snapshot;
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc_snapshot::Snapshot {
    /// #     use tracealloc_snapshot::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot
    /// # }
    ///
    /// let snapshot = snapshot_of(&[("app::cache", "src/cache.rs:12", 4, 4)]);
    /// let path = std::env::temp_dir().join(format!("app-{}.json", std::process::id()));
    /// snapshot.save(&path)?; // for `tracealloc top app-<pid>.json`
    /// assert_eq!(Snapshot::load(&path)?, snapshot);
    ///
    /// let error = snapshot.save("/no/such/directory/app.json").unwrap_err();
    /// let message = error.to_string();
    /// assert_eq!(message, "/no/such/directory/app.json: cannot write in /no/such/directory");
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), SaveError> {
        write_atomically(path.as_ref(), |out| self.write_json(out))
    }

    /// Writes the snapshot as JSON, as [`Snapshot::save`] writes a file.
    ///
    /// ```
    /// use tracealloc_snapshot::Snapshot;
    /// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc_snapshot::Snapshot {
    /// #     use tracealloc_snapshot::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
    /// #         let (file, line) = at.split_once(':').unwrap();
    /// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
    /// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
    /// #         let mut site = Site::new(i as u32, 0);
    /// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
    /// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
    /// #         snapshot.sites.push(site);
    /// #     }
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot
    /// # }
    ///
    /// let snapshot = snapshot_of(&[("app::cache", "src/cache.rs:12", 4, 4)]);
    /// let mut json = Vec::new(); // or a socket, a response body, an archive entry
    /// snapshot.write_json(&mut json)?;
    /// assert!(json.starts_with(br#"{"format":"tracealloc-snapshot","version":1,"#));
    /// assert_eq!(json.last(), Some(&b'\n'));
    /// assert_eq!(Snapshot::from_json(&json)?, snapshot);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_json(&self, out: &mut dyn Write) -> Result<(), serde_json::Error> {
        serde_json::to_writer(&mut *out, self)?;
        out.write_all(b"\n").map_err(serde_json::Error::io)
    }

    /// Reads a snapshot file written by [`Snapshot::save`] (format versions 1 and 2: a raw file
    /// loads with its addresses unnamed; the CLI names them).
    /// A file that cannot be read as a snapshot gets one error naming the file and the problem
    /// ([`LoadProblem`]).
    ///
    /// ```
    /// use tracealloc_snapshot::{LoadError, LoadProblem, Snapshot};
    ///
    /// // This crate's format-compatibility fixture, written by the profiler.
    /// let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1.json");
    /// let snapshot = Snapshot::load(file)?;
    /// assert_eq!((snapshot.version, snapshot.sites.len()), (1, 8));
    ///
    /// let newer = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v3-unsupported.json");
    /// let error = Snapshot::load(newer).unwrap_err();
    /// assert!(matches!(error.problem, LoadProblem::UnsupportedVersion { found: 3 }));
    /// assert!(error.to_string().ends_with(
    ///     "v3-unsupported.json: has unsupported format version 3 (this build reads versions 1 \
    ///      and 2)"
    /// ));
    /// # Ok::<(), LoadError>(())
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Snapshot, LoadError> {
        let path = path.as_ref();
        let fail = |problem| LoadError {
            path: path.to_owned(),
            problem,
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(LoadProblem::Io(e)))?;
        if meta.is_dir() {
            return Err(fail(LoadProblem::Directory));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(fail(LoadProblem::TooLarge {
                size: meta.len(),
                limit: MAX_FILE_BYTES,
            }));
        }
        let bytes = std::fs::read(path).map_err(|e| fail(LoadProblem::Io(e)))?;
        Self::from_json(&bytes).map_err(fail)
    }

    /// Parses and checks a snapshot from JSON bytes.
    /// The same checks as [`Snapshot::load`], for bytes from elsewhere (a network response, an
    /// archive).
    ///
    /// ```
    /// use tracealloc_snapshot::{LoadProblem, Snapshot};
    ///
    /// let bytes: &[u8] =
    ///     include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1.json"));
    /// let snapshot = Snapshot::from_json(bytes)?;
    /// assert_eq!((snapshot.totals.live_bytes, snapshot.totals.live_blocks), (11_253, 17));
    ///
    /// let cut = Snapshot::from_json(&bytes[..100]).unwrap_err();
    /// assert!(matches!(cut, LoadProblem::Truncated { line: 1, column: 100 }));
    /// assert!(matches!(Snapshot::from_json(b"[1, 2]"), Err(LoadProblem::NotASnapshot)));
    /// # Ok::<(), LoadProblem>(())
    /// ```
    pub fn from_json(bytes: &[u8]) -> Result<Snapshot, LoadProblem> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(LoadProblem::Empty);
        }
        match serde_json::from_slice::<Snapshot>(bytes) {
            Ok(snapshot) => {
                check_header(Some(&snapshot.format), Some(u64::from(snapshot.version)))?;
                snapshot.validate().map_err(LoadProblem::Invalid)?;
                snapshot.validate_raw().map_err(LoadProblem::Invalid)?;
                Ok(snapshot)
            }
            Err(e) => Err(classify(bytes, e)),
        }
    }

    /// Checks that every index points into its table.
    fn validate(&self) -> Result<(), String> {
        let frames = self.frames.len();
        for (i, stack) in self.stacks.iter().enumerate() {
            if let Some(f) = stack.frames.iter().find(|&&f| f as usize >= frames) {
                return Err(format!(
                    "stack {i} names frame {f}, but there are {frames} frames"
                ));
            }
        }
        for (i, site) in self.sites.iter().enumerate() {
            if site.stack as usize >= self.stacks.len() {
                return Err(format!(
                    "site {i} names stack {}, but there are {} stacks",
                    site.stack,
                    self.stacks.len()
                ));
            }
            if site.thread as usize >= self.threads.len() {
                return Err(format!(
                    "site {i} names thread {}, but there are {} threads",
                    site.thread,
                    self.threads.len()
                ));
            }
            if site.live_blocks > site.total_blocks {
                return Err(format!(
                    "site {i} has more live blocks than it ever allocated"
                ));
            }
        }
        Ok(())
    }
}

fn check_header(format: Option<&str>, version: Option<u64>) -> Result<(), LoadProblem> {
    if format != Some(FORMAT_NAME) {
        return Err(LoadProblem::NotASnapshot);
    }
    match version {
        // Version 2: a raw snapshot, to symbolize (`crate::raw`).
        Some(v) if v == u64::from(FORMAT_VERSION) || v == u64::from(crate::RAW_FORMAT_VERSION) => {
            Ok(())
        }
        Some(found) => Err(LoadProblem::UnsupportedVersion { found }),
        None => Err(LoadProblem::Invalid("no format version".to_owned())),
    }
}

/// Turns a parse failure into the most useful problem: truncation, not JSON at all, another
/// kind of JSON, another version, or a damaged snapshot of this version.
fn classify(bytes: &[u8], e: serde_json::Error) -> LoadProblem {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => LoadProblem::Truncated {
            line: e.line(),
            column: e.column(),
        },
        Category::Syntax | Category::Io => LoadProblem::NotJson(e.to_string()),
        Category::Data => match serde_json::from_slice::<Header>(bytes) {
            Ok(h) => {
                let version = h.version.as_ref().map(|v| v.as_u64().unwrap_or(u64::MAX));
                match check_header(h.format.as_deref(), version) {
                    Err(problem) => problem,
                    Ok(()) => LoadProblem::Invalid(e.to_string()),
                }
            }
            Err(_) => LoadProblem::NotASnapshot,
        },
    }
}

impl fmt::Display for crate::model::Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} `{}`", self.pid, self.command.join(" "))
    }
}

#[cfg(test)]
mod special_path_tests {
    use std::os::unix::fs::FileTypeExt;
    use std::path::Path;

    use super::write_atomically;

    /// Skips a check that needs a tool beyond cargo, printing `skipped: {notice}`; under `CI=true`
    /// (or `CI=1`) fails instead.
    #[track_caller]
    fn skip_or_fail(notice: &str) {
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("required in CI: {notice}");
        }
        eprintln!("skipped: {notice}");
    }

    fn write(path: &Path, text: &str) {
        write_atomically(path, |out| out.write_all(text.as_bytes())).unwrap();
    }

    /// Writing to `/dev/null` (as `TRACEALLOC_OUT=/dev/null` does) writes into the device; it never
    /// renames a regular file over it. (As root, the rename would succeed and every program on the
    /// machine would then read and write a plain file there.)
    #[test]
    fn dev_null_stays_a_device() {
        write(Path::new("/dev/null"), "a snapshot nobody keeps\n");
        let kind = std::fs::symlink_metadata("/dev/null").unwrap().file_type();
        if !kind.is_char_device() {
            // Put the machine's /dev/null back before failing (only root could have replaced it).
            let _ = std::fs::remove_file("/dev/null");
            let _ = std::process::Command::new("mknod")
                .args(["-m", "666", "/dev/null", "c", "1", "3"])
                .status();
            panic!("/dev/null was replaced by a {kind:?}");
        }
        assert_eq!(std::fs::read("/dev/null").unwrap(), b"");
    }

    /// A named pipe is written through, and stays a pipe.
    #[test]
    fn a_fifo_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("out.pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            skip_or_fail("mkfifo is not available");
            return;
        }
        let (sender, received) = std::sync::mpsc::channel();
        {
            let fifo = fifo.clone();
            std::thread::spawn(move || sender.send(std::fs::read_to_string(fifo).unwrap()));
        }
        write(&fifo, "through the pipe\n");
        // A write that went elsewhere leaves the reader waiting for a writer forever.
        let text = received
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("nothing was written into the pipe");
        assert_eq!(text, "through the pipe\n");
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo()
        );
    }

    /// A directory, or a path under a file, is refused before anything is rendered or created.
    #[test]
    fn a_directory_is_refused_with_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let refused = write_atomically(dir.path(), |_| -> Result<(), String> {
            panic!("rendered for a directory")
        })
        .unwrap_err();
        assert_eq!(
            refused.to_string(),
            format!("{}: is a directory", dir.path().display())
        );
        let file = dir.path().join("a.json");
        std::fs::write(&file, "").unwrap();
        let under_file = write_atomically(&file.join("x.svg"), |_| Ok::<(), String>(()));
        assert!(
            under_file
                .unwrap_err()
                .to_string()
                .ends_with("a.json is not a directory"),
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// A link stays a link: the file it leads to gets the new contents (and a dangling link's
    /// target is created).
    #[test]
    fn a_link_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let (file, link) = (dir.path().join("a.json"), dir.path().join("latest.json"));
        std::fs::write(&file, "old").unwrap();
        std::os::unix::fs::symlink("a.json", &link).unwrap();
        write(&link, "new");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "new");

        let dangling = dir.path().join("next.json");
        std::os::unix::fs::symlink("b.json", &dangling).unwrap();
        write(&dangling, "created");
        assert!(std::fs::symlink_metadata(&dangling).unwrap().is_symlink());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b.json")).unwrap(),
            "created"
        );
    }
}

#[cfg(test)]
mod error_tests {
    use std::error::Error;

    use super::*;

    /// The I/O error is the source, once: a chain printer shows "file: step: cause" without
    /// repeating the cause, and callers can inspect the `io::Error`.
    #[test]
    fn io_errors_are_sources_shown_once() {
        let missing = Path::new("/nonexistent-dir/x.json");
        let load = Snapshot::load(missing).unwrap_err();
        let io = load
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(io.map(|e| e.kind()), Some(std::io::ErrorKind::NotFound));
        let chain = format!("{load}: {}", load.source().unwrap());
        assert_eq!(chain.matches("No such file").count(), 1, "{chain}");
        assert!(
            chain.starts_with("/nonexistent-dir/x.json: cannot read: "),
            "{chain}"
        );

        let save = write_atomically(missing, |_| Ok::<(), std::io::Error>(())).unwrap_err();
        assert_eq!(
            save.io.as_ref().map(|e| e.kind()),
            Some(std::io::ErrorKind::NotFound)
        );
        assert!(save.source().is_some());
        assert!(!save.to_string().contains("No such file"), "{save}");
    }
}
