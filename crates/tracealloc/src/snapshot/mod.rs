//! Taking a snapshot: copy every record's counters (the allocating threads go on meanwhile), then
//! symbolize and build the model. Runs under the reentrancy guard: none of it is counted.

mod c_library;
mod forest;
mod modules;
pub(crate) mod symbolize;

use rustc_hash::FxHashMap as HashMap;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tracealloc_snapshot::{
    CaptureCounts, CaptureInfo, Frame, HeapStats, Metadata, ReallocCharge, Site, Snapshot, Stack,
    ThreadInfo, TimePoint, Variance,
};

use crate::accounting::sampling::{block_variances, mean_of, whole_blocks};
use crate::accounting::stamp::{NS_PER_STAMP, stamp};
use crate::accounting::timeline::{CAPACITY, Point};

use crate::accounting::registry::Registry;
use crate::capture::{CaptureEnd, CaptureMode, depth_limit};
use crate::state::counters::Counts;
use crate::state::record::{LifetimeCounts, Lifetimes, MeasuredSite, SiteRecord, non_negative};
use crate::state::stack_tree::StoredStack;
use crate::state::thread::{ThreadState, name_family};
use forest::Forest;

/// One record's figures, copied out.
struct Copied {
    thread: usize,
    /// The thread's `[other stacks]` record.
    fallback: bool,
    end: u8,
    stack: StoredStack,
    label: Option<&'static str>,
    counts: Counts,
    lifetimes: Option<Lifetimes>,
    /// The epoch of the sampling mean its blocks were sampled at (0 outside sampled mode).
    epoch: u8,
    /// Sampled mode: that mean, for the variances of the record's estimates (`None` for exact
    /// counts: every mode but sampled, and sampled mode's orphan record).
    sampled_mean: Option<u64>,
}

/// Copies one record's figures. When its thread stayed inside an update (stopped mid-update), the
/// owner-side figures could only be read torn: they are left out and `unreadable` counts it.
fn copy_record(
    thread: Option<&ThreadState>,
    record: &SiteRecord,
    index: usize,
    peak_gen: u64,
    unreadable: &mut u64,
) -> Copied {
    let counters = record.lifetimes();
    let remote_deaths = counters.map(LifetimeCounts::read_remote_deaths);
    let remote = record.read_remote(peak_gen);
    let read_local = || {
        let counts = record.read_local(peak_gen);
        let lifetimes = counters
            .zip(remote_deaths)
            .map(|(c, deaths)| c.read(deaths));
        (counts, lifetimes)
    };
    let (local, lifetimes) = match thread.map(|t| t.read_consistent(read_local)) {
        Some(Ok(local)) => local,
        Some(Err(_torn)) => {
            *unreadable += 1;
            (Counts::default(), None)
        }
        None => (Counts::default(), None),
    };
    Copied {
        thread: index,
        fallback: std::ptr::eq(
            record,
            thread.map_or(std::ptr::null(), |t| &t.fallback_record),
        ),
        end: record.end,
        stack: record.stored_stack(),
        label: record.key().label.text(),
        counts: local.plus(remote),
        lifetimes,
        epoch: record.epoch,
        sampled_mean: None,
    }
}

/// Takes a snapshot of the process-wide registry, symbolized.
pub(crate) fn take_from(registry: &Registry) -> Snapshot {
    take(registry, false)
}

/// Takes a raw snapshot of the process-wide registry: return addresses and the modules they lie
/// in, to be symbolized later, elsewhere (see `tracealloc_snapshot::raw`). Loads no debug info:
/// its cost follows the stacks, not the size of the binary.
pub(crate) fn take_raw_from(registry: &Registry) -> Snapshot {
    take(registry, true)
}

/// The frames of each return address: symbolized (from the process's symbol cache), or one raw
/// frame each.
enum Names {
    Resolved(crate::snapshot::symbolize::Resolved),
    Raw {
        /// Each address's frame id (its index in the frame table).
        ids: HashMap<usize, u32>,
        modules: modules::Modules,
        /// For each raw frame, its module and address in the module's file.
        addresses: Vec<Option<tracealloc_snapshot::RawAddress>>,
    },
}

impl Names {
    /// Whether `addr` returns into a thread's entry point (the C library's start functions).
    fn is_entry_point(&self, addr: usize) -> bool {
        match self {
            Names::Resolved(resolved) => resolved
                .frames(addr)
                .last()
                .is_some_and(Frame::is_entry_point),
            Names::Raw { modules, .. } => modules.in_c_library(addr),
        }
    }
}

fn take(registry: &Registry, raw: bool) -> Snapshot {
    let started = Instant::now();
    let heap_kept = registry.own_bytes_parts().1;
    let totals = registry.stats();
    let peak_gen = registry.peak_mark.generation();
    // Lifetimes: a live block counts up to the moment its record is copied (not to the end of the
    // symbolization, which may take a second).
    let config = crate::config::get();
    let stamp_rate = config
        .is_some_and(crate::config::Config::lifetimes)
        .then(|| (stamp(), NS_PER_STAMP));
    // The snapshot's moment on the timeline, and the resident memory then: before symbolizing,
    // which takes time and memory of its own (most of a second in a debug build).
    let moment = (
        registry.timeline.elapsed_ms(crate::sys::coarse_now_ms()),
        crate::sys::resident_bytes(),
    );
    let taken_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut states: Vec<&ThreadState> = registry.threads().collect();
    states.sort_by_key(|t| t.index);

    // Sized first: grown by doubling, it would hold up to twice the records' copies.
    let records: usize = states.iter().map(|state| state.records().count() + 1).sum();
    let mut copied = Vec::with_capacity(records + 1);
    let mut stacks_captured = 0u64;
    let mut unreadable_records = 0u64;
    for (i, state) in states.iter().enumerate() {
        for record in state.records() {
            stacks_captured += 1;
            copied.push(copy_record(
                Some(state),
                record,
                i,
                peak_gen,
                &mut unreadable_records,
            ));
        }
        copied.push(copy_record(
            Some(state),
            &state.fallback_record,
            i,
            peak_gen,
            &mut unreadable_records,
        ));
    }
    let orphan_thread = states.len();
    copied.push(copy_record(
        None,
        &registry.orphan_record,
        orphan_thread,
        peak_gen,
        &mut unreadable_records,
    ));
    copied.retain(|c| c.counts.total_blocks != 0 || c.counts.live_blocks != 0);
    // Sampled mode's site records count blocks in fractions (see `accounting::sampling`); the
    // orphan record counts whole ones.
    let startup_mean = crate::config::get().map_or(0, |config| config.policy.sampling_mean());
    if startup_mean > 0 {
        for c in copied.iter_mut().filter(|c| c.thread != orphan_thread) {
            c.counts = whole_blocks(c.counts);
            c.sampled_mean = Some(mean_of(c.epoch, startup_mean));
        }
    }

    // The stacks as a tree of their distinct nodes, and each distinct return address once, in the
    // order the nodes are met (so that a snapshot's frame table is deterministic).
    let mut forest = Forest::default();
    let innermost: Vec<u32> = copied.iter().map(|c| forest.add(c.stack)).collect();
    let mut address_frames: HashMap<usize, Vec<u32>> = HashMap::default();
    let mut addresses = Vec::new();
    for &addr in forest.addresses() {
        if let std::collections::hash_map::Entry::Vacant(slot) = address_frames.entry(addr) {
            slot.insert(Vec::new());
            addresses.push(addr);
        }
    }
    // The profiler's own memory is what it keeps between snapshots: its tables, the heap it held
    // before this snapshot, and what the symbol cache grows by now (the debug info parsed for it
    // is released within; this snapshot's working copies and model are not kept).
    let heap_before = registry.own_bytes_parts().1;
    let names = if raw {
        let mut modules = modules::Modules::read();
        let ids = addresses
            .iter()
            .enumerate()
            .map(|(i, &addr)| (addr, i as u32))
            .collect();
        let addresses = addresses.iter().map(|&a| Some(modules.raw(a))).collect();
        Names::Raw {
            ids,
            modules,
            addresses,
        }
    } else {
        Names::Resolved(crate::snapshot::symbolize::resolve_all(
            addresses.iter().copied(),
        ))
    };
    let (tables_bytes, heap_after) = registry.own_bytes_parts();
    let heap_bytes = heap_kept + heap_after.saturating_sub(heap_before);

    let mut snapshot = Snapshot::new(metadata());
    // The moment the figures were read, and the resident memory then, not after symbolizing.
    snapshot.meta.time_unix_ms = taken_unix_ms;
    snapshot.meta.rss_bytes = moment.1;
    snapshot.totals = totals;
    // Frames are interned once per return address (thousands), not once per stack frame
    // (millions): stacks are then built from frame ids.
    let mut builder = Builder::default();
    for addr in &addresses {
        let ids = match &names {
            Names::Resolved(resolved) => resolved
                .frames(*addr)
                .iter()
                .map(|f| builder.frame(f))
                .collect(),
            // One frame per address, each its own (not interned: they have no name yet).
            Names::Raw { ids, .. } => {
                builder.frames.push(Frame::new(""));
                vec![ids[addr]]
            }
        };
        address_frames.insert(*addr, ids);
    }

    let own_frame: Vec<bool> = builder.frames.iter().map(is_own_frame).collect();
    // Return addresses that symbolize to the same frames share a class: raw stacks are interned by
    // their classes (about a third as long as their symbolized frames, and many raw stacks of a
    // program share them), and each distinct one is expanded into frames once.
    let mut classes: HashMap<&[u32], u32> = HashMap::default();
    let mut class_frames: Vec<&[u32]> = Vec::new();
    let address_class: HashMap<usize, u32> = address_frames
        .iter()
        .map(|(&addr, ids)| {
            let class = *classes.entry(ids.as_slice()).or_insert_with(|| {
                class_frames.push(ids.as_slice());
                class_frames.len() as u32 - 1
            });
            (addr, class)
        })
        .collect();
    // Each node's path of classes up to its outermost frame, interned: a stack is its innermost
    // node's path, and each distinct path is expanded into frames once.
    let paths = forest.paths(|addr| address_class[&addr]);
    let mut raw_stacks: HashMap<(u32, u32), u32> = HashMap::default();
    let mut sites: HashMap<(u32, u32, Option<&'static str>), usize> = HashMap::default();
    // At most one site per record.
    snapshot.sites.reserve(copied.len());
    let mut threads_used = vec![false; states.len() + 1];
    let mut captures = CaptureCounts::default();
    let marker = |function: &str| Frame::new(function);
    let truncated_marker = marker(tracealloc_snapshot::TRUNCATED_FRAME);
    let other_stacks_marker = marker(tracealloc_snapshot::OTHER_STACKS_FRAME);
    let capture_off_marker = marker(tracealloc_snapshot::CAPTURE_OFF_FRAME);
    let mut other_stacks_allocations = 0;
    for (c, &node) in copied.iter().zip(&innermost) {
        // The key: the path of classes, then how the stack ends (with a marker frame or not).
        let (marker, tag) = if c.stack.depth == 0 && c.fallback {
            (Some(&other_stacks_marker), u32::MAX - 1)
        } else if c.end == CaptureEnd::Truncated as u8 {
            (Some(&truncated_marker), u32::MAX - 2)
        } else if c.stack.depth == 0 && c.end == CaptureEnd::CaptureOff as u8 {
            (Some(&capture_off_marker), u32::MAX - 3)
        } else {
            (None, u32::MAX)
        };
        let key = (paths.of(node), tag);
        let stack = match raw_stacks.get(&key) {
            Some(&stack) => stack,
            None => {
                let mut ids: Vec<u32> = paths
                    .classes(key.0)
                    .flat_map(|class| class_frames[class as usize].iter().copied())
                    .skip_while(|&id| own_frame[id as usize])
                    .collect();
                // A truncated stack does not reach the thread's entry: its outermost frame says
                // so, so that flamegraphs do not show what the limit left as a root of its own.
                if let Some(marker) = marker {
                    ids.push(builder.frame(marker));
                }
                let stack = builder.stack(ids);
                raw_stacks.insert(key, stack);
                stack
            }
        };
        // A walk ends cleanly at the thread's entry point (libc's start functions have no frame
        // pointer, so the chain past them is noise); elsewhere a bad link means a broken chain.
        let at_entry = paths
            .outermost_address(node)
            .is_some_and(|addr| names.is_entry_point(addr));
        let events = &mut match c.end {
            e if e == CaptureEnd::Truncated as u8 => &mut captures.truncated,
            e if e == CaptureEnd::NoStackBounds as u8 => &mut captures.no_stack_bounds,
            e if e == CaptureEnd::CaptureOff as u8 => &mut captures.capture_off,
            _ if at_entry => &mut captures.complete,
            e if e == CaptureEnd::Complete as u8 => &mut captures.complete,
            _ => &mut captures.broken,
        };
        **events += c.counts.total_blocks;
        if c.fallback {
            other_stacks_allocations += c.counts.total_blocks;
        }
        threads_used[c.thread] = true;
        let key = (stack, c.thread as u32, c.label);
        let slot = *sites.entry(key).or_insert_with(|| {
            let mut site = Site::new(stack, c.thread as u32);
            site.label = c.label.map(str::to_owned);
            snapshot.sites.push(site);
            snapshot.sites.len() - 1
        });
        let site = &mut snapshot.sites[slot];
        add_counts(site, &c.counts, c.sampled_mean);
        if let (Some(lifetimes), Some((now, ns_per_stamp))) = (c.lifetimes, stamp_rate) {
            let live_blocks = non_negative(c.counts.live_blocks);
            // Wrapping: the sums of stamps overflow; their difference is the lifetimes' sum.
            let stamps = lifetimes
                .deaths
                .wrapping_sub(lifetimes.births)
                .wrapping_add(live_blocks.wrapping_mul(now));
            site.lifetimes_us +=
                (non_negative(stamps) as f64 * ns_per_stamp / 1000.0).round() as u64;
            site.max_bytes += lifetimes.max_bytes;
            site.max_blocks += lifetimes.max_blocks;
        }
    }
    snapshot.frames = builder.frames;
    snapshot.stacks = builder.stacks;
    if let Names::Raw {
        modules,
        mut addresses,
        ..
    } = names
    {
        // The marker frames, after the raw ones, have no address.
        addresses.resize(snapshot.frames.len(), None);
        snapshot.modules = modules.into_used();
        snapshot.unsymbolized = Some(tracealloc_snapshot::Unsymbolized::new(
            addresses,
            Some(OWN_SOURCES.to_owned()),
        ));
        snapshot.version = tracealloc_snapshot::RAW_FORMAT_VERSION;
    }
    snapshot.threads = thread_infos(&states);
    if threads_used[orphan_thread] {
        snapshot.threads.push(ThreadInfo::new("unknown", 0, false));
    }
    let figures = &mut snapshot.profiler;
    figures.own_bytes = tables_bytes + heap_bytes;
    figures.tables_bytes = tables_bytes;
    figures.stacks_captured = stacks_captured;
    figures.captures = captures;
    figures.unreadable_records = unreadable_records;
    figures.other_stacks_allocations = other_stacks_allocations;
    figures.max_stacks = crate::state::budget::STACK_BUDGET.figures().1;
    figures.threads_without_state = registry.threads_without_state.load(Ordering::Relaxed);
    figures.allocations_without_state = registry.allocations_without_state();
    snapshot.timeline = timeline(registry, &totals, moment);
    figures.snapshot_ms = started.elapsed().as_millis() as u64;
    snapshot
}

/// Adds `counts` (a record's, or what a measure reports of it) to the model's `site`: the one place
/// that names each counter as the snapshot format does. Live figures read below zero while the
/// program runs (a free on another thread counted before its allocation) add nothing. With
/// `sampled_mean` (sampled mode: the mean its blocks were sampled at), the realloc pair holds the
/// block estimates' variances (`sampling::block_variances`), and the bytes' variance is about
/// `mean x bytes` (see `tracealloc_snapshot::Variance`).
fn add_counts(site: &mut Site, counts: &Counts, sampled_mean: Option<u64>) {
    site.live_bytes += non_negative(counts.live_bytes);
    site.live_blocks += non_negative(counts.live_blocks);
    site.total_bytes += counts.total_bytes;
    site.total_blocks += counts.total_blocks;
    site.peak_bytes += non_negative(counts.at_peak_bytes);
    site.peak_blocks += non_negative(counts.at_peak_blocks);
    site.temporary_blocks += counts.temporary_blocks;
    let Some(mean) = sampled_mean else {
        site.reallocs += counts.reallocs;
        site.realloc_copied_bytes += counts.realloc_copied_bytes;
        return;
    };
    let (live_blocks, total_blocks) = block_variances(counts);
    let kib =
        |bytes: u64| (u128::from(mean) * u128::from(bytes) / 1024).min(u64::MAX.into()) as u64;
    let mut variance = Variance::default();
    variance.live_bytes_kib = kib(non_negative(counts.live_bytes));
    variance.live_blocks = non_negative(live_blocks);
    variance.total_bytes_kib = kib(counts.total_bytes);
    variance.total_blocks = total_blocks;
    site.variance = Some(site.variance.unwrap_or_default().plus(variance));
}

/// A model of the calling thread's `sites` (their stacks and what a measure reports of them),
/// symbolized as a snapshot's are: for the report of a measure. Call under the reentrancy guard.
pub(crate) fn model_of_sites(sites: &[MeasuredSite]) -> Snapshot {
    let resolved = crate::snapshot::symbolize::resolve_all(
        sites.iter().flat_map(|s| s.frames.iter().copied()),
    );
    let mut builder = Builder::default();
    let mut snapshot = Snapshot::empty();
    // A measure spans a moment of the program: its blocks were sampled at the mean of now.
    let sampled_mean = crate::config::get()
        .map(|config| config.policy.sampling_mean())
        .filter(|&startup| startup > 0)
        .map(crate::accounting::sampling::current_mean);
    for measured in sites {
        let frames: Vec<Frame> = measured
            .frames
            .iter()
            .flat_map(|&addr| resolved.frames(addr).iter().cloned())
            .skip_while(is_own_frame)
            // Up to the measure: what called it is the same for every site.
            .take_while(|f| !is_own_frame(f))
            .collect();
        let ids = frames.iter().map(|f| builder.frame(f)).collect();
        let mut site = Site::new(builder.stack(ids), 0);
        add_counts(&mut site, &measured.counts, sampled_mean);
        snapshot.sites.push(site);
    }
    snapshot.frames = builder.frames;
    snapshot.stacks = builder.stacks;
    snapshot.threads = vec![ThreadInfo::new("measured", 0, true)];
    snapshot.meta.working_dir = std::env::current_dir()
        .ok()
        .map(|d| d.to_string_lossy().into_owned());
    snapshot.meta.workspace_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| tracealloc_snapshot::workspace_of(&exe));
    snapshot
}

/// The registry's timeline, with the peak at its time and the snapshot's moment last: `(now, rss)`,
/// its time and the resident memory then.
fn timeline(registry: &Registry, totals: &HeapStats, (now, rss): (u64, u64)) -> Vec<TimePoint> {
    let mut points = Vec::with_capacity(CAPACITY + 2);
    registry.timeline.copy_into(&mut points);
    // Points other threads added while this snapshot symbolized come after its moment.
    points.retain(|p| p.t_ms <= now);
    let peak_ms = registry.peak_mark.time_ms(&registry.timeline).min(now);
    let at = points.partition_point(|p| p.t_ms <= peak_ms);
    let rss_then = at.checked_sub(1).map_or(rss, |i| points[i].rss_bytes);
    points.insert(
        at,
        Point {
            t_ms: peak_ms,
            live_bytes: totals.peak_bytes,
            live_blocks: totals.peak_blocks,
            rss_bytes: rss_then,
        },
    );
    points.push(Point {
        t_ms: now,
        live_bytes: totals.live_bytes,
        live_blocks: totals.live_blocks,
        rss_bytes: rss,
    });
    points
        .into_iter()
        .map(|p| TimePoint::new(p.t_ms, p.live_bytes, p.live_blocks, p.rss_bytes))
        .collect()
}

/// This crate's sources as its debug info names them, to recognize our own frames even when they
/// were inlined (inlined frames carry no crate path in their names with `line-tables-only`).
const OWN_SOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/");

/// A frame of the profiler (the capture itself, when the DWARF unwinder walks through it) or of
/// the allocator shims: dropped from the innermost end of every stack.
fn is_own_frame(frame: &Frame) -> bool {
    frame.is_profiler()
        || frame
            .file
            .as_deref()
            .is_some_and(|f| f.starts_with(OWN_SOURCES))
}

/// Interns frames and stacks. A stack's frame ids are kept once, in `stacks`: the index keys them
/// by a hash (a program with 100,000 stacks of 50 frames would otherwise hold a second copy of
/// 20 MB while its snapshot is built), and the rare stacks whose hash another has go to
/// `colliding`, whole.
#[derive(Default)]
struct Builder {
    frames: Vec<Frame>,
    frame_ids: HashMap<Frame, u32>,
    stacks: Vec<Stack>,
    stack_ids: HashMap<u64, u32>,
    colliding: HashMap<Vec<u32>, u32>,
}

impl Builder {
    fn frame(&mut self, frame: &Frame) -> u32 {
        if let Some(&id) = self.frame_ids.get(frame) {
            return id;
        }
        let id = self.frames.len() as u32;
        self.frames.push(frame.clone());
        self.frame_ids.insert(frame.clone(), id);
        id
    }

    fn stack(&mut self, mut ids: Vec<u32>) -> u32 {
        use std::hash::BuildHasher;
        let hash = rustc_hash::FxBuildHasher.hash_one(&ids);
        let id = self.stacks.len() as u32;
        match self.stack_ids.get(&hash) {
            Some(&known) if self.stacks[known as usize].frames == ids => return known,
            Some(_) => {
                if let Some(&known) = self.colliding.get(&ids) {
                    return known;
                }
                self.colliding.insert(ids.clone(), id);
            }
            None => {
                self.stack_ids.insert(hash, id);
            }
        }
        // Collected from iterators, the ids may hold twice their length.
        ids.shrink_to_fit();
        self.stacks.push(Stack::new(ids));
        id
    }
}

fn read_comm(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim_end_matches('\n').to_owned())
}

/// Each state's thread: its name, id, whether it runs, how many threads it stood for. Threads
/// numbered by name (`conn-17`) are named by their family (`conn-*`) when threads of the family
/// came and went, sharing a state: then every exited state of the family reads so (threads that
/// ran at the same time each had their own), and they read, and group, as one kind of thread. A
/// fixed set of numbered threads (`worker-0`, `worker-1`) keeps its names.
fn thread_infos(states: &[&ThreadState]) -> Vec<ThreadInfo> {
    let pid = std::process::id() as u64;
    let process_comm = read_comm(&format!("/proc/self/task/{pid}/comm"));
    let named: Vec<(u64, Option<String>, bool)> = states
        .iter()
        .map(|state| {
            let tid = state.tid.load(std::sync::atomic::Ordering::Relaxed);
            let exited = state.exit_name();
            let comm = match exited {
                Some(bytes) => {
                    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                    Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
                }
                None => read_comm(&format!("/proc/self/task/{tid}/comm")),
            };
            let alive = exited.is_none()
                && state.alive.load(std::sync::atomic::Ordering::Relaxed)
                && std::path::Path::new(&format!("/proc/self/task/{tid}")).exists();
            (tid, comm, alive)
        })
        .collect();
    let family_of = |comm: &Option<String>| {
        comm.as_deref()
            .and_then(|c| name_family(c.as_bytes()))
            .map(|f| String::from_utf8_lossy(f).into_owned())
    };
    let merged = |state: &ThreadState| state.merged.load(std::sync::atomic::Ordering::Relaxed);
    let shared_families: HashMap<String, ()> = states
        .iter()
        .zip(&named)
        .filter(|(state, _)| merged(state))
        .filter_map(|(_, (_, comm, _))| family_of(comm).map(|f| (f, ())))
        .collect();
    states
        .iter()
        .zip(&named)
        .map(|(state, (tid, comm, alive))| {
            let family = family_of(comm)
                .filter(|f| merged(state) || (!alive && shared_families.contains_key(f)));
            let mixed = state.mixed.load(std::sync::atomic::Ordering::Relaxed);
            let name = if *tid == pid {
                "main".to_owned()
            } else if mixed {
                // Its records are those of threads of unrelated names, one after another.
                match comm {
                    Some(c) if !c.is_empty() => format!("[several names, the last {c}]"),
                    _ => "[several names]".to_owned(),
                }
            } else {
                match (family, comm) {
                    (Some(family), _) => format!("{family}*"),
                    (None, Some(c)) if !c.is_empty() && Some(c) != process_comm.as_ref() => {
                        c.clone()
                    }
                    _ => format!("thread-{}", state.index),
                }
            };
            let owners = state.owners.load(std::sync::atomic::Ordering::Relaxed);
            ThreadInfo::new(name, *tid, *alive).standing_for(owners)
        })
        .collect()
}

fn proc_status_field(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

fn metadata() -> Metadata {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mode = CaptureMode::current();
    let mut capture = CaptureInfo::new(
        mode.name(),
        depth_limit() as u32,
        mode == CaptureMode::FramePointers,
    );
    if let Some(config) = crate::config::get() {
        let startup = config.policy.sampling_mean();
        capture.sampling_bytes = crate::accounting::sampling::current_mean(startup);
        (capture.sampling_changes, capture.sampling_history) =
            crate::accounting::sampling::history(startup);
        capture.sampling_from_env = config.sample_from_env;
        capture.method_from_env = config.force_unwind;
        capture.lifetimes = config.lifetimes();
        capture.lifetimes_from_env = config.lifetimes_from_env;
        if capture.lifetimes {
            capture.lifetime_clock_ns = crate::sys::coarse_step_ns();
        }
        if config.policy.sampling_mean() > 0 {
            capture.sampling_seed = Some(config.seed);
            capture.sampling_seed_from_env = config.seed_from_env;
        }
        capture.reallocs_charged_to = if config.policy.reallocs_charged_to_origin() {
            ReallocCharge::Origin
        } else {
            ReallocCharge::Resizer
        };
    }
    let command = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut meta = Metadata::new(std::process::id(), command, capture);
    meta.time_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    meta.rss_bytes = proc_status_field(&status, "VmRSS:").unwrap_or(0) * 1024;
    meta.thread_count = proc_status_field(&status, "Threads:").unwrap_or(0);
    env!("CARGO_PKG_VERSION").clone_into(&mut meta.tracealloc_version);
    meta.working_dir = std::env::current_dir()
        .ok()
        .map(|d| d.to_string_lossy().into_owned());
    meta.workspace_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| tracealloc_snapshot::workspace_of(&exe));
    meta.allocator = allocator_stats();
    meta
}

/// jemalloc's own figures (feature `jemalloc`), after advancing its statistics epoch.
#[cfg(feature = "jemalloc")]
fn allocator_stats() -> Option<tracealloc_snapshot::AllocatorStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    let mut figures = tracealloc_snapshot::AllocatorStats::new("jemalloc");
    figures.allocated = stats::allocated::read().ok()? as u64;
    figures.active = stats::active::read().ok()? as u64;
    figures.resident = stats::resident::read().ok()? as u64;
    figures.mapped = stats::mapped::read().ok()? as u64;
    figures.retained = stats::retained::read().ok()? as u64;
    figures.metadata = stats::metadata::read().ok()? as u64;
    Some(figures)
}

#[cfg(not(feature = "jemalloc"))]
fn allocator_stats() -> Option<tracealloc_snapshot::AllocatorStats> {
    None
}
