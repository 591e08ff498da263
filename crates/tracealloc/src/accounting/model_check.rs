//! The model check: random operation sequences run through the bookkeeping and through a trivially
//! correct reference (one map, one lock), and every counter must agree.

use std::collections::HashMap;
use std::sync::Mutex;

use proptest::prelude::*;

use crate::accounting::registry::{Registry, Site};
use crate::capture::Captured;
use crate::state::counters::{Counts, SiteDelta};
use crate::state::record::SiteRecord;
use crate::state::thread::ThreadState;

#[derive(Debug, Clone)]
enum Op {
    Alloc {
        thread: usize,
        site: usize,
        size: usize,
    },
    Realloc {
        thread: usize,
        block: usize,
        size: usize,
    },
    Free {
        thread: usize,
        block: usize,
    },
    /// The thread exits and a new thread of the same name starts: it adopts the state.
    Exit {
        thread: usize,
    },
    /// A block left out by sampling (no site), counted on sampled mode's short path (no
    /// flush, no peak check) or with every check.
    Untracked {
        thread: usize,
        size: usize,
        short: bool,
    },
    UntrackedFree {
        thread: usize,
        block: usize,
        short: bool,
    },
}

const THREADS: usize = 3;
// Sites are drawn from a few (repeats) or from hundreds (so tables and record chunks grow).

fn op() -> impl Strategy<Value = Op> {
    // Few distinct small sizes make equal live totals (peak ties) common.
    let size = prop_oneof![
        prop::sample::select(vec![8usize, 16, 24, 32]),
        1usize..64,
        64usize..4096,
        4096usize..200_000
    ];
    prop_oneof![
        3 => (0..THREADS, prop_oneof![0..4usize, 0..300usize], size.clone()).prop_map(|(thread, site, size)| Op::Alloc { thread, site, size }),
        2 => (0..THREADS, any::<usize>(), size).prop_map(|(thread, block, size)| Op::Realloc { thread, block, size }),
        2 => (0..THREADS, any::<usize>()).prop_map(|(thread, block)| Op::Free { thread, block }),
        1 => (0..THREADS).prop_map(|thread| Op::Exit { thread }),
    ]
}

/// `op`, and blocks left out by sampling as sampled mode counts them.
fn op_with_untracked() -> impl Strategy<Value = Op> {
    let size = prop_oneof![1usize..64, 64usize..4096, 4096usize..200_000];
    prop_oneof![
        6 => op(),
        3 => (0..THREADS, size, any::<bool>()).prop_map(|(thread, size, short)| Op::Untracked { thread, size, short }),
        2 => (0..THREADS, any::<usize>(), any::<bool>()).prop_map(|(thread, block, short)| Op::UntrackedFree { thread, block, short }),
    ]
}

/// A live block as the reference keeps it.
#[derive(Debug, Clone, Copy)]
struct RefBlock {
    site: usize,
    /// The allocating thread.
    owner: usize,
    size: u64,
    address: usize,
}

/// The reference: every live block in one map under one lock, counters recomputed by hand.
#[derive(Default)]
struct Reference {
    blocks: Mutex<Vec<RefBlock>>,
    /// Each thread's latest allocation while it is live.
    last_block: HashMap<usize, usize>,
    next_address: usize,
    sites: HashMap<(usize, usize), Counts>,
    live: (u64, u64),
    total: (u64, u64),
    peak: (u64, u64),
}

impl Reference {
    fn check_peak(&mut self) {
        if self.live.0 >= self.peak.0 {
            self.peak = self.live;
            for c in self.sites.values_mut() {
                *c = c.live_at_peak();
            }
        }
    }
}

fn stack_of(site: usize) -> Captured {
    Captured::of(&[0x1000 + site * 16, 0x2000, 0x3000 + site])
}

/// Counts a block left out by sampling as sampled mode does: on the short path, or with every
/// check (a write section, the flush, the peak candidate).
fn count_untracked(
    registry: &Registry,
    state: &ThreadState,
    short: bool,
    live: (i64, i64),
    allocated: Option<u64>,
) {
    // SAFETY: the test thread is the only one using any of the states, and opens no section.
    unsafe {
        if short {
            state.add_short_path(live, allocated);
        } else {
            registry.apply(
                state,
                Site::Untracked,
                SiteDelta::default(),
                live,
                allocated,
            );
        }
    }
}

/// Runs `ops` on a fresh registry and on the reference; returns both for comparison.
fn run(
    ops: &[Op],
    threshold: i64,
    threads: usize,
) -> (&'static Registry, Vec<&'static ThreadState>, Reference) {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new(threshold)));
    let mut states: Vec<&ThreadState> = (0..threads)
        .map(|_| registry.register_thread().unwrap())
        .collect();
    let mut reference = Reference::default();
    let mut records: Vec<&SiteRecord> = Vec::new();
    let mut untracked: Vec<u64> = Vec::new();
    for op in ops {
        let mut blocks = reference.blocks.lock().unwrap();
        match *op {
            Op::Alloc { thread, site, size } => {
                let thread = thread % threads;
                reference.next_address += 16;
                let address = reference.next_address;
                // SAFETY: this test thread is the only one using any of the states.
                let record = unsafe {
                    registry.record_alloc(states[thread], &stack_of(site), size, address)
                };
                records.push(record);
                blocks.push(RefBlock {
                    site,
                    owner: thread,
                    size: size as u64,
                    address,
                });
                reference.last_block.insert(thread, address);
                let c = reference.sites.entry((site, thread)).or_default();
                c.live_bytes += size as u64;
                c.live_blocks += 1;
                c.total_bytes += size as u64;
                c.total_blocks += 1;
                reference.live = (reference.live.0 + size as u64, reference.live.1 + 1);
                reference.total = (reference.total.0 + size as u64, reference.total.1 + 1);
                drop(blocks);
                reference.check_peak();
            }
            Op::Realloc {
                thread,
                block,
                size,
            } if !blocks.is_empty() => {
                let i = block % blocks.len();
                let RefBlock {
                    site,
                    owner,
                    size: old,
                    address: from,
                } = blocks[i];
                // Half the reallocs stay in place.
                let to = if size % 2 == 0 {
                    from
                } else {
                    reference.next_address += 16;
                    reference.next_address
                };
                let thread = thread % threads;
                // SAFETY: as above.
                unsafe {
                    registry.record_realloc(
                        states[thread],
                        records[i],
                        old as usize,
                        size,
                        (from, to),
                    )
                };
                blocks[i].size = size as u64;
                blocks[i].address = to;
                if reference.last_block.get(&thread) == Some(&from) {
                    reference.last_block.insert(thread, to);
                }
                let c = reference.sites.get_mut(&(site, owner)).unwrap();
                c.live_bytes = c.live_bytes + size as u64 - old;
                c.total_bytes += size as u64;
                c.total_blocks += 1;
                c.reallocs += 1;
                if from != to {
                    c.realloc_copied_bytes += old.min(size as u64);
                }
                reference.live.0 = reference.live.0 + size as u64 - old;
                reference.total = (reference.total.0 + size as u64, reference.total.1 + 1);
                drop(blocks);
                reference.check_peak();
            }
            Op::Free { thread, block } if !blocks.is_empty() => {
                let i = block % blocks.len();
                let RefBlock {
                    site,
                    owner,
                    size,
                    address,
                } = blocks.swap_remove(i);
                let record = records.swap_remove(i);
                let thread = thread % threads;
                // SAFETY: as above.
                unsafe { registry.record_dealloc(states[thread], record, size as usize, address) };
                let latest = reference.last_block.get(&thread) == Some(&address);
                if latest {
                    reference.last_block.remove(&thread);
                }
                let c = reference.sites.get_mut(&(site, owner)).unwrap();
                c.live_bytes -= size;
                c.live_blocks -= 1;
                // Freed by its allocating thread before that thread's next allocation.
                if latest && owner == thread {
                    c.temporary_blocks += 1;
                }
                reference.live = (reference.live.0 - size, reference.live.1 - 1);
            }
            Op::Exit { thread } => {
                // The state's blocks stay live and charged to it; the next thread of the
                // same name (this test thread's) adopts it and goes on counting there.
                let exiting = states[thread % threads];
                reference.last_block.remove(&(thread % threads));
                exiting.capture_name();
                registry.retire(exiting);
                let next = registry.register_thread().unwrap();
                assert!(
                    std::ptr::eq(next, exiting),
                    "the next thread of the same name adopts the exited state"
                );
                states[thread % threads] = next;
            }
            Op::Untracked {
                thread,
                size,
                short,
            } => {
                let state = states[thread % threads];
                count_untracked(registry, state, short, (size as i64, 1), Some(size as u64));
                untracked.push(size as u64);
                reference.live = (reference.live.0 + size as u64, reference.live.1 + 1);
                reference.total = (reference.total.0 + size as u64, reference.total.1 + 1);
                drop(blocks);
                // The short path leaves the peak to the thread's next full event.
                if !short {
                    reference.check_peak();
                }
            }
            Op::UntrackedFree {
                thread,
                block,
                short,
            } if !untracked.is_empty() => {
                let size = untracked.swap_remove(block % untracked.len());
                let state = states[thread % threads];
                count_untracked(registry, state, short, (-(size as i64), -1), None);
                reference.live = (reference.live.0 - size, reference.live.1 - 1);
            }
            _ => {}
        }
    }
    (registry, states, reference)
}

fn site_counts(registry: &Registry, states: &[&ThreadState]) -> HashMap<(usize, usize), Counts> {
    let peak_gen = registry.peak_mark.generation();
    let mut found = HashMap::new();
    for (t, state) in states.iter().enumerate() {
        for record in state.records() {
            let site = (record.frames().next().unwrap() - 0x1000) / 16;
            let counts = state
                .read_consistent(|| record.read_local(peak_gen))
                .expect("quiescent")
                .plus(record.read_remote(peak_gen));
            found.insert((site, t), counts);
        }
    }
    found
}

fn compare(registry: &Registry, states: &[&ThreadState], reference: &Reference, exact_peak: bool) {
    let stats = registry.stats();
    assert_eq!(
        (stats.live_bytes, stats.live_blocks),
        reference.live,
        "live"
    );
    assert_eq!(
        (stats.total_bytes, stats.total_blocks),
        reference.total,
        "total"
    );
    if exact_peak {
        // A read never puts the peak below the live figures it reads (which may include
        // events the peak check has not seen yet).
        let peak = if reference.live.0 > reference.peak.0 {
            reference.live
        } else {
            reference.peak
        };
        assert_eq!((stats.peak_bytes, stats.peak_blocks), peak, "peak");
    }
    // Each site's figures at the peak are exact where the peak is.
    let without_peak = |sites: &HashMap<(usize, usize), Counts>| -> HashMap<_, _> {
        sites
            .iter()
            .map(|(&k, &c)| {
                let peak = if exact_peak {
                    (c.at_peak_bytes, c.at_peak_blocks)
                } else {
                    (0, 0)
                };
                (
                    k,
                    Counts {
                        at_peak_bytes: peak.0,
                        at_peak_blocks: peak.1,
                        ..c
                    },
                )
            })
            .collect()
    };
    assert_eq!(
        without_peak(&site_counts(registry, states)),
        without_peak(&reference.sites),
        "per site and thread"
    );
    let per_thread: Vec<(u64, u64)> = (0..states.len())
        .map(|t| {
            reference
                .sites
                .iter()
                .filter(|((_, th), _)| *th == t)
                .fold((0, 0), |a, (_, c)| {
                    (a.0 + c.live_bytes, a.1 + c.total_blocks)
                })
        })
        .collect();
    let found: Vec<(u64, u64)> = (0..states.len())
        .map(|t| {
            site_counts(registry, states)
                .iter()
                .filter(|((_, th), _)| *th == t)
                .fold((0, 0), |a, (_, c)| {
                    (a.0 + c.live_bytes, a.1 + c.total_blocks)
                })
        })
        .collect();
    assert_eq!(found, per_thread, "per thread");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Flushing on every operation, every figure is exact, the peak included, whatever the
    /// threads' interleaving.
    #[test]
    fn bookkeeping_matches_the_reference(ops in prop::collection::vec(op(), 1..300)) {
        let (registry, states, reference) = run(&ops, 0, THREADS);
        compare(registry, &states, &reference, true);
    }

    /// With the production flush threshold, one thread's figures are all exact, the peak too.
    #[test]
    fn one_thread_with_buffered_flushes_matches_the_reference(ops in prop::collection::vec(op(), 1..300)) {
        let (registry, states, reference) = run(&ops, 64 * 1024, 1);
        compare(registry, &states, &reference, true);
    }

    /// Blocks left out by sampling on one thread, on the short path or with every check: every
    /// figure exact, the peak as of the full events.
    #[test]
    fn left_out_blocks_on_the_short_path_match_the_reference(ops in prop::collection::vec(op_with_untracked(), 1..300)) {
        let (registry, states, reference) = run(&ops, 64 * 1024, 1);
        compare(registry, &states, &reference, true);
    }

    /// With the production threshold and several threads, totals and live figures are exact and
    /// the peak is within the documented bound (threshold per thread).
    #[test]
    fn several_threads_with_buffered_flushes_bound_the_peak(ops in prop::collection::vec(op(), 1..300)) {
        let (registry, states, reference) = run(&ops, 64 * 1024, THREADS);
        compare(registry, &states, &reference, false);
        let peak = registry.stats().peak_bytes as i64;
        let bound = 64 * 1024 * THREADS as i64 + 200_000;
        prop_assert!((peak - reference.peak.0 as i64).abs() <= bound, "peak {} vs {}", peak, reference.peak.0);
    }
}

/// Of equal peaks the latest counts, as in dhat-rs: the peak's blocks are those of the latest.
#[test]
fn equal_peaks_keep_the_latest_block_count() {
    use Op::*;
    let ops = [
        Alloc {
            thread: 0,
            site: 0,
            size: 100,
        },
        Free {
            thread: 0,
            block: 0,
        },
        Alloc {
            thread: 0,
            site: 1,
            size: 60,
        },
        Alloc {
            thread: 0,
            site: 1,
            size: 40,
        },
    ];
    let (registry, _, reference) = run(&ops, 64 * 1024, 1);
    assert_eq!(reference.peak, (100, 2));
    let stats = registry.stats();
    assert_eq!((stats.peak_bytes, stats.peak_blocks), (100, 2));
}

/// Real threads, concurrently: each allocates, reallocs and frees with its own state, then the
/// main thread frees half of every thread's survivors (remote frees). Quiescent figures are exact.
/// A worker's live block in [`concurrent_threads_match_the_reference_when_quiescent`].
#[derive(Clone, Copy)]
struct LiveBlock {
    record: &'static SiteRecord,
    site: usize,
    size: usize,
    address: usize,
}

#[test]
fn concurrent_threads_match_the_reference_when_quiescent() {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new(64 * 1024)));
    let workers: Vec<_> = (0..4usize)
        .map(|t| {
            std::thread::spawn(move || {
                let state = registry.register_thread().unwrap();
                let mut live: Vec<LiveBlock> = Vec::new();
                let mut sites: HashMap<usize, Counts> = HashMap::new();
                let mut seed = t as u64 + 1;
                let (mut next_address, mut last_block) = (0usize, 0usize);
                for _ in 0..20_000 {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let r = (seed >> 33) as usize;
                    let site = r % 5;
                    let size = 1 + r % 3000;
                    // SAFETY: each worker uses only its own state.
                    unsafe {
                        match r % 4 {
                            0 | 1 => {
                                next_address += 16;
                                last_block = next_address;
                                live.push(LiveBlock {
                                    record: registry.record_alloc(
                                        state,
                                        &stack_of(site),
                                        size,
                                        next_address,
                                    ),
                                    site,
                                    size,
                                    address: next_address,
                                });
                                let c = sites.entry(site).or_default();
                                c.live_bytes += size as u64;
                                c.live_blocks += 1;
                                c.total_bytes += size as u64;
                                c.total_blocks += 1;
                            }
                            2 if !live.is_empty() => {
                                let i = r % live.len();
                                let LiveBlock {
                                    record,
                                    site,
                                    size: old,
                                    address,
                                } = live[i];
                                let addresses = (address, address);
                                registry.record_realloc(state, record, old, size, addresses);
                                live[i].size = size;
                                let c = sites.get_mut(&site).unwrap();
                                c.live_bytes = c.live_bytes + size as u64 - old as u64;
                                c.total_bytes += size as u64;
                                c.total_blocks += 1;
                                c.reallocs += 1;
                            }
                            _ if !live.is_empty() => {
                                let LiveBlock {
                                    record,
                                    site,
                                    size,
                                    address,
                                } = live.swap_remove(r % live.len());
                                registry.record_dealloc(state, record, size, address);
                                let c = sites.get_mut(&site).unwrap();
                                c.live_bytes -= size as u64;
                                c.live_blocks -= 1;
                                if address == last_block {
                                    c.temporary_blocks += 1;
                                    last_block = 0;
                                }
                            }
                            _ => {}
                        }
                    }
                }
                (state.index as usize, live, sites)
            })
        })
        .collect();
    let main_state = registry.register_thread().unwrap();
    let mut expected: HashMap<(usize, usize), Counts> = HashMap::new();
    for worker in workers {
        let (t, mut live, sites) = worker.join().unwrap();
        for (site, c) in sites {
            expected.insert((site, t), c);
        }
        let keep = live.len() / 2;
        for block in live.drain(keep..) {
            let LiveBlock {
                record,
                site,
                size,
                address,
            } = block;
            // SAFETY: the main thread uses only its own state.
            unsafe { registry.record_dealloc(main_state, record, size, address) };
            let c = expected.get_mut(&(site, t)).unwrap();
            c.live_bytes -= size as u64;
            c.live_blocks -= 1;
        }
    }
    let mut found = HashMap::new();
    for state in registry.threads() {
        for record in state.records() {
            let site = (record.frames().next().unwrap() - 0x1000) / 16;
            let counts = state
                .read_consistent(|| record.read_local(0))
                .expect("quiescent")
                .plus(record.read_remote(0));
            // Figures at the peak are not exact with threads allocating at once.
            let counts = Counts {
                at_peak_bytes: 0,
                at_peak_blocks: 0,
                ..counts
            };
            found.insert((site, state.index as usize), counts);
        }
    }
    assert_eq!(found, expected);
    let stats = registry.stats();
    let live: (u64, u64) = expected
        .values()
        .fold((0, 0), |a, c| (a.0 + c.live_bytes, a.1 + c.live_blocks));
    let total: (u64, u64) = expected
        .values()
        .fold((0, 0), |a, c| (a.0 + c.total_bytes, a.1 + c.total_blocks));
    assert_eq!((stats.live_bytes, stats.live_blocks), live);
    assert_eq!((stats.total_bytes, stats.total_blocks), total);
    assert!(stats.peak_bytes >= stats.live_bytes);
}
