//! Attribution through the return value, on the device emulator: the fallback codec reports
//! the pages the device did with each batch call (`BatchResults::on_device`), the pool sums
//! them into the `Attribution` its `*_attributed` calls return, and the engine's completions
//! are classified from that — no thread-local state.

mod common;

use std::sync::Arc;
use std::time::Duration;

use accel::discovery::WqMode;
use accel::emu::{Fault, Target};
use batching::{Backend, Engine, Workers};
use common::*;
use pool::{Attribution, LoadMode, TestTopology};
use software_fallback::corpus::{classify, PageKind};
use software_fallback::PAGE_SIZE;

const NEVER: Duration = Duration::from_secs(3600);

fn codec_pages(data: &[u8]) -> u64 {
    data.chunks(PAGE_SIZE)
        .filter(|p| classify(p) == PageKind::Other)
        .count() as u64
}

fn attr(device_pages: u64, software_pages: u64) -> Attribution {
    Attribution {
        device_pages,
        software_pages,
    }
}

fn rig() -> DeviceRig {
    let topo = Arc::new(TestTopology::new(&[0, 1]));
    let rig = device_rig(topo, WqMode::Dedicated, 32, Duration::from_secs(2), NEVER);
    rig.pool.swapon(0, 1 << 12, None).unwrap();
    rig
}

#[test]
fn pool_calls_on_the_emulator_return_what_the_device_did() {
    let rig = rig();
    let c = builtin();
    let data = folio(&c, 0, 8, 1);
    let n = codec_pages(&data);
    assert!(n >= 4, "the corpus pages need a codec: {n}");

    let (res, a) = rig.pool.store_batch_on_attributed(0, 0, 0, &data);
    res.expect("store");
    assert_eq!(a, attr(n, 0), "all on the device");

    let mut buf = vec![0u8; 8 * PAGE_SIZE];
    let (res, a) = rig
        .pool
        .load_run_on_attributed(1, 0, 0, &mut buf, LoadMode::KeepCopy);
    res.expect("load");
    assert_eq!(buf, data);
    // Pages stored raw (incompressible) are copied, not decoded: they count as neither.
    let k = a.device_pages;
    assert!(k > 2 && k <= n, "{a:?}");
    assert_eq!(a, attr(k, 0), "all on the device");

    // Two pages of the next decode fail on the device and are redone in software.
    rig.emu
        .faults()
        .inject(Target::Decompress, Fault::Watchdog, 2);
    let (res, a) = rig
        .pool
        .load_run_on_attributed(0, 0, 0, &mut buf, LoadMode::KeepCopy);
    res.expect("load");
    assert_eq!(buf, data);
    assert_eq!(a, attr(k - 2, 2));

    // Down: every page in software.
    rig.backend.mark_down("test");
    let data2 = folio(&c, 8, 8, 1);
    let m = codec_pages(&data2);
    let (res, a) = rig.pool.store_batch_on_attributed(0, 0, 8, &data2);
    res.expect("store");
    assert_eq!(a, attr(0, m));
    let (res, a) = rig
        .pool
        .load_run_on_attributed(0, 0, 8, &mut buf, LoadMode::Exclusive);
    res.expect("load");
    assert_eq!(buf, data2);
    assert_eq!(a.device_pages, 0, "{a:?}");
    assert!(a.software_pages > 0 && a.software_pages <= m, "{a:?}");
}

#[test]
fn the_engine_attributes_each_request_from_its_own_pool_call() {
    let rig = rig();
    let topo = Arc::new(TestTopology::new(&[0, 1]));
    let mut cfg = engine_cfg(topo);
    cfg.device = Some(Arc::clone(&rig.backend));
    cfg.workers = Workers::Fixed(2);
    let e = Engine::start(Arc::clone(&rig.pool), cfg).unwrap();
    let c = builtin();

    let data = folio(&c, 100, 8, 1);
    let d = e.store(0, 100, data.clone()).unwrap().wait();
    assert!(d.is_ok(), "{:?}", d.outcome);
    assert_eq!(d.backend, Backend::Device);
    let d = e
        .load(0, 100, vec![0; 8 * PAGE_SIZE], LoadMode::KeepCopy)
        .unwrap()
        .wait();
    assert!(d.is_ok(), "{:?}", d.outcome);
    assert_eq!(d.buffer, data);
    assert_eq!(d.backend, Backend::Device);

    // Forced to software: the device is down.
    rig.backend.mark_down("test");
    let d = e.store(0, 200, folio(&c, 200, 8, 1)).unwrap().wait();
    assert!(d.is_ok(), "{:?}", d.outcome);
    assert_eq!(d.backend, Backend::Software);
    let d = e
        .load(0, 100, vec![0; 8 * PAGE_SIZE], LoadMode::KeepCopy)
        .unwrap()
        .wait();
    assert!(d.is_ok(), "{:?}", d.outcome);
    assert_eq!(d.buffer, data);
    assert_eq!(d.backend, Backend::Software);

    // Pages that need no codec: attributed to neither.
    let d = e.store(0, 300, vec![0; 4 * PAGE_SIZE]).unwrap().wait();
    assert!(d.is_ok(), "{:?}", d.outcome);
    assert_eq!(d.backend, Backend::NoCodec);
    e.shutdown();
}
