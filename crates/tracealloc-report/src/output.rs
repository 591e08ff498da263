//! Output files are written whole or not at all.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// An output file that could not be written; one line naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct OutputError {
    pub path: PathBuf,
    pub message: String,
}

/// Writes `path` through a temporary file in the same directory, renamed into place only when
/// `render` succeeded: a failure never leaves a half-written file.
pub fn write_atomically<E: std::fmt::Display>(
    path: &Path,
    render: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> Result<(), OutputError> {
    let fail = |message: String| OutputError {
        path: path.to_owned(),
        message,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .prefix(".tracealloc-")
        .tempfile_in(dir)
        .map_err(|e| fail(format!("cannot create a file here: {e}")))?;
    {
        let mut out = BufWriter::new(tmp.as_file_mut());
        render(&mut out).map_err(|e| fail(e.to_string()))?;
        out.flush().map_err(|e| fail(e.to_string()))?;
    }
    tmp.persist(path).map_err(|e| fail(e.error.to_string()))?;
    Ok(())
}
