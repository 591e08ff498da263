//! Tells the runtime whether it is compiled without optimization (a plain debug build), so that it
//! can say once, at start-up, how to make itself fast again: each allocation then runs the
//! profiler's code at opt-level 0, several times slower than it needs to be.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tracealloc_unoptimized)");
    // The loom models of the lock-free state (`RUSTFLAGS="--cfg loom"`, tests/loom.rs, .ci/run).
    println!("cargo::rustc-check-cfg=cfg(loom)");
    println!("cargo::rerun-if-changed=build.rs");
    // Cargo gives build scripts the opt-level of the profile the package itself is built with,
    // `[profile.dev.package.tracealloc] opt-level = ...` overrides included.
    if std::env::var("OPT_LEVEL").is_ok_and(|level| level == "0") {
        println!("cargo::rustc-cfg=tracealloc_unoptimized");
    }
}
