//! What an allocation, a realloc and a free change: the block's header, its site's record, its
//! thread's counters and the whole-process figures.
//!
//! ```text
//!  stamp     the clock of lifetimes mode
//!  sampling  the Poisson sampler and its unbiased estimates
//!  measure   what a running `measure` counts of each operation
//!  timeline  memory over time, offered a point at each flush
//!  registry  the thread list, the flushed whole-process figures, and the three operations
//! ```

pub(crate) mod measure;
pub(crate) mod registry;
pub(crate) mod sampling;
pub(crate) mod stamp;
pub(crate) mod timeline;
