//! The per-thread sequence lock: one writer, the thread that owns the state, and any number of
//! readers (snapshots, `stats`) that never block it and never take a torn view for a consistent
//! one.
//!
//! ```text
//!  writer: seq += 1 (odd) ─ fence(Release) ─ relaxed writes ─ seq += 1 (even, Release)
//!  reader: s1 = seq (Acquire) ─ relaxed reads ─ fence(Acquire) ─ s2 = seq; consistent iff s1 == s2, even
//! ```
//!
//! The protected data are atomics written and read with `Relaxed`; the fences order them against
//! the sequence number (the seqlock of Boehm, "Can seqlocks get along with programming language
//! memory models?"). Checked by a loom model (`--cfg loom`, see the tests below and `.ci/run`).

use crate::state::atomic::{AtomicU64, Ordering, fence};

pub(crate) struct SeqLock {
    seq: AtomicU64,
}

/// An open update (see [`SeqLock::write_section`]); dropping it ends the update.
pub(crate) struct WriteSection<'l> {
    lock: &'l SeqLock,
}

impl SeqLock {
    pub(crate) fn new() -> SeqLock {
        SeqLock {
            seq: AtomicU64::new(0),
        }
    }

    /// Opens an update: readers retry until it is dropped.
    ///
    /// # Safety
    /// Only one thread (the owner) ever opens sections of this lock, and never one inside another.
    #[inline(always)]
    pub(crate) unsafe fn write_section(&self) -> WriteSection<'_> {
        let seq = self.seq.load(Ordering::Relaxed);
        check_parity(seq, 0, "a write section opened inside another");
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        WriteSection { lock: self }
    }

    /// One read attempt: `Ok` when `read` saw no update, else `Err` with what it saw (torn).
    #[inline(always)]
    pub(crate) fn try_read<T>(&self, read: impl FnOnce() -> T) -> Result<T, T> {
        let before = self.seq.load(Ordering::Acquire);
        let value = read();
        fence(Ordering::Acquire);
        let after = self.seq.load(Ordering::Relaxed);
        if before == after && before.is_multiple_of(2) {
            Ok(value)
        } else {
            Err(value)
        }
    }

    /// Closes an update whose writer no longer exists (the other threads of a forked parent), so
    /// that readers do not wait for it.
    pub(crate) fn abandon(&self) {
        let seq = self.seq.load(Ordering::Relaxed);
        if seq % 2 == 1 {
            self.seq.store(seq.wrapping_add(1), Ordering::Release);
        }
    }
}

impl Drop for WriteSection<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        let seq = self.lock.seq.load(Ordering::Relaxed);
        check_parity(seq, 1, "a write section ended twice");
        self.lock.seq.store(seq.wrapping_add(1), Ordering::Release);
    }
}

/// In debug builds, checks that the sequence number has the parity of an open (1) or closed (0)
/// section, and otherwise stops the process with a message: the allocator must not panic (a panic
/// allocates), and a broken section would let readers take torn figures for consistent ones.
#[inline(always)]
fn check_parity(seq: u64, expected: u64, what: &str) {
    if cfg!(debug_assertions) && seq % 2 != expected {
        crate::sys::write_stderr(b"tracealloc: internal error: ");
        crate::sys::write_stderr(what.as_bytes());
        crate::sys::write_stderr(b"\n");
        std::process::abort();
    }
}

/// The loom model of the lock alone: a writer updates two counters that must always be seen equal,
/// in two sections; a reader that gets `Ok` must see them equal, whatever the interleaving and
/// memory reordering. The records it guards have their own models (`state::record`).
#[cfg(all(test, loom))]
mod loom_model {
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicU64, Ordering};

    use super::SeqLock;

    struct Guarded {
        lock: SeqLock,
        a: AtomicU64,
        b: AtomicU64,
    }

    #[test]
    fn a_consistent_read_is_never_torn() {
        loom::model(|| {
            let shared = Arc::new(Guarded {
                lock: SeqLock::new(),
                a: AtomicU64::new(0),
                b: AtomicU64::new(0),
            });
            let writer = {
                let shared = shared.clone();
                loom::thread::spawn(move || {
                    for value in 1..=2 {
                        // SAFETY: this thread is the lock's only writer, one section at a time.
                        let _section = unsafe { shared.lock.write_section() };
                        shared.a.store(value, Ordering::Relaxed);
                        shared.b.store(value, Ordering::Relaxed);
                    }
                })
            };
            let read = shared.lock.try_read(|| {
                (
                    shared.a.load(Ordering::Relaxed),
                    shared.b.load(Ordering::Relaxed),
                )
            });
            if let Ok((a, b)) = read {
                assert_eq!(a, b, "a consistent read saw a half-done update");
            }
            writer.join().unwrap();
            assert_eq!(
                shared.lock.try_read(|| shared.a.load(Ordering::Relaxed)),
                Ok(2)
            );
        });
    }
}
