//! `tracealloc live`: a terminal view of a running program's memory through its control socket,
//! refreshed every second: its figures, a sparkline of live memory, and the top sites with their
//! change since the view started and their allocation rate; keys save a snapshot, reset the peak,
//! switch stack capture, group, sort, filter and pause.

mod model;
mod view;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use tracealloc_snapshot::control::{self, AskError, LiveStats, Request};
use tracealloc_snapshot::{Snapshot, human_bytes, human_count, human_duration_ms};

use model::LiveModel;
use view::Status;

/// How the live view runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LiveOptions {
    /// Time between refreshes.
    pub refresh: Duration,
    /// Where `s` saves snapshots.
    pub save_dir: PathBuf,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            refresh: Duration::from_secs(1),
            save_dir: PathBuf::from("."),
        }
    }
}

/// How the live view ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LiveEnd {
    /// The user quit (`q`, Esc or Ctrl-C).
    Quit,
    /// The program ended: its socket went away.
    ProgramEnded,
}

/// Why the live view stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    #[error(transparent)]
    Ask(#[from] AskError),
    #[error("the terminal: {0}")]
    Terminal(#[from] io::Error),
}

/// Runs the live view of the program serving `socket` until `q` (or Ctrl-C), or until the program
/// ends. The first figures are fetched before the terminal is taken over, so an unreachable
/// program is a plain error.
///
/// The program sends raw snapshots (return addresses: it loads no debug info for them);
/// `name_frames` names them here, as `tracealloc_snapshot::symbolize::Symbolizer` does, keeping
/// what it read from one snapshot to the next.
pub fn live(
    socket: &Path,
    options: &LiveOptions,
    name_frames: &mut dyn FnMut(&mut Snapshot),
) -> Result<LiveEnd, LiveError> {
    let stats = control::ask_stats(socket, Request::Stats)?;
    let snapshot = ask_snapshot(socket, name_frames)?;
    let model = LiveModel::new(stats, snapshot, Instant::now());
    let mut terminal = ratatui::init();
    let result = run(&mut terminal, socket, options, model, name_frames);
    ratatui::restore();
    result
}

/// A snapshot of the program serving `socket`, its frames named.
fn ask_snapshot(
    socket: &Path,
    name_frames: &mut dyn FnMut(&mut Snapshot),
) -> Result<Snapshot, AskError> {
    let mut snapshot = control::ask_snapshot(socket)?;
    name_frames(&mut snapshot);
    Ok(snapshot)
}

fn run(
    terminal: &mut ratatui::DefaultTerminal,
    socket: &Path,
    options: &LiveOptions,
    mut model: LiveModel,
    name_frames: &mut dyn FnMut(&mut Snapshot),
) -> Result<LiveEnd, LiveError> {
    let mut message = String::new();
    let (mut paused, mut editing) = (false, false);
    let mut next_refresh = Instant::now() + options.refresh;
    loop {
        let status = Status {
            message: &message,
            editing_filter: editing,
            paused,
        };
        terminal.draw(|frame| view::draw(frame, &model, &status))?;
        let wait = next_refresh.saturating_duration_since(Instant::now());
        if event::poll(wait)? {
            let Event::Key(key) = event::read()? else {
                continue;
            };
            if key.kind != KeyEventKind::Press {
                continue;
            }
            if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
                return Ok(LiveEnd::Quit);
            }
            if editing {
                match key.code {
                    KeyCode::Enter => editing = false,
                    KeyCode::Esc => {
                        model.filter.clear();
                        editing = false;
                    }
                    KeyCode::Backspace => {
                        model.filter.pop();
                    }
                    KeyCode::Char(c) => model.filter.push(c),
                    _ => {}
                }
                continue;
            }
            let outcome = match key.code {
                KeyCode::Char('q') | KeyCode::Esc => return Ok(LiveEnd::Quit),
                KeyCode::Char('s') => save(socket, &options.save_dir, name_frames),
                KeyCode::Char('r') => control::ask_stats(socket, Request::ResetPeak).map(|stats| {
                    model.update_stats(stats);
                    "peak reset to the live figures".to_owned()
                }),
                KeyCode::Char('c') => {
                    let request = if model.stats.capturing {
                        Request::StopCapture
                    } else {
                        Request::StartCapture
                    };
                    control::ask_stats(socket, request).map(|stats| {
                        let said = if stats.capturing {
                            "stack capture started"
                        } else {
                            "stack capture stopped: new blocks are counted without stacks"
                        };
                        model.update_stats(stats);
                        said.to_owned()
                    })
                }
                KeyCode::Char(key @ ('+' | '-')) => change_interval(socket, &mut model, key == '+'),
                KeyCode::Char('b') => {
                    model.next_grouping(Instant::now());
                    Ok(String::new())
                }
                KeyCode::Char('o') => {
                    model.sort = model.sort.next();
                    Ok(String::new())
                }
                KeyCode::Char('/') => {
                    editing = true;
                    Ok(String::new())
                }
                KeyCode::Char('p') => {
                    paused = !paused;
                    Ok(String::new())
                }
                _ => continue,
            };
            message = outcome.unwrap_or_else(|e| e.to_string());
            continue;
        }
        next_refresh = Instant::now() + options.refresh;
        if paused {
            continue;
        }
        let refreshed = control::ask_stats(socket, Request::Stats)
            .and_then(|stats| ask_snapshot(socket, name_frames).map(|snapshot| (stats, snapshot)));
        match refreshed {
            Ok((stats, snapshot)) => model.update(stats, snapshot, Instant::now()),
            // The socket is gone or no one serves it: the program has ended.
            Err(AskError::Connect { cause, .. })
                if matches!(
                    cause.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Ok(LiveEnd::ProgramEnded);
            }
            Err(e) => message = format!("{e} (retrying)"),
        }
    }
}

/// `+` halves the sampling interval (finer: more samples), `-` doubles it; says the new one.
fn change_interval(socket: &Path, model: &mut LiveModel, finer: bool) -> Result<String, AskError> {
    let mean = model.stats.sampling_bytes;
    if mean == 0 {
        return Ok(
            "the program runs in exact mode; start it with TRACEALLOC_SAMPLE=<bytes> to sample"
                .to_owned(),
        );
    }
    let wanted = if finer {
        (mean / 2).max(1)
    } else {
        mean.saturating_mul(2).min(control::MAX_SAMPLING_BYTES)
    };
    control::ask_stats(socket, Request::Sample(wanted)).map(|stats| {
        let said = format!(
            "sampling every {} on average now ({} bytes; was {})",
            human_bytes(stats.sampling_bytes),
            stats.sampling_bytes,
            human_bytes(mean)
        );
        model.update_stats(stats);
        said
    })
}

/// Saves a snapshot of the program into `dir`, its frames named; says where.
fn save(
    socket: &Path,
    dir: &Path,
    name_frames: &mut dyn FnMut(&mut Snapshot),
) -> Result<String, AskError> {
    let snapshot = ask_snapshot(socket, name_frames)?;
    let path = dir.join(format!(
        "tracealloc-{}-{}.json",
        snapshot.meta.pid,
        tracealloc_snapshot::file_stamp(snapshot.meta.time_unix_ms)
    ));
    Ok(match snapshot.save(&path) {
        Ok(()) => format!("saved {}", path.display()),
        Err(e) => format!("cannot save: {e}"),
    })
}

/// The program's figures, one per line, as `tracealloc control ... stats` prints them.
pub fn live_stats(stats: &LiveStats, out: &mut dyn Write) -> io::Result<()> {
    let t = &stats.totals;
    writeln!(out, "{:>10}: {}", "pid", stats.pid)?;
    writeln!(
        out,
        "{:>10}: {} in {} blocks",
        "live",
        human_bytes(t.live_bytes),
        human_count(t.live_blocks)
    )?;
    writeln!(
        out,
        "{:>10}: {} in {} blocks",
        "peak",
        human_bytes(t.peak_bytes),
        human_count(t.peak_blocks)
    )?;
    writeln!(
        out,
        "{:>10}: {} in {} blocks",
        "allocated",
        human_bytes(t.total_bytes),
        human_count(t.total_blocks)
    )?;
    writeln!(out, "{:>10}: {}", "resident", human_bytes(stats.rss_bytes))?;
    writeln!(
        out,
        "{:>10}: {}",
        "capture",
        if stats.capturing { "on" } else { "off" }
    )?;
    writeln!(
        out,
        "{:>10}: {}",
        "mode",
        match stats.sampling_bytes {
            0 => "exact".to_owned(),
            mean => format!(
                "sampled every {} on average ({mean} bytes)",
                human_bytes(mean)
            ),
        }
    )?;
    writeln!(out, "{:>10}: {}", "up", human_duration_ms(stats.uptime_ms))
}
