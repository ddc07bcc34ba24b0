//! Stress: many producers, mixed requests, emulator faults injected, CPUs going away and
//! coming back. Afterwards every slot holds exactly what was last stored, and the counters
//! add up.
//!
//! Size: `SWAPACCEL_STRESS_OPS` operations per producer (default 300); the `#[ignore]`d
//! soak variant runs 40 000.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use accel::discovery::WqMode;
use accel::emu::{Fault, Target};
use batching::{Engine, EngineError, FallbackReason, FullPolicy, Op, Reply, Request, Ticket};
use common::*;
use pool::{LoadMode, PoolError, TestTopology};
use software_fallback::corpus::{classify, PageKind};
use software_fallback::PAGE_SIZE;

const PRODUCERS: u64 = 6;
const LANES: u64 = 4;
const LANE_SLOTS: u64 = 24;
const SPAN: u64 = LANES * LANE_SLOTS;

#[derive(Default, Debug)]
struct Tally {
    submitted: u64,
    store_pages: u64,
    store_codec_pages: u64,
    load_pages: u64,
    invalidates: u64,
    invalidate_slots: u64,
    absent_loads: u64,
    ops: [u64; 3],
}

enum Expect {
    Store {
        slot: u64,
        pages: usize,
        version: u64,
    },
    Load {
        slot: u64,
        want: Option<Vec<u8>>,
        exclusive: bool,
    },
    Invalidate {
        slot: u64,
        count: u64,
    },
}

fn producer(p: u64, engine: Arc<Engine>, ops: usize) -> (Vec<Option<u64>>, Tally) {
    let c = builtin();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((p + 1) * 0x1234_5678));
    let base = p * SPAN;
    // model[i]: version last stored at slot base+i (None: empty).
    let mut model: Vec<Option<u64>> = vec![None; SPAN as usize];
    let mut version = 0u64;
    let mut t = Tally::default();
    let mut done = 0;
    while done < ops {
        // Up to LANES requests in flight at once, one per lane: never overlapping.
        let mut inflight: Vec<(Ticket, Expect)> = Vec::new();
        for lane in 0..LANES {
            if done >= ops {
                break;
            }
            done += 1;
            let lane_first = lane * LANE_SLOTS;
            let choice = rng.below(10);
            let (req, exp) = if choice < 5 {
                let pages = [1u64, 1, 2, 3, 8, 11, 16][rng.below(7) as usize];
                let off = rng.below(LANE_SLOTS - pages + 1);
                let slot = base + lane_first + off;
                version += 1;
                let data = folio(&c, slot, pages as usize, version);
                t.store_pages += pages;
                t.store_codec_pages += data
                    .chunks_exact(PAGE_SIZE)
                    .filter(|pg| classify(pg) == PageKind::Other)
                    .count() as u64;
                t.ops[0] += 1;
                (
                    Request::Store { ty: 0, slot, data },
                    Expect::Store {
                        slot,
                        pages: pages as usize,
                        version,
                    },
                )
            } else if choice < 8 {
                let pages = 1 + rng.below(4);
                let off = rng.below(LANE_SLOTS - pages + 1);
                let slot = base + lane_first + off;
                let exclusive = pages == 1 && rng.below(3) == 0;
                let i0 = (slot - base) as usize;
                let want = model[i0..i0 + pages as usize]
                    .iter()
                    .enumerate()
                    .map(|(k, v)| v.map(|v| page(&c, slot + k as u64, v)))
                    .collect::<Option<Vec<Vec<u8>>>>()
                    .map(|pgs| pgs.concat());
                t.load_pages += pages;
                t.ops[1] += 1;
                (
                    Request::Load {
                        ty: 0,
                        slot,
                        buf: vec![0; pages as usize * PAGE_SIZE],
                        mode: if exclusive {
                            LoadMode::Exclusive
                        } else {
                            LoadMode::KeepCopy
                        },
                    },
                    Expect::Load {
                        slot,
                        want,
                        exclusive,
                    },
                )
            } else {
                let count = 1 + rng.below(3);
                let off = rng.below(LANE_SLOTS - count + 1);
                let slot = base + lane_first + off;
                t.invalidates += 1;
                t.invalidate_slots += count;
                t.ops[2] += 1;
                (
                    Request::Invalidate { ty: 0, slot, count },
                    Expect::Invalidate { slot, count },
                )
            };
            t.submitted += 1;
            match engine.submit(req) {
                Ok(ticket) => inflight.push((ticket, exp)),
                Err(r) => panic!("producer {p}: refused: {}", r.error),
            }
        }
        for (ticket, exp) in inflight {
            let d = ticket
                .wait_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("producer {p}: a request never completed"));
            match exp {
                Expect::Store {
                    slot,
                    pages,
                    version,
                } => {
                    assert!(
                        matches!(d.outcome, Ok(Reply::Stored(_))),
                        "store {slot}+{pages}: {:?}",
                        d.outcome
                    );
                    for k in 0..pages {
                        model[(slot - base) as usize + k] = Some(version);
                    }
                }
                Expect::Load {
                    slot,
                    want,
                    exclusive,
                } => match want {
                    Some(bytes) => {
                        assert!(d.is_ok(), "load {slot}: {:?}", d.outcome);
                        assert!(d.buffer == bytes, "load {slot}: wrong data");
                        if exclusive {
                            model[(slot - base) as usize] = None;
                        }
                    }
                    None => {
                        t.absent_loads += 1;
                        assert!(
                            matches!(
                                d.outcome,
                                Err(EngineError::Pool(PoolError::AbsentSlot { .. }))
                            ),
                            "load {slot} of an absent slot: {:?}",
                            d.outcome
                        );
                    }
                },
                Expect::Invalidate { slot, count } => {
                    assert!(d.is_ok(), "invalidate {slot}: {:?}", d.outcome);
                    for k in 0..count as usize {
                        model[(slot - base) as usize + k] = None;
                    }
                }
            }
        }
    }
    (model, t)
}

fn stress(ops: usize) {
    let topo = Arc::new(TestTopology::new(&[0, 1, 2, 3]));
    // A small shared queue (so the in-flight budget and ENQCMD refusals bite), a short
    // deadline (so lost descriptors mark the device down quickly), quick probes.
    let rig = device_rig(
        Arc::clone(&topo),
        WqMode::Shared,
        16,
        Duration::from_millis(20),
        Duration::from_millis(15),
    );
    rig.pool.swapon(0, PRODUCERS * SPAN, None).unwrap();
    let mut cfg = engine_cfg(Arc::clone(&topo));
    cfg.device = Some(Arc::clone(&rig.backend));
    cfg.queue_capacity = 128;
    cfg.full_policy = FullPolicy::Block;
    let engine = Arc::new(Engine::start(Arc::clone(&rig.pool), cfg).unwrap());

    let stop = Arc::new(AtomicBool::new(false));
    // CPUs going away and back while the producers run (faults come from this thread).
    let chaos = {
        let (stop, topo) = (Arc::clone(&stop), Arc::clone(&topo));
        let engine = Arc::clone(&engine);
        std::thread::spawn(move || {
            let mut rng = Rng(42);
            let mut rounds = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let cpu = 1 + rng.below(3) as usize;
                topo.offline(cpu);
                if rng.below(2) == 0 {
                    let _ = engine.rescan_cpus();
                }
                std::thread::sleep(Duration::from_millis(3));
                topo.online(cpu);
                std::thread::sleep(Duration::from_millis(3));
                rounds += 1;
            }
            rounds
        })
    };
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || producer(p, engine, ops))
        })
        .collect();
    // Fault injection while the producers run.
    let mut rng = Rng(7);
    let faults = rig.emu.faults();
    let mut injected_rounds = 0;
    while !producers.iter().all(|h| h.is_finished()) {
        match rng.below(12) {
            0 | 1 => faults.inject(Target::Compress, Fault::HardwareError, 2),
            2 | 3 => faults.inject(Target::Decompress, Fault::Watchdog, 1),
            4 | 5 => faults.inject(Target::Any, Fault::PageFault { write: false }, 2),
            6 | 7 => faults.reject_enqcmd(20),
            8 => faults.inject(Target::Compress, Fault::OutputOverflow, 1),
            9 => faults.inject(Target::Any, Fault::Lose, 1),
            _ => {}
        }
        injected_rounds += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    let results: Vec<_> = producers.into_iter().map(|h| h.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    let hotplug_rounds = chaos.join().unwrap();
    faults.clear();
    let report = engine.shutdown();
    assert_eq!(report.stragglers, 0);

    // Every slot holds exactly what was last stored (checked on the pool directly).
    let c = builtin();
    let mut present = 0u64;
    let mut buf = vec![0; PAGE_SIZE];
    for (p, (model, _)) in results.iter().enumerate() {
        for (i, v) in model.iter().enumerate() {
            let slot = p as u64 * SPAN + i as u64;
            let got = rig.pool.load(0, slot, &mut buf, LoadMode::KeepCopy);
            match v {
                Some(v) => {
                    present += 1;
                    assert!(got.is_ok(), "slot {slot}: {got:?}");
                    assert!(buf == page(&c, slot, *v), "slot {slot}: not the last store");
                }
                None => assert!(
                    matches!(got, Err(PoolError::AbsentSlot { .. })),
                    "slot {slot} should be empty: {got:?}"
                ),
            }
        }
    }
    assert_eq!(rig.pool.stats().stored_pages, present);

    // The counters add up.
    let mut t = Tally::default();
    for (_, x) in &results {
        t.submitted += x.submitted;
        t.store_pages += x.store_pages;
        t.store_codec_pages += x.store_codec_pages;
        t.load_pages += x.load_pages;
        t.invalidates += x.invalidates;
        t.invalidate_slots += x.invalidate_slots;
        t.absent_loads += x.absent_loads;
        for k in 0..3 {
            t.ops[k] += x.ops[k];
        }
    }
    let m = engine.metrics();
    assert_eq!(m.accepted, t.submitted);
    assert_eq!(m.refused, 0);
    assert_eq!(m.completed_total(), t.submitted);
    assert_eq!(m.completed(Op::Store), t.ops[0]);
    assert_eq!(m.completed(Op::Load), t.ops[1]);
    assert_eq!(m.completed(Op::Invalidate), t.ops[2]);
    assert_eq!(m.failed_of(Op::Store), 0);
    assert_eq!(m.failed_of(Op::Load), t.absent_loads);
    assert_eq!(m.failed_of(Op::Invalidate), 0);
    assert_eq!(m.pages_of(Op::Store), t.store_pages);
    assert_eq!(m.pages_of(Op::Load), t.load_pages);
    assert_eq!(m.queue_depth, 0);
    // Pages per batch: every store page, load page and invalidate item is in one batch.
    let batched: u64 = m
        .batch_pages
        .iter()
        .enumerate()
        .map(|(k, n)| k as u64 * n)
        .sum();
    assert_eq!(batched, t.store_pages + t.load_pages + t.invalidates);
    // Latency is recorded per page (per slot for invalidates).
    assert_eq!(
        m.latency_samples,
        t.store_pages + t.load_pages + t.invalidate_slots
    );
    let dev = m.device.clone().unwrap();
    // Every page that needed compressing was compressed exactly once, by one engine.
    assert_eq!(
        dev.device_pages[0] + dev.software_pages[0],
        t.store_codec_pages,
        "{dev:?}"
    );
    assert!(dev.fallbacks_total() <= dev.software_pages[0] + dev.software_pages[1]);
    assert!(dev.device_pages[0] > 0, "the device did some of the work");
    assert!(
        m.fallbacks(FallbackReason::DeviceError) + m.fallbacks(FallbackReason::QueueBusy) > 0,
        "faults were injected: {dev:?}"
    );
    eprintln!(
        "stress: {} requests, {} store pages ({} codec), device {:?} software {:?}, \
         fallbacks {:?}, marked down {} / recovered {}, mean batch {:.2} pages, \
         {} fault rounds, {} hotplug rounds, p50 {:?} p99 {:?} p999 {:?}",
        t.submitted,
        t.store_pages,
        t.store_codec_pages,
        dev.device_pages,
        dev.software_pages,
        dev.fallbacks,
        dev.marked_down,
        dev.recoveries,
        m.mean_batch_pages(),
        injected_rounds,
        hotplug_rounds,
        m.p50,
        m.p99,
        m.p999
    );
}

#[test]
fn stress_mixed_requests_with_faults_and_hotplug() {
    let ops = std::env::var("SWAPACCEL_STRESS_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    stress(ops);
}

#[test]
#[ignore = "soak (about a minute): run with --ignored"]
fn soak_mixed_requests_with_faults_and_hotplug() {
    stress(40_000);
}
