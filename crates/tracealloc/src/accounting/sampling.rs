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

use crate::state::record::SiteDelta;
use crate::state::record::{OwnerId, SiteRecord};
use crate::state::thread::SamplerState;

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
    /// What a sampled new block of `size` bytes adds to its site.
    pub(crate) fn sampled_alloc(size: usize, mean: u64) -> SiteDelta {
        let (bytes, blocks) = contribution(size, mean);
        SiteDelta {
            live_bytes: bytes as i64,
            live_blocks: blocks as i64,
            total_bytes: bytes,
            total_blocks: blocks,
            ..SiteDelta::default()
        }
    }

    /// What freeing a sampled block of `size` bytes takes back from its site.
    pub(crate) fn sampled_free(size: usize, mean: u64) -> SiteDelta {
        let (bytes, blocks) = contribution(size, mean);
        SiteDelta {
            live_bytes: -(bytes as i64),
            live_blocks: -(blocks as i64),
            ..SiteDelta::default()
        }
    }
}

/// In sampled mode, a site record counts blocks in units of `1 / BLOCK_UNIT` block: a sampled
/// block stands for `1 / p` blocks, a fraction. (Rounded to whole blocks, a weight of 1.58 counted
/// 2, and a site of 64 KiB strings sampled every 64 KiB read 27% too many blocks.) The snapshot and
/// measures divide them back ([`blocks_of`]).
pub(crate) const BLOCK_UNIT: u64 = 1 << 16;

/// Whole blocks of a sampled record's count in [`BLOCK_UNIT`]s, rounded to the nearest.
pub(crate) fn blocks_of(units: u64) -> u64 {
    units.saturating_add(BLOCK_UNIT / 2) / BLOCK_UNIT
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

    #[test]
    fn intervals_have_the_requested_mean() {
        let mut rng = 0x9e37_79b9_7f4a_7c15;
        let n = 100_000;
        let sum: i64 = (0..n).map(|_| next_interval(&mut rng, 1 << 16)).sum();
        let mean = sum as f64 / n as f64;
        assert!((mean - 65536.0).abs() < 65536.0 * 0.02, "{mean}");
    }
}
