//! The process's loaded modules (the executable and its shared libraries), for raw snapshots:
//! each one's path, build ID, load bias and executable segment, from the dynamic linker's list
//! (`dl_iterate_phdr`), so that a return address can be written as a module and an address in its
//! file, the same in every run whatever the load address, and symbolized later from the file or
//! its debug file. Reads the program headers and build-ID notes in memory: no file is opened.
//! Runs in snapshots, under the reentrancy guard.

use std::ffi::{CStr, c_int, c_void};

use tracealloc_snapshot::{Module, NO_MODULE, RawAddress};

/// The ELF note type of a GNU build ID.
const NT_GNU_BUILD_ID: u32 = 3;

/// A loaded module: what the snapshot records, and its executable segments in the process.
pub(crate) struct Loaded {
    pub(crate) module: Module,
    /// `[start, end)` in the process, of each executable `PT_LOAD` segment.
    segments: Vec<(usize, usize)>,
}

/// The loaded modules, sorted by their first executable segment.
pub(crate) struct Modules {
    loaded: Vec<Loaded>,
    /// `(start, end, index into loaded)` of every executable segment, sorted by start.
    segments: Vec<(usize, usize, u32)>,
    /// The modules an address was looked up in, in the order first met: their index in the
    /// snapshot's module table.
    used: Vec<Option<u32>>,
    order: Vec<u32>,
}

impl Modules {
    /// The modules loaded now.
    pub(crate) fn read() -> Modules {
        let mut loaded: Vec<Loaded> = Vec::new();
        // SAFETY: the callback is an `extern "C"` function that never unwinds (it catches panics)
        // and receives `loaded`, a live `Vec<Loaded>` borrowed for the call's duration only. The
        // dynamic linker's lock is held meanwhile: the callback allocates (through the inner
        // allocator: snapshots run under the reentrancy guard), which never takes that lock.
        unsafe {
            libc::dl_iterate_phdr(Some(each_module), (&raw mut loaded).cast());
        }
        let mut segments: Vec<(usize, usize, u32)> = loaded
            .iter()
            .enumerate()
            .flat_map(|(i, l)| l.segments.iter().map(move |&(s, e)| (s, e, i as u32)))
            .collect();
        segments.sort_unstable();
        let used = vec![None; loaded.len()];
        Modules {
            loaded,
            segments,
            used,
            order: Vec::new(),
        }
    }

    /// Return address `address` as a module and an address in its file; the module is numbered
    /// in the snapshot's table at its first use.
    pub(crate) fn raw(&mut self, address: usize) -> RawAddress {
        let at = self
            .segments
            .partition_point(|&(start, _, _)| start <= address);
        let found = at
            .checked_sub(1)
            .map(|i| self.segments[i])
            .filter(|&(_, end, _)| address < end);
        let Some((_, _, module)) = found else {
            return RawAddress::new(NO_MODULE, address as u64);
        };
        let index = *self.used[module as usize].get_or_insert_with(|| {
            self.order.push(module);
            self.order.len() as u32 - 1
        });
        let bias = self.loaded[module as usize].module.load_bias;
        RawAddress::new(index, (address as u64).wrapping_sub(bias))
    }

    /// Whether `address` lies in the C library, where every thread's stack starts.
    pub(crate) fn in_c_library(&self, address: usize) -> bool {
        let at = self
            .segments
            .partition_point(|&(start, _, _)| start <= address);
        at.checked_sub(1)
            .map(|i| self.segments[i])
            .filter(|&(_, end, _)| address < end)
            .is_some_and(|(_, _, module)| {
                let name = self.loaded[module as usize].module.file_name();
                name.starts_with("libc.so") || name.starts_with("libc-")
            })
    }

    /// The modules used, in the order of their indices.
    pub(crate) fn into_used(mut self) -> Vec<Module> {
        let mut modules: Vec<Option<Module>> = self
            .loaded
            .drain(..)
            .map(|loaded| Some(loaded.module))
            .collect();
        self.order
            .iter()
            .filter_map(|&m| modules[m as usize].take())
            .collect()
    }
}

/// `dl_iterate_phdr`'s callback: records one module into the `Vec<Loaded>` behind `data`.
extern "C" fn each_module(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> c_int {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: the dynamic linker passes a valid `dl_phdr_info` for the call's duration, and
        // `data` is the `Vec<Loaded>` that `Modules::read` lent (no other reference to it exists
        // meanwhile).
        let (info, loaded) = unsafe { (&*info, &mut *data.cast::<Vec<Loaded>>()) };
        if let Some(module) = module_of(info) {
            loaded.push(module);
        }
    });
    0
}

fn module_of(info: &libc::dl_phdr_info) -> Option<Loaded> {
    if info.dlpi_phdr.is_null() {
        return None;
    }
    // SAFETY: `dlpi_phdr` points to the module's `dlpi_phnum` program headers, mapped for as long
    // as the module is loaded (at least this call).
    let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
    let bias = info.dlpi_addr as usize;
    let executable: Vec<&libc::Elf64_Phdr> = headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_X != 0)
        .collect();
    let first = executable.first()?;
    let segments = executable
        .iter()
        .map(|h| {
            let start = bias.wrapping_add(h.p_vaddr as usize);
            (start, start.wrapping_add(h.p_memsz as usize))
        })
        .collect();
    let name = if info.dlpi_name.is_null() {
        String::new()
    } else {
        // SAFETY: a NUL-terminated string owned by the dynamic linker, valid during the call.
        unsafe { CStr::from_ptr(info.dlpi_name) }
            .to_string_lossy()
            .into_owned()
    };
    // The executable has an empty name; the vDSO a name that is no file.
    let path = if name.is_empty() {
        std::fs::read_link("/proc/self/exe")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        name
    };
    let build_id = headers
        .iter()
        .filter(|h| h.p_type == libc::PT_NOTE)
        .find_map(|h| {
            let start = bias.wrapping_add(h.p_vaddr as usize);
            // SAFETY: a PT_NOTE segment lies within a loaded segment of the module (the linker
            // puts `.note.*` sections in the first PT_LOAD), mapped readable while it is loaded.
            let notes =
                unsafe { std::slice::from_raw_parts(start as *const u8, h.p_memsz as usize) };
            gnu_build_id(notes)
        });
    let start = bias.wrapping_add(first.p_vaddr as usize) as u64;
    let module = Module::new(
        path,
        build_id,
        bias as u64,
        (start, start + first.p_memsz, first.p_offset),
    );
    Some(Loaded { module, segments })
}

/// The GNU build ID among the ELF notes `notes`, in hexadecimal.
fn gnu_build_id(mut notes: &[u8]) -> Option<String> {
    let word = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let align4 = |n: usize| (n + 3) & !3;
    while notes.len() >= 12 {
        let (name_size, desc_size, kind) = (
            word(notes, 0)? as usize,
            word(notes, 4)? as usize,
            word(notes, 8)?,
        );
        let desc_at = 12 + align4(name_size);
        let next = desc_at + align4(desc_size);
        let name = notes.get(12..12 + name_size)?;
        let desc = notes.get(desc_at..desc_at + desc_size)?;
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" {
            return Some(desc.iter().map(|b| format!("{b:02x}")).collect());
        }
        notes = notes.get(next..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test binary is found, with its build ID (the one `object` reads from the file), and an
    /// address of its code maps to the address in its file.
    #[test]
    fn the_executable_is_a_module_with_its_build_id() {
        let mut modules = Modules::read();
        let here = the_executable_is_a_module_with_its_build_id as fn() as usize;
        let raw = modules.raw(here);
        assert_eq!(raw.module, 0);
        let used = modules.into_used();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(used[0].path, exe.to_string_lossy());
        let data = std::fs::read(&exe).unwrap();
        use object::Object;
        let file = object::File::parse(&*data).unwrap();
        let expected: Option<String> = file
            .build_id()
            .unwrap()
            .map(|id| id.iter().map(|b| format!("{b:02x}")).collect());
        assert!(expected.is_some(), "rustc links with a build ID");
        assert_eq!(used[0].build_id, expected);
        // The address in the file lies in the executable's text.
        let text = file.section_by_name(".text").unwrap();
        use object::ObjectSection;
        assert!((text.address()..text.address() + text.size()).contains(&raw.address));
    }

    #[test]
    fn notes_are_parsed() {
        let mut notes = Vec::new();
        for (name, kind, desc) in [
            (&b"XYZ\0"[..], 1u32, &[1u8, 2, 3][..]),
            (b"GNU\0", 3, &[0xab, 0xcd]),
        ] {
            notes.extend((name.len() as u32).to_ne_bytes());
            notes.extend((desc.len() as u32).to_ne_bytes());
            notes.extend(kind.to_ne_bytes());
            notes.extend(name);
            notes.extend(desc);
            while notes.len() % 4 != 0 {
                notes.push(0);
            }
        }
        assert_eq!(gnu_build_id(&notes).as_deref(), Some("abcd"));
        assert_eq!(gnu_build_id(&notes[..20]), None);
    }
}
