//! Sampling by bytes (opt-in, [`crate::Profiler::sampled`]): each thread samples the allocated
//! bytes as a Poisson process with the given mean interval, like Go's and jemalloc's heap
//! profilers, so a block of `s` bytes is sampled with probability `p = 1 - exp(-s / mean)`. Only
//! sampled blocks have their stack captured; each stands for `1 / p` blocks and `s / p` bytes in its
//! site's counters (estimates, unbiased). The whole-process totals and live figures
//! ([`crate::stats`]) stay exact: every block is still counted there (the peak is checked every
//! 64 KiB per thread at least: see `process::sampled`).
//!
//! A block's contribution is a function of its current size only, so a free or realloc takes back
//! exactly what was added, and a site's live estimate returns to zero when its blocks are freed.
//! Blocks are counted in fractions ([`BLOCK_UNIT`]).
//!
//! The interval can be changed while the program runs ([`set_mean`], from
//! `tracealloc::set_sampling_interval` or the control socket's `sample` request). The policy word
//! and the blocks' layouts stay as decided at start-up; what changes is the mean the threads draw
//! their next intervals with. A block's weight must be taken back with the mean it was sampled
//! at, so every distinct mean the process used gets an *epoch* (its index in [`MEANS`]; epoch 0
//! is the start-up mean, the policy's), each record made by a sampled event stores the epoch of
//! its blocks (`SiteRecord::epoch`, in what was padding), and its identity mixes that epoch in
//! ([`epoch_mix`]): blocks sampled at different means go to different records, and a free or a
//! resize takes back its block's weight at its record's mean ([`mean_of`]). Snapshots merge the
//! records of one stack (sites are keyed by symbolized stack, thread and label), so every site
//! stays an unbiased estimate across changes. A mean used before reuses its epoch (halving then
//! doubling makes no new records); [`MAX_MEANS`] distinct means at most.
//!
//! Each thread's sampler holds the epoch and mean of the interval it is drawing from, and checks
//! the process's current epoch on every event that leaves the short path (at most 64 KiB of
//! allocation apart, and at every sample point): when it changed, it draws a fresh interval with
//! the new mean. The intervals are exponential (memoryless), so replacing what is left of one at
//! such a moment keeps the sample points a Poisson process, of the old rate before and the new one
//! after. The usual event (the short path) is untouched: it reads nothing new.
//!
//! One approximation is left: a thread's `[other stacks]` record (past `TRACEALLOC_MAX_STACKS`)
//! is one record for all epochs, with epoch 0, so blocks sampled there after a change are taken
//! back at the start-up mean's weight.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::state::counters::{Counts, SiteDelta};
use crate::state::record::{OwnerId, SiteRecord};
use crate::state::thread::SamplerState;

/// The most distinct sampling means a process can use (epochs fit a record's `u8`).
pub(crate) const MAX_MEANS: usize = 256;
/// The smallest and largest interval that can be set at run time.
pub(crate) const MEAN_RANGE: std::ops::RangeInclusive<u64> = 1..=1 << 62;

/// The distinct means used, by epoch; epoch 0 (the start-up mean) is the policy's and is not
/// stored here. An entry is written once, before the epoch is published in [`CURRENT_EPOCH`].
static MEANS: [AtomicU64; MAX_MEANS] = [const { AtomicU64::new(0) }; MAX_MEANS];
/// How many epochs exist (epoch 0 included).
static EPOCHS: AtomicUsize = AtomicUsize::new(1);
/// The epoch new intervals are drawn with (0 until the interval is changed).
static CURRENT_EPOCH: AtomicU64 = AtomicU64::new(0);
/// How many times the interval was changed (to a different mean).
static CHANGES: AtomicU64 = AtomicU64::new(0);
/// Serializes the setters (never taken on an allocation path).
static SETTING: Mutex<()> = Mutex::new(());

/// The mean of `epoch`'s blocks; `startup` is the policy's mean (epoch 0).
#[inline(always)]
pub(crate) fn mean_of(epoch: u8, startup: u64) -> u64 {
    if epoch == 0 {
        startup
    } else {
        MEANS[epoch as usize].load(Ordering::Relaxed)
    }
}

/// The current mean, for reports (`startup`: the policy's mean; 0 in exact mode stays 0).
pub(crate) fn current_mean(startup: u64) -> u64 {
    if startup == 0 {
        return 0;
    }
    mean_of(CURRENT_EPOCH.load(Ordering::Acquire) as u8, startup)
}

/// How many times the interval was changed, and the distinct means used, in order of first use
/// (the start-up mean first), when it was.
pub(crate) fn history(startup: u64) -> (u64, Vec<u64>) {
    let changes = CHANGES.load(Ordering::Relaxed);
    if changes == 0 {
        return (0, Vec::new());
    }
    let epochs = EPOCHS.load(Ordering::Acquire);
    let means = (0..epochs).map(|e| mean_of(e as u8, startup)).collect();
    (changes, means)
}

/// The message of a change of the sampling interval refused in exact mode.
pub(crate) const EXACT_MODE_REFUSAL: &str =
    "the program runs in exact mode; start it with TRACEALLOC_SAMPLE=<bytes> to sample";

/// `tracealloc::set_sampling_interval`: checks the mode and the range, then [`set_mean`].
pub(crate) fn set_interval(bytes: u64) -> Result<(), &'static str> {
    let Some(config) = crate::config::get() else {
        return Err("the profiler has not started: no allocation went through it yet");
    };
    let startup = config.policy.sampling_mean();
    if startup == 0 {
        return Err(EXACT_MODE_REFUSAL);
    }
    if !MEAN_RANGE.contains(&bytes) {
        return Err("the sampling interval must be from 1 to 2^62 bytes");
    }
    set_mean(bytes, startup)
}

/// Makes `mean` the interval new samples are drawn with; `startup` is the policy's mean. The
/// caller checked sampled mode and [`MEAN_RANGE`]. Allocates nothing, takes no lock an allocation
/// waits on.
pub(crate) fn set_mean(mean: u64, startup: u64) -> Result<(), &'static str> {
    let _setting = SETTING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let epochs = EPOCHS.load(Ordering::Relaxed);
    let current = CURRENT_EPOCH.load(Ordering::Relaxed) as usize;
    let epoch = match (0..epochs).find(|&e| mean_of(e as u8, startup) == mean) {
        Some(epoch) => epoch,
        None if epochs < MAX_MEANS => {
            MEANS[epochs].store(mean, Ordering::Relaxed);
            EPOCHS.store(epochs + 1, Ordering::Release);
            epochs
        }
        None => return Err("this program used 256 different sampling intervals already"),
    };
    if epoch != current {
        // Release: a thread that sees the epoch sees its mean.
        CURRENT_EPOCH.store(epoch as u64, Ordering::Release);
        CHANGES.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Brings a thread's sampler to the process's current epoch (see the module docs): the event
/// that calls this has not been counted against the interval yet. `startup` is the policy's mean.
#[inline(always)]
pub(crate) fn follow_current_mean(sampler: &mut SamplerState, startup: u64) {
    let epoch = CURRENT_EPOCH.load(Ordering::Acquire);
    if sampler.mean == 0 || epoch != u64::from(sampler.epoch) {
        change_mean(sampler, epoch as u8, startup);
    }
}

#[cold]
#[inline(never)]
fn change_mean(sampler: &mut SamplerState, epoch: u8, startup: u64) {
    let mean = mean_of(epoch, startup);
    let changed = sampler.mean != 0 && sampler.mean != mean;
    sampler.epoch = epoch;
    sampler.mean = mean;
    // Before the first interval (`rng` 0) `at_sample_point` draws it with this mean.
    if changed && sampler.rng != 0 {
        sampler.bytes_left = next_interval(&mut sampler.rng, mean);
    }
}

/// What an epoch adds to a record's identity: nothing for epoch 0 (so records of a program that
/// never changes its interval keep their identities), else two words spread over all their bits
/// (a bijection of the epoch each: distinct epochs differ in both), xored into the stack's
/// identity as `RecordKey::identity_mix` is.
#[inline]
pub(crate) fn epoch_mix(epoch: u8) -> (u64, u64) {
    if epoch == 0 {
        return (0, 0);
    }
    let x = u64::from(epoch);
    (
        spread(x ^ 0x7361_6d70_6c65_0000), // "sample"
        spread(x.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x6570_6f63_6800_0000), // "epoch"
    )
}

/// murmur3's 64-bit finalizer: a bijection that spreads every bit over the word.
fn spread(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The header record of blocks left out by sampling: they count in the whole-process figures only.
pub(crate) static UNSAMPLED: SiteRecord = SiteRecord::empty(OwnerId::NONE);

/// Counts `size` bytes against a thread's sampling interval; true when a sample point falls in
/// them. `seed` differs per thread (its index), and is mixed with the process's seed (fresh per
/// run, or `TRACEALLOC_SEED`), read only when the thread's first interval is drawn. The thread's allowances are withdrawn first (`ThreadState::withdraw_allowances`: what
/// the short path has not used of them is still ahead of the sample point).
#[inline(always)]
pub(crate) fn take_sample(sampler: &mut SamplerState, seed: &u32, size: usize, mean: u64) -> bool {
    sampler.bytes_left -= size as i64;
    if sampler.bytes_left > 0 {
        return false;
    }
    at_sample_point(sampler, seed, mean)
}

/// [`take_sample`] once the interval is used up, or before the thread's first interval is drawn
/// (a new state's `bytes_left` is 0, so its first event comes here).
#[cold]
#[inline(never)]
fn at_sample_point(sampler: &mut SamplerState, seed: &u32, mean: u64) -> bool {
    if sampler.rng == 0 {
        // The first interval is drawn too; the bytes just counted count against it.
        let process_seed = crate::config::get().map_or(0, |config| config.seed);
        sampler.rng = thread_rng_seed(process_seed, *seed);
        sampler.bytes_left += next_interval(&mut sampler.rng, mean);
        if sampler.bytes_left > 0 {
            return false;
        }
    }
    sampler.bytes_left = next_interval(&mut sampler.rng, mean);
    true
}

impl SiteDelta {
    /// What a sampled new block of `size` bytes adds to its site: its estimates, and their
    /// variance in the slots of [`block_variances`].
    pub(crate) fn sampled_alloc(size: usize, mean: u64) -> SiteDelta {
        let (bytes, blocks) = contribution(size, mean);
        let (bytes, blocks) = (bytes as i64, blocks as i64);
        let variance = block_variance(size, mean) as i64;
        SiteDelta {
            live_bytes: bytes,
            live_blocks: blocks,
            total_bytes: bytes,
            total_blocks: blocks,
            reallocs: variance,
            realloc_copied_bytes: variance,
            ..SiteDelta::default()
        }
    }

    /// What freeing a sampled block of `size` bytes takes back from its site.
    pub(crate) fn sampled_free(size: usize, mean: u64) -> SiteDelta {
        let (bytes, blocks) = contribution(size, mean);
        SiteDelta {
            live_bytes: -(bytes as i64),
            live_blocks: -(blocks as i64),
            reallocs: -(block_variance(size, mean) as i64),
            ..SiteDelta::default()
        }
    }
}

/// A sampled record's variances of its live and total block estimates, in blocks²: sampled mode
/// counts no reallocs, so a record's realloc pair holds them (its two cache lines have no room for
/// more counters). Each sampled block adds its [`block_variance`] to both; its free takes it back
/// from the live one. The snapshot reads them from here (`snapshot::add_counts`).
pub(crate) fn block_variances(counts: &Counts) -> (u64, u64) {
    (counts.reallocs, counts.realloc_copied_bytes)
}

/// The most one block adds to a variance: the weight of a block sampled with a probability of
/// 2^-20 (a byte sampled every MiB), which keeps a site's sum of them far from overflowing.
const MAX_BLOCK_VARIANCE: f64 = (1u64 << 40) as f64;

/// A sampled block's share of the variance of its site's block estimate, in blocks²: a block
/// sampled with probability `p` stands for `1 / p` blocks, and Horvitz and Thompson's unbiased
/// estimate of the variance of such a sum adds `(1 - p) / p²` for each sampled term. A function of
/// the size and the mean alone, so that a free takes back exactly what the allocation added.
#[inline]
pub(crate) fn block_variance(size: usize, mean: u64) -> u64 {
    let p = -(-(size as f64) / mean as f64).exp_m1();
    if p <= 0.0 {
        return 0;
    }
    ((1.0 - p) / (p * p)).min(MAX_BLOCK_VARIANCE).round() as u64
}

/// In sampled mode, a site record counts blocks in units of `1 / BLOCK_UNIT` block: a sampled
/// block stands for `1 / p` blocks, a fraction. (Rounded to whole blocks, a weight of 1.58 counted
/// 2, and a site of 64 KiB strings sampled every 64 KiB read 27% too many blocks.) The snapshot and
/// measures divide them back ([`whole_blocks`]).
pub(crate) const BLOCK_UNIT: u64 = 1 << 16;

/// Whole blocks of a sampled record's count in [`BLOCK_UNIT`]s, rounded to the nearest.
pub(crate) fn blocks_of(units: u64) -> u64 {
    units.saturating_add(BLOCK_UNIT / 2) / BLOCK_UNIT
}

/// [`blocks_of`] of a live count, which may read below zero (wrapping) while the program runs.
pub(crate) fn blocks_of_wrapping(units: u64) -> u64 {
    if (units as i64) < 0 {
        blocks_of(units.wrapping_neg()).wrapping_neg()
    } else {
        blocks_of(units)
    }
}

/// A sampled record's figures (or a sum of them) in whole blocks.
pub(crate) fn whole_blocks(counts: Counts) -> Counts {
    counts.map_blocks(blocks_of_wrapping)
}

/// A sampled block's contribution to its site: (estimated bytes, estimated blocks in
/// [`BLOCK_UNIT`]s), a function of its size alone, so that its free takes back exactly what its
/// allocation added.
#[inline]
pub(crate) fn contribution(size: usize, mean: u64) -> (u64, u64) {
    let p = -(-(size as f64) / mean as f64).exp_m1(); // 1 - exp(-s/mean), accurate for small s
    if p <= 0.0 {
        return (size as u64, BLOCK_UNIT);
    }
    let weight = 1.0 / p;
    (
        (size as f64 * weight).round() as u64,
        ((weight * BLOCK_UNIT as f64).round() as u64).max(BLOCK_UNIT),
    )
}

/// The first state of a thread's generator, from the process's seed and the thread's index: never
/// zero (xorshift's fixed point), and far apart for neighbouring indexes and seeds (two rounds of a
/// 64-bit finalizer).
fn thread_rng_seed(process_seed: u64, thread: u32) -> u64 {
    let mut x = process_seed ^ (u64::from(thread) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2 {
        x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        x = (x ^ (x >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^= x >> 33;
    }
    if x == 0 { 0x9e37_79b9_7f4a_7c15 } else { x }
}

/// The bytes until the next sample: exponentially distributed with the given mean, from a
/// per-thread xorshift generator (never zero).
fn next_interval(rng: &mut u64, mean: u64) -> i64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    // A uniform value in (0, 1]: 53 random bits, plus one so it is never zero.
    let uniform = ((*rng >> 11) + 1) as f64 / (1u64 << 53) as f64;
    ((-uniform.ln() * mean as f64) as i64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block's share of the variance is `(1 - p) / p²`: about `(mean / s)²` for a block far
    /// smaller than the interval, none for one far larger (always sampled).
    #[test]
    fn block_variances_follow_the_sampling_probability() {
        let mean = 512 << 10;
        assert_eq!(block_variance(100 << 20, mean), 0);
        let p = 1.0 - (-(64.0_f64) / mean as f64).exp();
        assert_eq!(
            block_variance(64, mean),
            ((1.0 - p) / (p * p)).round() as u64
        );
        let small = block_variance(64, mean) as f64;
        assert!(
            (small / (mean as f64 / 64.0).powi(2) - 1.0).abs() < 0.01,
            "{small}"
        );
        // A byte sampled every 2^62 bytes: capped, so that sums of them cannot overflow.
        assert_eq!(block_variance(1, 1 << 62), 1 << 40);
        // A free takes back what the allocation added, to the unit.
        let alloc = SiteDelta::sampled_alloc(4000, mean);
        let free = SiteDelta::sampled_free(4000, mean);
        assert_eq!(alloc.reallocs, -free.reallocs);
        assert_eq!(alloc.realloc_copied_bytes, alloc.reallocs);
        assert_eq!(free.realloc_copied_bytes, 0);
    }

    #[test]
    fn contributions_are_unbiased_weights() {
        // A block far larger than the interval is always sampled: weight 1.
        assert_eq!(contribution(100 << 20, 512 << 10), (100 << 20, BLOCK_UNIT));
        // A small block stands for about mean / size blocks.
        let (bytes, units) = contribution(64, 512 << 10);
        assert!((8190..=8194).contains(&blocks_of(units)), "{units}");
        assert!((bytes as i64 - 64 * 8192).abs() < 64 * 2, "{bytes}");
    }

    /// A weight between two whole numbers keeps its fraction: 64 KiB blocks sampled every 64 KiB
    /// stand for 1.582 blocks each, and a thousand of them for 1,582.
    #[test]
    fn fractional_weights_add_up() {
        let units = contribution(65536, 65536).1;
        assert_eq!(blocks_of(units), 2);
        assert_eq!(blocks_of(units * 1000), 1582);
    }

    /// Epoch 0 leaves identities as they were; other epochs give each a mix of its own.
    #[test]
    fn epochs_mix_into_identities() {
        assert_eq!(epoch_mix(0), (0, 0));
        let mixes: Vec<(u64, u64)> = (1..=255).map(epoch_mix).collect();
        for (i, a) in mixes.iter().enumerate() {
            assert_ne!(a.0 | a.1, 0);
            assert!(mixes[i + 1..].iter().all(|b| b.0 != a.0 && b.1 != a.1));
        }
    }

    /// A sampler follows a change of mean: its first one only records it (the first interval is
    /// drawn at the first sample point); a later one draws a fresh interval with the new mean.
    #[test]
    fn samplers_follow_a_change_of_mean() {
        let mut sampler = SamplerState::default();
        change_mean(&mut sampler, 0, 1 << 16);
        assert_eq!(
            (sampler.mean, sampler.epoch, sampler.bytes_left),
            (1 << 16, 0, 0)
        );
        assert!(!take_sample(&mut sampler, &7, 1, 1 << 16) || sampler.bytes_left > 0);
        let n = 20_000;
        let mut sum = 0;
        for _ in 0..n {
            sampler.mean = 1 << 16;
            change_mean(&mut sampler, 0, 1 << 10);
            assert_eq!(sampler.mean, 1 << 10);
            sum += sampler.bytes_left;
        }
        let mean = sum as f64 / n as f64;
        assert!((mean - 1024.0).abs() < 1024.0 * 0.05, "{mean}");
    }

    #[test]
    fn intervals_have_the_requested_mean() {
        let mut rng = 0x9e37_79b9_7f4a_7c15;
        let n = 100_000;
        let sum: i64 = (0..n).map(|_| next_interval(&mut rng, 1 << 16)).sum();
        let mean = sum as f64 / n as f64;
        assert!((mean - 65536.0).abs() < 65536.0 * 0.02, "{mean}");
    }
}
