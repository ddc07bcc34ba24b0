//! Invariant 5 on every error path of a store: whatever fails, the pool holds no entry older
//! than the failed store for any slot the folio covers — but a newer store that succeeded
//! meanwhile keeps its entry.
// Under the `shuttle` feature the pool runs on shuttle primitives: only tests/shuttle.rs runs.
#![cfg(not(feature = "shuttle"))]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::page_for;
use pool::{CodecFactory, LoadMode, Pool, PoolConfig, PoolError, TestTopology};
use software_fallback::{
    CodecError, CodecId, CodecSpec, Compressed, Decompressed, PageCodec, SoftwareCodec, PAGE_SIZE,
};

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

/// A factory that fails while `fail` is set.
fn flaky_pool(topo: Arc<TestTopology>, fail: Arc<AtomicBool>) -> Pool {
    let factory = move |spec: CodecSpec| -> pool::Result<Box<dyn PageCodec>> {
        if fail.load(Ordering::SeqCst) {
            return Err(PoolError::Factory {
                spec: spec.to_string(),
                reason: "injected".into(),
            });
        }
        Ok(Box::new(spec.build()?))
    };
    Pool::new(PoolConfig {
        codec: CodecSpec::LZ4,
        factory: Arc::new(factory) as Arc<dyn CodecFactory>,
        topology: topo,
        ..PoolConfig::default()
    })
    .unwrap()
}

/// A hot-added CPU whose context cannot be built: the CPU is only a hint, so stores and
/// loads run on another context instead of failing.
#[test]
fn unbuildable_context_falls_back_to_another() {
    let topo = Arc::new(TestTopology::new(&[0]));
    let fail = Arc::new(AtomicBool::new(false));
    let pool = flaky_pool(topo.clone(), fail.clone());
    pool.swapon(0, 16, None).unwrap();
    pool.store(0, 3, &page_for(3, 1)).unwrap();
    topo.online(7);
    fail.store(true, Ordering::SeqCst);
    pool.store_batch_on(7, 0, 3, &page_for(3, 2)).unwrap();
    let mut out = vec![0u8; PAGE_SIZE];
    pool.load_on(7, 0, 3, &mut out, LoadMode::KeepCopy).unwrap();
    assert_eq!(out, page_for(3, 2));
    assert_eq!(pool.context_cpus(), vec![0]);
    fail.store(false, Ordering::SeqCst);
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
    let fail = Arc::new(AtomicBool::new(false));
    let pool = flaky_pool(topo, fail.clone());
    pool.swapon(0, 16, None).unwrap();
    pool.store(0, 3, &page_for(3, 1)).unwrap();
    pool.store(0, 9, &page_for(9, 1)).unwrap();
    pool.set_compressor(CodecSpec::ZSTD).unwrap();
    fail.store(true, Ordering::SeqCst);
    let mut out = vec![0u8; PAGE_SIZE];
    pool.load(0, 9, &mut out, LoadMode::KeepCopy)
        .expect("a load does not need the new compressor");
    assert_eq!(out, page_for(9, 1));
    let err = pool.store(0, 3, &page_for(3, 2)).unwrap_err();
    assert!(matches!(err, PoolError::Factory { .. }), "{err}");
    assert!(absent(&pool, 0, 3), "a failed store left the older copy");
    fail.store(false, Ordering::SeqCst);
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

/// Something to run once from inside a codec call.
type Hook = Box<dyn FnOnce() + Send>;

/// Compress calls so far, and the hook still to run.
type Calls = Arc<Mutex<(usize, Option<Hook>)>>;

/// Runs the hook once, from inside the codec, on the `at`-th compress call, and fails it.
struct Hooked {
    inner: SoftwareCodec,
    calls: Calls,
    at: usize,
}

impl PageCodec for Hooked {
    fn id(&self) -> CodecId {
        self.inner.id()
    }
    fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError> {
        let hook = {
            let mut c = self.calls.lock().unwrap();
            c.0 += 1;
            if c.0 == self.at {
                c.1.take()
            } else {
                None
            }
        };
        if let Some(hook) = hook {
            hook();
            return Err(CodecError::Backend {
                codec: self.id(),
                reason: "injected".into(),
            });
        }
        self.inner.compress(page, dst)
    }
    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        self.inner.decompress(src, page)
    }
}

/// While a 16-page folio is being stored, another thread stores one of its slots and
/// succeeds; then the folio fails. The failed folio's cleanup drops its own entries and the
/// older ones, but not the newer store that succeeded.
#[test]
fn failed_folio_keeps_a_newer_concurrent_store() {
    let calls: Calls = Arc::new(Mutex::new((0, None)));
    let calls2 = calls.clone();
    let factory = move |spec: CodecSpec| -> pool::Result<Box<dyn PageCodec>> {
        Ok(Box::new(Hooked {
            inner: spec.build()?,
            calls: calls2.clone(),
            at: 16 + 9, // the first page of the folio's second batch
        }))
    };
    let pool = Arc::new(
        Pool::new(PoolConfig {
            codec: CodecSpec::LZ4,
            factory: Arc::new(factory) as Arc<dyn CodecFactory>,
            topology: Arc::new(TestTopology::new(&[0, 1])),
            ..PoolConfig::default()
        })
        .unwrap(),
    );
    pool.swapon(0, 64, None).unwrap();
    let old: Vec<u8> = (0..16).flat_map(|s| page_for(s, 1)).collect();
    pool.store_batch_on(0, 0, 0, &old[..8 * PAGE_SIZE]).unwrap();
    pool.store_batch_on(0, 0, 8, &old[8 * PAGE_SIZE..]).unwrap();
    let p2 = pool.clone();
    calls.lock().unwrap().1 = Some(Box::new(move || {
        std::thread::spawn(move || p2.store_batch_on(1, 0, 12, &page_for(12, 3)))
            .join()
            .unwrap()
            .unwrap();
    }));
    let new: Vec<u8> = (0..16).flat_map(|s| page_for(s, 2)).collect();
    let err = pool.store(0, 0, &new).expect_err("injected failure");
    assert!(matches!(err, PoolError::Codec(_)), "{err}");
    assert!(calls.lock().unwrap().1.is_none(), "the hook did not run");
    for s in (0..16).filter(|&s| s != 12) {
        assert!(absent(&pool, 0, s), "slot {s} kept an entry");
    }
    assert!(
        holds(&pool, 0, 12, &page_for(12, 3)),
        "the newer store that succeeded was dropped by the failed one's cleanup"
    );
}
