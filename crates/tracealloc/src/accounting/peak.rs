//! The process's peak as allocating threads see it: the highest live bytes since start or the last
//! `reset_peak`, the generation that dates each site's figures at the peak, and when the live
//! bytes last left it (for the timeline).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::accounting::timeline::Timeline;

/// The process's peak as allocating threads see it, apart on its own cache line: read by every
/// event, written only when the live bytes reach a new maximum.
#[repr(align(64))]
pub(crate) struct PeakMark {
    /// The highest live bytes a thread has seen since start or the last `reset_peak`.
    pub(crate) bytes: AtomicU64,
    /// Bumped at each new maximum (`>=`, as dhat-rs: of equal peaks the latest counts). A record
    /// changed for the first time since keeps its figures as they were (see
    /// [`SiteRecord::owner_add`]); a record not changed since is as it was at the peak.
    generation: AtomicU64,
    /// Set at each new maximum; the first decrease after it is when the live bytes leave the
    /// peak, and reads the clock into `left_ms` (as dhat-rs checks for its peak on frees).
    armed: AtomicBool,
    /// When the live bytes last left their peak (ms since the first allocation).
    left_ms: AtomicU64,
}

impl PeakMark {
    pub(crate) const fn new() -> PeakMark {
        PeakMark {
            bytes: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            armed: AtomicBool::new(false),
            left_ms: AtomicU64::new(0),
        }
    }

    /// When the peak was (ms since the first allocation): when the live bytes left it, or now if
    /// they have not.
    pub(crate) fn time_ms(&self, timeline: &Timeline) -> u64 {
        if self.armed.load(Ordering::Relaxed) {
            timeline.elapsed_ms(crate::sys::coarse_now_ms())
        } else {
            self.left_ms.load(Ordering::Relaxed)
        }
    }

    /// Called on every decrease of the live bytes.
    #[inline(always)]
    pub(crate) fn on_decrease(&self, timeline: &Timeline) {
        if self.armed.load(Ordering::Relaxed) {
            self.leave(timeline);
        }
    }

    #[cold]
    #[inline(never)]
    fn leave(&self, timeline: &Timeline) {
        self.armed.store(false, Ordering::Relaxed);
        self.left_ms.store(
            timeline.elapsed_ms(crate::sys::coarse_now_ms()),
            Ordering::Relaxed,
        );
    }

    #[inline(always)]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Moves the peak to `live_bytes` when they reach it; returns whether they did.
    #[inline(always)]
    pub(crate) fn offer(&self, live_bytes: u64) -> bool {
        let peak = self.bytes.load(Ordering::Relaxed);
        let reached = live_bytes >= peak;
        if reached {
            self.raise(live_bytes, live_bytes != peak);
        }
        reached
    }

    /// A plain load and store, not a locked add: every allocation of a growing program raises the
    /// peak. Two threads raising at once may share a generation, within the bound on the peak
    /// with several threads allocating at once.
    #[inline(always)]
    pub(crate) fn raise(&self, live_bytes: u64, higher: bool) {
        self.bytes.store(live_bytes, Ordering::Relaxed);
        let generation = self.generation.load(Ordering::Relaxed);
        self.generation.store(generation + 1, Ordering::Relaxed);
        // The timeline's peak is when the highest value was first left: a program going back and
        // forth at its peak (alloc, free, alloc...) reads no clock for every free.
        if higher && !self.armed.load(Ordering::Relaxed) {
            self.armed.store(true, Ordering::Relaxed);
        }
    }
}
