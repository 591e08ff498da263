//! Where each block keeps the address of its site record, so `dealloc` and `realloc` find it
//! without a lookup: a header in front for ordinary alignments, a trailer behind for large ones.
//!
//! ```text
//!  alignment <= 16: [ padding | record (8) ][ user bytes ... ]            pad = max(8, align)
//!                   ^ base                  ^ base + pad, returned to the caller
//!  alignment > 16:  [ user bytes ... | to a multiple of 8 | record (8) ]  pad = 0
//!                   ^ base, returned to the caller
//! ```
//! A header costs the alignment (8 or 16 bytes); a trailer at most 15 bytes, where a header would
//! cost a page for a page-aligned buffer ([`Outer`]). In exact mode every block has one, the
//! profiler's own included (their record address is null), so a block made under the reentrancy
//! guard and freed outside it is still read correctly. The caller's layout (the same at alloc,
//! realloc and dealloc) says which.
//!
//! In sampled mode, blocks aligned to at most 8 (nearly all) carry nothing unless they need a
//! record: a sampled block, a block of the profiler's own (so it is still read correctly wherever
//! it is freed), or one made on a thread without state. Which they are shows in the address itself
//! ([`Tagged`]); blocks aligned to more keep their header or trailer:
//!
//! ```text
//!  untagged:  [ user bytes ... ]                 inner (max(size, 16), 16): address = 0 mod 16
//!             ^ base, returned to the caller
//!  tagged:    [ record (8) ][ user bytes ... ]   inner (max(size + 8, 16), 16): address = 8 mod 16
//!             ^ base        ^ base + 8, returned to the caller
//! ```
//! So an unsampled block asks the inner allocator for what the program asked for (glibc rounds
//! sizes below 16 up to its smallest chunk anyway), and a `Vec` grows in place exactly as it would
//! without the profiler: a header moves requests like a 24-byte `String` into the next chunk size,
//! which doubled the moves of sampled W3's reallocs (84,519 against 40,831).

pub(crate) mod header;
pub(crate) mod tagged;
