//! A spinner on stderr while a long step runs; nothing when stderr is not a terminal.

use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracealloc_snapshot::{LoadError, Snapshot};

/// Runs `work` with a spinner saying `message` (hidden when stderr is not a terminal).
pub fn with_spinner<T>(message: String, work: impl FnOnce() -> T) -> T {
    let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    spinner.set_style(ProgressStyle::default_spinner());
    spinner.set_message(message);
    spinner.enable_steady_tick(Duration::from_millis(100));
    let result = work();
    spinner.finish_and_clear();
    result
}

/// Loads a snapshot file, with a spinner on a terminal.
pub fn load_with_progress(path: &Path) -> Result<Snapshot, LoadError> {
    with_spinner(format!("loading {}", path.display()), || {
        Snapshot::load(path)
    })
}
