//! Switching stack capture on and off while the program runs.
//!
//! Off, allocations are still counted (the totals, the peak and the timeline stay exact), and each
//! thread's are charged to one site, `[allocated while capture was off]`, found without walking
//! the stack. So a service can run with capture off at little cost and turn it on when something
//! looks wrong: from code, from the control socket (`tracealloc live`, `tracealloc snapshot`), or
//! at start-up with `TRACEALLOC_CAPTURE_AT_START=0`.

/// Starts capturing stacks: blocks allocated from now on are charged to their stacks.
///
/// ```
/// tracealloc::stop_capture();
/// assert!(!tracealloc::capturing());
/// tracealloc::start_capture();
/// assert!(tracealloc::capturing());
/// ```
pub fn start_capture() {
    crate::capture::set_capturing(true);
}

/// Stops capturing stacks: blocks allocated from now on are counted, and charged to each thread's
/// `[allocated while capture was off]` site ([`crate::model::CAPTURE_OFF_FRAME`]). Blocks charged
/// before keep their stacks.
pub fn stop_capture() {
    crate::capture::set_capturing(false);
}

/// Whether stacks are being captured (on unless stopped, or started off with
/// `TRACEALLOC_CAPTURE_AT_START=0`).
pub fn capturing() -> bool {
    crate::capture::capturing()
}
