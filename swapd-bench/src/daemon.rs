//! The workload on our daemon: a pool with the chosen codec, the batching engine (or the pool
//! directly), a region with the budget, the workload in it, and every figure collected.

use std::sync::Arc;

use pool::{CpuTopology, Pool, PoolConfig, PoolStats, SysfsTopology};
use serde::{Deserialize, Serialize};
use software_fallback::{Causes, CodecSpec};

use super::workload::{self, WorkloadConfig, WorkloadReport};
use crate::error::{BenchError, Result};
use swapd::floor::Floor;
use swapd::{EngineStore, FaultDelivery, PageStore, PoolStore, Region, RegionConfig, RegionStats};

/// Faults timed for each floor (poll, spin and signal): a few ms each.
const FLOOR_FAULTS: usize = 2000;

/// How the daemon side is set up.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// Compressor.
    pub codec: CodecSpec,
    /// Resident budget in bytes.
    pub budget: usize,
    /// Pages per eviction batch.
    pub evict_batch: usize,
    /// Fault threads.
    pub fault_threads: usize,
    /// Fault-around pages.
    pub fault_around: usize,
    /// Store through the batching engine (else the pool directly).
    pub use_engine: bool,
    /// Count writes as accesses for the clock.
    pub track_writes: bool,
    /// Fault threads spin this long for the next message before sleeping.
    pub spin_us: u32,
    /// Nice value of the fault threads (`None`: inherited).
    pub daemon_nice: Option<i32>,
    /// Which thread serves a fault.
    pub fault_delivery: FaultDelivery,
}

/// Pool figures worth printing (a subset of [`PoolStats`], serialisable).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PoolFigures {
    /// Pages held at the end.
    pub stored_pages: u64,
    /// Of which same-filled.
    pub same_filled_pages: u64,
    /// Of which stored raw (incompressible).
    pub incompressible_pages: u64,
    /// Compressed bytes.
    pub compressed_bytes: u64,
    /// Allocator memory.
    pub pool_bytes: u64,
    /// Stored page bytes / pool bytes.
    pub ratio: f64,
}

impl From<&PoolStats> for PoolFigures {
    fn from(s: &PoolStats) -> Self {
        PoolFigures {
            stored_pages: s.stored_pages,
            same_filled_pages: s.same_filled_pages,
            incompressible_pages: s.incompressible_pages,
            compressed_bytes: s.compressed_bytes,
            pool_bytes: s.pool_bytes,
            ratio: if s.pool_bytes == 0 {
                0.0
            } else {
                (s.stored_pages * software_fallback::PAGE_SIZE as u64) as f64 / s.pool_bytes as f64
            },
        }
    }
}

/// The daemon run's figures.
#[derive(Clone, Debug)]
pub struct DaemonReport {
    /// The workload's own figures.
    pub workload: WorkloadReport,
    /// The daemon's counters (at the end of the measured phase; populate included).
    pub region: RegionStats,
    /// Pages evicted during the measured phase.
    pub evicted_run: u64,
    /// Pages loaded back on fault during the measured phase.
    pub faulted_run: u64,
    /// Pages evicted by fault threads (direct reclaim) during the measured phase, and how
    /// many times.
    pub fault_path_evictions_run: (u64, u64),
    /// The pool at the end.
    pub pool: PoolFigures,
    /// Which store was used.
    pub store: &'static str,
    /// The bare userfaultfd round trip, measured just before the workload.
    pub floor: Floor,
    /// Which thread served the faults.
    pub delivery: FaultDelivery,
}

/// Runs the workload on a fresh region.
pub fn run(w: &WorkloadConfig, d: &DaemonConfig) -> Result<DaemonReport> {
    w.keys()?;
    let floor = swapd::floor::measure(FLOOR_FAULTS)?;
    let topology: Arc<dyn CpuTopology> = Arc::new(SysfsTopology);
    let pool = Arc::new(Pool::new(PoolConfig {
        codec: d.codec,
        topology: topology.clone(),
        ..PoolConfig::default()
    })?);
    let slots = w.footprint.div_ceil(software_fallback::PAGE_SIZE) as u64;
    let (store, name): (Arc<dyn PageStore>, &'static str) = if d.use_engine {
        let s = EngineStore::new(pool.clone(), topology, 0, slots.max(1), None)
            .map_err(|e| BenchError::Daemon(format!("batching engine: {}", Causes(&e))))?;
        (Arc::new(s), "batching engine")
    } else {
        (
            Arc::new(PoolStore::new(pool.clone(), 0, slots.max(1))?),
            "pool (direct)",
        )
    };
    let region = Region::new(
        &RegionConfig {
            bytes: w.footprint,
            budget_bytes: d.budget,
            evict_batch: d.evict_batch,
            fault_threads: d.fault_threads,
            fault_around: d.fault_around,
            track_writes: d.track_writes,
            spin_us: d.spin_us,
            daemon_nice: d.daemon_nice,
            fault_delivery: d.fault_delivery,
        },
        store,
    )?;
    let at_start = std::cell::RefCell::new(RegionStats::default());
    let absent = |word: usize| region.page_absent(word * 8 / software_fallback::PAGE_SIZE);
    let workload = workload::run_probed(
        region.words(),
        w,
        || {
            *at_start.borrow_mut() = region.stats();
            Ok(region.health()?)
        },
        &absent,
    )?;
    region.health()?;
    let stats = region.stats();
    let s0 = at_start.into_inner();
    let pool = PoolFigures::from(&region.pool_stats());
    Ok(DaemonReport {
        workload,
        evicted_run: stats.evicted - s0.evicted,
        faulted_run: stats.faults_loaded - s0.faults_loaded,
        fault_path_evictions_run: (
            stats.fault_path_evictions - s0.fault_path_evictions,
            stats.direct_reclaims - s0.direct_reclaims,
        ),
        region: stats,
        pool,
        store: name,
        floor,
        delivery: d.fault_delivery,
    })
}
