//! Mixed-fault soak: the engine over the device emulator while every kind of emulator fault
//! is injected, pages are written back to a file, the pool is compacted, CPUs go offline and
//! online, and a swap area is turned off and on again. Two driver threads each own one swap
//! type and a model of what every slot holds; every load is checked against the model. The
//! run reports lost pages (the model holds the page, the load failed) and wrong pages (the
//! load returned other bytes); both must be zero.
//!
//! Short version (20 s) in `cargo test`; `SWAPACCEL_SOAK_SECS=N` sets the length, and the
//! ignored `mixed_fault_soak_long` runs ten minutes:
//!   cargo test -p batching --test soak -- --ignored --nocapture

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use accel::discovery::WqMode;
use accel::emu::{Fault, Target};
use batching::{Engine, Reply, Workers};
use common::*;
use pool::{LoadMode, TestTopology};
use software_fallback::corpus::Corpus;
use software_fallback::PAGE_SIZE;

/// Slots per swap area.
const SLOTS: u64 = 2048;
/// The CPUs of the test topology.
const CPUS: [usize; 3] = [0, 1, 2];

/// What the soak saw.
#[derive(Default)]
struct Tally {
    stores: AtomicU64,
    store_failures: AtomicU64,
    loads: AtomicU64,
    pages_checked: AtomicU64,
    lost: AtomicU64,
    wrong: AtomicU64,
    swapoffs: AtomicU64,
    reclaimed: AtomicU64,
    compactions: AtomicU64,
    hotplugs: AtomicU64,
    first_problem: std::sync::Mutex<Option<String>>,
}

impl Tally {
    fn problem(&self, what: String) {
        let mut f = self.first_problem.lock().unwrap();
        if f.is_none() {
            *f = Some(what);
        }
    }
}

fn backing(dir: &std::path::Path, ty: u32) -> File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join(format!("area{ty}")))
        .expect("backing file")
}

/// One swap type's driver: stores, loads (keep and exclusive), invalidates, and (type 1)
/// swapoff/swapon, all checked against its model of slot → version.
fn drive(
    e: &Engine,
    ty: u32,
    dir: &std::path::Path,
    corpus: &Corpus,
    stop: &AtomicBool,
    t: &Tally,
    seed: u64,
) -> HashMap<u64, u64> {
    let mut rng = Rng(seed | 1);
    let mut model: HashMap<u64, u64> = HashMap::new();
    let mut version = 1u64;
    while !stop.load(Ordering::Relaxed) {
        let slot = rng.below(SLOTS - 16);
        let n = 1 + rng.below(16) as usize;
        match rng.below(100) {
            0..=39 => {
                version += 1;
                let data = folio(corpus, slot, n, version);
                let d = e.store(ty, slot, data).expect("submit").wait();
                t.stores.fetch_add(1, Ordering::Relaxed);
                for k in 0..n as u64 {
                    model.remove(&(slot + k));
                }
                match d.outcome {
                    Ok(Reply::Stored(_)) => {
                        for k in 0..n as u64 {
                            model.insert(slot + k, version);
                        }
                    }
                    // A failed store leaves no entry for its slots.
                    Err(_) => {
                        t.store_failures.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(other) => panic!("store replied {other:?}"),
                }
            }
            40..=84 => {
                let exclusive = rng.below(4) == 0;
                let mode = if exclusive {
                    LoadMode::Exclusive
                } else {
                    LoadMode::KeepCopy
                };
                // Loads of single present slots, so that an absent slot never hides a loss.
                let Some(&v) = model.get(&slot) else {
                    continue;
                };
                let d = e
                    .load(ty, slot, vec![0; PAGE_SIZE], mode)
                    .expect("submit")
                    .wait();
                t.loads.fetch_add(1, Ordering::Relaxed);
                t.pages_checked.fetch_add(1, Ordering::Relaxed);
                match d.outcome {
                    Ok(_) => {
                        if d.buffer != page(corpus, slot, v) {
                            t.wrong.fetch_add(1, Ordering::Relaxed);
                            t.problem(format!("type {ty} slot {slot}: wrong bytes"));
                        }
                        if exclusive {
                            model.remove(&slot);
                        }
                    }
                    Err(err) => {
                        t.lost.fetch_add(1, Ordering::Relaxed);
                        t.problem(format!("type {ty} slot {slot}: load failed: {err}"));
                        // Counted once: the slot's state is no longer known.
                        model.remove(&slot);
                    }
                }
            }
            85..=94 => {
                let d = e.invalidate(ty, slot, n as u64).expect("submit").wait();
                assert!(d.is_ok(), "invalidate: {:?}", d.outcome);
                for k in 0..n as u64 {
                    model.remove(&(slot + k));
                }
            }
            _ if ty == 1 && rng.below(50) == 0 => {
                let pool = e.pool();
                pool.swapoff(ty).expect("swapoff");
                model.clear();
                pool.swapon(ty, SLOTS, Some(backing(dir, ty)))
                    .expect("swapon");
                t.swapoffs.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
    model
}

/// Faults of every kind, writeback, compaction and hotplug, until `stop`.
fn chaos(rig: &DeviceRig, topo: &TestTopology, stop: &AtomicBool, t: &Tally, seed: u64) -> u32 {
    let mut rng = Rng(seed | 1);
    let faults = [
        Fault::PageFault { write: false },
        Fault::PageFault { write: true },
        Fault::OutputOverflow,
        Fault::HardwareError,
        Fault::Watchdog,
        Fault::SlowCompletion(Duration::from_millis(150)),
        Fault::CorruptOutput,
        Fault::Lose,
    ];
    let targets = [
        Target::Any,
        Target::Compress,
        Target::Decompress,
        Target::Verify,
    ];
    let mut offline: Option<usize> = None;
    while !stop.load(Ordering::Relaxed) {
        match rng.below(40) {
            // Armed one at a time and not too often, so the device works between faults
            // (a fault marks it down until a probe finds it well; with faults piling up it
            // would stay down and the soak would test software alone).
            0..=1 if rig.emu.faults().armed() == 0 => {
                let f = faults[rng.below(faults.len() as u64) as usize];
                let tg = targets[rng.below(targets.len() as u64) as usize];
                rig.emu.faults().inject(tg, f, 1 + rng.below(3) as u32);
            }
            0..=1 => {}
            2..=21 => {
                let n = rig.pool.reclaim(1 + rng.below(32) as usize).unwrap_or(0);
                t.reclaimed.fetch_add(n as u64, Ordering::Relaxed);
            }
            22..=29 => {
                rig.pool.compact();
                t.compactions.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                match offline.take() {
                    Some(cpu) => topo.online(cpu),
                    None => {
                        let cpu = CPUS[1 + rng.below(2) as usize];
                        topo.offline(cpu);
                        offline = Some(cpu);
                    }
                }
                t.hotplugs.fetch_add(1, Ordering::Relaxed);
            }
        }
        std::thread::sleep(Duration::from_millis(2 + rng.below(8)));
    }
    if let Some(cpu) = offline {
        topo.online(cpu);
    }
    rig.emu.faults().clear();
    rig.emu.faults().injected()
}

fn soak(secs: u64) {
    let dir = std::env::temp_dir().join(format!("batching-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let topo = Arc::new(TestTopology::new(&CPUS));
    // Short timeouts: lost descriptors and slow completions fall back within the soak.
    let rig = device_rig(
        Arc::clone(&topo),
        WqMode::Dedicated,
        32,
        Duration::from_millis(100),
        Duration::from_millis(20),
    );
    for ty in [0, 1] {
        rig.pool.swapon(ty, SLOTS, Some(backing(&dir, ty))).unwrap();
    }
    let mut cfg = engine_cfg(Arc::clone(&topo));
    cfg.device = Some(Arc::clone(&rig.backend));
    cfg.workers = Workers::PerOnlineCpu;
    let e = Engine::start(Arc::clone(&rig.pool), cfg).unwrap();
    let corpus = builtin();
    let stop = AtomicBool::new(false);
    let t = Tally::default();
    let started = Instant::now();
    let (models, injected) = std::thread::scope(|s| {
        let drivers: Vec<_> = [0u32, 1]
            .into_iter()
            .map(|ty| {
                let (e, dir, corpus, stop, t) = (&e, &dir, &corpus, &stop, &t);
                s.spawn(move || drive(e, ty, dir, corpus, stop, t, 0x5eed + ty as u64))
            })
            .collect();
        let ch = {
            let (rig, topo, stop, t) = (&rig, &topo, &stop, &t);
            s.spawn(move || chaos(rig, topo, stop, t, 0xc4a05))
        };
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
        let injected = ch.join().unwrap();
        let models: Vec<_> = drivers.into_iter().map(|d| d.join().unwrap()).collect();
        (models, injected)
    });
    // With the faults cleared: every page the models hold reads back right, straight from
    // the pool (resident or written back).
    let mut final_checked = 0u64;
    for (ty, model) in models.iter().enumerate() {
        for (&slot, &v) in model {
            let mut p = vec![0u8; PAGE_SIZE];
            final_checked += 1;
            match rig.pool.load(ty as u32, slot, &mut p, LoadMode::KeepCopy) {
                Ok(_) if p == page(&corpus, slot, v) => {}
                Ok(_) => {
                    t.wrong.fetch_add(1, Ordering::Relaxed);
                    t.problem(format!("final: type {ty} slot {slot}: wrong bytes"));
                }
                Err(err) => {
                    t.lost.fetch_add(1, Ordering::Relaxed);
                    t.problem(format!("final: type {ty} slot {slot}: {err}"));
                }
            }
        }
    }
    let m = e.metrics();
    let report = e.shutdown();
    let stats = rig.pool.stats();
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    eprintln!(
        "soak {:.0} s: {} stores ({} failed), {} loads, {} + {} pages checked, {} faults \
         injected, {} pages written back, {} compactions, {} hotplug events, {} swapoff/on; \
         device pages (compress, decompress) {:?}, fallbacks {:?}; LOST {} WRONG {}",
        started.elapsed().as_secs_f64(),
        ld(&t.stores),
        ld(&t.store_failures),
        ld(&t.loads),
        ld(&t.pages_checked),
        final_checked,
        injected,
        ld(&t.reclaimed),
        ld(&t.compactions),
        ld(&t.hotplugs),
        ld(&t.swapoffs),
        m.device
            .as_ref()
            .map(|d| (d.device_pages[0], d.device_pages[1])),
        m.device.as_ref().map(|d| d.fallbacks_total()),
        ld(&t.lost),
        ld(&t.wrong),
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(report.stragglers, 0);
    assert!(
        injected > 0,
        "no fault was injected: the soak proved nothing"
    );
    assert!(ld(&t.reclaimed) > 0, "nothing was written back");
    assert!(ld(&t.pages_checked) > 100, "too few loads to mean anything");
    assert_eq!(
        (ld(&t.lost), ld(&t.wrong)),
        (0, 0),
        "pages lost or wrong; first: {:?} (pool: {stats:?})",
        t.first_problem.lock().unwrap()
    );
}

/// The short soak: part of `cargo test` and `.ci/run`.
#[test]
fn mixed_fault_soak() {
    let secs = std::env::var("SWAPACCEL_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    soak(secs);
}

/// Ten minutes of the same.
#[test]
#[ignore = "ten minutes: cargo test -p batching --test soak -- --ignored"]
fn mixed_fault_soak_long() {
    soak(600);
}
