//! The engine's behaviour on a software pool: round trips, completions three ways,
//! coalescing, back-pressure, failure attribution, validation, metrics.

mod common;

use std::sync::Arc;
use std::time::Duration;

use batching::{
    Backend, Completion, Engine, EngineError, FullPolicy, Op, Reply, Request, Workers,
    MIN_QUEUE_CAPACITY,
};
use common::*;
use pool::{LoadMode, PoolError, TestTopology};
use software_fallback::PAGE_SIZE;

fn engine(cpus: &[usize]) -> (Engine, Arc<pool::Pool>) {
    let topo = Arc::new(TestTopology::new(cpus));
    let pool = software_pool(Arc::clone(&topo));
    pool.swapon(0, 1 << 14, None).unwrap();
    let e = Engine::start(Arc::clone(&pool), engine_cfg(topo)).unwrap();
    (e, pool)
}

#[test]
fn a_store_gives_back_the_callers_own_buffer_not_a_copy() {
    let (e, _pool) = engine(&[0, 1]);
    let c = builtin();
    // One item, and a folio of several items (cut into batches of 8 pages).
    for pages in [1usize, 3, 8, 20] {
        let data = folio(&c, 1000, pages, 1);
        let (ptr, copy) = (data.as_ptr(), data.clone());
        let done = e.store(0, 1000, data).unwrap().wait();
        assert!(done.is_ok(), "{:?}", done.outcome);
        assert_eq!(done.buffer, copy);
        assert_eq!(
            done.buffer.as_ptr(),
            ptr,
            "{pages} pages: the store data came back as a copy (still shared at completion)"
        );
    }
}

#[test]
fn store_load_invalidate_round_trip() {
    let (e, pool) = engine(&[0, 1]);
    let c = builtin();
    let data = folio(&c, 10, 3, 1);
    let done = e.store(0, 10, data.clone()).unwrap().wait();
    assert_eq!(done.op, Op::Store);
    let Ok(Reply::Stored(receipt)) = &done.outcome else {
        panic!("{:?}", done.outcome)
    };
    assert_eq!(done.buffer, data, "a store gives the caller's data back");
    assert!(receipt.generation_of(12).is_some() && receipt.generation_of(13).is_none());
    assert_eq!(done.backend, Backend::Software);

    let got = e
        .load(0, 10, vec![0; 3 * PAGE_SIZE], LoadMode::KeepCopy)
        .unwrap()
        .wait();
    assert!(
        matches!(got.outcome, Ok(Reply::Loaded)),
        "{:?}",
        got.outcome
    );
    assert_eq!(got.buffer, data);

    let inv = e.invalidate(0, 10, 2).unwrap().wait();
    assert!(matches!(inv.outcome, Ok(Reply::Invalidated { removed: 2 })));
    let mut p = vec![0; PAGE_SIZE];
    assert!(matches!(
        pool.load(0, 10, &mut p, LoadMode::KeepCopy),
        Err(PoolError::AbsentSlot { .. })
    ));
    pool.load(0, 12, &mut p, LoadMode::KeepCopy).unwrap();
    assert_eq!(p, &data[2 * PAGE_SIZE..]);

    // Exclusive load drops the entry.
    let got = e
        .load(0, 12, vec![0; PAGE_SIZE], LoadMode::Exclusive)
        .unwrap()
        .wait();
    assert!(got.is_ok());
    assert!(pool.load(0, 12, &mut p, LoadMode::KeepCopy).is_err());

    // Conditional invalidate with a stale generation fails; with the current one succeeds.
    let r1 = e.store(0, 50, page(&c, 50, 1)).unwrap().wait();
    let g1 = match r1.outcome {
        Ok(Reply::Stored(r)) => r.generation_of(50).unwrap(),
        o => panic!("{o:?}"),
    };
    let r2 = e.store(0, 50, page(&c, 50, 2)).unwrap().wait();
    let g2 = match r2.outcome {
        Ok(Reply::Stored(r)) => r.generation_of(50).unwrap(),
        o => panic!("{o:?}"),
    };
    let stale = e
        .submit(Request::InvalidateIf {
            ty: 0,
            slot: 50,
            generation: g1,
        })
        .unwrap()
        .wait();
    assert!(matches!(
        stale.outcome,
        Err(EngineError::Pool(PoolError::GenerationMismatch { .. }))
    ));
    let cur = e
        .submit(Request::InvalidateIf {
            ty: 0,
            slot: 50,
            generation: g2,
        })
        .unwrap()
        .wait();
    assert!(matches!(cur.outcome, Ok(Reply::Invalidated { removed: 1 })));

    let m = e.metrics();
    assert_eq!(m.completed(Op::Store), 3);
    assert_eq!(m.completed(Op::Load), 2);
    assert_eq!(m.completed(Op::Invalidate), 3);
    assert_eq!(m.failed_of(Op::Invalidate), 1);
    assert_eq!(m.pages_of(Op::Store), 5);
    assert_eq!(m.accepted, 8);
    let report = e.shutdown();
    assert!(report.performed);
    assert_eq!(report.stragglers, 0);
    assert!(!e.shutdown().performed, "shutdown is idempotent");
}

#[test]
fn large_folio_is_split_and_reassembled() {
    let (e, pool) = engine(&[0, 1, 2]);
    let c = builtin();
    let data = folio(&c, 1000, 512, 7);
    let done = e.store(0, 1000, data.clone()).unwrap().wait();
    let Ok(Reply::Stored(receipt)) = &done.outcome else {
        panic!("{:?}", done.outcome)
    };
    assert_eq!(receipt.pieces.len(), 64, "512 pages in batches of 8");
    assert_eq!(receipt.pieces.iter().map(|p| p.pages).sum::<usize>(), 512);
    assert_eq!(done.buffer, data);
    let mut back = vec![0u8; 512 * PAGE_SIZE];
    pool.load_run(0, 1000, &mut back, LoadMode::KeepCopy)
        .unwrap();
    assert_eq!(back, data);
    // And through the engine (one item of 512 pages).
    let got = e
        .load(0, 1000, vec![0; 512 * PAGE_SIZE], LoadMode::KeepCopy)
        .unwrap()
        .wait();
    assert!(got.is_ok());
    assert_eq!(got.buffer, data);
}

#[test]
fn completions_on_callers_channel_and_by_polling() {
    let (e, _pool) = engine(&[0]);
    let c = builtin();
    let (tx, rx) = crossbeam_channel::unbounded();
    for i in 0..20u64 {
        e.submit_to(
            Request::Store {
                ty: 0,
                slot: i,
                data: page(&c, i, 0),
            },
            tx.clone(),
            100 + i,
        )
        .unwrap();
    }
    let mut tags: Vec<u64> = (0..20)
        .map(|_| {
            let c = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert!(c.is_ok(), "{:?}", c.outcome);
            c.tag
        })
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, (100..120).collect::<Vec<_>>());

    let mut t = e
        .load(0, 3, vec![0; PAGE_SIZE], LoadMode::KeepCopy)
        .unwrap();
    let done = loop {
        match t.try_take() {
            Ok(done) => break done,
            Err(back) => {
                t = back;
                std::thread::yield_now();
            }
        }
    };
    assert_eq!(done.buffer, page(&c, 3, 0));
    let t = e
        .load(0, 4, vec![0; PAGE_SIZE], LoadMode::KeepCopy)
        .unwrap();
    let done = t.wait_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(done.buffer, page(&c, 4, 0));
}

#[test]
fn invalid_requests_are_refused_with_the_buffer_back() {
    let (e, _pool) = engine(&[0]);
    let r = e.store(0, 0, vec![7u8; 100]).unwrap_err();
    assert!(matches!(r.error, EngineError::InvalidRequest(_)));
    assert_eq!(r.buffer, vec![7u8; 100]);
    let r = e.store(0, 0, Vec::new()).unwrap_err();
    assert!(matches!(r.error, EngineError::InvalidRequest(_)));
    let r = e.store(0, 0, vec![1u8; 513 * PAGE_SIZE]).unwrap_err();
    assert!(matches!(r.error, EngineError::InvalidRequest(_)));
    assert_eq!(r.buffer.len(), 513 * PAGE_SIZE);
    let r = e
        .load(0, 0, vec![0; PAGE_SIZE + 1], LoadMode::Exclusive)
        .unwrap_err();
    assert!(matches!(r.error, EngineError::InvalidRequest(_)));
    assert!(e.invalidate(0, 0, 0).is_err());
    // Pool-level errors come back in the completion.
    let d = e.store(9, 0, vec![1u8; PAGE_SIZE]).unwrap().wait();
    assert!(matches!(
        d.outcome,
        Err(EngineError::Pool(PoolError::UnknownSwapType { ty: 9 }))
    ));
    assert_eq!(d.buffer, vec![1u8; PAGE_SIZE]);
    let d = e
        .load(0, 77, vec![0; PAGE_SIZE], LoadMode::KeepCopy)
        .unwrap()
        .wait();
    assert!(matches!(
        d.outcome,
        Err(EngineError::Pool(PoolError::AbsentSlot { .. }))
    ));
    assert_eq!(e.metrics().refused, 5);
    e.shutdown();
    let r = e.store(0, 0, vec![3u8; PAGE_SIZE]).unwrap_err();
    assert!(matches!(r.error, EngineError::ShutDown));
    assert_eq!(r.buffer, vec![3u8; PAGE_SIZE]);
}

#[test]
fn bad_configuration_is_refused() {
    let topo = Arc::new(TestTopology::new(&[0]));
    let pool = software_pool(Arc::clone(&topo));
    let mut cfg = engine_cfg(Arc::clone(&topo));
    cfg.queue_capacity = MIN_QUEUE_CAPACITY - 1;
    assert!(matches!(
        Engine::start(Arc::clone(&pool), cfg),
        Err(EngineError::InvalidConfig(_))
    ));
    let mut cfg = engine_cfg(topo);
    cfg.workers = Workers::Fixed(0);
    assert!(matches!(
        Engine::start(pool, cfg),
        Err(EngineError::InvalidConfig(_))
    ));
}

#[test]
fn queued_small_stores_coalesce_into_one_pool_call() {
    let (e, gate, parked) = parked_engine(FullPolicy::Block, 1024, 9999);
    let c = builtin();
    // Eight single-page stores of contiguous slots, in scrambled order, from "different
    // producers": queued while the only worker is busy.
    let order = [3u64, 0, 7, 1, 6, 2, 5, 4];
    let tickets: Vec<_> = order
        .iter()
        .map(|&s| e.store(0, 100 + s, page(&c, 100 + s, 1)).unwrap())
        .collect();
    // Two more that cannot merge (another run, and too many pages).
    let t_far = e.store(0, 500, page(&c, 500, 1)).unwrap();
    let before = e.metrics();
    assert_eq!(before.queue_depth, 9);
    gate.open();
    assert!(parked.wait().is_ok());
    for t in tickets {
        let d = t.wait();
        assert!(d.is_ok(), "{:?}", d.outcome);
    }
    assert!(t_far.wait().is_ok());
    let m = e.metrics();
    // Batches: the parked one (1 page), the eight coalesced (8 pages, 8 items), the far one.
    assert_eq!(m.batch_pages[8], 1, "{:?}", m.batch_pages);
    assert_eq!(m.batch_items[8], 1, "{:?}", m.batch_items);
    assert_eq!(m.batch_pages[1], 2, "{:?}", m.batch_pages);
    assert_eq!(
        m.pool_calls, 3,
        "eight contiguous stores merged into one pool call"
    );
    let mut p = vec![0; PAGE_SIZE];
    for s in 0..8 {
        e.pool()
            .load(0, 100 + s, &mut p, LoadMode::KeepCopy)
            .unwrap();
        assert_eq!(p, page(&c, 100 + s, 1));
    }
}

#[test]
fn loads_overtake_a_backlog_of_stores() {
    let topo = Arc::new(TestTopology::new(&[0]));
    let gate = Arc::new(Gate::default());
    let pool = gated_pool(Arc::clone(&topo), Arc::clone(&gate));
    pool.swapon(0, 1 << 16, None).unwrap();
    let mut cfg = engine_cfg(topo);
    cfg.workers = Workers::Fixed(1);
    let e = Engine::start(Arc::clone(&pool), cfg).unwrap();
    let c = builtin();
    // Stored before the backlog.
    assert!(e.store(0, 7000, page(&c, 7000, 1)).unwrap().wait().is_ok());
    // Park the only worker in the codec, then queue a backlog of stores and one load.
    gate.close();
    let parked = e.store(0, 9999, page(&c, 9999, 1)).unwrap();
    gate.wait_for_waiters(1);
    // Completions arrive on one channel in the order requests complete.
    let (tx, rx) = crossbeam_channel::unbounded();
    for k in 0..40u64 {
        e.submit_to(
            Request::Store {
                ty: 0,
                slot: k * 64,
                data: folio(&c, k * 64, 64, 1),
            },
            tx.clone(),
            k,
        )
        .unwrap();
    }
    e.submit_to(
        Request::Load {
            ty: 0,
            slot: 7000,
            buf: vec![0; PAGE_SIZE],
            mode: LoadMode::KeepCopy,
        },
        tx,
        1000,
    )
    .unwrap();
    assert_eq!(e.metrics().queue_depth, 40 * 8 + 1);
    gate.open();
    assert!(parked.wait().is_ok());
    let order: Vec<Completion> = (0..41)
        .map(|_| rx.recv_timeout(Duration::from_secs(30)).unwrap())
        .collect();
    // The load, queued behind 320 store items, completes first.
    assert_eq!(
        order[0].tag,
        1000,
        "completion order: {:?}",
        order.iter().map(|c| c.tag).collect::<Vec<_>>()
    );
    assert!(order[0].is_ok());
    assert_eq!(order[0].buffer, page(&c, 7000, 1));
    assert!(order.iter().all(Completion::is_ok));
}

#[test]
fn without_a_device_auto_merge_batches_but_does_not_copy_requests_together() {
    let (e, gate, parked) =
        parked_engine_with(FullPolicy::Block, 1024, 9999, batching::MergePolicy::Auto);
    let c = builtin();
    let tickets: Vec<_> = (0..8u64)
        .map(|s| e.store(0, 100 + s, page(&c, 100 + s, 1)).unwrap())
        .collect();
    // One two-batch request: its own contiguous pages still go in one call per batch.
    let big = e.store(0, 300, folio(&c, 300, 16, 1)).unwrap();
    gate.open();
    assert!(parked.wait().is_ok());
    for t in tickets {
        assert!(t.wait().is_ok());
    }
    assert!(big.wait().is_ok());
    let m = e.metrics();
    assert_eq!(m.batch_pages[8], 3, "{:?}", m.batch_pages);
    assert_eq!(
        m.pool_calls,
        1 + 8 + 2,
        "software: one call per request item"
    );
}

#[test]
fn busy_policy_refuses_when_full_and_block_policy_waits() {
    let (e, gate, parked) = parked_engine(FullPolicy::Busy, MIN_QUEUE_CAPACITY, 0);
    let c = builtin();
    // 64 items of room: eight 64-page stores fill it.
    let mut tickets = Vec::new();
    for k in 0..8u64 {
        tickets.push(
            e.store(0, 100 + k * 64, folio(&c, 100 + k * 64, 64, 1))
                .unwrap(),
        );
    }
    let r = e.store(0, 5000, page(&c, 5000, 1)).unwrap_err();
    assert!(
        matches!(
            r.error,
            EngineError::Busy {
                queued: 64,
                capacity: 64
            }
        ),
        "{:?}",
        r.error
    );
    assert_eq!(r.buffer, page(&c, 5000, 1));
    assert_eq!(e.metrics().queue_depth, 64);
    gate.open();
    assert!(parked.wait().is_ok());
    for t in tickets {
        assert!(t.wait().is_ok());
    }
    assert!(e.store(0, 5000, page(&c, 5000, 1)).unwrap().wait().is_ok());
    drop(e);

    // Block: a producer waits while full and goes on when the worker makes room.
    let (e, gate, parked) = parked_engine(FullPolicy::Block, MIN_QUEUE_CAPACITY, 0);
    let e = Arc::new(e);
    let mut tickets = Vec::new();
    for k in 0..8u64 {
        tickets.push(
            e.store(0, 100 + k * 64, folio(&c, 100 + k * 64, 64, 1))
                .unwrap(),
        );
    }
    let e2 = Arc::clone(&e);
    let c2 = c.clone();
    let blocked =
        std::thread::spawn(move || e2.store(0, 5000, page(&c2, 5000, 1)).map(|t| t.wait()));
    wait_for_blocked_producer(&e);
    assert!(
        !blocked.is_finished(),
        "a full Block-policy queue blocks the producer"
    );
    gate.open();
    let d = blocked.join().unwrap().unwrap();
    assert!(d.is_ok());
    assert!(parked.wait().is_ok());
    for t in tickets {
        assert!(t.wait().is_ok());
    }
}

#[test]
fn shutdown_wakes_blocked_producers_with_shutdown_error() {
    let (e, gate, parked) = parked_engine(FullPolicy::Block, MIN_QUEUE_CAPACITY, 0);
    let e = Arc::new(e);
    let c = builtin();
    let mut tickets = Vec::new();
    for k in 0..8u64 {
        tickets.push(
            e.store(0, 100 + k * 64, folio(&c, 100 + k * 64, 64, 1))
                .unwrap(),
        );
    }
    let e2 = Arc::clone(&e);
    let c2 = c.clone();
    let blocked = std::thread::spawn(move || e2.store(0, 5000, page(&c2, 5000, 1)));
    // The producer is blocked on the full queue (not yet to arrive: then it would be
    // refused at the gate and the wake-up would go untested).
    wait_for_blocked_producer(&e);
    // Shutdown closes the gate first (waking the blocked producer), then drains: open the
    // codec gate once the producer has been refused so the workers can drain.
    let e3 = Arc::clone(&e);
    let sd = std::thread::spawn(move || e3.shutdown());
    let refused = blocked.join().unwrap().unwrap_err();
    assert!(matches!(refused.error, EngineError::ShutDown));
    assert_eq!(refused.buffer, page(&c, 5000, 1));
    gate.open();
    let report = sd.join().unwrap();
    assert_eq!(report.stragglers, 0);
    assert!(parked.wait().is_ok());
    for t in tickets {
        assert!(t.wait().is_ok(), "accepted before shutdown: completes");
    }
}

#[test]
fn a_failing_request_in_a_merged_run_fails_alone() {
    let topo = Arc::new(TestTopology::new(&[0]));
    let gate = Arc::new(Gate::default());
    let pool = gated_pool(Arc::clone(&topo), Arc::clone(&gate));
    pool.swapon(0, 1 << 10, None).unwrap();
    pool.swapon(1, 10, None).unwrap();
    let mut cfg = engine_cfg(topo);
    cfg.workers = Workers::Fixed(1);
    cfg.merge = batching::MergePolicy::Always;
    let e = Engine::start(Arc::clone(&pool), cfg).unwrap();
    let c = builtin();
    gate.close();
    let parked = e.store(0, 0, page(&c, 0, 0)).unwrap();
    gate.wait_for_waiters(1);
    // Slots 6-7 are fine; 8-11 run past the 10-slot area. Contiguous, so merged.
    let ok = e.store(1, 6, folio(&c, 6, 2, 1)).unwrap();
    let bad = e.store(1, 8, folio(&c, 8, 4, 1)).unwrap();
    gate.open();
    assert!(parked.wait().is_ok());
    let ok = ok.wait();
    assert!(ok.is_ok(), "{:?}", ok.outcome);
    let bad = bad.wait();
    assert!(
        matches!(
            bad.outcome,
            Err(EngineError::Pool(PoolError::SlotOutOfRange { .. }))
        ),
        "{:?}",
        bad.outcome
    );
    assert_eq!(e.metrics().split_retries, 1);
    let mut p = vec![0; 2 * PAGE_SIZE];
    pool.load_run(1, 6, &mut p, LoadMode::KeepCopy).unwrap();
    assert_eq!(p, folio(&c, 6, 2, 1));
}

#[test]
fn a_failed_multi_batch_folio_leaves_no_entry_old_or_new() {
    let topo = Arc::new(TestTopology::new(&[0, 1]));
    let pool = software_pool(Arc::clone(&topo));
    pool.swapon(0, 20, None).unwrap();
    let e = Engine::start(Arc::clone(&pool), engine_cfg(topo)).unwrap();
    let c = builtin();
    // Old copies in slots 4..20.
    assert!(e.store(0, 4, folio(&c, 4, 16, 1)).unwrap().wait().is_ok());
    // 24 pages from slot 4: batches 4..12 and 12..20 fit, 20..28 does not.
    let d = e.store(0, 4, folio(&c, 4, 24, 2)).unwrap().wait();
    assert!(matches!(
        d.outcome,
        Err(EngineError::Pool(PoolError::SlotOutOfRange { .. }))
    ));
    assert_eq!(
        d.buffer,
        folio(&c, 4, 24, 2),
        "the caller gets its data back"
    );
    let mut p = vec![0; PAGE_SIZE];
    for s in 4..20 {
        assert!(
            matches!(
                pool.load(0, s, &mut p, LoadMode::KeepCopy),
                Err(PoolError::AbsentSlot { .. })
            ),
            "slot {s} still holds an entry after its folio failed"
        );
    }
    assert_eq!(pool.stats().stored_pages, 0);
}

#[test]
fn prometheus_text_has_the_families() {
    let (e, _pool) = engine(&[0, 1]);
    let c = builtin();
    for s in 0..16 {
        e.store(0, s, page(&c, s, 0)).unwrap().wait();
    }
    let text = e.prometheus();
    for family in [
        "swapaccel_engine_requests_total{op=\"store\",backend=\"software\"} 16",
        "swapaccel_engine_pages_total{op=\"store\",backend=\"software\"} 16",
        "swapaccel_engine_batch_pages_bucket{le=\"+Inf\"}",
        "swapaccel_engine_queue_depth 0",
        "swapaccel_engine_page_latency_seconds{quantile=\"0.99\"}",
        "swapaccel_engine_page_latency_seconds_count 16",
        "swapaccel_engine_workers 2",
    ] {
        assert!(text.contains(family), "missing `{family}` in\n{text}");
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut parts = line.rsplitn(2, ' ');
        let value = parts.next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad sample line `{line}`");
    }
    let m = e.metrics();
    assert!(m.p50 > Duration::ZERO && m.p50 <= m.p99 && m.p99 <= m.p999);
}

#[test]
fn dropping_the_engine_drains_what_it_accepted() {
    let (e, pool) = engine(&[0, 1]);
    let c = builtin();
    let tickets: Vec<_> = (0..64u64)
        .map(|k| e.store(0, k * 8, folio(&c, k * 8, 8, 3)).unwrap())
        .collect();
    drop(e);
    for (k, d) in batching::Ticket::wait_all(tickets).into_iter().enumerate() {
        assert!(d.is_ok(), "{:?}", d.outcome);
        assert_eq!(d.slot, k as u64 * 8, "wait_all keeps the tickets' order");
    }
    assert_eq!(pool.stats().stored_pages, 512);
}

/// A codec that panics on a page whose first byte is 0xEE.
struct PanickyCodec(software_fallback::SoftwareCodec);

impl software_fallback::PageCodec for PanickyCodec {
    fn id(&self) -> software_fallback::CodecId {
        self.0.id()
    }
    fn compress(
        &mut self,
        page: &[u8],
        dst: &mut [u8],
    ) -> Result<software_fallback::Compressed, software_fallback::CodecError> {
        assert!(page[0] != 0xEE, "poisoned page");
        self.0.compress(page, dst)
    }
    fn decompress(
        &mut self,
        src: &[u8],
        page: &mut [u8],
    ) -> Result<software_fallback::Decompressed, software_fallback::CodecError> {
        self.0.decompress(src, page)
    }
}

#[test]
fn a_panic_in_a_batch_fails_its_requests_and_the_worker_goes_on() {
    let topo = Arc::new(TestTopology::new(&[0]));
    let factory = |spec: software_fallback::CodecSpec| -> pool::Result<
        Box<dyn software_fallback::PageCodec>,
    > { Ok(Box::new(PanickyCodec(spec.build()?))) };
    let pool = Arc::new(
        pool::Pool::new(pool::PoolConfig {
            topology: Arc::clone(&topo) as Arc<dyn pool::CpuTopology>,
            factory: Arc::new(factory),
            ..pool::PoolConfig::default()
        })
        .unwrap(),
    );
    pool.swapon(0, 1024, None).unwrap();
    let mut cfg = engine_cfg(topo);
    cfg.workers = Workers::Fixed(1);
    let e = Engine::start(Arc::clone(&pool), cfg).unwrap();
    let mut bad = vec![0x11u8; PAGE_SIZE];
    bad[0] = 0xEE;
    bad[1] = 0x12;
    let d = e.store(0, 5, bad).unwrap().wait();
    assert!(
        matches!(d.outcome, Err(EngineError::Dropped(_))),
        "{:?}",
        d.outcome
    );
    let c = builtin();
    let d = e.store(0, 6, page(&c, 6, 1)).unwrap().wait();
    assert!(d.is_ok(), "the worker survived: {:?}", d.outcome);
    assert_eq!(e.worker_cpus().len(), 1);
}

/// Returns once a producer is blocked on the engine's full queue. Polls the engine's own
/// gauge; the bound only turns a hang into a failure.
fn wait_for_blocked_producer(e: &Engine) {
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    while e.metrics().producers_waiting == 0 {
        assert!(
            std::time::Instant::now() < give_up,
            "no producer ever blocked"
        );
        std::thread::yield_now();
    }
    assert_eq!(e.metrics().producers_waiting, 1);
    assert!(e
        .prometheus()
        .contains("swapaccel_engine_producers_waiting 1"));
}

#[test]
fn requests_past_the_end_of_the_slot_space_are_refused_at_submission() {
    let (e, _pool) = engine(&[0]);
    let c = builtin();
    let refused = e.invalidate(0, u64::MAX, 2).unwrap_err();
    assert!(
        matches!(refused.error, EngineError::InvalidRequest(_)),
        "{}",
        refused.error
    );
    let data = folio(&c, 0, 2, 1);
    let refused = e.store(0, u64::MAX - 1, data.clone()).unwrap_err();
    assert!(matches!(refused.error, EngineError::InvalidRequest(_)));
    assert_eq!(refused.buffer, data, "the caller's data comes back");
    let refused = e
        .load(0, u64::MAX, vec![0; PAGE_SIZE], LoadMode::KeepCopy)
        .unwrap_err();
    assert!(matches!(refused.error, EngineError::InvalidRequest(_)));
    // Nothing reached a worker: no batch ran, nothing failed there.
    let m = e.metrics();
    assert_eq!((m.accepted, m.refused), (0, 3));
    assert_eq!(m.batches(), 0);
}

#[test]
fn a_ticket_waits_with_a_timeout_too_large_for_a_deadline() {
    let (e, _pool) = engine(&[0]);
    let c = builtin();
    let t = e.store(0, 7, page(&c, 7, 1)).unwrap();
    let done = t.wait_timeout(Duration::MAX).expect("completes");
    assert!(done.is_ok(), "{:?}", done.outcome);
}
