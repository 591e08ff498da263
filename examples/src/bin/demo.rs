//! The demo: a small "request handler" that leaks one buffer per request into a cache that is never
//! trimmed, next to well-behaved code. Two snapshots show where the leak is.

use std::collections::HashMap;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

struct Server {
    cache: HashMap<u64, Vec<u8>>,
}

impl Server {
    /// Handles one request: parses, responds, and (the bug) caches a 4 KiB buffer per request id.
    #[inline(never)]
    fn handle(&mut self, id: u64) -> usize {
        let body = format!("request {id}: {}", "x".repeat(100));
        let words: Vec<&str> = body.split(' ').collect();
        let response = render(&words);
        let buffer = vec![0u8; 4096]; // leaks: the cache below is never trimmed
        self.cache.insert(id, buffer);
        response.len()
    }
}

#[inline(never)]
fn render(words: &[&str]) -> String {
    let mut out = String::new();
    for w in words {
        out.push_str(w);
        out.push('\n');
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut server = Server {
        cache: HashMap::new(),
    };
    for id in 0..100 {
        server.handle(id);
    }
    let before = tracealloc::snapshot();
    for id in 100..1100 {
        server.handle(id);
    }
    let after = tracealloc::snapshot();

    println!("Top 10 lines by live memory:");
    for stat in after.top(10, tracealloc::GroupBy::Line) {
        println!("  {stat}");
    }
    println!("\nTop 10 changes since the first snapshot:");
    for diff in after.diff(&before).top(10, tracealloc::GroupBy::Line) {
        println!("  {diff}");
    }
    before.save("tracealloc-before.json")?;
    after.save("tracealloc-after.json")?;
    let svg = std::path::Path::new("tracealloc-after.svg");
    tracealloc_report::write_atomically(svg, |out| {
        tracealloc_report::flamegraph(
            after.as_model(),
            None,
            &tracealloc_report::FlameOptions::default(),
            out,
        )
    })?;
    let stats = tracealloc::stats();
    println!(
        "\nLive {} in {} blocks; peak {}; profiler's own memory {}.",
        tracealloc::model::human_bytes(stats.live_bytes),
        tracealloc::model::human_count(stats.live_blocks),
        tracealloc::model::human_bytes(stats.peak_bytes),
        tracealloc::model::human_bytes(after.profiler().own_bytes),
    );
    println!(
        "Wrote tracealloc-before.json, tracealloc-after.json and tracealloc-after.svg (open it in a browser)."
    );
    println!(
        "Next: cargo install --path cli && tracealloc diff tracealloc-before.json tracealloc-after.json"
    );
    Ok(())
}
