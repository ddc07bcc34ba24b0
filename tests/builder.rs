//! The builder: each device choice and what it reports, the figures in stats and metrics,
//! and configuration errors that leave nothing on.

use swapaccel::codec::corpus::Corpus;
use swapaccel::codec::PAGE_SIZE;
use swapaccel::pool::{BackingProblem, PoolError};
use swapaccel::{Device, DeviceStatus, LoadMode, Swapaccel, SwapaccelError};

fn pages(n: usize) -> Vec<u8> {
    Corpus::builtin().as_bytes()[..n * PAGE_SIZE].to_vec()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("swapaccel-builder-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn off_is_software_and_says_so() {
    let sa = Swapaccel::builder()
        .device(Device::Off)
        .swap_area_in_memory(0, 64)
        .build()
        .unwrap();
    assert_eq!(
        sa.device_status(),
        &DeviceStatus::Software {
            reason: "off".into()
        }
    );
    assert!(sa.device().is_none());
    let p = sa.prometheus();
    assert!(
        p.contains("swapaccel_device_info{engine=\"software\",detail=\"off\"} 1"),
        "{p}"
    );
}

/// Without a usable IAA queue (this machine, and any CI without one), Auto is software with
/// discovery's reason, not an error; with one, it is that queue.
#[test]
fn auto_never_fails_and_reports_the_engine() {
    let sa = Swapaccel::builder()
        .device(Device::Auto)
        .swap_area_in_memory(0, 64)
        .build()
        .unwrap();
    match sa.stats().device_status {
        DeviceStatus::Software { reason } => {
            assert!(!reason.is_empty());
            assert!(sa.stats().device.is_none());
        }
        DeviceStatus::Iaa { work_queue } => assert!(sa.stats().device.is_some(), "{work_queue}"),
        DeviceStatus::Emulator => panic!("Auto never picks the emulator"),
    }
    let data = pages(8);
    sa.area(0).store(0, &data).unwrap();
    let mut out = vec![0u8; PAGE_SIZE];
    sa.area(0).load(3, &mut out, LoadMode::KeepCopy).unwrap();
    assert_eq!(out, data[3 * PAGE_SIZE..4 * PAGE_SIZE]);
}

/// The emulator is the IAA path end to end: with the engine, pages are done on the device
/// and the stats say so.
#[test]
fn emulator_with_engine_runs_pages_on_the_device() {
    let sa = Swapaccel::builder()
        .device(Device::Emulator)
        .engine(true)
        .swap_area_in_memory(1, 256)
        .build()
        .unwrap();
    assert_eq!(sa.device_status(), &DeviceStatus::Emulator);
    let engine = sa.engine().unwrap();
    let data = pages(64);
    let c = engine.store(1, 0, data.clone()).unwrap().wait();
    c.outcome.unwrap();
    let c = engine
        .load(1, 8, vec![0; 8 * PAGE_SIZE], LoadMode::KeepCopy)
        .unwrap()
        .wait();
    c.outcome.unwrap();
    assert_eq!(c.buffer, data[8 * PAGE_SIZE..16 * PAGE_SIZE]);
    let s = sa.stats();
    let dev = s.device.unwrap();
    assert!(dev.emulator);
    assert!(dev.device_pages[0] + dev.device_pages[1] > 0, "{dev:?}");
    assert!(s.engine.unwrap().completed_total() >= 2);
    assert!(s.pool.ratio() > 0.0, "{:?}", s.pool);
}

#[test]
fn a_named_queue_that_does_not_exist_is_an_error() {
    let e = Swapaccel::builder()
        .device(Device::Queue("wq99.99".into()))
        .build()
        .unwrap_err();
    assert!(
        matches!(&e, SwapaccelError::NoSuchQueue { name, .. } if name == "wq99.99"),
        "{e}"
    );
}

/// An area whose file cannot serve fails the build, and the areas before it are off again.
#[test]
fn a_bad_area_fails_the_build_and_leaves_nothing_on() {
    let good = tmp("good");
    let short = tmp("short");
    std::fs::write(&short, [1u8; 100]).unwrap();
    let e = Swapaccel::builder()
        .device(Device::Off)
        .swap_area(0, 16, &good)
        .swap_area(1, 16, &short)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            e,
            SwapaccelError::Pool(PoolError::BadBackingFile {
                ty: 1,
                problem: BackingProblem::TooSmall { len: 100, .. }
            })
        ),
        "{e}"
    );
    assert_eq!(std::fs::metadata(&short).unwrap().len(), 100);
    // Type 0 was turned off again: a new build can take it.
    let sa = Swapaccel::builder()
        .device(Device::Off)
        .swap_area(0, 16, &good)
        .build()
        .unwrap();
    drop(sa);
    let _ = std::fs::remove_file(&good);
    let _ = std::fs::remove_file(&short);
}

#[test]
fn threshold_above_100_is_refused() {
    let e = Swapaccel::builder()
        .accept_threshold_percent(101)
        .build()
        .unwrap_err();
    assert!(matches!(e, SwapaccelError::InvalidConfig(_)), "{e}");
}

/// With a limit, the background reclaimer writes back to the area's file until usage is
/// under the threshold; every page still loads.
#[test]
fn limit_writes_back_to_the_area_file() {
    let path = tmp("limit");
    let sa = Swapaccel::builder()
        .device(Device::Off)
        .pool_limit(256 << 10)
        .reclaim_period(std::time::Duration::from_millis(10))
        .swap_area(0, 4096, &path)
        .build()
        .unwrap();
    let area = sa.area(0);
    let data = pages(256);
    let mut stored = Vec::new();
    for i in 0..256u64 {
        let page = &data[i as usize * PAGE_SIZE..][..PAGE_SIZE];
        // At the limit a store is refused until the reclaimer catches up; retry a while.
        for _ in 0..2000 {
            match area.store(i, page) {
                Ok(_) => {
                    stored.push(i);
                    break;
                }
                Err(PoolError::LimitReached { .. }) => {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert!(sa.stats().pool.written_back > 0, "{:?}", sa.stats().pool);
    let mut out = vec![0u8; PAGE_SIZE];
    for i in &stored {
        area.load(*i, &mut out, LoadMode::KeepCopy).unwrap();
        assert_eq!(out, data[*i as usize * PAGE_SIZE..][..PAGE_SIZE]);
    }
    drop(sa);
    let _ = std::fs::remove_file(&path);
}
