//! Reading raw snapshots: symbolized the first time a command reads one (from the binary at its
//! recorded path, or a debug file found by build ID under `--debug-dir` or
//! `TRACEALLOC_DEBUG_DIR`), the result cached beside the file; `tracealloc symbolize` writes it
//! back instead. What could not be named, and why, is said on stderr.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tracealloc_snapshot::Snapshot;
use tracealloc_snapshot::symbolize::{Provenance, SymbolizeOptions, Symbolizer, load_symbolized};

/// `--debug-dir`, set once from the command line.
pub(crate) static DEBUG_DIRS: OnceLock<Vec<PathBuf>> = OnceLock::new();

fn options() -> SymbolizeOptions {
    SymbolizeOptions::with_debug_dirs(DEBUG_DIRS.get().cloned().unwrap_or_default())
}

/// A symbolizer for the snapshots a running program sends (`tracealloc snapshot`, the live view):
/// raw, named here rather than in the program, which then loads no debug info.
pub(crate) fn symbolizer() -> Symbolizer {
    Symbolizer::new(options())
}

/// Loads a snapshot file, symbolizing a raw one (see the module's comment).
pub(crate) fn load(path: &Path) -> anyhow::Result<Snapshot> {
    let options = options();
    let message = format!("loading {}", path.display());
    let (snapshot, provenance) =
        tracealloc_report::with_spinner(message, || load_symbolized(path, &options))?;
    if let Provenance::SymbolizedNow(cache) = &provenance {
        match cache {
            Some(cache) => eprintln!(
                "tracealloc: symbolized the raw snapshot {} (cached in {})",
                path.display(),
                cache.display()
            ),
            None => eprintln!(
                "tracealloc: symbolized the raw snapshot {} (could not cache the result beside \
                 it: `tracealloc symbolize {} -o FILE` writes it elsewhere)",
                path.display(),
                path.display()
            ),
        }
    }
    if provenance != Provenance::Symbolized {
        say_notes(path, &snapshot);
    }
    Ok(snapshot)
}

/// What symbolizing `path` could not do, on stderr.
pub(crate) fn say_notes(path: &Path, snapshot: &Snapshot) {
    for note in &snapshot.symbolization_notes {
        eprintln!("tracealloc: {}: {note}", path.display());
    }
}

/// `tracealloc symbolize FILE [-o OUTPUT]`: writes the symbolized snapshot to OUTPUT (FILE itself
/// by default); returns the path written.
pub(crate) fn symbolize(file: &Path, output: Option<&Path>) -> anyhow::Result<PathBuf> {
    let output = output.unwrap_or(file);
    let snapshot =
        tracealloc_report::with_spinner(format!("symbolizing {}", file.display()), || {
            tracealloc_snapshot::symbolize::symbolize_file(file, output, &options())
        })?;
    say_notes(file, &snapshot);
    Ok(output.to_owned())
}

/// `export --unsymbolized`: a raw snapshot as it is, for pprof (`pprof` says the format is).
pub(crate) fn load_unsymbolized(path: &Path, pprof: bool) -> anyhow::Result<Snapshot> {
    if !pprof {
        anyhow::bail!("--unsymbolized is for `--format pprof` (mappings and addresses)");
    }
    let snapshot = Snapshot::load(path)?;
    if !snapshot.is_raw() {
        anyhow::bail!(
            "{} is symbolized already: --unsymbolized exports raw snapshots (written with \
             TRACEALLOC_SYMBOLIZE=later, the default of TRACEALLOC_OUT)",
            path.display()
        );
    }
    Ok(snapshot)
}
