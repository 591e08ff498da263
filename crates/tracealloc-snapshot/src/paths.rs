//! Source paths as people read them: `std/src/rt.rs` for the toolchain's sources,
//! `serde_json-1.0.140/src/de.rs` for registry crates, paths relative to the working directory for
//! the program's own files. Files and JSON keep the full paths; tables, stacks, flamegraphs and
//! folded stacks show these.

use std::borrow::Cow;

/// `path` shortened for reading; `workdir` is the directory the program ran in, when known.
///
/// ```
/// use tracealloc_snapshot::short_path;
///
/// assert_eq!(short_path("/rustc/0123abcd/library/std/src/rt.rs", None), "std/src/rt.rs");
/// let registry = "/home/u/.cargo/registry/src/index.crates.io-1/serde_json-1.0.140/src/de.rs";
/// assert_eq!(short_path(registry, None), "serde_json-1.0.140/src/de.rs");
/// let git = "/home/u/.cargo/git/checkouts/tokio-377c595163f99a10/1a2b3c4/tokio/src/lib.rs";
/// assert_eq!(short_path(git, None), "tokio/tokio/src/lib.rs");
/// assert_eq!(short_path("/srv/app/src/main.rs", Some("/srv/app")), "src/main.rs");
/// assert_eq!(short_path("/srv/app/src/main.rs", None), "/srv/app/src/main.rs");
/// // `..` and `.` as a build wrote them (a `#[path]`, the C library's sources) are resolved.
/// assert_eq!(short_path("/srv/app/src/bin/../work.rs", Some("/srv/app")), "src/work.rs");
/// assert_eq!(short_path("./elf/../elf/dl-tls.c", None), "elf/dl-tls.c");
/// ```
pub fn short_path<'p>(path: &'p str, workdir: Option<&str>) -> Cow<'p, str> {
    match shortened(path, workdir) {
        Cow::Borrowed(short) => lexically_normal(short),
        Cow::Owned(short) => Cow::Owned(lexically_normal(&short).into_owned()),
    }
}

/// `path` with its `.` components left out and each `..` taking the component before it away,
/// as far as the path goes (no file system is read, so a link is not followed).
fn lexically_normal(path: &str) -> Cow<'_, str> {
    let dotted = path.starts_with("./")
        || path.contains("/./")
        || path.contains("/../")
        || path.starts_with("../");
    if !dotted {
        return Cow::Borrowed(path);
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "." => {}
            ".." if parts
                .last()
                .is_some_and(|last| !last.is_empty() && *last != "..") =>
            {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    Cow::Owned(parts.join("/"))
}

/// [`short_path`] before `.` and `..` are resolved.
fn shortened<'p>(path: &'p str, workdir: Option<&str>) -> Cow<'p, str> {
    // The toolchain's sources: `/rustc/<commit>/library/std/src/rt.rs` -> `std/src/rt.rs`.
    if let Some(rest) = path.strip_prefix("/rustc/")
        && let Some((_, after_commit)) = rest.split_once('/')
    {
        return Cow::Borrowed(
            after_commit
                .strip_prefix("library/")
                .unwrap_or(after_commit),
        );
    }
    // What std vendors: `/rust/deps/hashbrown-0.15.2/src/raw.rs` -> `hashbrown-0.15.2/src/raw.rs`.
    if let Some(rest) = path.strip_prefix("/rust/deps/") {
        return Cow::Borrowed(rest);
    }
    // Registry crates: `<cargo home>/registry/src/<index>-<hash>/serde_json-1.0.140/src/de.rs`.
    if let Some(at) = path.find("/registry/src/")
        && let Some((_, in_index)) = path[at + "/registry/src/".len()..].split_once('/')
    {
        return Cow::Borrowed(in_index);
    }
    // Git dependencies: `<cargo home>/git/checkouts/<name>-<hash>/<revision>/src/lib.rs`.
    if let Some(at) = path.find("/git/checkouts/") {
        let mut parts = path[at + "/git/checkouts/".len()..].splitn(3, '/');
        if let (Some(checkout), Some(_revision), Some(rest)) =
            (parts.next(), parts.next(), parts.next())
        {
            let name = checkout.rsplit_once('-').map_or(checkout, |(name, _)| name);
            return Cow::Owned(format!("{name}/{rest}"));
        }
    }
    if let Some(dir) = workdir.filter(|d| !d.is_empty())
        && let Some(rest) = path.strip_prefix(dir)
        && let Some(relative) = rest.strip_prefix('/')
    {
        return Cow::Borrowed(relative);
    }
    Cow::Borrowed(path)
}

/// `path` as it reads in any checkout and on any machine, to match the frames of two snapshots
/// (of two runs, two checkouts, two machines): the toolchain's sources, registry crates and git
/// dependencies as [`short_path`] gives them (`alloc/src/vec/mod.rs`,
/// `serde-1.0.1/src/de.rs`, `tokio/tokio/src/lib.rs`), and any other file, absolute or relative,
/// relative to its crate: from its last `src`, `tests`, `examples` or `benches` directory on
/// (`/home/a/proj/src/main.rs` and `/tmp/b/proj/src/main.rs` both read `src/main.rs`), or its
/// file name when it has none (`build.rs`). Two crates of one workspace have files of the same
/// crate-relative path, so a frame is matched by this path *and* its function, whose name starts
/// with its crate's.
pub(crate) fn crate_relative_path(path: &str) -> Cow<'_, str> {
    // Before `..` is resolved: the file name of a C library's `./csu/../sysdeps/...` is its key.
    let short = shortened(path, None);
    if short != path {
        return short;
    }
    let parts: Vec<&str> = path.split('/').collect();
    let file_name = parts.len() - 1;
    let from = parts[..file_name]
        .iter()
        .rposition(|part| matches!(*part, "src" | "tests" | "examples" | "benches"))
        .unwrap_or(file_name);
    Cow::Owned(parts[from..].join("/"))
}

/// `text` (a key, a frame label, a folded stack) with every absolute path in it shortened by
/// [`short_path`]. A path starts with `/` at the start of the text or after `(`, ` ` or `;`, and
/// runs to the next `:`, `)`, `;` or space.
///
/// ```
/// use tracealloc_snapshot::short_paths_in;
///
/// let folded = "std::rt::lang_start (/rustc/abc/library/std/src/rt.rs:195);\
///               app::main (/srv/app/src/main.rs:5) 4096";
/// assert_eq!(
///     short_paths_in(folded, Some("/srv/app")),
///     "std::rt::lang_start (std/src/rt.rs:195);app::main (src/main.rs:5) 4096"
/// );
/// assert_eq!(short_paths_in("app::main (src/main.rs:5)", None), "app::main (src/main.rs:5)");
/// ```
pub fn short_paths_in<'t>(text: &'t str, workdir: Option<&str>) -> Cow<'t, str> {
    if !text.contains('/') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut previous: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        let starts_path = c == '/' && matches!(previous, None | Some('(' | ' ' | ';'));
        if starts_path {
            let end = rest.find([':', ')', ';', ' ']).unwrap_or(rest.len());
            out.push_str(&short_path(&rest[..end], workdir));
            previous = rest[..end].chars().last();
            rest = &rest[end..];
        } else {
            out.push(c);
            previous = Some(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Cow::Owned(out)
}

/// The directory holding the cargo `target` directory `exe` lies in: the workspace it was built
/// in, for cargo's usual layout.
///
/// ```
/// use std::path::Path;
/// use tracealloc_snapshot::workspace_of;
///
/// let exe = Path::new("/srv/app/target/release/app");
/// assert_eq!(workspace_of(exe).as_deref(), Some("/srv/app"));
/// let test = Path::new("/srv/app/target/debug/deps/parse-0123abcd");
/// assert_eq!(workspace_of(test).as_deref(), Some("/srv/app"));
/// assert_eq!(workspace_of(Path::new("/usr/bin/ls")), None); // not built by cargo
/// ```
pub fn workspace_of(exe: &std::path::Path) -> Option<String> {
    let target = exe
        .ancestors()
        .find(|dir| dir.file_name() == Some("target".as_ref()))?;
    Some(target.parent()?.to_string_lossy().into_owned())
}

/// `text` shortened for the running program's own output (`Display` of statistics): relative to
/// its workspace (found from its executable) or, failing that, its working directory.
pub(crate) fn short_paths_here(text: &str) -> Cow<'_, str> {
    static ROOTS: std::sync::OnceLock<(Option<String>, Option<String>)> =
        std::sync::OnceLock::new();
    let (workspace, workdir) = ROOTS.get_or_init(|| {
        let workspace = std::env::current_exe().ok().and_then(|e| workspace_of(&e));
        let workdir = std::env::current_dir()
            .ok()
            .map(|d| d.to_string_lossy().into_owned());
        (workspace, workdir)
    });
    match short_paths_in(text, workspace.as_deref().or(workdir.as_deref())) {
        Cow::Owned(s) if workspace.is_some() => {
            Cow::Owned(short_paths_in(&s, workdir.as_deref()).into_owned())
        }
        shorter => shorter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toolchain_registry_git_and_own_paths_are_shortened() {
        let cases = [
            (
                "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/rt.rs",
                "std/src/rt.rs",
            ),
            (
                "/rust/deps/hashbrown-0.15.2/src/raw/mod.rs",
                "hashbrown-0.15.2/src/raw/mod.rs",
            ),
            (
                "/home/me/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/serde_json-1.0.140/src/de.rs",
                "serde_json-1.0.140/src/de.rs",
            ),
            (
                "/home/me/.cargo/git/checkouts/tokio-a1b2c3d4/5e6f7a8/tokio/src/lib.rs",
                "tokio/tokio/src/lib.rs",
            ),
            ("/work/app/src/main.rs", "src/main.rs"),
            ("/elsewhere/src/main.rs", "/elsewhere/src/main.rs"),
        ];
        for (path, short) in cases {
            assert_eq!(short_path(path, Some("/work/app")), short, "{path}");
        }
        assert_eq!(
            short_path("/work/app/src/main.rs", None),
            "/work/app/src/main.rs"
        );
    }

    /// The same file in two checkouts, on two machines (another cargo home, another index
    /// hash), reads the same; files of different crates or different versions do not.
    #[test]
    fn crate_relative_paths_are_the_same_across_checkouts_and_machines() {
        let same = [
            (
                "/home/a/proj/src/main.rs",
                "/tmp/b/proj-copy/src/main.rs",
                "src/main.rs",
            ),
            (
                "/home/a/proj/crates/core/src/parse/expr.rs",
                "/ci/build/crates/core/src/parse/expr.rs",
                "src/parse/expr.rs",
            ),
            (
                "/home/a/proj/cli/tests/cli.rs",
                "/w/cli/tests/cli.rs",
                "tests/cli.rs",
            ),
            (
                "/home/a/src/proj/examples/src/bin/demo.rs",
                "/tmp/b/proj/examples/src/bin/demo.rs",
                "src/bin/demo.rs",
            ),
            (
                "/home/a/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/serde-1.0.1/src/de.rs",
                "/Users/b/.cargo/registry/src/index.crates.io-6f17d22bba15001f/serde-1.0.1/src/de.rs",
                "serde-1.0.1/src/de.rs",
            ),
            (
                "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/alloc/src/vec/mod.rs",
                "/rustc/17067e9ac6d7e98f18d4ba4fd5c6e5c6ac8bb9f8/library/alloc/src/vec/mod.rs",
                "alloc/src/vec/mod.rs",
            ),
            ("/home/a/proj/build.rs", "/tmp/b/proj/build.rs", "build.rs"),
            (
                "crates/core/src/lib.rs",
                "/ci/build/crates/core/src/lib.rs",
                "src/lib.rs",
            ),
            (
                "./csu/../sysdeps/x86/libc-start.c",
                "/build/glibc/csu/libc-start.c",
                "libc-start.c",
            ),
        ];
        for (a, b, relative) in same {
            assert_eq!(crate_relative_path(a), relative, "{a}");
            assert_eq!(crate_relative_path(b), relative, "{b}");
        }
        assert_ne!(
            crate_relative_path(
                "/h/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/serde-1.0.1/src/de.rs"
            ),
            crate_relative_path(
                "/h/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/serde-1.0.2/src/de.rs"
            )
        );
    }

    #[test]
    fn paths_inside_labels_and_folded_stacks_are_shortened() {
        let folded = "app::main (/work/app/src/main.rs:7);alloc::vec::Vec<T>::push \
                      (/rustc/abc/library/alloc/src/vec/mod.rs:2417) 64";
        assert_eq!(
            short_paths_in(folded, Some("/work/app")),
            "app::main (src/main.rs:7);alloc::vec::Vec<T>::push (alloc/src/vec/mod.rs:2417) 64"
        );
        assert_eq!(
            short_paths_in("/work/app/src/lib.rs:12", Some("/work/app")),
            "src/lib.rs:12"
        );
        // Not paths: slashes inside names and types.
        assert_eq!(
            short_paths_in("<a/b as c>::d 5", Some("/work/app")),
            "<a/b as c>::d 5"
        );
    }
}
