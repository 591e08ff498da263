//! The runtime's layers point one way (see the list at the top of `src/lib.rs`): a module may use
//! modules of its own layer or of the layers listed before it, never those after it; and within a
//! layer, the files that are not a layer's root (`mod.rs`) use each other without cycles.
//!
//! Comments are not dependencies; test-only modules may reach anywhere. Paths between the runtime's
//! files are written `crate::layer::file`, which is what this reads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first.
const LAYERS: &[&[&str]] = &[
    &["sys", "guard", "config"],
    &["capture"],
    &["state"],
    &["accounting", "block"],
    &["snapshot"],
    &["process"],
    &["policy"],
    &["lib", "alloc", "measure", "labels", "allocator_check"],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` is in no layer: add it to LAYERS and lib.rs"))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code without comments and without its `#[cfg(test)]` modules.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let test_only =
            trimmed.starts_with("#[cfg(test)]") || trimmed.starts_with("#[cfg(all(test");
        if test_only
            && lines
                .peek()
                .is_some_and(|l| l.trim_start().starts_with("mod "))
        {
            // Skip to the end of the module: its closing brace at the same indentation.
            let indent = line.len() - trimmed.len();
            let close = format!("{}}}", " ".repeat(indent));
            for rest in lines.by_ref() {
                if rest == close {
                    break;
                }
            }
            continue;
        }
        let without_comment = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        code.push_str(without_comment);
        code.push('\n');
    }
    code
}

/// The `crate::a::b` paths named in `code`, as (a, Some(b)) when `a` is a directory module.
fn crate_paths(code: &str, dirs: &BTreeSet<String>) -> BTreeSet<(String, Option<String>)> {
    let mut paths = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let mut parts = rest.split("::").map(|p| {
            p.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        });
        let Some(first) = parts.next() else { continue };
        if first.is_empty() || first.starts_with(char::is_uppercase) {
            continue; // an item of lib.rs
        }
        let second = if dirs.contains(&first) {
            parts
                .next()
                .filter(|p| !p.is_empty() && p.starts_with(char::is_lowercase))
        } else {
            None
        };
        paths.insert((first, second));
    }
    paths
}

#[test]
fn dependencies_point_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let dirs: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            path.is_dir()
                .then(|| path.file_name().unwrap().to_string_lossy().into_owned())
        })
        .collect();

    let mut wrong_way = Vec::new();
    // Within a layer: file -> files of the same layer it uses (roots excluded).
    let mut siblings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let mut parts = relative.iter().map(|p| p.to_string_lossy().into_owned());
        let top = parts.next().unwrap();
        let module = top.trim_end_matches(".rs").to_owned();
        let inner = parts.next().map(|f| f.trim_end_matches(".rs").to_owned());
        let layer = layer_of(&module);
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for (used, used_inner) in crate_paths(&code, &dirs) {
            if LAYERS.iter().all(|l| !l.contains(&used.as_str())) {
                continue; // an item of lib.rs, such as `crate::stats`
            }
            if layer_of(&used) > layer {
                wrong_way.push(format!("{} uses crate::{used}", relative.display()));
            }
            if used == module
                && let (Some(from), Some(to)) = (&inner, &used_inner)
                && from != "mod"
                && from != to
            {
                siblings
                    .entry(format!("{module}/{from}"))
                    .or_default()
                    .insert(format!("{module}/{to}"));
            }
        }
    }
    assert!(
        wrong_way.is_empty(),
        "dependencies against the layers:\n{}",
        wrong_way.join("\n")
    );

    // No cycles among the files of a layer: depth-first search for a back edge.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|n| n == node) {
            panic!("module cycle: {} -> {node}", path[at..].join(" -> "));
        }
        if !done.insert(node.to_owned()) {
            return;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for node in siblings.keys() {
        visit(node, &siblings, &mut Vec::new(), &mut done);
    }
}
