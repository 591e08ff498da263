//! tracealloc's sampled mode against exact mode on real crates.
//!
//! `accuracy` (the driver) runs each workload once in exact mode (`TRACEALLOC_SAMPLE=0`), once
//! more to see how far exact mode itself moves between runs, and N times sampled
//! (`TRACEALLOC_SAMPLE=<mean>`, `TRACEALLOC_SEED=1..=N`), each run a process of its own (this same
//! binary, as `accuracy run <workload>`), then prints markdown tables: for each site by function
//! of at least 1 MiB in exact mode, the mean sampled/exact ratio, the share of runs within 3
//! standard errors (z = (estimate - exact) / sqrt(mean * exact)) and the largest |z|; for total
//! bytes, and for live bytes where exact live is at least 5 MiB.
//!
//! ```sh
//! cargo run --release --bin accuracy                       # every workload, 20 sampled runs
//! cargo run --release --bin accuracy -- --runs 40 --workloads markdown,serialize
//! cargo run --release --bin accuracy -- run serialize      # one workload, its JSON line
//! ```

mod driver;
mod workloads;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let result = if args.first().is_some_and(|a| a == "run") {
        match args.get(1).and_then(|a| a.to_str()) {
            Some(name) => workloads::run(name, &args[2..]),
            None => Err("usage: accuracy run <workload> [args]".to_owned()),
        }
    } else {
        driver::main(&args)
    };
    if let Err(e) = result {
        eprintln!("accuracy: {e}");
        std::process::exit(1);
    }
}
