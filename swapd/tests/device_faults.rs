//! The daemon on a pool whose codec is the device (the IAA emulator) with software fallback:
//! every fault the emulator can inject on a decompress descriptor hits the daemon's loads,
//! and not one page is lost or wrong (issue 11, item 1: before the fix, an output overflow on
//! an intact page made the load fail with `CorruptEntry` and the faulting thread got
//! SIGBUS). Needs userfaultfd (root here): reported ignored with the reason where it cannot
//! be had, unless `SWAPACCEL_REQUIRE_UFFD=1` makes that a failure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use accel::discovery::WqMode;
use accel::emu::{Emulator, EmulatorConfig, Fault, Target};
use accel::wq::PathKind;
use accel::ContextConfig;
use batching::{DeviceBackend, FallbackReason};
use libtest_mimic::{Arguments, Failed, Trial};
use pool::{CpuTopology, Pool, PoolConfig, TestTopology};
use software_fallback::{CodecSpec, PAGE_SIZE};
use swapd::{Region, RegionConfig};

const WORDS_PER_PAGE: usize = PAGE_SIZE / 8;

/// A compressible value for (word, version).
fn value(word: usize, version: u64) -> u64 {
    if word % 2 == 0 {
        (word as u64) << 20 | version
    } else {
        version
    }
}

fn fill_page(words: &[AtomicU64], page: usize, version: u64) {
    let first = page * WORDS_PER_PAGE;
    for (i, w) in words[first..first + WORDS_PER_PAGE].iter().enumerate() {
        w.store(value(first + i, version), Ordering::Relaxed);
    }
}

fn check_all(words: &[AtomicU64], version: u64) -> Result<(), Failed> {
    for (i, w) in words.iter().enumerate() {
        let got = w.load(Ordering::Relaxed);
        let want = value(i, version);
        if got != want {
            return Err(format!("word {i}: read {got:#x}, wrote {want:#x}").into());
        }
    }
    Ok(())
}

/// 8 MiB through a 1 MiB budget, DEFLATE on the emulated device; every kind of decompress
/// fault armed for many descriptors (a lost descriptor last: it takes the device down).
fn every_load_fault_costs_no_page() -> Result<(), Failed> {
    let emu = Emulator::start(EmulatorConfig {
        mode: WqMode::Dedicated,
        path: PathKind::Portal,
        size: 32,
        ..EmulatorConfig::default()
    })?;
    let backend = DeviceBackend::new(
        emu.work_queue(),
        ContextConfig {
            timeout: Duration::from_millis(100),
            drain_on_drop: Duration::from_millis(20),
            ..ContextConfig::default()
        },
        Duration::from_secs(3600),
    );
    let topo: Arc<dyn CpuTopology> = Arc::new(TestTopology::new(&[0, 1]));
    let pool = Arc::new(Pool::new(PoolConfig {
        codec: CodecSpec::DEFLATE,
        topology: topo,
        factory: backend.factory(),
        ..PoolConfig::default()
    })?);
    let cfg = RegionConfig {
        bytes: 8 << 20,
        budget_bytes: 1 << 20,
        ..RegionConfig::default()
    };
    let r = Region::with_pool(&cfg, Arc::clone(&pool), 0)?;
    let pages = r.len() / PAGE_SIZE;
    let words = r.words();
    for p in 0..pages {
        fill_page(words, p, 1);
    }
    let faults = [
        Fault::PageFault { write: false },
        Fault::PageFault { write: true },
        Fault::OutputOverflow,
        Fault::HardwareError,
        Fault::Watchdog,
        Fault::SlowCompletion(Duration::from_millis(1)),
        Fault::CorruptOutput,
        Fault::Lose,
    ];
    for f in faults {
        emu.faults().inject(Target::Decompress, f, 40);
    }
    // Read every page back twice (each pass faults the evicted pages in through loads).
    for _ in 0..2 {
        check_all(words, 1)?;
    }
    r.health()?;
    let ps = r.pool_stats();
    let st = r.stats();
    let dev = backend.snapshot();
    if st.faults_loaded == 0 || dev.device_pages[1] == 0 {
        return Err(format!("too little traffic: {st:?} {dev:?}").into());
    }
    if dev.fallbacks_of(FallbackReason::DeviceError) == 0 {
        return Err(format!("no device error reached a load: {dev:?}").into());
    }
    if ps.checksum_failures != 0 || ps.decompress_failures != 0 {
        return Err(format!("pool: {ps:?}").into());
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    // Can this process have a userfaultfd region? (Asked with a software pool.)
    let unavailable = match Pool::new(PoolConfig::default()) {
        Err(e) => Some(format!("pool: {e}")),
        Ok(p) => Region::with_pool(
            &RegionConfig {
                bytes: 1 << 20,
                budget_bytes: 1 << 20,
                evict_batch: 8,
                ..RegionConfig::default()
            },
            Arc::new(p),
            0,
        )
        .err()
        .map(|e| e.to_string()),
    };
    let require = std::env::var("SWAPACCEL_REQUIRE_UFFD").is_ok_and(|v| v == "1");
    let name = "every_load_fault_costs_no_page";
    let trial = match unavailable {
        None => Trial::test(name, every_load_fault_costs_no_page),
        Some(why) if require => Trial::test(name, move || {
            Err(format!("SWAPACCEL_REQUIRE_UFFD=1 but {why}").into())
        }),
        Some(why) => {
            eprintln!("skipped {name}: {why}");
            Trial::test(name, || Ok(())).with_ignored_flag(true)
        }
    };
    libtest_mimic::run(&args, vec![trial]).exit();
}
