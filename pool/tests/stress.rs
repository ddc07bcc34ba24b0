//! Stress tests for the three lifetime protocols. Each runs briefly by default; set
//! `POOL_STRESS_SECS` for a soak. Each has a test-only switch that removes the protection it
//! checks (`--cfg swapaccel_unprotected="hotplug"`, `"writeback"`, `"compaction"`; see
//! pool/README.md); built with it, the matching test fails.
// Under the `shuttle` feature the pool runs on shuttle primitives: only tests/shuttle.rs runs.
#![cfg(not(feature = "shuttle"))]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{page_for, TempFile};
use pool::{CpuTopology, LoadMode, Pool, PoolConfig, PoolError, TestTopology};
use software_fallback::{CodecSpec, PAGE_SIZE};

fn duration(default_ms: u64) -> Duration {
    std::env::var("POOL_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(Duration::from_millis(default_ms), Duration::from_secs)
}

/// Sets `stop` once at least `min` has passed and `seen()` holds, or after `min` + 10 s at
/// most (the test's own assertions then report what was not seen). Returns when it is set.
fn stop_when(stop: &AtomicBool, min: Duration, seen: impl Fn() -> bool) {
    let start = Instant::now();
    while start.elapsed() < min || (!seen() && start.elapsed() < min + Duration::from_secs(10)) {
        thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
}

fn pool(topo: Arc<TestTopology>, max: u64) -> Arc<Pool> {
    Arc::new(
        Pool::new(PoolConfig {
            codec: CodecSpec::LZ4,
            max_pool_bytes: max,
            accept_threshold_percent: 80,
            topology: topo,
            ..PoolConfig::default()
        })
        .unwrap(),
    )
}

/// Stores by one writer per slot range, each checking that every load returns the last bytes
/// it stored (or, after its own invalidate, nothing).
fn writer(
    p: &Pool,
    topo: &TestTopology,
    ty: u32,
    slots: std::ops::Range<u64>,
    stop: &AtomicBool,
    limit_ok: bool,
) -> u64 {
    let mut version = vec![0u64; slots.end as usize];
    let mut present = vec![false; slots.end as usize];
    let mut out = vec![0u8; PAGE_SIZE];
    let mut ops = 0u64;
    let mut r = slots.start.wrapping_mul(2654435761) | 1;
    while !stop.load(Ordering::Relaxed) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        let slot = slots.start + r % (slots.end - slots.start);
        let s = slot as usize;
        match r % 7 {
            0..=2 => {
                let v = version[s] + 1;
                match p.store_batch_on(topo.current(), ty, slot, &page_for(slot, v)) {
                    Ok(_) => {
                        version[s] = v;
                        present[s] = true;
                    }
                    Err(PoolError::LimitReached { .. }) if limit_ok => present[s] = false,
                    Err(e) => panic!("store slot {slot}: {e}"),
                }
            }
            3 | 4 => match p.load(ty, slot, &mut out, LoadMode::KeepCopy) {
                Ok(_) => {
                    assert!(
                        present[s],
                        "slot {slot}: load of a slot that should be empty"
                    );
                    assert!(
                        out == page_for(slot, version[s]),
                        "slot {slot}: stale or wrong bytes (want version {})",
                        version[s]
                    );
                }
                Err(PoolError::AbsentSlot { .. }) => assert!(!present[s], "slot {slot} lost"),
                Err(e) => panic!("load slot {slot}: {e}"),
            },
            5 => {
                if present[s] {
                    p.load(ty, slot, &mut out, LoadMode::Exclusive)
                        .unwrap_or_else(|e| panic!("exclusive load slot {slot}: {e}"));
                    assert!(
                        out == page_for(slot, version[s]),
                        "slot {slot}: stale or wrong bytes"
                    );
                    present[s] = false;
                }
            }
            _ => {
                p.invalidate(ty, slot).unwrap();
                present[s] = false;
            }
        }
        ops += 1;
    }
    // Final check of everything this writer holds.
    for slot in slots {
        let s = slot as usize;
        match p.load(ty, slot, &mut out, LoadMode::KeepCopy) {
            Ok(_) => assert!(
                present[s] && out == page_for(slot, version[s]),
                "slot {slot} wrong at end"
            ),
            Err(PoolError::AbsentSlot { .. }) => assert!(!present[s], "slot {slot} lost at end"),
            Err(e) => panic!("final load slot {slot}: {e}"),
        }
    }
    ops
}

/// Contexts vs CPU hotplug: CPUs go offline and come back while two threads store and load
/// with hints that follow the (changing) online set. No context may be freed or rebuilt, and
/// nothing may be lost.
#[test]
fn contexts_survive_cpu_hotplug() {
    let topo = Arc::new(TestTopology::new(&[0, 1, 2, 3]));
    let p = pool(topo.clone(), u64::MAX);
    p.swapon(0, 512, None).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let plugs = Arc::new(AtomicU64::new(0));
    let plug = {
        let (topo, stop, plugs) = (topo.clone(), stop.clone(), plugs.clone());
        thread::spawn(move || {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let cpu = 1 + i % 3;
                topo.offline(cpu);
                thread::yield_now();
                topo.online(cpu);
                plugs.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        })
    };
    let workers: Vec<_> = (0..2u64)
        .map(|w| {
            let (p, topo, stop) = (p.clone(), topo.clone(), stop.clone());
            thread::spawn(move || writer(&p, &topo, 0, w * 256..(w + 1) * 256, &stop, false))
        })
        .collect();
    stop_when(&stop, duration(700), || {
        p.stats().loads > 1000 && plugs.load(Ordering::Relaxed) > 100
    });
    let ops: u64 = workers.into_iter().map(|h| h.join().expect("worker")).sum();
    plug.join().unwrap();
    let plugs = plugs.load(Ordering::Relaxed);
    assert!(
        ops > 1000 && plugs > 100,
        "too little overlap: {ops} operations, {plugs} offline/online cycles"
    );
    let s = p.stats();
    assert_eq!(
        s.contexts_created, 4,
        "a context was rebuilt after {ops} operations"
    );
    assert_eq!(p.context_cpus(), vec![0, 1, 2, 3]);
}

/// Writeback vs load, store, invalidate: a reclaimer writes entries back as fast as it can
/// while writers overwrite, load and invalidate the same few slots. Every load must return
/// the last bytes stored. Runs until entries were seen to change under a writeback in
/// progress (the window that re-validation closes) and loads came from the file.
#[test]
fn writeback_races_with_store_load_invalidate() {
    let topo = Arc::new(TestTopology::new(&[0, 1]));
    let p = pool(topo.clone(), u64::MAX);
    let f = TempFile::new("stress-wb");
    p.swapon(0, 256, Some(f.open_rw())).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reclaimer = {
        let (p, stop) = (p.clone(), stop.clone());
        thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += p.reclaim(4).unwrap();
            }
            n
        })
    };
    // A hot set of 2 × 12 slots, so that writers often hit the slot being written back.
    let workers: Vec<_> = (0..2u64)
        .map(|w| {
            let (p, topo, stop) = (p.clone(), topo.clone(), stop.clone());
            thread::spawn(move || writer(&p, &topo, 0, w * 12..(w + 1) * 12, &stop, false))
        })
        .collect();
    stop_when(&stop, duration(1000), || {
        let s = p.stats();
        s.writeback_raced > 0 && s.file_loads > 0
    });
    for w in workers {
        w.join().expect("writer saw wrong data");
    }
    let written = reclaimer.join().unwrap();
    let s = p.stats();
    assert!(written > 0, "the reclaimer never wrote anything back");
    assert!(s.file_loads > 0, "no load came from the file: {s:?}");
    assert!(
        s.writeback_raced > 0,
        "no entry changed during a writeback: the race was not exercised: {s:?}"
    );
}

/// Writeback vs swapoff: swapoff while a reclaimer is writing the area back. Afterwards the
/// pool must hold nothing of the area.
#[test]
fn writeback_races_with_swapoff() {
    let topo = Arc::new(TestTopology::new(&[0, 1]));
    let p = pool(topo, u64::MAX);
    let until = Instant::now() + duration(700);
    let mut rounds = 0;
    let mut overlapped = 0;
    while Instant::now() < until
        || overlapped == 0 && Instant::now() < until + Duration::from_secs(10)
    {
        let f = TempFile::new("stress-off");
        p.swapon(3, 128, Some(f.open_rw())).unwrap();
        for s in 0..128 {
            p.store(3, s, &page_for(s, rounds)).unwrap();
        }
        let reclaimer = {
            let p = p.clone();
            thread::spawn(move || {
                for _ in 0..64 {
                    if p.reclaim(4).is_err() {
                        break;
                    }
                }
            })
        };
        while p.stats().written_back == 0 && !reclaimer.is_finished() {
            thread::yield_now();
        }
        p.swapoff(3).unwrap();
        // Once swapoff has returned the daemon owns the file again: nothing may write to it.
        let after_swapoff = std::fs::read(&f.path).unwrap();
        if !reclaimer.is_finished() {
            overlapped += 1; // swapoff ran while the reclaimer was still at work
        }
        reclaimer.join().unwrap();
        assert!(
            std::fs::read(&f.path).unwrap() == after_swapoff,
            "round {rounds}: writeback wrote to the file after swapoff returned"
        );
        let s = p.stats();
        assert_eq!(
            (s.stored_pages, s.on_disk_pages, s.pool_bytes),
            (0, 0, 0),
            "round {rounds}: something of a swapped-off area is still held"
        );
        rounds += 1;
    }
    assert!(
        p.stats().written_back > 0,
        "no writeback in {rounds} rounds"
    );
    assert!(
        overlapped > 0,
        "swapoff never overlapped a reclaimer in {rounds} rounds"
    );
}

/// Writeback under a small memory limit with a background reclaimer: every load returns the
/// last stored bytes, stores refused at the limit leave their slot empty.
#[test]
fn small_limit_with_background_writeback() {
    let topo = Arc::new(TestTopology::new(&[0, 1]));
    let p = pool(topo.clone(), 96 * 1024);
    let f = TempFile::new("stress-limit");
    p.swapon(0, 512, Some(f.open_rw())).unwrap();
    let bg = Pool::spawn_reclaimer(&p, Duration::from_millis(5));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2u64)
        .map(|w| {
            let (p, topo, stop) = (p.clone(), topo.clone(), stop.clone());
            thread::spawn(move || writer(&p, &topo, 0, w * 256..(w + 1) * 256, &stop, true))
        })
        .collect();
    stop_when(&stop, duration(1000), || {
        let s = p.stats();
        s.limit_hits > 1 && s.written_back > 0 && s.file_loads > 0
    });
    for w in workers {
        w.join().expect("writer saw wrong data");
    }
    drop(bg);
    let s = p.stats();
    assert!(
        s.limit_hits > 1 && s.written_back > 0 && s.file_loads > 0,
        "the limit, writeback and file loads were not all exercised: {s:?}"
    );
}

/// Compaction vs load and free: a compactor moves objects while writers store, load and free
/// objects of the same classes.
#[test]
fn compaction_races_with_load_and_free() {
    let topo = Arc::new(TestTopology::new(&[0, 1]));
    let p = pool(topo.clone(), u64::MAX);
    p.swapon(0, 256, None).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let compactor = {
        let (p, stop) = (p.clone(), stop.clone());
        thread::spawn(move || {
            let mut freed = 0;
            while !stop.load(Ordering::Relaxed) {
                freed += p.compact();
            }
            freed
        })
    };
    let workers: Vec<_> = (0..2u64)
        .map(|w| {
            let (p, topo, stop) = (p.clone(), topo.clone(), stop.clone());
            thread::spawn(move || writer(&p, &topo, 0, w * 128..(w + 1) * 128, &stop, false))
        })
        .collect();
    let overlapped = |s: &pool::PoolStats| s.compaction_moves > 100 && s.loads > 1000;
    stop_when(&stop, duration(1000), || overlapped(&p.stats()));
    for w in workers {
        w.join().expect("writer saw wrong data");
    }
    compactor.join().unwrap();
    let s = p.stats();
    assert!(
        overlapped(&s),
        "compaction and loads did not overlap much: {s:?}"
    );
}

/// Swapoff vs stores and loads in flight: writers store, load and invalidate on a type that
/// the main thread swaps off and on again. A swapoff waits for the operations inside and
/// frees what they stored; right after it returns (before the next swapon) the pool holds
/// nothing, and every store either succeeded before it or failed with `UnknownSwapType`.
#[test]
fn swapoff_races_with_stores_and_loads() {
    let topo = Arc::new(TestTopology::new(&[0, 1]));
    let p = pool(topo.clone(), u64::MAX);
    p.swapon(4, 64, None).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ok_stores = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..2u64)
        .map(|w| {
            let (p, topo, stop, ok) = (p.clone(), topo.clone(), stop.clone(), ok_stores.clone());
            thread::spawn(move || {
                let mut out = vec![0u8; PAGE_SIZE];
                let mut v = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    v += 1;
                    let slot = w * 32 + v % 32;
                    let folio: Vec<u8> = (0..4).flat_map(|i| page_for(slot + i, v)).collect();
                    match p.store_batch_on(topo.current(), 4, slot.min(60), &folio) {
                        Ok(_) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(PoolError::UnknownSwapType { .. }) => {}
                        Err(e) => panic!("store: {e}"),
                    }
                    match p.load(4, slot.min(60), &mut out, LoadMode::KeepCopy) {
                        Ok(_)
                        | Err(PoolError::UnknownSwapType { .. } | PoolError::AbsentSlot { .. }) => {
                        }
                        Err(e) => panic!("load: {e}"),
                    }
                }
            })
        })
        .collect();
    let until = Instant::now() + duration(700);
    let give_up = until + Duration::from_secs(10);
    let mut rounds = 0u64;
    let mut held_before = 0u64;
    let overlapped = |held: u64| held > 0 && ok_stores.load(Ordering::Relaxed) > 100;
    while Instant::now() < until
        || rounds < 20
        || (!overlapped(held_before) && Instant::now() < give_up)
    {
        thread::sleep(Duration::from_micros(500));
        held_before += p.stats().stored_pages;
        p.swapoff(4).unwrap();
        let s = p.stats();
        assert_eq!(
            (s.stored_pages, s.pool_bytes, s.index_bytes),
            (0, 0, 0),
            "round {rounds}: a swapped-off area still holds something"
        );
        p.swapon(4, 64, None).unwrap();
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    assert!(
        overlapped(held_before),
        "stores did not overlap the swapoffs ({rounds} rounds)"
    );
}
