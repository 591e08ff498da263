//! The counters of a site, one type for every form they take: atomics in a record's halves
//! (`Counters<AtomicU64>`), the figures a reader copies out ([`Counts`]), and the change an
//! operation makes ([`SiteDelta`]).
//!
//! A new counter is a field here and in [`Counters::map`], [`Counters::zip_with`] and
//! [`Counters::zeroed`] (each a struct literal, so the compiler names any left out); then only the
//! places where counters genuinely differ: which ones an event writes (`SiteRecord::owner_add`,
//! `SiteRecord::remote_add`), which ones count blocks ([`Counts::map_blocks`]), and the snapshot
//! model's name for it.

use crate::state::atomic::{AtomicU64, Ordering, const_unless_loom};

/// A site's counters, in whatever form `T` gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Counters<T> {
    pub(crate) live_bytes: T,
    pub(crate) live_blocks: T,
    pub(crate) total_bytes: T,
    pub(crate) total_blocks: T,
    /// Live at the peak: when the process's live bytes last reached their maximum. Kept by the
    /// record itself (see `SiteRecord::owner_add`): never part of a [`SiteDelta`].
    pub(crate) at_peak_bytes: T,
    pub(crate) at_peak_blocks: T,
    /// Blocks freed by their allocating thread before its next allocation (exact mode only).
    pub(crate) temporary_blocks: T,
    /// Reallocs of the site's blocks, and the bytes they copied when the block moved.
    pub(crate) reallocs: T,
    pub(crate) realloc_copied_bytes: T,
}

/// Counters as a reader sees them: each half of a record read out, or their sum. Live figures are
/// wrapping sums of signed changes (see [`crate::state::record::non_negative`]).
pub(crate) type Counts = Counters<u64>;

/// The change an operation makes to a site's counters: the block's own figures, or, for a sampled
/// block, the estimates it stands for. Signed, as live figures go down; the at-peak pair stays 0.
pub(crate) type SiteDelta = Counters<i64>;

impl<T> Counters<T> {
    /// Each counter through `f`.
    #[inline(always)]
    pub(crate) fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> Counters<U> {
        Counters {
            live_bytes: f(&self.live_bytes),
            live_blocks: f(&self.live_blocks),
            total_bytes: f(&self.total_bytes),
            total_blocks: f(&self.total_blocks),
            at_peak_bytes: f(&self.at_peak_bytes),
            at_peak_blocks: f(&self.at_peak_blocks),
            temporary_blocks: f(&self.temporary_blocks),
            reallocs: f(&self.reallocs),
            realloc_copied_bytes: f(&self.realloc_copied_bytes),
        }
    }

    /// Each counter with its namesake in `other`, through `f`.
    #[inline(always)]
    pub(crate) fn zip_with<U, V>(
        &self,
        other: &Counters<U>,
        mut f: impl FnMut(&T, &U) -> V,
    ) -> Counters<V> {
        Counters {
            live_bytes: f(&self.live_bytes, &other.live_bytes),
            live_blocks: f(&self.live_blocks, &other.live_blocks),
            total_bytes: f(&self.total_bytes, &other.total_bytes),
            total_blocks: f(&self.total_blocks, &other.total_blocks),
            at_peak_bytes: f(&self.at_peak_bytes, &other.at_peak_bytes),
            at_peak_blocks: f(&self.at_peak_blocks, &other.at_peak_blocks),
            temporary_blocks: f(&self.temporary_blocks, &other.temporary_blocks),
            reallocs: f(&self.reallocs, &other.reallocs),
            realloc_copied_bytes: f(&self.realloc_copied_bytes, &other.realloc_copied_bytes),
        }
    }
}

impl Counters<AtomicU64> {
    const_unless_loom! {
        /// Zeroed counters, in a `const` (records are made in statics), where `map` cannot run.
        pub(crate) fn zeroed() -> Counters<AtomicU64> {
            Counters {
                live_bytes: AtomicU64::new(0),
                live_blocks: AtomicU64::new(0),
                total_bytes: AtomicU64::new(0),
                total_blocks: AtomicU64::new(0),
                at_peak_bytes: AtomicU64::new(0),
                at_peak_blocks: AtomicU64::new(0),
                temporary_blocks: AtomicU64::new(0),
                reallocs: AtomicU64::new(0),
                realloc_copied_bytes: AtomicU64::new(0),
            }
        }
    }

    /// Every counter, each loaded with `order`.
    #[inline]
    pub(crate) fn load(&self, order: Ordering) -> Counts {
        self.map(|counter| counter.load(order))
    }
}

impl Counts {
    /// The sum of two halves (or of two sites' figures), wrapping as the halves' live figures do.
    pub(crate) fn plus(self, other: Counts) -> Counts {
        self.zip_with(&other, |a, b| a.wrapping_add(*b))
    }

    /// These figures with the counters of blocks (not bytes nor events) through `f`: sampled
    /// records count blocks in fractions (`accounting::sampling`), which readers turn into whole
    /// ones.
    pub(crate) fn map_blocks(self, f: impl Fn(u64) -> u64) -> Counts {
        Counts {
            live_blocks: f(self.live_blocks),
            total_blocks: f(self.total_blocks),
            at_peak_blocks: f(self.at_peak_blocks),
            temporary_blocks: f(self.temporary_blocks),
            ..self
        }
    }

    /// The live figures as the at-peak ones too: a half not changed since the process's peak is
    /// as it was then.
    pub(crate) fn live_at_peak(self) -> Counts {
        Counts {
            at_peak_bytes: self.live_bytes,
            at_peak_blocks: self.live_blocks,
            ..self
        }
    }
}

impl SiteDelta {
    /// A change of `live_bytes` and `live_blocks`; with `allocated`, one more block of that size in
    /// the totals.
    #[inline(always)]
    pub(crate) fn exact(live_bytes: i64, live_blocks: i64, allocated: Option<usize>) -> SiteDelta {
        SiteDelta {
            live_bytes,
            live_blocks,
            total_bytes: allocated.map_or(0, |n| n as i64),
            total_blocks: i64::from(allocated.is_some()),
            ..SiteDelta::default()
        }
    }
}

// Loom's atomics work inside a model only.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn halves_add_up_counter_by_counter() {
        let atomics = Counters::<AtomicU64>::zeroed();
        atomics.live_bytes.store(10, Ordering::Relaxed);
        atomics.realloc_copied_bytes.store(7, Ordering::Relaxed);
        let own = atomics.load(Ordering::Relaxed);
        // A remote half that freed 4 of the owner's bytes: its live figure wraps below zero.
        let remote = Counts {
            live_bytes: 4u64.wrapping_neg(),
            reallocs: 1,
            ..Counts::default()
        };
        let sum = own.plus(remote);
        assert_eq!(
            sum,
            Counts {
                live_bytes: 6,
                reallocs: 1,
                realloc_copied_bytes: 7,
                ..Counts::default()
            }
        );
        assert_eq!(
            sum.live_at_peak(),
            Counts {
                at_peak_bytes: 6,
                ..sum
            }
        );
        let ones = Counts::default()
            .map(|_| 1)
            .map_blocks(|blocks| blocks * 10);
        assert_eq!(
            ones.map(|&n| n),
            Counts {
                live_bytes: 1,
                live_blocks: 10,
                total_bytes: 1,
                total_blocks: 10,
                at_peak_bytes: 1,
                at_peak_blocks: 10,
                temporary_blocks: 10,
                reallocs: 1,
                realloc_copied_bytes: 1,
            }
        );
    }
}
