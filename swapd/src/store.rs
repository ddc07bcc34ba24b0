//! Where evicted pages go: the [`PageStore`] trait, and [`PoolStore`], which calls the pool
//! directly. (The batching engine plugs in behind the same trait.)

use std::sync::Arc;

use batching::EngineError;
use pool::{Generation, LoadMode, Pool, PoolError, PoolStats};
use software_fallback::PAGE_SIZE;

/// Why a run of pages was not stored. Whatever the reason, the store holds no entry for any
/// slot of the run, and the daemon keeps the pages resident.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The pool refused or failed the run.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The batching engine did not take or finish the run: its queues were full
    /// ([`EngineError::Busy`]), it is shut down ([`EngineError::ShutDown`]), or it failed.
    #[error(transparent)]
    Engine(EngineError),
    /// The engine answered a store with something other than a store's receipt for the run:
    /// a bug, reported instead of trusted.
    #[error("batching engine protocol: {0}")]
    Protocol(&'static str),
}

impl From<EngineError> for StoreError {
    /// A pool error inside an engine error is the pool's.
    fn from(e: EngineError) -> StoreError {
        match e {
            EngineError::Pool(p) => StoreError::Pool(p),
            other => StoreError::Engine(other),
        }
    }
}

/// The operations the daemon needs from a compressed page store. Slots are region page
/// indices. Implementations are shared between the evictor and the fault threads.
pub trait PageStore: Send + Sync {
    /// Stores runs of pages: each run is `(first slot, pages)` with 1 to 8 whole pages at
    /// consecutive slots. One result per run: on error the store holds no entry for any slot
    /// of that run. The daemon checks the count: a store that answers fewer runs (or panics)
    /// is reported through `Region::health`, and the pages of the runs without an answer are
    /// put back (resident; an entry the store kept for them anyway is replaced by their next
    /// store).
    fn store_runs(&self, runs: &[(u64, &[u8])]) -> Vec<Result<Generation, StoreError>>;
    /// Loads one page, leaving the entry in place (keep-copy); returns its generation.
    fn load_keep(&self, slot: u64, page: &mut [u8]) -> Result<Generation, PoolError>;
    /// Loads consecutive slots (fault-around), keep-copy.
    fn load_run_keep(&self, slot: u64, pages: &mut [u8]) -> Result<(), PoolError>;
    /// Drops the entry at `slot` only if it is still generation `gen`.
    fn invalidate_if(&self, slot: u64, gen: Generation) -> Result<(), PoolError>;
    /// The pool's statistics.
    fn stats(&self) -> PoolStats;
}

/// Calls into a [`PageStore`] and turns a panic into an error message: a store is code the
/// daemon does not control, and a panic that unwound through a daemon thread would leave
/// pages `Evicting` (their faults waiting for ever) or the staging area full (every later
/// `UFFDIO_MOVE` into it failing with `EEXIST`).
pub(crate) fn guarded<R>(what: &str, f: impl FnOnce() -> R) -> Result<R, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string payload".into());
        format!("PageStore::{what} panicked: {msg}")
    })
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
    fn store_runs(&self, runs: &[(u64, &[u8])]) -> Vec<Result<Generation, StoreError>> {
        runs.iter()
            .map(|&(slot, pages)| Ok(self.pool.store(self.ty, slot, pages)?))
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
            tracing::warn!(
                ty = self.ty,
                error = &e as &dyn std::error::Error,
                "swapoff"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// The engine's refusals keep their own type (a caller can tell "try later" from "gone"),
    /// a pool error inside an engine error is the pool's, and each text is read once: the
    /// message and the source chain never repeat each other.
    #[test]
    fn engine_refusals_keep_their_kind_and_read_once() {
        let busy = StoreError::from(EngineError::Busy {
            queued: 3,
            capacity: 3,
        });
        assert!(matches!(busy, StoreError::Engine(EngineError::Busy { .. })));
        assert!(matches!(
            StoreError::from(EngineError::ShutDown),
            StoreError::Engine(EngineError::ShutDown)
        ));
        let pool = StoreError::from(EngineError::Pool(PoolError::AbsentSlot { ty: 0, slot: 7 }));
        assert!(matches!(
            pool,
            StoreError::Pool(PoolError::AbsentSlot { .. })
        ));
        let io = PoolError::Io {
            ty: 0,
            slot: 1,
            op: "write",
            source: std::io::Error::from_raw_os_error(libc::ENOSPC),
        };
        let cause = io.source().expect("the OS error is the source").to_string();
        assert!(!io.to_string().contains(&cause), "{io}");
        for e in [busy, pool, StoreError::from(io)] {
            let mut texts = vec![e.to_string()];
            let mut s = e.source();
            while let Some(c) = s {
                texts.push(c.to_string());
                s = c.source();
            }
            for w in texts.windows(2) {
                assert!(!w[0].contains(&w[1]), "{texts:?}");
            }
        }
    }
}
