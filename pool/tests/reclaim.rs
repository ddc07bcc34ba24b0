//! Reclaim: error classification, decoder lifetime, the background reclaimer's lifetime and
//! how much it writes back to get under the accept threshold.
// Under the `shuttle` feature the pool runs on shuttle primitives: only tests/shuttle.rs runs.
#![cfg(not(feature = "shuttle"))]

mod common;

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use common::{env_pool, page_for, small_pool_on_file, CodecEnv, TempFile};
use pool::{LoadMode, Pool, PoolConfig, PoolError, TestTopology};
use software_fallback::{CodecId, CodecSpec, PAGE_SIZE};

fn counted_pool(codec: CodecSpec) -> (Pool, Arc<CodecEnv>) {
    let env = Arc::new(CodecEnv::default());
    let topo = Arc::new(TestTopology::new(&[0]));
    (env_pool(codec, topo, env.clone()), env)
}

/// A writeback whose decoder cannot be built reports the factory's error — the entry is not
/// corrupt — and keeps the entry.
#[test]
fn writeback_decoder_failure_is_not_corruption() {
    let f = TempFile::new("rc-factory");
    let (pool, env) = counted_pool(CodecSpec::DEFLATE);
    pool.swapon(0, 16, Some(f.open_rw())).unwrap();
    pool.store(0, 2, &page_for(2, 1)).unwrap();
    env.fail_build(true);
    let err = pool.reclaim(1).unwrap_err();
    env.fail_build(false);
    assert!(matches!(err, PoolError::Factory { .. }), "{err}");
    let s = pool.stats();
    assert_eq!((s.decompress_failures, s.written_back), (0, 0), "{s:?}");
    let mut out = vec![0u8; PAGE_SIZE];
    pool.load(0, 2, &mut out, LoadMode::KeepCopy).unwrap();
    assert_eq!(out, page_for(2, 1));
    assert_eq!(pool.reclaim(1).unwrap(), 1);
}

/// The reclaimer's decoder for a format goes when that format's last entry does, like the
/// contexts' decoders.
#[test]
fn reclaimer_decoders_go_with_their_format() {
    let f = TempFile::new("rc-dec");
    let (pool, env) = counted_pool(CodecSpec::DEFLATE);
    let deflate = || env.live(CodecId::RawDeflate);
    pool.swapon(0, 64, Some(f.open_rw())).unwrap();
    for s in 0..4 {
        pool.store(0, s, &page_for(s, 1)).unwrap();
    }
    assert_eq!(pool.reclaim(1).unwrap(), 1); // builds the reclaimer's deflate decoder
    pool.set_compressor(CodecSpec::LZ4).unwrap();
    for s in 0..4 {
        pool.invalidate(0, s).unwrap();
    }
    pool.store(0, 8, &page_for(8, 1)).unwrap(); // the context switches to lz4
    assert_eq!(pool.reclaim(1).unwrap(), 1); // an lz4 entry
    assert_eq!(
        deflate(),
        0,
        "deflate decoders outlived the last deflate entry"
    );
}

/// The background reclaimer does not keep a dropped pool alive while it sleeps, and dropping
/// its handle does not wait for its period.
#[test]
fn background_reclaimer_lets_the_pool_go() {
    let pool = Arc::new(Pool::new(PoolConfig::default()).unwrap());
    let bg = Pool::spawn_reclaimer(&pool, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(50)); // the thread is asleep now
    let weak = Arc::downgrade(&pool);
    drop(pool);
    assert!(
        weak.upgrade().is_none(),
        "the sleeping reclaimer keeps the pool alive"
    );
    let t = Instant::now();
    drop(bg);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "dropping the handle waited {:?} for the reclaimer's period",
        t.elapsed()
    );
}

/// Stored in an order unlike the clock's, written-back entries free objects spread over
/// every span: the reclaimer must compact as it goes rather than write back everything
/// before the pool's memory falls to the accept threshold.
#[test]
fn background_reclaim_writes_back_about_what_the_threshold_needs() {
    let f = TempFile::new("rc-over");
    let limit = 512 * 1024;
    let pool = Arc::new(
        Pool::new(PoolConfig {
            codec: CodecSpec::LZ4,
            max_pool_bytes: limit,
            accept_threshold_percent: 60,
            topology: Arc::new(TestTopology::new(&[0])),
            ..PoolConfig::default()
        })
        .unwrap(),
    );
    let slots = 4096u64;
    pool.swapon(0, slots, Some(f.open_rw())).unwrap();
    // Slots in a scattered order: slot order (the clock's) is not allocation order.
    let mut stored = 0u64;
    for i in 0..slots {
        let s = (i * 2654435761) % slots;
        if pool.store(0, s, &page_for(s, 1)).is_err() {
            break;
        }
        stored += 1;
    }
    assert!(pool.stats().limit_hits == 1 && stored > 100, "{stored}");
    let bg = Pool::spawn_reclaimer(&pool, Duration::from_millis(1));
    let deadline = Instant::now() + Duration::from_secs(20);
    while pool.stats().pool_bytes > limit * 60 / 100 {
        assert!(Instant::now() < deadline, "no progress: {:?}", pool.stats());
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(bg);
    let s = pool.stats();
    eprintln!("stored {stored}, written back {}", s.written_back);
    assert!(
        s.written_back < stored * 3 / 4,
        "wrote back {} of {stored} entries to free 40 % of the pool",
        s.written_back
    );
}

/// Something to run once from inside a decoder call, with the pool in hand.
type Hook = Box<dyn FnOnce(&Pool) + Send>;

/// A pool whose decoders run the hook put in the returned cell (once) on their next call.
fn hooked_pool() -> (Arc<Pool>, Arc<Mutex<Option<Hook>>>) {
    let hook: Arc<Mutex<Option<Hook>>> = Arc::new(Mutex::new(None));
    let cell: Arc<OnceLock<Weak<Pool>>> = Arc::new(OnceLock::new());
    let (hook2, cell2) = (hook.clone(), cell.clone());
    let env = CodecEnv {
        on_decompress: Box::new(move || {
            let hook = hook2.lock().unwrap().take();
            if let (Some(hook), Some(pool)) = (hook, cell2.get().and_then(Weak::upgrade)) {
                // (A codec calling back into the pool is fine here, on one thread with no
                // swapon or swapoff waiting; see "Which calls block" in pool.rs.)
                hook(&pool);
            }
        }),
        ..CodecEnv::default()
    };
    let topo = Arc::new(TestTopology::new(&[0]));
    let pool = Arc::new(env_pool(CodecSpec::LZ4, topo, Arc::new(env)));
    let _ = cell.set(Arc::downgrade(&pool));
    (pool, hook)
}

/// The entry is replaced while writeback decodes and writes it (the reclaimer holds no
/// index lock then): writeback must notice and leave the new entry in place, so the next
/// load returns the new bytes, not the stale page it wrote to the file.
#[test]
fn entry_rewritten_during_writeback_is_not_replaced() {
    let f = TempFile::new("rc-toctou");
    let (pool, hook) = hooked_pool();
    pool.swapon(0, 16, Some(f.open_rw())).unwrap();
    pool.store(0, 3, &page_for(3, 1)).unwrap();
    *hook.lock().unwrap() = Some(Box::new(|p: &Pool| {
        p.store(0, 3, &page_for(3, 2)).unwrap();
    }));
    // (The sweep goes on after the raced entry and may write back the new one.)
    let written = pool.reclaim(1).unwrap();
    assert!(hook.lock().unwrap().is_none(), "the hook did not run");
    let mut out = vec![0u8; PAGE_SIZE];
    pool.load(0, 3, &mut out, LoadMode::KeepCopy).unwrap();
    assert!(out == page_for(3, 2), "writeback replaced a newer entry");
    let s = pool.stats();
    assert_eq!(s.writeback_raced, 1);
    assert_eq!(
        (s.written_back, s.on_disk_pages),
        (written as u64, written as u64)
    );
    pool.store(0, 3, &page_for(3, 3)).unwrap();
    // The same with an invalidate: the slot stays empty.
    *hook.lock().unwrap() = Some(Box::new(|p: &Pool| {
        p.invalidate(0, 3).unwrap();
    }));
    assert_eq!(pool.reclaim(1).unwrap(), 0);
    assert_eq!(pool.stats().writeback_raced, 2);
    assert!(matches!(
        pool.load(0, 3, &mut out, LoadMode::KeepCopy),
        Err(PoolError::AbsentSlot { .. })
    ));
    assert_eq!(pool.stats().on_disk_pages, 0);
}

/// A read error on a written-back page leaves the entry (an exclusive load drops nothing).
#[test]
fn file_read_error_keeps_the_entry() {
    let f = TempFile::new("rc-read");
    let (pool, _) = hooked_pool();
    let file = f.open_rw();
    pool.swapon(0, 16, Some(file.try_clone().unwrap())).unwrap();
    pool.store(0, 9, &page_for(9, 1)).unwrap();
    assert_eq!(pool.reclaim(1).unwrap(), 1);
    file.set_len(4 * PAGE_SIZE as u64).unwrap(); // slot 9 now reads short
    let mut out = vec![0u8; PAGE_SIZE];
    let err = pool.load(0, 9, &mut out, LoadMode::Exclusive).unwrap_err();
    assert!(
        matches!(
            err,
            PoolError::Io {
                slot: 9,
                op: "read",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(pool.stats().on_disk_pages, 1);
    assert!(pool.invalidate(0, 9).unwrap().is_some());
}

/// After a compressor switch, a context that only loads still lets the old compressor go
/// (loads bring the compressor up to date when they can), and its decoder for the old
/// format goes with the format's last entry.
#[test]
fn load_only_context_drops_the_old_compressor() {
    let (pool, env) = counted_pool(CodecSpec::DEFLATE);
    let deflate = || env.live(CodecId::RawDeflate);
    pool.swapon(0, 16, None).unwrap();
    pool.store(0, 0, &page_for(0, 1)).unwrap();
    pool.store(0, 1, &vec![0u8; PAGE_SIZE]).unwrap(); // same-filled: no codec
    pool.set_compressor(CodecSpec::LZ4).unwrap();
    let mut out = vec![0u8; PAGE_SIZE];
    pool.load(0, 0, &mut out, LoadMode::Exclusive).unwrap();
    assert_eq!(out, page_for(0, 1));
    pool.load(0, 1, &mut out, LoadMode::KeepCopy).unwrap();
    assert_eq!(
        deflate(),
        0,
        "the old compressor or its decoder outlived its last entry"
    );
}

/// Stopping one background reclaimer stops only that one: a reclaimer spawned after an
/// earlier one was dropped still works.
#[test]
fn a_reclaimer_spawned_after_another_was_dropped_works() {
    let f = TempFile::new("rc-respawn");
    let pool = small_pool_on_file(&f);
    drop(Pool::spawn_reclaimer(&pool, Duration::from_millis(1)));
    let mut s = 0;
    while pool.store(0, s, &page_for(s, 1)).is_ok() {
        s += 1;
    }
    let _bg = Pool::spawn_reclaimer(&pool, Duration::from_millis(1));
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.stats().pool_bytes > 64 * 1024 {
        assert!(Instant::now() < deadline, "the new reclaimer does nothing");
        std::thread::sleep(Duration::from_millis(2));
    }
}
