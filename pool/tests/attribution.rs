//! Attribution through the return value: `Pool::store_batch_on_attributed` and
//! `Pool::load_run_on_attributed` sum what each codec call reported done on a device
//! (`BatchResults::on_device`); pages that need no codec count as neither.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::page_for;
use pool::{Attribution, LoadMode, Pool, PoolConfig, PoolError, TestTopology};
use software_fallback::{
    BatchResults, CodecError, CodecId, CodecSpec, Compressed, Decompressed, PageCodec,
    SoftwareCodec, PAGE_SIZE,
};

/// A codec that does the work in software but reports, for each batch call, every page but
/// the last `fallback` ones as done "on a device" (as a device codec with per-page fallback
/// would).
struct ReportingCodec {
    inner: SoftwareCodec,
    fallback: Arc<AtomicUsize>,
}

impl ReportingCodec {
    fn report<T>(&self, mut r: BatchResults<T>) -> BatchResults<T> {
        let n = r.len();
        r.set_on_device(n.saturating_sub(self.fallback.load(Ordering::SeqCst)));
        r
    }
}

impl PageCodec for ReportingCodec {
    fn id(&self) -> CodecId {
        self.inner.id()
    }
    fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError> {
        self.inner.compress(page, dst)
    }
    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        self.inner.decompress(src, page)
    }
    fn compress_batch(
        &mut self,
        pages: &[&[u8]],
        dsts: &mut [&mut [u8]],
    ) -> Result<BatchResults<Compressed>, CodecError> {
        let r = self.inner.compress_batch(pages, dsts)?;
        Ok(self.report(r))
    }
    fn decompress_batch(
        &mut self,
        srcs: &[&[u8]],
        pages: &mut [&mut [u8]],
    ) -> Result<BatchResults<Decompressed>, CodecError> {
        let r = self.inner.decompress_batch(srcs, pages)?;
        Ok(self.report(r))
    }
}

fn reporting_pool() -> (Pool, Arc<AtomicUsize>) {
    let fallback = Arc::new(AtomicUsize::new(0));
    let f = Arc::clone(&fallback);
    let factory = move |spec: CodecSpec| -> pool::Result<Box<dyn PageCodec>> {
        Ok(Box::new(ReportingCodec {
            inner: spec.build()?,
            fallback: Arc::clone(&f),
        }))
    };
    let pool = Pool::new(PoolConfig {
        codec: CodecSpec::default_for(CodecId::RawDeflate),
        factory: Arc::new(factory),
        topology: Arc::new(TestTopology::new(&[0])),
        ..PoolConfig::default()
    })
    .expect("pool");
    pool.swapon(0, 1024, None).expect("swapon");
    (pool, fallback)
}

fn pages(first: u64, n: u64, version: u64) -> Vec<u8> {
    (first..first + n)
        .flat_map(|s| page_for(s, version))
        .collect()
}

fn attr(device_pages: u64, software_pages: u64) -> Attribution {
    Attribution {
        device_pages,
        software_pages,
    }
}

#[test]
fn device_pages_come_back_with_the_store_and_the_load() {
    let (pool, _) = reporting_pool();
    let mut data = pages(0, 8, 1);
    // Pages 2 and 5: zero-filled and same-filled, which need no codec.
    data[2 * PAGE_SIZE..3 * PAGE_SIZE].fill(0);
    data[5 * PAGE_SIZE..6 * PAGE_SIZE].fill(0x5a);
    let (res, a) = pool.store_batch_on_attributed(0, 0, 0, &data);
    res.expect("store");
    assert_eq!(a, attr(6, 0));

    let mut buf = vec![0u8; 8 * PAGE_SIZE];
    let (res, a) = pool.load_run_on_attributed(0, 0, 0, &mut buf, LoadMode::KeepCopy);
    res.expect("load");
    assert_eq!(buf, data);
    assert_eq!(a, attr(6, 0));
}

#[test]
fn per_call_fallbacks_are_summed_over_the_calls_of_a_pool_call() {
    let (pool, fallback) = reporting_pool();
    fallback.store(1, Ordering::SeqCst);
    let data = pages(100, 8, 2);
    let (res, a) = pool.store_batch_on_attributed(0, 0, 100, &data);
    res.expect("store");
    assert_eq!(a, attr(7, 1));

    // 20 pages: three decode calls (8, 8, 4), each with one page in software.
    let data = pages(200, 20, 3);
    pool.store(0, 200, &data).expect("store");
    let mut buf = vec![0u8; 20 * PAGE_SIZE];
    let (res, a) = pool.load_run_on_attributed(0, 0, 200, &mut buf, LoadMode::Exclusive);
    res.expect("load");
    assert_eq!(buf, data);
    assert_eq!(a, attr(17, 3));
}

#[test]
fn pages_decoded_one_by_one_are_attributed_too() {
    let (pool, _) = reporting_pool();
    let data = pages(300, 3, 4);
    pool.store(0, 300, &data).expect("store");
    // After a compressor switch the raw-DEFLATE entries are decoded one by one, by a
    // decoder the factory built.
    pool.set_compressor(CodecSpec::LZ4).expect("switch");
    let mut buf = vec![0u8; 3 * PAGE_SIZE];
    let (res, a) = pool.load_run_on_attributed(0, 0, 300, &mut buf, LoadMode::KeepCopy);
    res.expect("load");
    assert_eq!(buf, data);
    assert_eq!(a, attr(3, 0));
}

#[test]
fn a_failed_load_still_says_what_the_device_did() {
    let (pool, _) = reporting_pool();
    pool.store(0, 400, &pages(400, 8, 5)).expect("store");
    // Slots 408 and 409 are empty: the first batch decodes, then the run fails.
    let mut buf = vec![0u8; 10 * PAGE_SIZE];
    let (res, a) = pool.load_run_on_attributed(0, 0, 400, &mut buf, LoadMode::Exclusive);
    assert!(
        matches!(res, Err(PoolError::AbsentSlot { slot: 408, .. })),
        "{res:?}"
    );
    assert_eq!(a, attr(8, 0));
}

#[test]
fn a_software_pool_reports_software_and_codec_free_pages_report_nothing() {
    let pool = Pool::new(PoolConfig {
        codec: CodecSpec::LZ4,
        topology: Arc::new(TestTopology::new(&[0])),
        ..PoolConfig::default()
    })
    .expect("pool");
    pool.swapon(0, 64, None).expect("swapon");
    let data = pages(0, 5, 1);
    let (res, a) = pool.store_batch_on_attributed(0, 0, 0, &data);
    let gen = res.expect("store");
    assert_eq!(a, attr(0, 5));
    // The plain call stores alike and returns the generation only.
    assert!(pool.store_batch_on(0, 0, 8, &data).expect("store") != gen);

    let zeros = vec![0u8; 4 * PAGE_SIZE];
    let (res, a) = pool.store_batch_on_attributed(0, 0, 16, &zeros);
    res.expect("store");
    assert!(a.is_empty(), "{a:?}");
    let mut buf = vec![1u8; 4 * PAGE_SIZE];
    let (res, a) = pool.load_run_on_attributed(0, 0, 16, &mut buf, LoadMode::KeepCopy);
    res.expect("load");
    assert_eq!(buf, zeros);
    assert!(a.is_empty(), "{a:?}");
}
