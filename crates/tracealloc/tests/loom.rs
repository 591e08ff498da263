//! The loom models of the runtime's lock-free protocols, run on the runtime's own files: the
//! sequence lock (`state::seqlock`) and site records (`state::record`: the owner's changes, the
//! at-peak copy, the remote half, a retired thread state's records taken on by a new thread
//! through `state::pool`). Each model is beside the code it checks, in a `loom_model` module. See
//! `.ci/run`:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test --release -p tracealloc --test loom
//! ```
//!
//! Under loom the library itself is empty (loom's atomics have no `const` constructor for its
//! statics): this crate compiles the files the models need at their places in the runtime
//! (`crate::state::record`, ...), their atomics loom's (`state::atomic`). Two modules of the
//! layers below stand in for the real ones, which bring the whole capture and configuration
//! along: what the files name of them, and no model runs.
#![cfg(loom)]
// The files' other items serve the rest of the runtime, not compiled here.
#![allow(dead_code, unreachable_pub)]

#[path = "../src/sys.rs"]
mod sys;

mod config {
    /// The real limit: stack trees size their paths with it.
    pub(crate) const MAX_DEPTH: usize = 256;

    /// `sys::stack_bounds` asks; no model reads stack bounds.
    pub(crate) fn c_layer_in_use() -> bool {
        false
    }
}

mod capture {
    pub(crate) use crate::config::MAX_DEPTH;

    /// `RecordKey::identity_mix` names it; no model makes a record with a key.
    #[derive(Clone, Copy)]
    pub(crate) struct StackHash;

    impl StackHash {
        pub(crate) const EMPTY: StackHash = StackHash;

        pub(crate) fn add(self, _ret: usize) -> StackHash {
            self
        }

        pub(crate) fn finish(self, _depth: usize) -> (u64, u64) {
            unreachable!("no loom model hashes a stack")
        }
    }
}

// The runtime's own `state` files, at their places (`crate::state::record`, ...).
#[path = "../src/state"]
mod state {
    pub(crate) mod atomic;
    pub(crate) mod carve;
    pub(crate) mod counters;
    pub(crate) mod pool;
    pub(crate) mod record;
    pub(crate) mod seqlock;
    pub(crate) mod stack_tree;
}
