//! [`EngineStore`]: a [`PageStore`] whose stores go through the batching engine (runs are
//! queued together and compressed by the engine's workers in parallel, one codec batch per
//! run), while fault-path loads and conditional invalidates go to the pool directly (one page,
//! latency-bound: a queue hop would only add a thread wake-up to every fault).
//!
//! Ordering: the engine does not order requests on the same slot; the daemon never has two
//! in flight for one slot (a page's store completes before its state leaves `Evicting`, and
//! loads and invalidates are synchronous), which is the contract the engine asks for.

use std::sync::Arc;

use batching::{Engine, EngineConfig, EngineError, Reply, Workers};
use pool::{CpuTopology, Generation, LoadMode, Pool, PoolError, PoolStats};

use crate::store::{PageStore, StoreError};

/// A [`PageStore`] on the batching engine in front of a pool's swap area. Turns its area off
/// (after shutting the engine down) on drop.
pub struct EngineStore {
    engine: Engine,
    ty: u32,
}

impl std::fmt::Debug for EngineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineStore")
            .field("ty", &self.ty)
            .finish_non_exhaustive()
    }
}

impl EngineStore {
    /// Turns swap type `ty` on with `slots` slots and starts an engine on `pool` with
    /// `workers` workers (`None`: one per online CPU). `topology` must be the pool's own.
    pub fn new(
        pool: Arc<Pool>,
        topology: Arc<dyn CpuTopology>,
        ty: u32,
        slots: u64,
        workers: Option<usize>,
    ) -> Result<EngineStore, EngineError> {
        let mut cfg = EngineConfig::new(topology);
        if let Some(n) = workers {
            cfg.workers = Workers::Fixed(n);
        }
        pool.swapon(ty, slots, None)?;
        match Engine::start(pool.clone(), cfg) {
            Ok(engine) => Ok(EngineStore { engine, ty }),
            Err(e) => {
                if let Err(e2) = pool.swapoff(ty) {
                    tracing::warn!(
                        ty,
                        error = &e2 as &dyn std::error::Error,
                        "swapoff after failed engine start"
                    );
                }
                Err(e)
            }
        }
    }

    /// The engine (for its metrics).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

impl PageStore for EngineStore {
    fn store_runs(&self, runs: &[(u64, &[u8])]) -> Vec<Result<Generation, StoreError>> {
        // Queue every run first, then wait: the workers compress them in parallel.
        let tickets: Vec<_> = runs
            .iter()
            .map(|&(slot, pages)| self.engine.store(self.ty, slot, pages.to_vec()))
            .collect();
        tickets
            .into_iter()
            .zip(runs)
            .map(|(t, &(slot, _))| {
                let c = t.map_err(|r| StoreError::from(r.error))?.wait();
                match c.outcome? {
                    Reply::Stored(receipt) => receipt.generation_of(slot).ok_or(
                        StoreError::Protocol("store receipt lacks the run's first slot"),
                    ),
                    _ => Err(StoreError::Protocol(
                        "engine answered a store with another reply",
                    )),
                }
            })
            .collect()
    }

    fn load_keep(&self, slot: u64, page: &mut [u8]) -> Result<Generation, PoolError> {
        self.engine
            .pool()
            .load(self.ty, slot, page, LoadMode::KeepCopy)
    }

    fn load_run_keep(&self, slot: u64, pages: &mut [u8]) -> Result<(), PoolError> {
        self.engine
            .pool()
            .load_run(self.ty, slot, pages, LoadMode::KeepCopy)
    }

    fn invalidate_if(&self, slot: u64, gen: Generation) -> Result<(), PoolError> {
        self.engine.pool().invalidate_if(self.ty, slot, gen)
    }

    fn stats(&self) -> PoolStats {
        self.engine.pool().stats()
    }
}

impl Drop for EngineStore {
    fn drop(&mut self) {
        let report = self.engine.shutdown();
        tracing::debug!(?report, "engine shut down");
        if let Err(e) = self.engine.pool().swapoff(self.ty) {
            tracing::warn!(
                ty = self.ty,
                error = &e as &dyn std::error::Error,
                "swapoff"
            );
        }
    }
}
