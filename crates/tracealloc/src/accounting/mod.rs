//! What an allocation, a realloc and a free change: the block's header, its site's record, its
//! thread's counters and the whole-process figures.
//!
//! ```text
//!  stamp     the clock of lifetimes mode
//!  sampling  the Poisson sampler and its unbiased estimates
//!  measure   what a running `measure` counts of each operation
//!  timeline  memory over time, offered a point at each flush
//!  peak      the process's peak as allocating threads see it, and when it was
//!  registry  the flushed whole-process figures, the peak, and the three operations
//!  threads   the registry's list of thread states, and its pool of exited threads' states
//!  model_check  (tests) the registry against a trivially correct reference
//! ```

pub(crate) mod measure;
#[cfg(test)]
mod model_check;
pub(crate) mod peak;
pub(crate) mod registry;
pub(crate) mod sampling;
pub(crate) mod stamp;
pub(crate) mod threads;
pub(crate) mod timeline;
