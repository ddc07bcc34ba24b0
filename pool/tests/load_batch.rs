//! Batched loads: `Pool::load_run_on` decodes up to 8 pages with one `decompress_batch`
//! call on the chosen CPU's context, and keeps `load_run`'s all-or-nothing guarantees.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::page_for;
use pool::{CpuTopology, LoadMode, Pool, PoolConfig, PoolError, TestTopology};
use software_fallback::{
    BatchResults, CodecError, CodecId, CodecSpec, Compressed, Decompressed, PageCodec,
    SoftwareCodec, PAGE_SIZE,
};

/// Calls the codecs saw: (codec instance, pages) per `decompress_batch`, and single
/// `decompress` calls.
#[derive(Default)]
struct Log {
    batches: Mutex<Vec<(usize, usize)>>,
    singles: AtomicUsize,
    built: AtomicUsize,
}

struct LoggedCodec {
    inner: SoftwareCodec,
    instance: usize,
    log: Arc<Log>,
}

impl PageCodec for LoggedCodec {
    fn id(&self) -> CodecId {
        self.inner.id()
    }
    fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError> {
        self.inner.compress(page, dst)
    }
    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        self.log.singles.fetch_add(1, Ordering::SeqCst);
        self.inner.decompress(src, page)
    }
    fn decompress_batch(
        &mut self,
        srcs: &[&[u8]],
        pages: &mut [&mut [u8]],
    ) -> Result<BatchResults<Decompressed>, CodecError> {
        self.log
            .batches
            .lock()
            .unwrap()
            .push((self.instance, srcs.len()));
        let mut out = BatchResults::new();
        for (s, p) in srcs.iter().zip(pages.iter_mut()) {
            out.push(self.inner.decompress(s, p));
        }
        Ok(out)
    }
}

fn logged_pool(cpus: &[usize]) -> (Pool, Arc<Log>, Arc<TestTopology>) {
    let log = Arc::new(Log::default());
    let l = Arc::clone(&log);
    let topo = Arc::new(TestTopology::new(cpus));
    let factory = move |spec: CodecSpec| -> pool::Result<Box<dyn PageCodec>> {
        Ok(Box::new(LoggedCodec {
            inner: spec.build()?,
            instance: l.built.fetch_add(1, Ordering::SeqCst),
            log: Arc::clone(&l),
        }))
    };
    let pool = Pool::new(PoolConfig {
        codec: CodecSpec::default_for(CodecId::RawDeflate),
        factory: Arc::new(factory),
        topology: topo.clone(),
        ..PoolConfig::default()
    })
    .expect("pool");
    pool.swapon(0, 1024, None).expect("swapon");
    (pool, log, topo)
}

fn pages(first: u64, n: u64, version: u64) -> Vec<u8> {
    (first..first + n)
        .flat_map(|s| page_for(s, version))
        .collect()
}

#[test]
fn eight_pages_are_one_decompress_batch_on_the_chosen_context() {
    let (pool, log, _) = logged_pool(&[0, 1]);
    let data = pages(0, 8, 1);
    pool.store(0, 0, &data).unwrap();
    for cpu in [0, 1] {
        log.batches.lock().unwrap().clear();
        let mut buf = vec![0u8; 8 * PAGE_SIZE];
        pool.load_run_on(cpu, 0, 0, &mut buf, LoadMode::KeepCopy)
            .unwrap();
        assert_eq!(buf, data);
        let batches = log.batches.lock().unwrap().clone();
        assert_eq!(batches.len(), 1, "one batch call: {batches:?}");
        assert_eq!(batches[0].1, 8);
        assert_eq!(log.singles.load(Ordering::SeqCst), 0);
    }
    // The two CPUs' loads ran on two different contexts' codecs.
    let mut seen = std::collections::HashSet::new();
    for cpu in [0, 1] {
        log.batches.lock().unwrap().clear();
        let mut buf = vec![0u8; PAGE_SIZE];
        pool.load_run_on(cpu, 0, 3, &mut buf, LoadMode::KeepCopy)
            .unwrap();
        seen.insert(log.batches.lock().unwrap()[0].0);
    }
    assert_eq!(seen.len(), 2, "each CPU hint has its own context");
}

#[test]
fn a_long_run_goes_in_batches_of_eight_and_exclusive_drops_every_entry() {
    let (pool, log, _) = logged_pool(&[0]);
    let data = pages(100, 20, 2);
    pool.store(0, 100, &data).unwrap();
    let mut buf = vec![0u8; 20 * PAGE_SIZE];
    pool.load_run_on(0, 0, 100, &mut buf, LoadMode::Exclusive)
        .unwrap();
    assert_eq!(buf, data);
    let sizes: Vec<usize> = log.batches.lock().unwrap().iter().map(|b| b.1).collect();
    assert_eq!(sizes, vec![8, 8, 4]);
    for s in 100..120 {
        let mut p = vec![0u8; PAGE_SIZE];
        assert!(matches!(
            pool.load(0, s, &mut p, LoadMode::KeepCopy),
            Err(PoolError::AbsentSlot { .. })
        ));
    }
}

#[test]
fn pages_a_batch_cannot_take_are_loaded_one_by_one() {
    let (pool, log, _) = logged_pool(&[0]);
    // Slot 200: same-filled; 201: incompressible (stored raw); 202..206: compressible.
    let mut data = vec![0x5au8; PAGE_SIZE];
    let mut x = 0x1234_5678_9abc_def1u64;
    data.extend((0..PAGE_SIZE).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    data.extend(pages(202, 4, 3));
    pool.store(0, 200, &data).unwrap();
    let mut buf = vec![0u8; 6 * PAGE_SIZE];
    pool.load_run_on(0, 0, 200, &mut buf, LoadMode::KeepCopy)
        .unwrap();
    assert_eq!(buf, data);
    let sizes: Vec<usize> = log.batches.lock().unwrap().iter().map(|b| b.1).collect();
    assert_eq!(sizes, vec![4], "the compressed pages in one call");
}

#[test]
fn an_absent_page_fails_the_run_and_an_exclusive_load_drops_nothing() {
    let (pool, _log, _) = logged_pool(&[0]);
    let data = pages(300, 8, 4);
    pool.store(0, 300, &data).unwrap();
    pool.invalidate(0, 305).unwrap();
    let mut buf = vec![0u8; 8 * PAGE_SIZE];
    let err = pool
        .load_run_on(0, 0, 300, &mut buf, LoadMode::Exclusive)
        .unwrap_err();
    assert!(
        matches!(err, PoolError::AbsentSlot { slot: 305, .. }),
        "{err}"
    );
    for s in (300..308).filter(|&s| s != 305) {
        let mut p = vec![0u8; PAGE_SIZE];
        pool.load(0, s, &mut p, LoadMode::KeepCopy).unwrap();
        assert_eq!(p, page_for(s, 4));
    }
}

#[test]
fn the_pool_shares_its_topology() {
    let (pool, _log, topo) = logged_pool(&[0, 2]);
    let mine: Arc<dyn CpuTopology> = topo.clone();
    assert!(std::ptr::addr_eq(
        Arc::as_ptr(pool.topology()),
        Arc::as_ptr(&mine)
    ));
    topo.offline(2);
    assert_eq!(pool.topology().online().unwrap(), vec![0]);
}
