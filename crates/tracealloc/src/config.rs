//! The profiler's configuration: decided once, at the process's first allocation, from the
//! environment and the `Profiler` value's own settings, and immutable afterwards. Every other
//! module reads it from here; nothing else reads the environment.
//!
//! ```text
//!  state:  UNDECIDED ──(first allocation: compare-and-swap)──> WRITING ──> DECIDED
//!                         a racing thread spins while WRITING (the writer only reads the
//!                         environment: no allocation, no lock, a few microseconds)
//!  policy word (read by every allocation, published before DECIDED):
//!          UNDECIDED_WORD ──> 0 (exact) | LIFETIMES_WORD (exact with lifetimes) | mean (sampled)
//! ```
//!
//! Precedence, for each setting: the environment variable when it is set and valid, else the
//! `Profiler` value's setting, else the default. Lifetimes need exact mode: with sampling they stay
//! off.
//!
//! A `Profiler` value whose settings differ from those that decided is refused: its request is
//! ignored (every block keeps the layout of the decided policy, whichever value allocates or frees
//! it) and the conflict is said once on stderr. It is noticed where a value meets the profiler on
//! a path that is not the usual event's: the decision itself, a thread's first allocation, and in
//! sampled mode every sampled event.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

/// The environment variable that chooses sampling at start-up without a rebuild: the mean bytes
/// between samples, `0` for exact mode. It overrides `Profiler::sampled`.
pub const SAMPLE_ENV: &str = "TRACEALLOC_SAMPLE";
/// The environment variable that turns lifetimes on (`1`) or off (`0`) at start-up, overriding
/// `Profiler::lifetimes`.
pub const LIFETIMES_ENV: &str = "TRACEALLOC_LIFETIMES";
/// The environment variable that sets how many frames a stack keeps (1 to 256; default 128).
pub const DEPTH_ENV: &str = "TRACEALLOC_DEPTH";
/// The environment variable that forces a capture method: `TRACEALLOC_CAPTURE=unwind` uses the
/// DWARF unwinder even when frame pointers work (to compare the two, or to work around a library
/// built without frame pointers in the middle of the stacks).
pub const CAPTURE_ENV: &str = "TRACEALLOC_CAPTURE";
/// The environment variable that sets the cap on distinct stacks (default [`DEFAULT_MAX_STACKS`]).
pub const MAX_STACKS_ENV: &str = "TRACEALLOC_MAX_STACKS";
/// The environment variable naming the exit snapshot's path; `{pid}` is replaced by the process id
/// (and, with `TRACEALLOC_INTERVAL`, `{seq}` by the snapshot's number).
pub const OUT_ENV: &str = "TRACEALLOC_OUT";
/// The environment variable that turns off (`0`) the line the exit snapshot's writer prints on
/// stderr (`tracealloc: wrote the exit snapshot to ...`); a failure to write is still said.
/// `tracealloc run` sets it: it names the files itself, after renaming the program's own.
pub const EXIT_NOTICE_ENV: &str = "TRACEALLOC_EXIT_NOTICE";
/// The environment variable that sets the period of the snapshots: `30s`, `500ms`, `5m`, or a
/// number of seconds.
pub const INTERVAL_ENV: &str = "TRACEALLOC_INTERVAL";
/// The environment variable that sets how many periodic snapshots are kept (the oldest go).
pub const KEEP_ENV: &str = "TRACEALLOC_KEEP";
/// The environment variable that says which site a realloc charges its block to: `resizer` (the
/// default: the stack that resized it, in exact and sampled mode) or `origin` (the stack that first
/// allocated it, as dhat-rs does; exact mode only, and always with lifetimes).
pub const REALLOC_ENV: &str = "TRACEALLOC_REALLOC";
/// The environment variable that seeds sampled mode's random intervals, to reproduce a run: every
/// run draws a fresh seed otherwise (the snapshot records it).
pub const SEED_ENV: &str = "TRACEALLOC_SEED";
/// The environment variable naming the control socket to serve (a Unix socket path; `{pid}` is
/// replaced by the process id): `tracealloc snapshot` and `tracealloc live` connect to it.
///
/// ```
/// // A service started with its control socket, for `tracealloc live <pid>`.
/// let mut service = std::process::Command::new("./service");
/// service.env(tracealloc::LISTEN_ENV, "/tmp/heap-{pid}.sock");
/// assert_eq!(tracealloc::LISTEN_ENV, "TRACEALLOC_LISTEN");
/// ```
pub const LISTEN_ENV: &str = "TRACEALLOC_LISTEN";
/// The environment variable that starts the process with stack capture off (`0`): allocations are
/// counted, and charged to stacks only from `start_capture()` or the control socket's `start` on.
///
/// ```
/// // A service that runs with capture off until `tracealloc live` (or its own code) starts it.
/// let mut service = std::process::Command::new("./service");
/// service.env(tracealloc::CAPTURE_AT_START_ENV, "0");
/// assert_eq!(tracealloc::CAPTURE_AT_START_ENV, "TRACEALLOC_CAPTURE_AT_START");
/// ```
pub const CAPTURE_AT_START_ENV: &str = "TRACEALLOC_CAPTURE_AT_START";
/// The environment variable that says where the snapshots written without code (the exit
/// snapshot, `TRACEALLOC_INTERVAL`'s, `pprof_heap`'s) are symbolized: `later` (the default for
/// the files: raw snapshots, return addresses and modules, symbolized by the `tracealloc` CLI the
/// first time it reads them) or `process` (names in the file, at the cost of loading the debug
/// info in the profiled process: +85 to +110 MiB of peak RSS on a 105 MB binary).
///
/// ```
/// // Exit snapshots with their names in them, for a machine without the CLI or the binary.
/// let mut job = std::process::Command::new("./batch-job");
/// job.env(tracealloc::OUT_ENV, "heap-{pid}.json").env(tracealloc::SYMBOLIZE_ENV, "process");
/// assert_eq!(tracealloc::SYMBOLIZE_ENV, "TRACEALLOC_SYMBOLIZE");
/// ```
pub const SYMBOLIZE_ENV: &str = "TRACEALLOC_SYMBOLIZE";

/// About 200 bytes per stack, as a thread's stacks share their outer frames (syn's 111,671 stacks
/// of 31 frames on average: a 128-byte record, 3.3 new frame nodes of 16 bytes, table slots):
/// 1,000,000 stacks keep the tables near 200 MiB.
pub const DEFAULT_MAX_STACKS: usize = 1_000_000;

/// Frames kept per stack by default: enough for recursive-descent parsers in debug builds.
pub(crate) const DEFAULT_DEPTH: usize = 128;
/// The most frames a stack keeps.
pub(crate) const MAX_DEPTH: usize = 256;

/// The policy word of exact mode with lifetimes; as a request (`Profiler`'s setting) this bit is
/// added to the sampling interval.
pub(crate) const LIFETIMES_WORD: u64 = 1 << 63;
/// The policy word of exact mode charging reallocs to the block's origin (dhat-rs's rule).
pub(crate) const ORIGIN_WORD: u64 = LIFETIMES_WORD | 1;
/// The policy word before the process's first allocation decides it.
pub(crate) const UNDECIDED_WORD: u64 = u64::MAX;
/// The Rust layer's word when another copy of the runtime's C layer (the preload library of
/// `tracealloc run`) owns the process's `malloc`: the `Profiler` forwards to its inner allocator,
/// whose `malloc` calls that layer counts, once.
pub(crate) const STANDS_DOWN_WORD: u64 = LIFETIMES_WORD | 2;

/// Whether a policy word is sampled mode: not exact (0), not exact with lifetimes
/// ([`LIFETIMES_WORD`]) or charging reallocs to their origin ([`ORIGIN_WORD`]), not
/// [`UNDECIDED_WORD`]. Those are the words that are not positive as signed numbers, so the test is
/// one compare.
#[inline(always)]
pub(crate) const fn is_sampled(word: u64) -> bool {
    word as i64 > 0
}

/// A `Profiler` value's settings as one word: the sampling interval (0: exact), plus
/// [`LIFETIMES_WORD`] for lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Request(pub(crate) u64);

impl Request {
    /// The request of a value made without settings (`Profiler::system()`).
    pub(crate) const DEFAULT: Request = Request(0);

    /// This request with sampling every `mean_bytes` on average (0: exact).
    pub(crate) const fn sampled(self, mean_bytes: u64) -> Request {
        let lifetimes = self.0 & LIFETIMES_WORD;
        let mean = if mean_bytes < LIFETIMES_WORD {
            mean_bytes
        } else {
            LIFETIMES_WORD - 1
        };
        Request(mean | lifetimes)
    }

    /// This request with lifetimes.
    pub(crate) const fn with_lifetimes(self) -> Request {
        Request(self.0 | LIFETIMES_WORD)
    }

    fn mean(self) -> u64 {
        self.0 & !LIFETIMES_WORD
    }

    fn lifetimes(self) -> bool {
        self.0 & LIFETIMES_WORD != 0
    }
}

/// How blocks are laid out and accounted: one for the whole process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Every block, with its stack; a realloc charges it to the resizing stack.
    Exact,
    /// Every block, with its stack; a realloc leaves it at its first site (dhat-rs's rule).
    ExactOrigin,
    /// Every block, with its stack and lifetime (at its first site, as DHAT's program points).
    Lifetimes,
    /// One block per `mean` bytes allocated, on average, with its stack. `mean` is the start-up
    /// interval; it can change at run time (`accounting::sampling::set_mean`), the policy (and so
    /// the word and the blocks' layouts) cannot.
    Sampled { mean: u64 },
}

impl Policy {
    /// The word the allocation path tests (see the module diagram).
    pub(crate) const fn word(self) -> u64 {
        match self {
            Policy::Exact => 0,
            Policy::ExactOrigin => ORIGIN_WORD,
            Policy::Lifetimes => LIFETIMES_WORD,
            Policy::Sampled { mean } => mean,
        }
    }

    /// Which site a realloc charges its block to, under this policy.
    pub(crate) const fn reallocs_charged_to_origin(self) -> bool {
        matches!(self, Policy::ExactOrigin | Policy::Lifetimes)
    }

    /// The sampling interval (0 unless sampled).
    pub(crate) const fn sampling_mean(self) -> u64 {
        match self {
            Policy::Sampled { mean } => mean,
            _ => 0,
        }
    }
}

/// The longest `TRACEALLOC_OUT` kept (Linux's `PATH_MAX`); a longer one is refused with a notice.
const OUT_CAPACITY: usize = 4096;
/// The longest `TRACEALLOC_LISTEN` kept: a Unix socket's path (`sun_path`) holds 108 bytes with
/// its NUL, and `{pid}` grows by up to 2 bytes.
const LISTEN_CAPACITY: usize = 105;

/// A path read from the environment into the configuration itself (reading it allocates nothing).
struct PathSetting<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> PathSetting<N> {
    /// The path in the environment variable `name`, when set, not empty and at most `N` bytes;
    /// a longer one is said on stderr as `too_long`.
    fn from_env(name: &std::ffi::CStr, too_long: &[u8]) -> Self {
        let mut setting = PathSetting {
            bytes: [0; N],
            len: 0,
        };
        let fits = env(name, |path| {
            let fits = path.len() <= N;
            if fits {
                setting.bytes[..path.len()].copy_from_slice(path);
                setting.len = path.len();
            }
            fits
        });
        if fits == Some(false) {
            crate::sys::write_stderr(too_long);
        }
        setting
    }

    fn get(&self) -> Option<&[u8]> {
        (self.len > 0).then(|| &self.bytes[..self.len])
    }
}

/// Everything the profiler reads from its environment and its `Profiler` value.
pub(crate) struct Config {
    pub(crate) policy: Policy,
    /// The `Profiler` setting that took part in the decision.
    pub(crate) request: Request,
    /// Whether `TRACEALLOC_SAMPLE` chose the sampling interval (or exact mode with 0).
    pub(crate) sample_from_env: bool,
    /// Whether `TRACEALLOC_LIFETIMES` turned lifetimes on or off.
    pub(crate) lifetimes_from_env: bool,
    /// Frames kept per stack.
    pub(crate) depth: usize,
    /// `TRACEALLOC_CAPTURE=unwind`.
    pub(crate) force_unwind: bool,
    /// The cap on distinct (stack, thread) records.
    pub(crate) max_stacks: usize,
    /// `TRACEALLOC_INTERVAL` in milliseconds, when set (and valid).
    pub(crate) interval_ms: Option<u64>,
    /// `TRACEALLOC_KEEP`, when set to a positive number.
    pub(crate) keep: Option<u64>,
    /// The seed of sampled mode's intervals: `TRACEALLOC_SEED`, else fresh for this process.
    pub(crate) seed: u64,
    /// Whether `TRACEALLOC_SEED` chose it.
    pub(crate) seed_from_env: bool,
    /// Whether another copy of the runtime's C layer owns `malloc` in this process (the preload
    /// library of `tracealloc run`, in a program with tracealloc as its global allocator): this
    /// copy then stands down, counts nothing and writes no snapshot.
    pub(crate) other_layer: bool,
    /// Whether this copy's C layer owns `malloc` (see [`crate::c_allocations!`]).
    pub(crate) own_c_layer: bool,
    /// Whether stacks are captured from the start (`TRACEALLOC_CAPTURE_AT_START`, default on).
    pub(crate) capture_at_start: bool,
    /// Whether writing the exit snapshot is said on stderr (`TRACEALLOC_EXIT_NOTICE`, default on).
    pub(crate) exit_notice: bool,
    /// `TRACEALLOC_SYMBOLIZE`: `Some(true)` for `later`, `Some(false)` for `process`, `None` when
    /// unset (each kind of snapshot then has its default).
    pub(crate) symbolize_later: Option<bool>,
    out: PathSetting<OUT_CAPACITY>,
    listen: PathSetting<LISTEN_CAPACITY>,
}

impl Config {
    /// The configuration for `request`, read from the environment (`getenv`, which allocates
    /// nothing). Said on stderr: a value that cannot be used.
    fn from_environment(request: Request) -> Config {
        let sample_env = env_u64(c"TRACEALLOC_SAMPLE");
        let lifetimes_env = env_u64(c"TRACEALLOC_LIFETIMES");
        let seed_env = env_u64(c"TRACEALLOC_SEED");
        let mean = sample_env.unwrap_or(request.mean());
        let lifetimes = lifetimes_env.map_or(request.lifetimes(), |v| v != 0);
        let origin = env(c"TRACEALLOC_REALLOC", |v| match v {
            b"origin" => Some(true),
            b"resizer" => Some(false),
            _ => None,
        })
        .map(|rule| {
            rule.unwrap_or_else(|| {
                crate::sys::write_stderr(
                    b"tracealloc: TRACEALLOC_REALLOC must be `resizer` or `origin`; using resizer\n",
                );
                false
            })
        });
        if origin == Some(true) && mean != 0 {
            crate::sys::write_stderr(
                b"tracealloc: TRACEALLOC_REALLOC=origin needs exact mode (sampled mode can only \
                  estimate reallocs charged to the resizer); using resizer\n",
            );
        }
        let policy = match (mean, lifetimes) {
            (0, false) if origin == Some(true) => Policy::ExactOrigin,
            (0, false) => Policy::Exact,
            (0, true) => Policy::Lifetimes,
            (mean, _) => Policy::Sampled {
                mean: mean.min(LIFETIMES_WORD - 1),
            },
        };
        let depth = match env_u64(c"TRACEALLOC_DEPTH") {
            Some(depth) if (1..=MAX_DEPTH as u64).contains(&depth) => depth as usize,
            None if env(c"TRACEALLOC_DEPTH", |_| ()).is_none() => DEFAULT_DEPTH,
            _ => {
                crate::sys::write_stderr(
                    b"tracealloc: TRACEALLOC_DEPTH must be a number from 1 to 256; using 128\n",
                );
                DEFAULT_DEPTH
            }
        };
        let layers = c_layers();
        Config {
            policy,
            request,
            sample_from_env: sample_env.is_some(),
            lifetimes_from_env: lifetimes_env.is_some(),
            depth,
            force_unwind: env(c"TRACEALLOC_CAPTURE", |v| v == b"unwind").unwrap_or(false),
            max_stacks: env_u64(c"TRACEALLOC_MAX_STACKS").map_or(DEFAULT_MAX_STACKS, |cap| {
                usize::try_from(cap).unwrap_or(usize::MAX)
            }),
            interval_ms: env(c"TRACEALLOC_INTERVAL", |v| {
                std::str::from_utf8(v).ok().and_then(parse_interval)
            })
            .flatten(),
            keep: env_u64(c"TRACEALLOC_KEEP").filter(|&keep| keep > 0),
            seed: seed_env.unwrap_or_else(fresh_seed),
            seed_from_env: seed_env.is_some(),
            other_layer: layers == CLayers::Other,
            own_c_layer: layers == CLayers::Own,
            capture_at_start: env_u64(c"TRACEALLOC_CAPTURE_AT_START") != Some(0),
            exit_notice: env_u64(c"TRACEALLOC_EXIT_NOTICE") != Some(0),
            symbolize_later: env(c"TRACEALLOC_SYMBOLIZE", |v| match v {
                b"later" => Some(true),
                b"process" => Some(false),
                _ => {
                    crate::sys::write_stderr(
                        b"tracealloc: TRACEALLOC_SYMBOLIZE must be `process` or `later`; using \
                          the defaults\n",
                    );
                    None
                }
            })
            .flatten(),
            out: PathSetting::from_env(
                c"TRACEALLOC_OUT",
                b"tracealloc: TRACEALLOC_OUT is longer than 4096 bytes; no snapshot is written\n",
            ),
            listen: PathSetting::from_env(
                c"TRACEALLOC_LISTEN",
                b"tracealloc: TRACEALLOC_LISTEN is longer than a Unix socket's path can be (105 \
                  bytes); no control socket is served\n",
            ),
        }
    }

    /// `TRACEALLOC_OUT`, the snapshot path pattern, when set and not empty.
    pub(crate) fn out(&self) -> Option<&[u8]> {
        self.out.get()
    }

    /// `TRACEALLOC_LISTEN`, the control socket's path pattern, when set and not empty.
    pub(crate) fn listen(&self) -> Option<&[u8]> {
        self.listen.get()
    }

    /// Whether lifetimes are recorded.
    pub(crate) fn lifetimes(&self) -> bool {
        self.policy == Policy::Lifetimes
    }
}

/// Whether another copy of the runtime's C layer is in the process (found by its exported name:
/// `dlsym`, which may allocate through the process's `malloc`, never through this copy's
/// `Profiler`). A copy with its own C layer (feature `c-allocations`) owns `malloc` itself when it
/// is in the executable (the executable's definitions come first), so it never stands down.
fn c_layers() -> CLayers {
    if c_layer_in_use() {
        return CLayers::Own;
    }
    // A probe: if this copy's C layer owns `malloc` (exported from the executable, where the
    // marker below is not exported), it sees this block and says so.
    // SAFETY: a block of the process's allocator, freed at once.
    crate::guard::ReentrancyGuard::untracked(|| unsafe { libc::free(libc::malloc(1)) });
    if c_layer_in_use() {
        return CLayers::Own;
    }
    // The look-up may allocate through the process's `malloc`: under the guard, the C layer of
    // this copy (undecided still) serves it as the profiler's own block.
    crate::guard::ReentrancyGuard::untracked(|| {
        // SAFETY: (1) the name is NUL-terminated; RTLD_DEFAULT searches the global scope; (2)
        // dlerror clears the error a failed lookup leaves, so the program's own dlerror does not
        // see it; (3) the symbol, where found, is `c_allocations!`'s marker: an `extern "C"`
        // function without arguments returning its copy's identity.
        unsafe {
            let found = libc::dlsym(libc::RTLD_DEFAULT, c"tracealloc_c_layer_v1".as_ptr());
            if found.is_null() {
                libc::dlerror();
                return CLayers::None;
            }
            let marker: extern "C" fn() -> *const u8 = std::mem::transmute(found);
            if std::ptr::eq(marker(), &C_LAYER_IDENTITY) {
                mark_c_layer_in_use();
                CLayers::Own
            } else {
                CLayers::Other
            }
        }
    })
}

/// This copy of the runtime, as [`crate::c_allocations!`]'s exported `tracealloc_c_layer_v1`
/// names it: `c_layers` looks that name up to tell its own C layer from another copy's.
pub static C_LAYER_IDENTITY: u8 = 0;

/// Set by this copy's C layer before its first event decides the configuration.
static C_LAYER_IN_USE: AtomicBool = AtomicBool::new(false);

/// Whether this copy's C layer owns `malloc` (it has seen an event, or the configuration found
/// it exported).
pub(crate) fn c_layer_in_use() -> bool {
    C_LAYER_IN_USE.load(Ordering::Relaxed)
}

/// Notes that this copy's C layer owns `malloc`.
pub(crate) fn mark_c_layer_in_use() {
    C_LAYER_IN_USE.store(true, Ordering::Relaxed);
}

/// Which tracealloc C layer owns the process's `malloc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CLayers {
    /// None: the Rust layer counts Rust allocations.
    None,
    /// This copy's ([`crate::c_allocations!`]): the Rust layer stands down, as the C layer counts
    /// the `malloc` calls of `System`.
    Own,
    /// Another copy's (the preload library of `tracealloc run`): this copy stands down entirely.
    Other,
}

/// `30s`, `500ms`, `5m` or `30` (seconds) in milliseconds; `None` for anything else or zero.
pub(crate) fn parse_interval(text: &str) -> Option<u64> {
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

/// A seed for this process: 8 bytes from the kernel's generator (`getrandom`, which allocates
/// nothing), or, when it cannot give them at start-up, the clock mixed with the process id.
fn fresh_seed() -> u64 {
    let mut seed = 0u64;
    // SAFETY: getrandom writes at most 8 bytes into `seed`, which is valid for 8 bytes of writes;
    // GRND_NONBLOCK makes it fail instead of waiting for the pool at early boot.
    let got = unsafe {
        libc::getrandom(
            (&raw mut seed).cast(),
            std::mem::size_of::<u64>(),
            libc::GRND_NONBLOCK,
        )
    };
    if got != std::mem::size_of::<u64>() as isize {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec into `now`; getpid has no preconditions.
        let pid = unsafe {
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
            libc::getpid()
        };
        seed = (now.tv_sec as u64).wrapping_mul(1_000_000_007)
            ^ (now.tv_nsec as u64)
            ^ ((pid as u64) << 32);
    }
    seed
}

/// What `read` makes of an environment variable's bytes, without allocating; `None` when unset.
/// Called only while the configuration is decided: at the process's first allocation, before any
/// thread of the profiler's exists.
fn env<R>(name: &std::ffi::CStr, read: impl FnOnce(&[u8]) -> R) -> Option<R> {
    // SAFETY: (1) the name is NUL-terminated; (2) getenv returns null or a NUL-terminated string
    // owned by the environment, which `read` uses before this returns (nothing here changes the
    // environment meanwhile).
    let value = unsafe {
        let value = libc::getenv(name.as_ptr());
        if value.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr(value).to_bytes()
    };
    Some(read(value))
}

/// An environment variable read as an unsigned number; `None` when it is unset or not a number.
fn env_u64(name: &std::ffi::CStr) -> Option<u64> {
    env(name, |v| std::str::from_utf8(v).ok()?.trim().parse().ok()).flatten()
}

const UNDECIDED: u8 = 0;
const WRITING: u8 = 1;
const DECIDED: u8 = 2;

/// The one configuration of the process.
struct Cell {
    state: AtomicU8,
    /// The policy's word, for the allocation path: [`UNDECIDED_WORD`] before the decision.
    word: AtomicU64,
    /// The Rust layer's word: the policy's, or [`STANDS_DOWN_WORD`].
    rust_word: AtomicU64,
    /// Set once a conflicting request has been said, so that it is said once.
    conflict_said: AtomicBool,
    config: UnsafeCell<MaybeUninit<Config>>,
}

// SAFETY: `config` is written once, by the thread that moved `state` from UNDECIDED to WRITING,
// and read only after `state` is DECIDED (a release store after the write, acquire loads before
// every read).
unsafe impl Sync for Cell {}

static CONFIG: Cell = Cell {
    state: AtomicU8::new(UNDECIDED),
    word: AtomicU64::new(UNDECIDED_WORD),
    rust_word: AtomicU64::new(UNDECIDED_WORD),
    conflict_said: AtomicBool::new(false),
    config: UnsafeCell::new(MaybeUninit::uninit()),
};

/// The policy word as it stands: [`UNDECIDED_WORD`] before the process's first allocation, which
/// decides it with [`decide`]. It says how every block is laid out, so it is read before the
/// inner allocator is called.
#[inline(always)]
pub(crate) fn policy_word() -> u64 {
    CONFIG.rust_word.load(Ordering::Relaxed)
}

/// The policy word the C layer reads (never [`STANDS_DOWN_WORD`]).
#[inline(always)]
pub(crate) fn policy_word_of_c_layer() -> u64 {
    CONFIG.word.load(Ordering::Relaxed)
}

/// The configuration, deciding it now from the environment and `request` if no thread has yet. A
/// thread that finds another deciding waits for it (the decider only reads the environment).
/// When it was decided already, a different `request` is refused (see the module docs).
#[cold]
#[inline(never)]
pub(crate) fn decide(request: Request) -> &'static Config {
    let config = decide_quietly(request);
    check_request(config, request);
    config
}

/// [`decide`] without the check of `request`: for the profiler's own calls that have no
/// `Profiler` value (a `measure` begun before any allocation), whose request is the default.
#[cold]
pub(crate) fn decide_quietly(request: Request) -> &'static Config {
    let mut spins: u32 = 0;
    loop {
        match CONFIG.state.compare_exchange(
            UNDECIDED,
            WRITING,
            Ordering::Acquire,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                let config = Config::from_environment(request);
                let word = config.policy.word();
                let rust_word = if config.other_layer || config.own_c_layer {
                    STANDS_DOWN_WORD
                } else {
                    word
                };
                // SAFETY: this thread moved the state from UNDECIDED to WRITING: it is the only
                // writer, and no reader reads before DECIDED.
                unsafe { (*CONFIG.config.get()).write(config) };
                CONFIG.word.store(word, Ordering::Release);
                CONFIG.rust_word.store(rust_word, Ordering::Release);
                CONFIG.state.store(DECIDED, Ordering::Release);
            }
            Err(DECIDED) => {}
            Err(_) => {
                spins += 1;
                if spins < 1000 {
                    std::hint::spin_loop();
                } else {
                    // SAFETY: sched_yield has no preconditions.
                    unsafe { libc::sched_yield() };
                }
                continue;
            }
        }
        // SAFETY: DECIDED: written once, never written again.
        return unsafe { (*CONFIG.config.get()).assume_init_ref() };
    }
}

/// The configuration, once decided (`None` before the process's first allocation).
pub(crate) fn get() -> Option<&'static Config> {
    // SAFETY: DECIDED (acquire): written once, never written again.
    (CONFIG.state.load(Ordering::Acquire) == DECIDED)
        .then(|| unsafe { (*CONFIG.config.get()).assume_init_ref() })
}

/// Says once on stderr that `request` differs from the request that decided, and is ignored.
#[cold]
#[inline(never)]
pub(crate) fn check_request(config: &Config, request: Request) {
    if request == config.request || CONFIG.conflict_said.swap(true, Ordering::Relaxed) {
        return;
    }
    let mut message = StackText::new();
    let _ = std::fmt::Write::write_fmt(
        &mut message,
        format_args!(
            "tracealloc: a second Profiler asks for {}, but the first allocation set the profiler \
             up with {} (running: {}); the mode is decided once per process, so the second \
             request is ignored\n",
            Described(request),
            Described(config.request),
            Running(config.policy),
        ),
    );
    crate::sys::write_stderr(message.as_bytes());
}

/// [`check_request`] against the configuration, once decided: for the `Profiler` value's cold
/// paths (in sampled mode, every sampled event).
#[cold]
pub(crate) fn check(request: Request) {
    if let Some(config) = get() {
        check_request(config, request);
    }
}

struct Described(Request);

impl std::fmt::Display for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.0.mean(), self.0.lifetimes()) {
            (0, false) => f.write_str("exact mode"),
            (0, true) => f.write_str("exact mode with lifetimes"),
            (mean, false) => write!(f, "sampling every {mean} bytes"),
            (mean, true) => write!(f, "sampling every {mean} bytes with lifetimes"),
        }
    }
}

struct Running(Policy);

impl std::fmt::Display for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Policy::Exact => f.write_str("exact"),
            Policy::ExactOrigin => f.write_str("exact, reallocs charged to their origin"),
            Policy::Lifetimes => f.write_str("exact with lifetimes"),
            Policy::Sampled { mean } => write!(f, "sampled every {mean} bytes"),
        }
    }
}

/// A message formatted on the stack (the allocator path must not allocate); cut at 512 bytes.
struct StackText {
    bytes: [u8; 512],
    len: usize,
}

impl StackText {
    fn new() -> StackText {
        StackText {
            bytes: [0; 512],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("30s"), Some(30_000));
        assert_eq!(parse_interval("250ms"), Some(250));
        assert_eq!(parse_interval("2m"), Some(120_000));
        assert_eq!(parse_interval("5"), Some(5_000));
        assert_eq!(parse_interval("0s"), None);
        assert_eq!(parse_interval("soon"), None);
    }

    #[test]
    fn requests_and_their_words() {
        assert_eq!(Request::DEFAULT.sampled(4096), Request(4096));
        assert_eq!(Request::DEFAULT.with_lifetimes().sampled(4096).mean(), 4096);
        assert!(Request::DEFAULT.with_lifetimes().sampled(4096).lifetimes());
        assert_eq!(
            Request::DEFAULT.sampled(u64::MAX).mean(),
            LIFETIMES_WORD - 1
        );
        assert!(is_sampled(Policy::Sampled { mean: 1 }.word()));
        assert!(!is_sampled(Policy::Exact.word()));
        assert!(!is_sampled(Policy::Lifetimes.word()));
        assert!(!is_sampled(Policy::ExactOrigin.word()));
        assert!(!is_sampled(UNDECIDED_WORD));
    }

    #[test]
    fn messages_fit_on_the_stack() {
        let mut text = StackText::new();
        let long = "x".repeat(600);
        std::fmt::Write::write_str(&mut text, &long).unwrap();
        assert_eq!(text.as_bytes().len(), 512);
        let described = format!("{}", Described(Request::DEFAULT.sampled(512)));
        assert_eq!(described, "sampling every 512 bytes");
    }
}
