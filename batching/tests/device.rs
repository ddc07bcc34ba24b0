//! The engine over the IAA device emulator: whole batches on the device, per-page fallback
//! by reason, marking the device down and probing it back.

mod common;

use std::sync::Arc;
use std::time::Duration;

use accel::discovery::WqMode;
use accel::emu::{Fault, Target};
use batching::{Backend, Engine, FallbackReason, Op, Reply, Workers};
use common::*;
use pool::{LoadMode, TestTopology};
use software_fallback::{CodecId, CodecSpec, PAGE_SIZE};

/// A probe interval no test outlives: probes happen when a test calls `probe_now`.
const NEVER: Duration = Duration::from_secs(3600);

fn rig(mode: WqMode, size: u32, timeout: Duration, probe: Duration) -> (DeviceRig, Engine) {
    let topo = Arc::new(TestTopology::new(&[0, 1]));
    let rig = device_rig(Arc::clone(&topo), mode, size, timeout, probe);
    rig.pool.swapon(0, 1 << 14, None).unwrap();
    let mut cfg = engine_cfg(topo);
    cfg.device = Some(Arc::clone(&rig.backend));
    cfg.workers = Workers::Fixed(2);
    let e = Engine::start(Arc::clone(&rig.pool), cfg).unwrap();
    (rig, e)
}

fn load_back(e: &Engine, slot: u64, pages: usize) -> Vec<u8> {
    let d = e
        .load(0, slot, vec![0; pages * PAGE_SIZE], LoadMode::KeepCopy)
        .unwrap()
        .wait();
    assert!(d.is_ok(), "{:?}", d.outcome);
    d.buffer
}

#[test]
fn batches_go_to_the_device_whole() {
    let (rig, e) = rig(WqMode::Dedicated, 32, Duration::from_secs(2), NEVER);
    let c = builtin();
    let data = folio(&c, 0, 64, 1);
    let d = e.store(0, 0, data.clone()).unwrap().wait();
    assert!(matches!(d.outcome, Ok(Reply::Stored(_))), "{:?}", d.outcome);
    assert_eq!(d.backend, Backend::Device);
    assert_eq!(load_back(&e, 0, 64), data);
    let m = e.metrics();
    let dev = m.device.clone().unwrap();
    assert!(dev.emulator);
    assert_eq!(
        dev.device_pages[0], 64,
        "every page compressed on the device"
    );
    // Incompressible pages are stored as they are and read back without a codec.
    let raw = rig.pool.stats().incompressible_pages;
    assert!(raw < 64);
    assert_eq!(
        dev.device_pages[1],
        64 - raw,
        "every compressed page decompressed on the device"
    );
    assert_eq!(dev.fallbacks_total(), 0);
    // Eight compress rounds with all eight descriptors in flight together.
    assert!(
        dev.in_flight[8] >= 8,
        "in-flight histogram {:?}",
        dev.in_flight
    );
    // Eight store batches of 8 pages, and the 64-page load (counted in the top bucket).
    assert_eq!(m.batch_pages[8], 9, "{:?}", m.batch_pages);
    let text = e.prometheus();
    assert!(text.contains("swapaccel_device_emulated 1"));
    assert!(text.contains("swapaccel_device_in_flight_bucket{le=\"8\"}"));
}

#[test]
fn a_device_error_on_a_page_is_redone_in_software() {
    let (rig, e) = rig(WqMode::Dedicated, 32, Duration::from_secs(2), NEVER);
    let c = builtin();
    rig.emu
        .faults()
        .inject(Target::Compress, Fault::HardwareError, 3);
    let data = folio(&c, 100, 8, 1);
    let d = e.store(0, 100, data.clone()).unwrap().wait();
    assert!(d.is_ok(), "{:?}", d.outcome);
    assert_eq!(d.backend, Backend::Mixed);
    let m = e.metrics();
    assert_eq!(m.fallbacks(FallbackReason::DeviceError), 3);
    let dev = m.device.unwrap();
    assert!(!dev.down, "a page's error does not take the device down");
    assert_eq!(dev.device_pages[0], 5);
    assert_eq!(dev.software_pages[0], 3);
    // Pages made in software and on the device read back alike (on the device).
    assert_eq!(load_back(&e, 100, 8), data);

    rig.emu
        .faults()
        .inject(Target::Decompress, Fault::Watchdog, 2);
    assert_eq!(load_back(&e, 100, 8), data);
    let m = e.metrics();
    let dev = m.device.unwrap();
    let (_, _, dec) = dev.fallbacks[1];
    assert_eq!(dec, 2, "decompress fallbacks: {:?}", dev.fallbacks);
}

#[test]
fn a_busy_queue_sends_pages_to_software_now() {
    let (rig, e) = rig(WqMode::Shared, 32, Duration::from_secs(2), NEVER);
    let c = builtin();
    rig.emu.faults().reject_enqcmd(1_000_000);
    let data = folio(&c, 200, 8, 1);
    let d = e.store(0, 200, data.clone()).unwrap().wait();
    assert!(d.is_ok(), "{:?}", d.outcome);
    assert_eq!(d.backend, Backend::Software);
    let m = e.metrics();
    assert_eq!(m.fallbacks(FallbackReason::QueueBusy), 8);
    assert!(!m.device.as_ref().unwrap().down, "busy is not gone");
    rig.emu.faults().clear();
    let d = e.store(0, 300, folio(&c, 300, 8, 1)).unwrap().wait();
    assert_eq!(d.backend, Backend::Device);
    assert_eq!(load_back(&e, 200, 8), data);
}

#[test]
fn an_unresponsive_device_is_marked_down_then_probed_back() {
    // The lost descriptor is noticed after the context's timeout; the probe comes only when
    // the test asks for it (`probe_now`), so a slow machine cannot probe early.
    let (rig, e) = rig(WqMode::Dedicated, 32, Duration::from_millis(250), NEVER);
    let c = builtin();
    rig.emu.faults().inject(Target::Any, Fault::Lose, 1);
    let data = folio(&c, 400, 8, 1);
    let d = e.store(0, 400, data.clone()).unwrap().wait();
    assert!(d.is_ok(), "{:?}", d.outcome);
    let m = e.metrics();
    let dev = m.device.clone().unwrap();
    assert!(dev.down, "{dev:?}");
    assert_eq!(dev.marked_down, 1);
    assert!(m.fallbacks(FallbackReason::DeviceGone) >= 1);
    // While down, everything goes straight to software.
    let d2 = e.store(0, 500, folio(&c, 500, 8, 1)).unwrap().wait();
    assert!(d2.is_ok());
    assert_eq!(d2.backend, Backend::Software);
    assert_eq!(e.metrics().fallbacks(FallbackReason::DeviceDown), 8);
    // Once a probe is due the next batch probes the device and finds it back.
    rig.backend.probe_now();
    let d3 = e.store(0, 600, folio(&c, 600, 8, 1)).unwrap().wait();
    assert!(d3.is_ok());
    // The context that lost a descriptor keeps that slot quarantined (its queue entry
    // still counted), so one of its pages may be refused as busy: device or mixed.
    assert!(
        matches!(d3.backend, Backend::Device | Backend::Mixed),
        "{:?}",
        d3.backend
    );
    let dev = e.metrics().device.unwrap();
    assert!(!dev.down);
    assert_eq!(dev.recoveries, 1);
    assert!(dev.probes >= 1);
    for (slot, v) in [(400, 1), (500, 1), (600, 1)] {
        assert_eq!(load_back(&e, slot, 8), folio(&c, slot, 8, v));
    }
}

#[test]
fn an_unplugged_device_stays_down_and_nothing_is_lost() {
    let (rig, e) = rig(WqMode::Dedicated, 32, Duration::from_millis(250), NEVER);
    let c = builtin();
    // Stored on the device first.
    let before = folio(&c, 0, 16, 1);
    assert!(e.store(0, 0, before.clone()).unwrap().wait().is_ok());
    rig.emu.unplug();
    let after = folio(&c, 16, 16, 1);
    let d = e.store(0, 16, after.clone()).unwrap().wait();
    assert!(d.is_ok(), "{:?}", d.outcome);
    rig.backend.probe_now();
    // Device data read back in software; software data too.
    assert_eq!(load_back(&e, 0, 16), before);
    assert_eq!(load_back(&e, 16, 16), after);
    let m = e.metrics();
    let dev = m.device.clone().unwrap();
    assert!(dev.down);
    assert_eq!(dev.recoveries, 0);
    assert!(dev.fallbacks_total() >= 32, "{:?}", dev.fallbacks);
    assert_eq!(m.failed_of(Op::Store) + m.failed_of(Op::Load), 0);
}

#[test]
fn a_queue_that_refuses_everything_is_marked_down_then_probed_back() {
    let topo = Arc::new(TestTopology::new(&[0]));
    let rig = device_rig(
        Arc::clone(&topo),
        WqMode::Shared,
        32,
        Duration::from_secs(2),
        NEVER,
    );
    rig.pool.swapon(0, 1 << 14, None).unwrap();
    let mut cfg = engine_cfg(topo);
    cfg.device = Some(Arc::clone(&rig.backend));
    cfg.workers = Workers::Fixed(1);
    let e = Engine::start(Arc::clone(&rig.pool), cfg).unwrap();
    let c = builtin();
    rig.emu.faults().reject_enqcmd(u32::MAX);
    let limit = batching::BUSY_STREAK_LIMIT;
    // One 8-page batch at a time, each refused whole.
    for k in 0..limit + 4 {
        let d = e.store(0, k * 8, folio(&c, k * 8, 8, 1)).unwrap().wait();
        assert!(d.is_ok(), "{:?}", d.outcome);
    }
    let m = e.metrics();
    let dev = m.device.clone().unwrap();
    assert!(dev.down, "{dev:?}");
    assert_eq!(dev.marked_down, 1);
    assert_eq!(m.fallbacks(FallbackReason::QueueBusy), limit * 8);
    assert_eq!(m.fallbacks(FallbackReason::DeviceDown), 4 * 8);
    // The queue accepts again; the next probe finds it and the device is used again.
    rig.emu.faults().clear();
    rig.backend.probe_now();
    let d = e.store(0, 4000, folio(&c, 4000, 8, 1)).unwrap().wait();
    assert_eq!(d.backend, Backend::Device);
    let dev = e.metrics().device.unwrap();
    assert!(!dev.down);
    assert_eq!(dev.recoveries, 1);
    for k in 0..limit + 4 {
        assert_eq!(load_back(&e, k * 8, 8), folio(&c, k * 8, 8, 1));
    }
}

#[test]
fn corrupt_data_found_by_the_device_is_redone_in_software_and_stays_a_data_error() {
    // On a load the bytes are the pool's own (checksummed when stored): the device's verdict
    // is not enough to throw a page away, so software decodes the same bytes again; only its
    // failure (or a checksum mismatch in the pool) makes the entry corrupt.
    let (rig, _e) = rig(WqMode::Dedicated, 32, Duration::from_secs(2), NEVER);
    let mut codec = rig
        .backend
        .factory()
        .build(CodecSpec::default_for(CodecId::RawDeflate))
        .unwrap();
    // BTYPE 11 (reserved): no DEFLATE decoder accepts it.
    let garbage = [0xffu8; 64];
    let mut page = vec![0u8; PAGE_SIZE];
    let r = codec
        .decompress_batch(&[&garbage[..]], &mut [&mut page[..]])
        .unwrap();
    let err = r.into_iter().next().unwrap().unwrap_err();
    assert!(err.engine_failure().is_none(), "a data error: {err:?}");
    let dev = rig.backend.snapshot();
    assert_eq!(dev.fallbacks_of(FallbackReason::DeviceError), 1, "{dev:?}");
    assert_eq!(dev.software_pages[1], 1, "redone in software");
    assert!(!dev.down, "bad data does not take the device down");
}

/// Every fault the emulator can inject on a decompress descriptor, with a device deadline
/// short enough for a lost descriptor.
fn load_faults() -> Vec<Fault> {
    vec![
        Fault::PageFault { write: false },
        Fault::PageFault { write: true },
        Fault::OutputOverflow,
        Fault::HardwareError,
        Fault::Watchdog,
        Fault::SlowCompletion(Duration::from_millis(5)),
        Fault::CorruptOutput,
        Fault::Lose,
    ]
}

#[test]
fn every_device_fault_on_a_load_is_redone_in_software_through_the_pool() {
    let c = builtin();
    for fault in load_faults() {
        let topo = Arc::new(TestTopology::new(&[0]));
        let rig = device_rig(
            topo,
            WqMode::Dedicated,
            32,
            Duration::from_millis(200),
            NEVER,
        );
        rig.pool.swapon(0, 1 << 10, None).unwrap();
        let data = folio(&c, 40, 16, 1);
        rig.pool.store(0, 40, &data).unwrap();
        // Every decompress descriptor of the loads below fails.
        rig.emu.faults().inject(Target::Decompress, fault, 1_000);
        let mut back = vec![0u8; data.len()];
        rig.pool
            .load_run(0, 40, &mut back, LoadMode::KeepCopy)
            .unwrap_or_else(|e| panic!("{fault:?}: run load lost pages: {e}"));
        assert!(back == data, "{fault:?}: wrong bytes from a run load");
        for k in 0..16u64 {
            let mut p = vec![0u8; PAGE_SIZE];
            rig.pool
                .load(0, 40 + k, &mut p, LoadMode::Exclusive)
                .unwrap_or_else(|e| panic!("{fault:?}: page {k} lost: {e}"));
            let off = k as usize * PAGE_SIZE;
            assert!(p == data[off..off + PAGE_SIZE], "{fault:?}: page {k} wrong");
        }
        let st = rig.pool.stats();
        assert_eq!(st.stored_pages, 0, "{fault:?}: every page was loaded");
        if !matches!(fault, Fault::CorruptOutput | Fault::SlowCompletion(_)) {
            // (CorruptOutput only affects compress; a slow completion is still a success.)
            let dev = rig.backend.snapshot();
            assert!(
                dev.fallbacks[..].iter().any(|&(_, _, d)| d > 0),
                "{fault:?}: {dev:?}"
            );
        }
    }
}

#[test]
fn every_device_fault_on_a_load_is_redone_in_software_through_the_engine() {
    let c = builtin();
    for fault in load_faults() {
        let topo = Arc::new(TestTopology::new(&[0, 1]));
        let rig = device_rig(
            Arc::clone(&topo),
            WqMode::Dedicated,
            32,
            Duration::from_millis(200),
            NEVER,
        );
        rig.pool.swapon(0, 1 << 10, None).unwrap();
        let mut cfg = engine_cfg(topo);
        cfg.device = Some(Arc::clone(&rig.backend));
        cfg.workers = Workers::Fixed(2);
        let e = Engine::start(Arc::clone(&rig.pool), cfg).unwrap();
        let data = folio(&c, 64, 32, 1);
        let d = e.store(0, 64, data.clone()).unwrap().wait();
        assert!(d.is_ok(), "{:?}", d.outcome);
        rig.emu.faults().inject(Target::Decompress, fault, 1_000);
        for (slot, n) in [(64u64, 8usize), (72, 8), (80, 16)] {
            let d = e
                .load(0, slot, vec![0; n * PAGE_SIZE], LoadMode::Exclusive)
                .unwrap()
                .wait();
            assert!(
                d.is_ok(),
                "{fault:?}: load {slot}+{n} lost: {:?}",
                d.outcome
            );
            let off = (slot - 64) as usize * PAGE_SIZE;
            assert!(
                d.buffer == data[off..off + n * PAGE_SIZE],
                "{fault:?}: wrong bytes at {slot}"
            );
        }
        assert_eq!(rig.pool.stats().stored_pages, 0, "{fault:?}");
    }
}

#[test]
fn a_load_batch_goes_to_the_device_whole() {
    let (_rig, e) = rig(WqMode::Dedicated, 32, Duration::from_secs(2), NEVER);
    let c = builtin();
    let data = folio(&c, 700, 8, 1);
    assert!(e.store(0, 700, data.clone()).unwrap().wait().is_ok());
    let before = e.metrics().device.unwrap();
    assert_eq!(load_back(&e, 700, 8), data);
    let after = e.metrics().device.unwrap();
    let decoded = after.device_pages[1] - before.device_pages[1];
    assert!(
        decoded >= 2,
        "the corpus folio has compressed pages: {decoded}"
    );
    let rounds: Vec<(usize, u64)> = (0..=8)
        .map(|k| (k, after.in_flight[k] - before.in_flight[k]))
        .filter(|&(_, n)| n > 0)
        .collect();
    assert_eq!(
        rounds,
        vec![(decoded as usize, 1)],
        "one submission round with every compressed page of the load in flight"
    );
}

#[test]
fn a_probe_interval_of_duration_max_means_never_probe() {
    let (rig, e) = rig(
        WqMode::Dedicated,
        32,
        Duration::from_millis(250),
        Duration::MAX,
    );
    let c = builtin();
    rig.emu.unplug();
    let data = folio(&c, 800, 8, 1);
    let d = e.store(0, 800, data.clone()).unwrap().wait();
    assert!(d.is_ok(), "{:?}", d.outcome);
    let d = e.store(0, 808, folio(&c, 808, 8, 1)).unwrap().wait();
    assert!(d.is_ok(), "{:?}", d.outcome);
    assert_eq!(d.backend, Backend::Software);
    let dev = e.metrics().device.unwrap();
    assert!(dev.down);
    assert_eq!(dev.probes, 0, "no probe is ever due");
    assert_eq!(load_back(&e, 800, 8), data);
}
