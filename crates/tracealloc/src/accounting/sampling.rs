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

/// A sampled block's contribution to its site: (estimated bytes, estimated blocks).
#[inline]
pub(crate) fn contribution(size: usize, mean: u64) -> (u64, u64) {
    let p = -(-(size as f64) / mean as f64).exp_m1(); // 1 - exp(-s/mean), accurate for small s
    if p <= 0.0 {
        return (size as u64, 1);
    }
    let weight = 1.0 / p;
    (
        (size as f64 * weight).round() as u64,
        weight.round().max(1.0) as u64,
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
        assert_eq!(contribution(100 << 20, 512 << 10), (100 << 20, 1));
        // A small block stands for about mean / size blocks.
        let (bytes, blocks) = contribution(64, 512 << 10);
        assert!((8190..=8194).contains(&blocks), "{blocks}");
        assert!((bytes as i64 - 64 * 8192).abs() < 64 * 2, "{bytes}");
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
