//! pprof's `profile.proto` messages and what every profile tracealloc writes shares: the header
//! (sample types, period, time, comments), the samples (one per site, with `thread` and `label`
//! labels), the string table and the gzipped encoding. The symbolized profile ([`crate::pprof`])
//! and the raw one (`pprof_raw`) differ only in their locations and mappings.

use std::collections::HashMap;
use std::io::Write;

use prost::Message;

use crate::Snapshot;

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Profile {
    #[prost(message, repeated, tag = "1")]
    pub(crate) sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub(crate) sample: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub(crate) mapping: Vec<Mapping>,
    #[prost(message, repeated, tag = "4")]
    pub(crate) location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    pub(crate) function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    pub(crate) string_table: Vec<String>,
    #[prost(int64, tag = "9")]
    pub(crate) time_nanos: i64,
    #[prost(message, optional, tag = "11")]
    pub(crate) period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    pub(crate) period: i64,
    #[prost(int64, repeated, tag = "13")]
    pub(crate) comment: Vec<i64>,
    #[prost(int64, tag = "14")]
    pub(crate) default_sample_type: i64,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ValueType {
    #[prost(int64, tag = "1")]
    pub(crate) r#type: i64,
    #[prost(int64, tag = "2")]
    pub(crate) unit: i64,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    pub(crate) location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub(crate) value: Vec<i64>,
    #[prost(message, repeated, tag = "3")]
    pub(crate) label: Vec<Label>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Label {
    #[prost(int64, tag = "1")]
    pub(crate) key: i64,
    #[prost(int64, tag = "2")]
    pub(crate) str: i64,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Mapping {
    #[prost(uint64, tag = "1")]
    pub(crate) id: u64,
    #[prost(uint64, tag = "2")]
    pub(crate) memory_start: u64,
    #[prost(uint64, tag = "3")]
    pub(crate) memory_limit: u64,
    #[prost(uint64, tag = "4")]
    pub(crate) file_offset: u64,
    #[prost(int64, tag = "5")]
    pub(crate) filename: i64,
    #[prost(int64, tag = "6")]
    pub(crate) build_id: i64,
    #[prost(bool, tag = "7")]
    pub(crate) has_functions: bool,
    #[prost(bool, tag = "8")]
    pub(crate) has_filenames: bool,
    #[prost(bool, tag = "9")]
    pub(crate) has_line_numbers: bool,
    #[prost(bool, tag = "10")]
    pub(crate) has_inline_frames: bool,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Location {
    #[prost(uint64, tag = "1")]
    pub(crate) id: u64,
    #[prost(uint64, tag = "2")]
    pub(crate) mapping_id: u64,
    #[prost(uint64, tag = "3")]
    pub(crate) address: u64,
    #[prost(message, repeated, tag = "4")]
    pub(crate) line: Vec<Line>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Line {
    #[prost(uint64, tag = "1")]
    pub(crate) function_id: u64,
    #[prost(int64, tag = "2")]
    pub(crate) line: i64,
    #[prost(int64, tag = "3")]
    pub(crate) column: i64,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Function {
    #[prost(uint64, tag = "1")]
    pub(crate) id: u64,
    #[prost(int64, tag = "2")]
    pub(crate) name: i64,
    #[prost(int64, tag = "3")]
    pub(crate) system_name: i64,
    #[prost(int64, tag = "4")]
    pub(crate) filename: i64,
}

/// pprof's string table: index 0 is the empty string.
pub(crate) struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    pub(crate) fn new() -> Strings {
        Strings {
            table: vec![String::new()],
            index: HashMap::from([(String::new(), 0)]),
        }
    }

    pub(crate) fn id(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

/// A profile of `snapshot` with its header and no samples yet: the sample types
/// `alloc_objects/count, alloc_space/bytes, inuse_objects/count, inuse_space/bytes` (default
/// `inuse_space`), period 1 for exact counts or the mean sampling interval, and `comment` first
/// among the comments (a sampled profile's second says what its estimates are).
pub(crate) fn profile_of(snapshot: &Snapshot, strings: &mut Strings, comment: &str) -> Profile {
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
    profile.comment.push(strings.id(comment));
    if let mean @ 1.. = snapshot.meta.capture.sampling_bytes {
        let error = format!(
            "sampled every {mean} bytes on average: each value is an unbiased estimate; one \
             standard error of an estimate of B bytes is about sqrt({mean} * B) (10% at B = 100 \
             times the interval); reallocs are charged to the stack that resized the block"
        );
        profile.comment.push(strings.id(&error));
    }
    profile
}

/// One sample per site of `snapshot`, at the locations `locations_of` gives its stack (innermost
/// first): its four values, a `thread` label and, under a task label, a `label` one.
pub(crate) fn add_samples(
    profile: &mut Profile,
    strings: &mut Strings,
    snapshot: &Snapshot,
    locations_of: impl Fn(u32) -> Vec<u64>,
) {
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
            location_id: locations_of(site.stack),
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
}

/// Writes `profile`, with `strings` as its string table, gzipped (as pprof files are).
pub(crate) fn write_gzipped(
    mut profile: Profile,
    strings: Strings,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    profile.string_table = strings.table;
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    gz.write_all(&profile.encode_to_vec())?;
    gz.finish()?;
    Ok(())
}
