//! The atomics of the state other threads read without a lock (records, their counters, the
//! sequence lock, the pool of exited threads' states): the standard library's, or loom's in the
//! loom models (`--cfg loom`, `tests/loom.rs`), so that the models check this code itself, every
//! interleaving and every reordering its orderings allow.
//!
//! Loom's atomics are made at run time (each is registered with the model as it is made): a
//! constructor that must stay `const` for the runtime's statics is written with
//! [`const_unless_loom!`].

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};

/// A function that is `const`, as the runtime's statics need, except under loom, whose atomics
/// have no `const` constructor (and which has no statics to fill).
macro_rules! const_unless_loom {
    ($(#[$attr:meta])* $vis:vis fn $($signature_and_body:tt)*) => {
        #[cfg(not(loom))]
        $(#[$attr])* $vis const fn $($signature_and_body)*
        #[cfg(loom)]
        $(#[$attr])* $vis fn $($signature_and_body)*
    };
}
pub(crate) use const_unless_loom;
