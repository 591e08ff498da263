//! Frames in the C library, named from its symbol table instead of its debug info.
//!
//! Every stack ends in the C library (`__libc_start_call_main`, `start_thread`, `clone3`), so
//! every snapshot resolves a few of its addresses. Where the distribution installed the library's
//! separate debug info (Debian's `libc6-dbg`), the symbolizer would load and decompress all of it for
//! those few names: about 70 ms of a snapshot here, for file:line pairs of the C library's own
//! sources that nobody reads in a heap profile. Its symbol table names the same functions, local
//! ones too when the debug file is there.

use std::ffi::{CStr, c_void};

use object::{Object, ObjectSymbol, SymbolKind};

/// The C library as loaded in this process; its function symbols read at the first lookup.
pub(crate) struct CLibrary {
    path: String,
    base: usize,
    /// (start, size, name), relative to `base`, sorted by start.
    functions: Option<Vec<(u64, u64, String)>>,
}

impl CLibrary {
    /// The C library of this process (the object that defines `malloc`), if it is a shared
    /// object apart from the executable.
    pub(crate) fn find() -> Option<CLibrary> {
        let (path, base) = object_of(libc::malloc as *const c_void as usize)?;
        // An executable linked statically, or that takes `malloc`'s address through a stub of its
        // own, would be taken for the C library: its own frames must not be named this way.
        let (_, own_base) = object_of(CLibrary::find as fn() -> Option<CLibrary> as usize)?;
        let file_name = std::path::Path::new(&path).file_name()?.to_string_lossy();
        (base != own_base && file_name.starts_with("libc")).then_some(CLibrary {
            path,
            base,
            functions: None,
        })
    }

    /// Whether `address` lies in the C library.
    pub(crate) fn contains(&self, address: usize) -> bool {
        object_of(address).is_some_and(|(_, base)| base == self.base)
    }

    /// The function that return address `address` (in the C library) returns into, if its
    /// symbol table has one there.
    pub(crate) fn function(&mut self, address: usize) -> Option<&str> {
        let base = self.base;
        let functions = self
            .functions
            .get_or_insert_with(|| read_functions(&self.path).unwrap_or_default());
        // The call instruction, just before the return address.
        let offset = address.checked_sub(base)?.checked_sub(1)? as u64;
        let at = functions
            .partition_point(|f| f.0 <= offset)
            .checked_sub(1)?;
        let (start, size, name) = &functions[at];
        (*size == 0 || offset < start + size).then_some(name.as_str())
    }
}

/// The function symbols of the library at `path`: from its separate debug file when one is
/// installed (local functions included), else its dynamic symbol table; sorted by address.
fn read_functions(path: &str) -> Option<Vec<(u64, u64, String)>> {
    let data = std::fs::read(path).ok()?;
    let file = object::File::parse(&*data).ok()?;
    let debug_data = file
        .build_id()
        .ok()
        .flatten()
        .and_then(|id| std::fs::read(debug_file_path(id)?).ok());
    let mut functions = match debug_data.as_deref().map(object::File::parse) {
        Some(Ok(debug)) if debug.symbols().next().is_some() => functions(debug.symbols()),
        _ => functions(file.dynamic_symbols()),
    };
    functions.sort_unstable_by_key(|f| f.0);
    Some(functions)
}

/// The path and load address of the object that holds `address`, from the dynamic linker.
fn object_of(address: usize) -> Option<(String, usize)> {
    let mut info = libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    // SAFETY: dladdr only reads the address (it need not point to anything) and fills `info`.
    if unsafe { libc::dladdr(address as *const c_void, &mut info) } == 0 || info.dli_fname.is_null()
    {
        return None;
    }
    // SAFETY: dladdr succeeded: `dli_fname` is a NUL-terminated path owned by the dynamic linker,
    // valid while the object stays loaded (the C library always does).
    let path = unsafe { CStr::from_ptr(info.dli_fname) };
    Some((path.to_string_lossy().into_owned(), info.dli_fbase as usize))
}

/// Where a separate debug file with this build id is installed, if it is.
fn debug_file_path(build_id: &[u8]) -> Option<std::path::PathBuf> {
    let (first, rest) = build_id.split_first()?;
    let rest: String = rest.iter().map(|b| format!("{b:02x}")).collect();
    let path = format!("/usr/lib/debug/.build-id/{first:02x}/{rest}.debug");
    std::path::Path::new(&path).exists().then(|| path.into())
}

/// The named function symbols among `symbols`.
fn functions<'data>(
    symbols: impl Iterator<Item = impl ObjectSymbol<'data>>,
) -> Vec<(u64, u64, String)> {
    symbols
        .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
        .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_owned())))
        .filter(|(_, _, name)| !name.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The C library is found and names its own exported functions, whichever table it read; our
    /// own code is not taken for it.
    #[test]
    fn names_functions_of_the_c_library() {
        let mut library = CLibrary::find().expect("the C library");
        // A return address inside `malloc` (past its first instruction).
        let inside_malloc = libc::malloc as *const c_void as usize + 2;
        assert!(library.contains(inside_malloc));
        let name = library.function(inside_malloc).map(str::to_owned);
        assert!(
            name.as_deref().is_some_and(|n| n.contains("malloc")),
            "{name:?}"
        );
        let ours = names_functions_of_the_c_library as fn() as usize + 2;
        assert!(!library.contains(ours));
    }
}
