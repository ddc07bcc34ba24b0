//! Invariant 5 on every error path of a store: whatever fails, the pool holds no entry for any
//! slot the folio covers; and what happens when a context or a compressor cannot be built.
// Under the `shuttle` feature the pool runs on shuttle primitives: only tests/shuttle.rs runs.
#![cfg(not(feature = "shuttle"))]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use common::{env_pool, page_for, CodecEnv};
use pool::{LoadMode, Pool, PoolError, TestTopology};
use software_fallback::{CodecId, CodecSpec, PAGE_SIZE};

fn absent(pool: &Pool, ty: u32, slot: u64) -> bool {
    let mut out = vec![0u8; PAGE_SIZE];
    matches!(
        pool.load(ty, slot, &mut out, LoadMode::KeepCopy),
        Err(PoolError::AbsentSlot { .. })
    )
}

fn holds(pool: &Pool, ty: u32, slot: u64, want: &[u8]) -> bool {
    let mut out = vec![0u8; PAGE_SIZE];
    pool.load(ty, slot, &mut out, LoadMode::KeepCopy).is_ok() && out == want
}

/// A hot-added CPU whose context cannot be built: the CPU is only a hint, so stores and
/// loads run on another context instead of failing.
#[test]
fn unbuildable_context_falls_back_to_another() {
    let topo = Arc::new(TestTopology::new(&[0]));
    let env = Arc::new(CodecEnv::default());
    let pool = env_pool(CodecSpec::LZ4, topo.clone(), env.clone());
    pool.swapon(0, 16, None).unwrap();
    pool.store(0, 3, &page_for(3, 1)).unwrap();
    topo.online(7);
    env.fail_build(true);
    pool.store_batch_on(7, 0, 3, &page_for(3, 2)).unwrap();
    let mut out = vec![0u8; PAGE_SIZE];
    pool.load_on(7, 0, 3, &mut out, LoadMode::KeepCopy).unwrap();
    assert_eq!(out, page_for(3, 2));
    assert_eq!(pool.context_cpus(), vec![0]);
    env.fail_build(false);
    pool.store_batch_on(7, 0, 4, &page_for(4, 1)).unwrap();
    assert_eq!(
        pool.context_cpus(),
        vec![0, 7],
        "built once the factory works"
    );
}

/// After a compressor switch, a context builds the new compressor on its next store; a load
/// does not need it, so a load still works while the new compressor cannot be built, and
/// a store that cannot build it fails as a whole, leaving no older copy.
#[test]
fn compressor_build_failure_fails_stores_not_loads() {
    let topo = Arc::new(TestTopology::new(&[0]));
    let env = Arc::new(CodecEnv::default());
    let pool = env_pool(CodecSpec::LZ4, topo, env.clone());
    pool.swapon(0, 16, None).unwrap();
    pool.store(0, 3, &page_for(3, 1)).unwrap();
    pool.store(0, 9, &page_for(9, 1)).unwrap();
    pool.set_compressor(CodecSpec::ZSTD).unwrap();
    env.fail_build(true);
    let mut out = vec![0u8; PAGE_SIZE];
    pool.load(0, 9, &mut out, LoadMode::KeepCopy)
        .expect("a load does not need the new compressor");
    assert_eq!(out, page_for(9, 1));
    let err = pool.store(0, 3, &page_for(3, 2)).unwrap_err();
    assert!(matches!(err, PoolError::Factory { .. }), "{err}");
    assert!(absent(&pool, 0, 3), "a failed store left the older copy");
    env.fail_build(false);
    assert!(holds(&pool, 0, 9, &page_for(9, 1)), "a neighbour was lost");
}

/// A folio that runs past the area's end fails; the older copies of the slots it covers
/// inside the area go too.
#[test]
fn out_of_range_folio_drops_older_copies_in_range() {
    let (pool, _) = common::pool_with(CodecSpec::LZ4, &[0]);
    pool.swapon(0, 8, None).unwrap();
    pool.store(0, 6, &[page_for(6, 1), page_for(7, 1)].concat())
        .unwrap();
    pool.store(0, 5, &page_for(5, 1)).unwrap();
    let folio: Vec<u8> = (6..10).flat_map(|s| page_for(s, 2)).collect();
    assert!(matches!(
        pool.store(0, 6, &folio),
        Err(PoolError::SlotOutOfRange { .. })
    ));
    assert!(absent(&pool, 0, 6) && absent(&pool, 0, 7));
    assert!(holds(&pool, 0, 5, &page_for(5, 1)));
    // A buffer that is not whole pages covers slot 5 too.
    assert!(matches!(
        pool.store(0, 5, &page_for(5, 2)[..100]),
        Err(PoolError::WrongBufferSize { .. })
    ));
    assert!(absent(&pool, 0, 5));
    assert_eq!(pool.stats().stored_pages, 0);
}

/// A `swapon` refused because the type is on leaves the caller's file alone.
#[test]
fn busy_swapon_does_not_touch_the_file() {
    let (pool, _) = common::pool_with(CodecSpec::LZ4, &[0]);
    let (a, b) = (common::TempFile::new("on-a"), common::TempFile::new("on-b"));
    pool.swapon(0, 8, Some(a.open_rw())).unwrap();
    let err = pool.swapon(0, 8, Some(b.open_rw())).unwrap_err();
    assert!(matches!(err, PoolError::SwapTypeBusy { ty: 0 }), "{err}");
    assert_eq!(
        std::fs::metadata(&b.path).unwrap().len(),
        0,
        "file extended"
    );
}

/// Two users of one context both find its compressor stale after a switch and both build the
/// new one; the one that loses the race must free its spare codec after unlocking the
/// context (a device codec's drop can block), not under the lock. The spare's drop checks
/// that another thread can use the context meanwhile.
#[test]
fn a_spare_compressor_is_freed_outside_the_context_lock() {
    let cell: Arc<OnceLock<Weak<Pool>>> = Arc::new(OnceLock::new());
    let armed = Arc::new(AtomicBool::new(false));
    let under_lock = Arc::new(AtomicBool::new(false));
    let (c1, c2, a1, a2, u2) = (
        cell.clone(),
        cell.clone(),
        armed.clone(),
        armed.clone(),
        under_lock.clone(),
    );
    let env = CodecEnv {
        // The first build after arming (the main thread's store): another thread stores on
        // the same context meanwhile, and installs its own new compressor first.
        on_build: Box::new(move |_| {
            if a1.swap(false, Ordering::SeqCst) {
                let p = c1.get().and_then(Weak::upgrade).unwrap();
                std::thread::spawn(move || p.store_batch_on(0, 0, 1, &page_for(1, 1)).unwrap())
                    .join()
                    .unwrap();
                a1.store(true, Ordering::SeqCst); // now watch the drop
            }
        }),
        // The spare zstd codec's drop: can another thread lock the context now?
        on_drop: Box::new(move |id| {
            if id == CodecId::Zstd && a2.swap(false, Ordering::SeqCst) {
                let p = c2.get().and_then(Weak::upgrade).unwrap();
                let (tx, rx) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    let mut out = vec![0u8; PAGE_SIZE];
                    let _ = p.load_on(0, 0, 1, &mut out, LoadMode::KeepCopy);
                    let _ = tx.send(());
                });
                if rx.recv_timeout(Duration::from_secs(2)).is_err() {
                    u2.store(true, Ordering::SeqCst);
                }
            }
        }),
        ..CodecEnv::default()
    };
    let topo = Arc::new(TestTopology::new(&[0]));
    let pool = Arc::new(env_pool(CodecSpec::LZ4, topo, Arc::new(env)));
    let _ = cell.set(Arc::downgrade(&pool));
    pool.swapon(0, 16, None).unwrap();
    pool.set_compressor(CodecSpec::ZSTD).unwrap();
    armed.store(true, Ordering::SeqCst);
    pool.store_batch_on(0, 0, 0, &page_for(0, 1)).unwrap();
    assert!(
        !armed.load(Ordering::SeqCst),
        "the spare codec was never dropped"
    );
    assert!(
        !under_lock.load(Ordering::SeqCst),
        "the spare compressor was dropped while its context was locked"
    );
    assert!(holds(&pool, 0, 0, &page_for(0, 1)) && holds(&pool, 0, 1, &page_for(1, 1)));
}
