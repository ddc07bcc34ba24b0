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
