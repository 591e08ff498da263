//! Symbolizing a raw snapshot (feature `symbolize`), outside the profiled process: each module's
//! return addresses named from the binary at its recorded path when it still has the recorded
//! build ID, else from a separate debug file found by build ID (`DIR/.build-id/xx/rest.debug`, the
//! layout gdb and debuginfod use), with inlined frames. Without debug info, a function name from
//! the symbol table; without that, `module+0xoffset`. Each fallback is said once per module in
//! [`Snapshot::symbolization_notes`], so that no frame is `??` without a reason.
//!
//! [`load_symbolized`] is what the `tracealloc` CLI reads files with: a raw file is symbolized the
//! first time, and the result cached next to it (`.NAME.symbolized.json`), so that later reads are
//! as fast as a symbolized file's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use object::Object;

use crate::model::{Frame, Site, Snapshot, Stack};
use crate::raw::{Module, NO_MODULE, RawAddress};
use crate::{FORMAT_VERSION, LoadError};

/// Where the system's package manager installs debug files (Debian's `*-dbg`, Fedora's
/// `*-debuginfo`): searched after the directories given.
pub const SYSTEM_DEBUG_DIR: &str = "/usr/lib/debug";

/// The environment variable the `tracealloc` CLI reads debug directories from (`:`-separated),
/// besides `--debug-dir`.
pub const DEBUG_DIR_ENV: &str = "TRACEALLOC_DEBUG_DIR";

/// Where to look for debug files.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SymbolizeOptions {
    /// Directories holding debug files by build ID (`DIR/.build-id/xx/rest.debug`), searched in
    /// order, then [`SYSTEM_DEBUG_DIR`].
    pub debug_dirs: Vec<PathBuf>,
}

impl SymbolizeOptions {
    /// Options searching `debug_dirs`, then the directories of `TRACEALLOC_DEBUG_DIR`.
    ///
    /// ```
    /// use std::path::Path;
    /// use tracealloc_snapshot::symbolize::SymbolizeOptions;
    ///
    /// let options = SymbolizeOptions::with_debug_dirs(vec!["/srv/debug".into()]);
    /// assert_eq!(options.debug_dirs[0], Path::new("/srv/debug")); // then TRACEALLOC_DEBUG_DIR's
    /// ```
    pub fn with_debug_dirs(debug_dirs: Vec<PathBuf>) -> SymbolizeOptions {
        let mut dirs = debug_dirs;
        if let Some(env) = std::env::var_os(DEBUG_DIR_ENV) {
            dirs.extend(std::env::split_paths(&env).filter(|d| !d.as_os_str().is_empty()));
        }
        SymbolizeOptions { debug_dirs: dirs }
    }

    fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.debug_dirs
            .iter()
            .map(PathBuf::as_path)
            .chain(std::iter::once(Path::new(SYSTEM_DEBUG_DIR)))
    }

    /// The debug file with `build_id` (hex) under one of the directories, if any.
    fn debug_file(&self, build_id: &str) -> Option<PathBuf> {
        if build_id.len() < 3 {
            return None;
        }
        let (first, rest) = build_id.split_at(2);
        self.dirs()
            .map(|dir| {
                dir.join(".build-id")
                    .join(first)
                    .join(format!("{rest}.debug"))
            })
            .find(|path| path.is_file())
    }

    fn dirs_shown(&self) -> String {
        self.dirs()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The GNU build ID of the object file at `path`, in hexadecimal; `Ok(None)` when it has none.
/// Reads only the headers and the note (not the whole file).
///
/// ```
/// use std::io::ErrorKind;
/// use std::path::Path;
/// use tracealloc_snapshot::symbolize::build_id_of;
///
/// // This program's own executable: a hexadecimal build ID if the linker gave it one.
/// if let Some(id) = build_id_of(&std::env::current_exe()?)? {
///     assert!(id.len() >= 16 && id.chars().all(|c| c.is_ascii_hexdigit()));
/// }
/// let manifest = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
/// assert_eq!(build_id_of(manifest).unwrap_err().kind(), ErrorKind::InvalidData); // no object file
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn build_id_of(path: &Path) -> std::io::Result<Option<String>> {
    let file = std::fs::File::open(path)?;
    let cache = object::ReadCache::new(file);
    let object = object::File::parse(&cache)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    Ok(object.build_id().ok().flatten().map(hex))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One module's sources of names.
struct ModuleNames {
    /// DWARF (file:line, inlined frames) and the symbol table of the file it came from.
    dwarf: Option<addr2line::Loader>,
    /// The binary itself, for its symbol table, when the DWARF came from elsewhere or is missing.
    symbols: Option<addr2line::Loader>,
}

impl ModuleNames {
    /// Opens what can name `module`'s addresses; `note` receives what is missing, and why.
    fn open(module: &Module, options: &SymbolizeOptions, note: &mut Option<String>) -> ModuleNames {
        let path = Path::new(&module.path);
        let recorded = module.build_id.as_deref();
        let binary_ok = match (build_id_of(path), recorded) {
            (Ok(found), Some(recorded)) if found.as_deref() == Some(recorded) => true,
            (Ok(None), Some(_)) => {
                *note = Some(format!("{}: has no build ID now", module.path));
                false
            }
            (Ok(Some(found)), Some(recorded)) => {
                *note = Some(format!(
                    "{}: no longer matches the profiled binary (build ID {found}, not {recorded}): \
                     rebuilt or replaced since",
                    module.path
                ));
                false
            }
            (Ok(_), None) => true,
            (Err(e), _) => {
                *note = Some(format!("{}: cannot read it ({e})", module.path));
                false
            }
        };
        let binary = binary_ok
            .then(|| addr2line::Loader::new(path).ok())
            .flatten();
        let has_dwarf = |loader: &addr2line::Loader| {
            loader
                .get_section_range(b".debug_info")
                .is_some_and(|r| r.end > r.begin)
        };
        let mut names = ModuleNames {
            dwarf: None,
            symbols: None,
        };
        match binary {
            Some(binary) if has_dwarf(&binary) => {
                names.dwarf = Some(binary);
                return names;
            }
            // `strip --strip-all` leaves no symbol table (only the dynamic one's few exports).
            binary => names.symbols = binary.filter(|b| b.get_section_range(b".symtab").is_some()),
        }
        let debug_file = recorded.and_then(|id| options.debug_file(id));
        match debug_file.map(|f| (addr2line::Loader::new(&f), f)) {
            Some((Ok(loader), _)) if has_dwarf(&loader) => {
                names.dwarf = Some(loader);
                *note = note
                    .take()
                    .map(|n| format!("{n}; named from its debug file instead"));
            }
            Some((_, file)) => {
                note.get_or_insert_with(|| module.path.clone());
                if let Some(n) = note.as_mut() {
                    n.push_str(&format!(
                        "; its debug file {} has no debug info",
                        file.display()
                    ));
                }
            }
            None => {
                let prefix = note.take().unwrap_or_else(|| {
                    format!(
                        "{}: has no debug info (built without it, as a plain release profile \
                             is, or stripped)",
                        module.path
                    )
                });
                let wanted = match recorded {
                    Some(id) if id.len() > 2 => format!(
                        "a debug file .build-id/{}/{}.debug (build ID {id}) under --debug-dir \
                         DIR or {DEBUG_DIR_ENV} (searched: {})",
                        &id[..2],
                        &id[2..],
                        options.dirs_shown()
                    ),
                    _ => "its debug info (it has no build ID to find a debug file by)".to_owned(),
                };
                let fallback = if names.symbols.is_some() {
                    "function names from its symbol table, no file:line"
                } else {
                    "frames named module+offset"
                };
                *note = Some(format!(
                    "{prefix}; for file:line, build it with `debug = \"line-tables-only\"` in \
                     its profile, or give {wanted}; meanwhile {fallback}"
                ));
            }
        }
        names
    }

    /// The frames of return address `address` (innermost first), or `None` when nothing names it.
    fn frames(&self, address: u64) -> Option<Vec<Frame>> {
        // The call instruction, just before the return address.
        let probe = address.checked_sub(1)?;
        if let Some(dwarf) = &self.dwarf {
            let mut frames = Vec::new();
            if let Ok(mut iter) = dwarf.find_frames(probe) {
                while let Ok(Some(found)) = iter.next() {
                    let function = found
                        .function
                        .as_ref()
                        .and_then(|f| f.demangle().ok())
                        .map(|name| crate::one_closure_spelling(name.into_owned()));
                    let function = match function {
                        Some(name) => name,
                        None => self.symbol(probe).unwrap_or_else(|| "??".to_owned()),
                    };
                    let mut frame = Frame::new(function);
                    if let Some(location) = found.location
                        && let Some(file) = location.file
                    {
                        frame = frame.at(file, location.line, location.column);
                    }
                    frame.inlined = true;
                    frames.push(frame);
                }
            }
            if let Some(outermost) = frames.last_mut() {
                outermost.inlined = false;
                return Some(frames);
            }
        }
        self.symbol(probe).map(|name| vec![Frame::new(name)])
    }

    /// The function the symbol table has at `probe`, demangled without its hash.
    fn symbol(&self, probe: u64) -> Option<String> {
        let name = [&self.dwarf, &self.symbols]
            .into_iter()
            .flatten()
            .find_map(|loader| loader.find_symbol(probe))?;
        Some(match rustc_demangle::try_demangle(name) {
            Ok(demangled) => crate::one_closure_spelling(format!("{demangled:#}")),
            Err(_) => name.to_owned(),
        })
    }
}

/// The name of an address nothing could name.
fn module_offset(modules: &[Module], raw: RawAddress) -> String {
    match modules.get(raw.module as usize) {
        Some(module) if raw.module != NO_MODULE => {
            format!("{}+{:#x}", module.file_name(), raw.address)
        }
        _ => format!("[unknown] {:#x}", raw.address),
    }
}

impl Snapshot {
    /// Symbolizes a raw snapshot in place (nothing happens to a symbolized one): names its frames,
    /// drops the profiler's own frames from the innermost end of its stacks, and merges the sites
    /// that become one. It then reads as a snapshot symbolized in process did (format version 1);
    /// [`Snapshot::symbolization_notes`] says what could not be named, and why.
    ///
    /// ```
    /// use tracealloc_snapshot::symbolize::SymbolizeOptions;
    /// # fn raw_snapshot() -> tracealloc_snapshot::Snapshot {
    /// #     use tracealloc_snapshot::*;
    /// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
    /// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
    /// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
    /// #     snapshot.modules.push(Module::new("/gone/app", None, 0, (0x1000, 0x9000, 0x1000)));
    /// #     snapshot.frames = vec![Frame::new(""), Frame::new("")];
    /// #     let addresses = [0x1234, 0x5678].map(|a| Some(RawAddress::new(0, a))).to_vec();
    /// #     snapshot.unsymbolized = Some(Unsymbolized::new(addresses, None));
    /// #     snapshot.stacks.push(Stack::new(vec![0, 1]));
    /// #     let mut site = Site::new(0, 0);
    /// #     (site.live_blocks, site.live_bytes) = (1, 1024);
    /// #     (site.total_blocks, site.total_bytes) = (1, 1024);
    /// #     snapshot.sites.push(site);
    /// #     snapshot.totals = snapshot.site_sum();
    /// #     snapshot
    /// # }
    ///
    /// // A raw snapshot whose binary, /gone/app, is no longer there to read names from.
    /// let mut snapshot = raw_snapshot();
    /// assert!(snapshot.is_raw());
    /// snapshot.symbolize(&SymbolizeOptions::default());
    /// assert!(!snapshot.is_raw());
    /// assert_eq!(snapshot.version, 1);
    /// // Its frames are named by module and offset, and the notes say why.
    /// let frames: Vec<&str> = snapshot.stack_frames(0).map(|f| f.function.as_str()).collect();
    /// assert_eq!(frames, ["app+0x1234", "app+0x5678"]);
    /// assert_eq!(snapshot.symbolization_notes.len(), 1);
    /// assert!(snapshot.symbolization_notes[0].starts_with("/gone/app: "));
    /// ```
    pub fn symbolize(&mut self, options: &SymbolizeOptions) {
        Symbolizer::new(options.clone()).symbolize(self);
    }
}

/// Names raw snapshots' frames (see [`Snapshot::symbolize`]), keeping what it opened and named
/// for the next snapshot: the live view symbolizes a snapshot of the same program every second,
/// and reads each module's debug info once, each address once.
///
/// ```
/// use tracealloc_snapshot::symbolize::{SymbolizeOptions, Symbolizer};
/// # fn raw_snapshot() -> tracealloc_snapshot::Snapshot {
/// #     use tracealloc_snapshot::*;
/// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
/// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
/// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
/// #     snapshot.modules.push(Module::new("/gone/app", None, 0, (0x1000, 0x9000, 0x1000)));
/// #     snapshot.frames = vec![Frame::new("")];
/// #     let addresses = vec![Some(RawAddress::new(0, 0x1234))];
/// #     snapshot.unsymbolized = Some(Unsymbolized::new(addresses, None));
/// #     snapshot.stacks.push(Stack::new(vec![0]));
/// #     let mut site = Site::new(0, 0);
/// #     (site.live_blocks, site.live_bytes) = (1, 1024);
/// #     (site.total_blocks, site.total_bytes) = (1, 1024);
/// #     snapshot.sites.push(site);
/// #     snapshot.totals = snapshot.site_sum();
/// #     snapshot
/// # }
///
/// let mut symbolizer = Symbolizer::new(SymbolizeOptions::default());
/// for _ in 0..2 {
///     let mut snapshot = raw_snapshot(); // as the control socket gives them, one a second
///     symbolizer.symbolize(&mut snapshot);
///     assert_eq!(snapshot.stack_frames(0).next().unwrap().function, "app+0x1234");
///     // What could not be named is said with each snapshot.
///     assert_eq!(snapshot.symbolization_notes.len(), 1);
/// }
/// ```
pub struct Symbolizer {
    options: SymbolizeOptions,
    /// Each module opened, by path and build ID, with what it is missing (said with every
    /// snapshot that has addresses in it).
    modules: HashMap<ModuleKey, (ModuleNames, Option<String>)>,
    /// Each address named (`None`: nothing names it), by module and address in its file.
    named: HashMap<(ModuleKey, u64), Option<Vec<Frame>>>,
}

/// A module as the symbolizer tells them apart: its path and build ID.
type ModuleKey = (String, Option<String>);

impl std::fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbolizer")
            .field("options", &self.options)
            .field("modules", &self.modules.len())
            .field("addresses", &self.named.len())
            .finish()
    }
}

impl Symbolizer {
    /// A symbolizer that looks for debug files as `options` say.
    pub fn new(options: SymbolizeOptions) -> Symbolizer {
        Symbolizer {
            options,
            modules: HashMap::new(),
            named: HashMap::new(),
        }
    }

    /// The frames of `address` in `module` (innermost first), or `None` when nothing names it;
    /// the module's note, if it is missing something, goes to `notes` once.
    fn frames(
        &mut self,
        module: &Module,
        address: u64,
        notes: &mut Vec<String>,
    ) -> Option<Vec<Frame>> {
        let key = (module.path.clone(), module.build_id.clone());
        let (names, note) = self.modules.entry(key.clone()).or_insert_with(|| {
            let mut note = None;
            let names = ModuleNames::open(module, &self.options, &mut note);
            (names, note)
        });
        if let Some(note) = note
            && !notes.contains(note)
        {
            notes.push(note.clone());
        }
        self.named
            .entry((key, address))
            .or_insert_with(|| names.frames(address))
            .clone()
    }

    /// Symbolizes a raw snapshot in place, as [`Snapshot::symbolize`] does.
    pub fn symbolize(&mut self, snapshot: &mut Snapshot) {
        let Some(raw) = snapshot.unsymbolized.take() else {
            return;
        };
        let mut notes = Vec::new();
        let mut frames: Vec<Frame> = Vec::new();
        let mut frame_ids: HashMap<Frame, u32> = HashMap::new();
        let mut intern = |frame: Frame| {
            *frame_ids.entry(frame).or_insert_with_key(|frame| {
                frames.push(frame.clone());
                frames.len() as u32 - 1
            })
        };
        let mut expanded: Vec<Vec<u32>> = Vec::with_capacity(snapshot.frames.len());
        for (frame, address) in snapshot.frames.iter().zip(&raw.addresses) {
            let Some(address) = *address else {
                expanded.push(vec![intern(frame.clone())]);
                continue;
            };
            let named = (address.module != NO_MODULE)
                .then(|| snapshot.modules.get(address.module as usize))
                .flatten()
                .and_then(|module| self.frames(module, address.address, &mut notes));
            let named = named
                .unwrap_or_else(|| vec![Frame::new(module_offset(&snapshot.modules, address))]);
            expanded.push(named.into_iter().map(&mut intern).collect());
        }
        let own_sources = raw.own_sources.as_deref();
        let own = |frame: &Frame| {
            frame.is_profiler()
                || own_sources
                    .zip(frame.file.as_deref())
                    .is_some_and(|(own, file)| file.starts_with(own))
        };
        let mut stacks: Vec<Stack> = Vec::new();
        let mut stack_ids: HashMap<Vec<u32>, u32> = HashMap::new();
        let new_stack: Vec<u32> = snapshot
            .stacks
            .iter()
            .map(|stack| {
                let ids: Vec<u32> = stack
                    .frames
                    .iter()
                    .flat_map(|&f| expanded[f as usize].iter().copied())
                    .skip_while(|&id| own(&frames[id as usize]))
                    .collect();
                *stack_ids.entry(ids).or_insert_with_key(|ids| {
                    stacks.push(Stack::new(ids.clone()));
                    stacks.len() as u32 - 1
                })
            })
            .collect();
        let mut sites: Vec<Site> = Vec::with_capacity(snapshot.sites.len());
        let mut site_ids: HashMap<(u32, u32, Option<String>), usize> = HashMap::new();
        for mut site in std::mem::take(&mut snapshot.sites) {
            site.stack = new_stack[site.stack as usize];
            let key = (site.stack, site.thread, site.label.clone());
            match site_ids.get(&key) {
                Some(&at) => add_site(&mut sites[at], &site),
                None => {
                    site_ids.insert(key, sites.len());
                    sites.push(site);
                }
            }
        }
        snapshot.frames = frames;
        snapshot.stacks = stacks;
        snapshot.sites = sites;
        snapshot.symbolization_notes = notes;
        snapshot.version = FORMAT_VERSION;
    }
}

/// Adds `from`'s counters to `into` (same stack, thread and label).
fn add_site(into: &mut Site, from: &Site) {
    into.live_bytes += from.live_bytes;
    into.live_blocks += from.live_blocks;
    into.total_bytes += from.total_bytes;
    into.total_blocks += from.total_blocks;
    into.peak_bytes += from.peak_bytes;
    into.peak_blocks += from.peak_blocks;
    into.temporary_blocks += from.temporary_blocks;
    into.reallocs += from.reallocs;
    into.realloc_copied_bytes += from.realloc_copied_bytes;
    into.lifetimes_us += from.lifetimes_us;
    into.max_bytes += from.max_bytes;
    into.max_blocks += from.max_blocks;
    if let Some(variance) = from.variance {
        into.variance = Some(into.variance.unwrap_or_default().plus(variance));
    }
}

/// Where the symbolized copy of raw snapshot `path` is cached: beside it, hidden
/// (`.NAME.symbolized.json`), so that a shell's `heap-*.json` does not list it.
///
/// ```
/// use std::path::Path;
/// use tracealloc_snapshot::symbolize::cache_path;
///
/// assert_eq!(
///     cache_path(Path::new("/tmp/heap-000001.json")),
///     Path::new("/tmp/.heap-000001.json.symbolized.json")
/// );
/// ```
pub fn cache_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.symbolized.json"))
}

/// How [`load_symbolized`] got its snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Provenance {
    /// The file was symbolized already.
    Symbolized,
    /// A raw file, symbolized now; the result cached at this path (`None`: it could not be
    /// written there, and the next read symbolizes again).
    SymbolizedNow(Option<PathBuf>),
    /// A raw file whose symbolized copy was read from this cache.
    Cached(PathBuf),
}

/// Loads a snapshot file; a raw one is symbolized (see [`Snapshot::symbolize`]) and the result
/// cached next to it, unless a cache from an earlier read is there and still fresh (not older than
/// the file, and the same snapshot). A cache whose symbolization missed debug info is not reused
/// when `options` names debug directories (they may have what was missing).
///
/// ```
/// use tracealloc_snapshot::symbolize::{self, Provenance, SymbolizeOptions, cache_path};
/// # fn raw_snapshot() -> tracealloc_snapshot::Snapshot {
/// #     use tracealloc_snapshot::*;
/// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
/// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
/// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
/// #     snapshot.modules.push(Module::new("/gone/app", None, 0, (0x1000, 0x9000, 0x1000)));
/// #     snapshot.frames = vec![Frame::new(""), Frame::new("")];
/// #     let addresses = [0x1234, 0x5678].map(|a| Some(RawAddress::new(0, a))).to_vec();
/// #     snapshot.unsymbolized = Some(Unsymbolized::new(addresses, None));
/// #     snapshot.stacks.push(Stack::new(vec![0, 1]));
/// #     let mut site = Site::new(0, 0);
/// #     (site.live_blocks, site.live_bytes) = (1, 1024);
/// #     (site.total_blocks, site.total_bytes) = (1, 1024);
/// #     snapshot.sites.push(site);
/// #     snapshot.totals = snapshot.site_sum();
/// #     snapshot
/// # }
///
/// let dir = std::env::temp_dir().join(format!("load-symbolized-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("heap-1.json");
/// raw_snapshot().save(&path)?;
/// let options = SymbolizeOptions::default();
///
/// // The first read symbolizes and caches; the next reads the cache.
/// let (first, how) = symbolize::load_symbolized(&path, &options)?;
/// assert_eq!(how, Provenance::SymbolizedNow(Some(cache_path(&path))));
/// let (again, how) = symbolize::load_symbolized(&path, &options)?;
/// assert_eq!(how, Provenance::Cached(cache_path(&path)));
/// assert_eq!((again.is_raw(), again.sites), (false, first.sites));
/// // A symbolized file is read as it is.
/// let (_, how) = symbolize::load_symbolized(&cache_path(&path), &options)?;
/// assert_eq!(how, Provenance::Symbolized);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load_symbolized(
    path: &Path,
    options: &SymbolizeOptions,
) -> Result<(Snapshot, Provenance), LoadError> {
    let mut snapshot = Snapshot::load(path)?;
    if !snapshot.is_raw() {
        return Ok((snapshot, Provenance::Symbolized));
    }
    let cache = cache_path(path);
    if let Some(cached) = fresh_cache(path, &cache, &snapshot, options) {
        return Ok((cached, Provenance::Cached(cache)));
    }
    snapshot.symbolize(options);
    let written = snapshot.save(&cache).is_ok().then_some(cache);
    Ok((snapshot, Provenance::SymbolizedNow(written)))
}

fn fresh_cache(
    path: &Path,
    cache: &Path,
    raw: &Snapshot,
    options: &SymbolizeOptions,
) -> Option<Snapshot> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(cache)? < modified(path)? {
        return None;
    }
    let cached = Snapshot::load(cache).ok()?;
    let same = !cached.is_raw()
        && cached.meta == raw.meta
        && cached.totals == raw.totals
        && cached.modules == raw.modules;
    let retry = !cached.symbolization_notes.is_empty() && !options.debug_dirs.is_empty();
    (same && !retry).then_some(cached)
}

/// Symbolizes the raw snapshot file at `path` and writes the result to `output` (`path` itself to
/// replace it). Returns the symbolized snapshot, whose notes say what could not be named (a file
/// symbolized already is written unchanged).
///
/// ```
/// use tracealloc_snapshot::Snapshot;
/// use tracealloc_snapshot::symbolize::{self, SymbolizeOptions};
/// # fn raw_snapshot() -> tracealloc_snapshot::Snapshot {
/// #     use tracealloc_snapshot::*;
/// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
/// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
/// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
/// #     snapshot.modules.push(Module::new("/gone/app", None, 0, (0x1000, 0x9000, 0x1000)));
/// #     snapshot.frames = vec![Frame::new(""), Frame::new("")];
/// #     let addresses = [0x1234, 0x5678].map(|a| Some(RawAddress::new(0, a))).to_vec();
/// #     snapshot.unsymbolized = Some(Unsymbolized::new(addresses, None));
/// #     snapshot.stacks.push(Stack::new(vec![0, 1]));
/// #     let mut site = Site::new(0, 0);
/// #     (site.live_blocks, site.live_bytes) = (1, 1024);
/// #     (site.total_blocks, site.total_bytes) = (1, 1024);
/// #     snapshot.sites.push(site);
/// #     snapshot.totals = snapshot.site_sum();
/// #     snapshot
/// # }
///
/// let dir = std::env::temp_dir().join(format!("symbolize-file-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let (path, output) = (dir.join("heap-1.json"), dir.join("heap-1.named.json"));
/// raw_snapshot().save(&path)?;
///
/// let named = symbolize::symbolize_file(&path, &output, &SymbolizeOptions::default())?;
/// assert!(!named.is_raw());
/// assert_eq!(Snapshot::load(&output)?, named); // what was written
/// assert!(Snapshot::load(&path)?.is_raw()); // the raw file, untouched
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn symbolize_file(
    path: &Path,
    output: &Path,
    options: &SymbolizeOptions,
) -> Result<Snapshot, SymbolizeFileError> {
    let mut snapshot = Snapshot::load(path)?;
    snapshot.symbolize(options);
    snapshot.save(output)?;
    // A cache of the raw file is stale once the file itself is symbolized in place.
    if output == path {
        let _ = std::fs::remove_file(cache_path(path));
    }
    Ok(snapshot)
}

/// Why [`symbolize_file`] failed: the file could not be read, or the result not written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SymbolizeFileError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Save(#[from] crate::SaveError),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raw sites that symbolize to one stack are one site: every figure summed, the sampled
    /// variances too (a line's big blocks and small ones can come by different raw paths).
    #[test]
    fn merged_sites_add_every_figure() {
        let mut big = Site::new(0, 0);
        (big.live_blocks, big.live_bytes) = (2000, 2 << 30);
        let mut variance = crate::Variance {
            live_bytes_kib: 100,
            ..crate::Variance::default()
        };
        big.variance = Some(variance);
        let mut small = Site::new(1, 0);
        (small.live_blocks, small.live_bytes) = (192_536, 3_080_568);
        variance.live_blocks = 788_529_152;
        small.variance = Some(variance);
        add_site(&mut big, &small);
        assert_eq!(
            (big.live_blocks, big.live_bytes),
            (194_536, (2 << 30) + 3_080_568)
        );
        let merged = big.variance.unwrap();
        assert_eq!(
            (merged.live_blocks, merged.live_bytes_kib),
            (788_529_152, 200)
        );
    }

    #[test]
    fn closures_have_one_spelling() {
        assert_eq!(
            crate::one_closure_spelling("a::{closure#12}::{closure#0}::b".into()),
            "a::{{closure}}::{{closure}}::b"
        );
        assert_eq!(
            crate::one_closure_spelling("odd::{closure#x}".into()),
            "odd::{closure#x}"
        );
    }

    #[test]
    fn cache_is_hidden_beside_the_file() {
        assert_eq!(
            cache_path(Path::new("/tmp/heap-000001.json")),
            Path::new("/tmp/.heap-000001.json.symbolized.json")
        );
    }

    #[test]
    fn debug_files_are_found_by_build_id() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".build-id/ab/cdef.debug");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"").unwrap();
        let options = SymbolizeOptions {
            debug_dirs: vec![dir.path().to_owned()],
        };
        assert_eq!(options.debug_file("abcdef"), Some(file));
        assert_eq!(options.debug_file("abcdee"), None);
    }
}
