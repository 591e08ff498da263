//! A thread's table of its own records, keyed by stack identity: open addressing with linear
//! probing, each entry a record's address with 16 bits of its hash above it (the tag), so that a
//! lookup rarely reads the record of another stack. Only the owner thread reads or writes it; it
//! doubles when half full, and the old one's pages go back to the system.
//!
//! The lookup is `ThreadState::record_for`'s probe loop, on every event's path: written here as a
//! function that says where it ended (found, empty slot, full), it made the compiler lay the hot
//! path out differently, so it stays written out there, reading `slots` and `mask`.
//!
//! ```text
//!  identity (hash, check) ──hash's low bits──> slot ──> entry: tag (16 bits) | record address
//!                         ──hash's high bits─> tag      0: empty, else probe slot + 1, ...
//! ```

use std::sync::atomic::AtomicU64;

use crate::state::carve::{carve, give_back};
use crate::state::record::SiteRecord;

/// A new thread's table starts small (a short-lived thread costs about a page) and doubles as the
/// thread meets more distinct stacks.
const INITIAL_SLOTS: usize = 64;

/// Open-addressing table of tagged record pointers ([`entry_tag`]), keyed by stack hash.
// `repr(C)`, as the owner's state that holds it: its three words keep their order there.
#[repr(C)]
pub(crate) struct Table {
    /// `mask + 1` entries; read by the owner's lookup (`ThreadState::record_for`).
    pub(crate) slots: *mut usize,
    pub(crate) mask: usize,
    len: usize,
}

impl Table {
    /// A new, empty table of [`INITIAL_SLOTS`] slots; `None` when memory is exhausted.
    pub(crate) fn carve(mapped: &AtomicU64) -> Option<Table> {
        let table_bytes = INITIAL_SLOTS * std::mem::size_of::<*const SiteRecord>();
        let slots = carve(table_bytes, mapped).cast::<usize>();
        (!slots.is_null()).then_some(Table {
            slots,
            mask: INITIAL_SLOTS - 1,
            len: 0,
        })
    }

    /// Puts `record`, whose (mixed) hash is `hash`, in the table at `slot`, and doubles the table
    /// when it is half full.
    ///
    /// # Safety
    /// Called by the owner thread only, with `slot` the empty slot where the lookup of `record`'s
    /// identity ended (the table unchanged since), and `record` published, never freed.
    #[inline(always)]
    pub(crate) unsafe fn insert(
        &mut self,
        slot: usize,
        record: *const SiteRecord,
        hash: u64,
        mapped: &AtomicU64,
    ) {
        let (_, tag) = table_place(hash, self.mask);
        // SAFETY: slot <= mask and was found empty.
        unsafe { *self.slots.add(slot) = tagged(record, tag) };
        self.len += 1;
        if self.len * 2 > self.mask + 1 {
            // SAFETY: owner-only, as this function.
            unsafe { self.grow(mapped) };
        }
    }

    /// Doubles the owner's hash table. The old one's pages go back to the system (only the owner
    /// ever reads its table).
    ///
    /// # Safety
    /// Called by the owner thread of the table only.
    #[cold]
    unsafe fn grow(&mut self, mapped: &AtomicU64) {
        let old_slots = self.mask + 1;
        let new_slots = old_slots * 2;
        let word = std::mem::size_of::<usize>();
        let table = carve(new_slots * word, mapped).cast::<usize>();
        if table.is_null() {
            return; // stays at a higher load factor; lookups still terminate while any slot is empty
        }
        let mask = new_slots - 1;
        for i in 0..old_slots {
            // SAFETY: i < old_slots, within the old table.
            let entry = unsafe { *self.slots.add(i) };
            if entry == 0 {
                continue;
            }
            // SAFETY: entries point at published records.
            let hash = unsafe { (*((entry & !TAG_MASK) as *const SiteRecord)).hash };
            let (mut slot, _) = table_place(hash, mask);
            // SAFETY: slot <= mask, within the new table, which has empty slots left.
            unsafe {
                while *table.add(slot) != 0 {
                    slot = (slot + 1) & mask;
                }
                *table.add(slot) = entry;
            }
        }
        let old = self.slots;
        self.slots = table;
        self.mask = mask;
        // SAFETY: the old table was carved with `old_slots` words; only the owner read it, and it
        // now reads the new one.
        unsafe { give_back(old.cast(), old_slots * word, mapped) };
    }
}

/// Where a stack's identity goes in a table of `mask + 1` slots, and the tag its entry carries: the
/// low bits of its hash pick the slot, the high ones make the tag. The hash's bits are well mixed
/// already (see [`crate::capture::StackHash::finish`]; a key's mix is made the same way), so they
/// are used as they are.
#[inline(always)]
pub(crate) fn table_place(hash: u64, mask: usize) -> (usize, usize) {
    (hash as usize & mask, entry_tag(hash))
}

/// The bits of a table entry above every address carved for records (see [`crate::state::carve`]: its
/// regions lie below 2^48), which carry 16 bits of the stack's hash.
pub(crate) const TAG_MASK: usize = ((0xffff_u64) << 48) as usize;

/// The tag of a mixed stack hash (never 0, so an entry is never 0).
#[inline(always)]
pub(crate) fn entry_tag(mixed: u64) -> usize {
    (((mixed >> 48) | 0x8000) << 48) as usize & TAG_MASK
}

/// A table entry: the record's address with `tag` in the bits above it (carved memory lies below
/// 2^48: see [`crate::state::carve`]).
fn tagged(record: *const SiteRecord, tag: usize) -> usize {
    record as usize | tag
}
