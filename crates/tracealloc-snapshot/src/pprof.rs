//! Export to pprof's `profile.proto` (gzipped), as Go heap profiles have it: `go tool pprof`,
//! Pyroscope, speedscope and others read it. Sample types `alloc_objects/count, alloc_space/bytes,
//! inuse_objects/count, inuse_space/bytes`; the default is `inuse_space`. A location holds one
//! frame and the frames inlined into it (the last line is the outermost, as pprof wants). Stacks
//! start at the program's own allocating frame, as Go's start at the code that called the
//! allocator: the standard library's allocation internals are left out; and they end where every
//! view ends them, without the C library's entry points and std's start-up. One mapping, the
//! program's, says the locations are symbolized already. Each
//! sample carries a `thread` label, and a `label` one when the blocks were allocated under a task
//! label. Exact counts have period 1; a sampled profile's figures are the unbiased estimates and
//! its period is the mean sampling interval in bytes, as Go's heap profiles set it.
//!
//! Function names are Rust paths without their generic arguments
//! (`<F as core::ops::function::FnOnce>::call_once`, `alloc::vec::Vec::with_capacity`): see
//! [`readable_name`] for why pprof needs them so.

use std::collections::HashMap;
use std::io::Write;

use crate::Snapshot;
use crate::pprof_proto::{
    Function, Line, Location, Mapping, Strings, add_samples, profile_of, write_gzipped,
};

/// `function` without its generic arguments, as pprof shows a function: `Vec<T>::push` reads
/// `Vec::push`, `std::panic::catch_unwind::<main::{{closure}}, isize>` reads
/// `std::panic::catch_unwind`, `<alloc::alloc::Global>::alloc_impl` reads
/// `alloc::alloc::Global::alloc_impl`, and a trait method keeps its qualified self type and trait,
/// `<<Box<str> as From<&str>>::from as FnOnce<(&str,)>>::call_once` reading
/// `<<Box as From>::from as FnOnce>::call_once` (with full paths).
///
/// pprof simplifies a name it takes for demangled C++ (any name with `::`) when the profile gives
/// it as both the name and the system name, as Go's profiles do: it cuts every `<...>` and
/// `(...)`, so `<F as core::ops::function::FnOnce<()>>::call_once` read `::call_once` in
/// `go tool pprof -top`, and each closure's call glue looked the same. A profile whose name and
/// system name differ is taken as already simplified and shown as written: so the name is this
/// one, and the system name is left empty (the full names with their generic arguments, which
/// would make one row of each instantiation in pprof's tables, are in the snapshot).
///
/// ```
/// use tracealloc_snapshot::pprof::readable_name;
///
/// assert_eq!(readable_name("alloc::vec::Vec<T,A>::push"), "alloc::vec::Vec::push");
/// assert_eq!(
///     readable_name("std::panic::catch_unwind::<main::{{closure}}, isize>"),
///     "std::panic::catch_unwind"
/// );
/// let method = readable_name("<alloc::alloc::Global>::alloc_impl");
/// assert_eq!(method, "alloc::alloc::Global::alloc_impl");
/// assert_eq!(
///     readable_name("<F as core::ops::function::FnOnce<()>>::call_once"),
///     "<F as core::ops::function::FnOnce>::call_once"
/// );
/// ```
pub fn readable_name(function: &str) -> String {
    let mut out = String::with_capacity(function.len());
    // The output position of each open `<` that starts a qualified path (`<T as Trait>`, `<T>`,
    // `<impl [T]>`); generic arguments are skipped whole.
    let mut qualified: Vec<usize> = Vec::new();
    let mut rest = function;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("->") {
            out.push_str("->");
            rest = after;
            continue;
        }
        rest = &rest[c.len_utf8()..];
        match c {
            '<' => {
                let turbofish = out.ends_with("::") && !rest.starts_with("impl ");
                let after_name = out
                    .chars()
                    .next_back()
                    .is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '}');
                if turbofish || after_name {
                    if turbofish {
                        out.truncate(out.len() - 2);
                    }
                    rest = skip_generic_arguments(rest);
                } else {
                    qualified.push(out.len());
                    out.push('<');
                }
            }
            '>' => match qualified.pop() {
                // `<path>::` is `path::`; any other qualified path keeps its brackets.
                Some(open)
                    if out[open + 1..]
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == ':') =>
                {
                    out.remove(open);
                }
                _ => out.push('>'),
            },
            c => out.push(c),
        }
    }
    out
}

/// `rest` after the generic arguments it starts within (just past their opening `<`).
fn skip_generic_arguments(mut rest: &str) -> &str {
    let mut depth = 1;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("->") {
            rest = after;
            continue;
        }
        rest = &rest[c.len_utf8()..];
        match c {
            '<' => depth += 1,
            '>' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
    }
    rest
}

/// Writes `snapshot` as a gzipped pprof profile. A raw snapshot's has mappings (path, build ID)
/// and addresses instead of names, for the reader to symbolize (see `pprof_raw`).
///
/// ```
/// use std::io::Read;
/// # fn snapshot_of(lines: &[(&str, &str, u64, u64)]) -> tracealloc_snapshot::Snapshot {
/// #     use tracealloc_snapshot::*;
/// #     let capture = CaptureInfo::new("frame-pointers", 128, true);
/// #     let mut snapshot = Snapshot::new(Metadata::new(1, vec!["app".into()], capture));
/// #     snapshot.threads.push(ThreadInfo::new("main", 1, true));
/// #     for (i, &(function, at, live, total)) in lines.iter().enumerate() {
/// #         let (file, line) = at.split_once(':').unwrap();
/// #         snapshot.frames.push(Frame::new(function).at(file, line.parse().ok(), None));
/// #         snapshot.stacks.push(Stack::new(vec![i as u32]));
/// #         let mut site = Site::new(i as u32, 0);
/// #         (site.live_blocks, site.live_bytes) = (live, live * 1024);
/// #         (site.total_blocks, site.total_bytes) = (total, total * 1024);
/// #         snapshot.sites.push(site);
/// #     }
/// #     snapshot.totals = snapshot.site_sum();
/// #     snapshot
/// # }
///
/// let snapshot = snapshot_of(&[("app::cache", "src/cache.rs:12", 4, 4)]);
/// let mut profile = Vec::new(); // `go tool pprof` reads it from a file or an HTTP response
/// tracealloc_snapshot::pprof::pprof(&snapshot, &mut profile)?;
/// assert_eq!(profile[..2], [0x1f, 0x8b]); // gzip
/// // Inside, a profile.proto message: its string table names the sample types and the frames.
/// let mut message = Vec::new();
/// flate2::read::GzDecoder::new(profile.as_slice()).read_to_end(&mut message)?;
/// let strings = String::from_utf8_lossy(&message);
/// for name in ["inuse_space", "alloc_objects", "app::cache", "src/cache.rs", "main"] {
///     assert!(strings.contains(name), "{name}");
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn pprof(snapshot: &Snapshot, out: &mut dyn Write) -> std::io::Result<()> {
    if snapshot.is_raw() {
        return crate::pprof_raw::pprof_raw(snapshot, out);
    }
    let mut strings = Strings::new();
    let comment = format!(
        "tracealloc {} snapshot of pid {}: {}",
        snapshot.meta.tracealloc_version,
        snapshot.meta.pid,
        snapshot.meta.command.join(" ")
    );
    let mut profile = profile_of(snapshot, &mut strings, &comment);
    // One mapping, the program's, saying every location is symbolized already: without it,
    // `go tool pprof` opens with "Main binary filename not available."
    // The program's module (the first module may be the C library), else its command.
    let command = snapshot.meta.command.first().map(String::as_str);
    let file_name = |path: &str| path.rsplit('/').next().map(str::to_owned);
    let program = snapshot
        .modules
        .iter()
        .map(|module| module.path.as_str())
        .find(|path| command.is_some_and(|c| file_name(path) == file_name(c)))
        .or(command)
        .unwrap_or_default();
    profile.mapping.push(Mapping {
        id: 1,
        memory_limit: u64::MAX,
        filename: strings.id(program),
        has_functions: true,
        has_filenames: true,
        has_line_numbers: true,
        has_inline_frames: true,
        ..Mapping::default()
    });

    // Functions by (readable name, file): the instantiations of a generic function are one;
    // locations by the run of frame ids they hold.
    let mut functions: HashMap<(String, String), u64> = HashMap::new();
    let mut locations: HashMap<Vec<u32>, u64> = HashMap::new();
    let mut stack_locations: Vec<Vec<u64>> = Vec::with_capacity(snapshot.stacks.len());
    for stack in &snapshot.stacks {
        let mut ids = Vec::new();
        let mut run: Vec<u32> = Vec::new();
        // As Go's heap profiles start at the code that allocated (the runtime's allocation frames
        // left out), a stack starts at the first frame outside the standard library, so that
        // `-top` ranks the program's own functions (a stack all inside std starts past its
        // allocation internals).
        // Its root is trimmed as every view trims it (the C library's entry points, std's
        // start-up glue, the profiler's wrappers: `Snapshot::readable_frames`).
        let mut own = snapshot.readable_frames(stack, false);
        own.reverse();
        let user = own
            .iter()
            .position(|&f| !snapshot.frames[f as usize].is_runtime())
            .unwrap_or(0);
        let frames = own[user..].iter();
        let last = frames.len();
        for (i, &f) in frames.enumerate() {
            run.push(f);
            // Inlined into the next frame: the same location. (The outermost frame kept may be
            // inlined into one the stack's trimming left out, as a thread's closure is into std's
            // `__rust_begin_short_backtrace`: it ends its location all the same.)
            if snapshot.frames[f as usize].inlined && i + 1 < last {
                continue;
            }
            let next_id = locations.len() as u64 + 1;
            let id = *locations.entry(run.clone()).or_insert_with(|| {
                let lines = run
                    .iter()
                    .map(|&f| {
                        let frame = &snapshot.frames[f as usize];
                        let file = frame.file.clone().unwrap_or_default();
                        let key = (readable_name(&frame.function), file.clone());
                        let next_fn = functions.len() as u64 + 1;
                        let function_id = *functions.entry(key).or_insert_with_key(|key| {
                            profile.function.push(Function {
                                id: next_fn,
                                name: strings.id(&key.0),
                                // Empty, so that pprof shows the name as it is (see
                                // `readable_name`).
                                system_name: 0,
                                filename: strings.id(&file),
                            });
                            next_fn
                        });
                        Line {
                            function_id,
                            line: i64::from(frame.line.unwrap_or(0)),
                            column: i64::from(frame.column.unwrap_or(0)),
                        }
                    })
                    .collect();
                profile.location.push(Location {
                    id: next_id,
                    mapping_id: 1,
                    line: lines,
                    ..Location::default()
                });
                next_id
            });
            ids.push(id);
            run.clear();
        }
        stack_locations.push(ids);
    }
    add_samples(&mut profile, &mut strings, snapshot, |stack| {
        stack_locations[stack as usize].clone()
    });
    write_gzipped(profile, strings, out)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use prost::Message;

    use super::*;
    use crate::pprof_proto::Profile;

    #[test]
    fn profile_decodes_with_exact_values_and_inlined_lines() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cli/tests/data/new.json");
        let snapshot = Snapshot::load(path).unwrap();
        let mut gz = Vec::new();
        pprof(&snapshot, &mut gz).unwrap();
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut raw)
            .unwrap();
        let profile = Profile::decode(&raw[..]).unwrap();
        let names: Vec<&str> = profile
            .sample_type
            .iter()
            .map(|t| profile.string_table[t.r#type as usize].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "alloc_objects",
                "alloc_space",
                "inuse_objects",
                "inuse_space"
            ]
        );
        let sums = snapshot.site_sum();
        let column = |i: usize| {
            profile
                .sample
                .iter()
                .map(|s| s.value[i] as u64)
                .sum::<u64>()
        };
        assert_eq!(
            (column(0), column(1), column(2), column(3)),
            (
                sums.total_blocks,
                sums.total_bytes,
                sums.live_blocks,
                sums.live_bytes
            )
        );
        // Every sample has its stack, a thread's closure (inlined into std's frame that the
        // trimming leaves out) included.
        assert!(profile.sample.iter().all(|s| !s.location_id.is_empty()));
        // A location holds a frame and those inlined into it: as many lines as frames in all,
        // from the program's allocating frame to the root below std's start-up.
        let frames_in_stacks: usize = snapshot.stacks.iter().map(|s| s.frames.len()).sum();
        let kept = snapshot.readable_frames(&snapshot.stacks[0], false);
        // (A stack all inside std keeps them all.)
        let leaf_runtime = kept
            .iter()
            .rev()
            .position(|&f| !snapshot.frames[f as usize].is_runtime())
            .unwrap_or(0);
        let (first, _) = profile
            .sample
            .iter()
            .zip(&snapshot.sites)
            .find(|(_, site)| site.stack == 0)
            .unwrap();
        let lines_in_samples: usize = first
            .location_id
            .iter()
            .map(|&id| profile.location[id as usize - 1].line.len())
            .sum();
        assert_eq!(lines_in_samples, kept.len() - leaf_runtime);
        assert!(lines_in_samples < snapshot.stacks[0].frames.len());
        assert!(frames_in_stacks > 0);
        let leak = profile
            .function
            .iter()
            .any(|f| profile.string_table[f.name as usize] == "leak_diff::leak");
        assert!(leak, "the leaking function is named");
        // Readable names, none of which pprof cuts down: no system name to re-demangle.
        let names: std::collections::BTreeSet<&str> = profile
            .function
            .iter()
            .map(|f| profile.string_table[f.name as usize].as_str())
            .collect();
        for name in [
            "std::panic::catch_unwind",
            "std::rt::lang_start_internal::{{closure}}",
            "leak_diff::main::{{closure}}",
        ] {
            assert!(names.contains(name), "{name} in {names:#?}");
        }
        // std's start-up glue under the program's `main` is left out, as in every view.
        assert!(
            !names
                .iter()
                .any(|n| n.contains("as core::ops::function::FnOnce>::call_once"))
        );
        assert!(names.iter().all(|n| !n.starts_with("::")), "{names:#?}");
        assert!(profile.function.iter().all(|f| f.system_name == 0));
        // One mapping, the program's, marked as symbolized, which every location is in.
        let [mapping] = profile.mapping.as_slice() else {
            panic!("{:#?}", profile.mapping)
        };
        assert!(mapping.has_functions && mapping.has_line_numbers && mapping.has_inline_frames);
        assert!(!profile.string_table[mapping.filename as usize].is_empty());
        assert!(profile.location.iter().all(|l| l.mapping_id == 1));
    }

    /// Generic arguments go, turbofish and all; qualified paths keep their self type and trait;
    /// `<path>::` is `path::`.
    #[test]
    fn names_lose_their_generic_arguments_and_keep_their_trait() {
        let cases = [
            ("leak_diff::main", "leak_diff::main"),
            (
                "leak_diff::main::{{closure}}",
                "leak_diff::main::{{closure}}",
            ),
            (
                "alloc::vec::Vec<T>::with_capacity",
                "alloc::vec::Vec::with_capacity",
            ),
            (
                "std::panic::catch_unwind::<std::rt::lang_start_internal::{{closure}}, isize>",
                "std::panic::catch_unwind",
            ),
            (
                "<alloc::alloc::Global>::alloc_impl",
                "alloc::alloc::Global::alloc_impl",
            ),
            (
                "<alloc::alloc::Global as core::alloc::Allocator>::allocate",
                "<alloc::alloc::Global as core::alloc::Allocator>::allocate",
            ),
            (
                "<<alloc::boxed::Box<str> as core::convert::From<&str>>::from as \
                 core::ops::function::FnOnce<(&str,)>>::call_once",
                "<<alloc::boxed::Box as core::convert::From>::from as \
                 core::ops::function::FnOnce>::call_once",
            ),
            (
                "<fn() -> core::result::Result<(), alloc::string::String> as \
                 core::ops::function::FnOnce<()>>::call_once",
                "<fn() -> core::result::Result as core::ops::function::FnOnce>::call_once",
            ),
            (
                "<&dyn core::ops::function::Fn<(), Output = i32> + core::marker::Sync as \
                 core::ops::function::FnOnce<()>>::call_once",
                "<&dyn core::ops::function::Fn + core::marker::Sync as \
                 core::ops::function::FnOnce>::call_once",
            ),
            (
                "<u8 as <[_]>::to_vec_in::ConvertVec>::to_vec::<alloc::alloc::Global>",
                "<u8 as <[_]>::to_vec_in::ConvertVec>::to_vec",
            ),
            (
                "<[u8]>::to_vec_in::<alloc::alloc::Global>",
                "<[u8]>::to_vec_in",
            ),
            (
                "alloc::slice::<impl [T]>::to_vec",
                "alloc::slice::<impl [T]>::to_vec",
            ),
            (
                "<core::option::Option<&str>>::map::<alloc::boxed::Box<str>, \
                 <alloc::boxed::Box<str> as core::convert::From<&str>>::from>",
                "core::option::Option::map",
            ),
            (
                "<alloc::collections::btree::node::NodeRef<alloc::collections::btree::node::\
                 marker::Owned, usize, u8, alloc::collections::btree::node::marker::Leaf>>::\
                 new_leaf::<alloc::alloc::Global>",
                "alloc::collections::btree::node::NodeRef::new_leaf",
            ),
        ];
        for (function, readable) in cases {
            assert_eq!(readable_name(function), readable, "{function}");
        }
    }
}
