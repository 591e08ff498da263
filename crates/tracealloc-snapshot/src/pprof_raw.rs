//! pprof's `profile.proto` of a raw snapshot: each location an address in a mapping (the module's
//! path, build ID, address range and file offset), without names, as Linux perf and Go's own
//! unsymbolized profiles have them: `go tool pprof` symbolizes it from the binary (or
//! `$PPROF_BINARY_PATH`), Parca and Pyroscope from their debuginfo stores by build ID. The sample
//! types, labels, period and comments are those of [`crate::pprof::pprof`].

use std::collections::HashMap;
use std::io::Write;

use prost::Message;

use crate::Snapshot;
use crate::raw::NO_MODULE;

#[derive(Clone, PartialEq, Message)]
struct Profile {
    #[prost(message, repeated, tag = "1")]
    sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    sample: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    mapping: Vec<Mapping>,
    #[prost(message, repeated, tag = "4")]
    location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    string_table: Vec<String>,
    #[prost(int64, tag = "9")]
    time_nanos: i64,
    #[prost(message, optional, tag = "11")]
    period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    period: i64,
    #[prost(int64, repeated, tag = "13")]
    comment: Vec<i64>,
    #[prost(int64, tag = "14")]
    default_sample_type: i64,
}

#[derive(Clone, PartialEq, Message)]
struct ValueType {
    #[prost(int64, tag = "1")]
    r#type: i64,
    #[prost(int64, tag = "2")]
    unit: i64,
}

#[derive(Clone, PartialEq, Message)]
struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    value: Vec<i64>,
    #[prost(message, repeated, tag = "3")]
    label: Vec<Label>,
}

#[derive(Clone, PartialEq, Message)]
struct Label {
    #[prost(int64, tag = "1")]
    key: i64,
    #[prost(int64, tag = "2")]
    str: i64,
}

#[derive(Clone, PartialEq, Message)]
struct Mapping {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(uint64, tag = "2")]
    memory_start: u64,
    #[prost(uint64, tag = "3")]
    memory_limit: u64,
    #[prost(uint64, tag = "4")]
    file_offset: u64,
    #[prost(int64, tag = "5")]
    filename: i64,
    #[prost(int64, tag = "6")]
    build_id: i64,
}

#[derive(Clone, PartialEq, Message)]
struct Location {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(uint64, tag = "2")]
    mapping_id: u64,
    #[prost(uint64, tag = "3")]
    address: u64,
    #[prost(message, repeated, tag = "4")]
    line: Vec<Line>,
}

#[derive(Clone, PartialEq, Message)]
struct Line {
    #[prost(uint64, tag = "1")]
    function_id: u64,
    #[prost(int64, tag = "2")]
    line: i64,
}

#[derive(Clone, PartialEq, Message)]
struct Function {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(int64, tag = "2")]
    name: i64,
    #[prost(int64, tag = "3")]
    system_name: i64,
}

/// pprof's string table: index 0 is the empty string.
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Strings {
        Strings {
            table: vec![String::new()],
            index: HashMap::from([(String::new(), 0)]),
        }
    }

    fn id(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

/// Writes raw snapshot `snapshot` as a gzipped pprof profile with mappings (see the module's
/// comment). A marker frame (`[truncated]`) is a location with a function name and no address.
pub(crate) fn pprof_raw(snapshot: &Snapshot, out: &mut dyn Write) -> std::io::Result<()> {
    let Some(raw) = &snapshot.unsymbolized else {
        return Err(std::io::Error::other("not a raw snapshot"));
    };
    let mut strings = Strings::new();
    let mut profile = Profile {
        sample_type: [
            ("alloc_objects", "count"),
            ("alloc_space", "bytes"),
            ("inuse_objects", "count"),
            ("inuse_space", "bytes"),
        ]
        .iter()
        .map(|(t, u)| ValueType {
            r#type: strings.id(t),
            unit: strings.id(u),
        })
        .collect(),
        period_type: Some(ValueType {
            r#type: strings.id("space"),
            unit: strings.id("bytes"),
        }),
        period: match snapshot.meta.capture.sampling_bytes {
            0 => 1,
            mean => i64::try_from(mean).unwrap_or(i64::MAX),
        },
        time_nanos: (snapshot.meta.time_unix_ms as i64).saturating_mul(1_000_000),
        ..Profile::default()
    };
    profile.default_sample_type = strings.id("inuse_space");
    let comment = format!(
        "tracealloc {} raw snapshot of pid {}: {} (unsymbolized: addresses in mappings)",
        snapshot.meta.tracealloc_version,
        snapshot.meta.pid,
        snapshot.meta.command.join(" ")
    );
    profile.comment.push(strings.id(&comment));
    for (i, module) in snapshot.modules.iter().enumerate() {
        profile.mapping.push(Mapping {
            id: i as u64 + 1,
            memory_start: module.start,
            memory_limit: module.end,
            file_offset: module.file_offset,
            filename: strings.id(&module.path),
            build_id: strings.id(module.build_id.as_deref().unwrap_or_default()),
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
                });
                Location {
                    id,
                    mapping_id: 0,
                    address: 0,
                    line: vec![Line {
                        function_id,
                        line: 0,
                    }],
                }
            }
        };
        profile.location.push(location);
    }
    let thread_key = strings.id("thread");
    let label_key = strings.id("label");
    let thread_names: Vec<i64> = snapshot
        .threads
        .iter()
        .map(|t| strings.id(&t.name))
        .collect();
    for site in &snapshot.sites {
        let signed = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        profile.sample.push(Sample {
            location_id: snapshot.stacks[site.stack as usize]
                .frames
                .iter()
                .map(|&f| u64::from(f) + 1)
                .collect(),
            value: vec![
                signed(site.total_blocks),
                signed(site.total_bytes),
                signed(site.live_blocks),
                signed(site.live_bytes),
            ],
            label: std::iter::once(Label {
                key: thread_key,
                str: thread_names[site.thread as usize],
            })
            .chain(site.label.as_deref().map(|label| Label {
                key: label_key,
                str: strings.id(label),
            }))
            .collect(),
        });
    }
    profile.string_table = strings.table;
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    gz.write_all(&profile.encode_to_vec())?;
    gz.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

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
