//! What a running `measure` counts of each operation of its thread.
//!
//! A block belongs to a measure when its record does: records made on this thread while the
//! measure (or one nested in it) ran. Allocations and their bytes count exactly in every mode;
//! live bytes and the peak follow the site figures (estimates in sampled mode).

use crate::state::counters::SiteDelta;
use crate::state::measures::Measures;
use crate::state::record::{OwnerId, SiteRecord};

/// Counts one operation for every running measure: `allocated` bytes for an alloc or realloc,
/// `freed` bytes for a free; `record` is the block's record (none for a block left out by
/// sampling), `delta` what the operation changed there.
#[inline(always)]
pub(crate) fn count(
    measures: &mut Measures,
    owner: OwnerId,
    record: Option<&SiteRecord>,
    delta: &SiteDelta,
    allocated: Option<u64>,
    freed: Option<u64>,
) {
    // This thread's scope of the block, 0 when it is not this thread's or has none.
    let scope = match record {
        Some(r) if r.owner == owner => r.key().scope,
        _ => 0,
    };
    for level in measures.running() {
        let ours = scope >= level.scope;
        if let Some(bytes) = allocated {
            level.allocations += 1;
            level.bytes += bytes;
        }
        if ours {
            level.live_bytes += delta.live_bytes;
            level.peak_bytes = level.peak_bytes.max(level.live_bytes);
        } else if let (Some(bytes), Some(_)) = (freed, record) {
            level.freed_before_blocks += 1;
            level.freed_before_bytes += bytes;
        }
    }
}
