//! The shared object `tracealloc run` preloads (`LD_PRELOAD`): tracealloc's runtime with its C
//! allocation layer ([`tracealloc::c_allocations!`]), which defines the process's `malloc` family.
//! Every allocation of the program, C and Rust alike, is then counted with its stack, and the exit
//! snapshot is written where `TRACEALLOC_OUT` says, as the library does.
//!
//! `tracealloc run` also writes this file into its cache and builds it there against the
//! published `tracealloc` crate (cli/src/preload.rs), so it may use only that crate's public API.

tracealloc::c_allocations!();

/// Sets the profiler up when the library is loaded, before the program's `main`, so that a
/// process that never allocates still writes its (empty) snapshot at exit.
extern "C" fn start() {
    tracealloc::c_layer::start();
}

#[used]
#[unsafe(link_section = ".init_array")]
static START: extern "C" fn() = start;
