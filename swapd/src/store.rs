//! Where evicted pages go: the [`PageStore`] trait, and [`PoolStore`], which calls the pool
//! directly. (The batching engine plugs in behind the same trait.)

use std::sync::Arc;

use pool::{Generation, LoadMode, Pool, PoolError, PoolStats};
use software_fallback::PAGE_SIZE;

/// The operations the daemon needs from a compressed page store. Slots are region page
/// indices. Implementations are shared between the evictor and the fault threads.
pub trait PageStore: Send + Sync {
    /// Stores runs of pages: each run is `(first slot, pages)` with 1 to 8 whole pages at
    /// consecutive slots. One result per run: on error the store holds no entry for any slot
    /// of that run.
    fn store_runs(&self, runs: &[(u64, &[u8])]) -> Vec<Result<Generation, PoolError>>;
    /// Loads one page, leaving the entry in place (keep-copy); returns its generation.
    fn load_keep(&self, slot: u64, page: &mut [u8]) -> Result<Generation, PoolError>;
    /// Loads consecutive slots (fault-around), keep-copy.
    fn load_run_keep(&self, slot: u64, pages: &mut [u8]) -> Result<(), PoolError>;
    /// Drops the entry at `slot` only if it is still generation `gen`.
    fn invalidate_if(&self, slot: u64, gen: Generation) -> Result<(), PoolError>;
    /// The pool's statistics.
    fn stats(&self) -> PoolStats;
}

/// A [`PageStore`] on a [`Pool`] swap area, called directly. Turns its area off on drop.
#[derive(Debug)]
pub struct PoolStore {
    pool: Arc<Pool>,
    ty: u32,
}

impl PoolStore {
    /// Turns swap type `ty` on with `slots` slots (no backing file) and serves it.
    pub fn new(pool: Arc<Pool>, ty: u32, slots: u64) -> Result<PoolStore, PoolError> {
        pool.swapon(ty, slots, None)?;
        Ok(PoolStore { pool, ty })
    }

    /// The pool.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }
}

impl PageStore for PoolStore {
    fn store_runs(&self, runs: &[(u64, &[u8])]) -> Vec<Result<Generation, PoolError>> {
        runs.iter()
            .map(|&(slot, pages)| self.pool.store(self.ty, slot, pages))
            .collect()
    }

    fn load_keep(&self, slot: u64, page: &mut [u8]) -> Result<Generation, PoolError> {
        self.pool.load(self.ty, slot, page, LoadMode::KeepCopy)
    }

    fn load_run_keep(&self, slot: u64, pages: &mut [u8]) -> Result<(), PoolError> {
        debug_assert!(pages.len() % PAGE_SIZE == 0);
        self.pool.load_run(self.ty, slot, pages, LoadMode::KeepCopy)
    }

    fn invalidate_if(&self, slot: u64, gen: Generation) -> Result<(), PoolError> {
        self.pool.invalidate_if(self.ty, slot, gen)
    }

    fn stats(&self) -> PoolStats {
        self.pool.stats()
    }
}

impl Drop for PoolStore {
    fn drop(&mut self) {
        if let Err(e) = self.pool.swapoff(self.ty) {
            tracing::warn!(ty = self.ty, error = %e, "swapoff");
        }
    }
}
