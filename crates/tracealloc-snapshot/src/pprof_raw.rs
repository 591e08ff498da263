//! pprof's `profile.proto` of a raw snapshot: each location an address in a mapping (the module's
//! path, build ID, address range and file offset), without names, as Linux perf and Go's own
//! unsymbolized profiles have them: `go tool pprof` symbolizes it from the binary (or
//! `$PPROF_BINARY_PATH`), Parca and Pyroscope from their debuginfo stores by build ID. The sample
//! types, labels, period and comments are those of [`crate::pprof::pprof`].

use std::io::Write;

use crate::Snapshot;
use crate::pprof_proto::{
    Function, Line, Location, Mapping, Strings, add_samples, profile_of, write_gzipped,
};
use crate::raw::NO_MODULE;

/// Writes raw snapshot `snapshot` as a gzipped pprof profile with mappings (see the module's
/// comment). A marker frame (`[truncated]`) is a location with a function name and no address.
pub(crate) fn pprof_raw(snapshot: &Snapshot, out: &mut dyn Write) -> std::io::Result<()> {
    let Some(raw) = &snapshot.unsymbolized else {
        return Err(std::io::Error::other("not a raw snapshot"));
    };
    let mut strings = Strings::new();
    let comment = format!(
        "tracealloc {} raw snapshot of pid {}: {} (unsymbolized: addresses in mappings)",
        snapshot.meta.tracealloc_version,
        snapshot.meta.pid,
        snapshot.meta.command.join(" ")
    );
    let mut profile = profile_of(snapshot, &mut strings, &comment);
    for (i, module) in snapshot.modules.iter().enumerate() {
        profile.mapping.push(Mapping {
            id: i as u64 + 1,
            memory_start: module.start,
            memory_limit: module.end,
            file_offset: module.file_offset,
            filename: strings.id(&module.path),
            build_id: strings.id(module.build_id.as_deref().unwrap_or_default()),
            ..Mapping::default()
        });
    }
    // One location per frame of the table.
    for (i, (frame, address)) in snapshot.frames.iter().zip(&raw.addresses).enumerate() {
        let id = i as u64 + 1;
        let location = match address {
            Some(a) if a.module != NO_MODULE => {
                let module = &snapshot.modules[a.module as usize];
                Location {
                    id,
                    mapping_id: u64::from(a.module) + 1,
                    // The call instruction, in the process's address space as the mapping has
                    // it (one byte before the return address).
                    address: module.load_bias.wrapping_add(a.address).wrapping_sub(1),
                    line: Vec::new(),
                }
            }
            Some(a) => Location {
                id,
                mapping_id: 0,
                address: a.address.wrapping_sub(1),
                line: Vec::new(),
            },
            None => {
                let function_id = profile.function.len() as u64 + 1;
                let name = strings.id(&frame.function);
                profile.function.push(Function {
                    id: function_id,
                    name,
                    system_name: name,
                    filename: 0,
                });
                Location {
                    id,
                    mapping_id: 0,
                    address: 0,
                    line: vec![Line {
                        function_id,
                        ..Line::default()
                    }],
                }
            }
        };
        profile.location.push(location);
    }
    add_samples(&mut profile, &mut strings, snapshot, |stack| {
        snapshot.stacks[stack as usize]
            .frames
            .iter()
            .map(|&f| u64::from(f) + 1)
            .collect()
    });
    write_gzipped(profile, strings, out)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use prost::Message;

    use super::*;
    use crate::pprof_proto::Profile;

    /// The raw fixture's profile: a mapping per module with its build ID, each location an
    /// address inside its mapping, the values summing to the sites'.
    #[test]
    fn raw_profile_has_mappings_with_build_ids() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v2-raw.json");
        let snapshot = Snapshot::load(path).unwrap();
        let mut gz = Vec::new();
        crate::pprof::pprof(&snapshot, &mut gz).unwrap();
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut bytes)
            .unwrap();
        let profile = Profile::decode(&bytes[..]).unwrap();
        assert_eq!(profile.mapping.len(), snapshot.modules.len());
        for (mapping, module) in profile.mapping.iter().zip(&snapshot.modules) {
            assert_eq!(
                Some(profile.string_table[mapping.build_id as usize].as_str()),
                module.build_id.as_deref()
            );
        }
        for location in &profile.location {
            let mapping = &profile.mapping[location.mapping_id as usize - 1];
            assert!((mapping.memory_start..mapping.memory_limit).contains(&location.address));
        }
        let live: i64 = profile.sample.iter().map(|s| s.value[3]).sum();
        assert_eq!(live as u64, snapshot.site_sum().live_bytes);
    }
}
