//! Where `tracealloc run`'s preload library comes from. An installed CLI (`cargo install
//! tracealloc-cli`) has no library beside it, so on first use it builds one into a per-user cache,
//! as `cargo miri setup` and cargo-careful do: the library's source travels inside this executable
//! and its one dependency, the `tracealloc` runtime of this CLI's exact version, comes from
//! crates.io (or from a local checkout, `TRACEALLOC_PRELOAD_SOURCE`).

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub(crate) const PRELOAD_NAME: &str = "libtracealloc_preload.so";

/// The library's source: the file `crates/tracealloc-preload` builds in tracealloc's repository,
/// kept in this package so that `cargo package` carries it.
const SOURCE: &str = include_str!("../preload/lib.rs");

/// The runtime must be this CLI's own version: `run` and the library agree on environment
/// variables, and the snapshot format they write is what this CLI reads.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Shown by `tracealloc run --help`.
pub(crate) const HELP: &str = "\
The preload library (libtracealloc_preload.so) is the first found of: the file TRACEALLOC_PRELOAD \
names; beside the tracealloc executable; in ../lib/tracealloc/ from it; in the cache, \
$XDG_CACHE_HOME/tracealloc/preload-<version>/ (else ~/.cache/tracealloc/preload-<version>/). \
Without one, tracealloc builds it into the cache on first use (once, a minute or two): cargo \
($CARGO, else cargo on PATH) builds it against the tracealloc crate of tracealloc's own version \
from crates.io, or against the local checkout TRACEALLOC_PRELOAD_SOURCE names (for a machine \
without crates.io, or an unpublished version). Cargo's own settings (CARGO_TARGET_DIR, \
~/.cargo/config.toml) apply to that build. Remove the cache directory to build it again.";

/// Where the preload library is, building it into the cache if no copy is found.
pub(crate) fn find_preload(out: &mut dyn Write) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("TRACEALLOC_PRELOAD") {
        let path = PathBuf::from(path);
        anyhow::ensure!(
            path.is_file(),
            "TRACEALLOC_PRELOAD names {}, which is not a file",
            path.display()
        );
        return Ok(std::fs::canonicalize(path)?);
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let candidates = [
        dir.join(PRELOAD_NAME),
        dir.join("../lib/tracealloc").join(PRELOAD_NAME),
    ];
    for candidate in &candidates {
        if candidate.is_file() {
            return Ok(std::fs::canonicalize(candidate)?);
        }
    }
    let Some(cache) = cache_dir() else {
        anyhow::bail!(
            "cannot find {PRELOAD_NAME} (looked beside {}, in ../lib/tracealloc/ and for \
             TRACEALLOC_PRELOAD), and neither XDG_CACHE_HOME nor HOME names a directory to build \
             it in. {}",
            exe.display(),
            OTHER_WAYS
        );
    };
    let cached = cache.join(PRELOAD_NAME);
    if cached.is_file() {
        return Ok(cached);
    }
    build(&cache, out)
}

/// What else works when the library cannot be built here.
const OTHER_WAYS: &str = "Other ways: build it in tracealloc's repository (`cargo build \
     --release -p tracealloc-preload`) and put target/release/libtracealloc_preload.so beside the \
     tracealloc executable or name it in TRACEALLOC_PRELOAD; or set TRACEALLOC_PRELOAD_SOURCE to a \
     local checkout of the tracealloc crate (crates/tracealloc in the repository) to build \
     against instead of crates.io";

/// `$XDG_CACHE_HOME/tracealloc/preload-<version>`, else `$HOME/.cache/...`. The XDG base
/// directory specification says a relative `XDG_CACHE_HOME` is to be ignored.
fn cache_dir() -> Option<PathBuf> {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let base = absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|h| h.join(".cache")))?;
    Some(base.join("tracealloc").join(format!("preload-{VERSION}")))
}

/// Builds the library with cargo in `dir` and copies it to `dir/libtracealloc_preload.so`.
fn build(dir: &Path, out: &mut dyn Write) -> anyhow::Result<PathBuf> {
    let dependency = match std::env::var_os("TRACEALLOC_PRELOAD_SOURCE") {
        Some(source) => {
            let source = PathBuf::from(source);
            let canonical = std::fs::canonicalize(&source)
                .ok()
                .filter(|dir| dir.join("Cargo.toml").is_file());
            let Some(canonical) = canonical else {
                anyhow::bail!(
                    "TRACEALLOC_PRELOAD_SOURCE names {}, which is not a crate's directory (no \
                     Cargo.toml there): it should name a checkout of the tracealloc crate, \
                     crates/tracealloc in tracealloc's repository",
                    source.display()
                );
            };
            format!(
                "{{ path = {}, version = \"={VERSION}\" }}",
                toml_string(&canonical.to_string_lossy())
            )
        }
        None => format!("\"={VERSION}\""),
    };
    let manifest = format!(
        "# Written by `tracealloc run`: the preload library it builds on first use.\n\
         [package]\n\
         name = \"tracealloc-preload\"\n\
         version = \"{VERSION}\"\n\
         edition = \"2024\"\n\
         publish = false\n\
         \n\
         [lib]\n\
         path = \"src/lib.rs\"\n\
         crate-type = [\"cdylib\"]\n\
         \n\
         [dependencies]\n\
         tracealloc = {dependency}\n\
         \n\
         # As tracealloc's repository builds it: symbols and lines for the runtime's own frames.\n\
         [profile.release]\n\
         debug = \"limited\"\n\
         \n\
         # A project of its own, even when the cache is inside another workspace.\n\
         [workspace]\n"
    );
    // `run --frame-pointers` walks through the runtime's own frames first.
    let config = "[build]\nrustflags = [\"-C\", \"force-frame-pointers=yes\"]\n";
    let written = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(dir.join("src"))?;
        std::fs::create_dir_all(dir.join(".cargo"))?;
        write_if_changed(&dir.join("Cargo.toml"), &manifest)?;
        write_if_changed(&dir.join("src/lib.rs"), SOURCE)?;
        write_if_changed(&dir.join(".cargo/config.toml"), config)
    })();
    if let Err(e) = written {
        anyhow::bail!(
            "cannot write the preload library's project to {}: {e}. {OTHER_WAYS}",
            dir.display()
        );
    }
    writeln!(
        out,
        "tracealloc: building the preload library for tracealloc {VERSION} into {} (once; a \
         minute or two)...",
        dir.display()
    )?;
    let named = std::env::var_os("CARGO");
    let cargo = named.clone().unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(&cargo);
    command
        .current_dir(dir)
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(flags) = rustflags_from_env() {
        // Cargo ignores the project's `build.rustflags` when the environment sets any.
        command
            .env_remove("RUSTFLAGS")
            .env("CARGO_ENCODED_RUSTFLAGS", flags);
    }
    let cargo_name = Path::new(&cargo).display().to_string();
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let which = match (&named, e.kind()) {
                (None, std::io::ErrorKind::NotFound) => "cargo is not on PATH".to_owned(),
                (None, _) => format!("cannot run cargo ({e})"),
                (Some(_), _) => format!("cannot run {cargo_name}, which CARGO names ({e})"),
            };
            anyhow::bail!(
                "cannot build the preload library: {which}, and tracealloc builds {PRELOAD_NAME} \
                 with cargo (install Rust with rustup, or set CARGO to a cargo). {OTHER_WAYS}"
            );
        }
    };
    let mut built = None;
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line?;
            if let Some(path) = cdylib_of(&line) {
                built = Some(path);
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        let needs = if std::env::var_os("TRACEALLOC_PRELOAD_SOURCE").is_some() {
            format!(
                "TRACEALLOC_PRELOAD_SOURCE must name tracealloc {VERSION}, and its dependencies \
                 come from crates.io unless cargo's configuration says otherwise"
            )
        } else {
            format!("it fetches tracealloc {VERSION} and its dependencies from crates.io")
        };
        anyhow::bail!(
            "cannot build the preload library: `{cargo_name} build --release` in {} failed \
             ({status}; cargo's messages are above; {needs}). {OTHER_WAYS}",
            dir.display()
        );
    }
    let Some(built) = built else {
        anyhow::bail!(
            "cannot build the preload library: `{cargo_name} build --release` in {} succeeded \
             but named no {PRELOAD_NAME} among its artifacts. {OTHER_WAYS}",
            dir.display()
        );
    };
    let target = dir.join(PRELOAD_NAME);
    // Another `tracealloc run` may be reading the library: it keeps the file it opened, and finds
    // either the old one or the new one whole.
    let temporary = dir.join(format!(".{PRELOAD_NAME}.{}.tmp", std::process::id()));
    let copied =
        std::fs::copy(&built, &temporary).and_then(|_| std::fs::rename(&temporary, &target));
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&temporary);
        anyhow::bail!(
            "cannot copy the preload library from {} to {}: {e}",
            built.display(),
            target.display()
        );
    }
    Ok(target)
}

/// The library cargo reports in one line of `--message-format=json` output, if the line is that
/// artifact.
fn cdylib_of(line: &str) -> Option<PathBuf> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message["reason"] != "compiler-artifact" || message["target"]["name"] != "tracealloc_preload"
    {
        return None;
    }
    message["filenames"]
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".so"))
        .map(PathBuf::from)
}

/// The environment's rustflags with frame pointers added, when the environment sets any (cargo
/// then reads no `build.rustflags` from configuration files), as `CARGO_ENCODED_RUSTFLAGS`.
fn rustflags_from_env() -> Option<String> {
    let mut flags: Vec<String> = match std::env::var("CARGO_ENCODED_RUSTFLAGS") {
        Ok(encoded) => encoded
            .split('\x1f')
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect(),
        Err(_) => std::env::var("RUSTFLAGS")
            .ok()?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    };
    flags.extend(["-C".to_owned(), "force-frame-pointers=yes".to_owned()]);
    Some(flags.join("\x1f"))
}

/// Writes `text` to `path` unless it holds it already (cargo would rebuild a rewritten source),
/// through a temporary file renamed into place: another `tracealloc run` building at the same
/// time reads the old file or the new one, never a part.
fn write_if_changed(path: &Path, text: &str) -> std::io::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(());
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(toml_string(r#"/a "b"\c"#), r#""/a \"b\"\\c""#);
        assert_eq!(toml_string("/x\ty"), r#""/x\u0009y""#);
    }

    #[test]
    fn the_cdylib_is_read_from_cargo_s_artifact_message() {
        let line = r#"{"reason":"compiler-artifact","target":{"kind":["cdylib"],"name":"tracealloc_preload"},"filenames":["/t/release/libtracealloc_preload.so"],"fresh":true}"#;
        assert_eq!(
            cdylib_of(line),
            Some(PathBuf::from("/t/release/libtracealloc_preload.so"))
        );
        let dependency = r#"{"reason":"compiler-artifact","target":{"name":"tracealloc"},"filenames":["/t/release/deps/libtracealloc-1.rlib"]}"#;
        assert_eq!(cdylib_of(dependency), None);
        assert_eq!(cdylib_of("not json"), None);
    }
}
