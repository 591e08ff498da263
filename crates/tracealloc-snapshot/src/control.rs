//! The control socket's protocol: how `tracealloc snapshot`, `tracealloc live` and scripts talk to
//! a running program that set `TRACEALLOC_LISTEN`.
//!
//! One request per connection, on a Unix stream socket that only the program's own user can use:
//!
//! ```text
//!  client ──> u32 little-endian length, then the request in UTF-8 (at most 4 KiB):
//!             `snapshot` | `stats` | `reset-peak` | `start` | `stop` | `sample <bytes>`
//!  server <── one status byte (0 ok, 1 error), u64 little-endian length, then the payload:
//!             `snapshot`: the snapshot as JSON (the file format); `stats`: a [`LiveStats`] as
//!             JSON; `reset-peak`, `start`, `stop`, `sample`: the [`LiveStats`] after the
//!             change; an error: its message in UTF-8
//! ```
//! `sample <bytes>` (the word, one space, a decimal number from 1 to 2^62) sets the mean bytes
//! between samples of a program that runs in sampled mode; a program in exact mode refuses it.
//! A request that is too long, not UTF-8, unknown or not sent whole within the server's deadline
//! gets an error (or the connection closed) and changes nothing. Both ends read and write against
//! one deadline for the whole request or reply ([`Deadline`]), not a timeout per read: a peer that
//! trickles a byte at a time cannot stretch an exchange past it.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::model::HeapStats;

/// The longest request a server reads; a longer one is refused unread.
pub const MAX_REQUEST_BYTES: u32 = 4096;

/// What a client asks of the profiled program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// A snapshot now, returned whole in the snapshot format.
    Snapshot,
    /// The process's figures ([`LiveStats`]): cheap enough to ask every second.
    Stats,
    /// Sets the peak to the current live figures.
    ResetPeak,
    /// Starts capturing stacks (`tracealloc::start_capture`).
    StartCapture,
    /// Stops capturing stacks: allocations are still counted, charged to no stack.
    StopCapture,
    /// Sets the mean bytes between samples (`sample <bytes>`, 1 to [`MAX_SAMPLING_BYTES`]):
    /// sampled mode only (`tracealloc::set_sampling_interval`).
    Sample(u64),
}

/// The largest interval `sample <bytes>` accepts: 2^62 bytes.
pub const MAX_SAMPLING_BYTES: u64 = 1 << 62;

impl Request {
    /// Every request that takes no argument, as its word ([`Request::Sample`] takes one).
    pub const ALL: [Request; 5] = [
        Request::Snapshot,
        Request::Stats,
        Request::ResetPeak,
        Request::StartCapture,
        Request::StopCapture,
    ];

    /// The request's word on the wire.
    ///
    /// ```
    /// use tracealloc_snapshot::control::Request;
    ///
    /// assert_eq!(Request::ResetPeak.word(), "reset-peak");
    /// let words: Vec<&str> = Request::ALL.iter().map(|r| r.word()).collect();
    /// assert_eq!(words, ["snapshot", "stats", "reset-peak", "start", "stop"]);
    /// ```
    pub fn word(self) -> &'static str {
        match self {
            Request::Snapshot => "snapshot",
            Request::Stats => "stats",
            Request::ResetPeak => "reset-peak",
            Request::StartCapture => "start",
            Request::StopCapture => "stop",
            Request::Sample(_) => "sample",
        }
    }

    /// The request as sent: its word, and for [`Request::Sample`] a space and the bytes.
    pub fn text(self) -> String {
        match self {
            Request::Sample(bytes) => format!("sample {bytes}"),
            other => other.word().to_owned(),
        }
    }

    /// The request a text names: a word of [`Request::ALL`], or `sample <bytes>` (one space, a
    /// decimal number from 1 to [`MAX_SAMPLING_BYTES`]).
    ///
    /// ```
    /// use tracealloc_snapshot::control::Request;
    ///
    /// assert_eq!(Request::parse("stop"), Some(Request::StopCapture));
    /// assert_eq!(Request::parse(" stats\n"), Some(Request::Stats)); // spaces around it are cut
    /// assert_eq!(Request::parse("sample 4096"), Some(Request::Sample(4096)));
    /// assert_eq!(Request::parse("sample 0"), None);
    /// assert_eq!(Request::parse("restart"), None);
    /// ```
    pub fn parse(text: &str) -> Option<Request> {
        let text = text.trim();
        if let Some(bytes) = text.strip_prefix("sample ") {
            return parse_sampling_bytes(bytes).ok().map(Request::Sample);
        }
        Request::ALL.into_iter().find(|r| r.word() == text)
    }
}

/// A sampling interval as `sample <bytes>` takes it: a decimal number of bytes from 1 to
/// [`MAX_SAMPLING_BYTES`] (digits only: no sign, no unit), or why not.
pub fn parse_sampling_bytes(text: &str) -> Result<u64, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{text:?} is not a number of bytes (digits only, from 1 to 2^62)"
        ));
    }
    match text.parse::<u64>() {
        Ok(bytes) if (1..=MAX_SAMPLING_BYTES).contains(&bytes) => Ok(bytes),
        _ => Err(format!(
            "{text} is out of range: the interval is from 1 to 2^62 bytes"
        )),
    }
}

/// The process's figures between snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LiveStats {
    pub pid: u32,
    /// Live, total and peak figures, exact in every mode.
    pub totals: HeapStats,
    /// The process's resident memory.
    pub rss_bytes: u64,
    /// Whether stacks are being captured (`start`/`stop`).
    pub capturing: bool,
    /// Mean bytes between samples; 0 in exact mode.
    pub sampling_bytes: u64,
    /// Milliseconds since the profiler's first allocation.
    pub uptime_ms: u64,
}

/// Why a request could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    #[error("cannot read the request: {0}")]
    Io(#[from] io::Error),
    #[error("the request is {0} bytes long; at most {MAX_REQUEST_BYTES} are read")]
    TooLong(u32),
    #[error("the request is not UTF-8")]
    NotUtf8,
    #[error(
        "unknown request {0:?}; known: snapshot, stats, reset-peak, start, stop, sample <bytes> (1 to 2^62)"
    )]
    Unknown(String),
    #[error("bad sample request: {0}")]
    BadSample(String),
}

/// Sends `request` (client side).
///
/// ```
/// use tracealloc_snapshot::control::{self, Request};
///
/// // Over a Vec instead of a socket: the length, little-endian, then the word.
/// let mut wire = Vec::new();
/// control::write_request(&mut wire, Request::Stats)?;
/// assert_eq!(wire, b"\x05\0\0\0stats");
/// assert_eq!(control::read_request(&mut wire.as_slice())?, Request::Stats);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_request(out: &mut impl Write, request: Request) -> io::Result<()> {
    let text = request.text();
    out.write_all(&(text.len() as u32).to_le_bytes())?;
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Reads one request (server side), never more than [`MAX_REQUEST_BYTES`] of it.
///
/// ```
/// use tracealloc_snapshot::control::{self, Request, RequestError};
///
/// let mut wire = Vec::new();
/// control::write_request(&mut wire, Request::ResetPeak)?;
/// assert_eq!(control::read_request(&mut wire.as_slice())?, Request::ResetPeak);
///
/// // What a server refuses, unchanged.
/// let unknown = control::read_request(&mut &b"\x07\0\0\0restart"[..]).unwrap_err();
/// assert_eq!(
///     unknown.to_string(),
///     "unknown request \"restart\"; known: snapshot, stats, reset-peak, start, stop, \
///      sample <bytes> (1 to 2^62)"
/// );
/// let too_long = control::read_request(&mut &5000u32.to_le_bytes()[..]).unwrap_err();
/// assert!(matches!(too_long, RequestError::TooLong(5000)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_request(input: &mut impl Read) -> Result<Request, RequestError> {
    let mut length = [0u8; 4];
    input.read_exact(&mut length)?;
    let length = u32::from_le_bytes(length);
    if length > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLong(length));
    }
    let mut text = vec![0u8; length as usize];
    input.read_exact(&mut text)?;
    let text = String::from_utf8(text).map_err(|_| RequestError::NotUtf8)?;
    if let Some(bytes) = text.trim().strip_prefix("sample ") {
        return parse_sampling_bytes(bytes)
            .map(Request::Sample)
            .map_err(RequestError::BadSample);
    }
    Request::parse(&text).ok_or(RequestError::Unknown(text))
}

/// Sends a reply (server side): the payload, or an error message.
///
/// ```
/// use tracealloc_snapshot::control;
///
/// // The status byte (0: ok), the payload's length as a little-endian u64, the payload.
/// let mut wire = Vec::new();
/// control::write_response(&mut wire, Ok(b"{}"))?;
/// assert_eq!(wire, [0, 2, 0, 0, 0, 0, 0, 0, 0, b'{', b'}']);
/// assert_eq!(control::read_response(&mut wire.as_slice(), 1024)?, b"{}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_response(out: &mut impl Write, reply: Result<&[u8], &str>) -> io::Result<()> {
    let (status, payload) = match reply {
        Ok(payload) => (0u8, payload),
        Err(message) => (1u8, message.as_bytes()),
    };
    out.write_all(&[status])?;
    out.write_all(&(payload.len() as u64).to_le_bytes())?;
    out.write_all(payload)?;
    out.flush()
}

/// Why a reply could not be had (client side).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    #[error("cannot read the reply: {0}")]
    Io(#[from] io::Error),
    #[error("the reply would be {size} bytes, over the limit of {limit}")]
    TooLarge { size: u64, limit: u64 },
    #[error("the reply has status {0}, which this version does not know")]
    BadStatus(u8),
    #[error("the program refused: {0}")]
    Refused(String),
}

/// Reads a reply (client side), at most `limit` bytes of payload: the payload, or the server's
/// error as [`ReplyError::Refused`].
///
/// ```
/// use tracealloc_snapshot::control::{self, ReplyError};
///
/// let mut refused = Vec::new();
/// control::write_response(&mut refused, Err("not allowed"))?;
/// let error = control::read_response(&mut refused.as_slice(), 1024).unwrap_err();
/// assert!(matches!(&error, ReplyError::Refused(message) if message == "not allowed"));
/// assert_eq!(error.to_string(), "the program refused: not allowed");
///
/// let mut large = Vec::new();
/// control::write_response(&mut large, Ok(&[0u8; 100]))?;
/// let error = control::read_response(&mut large.as_slice(), 10).unwrap_err();
/// assert!(matches!(error, ReplyError::TooLarge { size: 100, limit: 10 }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_response(input: &mut impl Read, limit: u64) -> Result<Vec<u8>, ReplyError> {
    let mut head = [0u8; 9];
    input.read_exact(&mut head)?;
    let size = u64::from_le_bytes(head[1..].try_into().expect("8 bytes"));
    if size > limit {
        return Err(ReplyError::TooLarge { size, limit });
    }
    let mut payload = Vec::with_capacity(size.min(1 << 20) as usize);
    input.take(size).read_to_end(&mut payload)?;
    if payload.len() as u64 != size {
        return Err(ReplyError::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    match head[0] {
        0 => Ok(payload),
        1 => Err(ReplyError::Refused(
            String::from_utf8_lossy(&payload).into_owned(),
        )),
        status => Err(ReplyError::BadStatus(status)),
    }
}

/// A Unix stream read and written against one deadline: each read or write waits only for what is
/// left of it, so the whole exchange ends by then however the peer spaces its bytes (a timeout per
/// read would let a byte every few seconds go on forever). Past the deadline, reads and writes
/// fail with [`io::ErrorKind::TimedOut`].
///
/// ```
/// use std::io::{ErrorKind, Read};
/// use std::os::unix::net::UnixStream;
/// use std::time::{Duration, Instant};
/// use tracealloc_snapshot::control::Deadline;
///
/// let (ours, _silent_peer) = UnixStream::pair()?;
/// let started = Instant::now();
/// let mut byte = [0u8; 1];
/// let error = Deadline::new(&ours, Duration::from_millis(100)).read(&mut byte).unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::TimedOut);
/// assert!(started.elapsed() < Duration::from_secs(5));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Deadline<'a> {
    stream: &'a UnixStream,
    deadline: Instant,
}

impl<'a> Deadline<'a> {
    /// `stream`, for an exchange that must be over `within` from now.
    pub fn new(stream: &'a UnixStream, within: Duration) -> Deadline<'a> {
        Deadline {
            stream,
            deadline: Instant::now() + within,
        }
    }

    /// What is left of the deadline, or the error once it has passed (a zero timeout would mean
    /// "wait forever" to the socket).
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        Ok(left)
    }
}

/// The error of an exchange past its deadline.
fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "past the deadline")
}

/// A socket's timeout is EAGAIN (`WouldBlock`) on Linux: said as what it is.
fn as_timed_out(error: io::Error) -> io::Error {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => timed_out(),
        _ => error,
    }
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        (&*self.stream).read(buf).map_err(as_timed_out)
    }
}

impl Write for Deadline<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        (&*self.stream).write(buf).map_err(as_timed_out)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self.stream).flush()
    }
}

/// Why a program could not be asked (client side). Each says all of it in one line: the causes
/// are in the message, not chained (a socket's broken pipe is not the terminal's).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AskError {
    #[error("process {pid} does not exist")]
    NoProcess { pid: u32 },
    #[error(
        "process {pid} serves no control socket: start it with TRACEALLOC_LISTEN=/tmp/heap-{{pid}}.sock"
    )]
    NotListening { pid: u32 },
    #[error("cannot read process {pid}'s environment: {cause}")]
    Environment { pid: u32, cause: io::Error },
    #[error("cannot connect to {}: {cause}", path.display())]
    Connect { path: PathBuf, cause: io::Error },
    #[error("{}: {cause}", path.display())]
    Reply { path: PathBuf, cause: ReplyError },
    #[error("{}: no answer from the program within {} s", path.display(), within.as_secs_f64())]
    NoAnswer { path: PathBuf, within: Duration },
}

/// The socket of `target`: a socket path as given, or for a process id, the socket its
/// `TRACEALLOC_LISTEN` names (read from `/proc/PID/environ`, `{pid}` replaced).
///
/// ```
/// use std::path::Path;
/// use tracealloc_snapshot::control::{AskError, socket_of};
///
/// assert_eq!(socket_of("/tmp/heap-4242.sock")?, Path::new("/tmp/heap-4242.sock"));
/// // A process id names the socket of that process's `TRACEALLOC_LISTEN`, if it is running.
/// let gone = socket_of("4000000000").unwrap_err();
/// assert!(matches!(gone, AskError::NoProcess { pid: 4_000_000_000 }));
/// assert_eq!(gone.to_string(), "process 4000000000 does not exist");
/// # Ok::<(), AskError>(())
/// ```
pub fn socket_of(target: &str) -> Result<PathBuf, AskError> {
    let as_path = Path::new(target);
    let pid = match target.parse::<u32>() {
        Ok(pid) if !as_path.exists() => pid,
        _ => return Ok(as_path.to_owned()),
    };
    let environ = Path::new("/proc").join(pid.to_string()).join("environ");
    let bytes = std::fs::read(&environ).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => AskError::NoProcess { pid },
        _ => AskError::Environment { pid, cause: source },
    })?;
    bytes
        .split(|&b| b == 0)
        .find_map(|entry| entry.strip_prefix(b"TRACEALLOC_LISTEN="))
        .filter(|pattern| !pattern.is_empty())
        .map(|pattern| {
            let pattern = String::from_utf8_lossy(pattern);
            PathBuf::from(pattern.replace("{pid}", &pid.to_string()))
        })
        .ok_or(AskError::NotListening { pid })
}

/// Asks the program serving `socket` for `request`; its reply's payload, at most `limit` bytes.
/// Gives up ([`AskError::NoAnswer`]) when the whole reply has not come within `timeout`.
///
/// ```
/// use std::os::unix::net::UnixListener;
/// use std::time::Duration;
/// use tracealloc_snapshot::control::{self, AskError, Request};
///
/// // A stand-in for the profiled program's control thread: it answers one request.
/// let socket = std::env::temp_dir().join(format!("ask-{}.sock", std::process::id()));
/// # let _ = std::fs::remove_file(&socket);
/// let listener = UnixListener::bind(&socket)?;
/// let program = std::thread::spawn(move || -> std::io::Result<()> {
///     let (mut stream, _) = listener.accept()?;
///     let request = control::read_request(&mut stream).expect("a request");
///     control::write_response(&mut stream, Ok(format!("asked: {}", request.word()).as_bytes()))
/// });
///
/// let reply = control::ask(&socket, Request::Stats, 1 << 20, Duration::from_secs(10))?;
/// assert_eq!(reply, b"asked: stats");
/// program.join().unwrap()?;
/// std::fs::remove_file(&socket)?;
///
/// // Nobody serves it any more.
/// let error = control::ask(&socket, Request::Stats, 1 << 20, Duration::from_secs(10));
/// assert!(matches!(error, Err(AskError::Connect { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn ask(
    socket: &Path,
    request: Request,
    limit: u64,
    timeout: Duration,
) -> Result<Vec<u8>, AskError> {
    let stream = UnixStream::connect(socket).map_err(|cause| AskError::Connect {
        path: socket.to_owned(),
        cause,
    })?;
    let mut exchange = Deadline::new(&stream, timeout);
    // A server that refuses the caller answers and closes before reading: the request may meet a
    // closed socket, and the refusal is still there to read.
    let sent = write_request(&mut exchange, request);
    let reply = match read_response(&mut exchange, limit) {
        Err(ReplyError::Io(_)) if sent.is_err() => Err(ReplyError::Io(sent.expect_err("checked"))),
        reply => reply,
    };
    reply.map_err(|cause| match cause {
        ReplyError::Io(e) if e.kind() == io::ErrorKind::TimedOut => AskError::NoAnswer {
            path: socket.to_owned(),
            within: timeout,
        },
        cause => AskError::Reply {
            path: socket.to_owned(),
            cause,
        },
    })
}

/// Asks for the program's figures.
///
/// ```
/// use std::os::unix::net::UnixListener;
/// use tracealloc_snapshot::control::{self, LiveStats, Request};
///
/// // A stand-in for the profiled program, answering with its figures after resetting its peak.
/// let socket = std::env::temp_dir().join(format!("ask-stats-{}.sock", std::process::id()));
/// # let _ = std::fs::remove_file(&socket);
/// let listener = UnixListener::bind(&socket)?;
/// let program = std::thread::spawn(move || -> std::io::Result<()> {
///     let (mut stream, _) = listener.accept()?;
///     assert_eq!(control::read_request(&mut stream).unwrap(), Request::ResetPeak);
///     let mut stats = LiveStats::default();
///     (stats.pid, stats.capturing) = (4242, true);
///     (stats.totals.live_bytes, stats.totals.peak_bytes) = (4096, 4096);
///     control::write_response(&mut stream, Ok(&serde_json::to_vec(&stats)?))
/// });
///
/// let stats = control::ask_stats(&socket, Request::ResetPeak)?;
/// assert_eq!((stats.pid, stats.capturing, stats.totals.peak_bytes), (4242, true, 4096));
/// program.join().unwrap()?;
/// # std::fs::remove_file(&socket)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn ask_stats(socket: &Path, request: Request) -> Result<LiveStats, AskError> {
    let payload = ask(socket, request, 1 << 20, Duration::from_secs(10))?;
    serde_json::from_slice(&payload).map_err(|e| AskError::Reply {
        path: socket.to_owned(),
        cause: ReplyError::Io(io::Error::new(io::ErrorKind::InvalidData, e)),
    })
}

/// Asks for a snapshot, checked as a file would be.
///
/// ```
/// use std::os::unix::net::UnixListener;
/// use tracealloc_snapshot::control::{self, Request};
/// use tracealloc_snapshot::{CaptureInfo, Metadata, Snapshot};
///
/// // A stand-in for the profiled program, answering with a snapshot in the file format.
/// let capture = CaptureInfo::new("frame-pointers", 128, true);
/// let snapshot = Snapshot::new(Metadata::new(4242, vec!["./app".into()], capture));
/// let mut json = Vec::new();
/// snapshot.write_json(&mut json)?;
/// let socket = std::env::temp_dir().join(format!("ask-snapshot-{}.sock", std::process::id()));
/// # let _ = std::fs::remove_file(&socket);
/// let listener = UnixListener::bind(&socket)?;
/// let program = std::thread::spawn(move || -> std::io::Result<()> {
///     let (mut stream, _) = listener.accept()?;
///     assert_eq!(control::read_request(&mut stream).unwrap(), Request::Snapshot);
///     control::write_response(&mut stream, Ok(&json))
/// });
///
/// let asked = control::ask_snapshot(&socket)?;
/// assert_eq!(asked, snapshot);
/// assert_eq!(asked.meta.pid, 4242);
/// program.join().unwrap()?;
/// # std::fs::remove_file(&socket)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn ask_snapshot(socket: &Path) -> Result<crate::Snapshot, AskError> {
    let payload = ask(
        socket,
        Request::Snapshot,
        crate::MAX_FILE_BYTES,
        Duration::from_secs(60),
    )?;
    crate::Snapshot::from_json(&payload).map_err(|problem| AskError::Reply {
        path: socket.to_owned(),
        cause: ReplyError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            problem.to_string(),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_round_trip() {
        for request in Request::ALL {
            let mut wire = Vec::new();
            write_request(&mut wire, request).unwrap();
            assert_eq!(read_request(&mut wire.as_slice()).unwrap(), request);
        }
        let mut wire = Vec::new();
        write_response(&mut wire, Ok(b"{}")).unwrap();
        assert_eq!(read_response(&mut wire.as_slice(), 10).unwrap(), b"{}");
        let mut wire = Vec::new();
        write_response(&mut wire, Err("no")).unwrap();
        assert!(matches!(
            read_response(&mut wire.as_slice(), 10),
            Err(ReplyError::Refused(m)) if m == "no"
        ));
    }

    #[test]
    fn sample_requests_parse_with_their_bytes() {
        assert_eq!(Request::parse("sample 4096"), Some(Request::Sample(4096)));
        assert_eq!(Request::parse("sample 1"), Some(Request::Sample(1)));
        assert_eq!(
            Request::parse(&format!("sample {}", 1u64 << 62)),
            Some(Request::Sample(1 << 62))
        );
        let mut wire = Vec::new();
        write_request(&mut wire, Request::Sample(65536)).unwrap();
        assert_eq!(&wire[4..], b"sample 65536");
        assert_eq!(
            read_request(&mut wire.as_slice()).unwrap(),
            Request::Sample(65536)
        );
        for bad in [
            "sample",
            "sample ",
            "sample 0",
            "sample -4096",
            "sample +4096",
            "sample 4096.0",
            "sample 4k",
            "sample 0x1000",
            "sample four",
            "sample 4611686018427387905",  // 2^62 + 1
            "sample 18446744073709551616", // 2^64
            "sample 99999999999999999999999999",
            "sample  4096",
            "sample\t4096",
            "samples 4096",
        ] {
            assert_eq!(Request::parse(bad), None, "{bad:?}");
            let mut wire = (bad.len() as u32).to_le_bytes().to_vec();
            wire.extend_from_slice(bad.as_bytes());
            assert!(
                matches!(
                    read_request(&mut wire.as_slice()),
                    Err(RequestError::Unknown(_) | RequestError::BadSample(_))
                ),
                "{bad:?}"
            );
        }
        assert!(
            parse_sampling_bytes("0")
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            parse_sampling_bytes("-1")
                .unwrap_err()
                .contains("not a number")
        );
    }

    #[test]
    fn a_program_that_does_not_answer_is_said_so_at_the_deadline() {
        let socket = std::env::temp_dir().join(format!("silent-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&socket);
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        // Accepts, reads the request a byte every 50 ms, never answers.
        let program = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut byte = [0u8; 1];
            while stream.read(&mut byte).unwrap_or(0) == 1 {
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let started = Instant::now();
        let error = ask(&socket, Request::Stats, 1024, Duration::from_millis(300)).unwrap_err();
        let waited = started.elapsed();
        assert!(
            matches!(&error, AskError::NoAnswer { within, .. } if within.as_millis() == 300),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "{}: no answer from the program within 0.3 s",
                socket.display()
            )
        );
        assert!(
            (Duration::from_millis(300)..Duration::from_secs(3)).contains(&waited),
            "{waited:?}"
        );
        program.join().unwrap();
        std::fs::remove_file(&socket).unwrap();
    }

    #[test]
    fn a_trickled_request_is_cut_off_at_the_deadline() {
        let (server, client) = UnixStream::pair().unwrap();
        // The length of a long request, then one byte every 100 ms: each read makes progress.
        let trickler = std::thread::spawn(move || {
            let mut client = client;
            client.write_all(&100u32.to_le_bytes()).unwrap();
            for _ in 0..100 {
                if client.write_all(b"s").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let started = Instant::now();
        let error = read_request(&mut Deadline::new(&server, Duration::from_millis(500)));
        let waited = started.elapsed();
        assert!(
            matches!(&error, Err(RequestError::Io(e)) if e.kind() == io::ErrorKind::TimedOut),
            "{error:?}"
        );
        assert!(
            (Duration::from_millis(500)..Duration::from_secs(3)).contains(&waited),
            "{waited:?}"
        );
        drop(server);
        trickler.join().unwrap();
    }

    #[test]
    fn bad_requests_are_refused_unread() {
        let long = (MAX_REQUEST_BYTES + 1).to_le_bytes();
        assert!(matches!(
            read_request(&mut long.as_slice()),
            Err(RequestError::TooLong(4097))
        ));
        let mut unknown = 3u32.to_le_bytes().to_vec();
        unknown.extend_from_slice(b"rm ");
        assert!(matches!(
            read_request(&mut unknown.as_slice()),
            Err(RequestError::Unknown(_))
        ));
        let mut truncated = 8u32.to_le_bytes().to_vec();
        truncated.extend_from_slice(b"snap");
        assert!(matches!(
            read_request(&mut truncated.as_slice()),
            Err(RequestError::Io(_))
        ));
        let mut big = vec![0u8];
        big.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            read_response(&mut big.as_slice(), 1 << 30),
            Err(ReplyError::TooLarge { .. })
        ));
    }
}
