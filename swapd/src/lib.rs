//! A userfaultfd swap daemon on the swapaccel pool.
//!
//! * [`Region`] — an anonymous mapping registered with userfaultfd, with a resident budget.
//!   A program reads and writes it from any number of threads ([`Region::words`]); past the
//!   budget a clock picks cold pages, takes them out atomically (`UFFDIO_MOVE`), and stores
//!   them in batches through a [`PageStore`]; a fault brings a page back with a keep-copy
//!   load, `UFFDIO_COPY`, and a conditional invalidate of that generation.
//! * [`PageStore`] — what the daemon needs from the pool; [`EngineStore`] stores through the
//!   batching engine (the default), [`PoolStore`] calls the pool directly.
//!
//! The `swapaccel swapd-bench` workload and its kernel-zswap peer live in the `swapd-bench`
//! crate.
//!
//! Locking and lifetime rules are written once at the top of `pages.rs`.

mod around;
mod engine_store;
mod error;
mod evict;
mod fault;
pub mod floor;
mod in_thread;
mod laps;
mod pages;
mod refault;
mod region;
mod shared;
mod stats;
mod store;
mod sys;

pub use engine_store::EngineStore;
pub use error::{Result, SwapdError};
pub use pages::PageState;
pub use region::{FaultDelivery, Region, RegionConfig};
pub use stats::{Histogram, RegionStats};
pub use store::{PageStore, PoolStore, StoreError};
pub use sys::uffd::UffdSource;
