//! Sampled mode: one block per `mean` bytes allocated, on average, is charged to its stack
//! ([`Sampled`]), and stands for the blocks and bytes it represents (`accounting::sampling`).
//!
//! Blocks aligned to more than 8 keep a header or a trailer and go through the policy's hooks
//! ([`Policy`]). Blocks aligned to at most 8, nearly all, have a layout that follows the sampling
//! decision (see `block::tagged::Tagged`): only blocks that need a record carry one. So the
//! decision comes first, before the inner allocator is called, and the accounting after it
//! succeeded. Both kinds are charged by the same functions ([`draw`], [`charge_sampled`],
//! [`count_untracked`]).
//!
//! ```text
//!  alloc:   left_out? ──yes──> inner alloc, untagged ──> count_short_path
//!              └─no──> NewBlock::plan ──> inner alloc, tagged or not ──> NewBlock::made
//!  realloc: tagged ──> the record in the word before it, through the policy's hooks
//!           untagged: left_out? ──yes──> inner realloc ──> count_short_path
//!              └─no──> UntaggedRealloc::plan ──> moved to a tagged block if sampled ──> done
//!  free:    tagged ──> the policy's hooks with its record
//!           untagged: free_left_out? ──yes──> counted
//!              └─no──> on_untagged_dealloc
//! ```
//! The usual event, a block left out by sampling on a thread that has its state, outside the
//! profiler, takes a short path: it only adds to its thread's figures, which allocates nothing, so
//! it runs without entering the reentrancy guard (it checks the guard is not held: inside the
//! profiler, a block is the profiler's own). It does not flush, look at the peak or at measures
//! either: it spends an allowance ([`SamplerState`]'s), of at most the flush threshold (64 KiB) of
//! bytes allocated, ending at the next sample point at the latest, and of as many bytes released
//! (freed, or given up by a resize). The allowances are limits on the thread's own counters, so
//! spending them stores nothing. The event that finds its allowance used up takes the full path:
//! it draws from the sampler, is counted with every check (its flush and peak candidate take in
//! what the short path added), and renews the allowance. So the whole-process totals and live
//! figures stay exact (the short path still opens the thread's write section for its adds, which
//! costs two increments, so readers see each event whole), and the peak is checked at least every
//! 64 KiB of allocation per thread: it may be up to that much below the true one. Every other
//! case is planned under the guard, held across the inner call (the inner allocator never calls
//! back into ours). A failed inner call drops the plan: nothing is counted (the sampler has moved
//! on, which only shifts where its next sample point falls), and the allowances, withdrawn by the
//! draw, are renewed by a later event once it is counted.

use crate::accounting::registry::Site;
use crate::accounting::sampling::{
    UNSAMPLED, epoch_mix, follow_current_mean, mean_of, take_sample,
};
use crate::block::tagged::Tagged;
use crate::guard::ReentrancyGuard;
use crate::policy::{Policy, entry_hooks};
use crate::process::{REGISTRY, capture_here, current_thread, existing_thread};
use crate::state::counters::SiteDelta;
use crate::state::record::SiteRecord;
use crate::state::thread::{SamplerState, ThreadState, allowance_left};

/// One block per `mean` bytes allocated, on average, with its stack.
///
/// `mean` is the start-up interval, the policy word (epoch 0 of `accounting::sampling`): the
/// interval can change at run time, so new samples are drawn and weighed with the thread
/// sampler's current mean (see `draw` and `charge_sampled`), and a block's weight is taken back
/// at its record's epoch's mean.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sampled {
    pub(crate) mean: u64,
}

impl Policy for Sampled {
    entry_hooks!();

    #[inline(always)]
    fn alloc(self, thread: &'static ThreadState, size: usize, _: usize) -> *const SiteRecord {
        let (live, allocated) = ((size as i64, 1), Some(size as u64));
        // SAFETY: `thread` is the calling thread's own state (`draw`'s contract).
        if !unsafe { draw(thread, size, self.mean) } {
            // SAFETY: as above.
            unsafe { count_untracked(thread, live, allocated) };
            return &UNSAMPLED;
        }
        charge_sampled(thread, None, size, live, self.mean)
    }

    /// Blocks left out by sampling carry the sampling sentinel: their events are counted on the
    /// thread's figures too.
    #[inline(always)]
    fn accepts(site: &SiteRecord) -> bool {
        !site.owner.is_none() || std::ptr::eq(site, &UNSAMPLED)
    }

    #[inline(always)]
    fn realloc(
        self,
        thread: &'static ThreadState,
        site: &'static SiteRecord,
        old: usize,
        new: usize,
        _: (usize, usize),
    ) -> *const SiteRecord {
        let live = (new as i64 - old as i64, 0);
        let allocated = Some(new as u64);
        // A realloc charges the block to the stack that resized it (`ReallocCharge::Resizer`): for
        // the sites, it is the free of the old block and the allocation of the new one, and the
        // new size is allocated bytes, where a sample point may fall. So every realloc decides
        // afresh, sampled block or not: a live block is sampled with the probability of its
        // current size, at the stack that gave it that size, and every figure stays an unbiased
        // estimate of exact mode's.
        // SAFETY: `thread` is the calling thread's own state (`draw`'s contract).
        let sampled = unsafe { draw(thread, new, self.mean) };
        let leaving = (!std::ptr::eq(site, &UNSAMPLED)).then_some((site, old));
        if sampled {
            return charge_sampled(thread, leaving, new, live, self.mean);
        }
        match leaving {
            Some((site, old)) => {
                let delta = SiteDelta::sampled_free(old, mean_of(site.epoch, self.mean));
                // SAFETY: as above.
                unsafe { REGISTRY.apply(thread, Site::Record(site), delta, live, allocated) };
            }
            // SAFETY: as above.
            None => unsafe { count_untracked(thread, live, allocated) },
        }
        &UNSAMPLED
    }

    #[inline(always)]
    fn dealloc(
        self,
        thread: &'static ThreadState,
        site: &'static SiteRecord,
        size: usize,
        _: usize,
    ) {
        let live = (-(size as i64), -1);
        if std::ptr::eq(site, &UNSAMPLED) {
            // SAFETY: `thread` is the calling thread's own state.
            unsafe { count_untracked(thread, live, None) };
        } else {
            let delta = SiteDelta::sampled_free(size, mean_of(site.epoch, self.mean));
            // SAFETY: as above.
            unsafe { REGISTRY.apply(thread, Site::Record(site), delta, live, None) };
        }
    }
}

/// Who a new block or a resize is counted for.
#[derive(Clone, Copy)]
enum Owner {
    /// The profiler, already running on this thread: its own block (tagged, null record).
    Profiler,
    /// A thread without state: counted without a site (tagged with the orphan record).
    NoState,
    /// Left out by sampling: counted in the whole-process figures only (untagged).
    Unsampled(&'static ThreadState),
    /// Sampled: charged to its stack (tagged with the record).
    Sampled(&'static ThreadState),
}

/// What [`left_out`] found when the event is not the usual one: `Some(thread)` when that thread's
/// allowance is used up, `None` when the thread is inside the profiler or has no state yet.
pub(crate) struct NotLeftOut(Option<&'static ThreadState>);

/// The calling thread's state, when it has one and is outside the profiler (where the short path
/// may count its events: inside it, a block is the profiler's own).
#[inline(always)]
fn outside_profiler() -> Option<&'static ThreadState> {
    if ReentrancyGuard::is_held() {
        return None;
    }
    existing_thread()
}

/// The calling thread's state when this event (`bytes` newly allocated) is the usual one: outside
/// the profiler, on a thread that has its state, within its allocation allowance (which counting
/// it takes `bytes` from). Count it with [`count_short_path`] once the inner call succeeded.
#[cfg_attr(debug_assertions, inline(never))]
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn left_out(bytes: usize) -> Result<&'static ThreadState, NotLeftOut> {
    let Some(thread) = outside_profiler() else {
        return Err(NotLeftOut(None));
    };
    // SAFETY: `thread` is the calling thread's own state; the sampler's borrow ends here.
    let limit = unsafe { thread.sampler() }.alloc_limit;
    if allowance_left(limit, thread.allocated_bytes()) <= bytes as i64 {
        return Err(NotLeftOut(Some(thread)));
    }
    Ok(thread)
}

/// Counts a usual event (see [`left_out`]) in its thread's figures: `live` (bytes, blocks) and, for
/// an alloc or a realloc, the `allocated` bytes.
///
/// # Safety
/// `thread` is the calling thread's own state. (The reentrancy guard is not needed: nothing here
/// allocates or frees, so no other operation of this thread can start inside this one.)
#[cfg_attr(debug_assertions, inline(never))]
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) unsafe fn count_short_path(
    thread: &ThreadState,
    live: (i64, i64),
    allocated: Option<u64>,
) {
    // SAFETY: the owner thread (forwarded contract), outside any write section: one operation at a
    // time, and this one opens none.
    unsafe { thread.add_short_path(live, allocated) };
}

/// Counts an event of a block that carries no record (left out by sampling) in its thread's
/// figures with every check (write section, flush, peak candidate): `live` (bytes, blocks) and,
/// for an alloc or a realloc, the `allocated` bytes.
///
/// # Safety
/// `thread` is the calling thread's own state. (The reentrancy guard is not needed: nothing here
/// allocates or frees, so no other operation of this thread can start inside this one.)
pub(crate) unsafe fn count_untracked(
    thread: &ThreadState,
    live: (i64, i64),
    allocated: Option<u64>,
) {
    // SAFETY: the owner thread (forwarded contract), one operation at a time.
    unsafe {
        REGISTRY.apply(
            thread,
            Site::Untracked,
            SiteDelta::default(),
            live,
            allocated,
        )
    };
}

/// Counts `bytes` newly allocated against `thread`'s sampling interval, once its allowances are
/// taken back (what the short path left of them is still ahead of the sample point) and it follows
/// a change of the interval (`startup`: the policy's mean, epoch 0); true when a sample point falls
/// in them.
///
/// # Safety
/// `thread` is the calling thread's own state.
pub(crate) unsafe fn draw(thread: &ThreadState, bytes: usize, startup: u64) -> bool {
    // SAFETY: the calling thread's own state (forwarded contract); each borrow ends with its call.
    unsafe {
        thread.withdraw_allowances();
        let sampler = thread.sampler();
        follow_current_mean(sampler, startup);
        let mean = sampler.mean;
        take_sample(sampler, &thread.index, bytes, mean)
    }
}

/// Gives `thread` new allowances (see the module docs), unless a measure runs on it (a measure
/// counts every event).
///
/// # Safety
/// `thread` is the calling thread's own state.
unsafe fn renew_allowances(thread: &ThreadState, alloc: bool) {
    // SAFETY: the calling thread's own state; each borrow ends before the next.
    let measuring = unsafe { thread.measures() }.depth != 0;
    if measuring {
        return;
    }
    let limit = REGISTRY.flush_threshold();
    let (allocated, released) = (thread.allocated_bytes(), thread.released_bytes());
    // SAFETY: as above.
    let sampler: &mut SamplerState = unsafe { thread.sampler() };
    sampler.free_limit = released.wrapping_add(limit as u64);
    // Before the first draw (`rng` 0) the sampler has no interval to take from.
    if alloc && sampler.rng != 0 {
        let allowance = sampler.bytes_left.min(limit).max(0);
        sampler.bytes_left -= allowance;
        sampler.alloc_limit = allocated.wrapping_add(allowance as u64);
    }
}

/// Which of [`Owner`]'s cases an event that is not the usual one falls in (`bytes` newly
/// allocated), with the guard that covers it (none when the profiler was already running).
#[inline(always)]
fn decide(found: NotLeftOut, bytes: usize, mean: u64) -> (Option<ReentrancyGuard>, Owner) {
    let Some(guard) = ReentrancyGuard::enter() else {
        return (None, Owner::Profiler);
    };
    let owner = match found.0.or_else(current_thread) {
        None => Owner::NoState,
        Some(thread) => {
            // SAFETY: `thread` is the calling thread's own state. (Its allowances are renewed once
            // the event is counted, as the limits they are on its counters must not include the
            // event's own bytes: see `NewBlock::made`.)
            let sampled = unsafe { draw(thread, bytes, mean) };
            if sampled {
                Owner::Sampled(thread)
            } else {
                Owner::Unsampled(thread)
            }
        }
    };
    (Some(guard), owner)
}

/// A new block's plan: whether it is tagged, and how it is counted once made.
pub(crate) struct NewBlock {
    _guard: Option<ReentrancyGuard>,
    owner: Owner,
    mean: u64,
}

impl NewBlock {
    /// The plan for a new block of `size` bytes (`mean`: the start-up interval, see [`Sampled`]),
    /// that [`left_out`] did not find usual.
    #[inline(never)]
    pub(crate) fn plan(found: NotLeftOut, size: usize, mean: u64) -> NewBlock {
        let (_guard, owner) = decide(found, size, mean);
        NewBlock {
            _guard,
            owner,
            mean,
        }
    }

    /// Whether the block carries a record (made with `Tagged::inner(size, true)`).
    #[inline(always)]
    pub(crate) fn tagged(&self) -> bool {
        !matches!(self.owner, Owner::Unsampled(_))
    }

    /// Counts the block, made as planned, and writes its record when it is tagged.
    ///
    /// # Safety
    /// `user` is the caller's address of a live block of `size` bytes that [`Tagged`] made with
    /// [`Self::tagged`]'s answer.
    #[inline(never)]
    pub(crate) unsafe fn made(self, user: *mut u8, size: usize) {
        let record: *const SiteRecord = match self.owner {
            Owner::Unsampled(thread) => {
                // SAFETY: `thread` is the calling thread's own state.
                unsafe {
                    count_untracked(thread, (size as i64, 1), Some(size as u64));
                    renew_allowances(thread, true);
                }
                return;
            }
            Owner::Profiler => {
                REGISTRY.record_own(size as i64);
                std::ptr::null()
            }
            Owner::NoState => REGISTRY.record_orphan_alloc(size),
            Owner::Sampled(thread) => {
                let record = charge_sampled(thread, None, size, (size as i64, 1), self.mean);
                // SAFETY: `thread` is the calling thread's own state.
                unsafe { renew_allowances(thread, true) };
                record
            }
        };
        // SAFETY: the block is tagged (every case but `Unsampled`), live, made by `Tagged`.
        unsafe { Tagged::write(user, record) };
    }
}

/// Charges a block that sampling picked to the calling thread's stack: a new one of `size` bytes
/// (`live` is `(size, 1)`), or one resized to `size` bytes (`live` is the change in bytes and no
/// block), which leaves its old site first when it had one (`leaving`: its record and its old
/// size, taken back at that record's mean; `startup`: the start-up interval). Returns its record,
/// one of the sampler's current epoch.
#[cold]
#[inline(never)]
fn charge_sampled(
    thread: &ThreadState,
    leaving: Option<(&SiteRecord, usize)>,
    size: usize,
    live: (i64, i64),
    startup: u64,
) -> *const SiteRecord {
    let captured = capture_here(thread);
    let leaving = leaving.map(|(record, old)| {
        let delta = SiteDelta::sampled_free(old, mean_of(record.epoch, startup));
        (record, delta)
    });
    // The block was sampled at the mean of the interval just drawn from (`draw` brought the
    // sampler to the current epoch before counting it): its weight, and a record of that epoch.
    // SAFETY: `thread` is the calling thread's own state; the borrow ends here.
    let sampler: &SamplerState = unsafe { thread.sampler() };
    let (mean, epoch) = (sampler.mean, sampler.epoch);
    let (hash, check) = captured.identity();
    let mix = epoch_mix(epoch);
    let site = Site::Captured(&captured, (hash ^ mix.0, check ^ mix.1), epoch);
    // SAFETY: `thread` is the calling thread's own state.
    unsafe {
        REGISTRY.apply_moving(
            thread,
            leaving,
            site,
            SiteDelta::sampled_alloc(size, mean),
            live,
            Some(size as u64),
        )
    }
}

/// The plan for resizing an untagged block: it stays untagged, or sampling picked its new size
/// and it moves to a tagged block.
pub(crate) struct UntaggedRealloc {
    _guard: Option<ReentrancyGuard>,
    owner: Owner,
    mean: u64,
}

impl UntaggedRealloc {
    /// The plan for resizing an untagged block to `new` bytes (the new size is allocated bytes,
    /// so a sample point may fall in it; `mean`: the start-up interval, see [`Sampled`]), when
    /// [`left_out`] did not find the resize usual.
    #[inline(never)]
    pub(crate) fn plan(found: NotLeftOut, new: usize, mean: u64) -> UntaggedRealloc {
        let (_guard, owner) = decide(found, new, mean);
        UntaggedRealloc {
            _guard,
            owner,
            mean,
        }
    }

    /// Whether the block must move to a tagged block (sampling picked it).
    #[inline(always)]
    pub(crate) fn to_tagged(&self) -> bool {
        matches!(self.owner, Owner::Sampled(_))
    }

    /// Counts the resize from `old` to `new` bytes, done as planned: `user` is the block now.
    ///
    /// # Safety
    /// `user` is the caller's address of a live block of `new` bytes that [`Tagged`] made, tagged
    /// when [`Self::to_tagged`] said so.
    #[inline(never)]
    pub(crate) unsafe fn done(self, user: *mut u8, old: usize, new: usize) {
        let live = new as i64 - old as i64;
        match self.owner {
            Owner::Unsampled(thread) => {
                // SAFETY: `thread` is the calling thread's own state.
                unsafe {
                    count_untracked(thread, (live, 0), Some(new as u64));
                    renew_allowances(thread, true);
                }
            }
            // A program's block resized inside the profiler, or on a thread without state: as
            // `hook_realloc` counts an unsampled block's resize there.
            Owner::Profiler | Owner::NoState => {
                REGISTRY.record_orphan_change(&UNSAMPLED, old, new, false);
            }
            Owner::Sampled(thread) => {
                let record = charge_sampled(thread, None, new, (live, 0), self.mean);
                // SAFETY: (1) sampled, so the block was moved to a tagged one (see `to_tagged`);
                // (2) `thread` is the calling thread's own state.
                unsafe {
                    Tagged::write(user, record);
                    renew_allowances(thread, true);
                }
            }
        }
    }
}

/// Counts the free of an untagged block of `size` bytes on the short path when it is the usual
/// one (outside the profiler, on a thread that has its state, within its free allowance); false
/// when it is not, and nothing was counted: then [`on_untagged_dealloc`] counts it.
#[cfg_attr(debug_assertions, inline(never))]
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn free_left_out(size: usize) -> bool {
    let Some(thread) = outside_profiler() else {
        return false;
    };
    // SAFETY: `thread` is the calling thread's own state; the sampler's borrow ends here.
    let limit = unsafe { thread.sampler() }.free_limit;
    if allowance_left(limit, thread.released_bytes()) <= size as i64 {
        return false;
    }
    // SAFETY: `thread` is the calling thread's own state.
    unsafe { count_short_path(thread, (-(size as i64), -1), None) };
    true
}

/// Counts the free of an untagged block of `size` bytes that [`free_left_out`] did not count:
/// past the free allowance (counted with every check, and the allowance renewed), inside the
/// profiler, or on a thread without state yet.
#[cold]
#[inline(never)]
pub(crate) fn on_untagged_dealloc(size: usize) {
    let live = (-(size as i64), -1);
    if let Some(_guard) = ReentrancyGuard::enter()
        && let Some(thread) = current_thread()
    {
        // SAFETY: `thread` is the calling thread's own state, under the guard.
        unsafe {
            count_untracked(thread, live, None);
            renew_allowances(thread, false);
        }
        return;
    }
    // Inside the profiler or without state: as `hook_dealloc` counts an unsampled block's free.
    REGISTRY.record_orphan_change(&UNSAMPLED, size, 0, true);
}
