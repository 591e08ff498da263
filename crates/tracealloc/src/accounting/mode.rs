//! The profiler's mode, decided once at the process's first allocation from the environment and
//! the `Profiler`'s own settings: exact (every block), sampled (`Profiler::sampled`,
//! `TRACEALLOC_SAMPLE`) or exact with lifetimes (`Profiler::lifetimes`, `TRACEALLOC_LIFETIMES`).
//!
//! The mode is one word, so that the hot path tells the usual mode from the others with one
//! compare: 0 is exact, [`LIFETIMES`] is exact with lifetimes, anything else is the mean bytes
//! between samples.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::state::record::LIFETIMES_MODE;

/// The environment variable that chooses sampling at start-up without a rebuild: the mean bytes
/// between samples, `0` for exact mode. It overrides `Profiler::sampled`.
pub const SAMPLE_ENV: &str = "TRACEALLOC_SAMPLE";

/// The environment variable that turns lifetimes on (`1`) or off (`0`) at start-up, overriding
/// `Profiler::lifetimes`.
pub const LIFETIMES_ENV: &str = "TRACEALLOC_LIFETIMES";

/// The mode word of exact mode with lifetimes; as a request (`Profiler`'s setting) this bit is
/// added to the sampling interval.
pub(crate) const LIFETIMES: u64 = 1 << 63;

/// The mode word before the process's first allocation decides it.
pub(crate) const UNDECIDED: u64 = u64::MAX;

/// Whether a mode word is sampled mode: not exact (0), not exact with lifetimes ([`LIFETIMES`]),
/// not [`UNDECIDED`]. Those are the words that are not positive as signed numbers, so the test is
/// one compare.
#[inline(always)]
pub(crate) const fn is_sampled(word: u64) -> bool {
    word as i64 > 0
}

/// Lifetime stamps are nanoseconds of the coarse monotonic clock shifted by this much (units of
/// 1.024 µs), so that a site's summed stamps and lifetimes stay far within 64 bits (wrapping sums
/// are exact as long as the true lifetime sum fits: 2^64 units, over 500,000 years).
const STAMP_SHIFT: u32 = 10;

/// A lifetime stamp: now, in units of `1 << STAMP_SHIFT` ns.
///
/// The coarse clock, read in a few ns where a precise one costs 20-40 ns (the time-stamp counter
/// in a virtual machine, too): it moves in steps of the kernel's tick (1-4 ms), so a block's
/// lifetime counts as the number of steps between its allocation and its free. That is its true
/// lifetime on average (the steps fall at random points of the program's work), so sums and means
/// over many blocks are right; a single short-lived block reads as 0 or one step.
#[inline(always)]
pub(crate) fn stamp() -> u64 {
    crate::sys::coarse_now_ns() >> STAMP_SHIFT
}

/// Nanoseconds per stamp unit.
pub(crate) const NS_PER_STAMP: f64 = (1u64 << STAMP_SHIFT) as f64;

/// The mode in use, and who chose it.
pub(crate) struct ModeChoice {
    /// The mode word; [`UNDECIDED`] before the first allocation.
    word: AtomicU64,
    /// Who chose: bit 0 set when `TRACEALLOC_SAMPLE` chose sampling (or exact with 0), bit 1 when
    /// `TRACEALLOC_LIFETIMES` chose lifetimes (on or off).
    from_env: AtomicU8,
}

const SAMPLE_FROM_ENV: u8 = 1;
const LIFETIMES_FROM_ENV: u8 = 2;

impl ModeChoice {
    pub(crate) const fn new() -> ModeChoice {
        ModeChoice {
            word: AtomicU64::new(UNDECIDED),
            from_env: AtomicU8::new(0),
        }
    }

    /// The mode word as it stands: [`UNDECIDED`] before the first allocation.
    #[inline(always)]
    pub(crate) fn current(&self) -> u64 {
        self.word.load(Ordering::Relaxed)
    }

    /// The mode word in use, deciding it on first use from the environment and `requested`, the
    /// profiler's own setting (the sampling interval, plus [`LIFETIMES`] for lifetimes).
    #[inline(always)]
    pub(crate) fn word(&self, requested: u64) -> u64 {
        match self.word.load(Ordering::Relaxed) {
            UNDECIDED => self.decide(requested),
            word => word,
        }
    }

    /// Racing threads reach the same answer: neither the environment nor the setting changes.
    /// Lifetimes need exact mode: with sampling they stay off.
    #[cold]
    #[inline(never)]
    fn decide(&self, requested: u64) -> u64 {
        let sample_env = crate::sys::env_u64(c"TRACEALLOC_SAMPLE");
        let lifetimes_env = crate::sys::env_u64(c"TRACEALLOC_LIFETIMES");
        let mean = sample_env.unwrap_or(requested & !LIFETIMES);
        let lifetimes = lifetimes_env.map_or(requested & LIFETIMES != 0, |v| v != 0);
        let word = match (mean, lifetimes) {
            (0, true) => LIFETIMES,
            (mean, _) => mean.min(LIFETIMES - 1),
        };
        let from_env = u8::from(sample_env.is_some()) * SAMPLE_FROM_ENV
            + u8::from(lifetimes_env.is_some()) * LIFETIMES_FROM_ENV;
        self.from_env.store(from_env, Ordering::Relaxed);
        if word == LIFETIMES {
            LIFETIMES_MODE.store(true, Ordering::Relaxed);
        }
        self.word.store(word, Ordering::Relaxed);
        word
    }

    /// The sampling interval and whether `TRACEALLOC_SAMPLE` chose it, for a snapshot's metadata
    /// (exact before the first allocation).
    pub(crate) fn sampling(&self) -> (u64, bool) {
        let from_env = self.from_env.load(Ordering::Relaxed) & SAMPLE_FROM_ENV != 0;
        match self.word.load(Ordering::Relaxed) {
            UNDECIDED | LIFETIMES => (0, from_env),
            mean => (mean, from_env),
        }
    }

    /// Whether lifetimes are recorded, and whether `TRACEALLOC_LIFETIMES` chose that.
    pub(crate) fn lifetimes(&self) -> (bool, bool) {
        let from_env = self.from_env.load(Ordering::Relaxed) & LIFETIMES_FROM_ENV != 0;
        (self.word.load(Ordering::Relaxed) == LIFETIMES, from_env)
    }
}
