//! The pool of exited threads' states: a thread that exits puts its state in, a thread that starts
//! takes one out and goes on with it, records included. Those records are written with plain
//! stores by one owner at a time (see [`crate::state::record`]): the exchange that puts a state
//! in (release) and the one that takes it out (acquire) order the exited owner's last changes
//! before the next owner's first, which goes on from the figures the first left. Checked by a loom
//! model (`state::record`'s).
//!
//! ```text
//!  slots: [ null | state | null | state | ... ]   put: null -> state   take: state -> null
//! ```

use crate::state::atomic::{AtomicPtr, Ordering};

/// At most `N` items, each taken out by one taker.
pub(crate) struct Pool<T, const N: usize> {
    slots: [AtomicPtr<T>; N],
}

impl<T, const N: usize> Pool<T, N> {
    /// An empty pool, in a `const` (the registry is a static).
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Pool<T, N> {
        Pool {
            slots: [const { AtomicPtr::new(std::ptr::null_mut()) }; N],
        }
    }

    /// An empty pool (loom's atomics are made at run time, see [`crate::state::atomic`]).
    #[cfg(loom)]
    pub(crate) fn new() -> Pool<T, N> {
        Pool {
            slots: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
        }
    }

    /// Puts `item` in a free slot; false when the pool is full (the item then stays out).
    ///
    /// # Safety
    /// `item` is never freed.
    pub(crate) unsafe fn put(&self, item: &T) -> bool {
        let item = std::ptr::from_ref(item).cast_mut();
        self.slots.iter().any(|slot| {
            slot.compare_exchange(
                std::ptr::null_mut(),
                item,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        })
    }

    /// Whether at least half the slots hold an item (a relaxed look: the pool may change
    /// meanwhile).
    pub(crate) fn at_least_half_full(&self) -> bool {
        let held = self
            .slots
            .iter()
            .filter(|slot| !slot.load(Ordering::Relaxed).is_null())
            .count();
        held >= N / 2
    }

    /// Takes the first item that `fits` out of the pool, for the caller alone.
    pub(crate) fn take(&self, fits: impl Fn(&T) -> bool) -> Option<&T> {
        for slot in &self.slots {
            let item = slot.load(Ordering::Acquire);
            // SAFETY: null, or an item put in with a release exchange (acquired here), which is
            // never freed (`put`'s contract).
            let Some(candidate) = (unsafe { item.as_ref() }) else {
                continue;
            };
            if fits(candidate)
                && slot
                    .compare_exchange(
                        item,
                        std::ptr::null_mut(),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                return Some(candidate);
            }
        }
        None
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Pool;

    #[test]
    fn each_item_is_taken_once_and_a_full_pool_refuses() {
        static ITEMS: [u32; 3] = [1, 2, 3];
        let pool: Pool<u32, 2> = Pool::new();
        // SAFETY: statics are never freed.
        unsafe {
            assert!(pool.put(&ITEMS[0]));
            assert!(pool.put(&ITEMS[1]));
            assert!(!pool.put(&ITEMS[2]), "two slots");
        }
        assert_eq!(pool.take(|&item| item == 2), Some(&2));
        assert_eq!(pool.take(|&item| item == 2), None, "taken already");
        assert_eq!(pool.take(|_| true), Some(&1));
        assert_eq!(pool.take(|_| true), None);
    }
}
