//! Lifetime stamps: the clock lifetimes mode reads at each allocation and free.

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
