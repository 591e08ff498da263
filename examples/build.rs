//! Generates the code of the `snapshot_cost` example: 1,000 functions with 10 allocating call sites
//! each, so a snapshot has 10,000 distinct return addresses to symbolize.

use std::fmt::Write;

fn main() {
    let mut code = String::new();
    for f in 0..1000 {
        writeln!(
            code,
            "#[inline(never)]\npub(crate) fn site_{f}(which: u32, out: &mut Vec<Box<[u8]>>) {{"
        )
        .unwrap();
        writeln!(code, "    match which {{").unwrap();
        for s in 0..10 {
            writeln!(code, "        {s} => out.push(leaf({})),", f * 10 + s).unwrap();
        }
        writeln!(code, "        _ => {{}}\n    }}\n}}").unwrap();
    }
    writeln!(
        code,
        "pub(crate) type Site = fn(u32, &mut Vec<Box<[u8]>>);\npub(crate) static SITES: [Site; 1000] = ["
    )
    .unwrap();
    for f in 0..1000 {
        write!(code, "site_{f}, ").unwrap();
    }
    writeln!(code, "];").unwrap();
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("sites.rs");
    std::fs::write(out, code).unwrap();
    println!("cargo::rerun-if-changed=build.rs");
}
