//! Raw (unsymbolized) snapshots: return addresses and the modules they lie in, as pprof's mappings
//! and Linux perf record them, to be symbolized later and elsewhere (`tracealloc` reads the binary,
//! or its debug file found by build ID).
//!
//! A raw snapshot has the same tables as a symbolized one, and one thing more: for each entry of
//! [`Snapshot::frames`](crate::Snapshot::frames), its return address ([`Unsymbolized::addresses`]).
//! Its frames have no names yet (a marker frame such as `[truncated]` keeps its own), and its
//! stacks still hold the profiler's own frames at their innermost end: the symbolizer drops them,
//! then merges the sites that become one. Such a file is written as format version
//! [`RAW_FORMAT_VERSION`], which older readers refuse rather than misread.

use serde::{Deserialize, Serialize};

/// The format version of raw snapshots; symbolized ones keep [`crate::FORMAT_VERSION`].
pub const RAW_FORMAT_VERSION: u32 = 2;

/// An object file mapped into the profiled process (the executable, a shared library).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Module {
    /// Its path when the snapshot was taken (the executable's as `/proc/self/exe` names it).
    pub path: String,
    /// Its GNU build ID, in hexadecimal (`readelf -n`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// The load bias: an address in the file (an ELF virtual address) plus this is its address
    /// in the process.
    pub load_bias: u64,
    /// Its executable segment in the process, `[start, end)`, and that segment's offset in the
    /// file: pprof's `memory_start`, `memory_limit` and `file_offset`.
    pub start: u64,
    pub end: u64,
    pub file_offset: u64,
}

impl Module {
    /// A module at `path` loaded with bias `load_bias`, its executable segment `[start, end)` at
    /// `file_offset` in the file.
    ///
    /// ```
    /// use tracealloc_snapshot::Module;
    ///
    /// // libc, loaded at 0x7f00_0000_0000, its executable segment at offset 0x28000 in the file.
    /// let libc = Module::new(
    ///     "/usr/lib/x86_64-linux-gnu/libc.so.6",
    ///     Some("c289da5071a3399de893d2af81d6a30c62646e1e".into()),
    ///     0x7f00_0000_0000,
    ///     (0x7f00_0002_8000, 0x7f00_001b_d000, 0x28000),
    /// );
    /// assert_eq!((libc.start, libc.end), (0x7f00_0002_8000, 0x7f00_001b_d000));
    /// assert_eq!((libc.load_bias, libc.file_offset), (0x7f00_0000_0000, 0x28000));
    /// ```
    pub fn new(
        path: impl Into<String>,
        build_id: Option<String>,
        load_bias: u64,
        (start, end, file_offset): (u64, u64, u64),
    ) -> Module {
        Module {
            path: path.into(),
            build_id,
            load_bias,
            start,
            end,
            file_offset,
        }
    }

    /// The file name of its path (`libc.so.6`), for names such as `libc.so.6+0x29d8f`.
    ///
    /// ```
    /// use tracealloc_snapshot::Module;
    ///
    /// let libc = Module::new("/usr/lib/x86_64-linux-gnu/libc.so.6", None, 0, (0, 0x1000, 0));
    /// assert_eq!(libc.file_name(), "libc.so.6");
    /// ```
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// Where a raw frame returns to: an address in a module's file (its ELF virtual address, the
/// same in every run whatever the load address), the return address itself (the symbolizer looks
/// up the call instruction just before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RawAddress {
    /// Index into [`crate::Snapshot::modules`]; `u32::MAX` when the address lay in no module
    /// (then `address` is the address in the process).
    #[serde(rename = "m")]
    pub module: u32,
    #[serde(rename = "a")]
    pub address: u64,
}

/// No module (see [`RawAddress::module`]).
pub const NO_MODULE: u32 = u32::MAX;

impl RawAddress {
    ///
    /// ```
    /// use tracealloc_snapshot::{NO_MODULE, RawAddress};
    ///
    /// let in_libc = RawAddress::new(0, 0x29d8f); // in module 0's file
    /// let anonymous = RawAddress::new(NO_MODULE, 0x7f12_3456_7000); // in no module: as is
    /// assert_eq!((in_libc.module, in_libc.address), (0, 0x29d8f));
    /// assert_eq!(anonymous.module, u32::MAX);
    /// ```
    pub fn new(module: u32, address: u64) -> RawAddress {
        RawAddress { module, address }
    }
}

/// What a raw snapshot holds beyond a symbolized one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Unsymbolized {
    /// For each entry of `frames`, its return address; `None` for a marker frame
    /// (`[truncated]`, `[other stacks]`), which keeps its name.
    pub addresses: Vec<Option<RawAddress>>,
    /// The profiler's sources as its debug info names them: frames there, at the innermost end of
    /// a stack, are the profiler's own and are dropped once symbolized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_sources: Option<String>,
}

impl Unsymbolized {
    ///
    /// ```
    /// use tracealloc_snapshot::{Frame, RawAddress, Unsymbolized, TRUNCATED_FRAME};
    ///
    /// // Two frames: an address in module 0, and the `[truncated]` marker, which keeps its name.
    /// let frames = [Frame::new(""), Frame::new(TRUNCATED_FRAME)];
    /// let raw = Unsymbolized::new(vec![Some(RawAddress::new(0, 0x1234)), None], None);
    /// assert_eq!(raw.addresses.len(), frames.len());
    /// assert!(raw.own_sources.is_none());
    /// ```
    pub fn new(addresses: Vec<Option<RawAddress>>, own_sources: Option<String>) -> Unsymbolized {
        Unsymbolized {
            addresses,
            own_sources,
        }
    }
}

impl crate::Snapshot {
    /// Whether this snapshot still has to be symbolized (it holds return addresses, not names).
    ///
    /// ```
    /// use tracealloc_snapshot::{Snapshot, Unsymbolized};
    ///
    /// let mut snapshot = Snapshot::empty();
    /// assert!(!snapshot.is_raw()); // symbolized (here, with nothing to name)
    /// snapshot.unsymbolized = Some(Unsymbolized::new(Vec::new(), None));
    /// assert!(snapshot.is_raw());
    /// ```
    pub fn is_raw(&self) -> bool {
        self.unsymbolized.is_some()
    }

    /// Checks the raw tables' indices (called by the loader).
    pub(crate) fn validate_raw(&self) -> Result<(), String> {
        let Some(raw) = &self.unsymbolized else {
            return Ok(());
        };
        if raw.addresses.len() != self.frames.len() {
            return Err(format!(
                "{} frames but {} raw addresses",
                self.frames.len(),
                raw.addresses.len()
            ));
        }
        let modules = self.modules.len();
        if let Some(a) = raw
            .addresses
            .iter()
            .flatten()
            .find(|a| a.module != NO_MODULE && a.module as usize >= modules)
        {
            return Err(format!(
                "a raw address names module {}, but there are {modules} modules",
                a.module
            ));
        }
        Ok(())
    }
}
