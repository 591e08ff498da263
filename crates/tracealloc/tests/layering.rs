//! The runtime's layers point one way (see the list at the top of `src/lib.rs`): a module may use
//! modules of its own layer or of the layers listed before it, never those after it; and within a
//! layer, the files that are not a layer's root (`mod.rs`) use each other without cycles.
//!
//! Comments are not dependencies; test-only modules may reach anywhere. Paths between the runtime's
//! files are written `crate::layer::file`, which is what this reads. A path whose first segment is
//! not one of the modules `lib.rs` declares (`crate::Profiler`, `crate::stats`) names an item of
//! `lib.rs`, which is in the top layer.

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
    &[
        "lib",
        "alloc",
        "c_layer",
        "measure",
        "labels",
        "allocator_check",
        "switch",
    ],
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

/// The file's code without comments and without its `#[cfg(test)]` modules, and the names of the
/// test-only modules it declares in files of their own (`#[cfg(test)] mod name;`).
fn code_of(text: &str) -> (String, Vec<String>) {
    let mut code = String::new();
    let mut test_files = Vec::new();
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
            let declaration = lines.next().unwrap().trim();
            if let Some(name) = declaration
                .strip_prefix("mod ")
                .and_then(|d| d.strip_suffix(';'))
            {
                test_files.push(name.trim().to_owned());
                continue;
            }
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
    (code, test_files)
}

/// The modules `lib.rs` declares (`mod name;`, whatever its visibility and attributes).
fn modules_of_lib(lib: &str) -> BTreeSet<String> {
    lib.lines()
        .filter_map(|line| {
            let mut line = line.trim();
            if let Some(rest) = line.strip_prefix("pub") {
                // `pub`, `pub(crate)`...
                line = match rest.strip_prefix('(') {
                    Some(restricted) => restricted.split_once(')')?.1,
                    None => rest,
                };
            }
            let name = line
                .trim_start()
                .strip_prefix("mod ")?
                .strip_suffix(';')?
                .trim();
            Some(name.to_owned())
        })
        .collect()
}

/// A `crate::` path of a file, as the layering sees it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Used {
    /// The module it goes into: a module of `lib.rs`, or `lib` for an item of `lib.rs`.
    module: String,
    /// The file of that module, when the module is a directory and the path names one.
    file: Option<String>,
    /// The path as written, for the message.
    path: String,
}

/// The `crate::` paths named in `code` (`$crate::` too), a group (`crate::{a::b, C}`) as each of its
/// paths. `modules` are `lib.rs`'s, `dirs` those of them that are directories.
fn crate_paths(code: &str, modules: &BTreeSet<String>, dirs: &BTreeSet<String>) -> BTreeSet<Used> {
    let mut paths = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            continue; // `other_crate::`
        }
        let mut segments = Vec::new();
        expand(
            &code[at + "crate::".len()..],
            &mut Vec::new(),
            &mut segments,
        );
        for path in segments {
            let first = &path[0];
            let used = if modules.contains(first) {
                let file = path
                    .get(1)
                    .filter(|_| dirs.contains(first))
                    .filter(|p| *p != "self" && p.starts_with(char::is_lowercase))
                    .cloned();
                Used {
                    module: first.clone(),
                    file,
                    path: format!("crate::{}", path.join("::")),
                }
            } else {
                Used {
                    module: "lib".to_owned(), // an item of lib.rs, such as `crate::stats`
                    file: None,
                    path: format!("crate::{first} (an item of lib.rs)"),
                }
            };
            paths.insert(used);
        }
    }
    paths
}

/// Adds to `out` the paths that the text after `prefix::` begins with, each as its segments: one
/// for `a::b::C`, one per member for a group `{a::b, c::{d, e}}`.
fn expand(text: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let text = text.trim_start();
    if let Some(group) = text.strip_prefix('{') {
        for member in members(group) {
            expand(member, &mut prefix.clone(), out);
        }
        return;
    }
    let ident: String = text
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if ident.is_empty() {
        if !prefix.is_empty() {
            out.push(prefix.clone());
        }
        return;
    }
    prefix.push(ident);
    match text[prefix.last().unwrap().len()..].strip_prefix("::") {
        Some(rest) => expand(rest, prefix, out),
        None => out.push(prefix.clone()),
    }
}

/// The members of a group, from just after its `{`: its text split at its own commas, up to its
/// closing brace.
fn members(group: &str) -> Vec<&str> {
    let (mut members, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                members.push(&group[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                members.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    members
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
    let lib = src.join("lib.rs");
    let modules = modules_of_lib(&std::fs::read_to_string(&lib).unwrap());
    let on_disk: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "lib.rs")
        .map(|name| name.trim_end_matches(".rs").to_owned())
        .collect();
    assert_eq!(
        modules, on_disk,
        "the modules lib.rs declares and the files of src/"
    );
    for module in &modules {
        layer_of(module);
    }

    // Each file's code, without the files of test-only modules.
    let mut codes = BTreeMap::new();
    let mut test_only: Vec<PathBuf> = Vec::new();
    for file in &files {
        let (code, test_files) = code_of(&std::fs::read_to_string(file).unwrap());
        // The directory of the modules the file declares.
        let dir = if file.ends_with("mod.rs") || *file == lib {
            file.parent().unwrap().to_owned()
        } else {
            file.with_extension("")
        };
        test_only.extend(test_files.iter().map(|name| dir.join(name)));
        codes.insert(file, code);
    }
    codes.retain(|file, _| {
        !test_only
            .iter()
            .any(|module| file.starts_with(module) || *file == &module.with_extension("rs"))
    });

    let mut wrong_way = Vec::new();
    // Within a layer: file -> files of the same layer it uses (roots excluded).
    let mut siblings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, code) in &codes {
        let relative = file.strip_prefix(&src).unwrap();
        let mut parts = relative.iter().map(|p| p.to_string_lossy().into_owned());
        let top = parts.next().unwrap();
        let module = top.trim_end_matches(".rs").to_owned();
        let inner = parts.next().map(|f| f.trim_end_matches(".rs").to_owned());
        let layer = layer_of(&module);
        for Used {
            module: used,
            file: used_inner,
            path,
        } in crate_paths(code, &modules, &dirs)
        {
            if layer_of(&used) > layer {
                wrong_way.push(format!("{} uses {path}", relative.display()));
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
