//! The change one operation makes to a site record.

/// The change an operation makes to a site record: the block's own figures, or, for a sampled
/// block, the estimates it stands for.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SiteDelta {
    pub(crate) live_bytes: i64,
    pub(crate) live_blocks: i64,
    pub(crate) total_bytes: u64,
    pub(crate) total_blocks: u64,
}

impl SiteDelta {
    /// A change of `live_bytes` and `live_blocks`; with `allocated`, one more block of that size in
    /// the totals.
    #[inline(always)]
    pub(crate) fn exact(live_bytes: i64, live_blocks: i64, allocated: Option<usize>) -> SiteDelta {
        SiteDelta {
            live_bytes,
            live_blocks,
            total_bytes: allocated.map_or(0, |n| n as u64),
            total_blocks: u64::from(allocated.is_some()),
        }
    }
}
