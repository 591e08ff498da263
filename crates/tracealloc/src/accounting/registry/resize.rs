//! A realloc that charges its block to another site: the stack that resized it (`ReallocCharge::
//! Resizer`). For the sites it is a free and an allocation, in one operation of the thread: the
//! block leaves its record and joins the resizing stack's, while the thread's and the process's
//! figures count one resize (one more block in the totals, none in the live ones, as dhat-rs).

use super::{Registry, Site};
use crate::accounting::measure;
use crate::capture::Captured;
use crate::state::counters::SiteDelta;
use crate::state::record::SiteRecord;
use crate::state::thread::ThreadState;

impl Registry {
    /// [`Registry::apply`] for a block that may change site: with `leaving` (its old record and
    /// what leaves it), the block's old record loses that in the same operation, before `delta`
    /// goes to `site`'s record.
    ///
    /// # Safety
    /// Called on the owner thread of `thread` only (one operation at a time per state).
    #[inline(always)]
    pub(crate) unsafe fn apply_moving(
        &self,
        thread: &ThreadState,
        leaving: Option<(&SiteRecord, SiteDelta)>,
        site: Site<'_>,
        delta: SiteDelta,
        live: (i64, i64),
        allocated: Option<u64>,
    ) -> *const SiteRecord {
        let Some((old_record, left)) = leaving else {
            // SAFETY: forwarded contract.
            return unsafe { self.apply(thread, site, delta, live, allocated) };
        };
        // SAFETY: (1) owner thread, per contract, with no other section open (one operation at a
        // time per state); (2) everything below writes inside the section.
        unsafe {
            let _section = thread.write_section();
            let record: *const SiteRecord = match site {
                Site::Untracked => std::ptr::null(),
                Site::Record(record) => record,
                Site::Captured(captured, identity, epoch) => {
                    thread.record_for(captured, identity, epoch, &self.mapped_bytes)
                }
            };
            thread.count(live, allocated);
            let raised = self.account_live(thread, live.0, allocated.is_some());
            let peak_gen = self.peak_mark.generation();
            for (target, change) in [(Some(old_record), &left), (record.as_ref(), &delta)] {
                let Some(target) = target else { continue };
                if target.owner == thread.id() {
                    target.owner_add(change, peak_gen, raised);
                } else {
                    target.remote_add(change, peak_gen, raised, &self.mapped_bytes);
                }
            }
            let measures = thread.measures();
            if measures.depth != 0 {
                let id = thread.id();
                measure::count(measures, id, Some(old_record), &left, None, None);
                measure::count(measures, id, record.as_ref(), &delta, allocated, None);
            }
            record
        }
    }

    /// Counts a realloc by `thread` of a block of `from` from `old` to `new` bytes, moved from
    /// `addresses.0` to `addresses.1`, charged to the stack that resized it (`captured`): the
    /// block leaves `from` (its bytes and its block) and is one more block of `new` bytes at the
    /// resizing stack's record, with the realloc and the bytes it copied (when the block moved).
    /// It stays the thread's latest block if it was (the same block, not another allocation).
    /// Returns the record for the block's header.
    ///
    /// # Safety
    /// Called on the owner thread of `thread` only.
    #[inline(always)]
    pub(crate) unsafe fn record_resize(
        &self,
        thread: &ThreadState,
        from: &SiteRecord,
        captured: &Captured,
        old: usize,
        new: usize,
        addresses: (usize, usize),
    ) -> *const SiteRecord {
        let identity = captured.identity();
        // SAFETY: forwarded contract.
        if unsafe { thread.is_record_of(from, identity) } {
            // Resized where it was sized last (a `Vec` growing where it is pushed to): it stays.
            // SAFETY: forwarded contract.
            unsafe { self.record_realloc(thread, from, old, new, addresses) };
            return from;
        }
        let leaving = SiteDelta::exact(-(old as i64), -1, None);
        let mut joining = SiteDelta::exact(new as i64, 1, Some(new));
        joining.reallocs = 1;
        if addresses.0 != addresses.1 {
            joining.realloc_copied_bytes = old.min(new) as i64;
        }
        let change = (new as i64 - old as i64, 0);
        // SAFETY: forwarded contract.
        unsafe {
            thread.move_last_block(addresses.0, addresses.1);
            self.apply_moving(
                thread,
                Some((from, leaving)),
                Site::Captured(captured, identity, 0),
                joining,
                change,
                Some(new as u64),
            )
        }
    }
}
