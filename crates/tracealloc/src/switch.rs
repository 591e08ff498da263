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
/// before keep their stacks. The example on [`stats()`](crate::stats) runs it, with the profiler
/// as the global allocator; here, a phase whose stacks are not wanted:
///
/// ```no_run
/// tracealloc::stop_capture();
/// let warm_up: Vec<u8> = vec![0u8; 1 << 20]; // counted, charged to no stack
/// tracealloc::start_capture();
/// # drop(warm_up);
/// ```
pub fn stop_capture() {
    crate::capture::set_capturing(false);
}

/// Whether stacks are being captured (on unless stopped, or started off with
/// `TRACEALLOC_CAPTURE_AT_START=0`). The example on [`stats()`](crate::stats) runs it.
///
/// ```no_run
/// if !tracealloc::capturing() {
///     eprintln!("started with TRACEALLOC_CAPTURE_AT_START=0: stacks from now on");
///     tracealloc::start_capture();
/// }
/// ```
pub fn capturing() -> bool {
    crate::capture::capturing()
}

/// Sets the mean bytes between samples of a program that runs in sampled mode: blocks allocated
/// from now on are sampled at `bytes` (each thread follows within 64 KiB of its own allocation),
/// and blocks sampled before keep the weight of the interval they were sampled at, so every site's
/// estimates stay unbiased. Sample coarsely by default, finer while you look into something.
///
/// Refused in exact mode (the blocks' layout is decided at start-up: start the program with
/// `TRACEALLOC_SAMPLE=<bytes>` or `Profiler::sampled`), before the profiler's first allocation,
/// outside `1..=2^62`, and past 256 distinct intervals in one run. The snapshot's
/// `capture.sampling_bytes` says the interval in use when it is taken, and `tracealloc info`
/// says when it changed.
///
/// ```no_run
/// # fn main() -> Result<(), &'static str> {
/// tracealloc::set_sampling_interval(4096)?; // finer: one sample per 4 KiB on average
/// assert_eq!(tracealloc::sampling_interval(), 4096);
/// # Ok(()) }
/// ```
pub fn set_sampling_interval(bytes: u64) -> Result<(), &'static str> {
    crate::accounting::sampling::set_interval(bytes)
}

/// The mean bytes between samples in use now (changed by [`set_sampling_interval`]); 0 in exact
/// mode.
pub fn sampling_interval() -> u64 {
    crate::accounting::sampling::current_mean(crate::process::sampling_mean())
}
