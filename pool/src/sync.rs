//! The locks and atomics the pool's protocols use: std's, or shuttle's when the `shuttle`
//! feature is on, so that the model checks in `tests/shuttle.rs` run the production types
//! under shuttle's scheduler. (Statistics shard selection, the write-once context cells and
//! the test topology stay on std: no protocol depends on them.)

#[cfg(feature = "shuttle")]
pub(crate) use shuttle::sync::{
    atomic::{AtomicBool, AtomicU64},
    Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
#[cfg(not(feature = "shuttle"))]
pub(crate) use std::sync::{
    atomic::{AtomicBool, AtomicU64},
    Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

/// Number of shards of the pool's sharded structures (counters, swap-type gates).
pub(crate) const SHARDS: usize = 16;

/// The calling thread's shard: threads are spread over the shards round-robin as they first
/// ask, so threads on different CPUs mostly use different shards.
pub(crate) fn thread_shard() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    MINE.with(|m| *m)
}
