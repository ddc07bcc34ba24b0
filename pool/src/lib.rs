//! A zswap-style compressed page pool for userspace swap daemons.
//!
//! * [`Pool`] — swap areas ([`Pool::swapon`] / [`Pool::swapoff`]), folio stores, exclusive or
//!   keep-copy loads ([`LoadMode`]), invalidation (optionally conditional on a
//!   [`Generation`]), reclaim to a backing file, compressor switch, compaction, [`PoolStats`].
//! * One compression context per possible CPU ([`CpuTopology`]), whose codec comes from the
//!   configuration's [`CodecFactory`] (software by default; a device plugs in there).
//! * Entries are 16 bytes and keep the codec id and the CRC-32 of the page; loads verify it.
//! * The allocator (`alloc.rs`) packs objects into spans by 16-byte size class and hands out
//!   handles, so compaction can move objects while loads and frees run.
//!
//! Locking and lifetime rules are written at the top of the file that enforces them:
//! `pool.rs` (overall order), `context.rs`, `area.rs`, `index.rs`, `alloc.rs`, `reclaim.rs`.

#![warn(missing_docs)]

// The allocator is the pool's own; it is public only under the test-only `shuttle` feature,
// for the compaction model check in tests/shuttle.rs.
#[cfg(feature = "shuttle")]
pub mod alloc;
#[cfg(not(feature = "shuttle"))]
mod alloc;
mod area;
mod attribution;
mod backing;
mod config;
mod context;
mod error;
mod gate;
mod handle;
mod index;
mod load;
mod pool;
mod reclaim;
pub mod seal;
mod stats;
mod store;
mod sync;
pub mod topology;

pub use alloc::AllocError;
pub use attribution::Attribution;
#[cfg(feature = "qpl")]
pub use config::QplFactory;
pub use config::{CodecFactory, PoolConfig, SoftwareFactory};
pub use error::{BackingProblem, PoolError, Result};
pub use handle::SwapArea;
pub use index::GEN_BITS;
pub use pool::{Generation, LoadMode, Pool, MAX_AREA_SLOTS, MAX_FOLIO_PAGES, MAX_SWAP_TYPES};
pub use reclaim::ReclaimerHandle;
pub use stats::PoolStats;
pub use topology::{CpuTopology, SysfsTopology, TestTopology};

/// Bytes of index metadata per stored page (one entry).
pub const ENTRY_BYTES: usize = std::mem::size_of::<index::Entry>();
