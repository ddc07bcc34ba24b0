//! Request queues that dispatch batched folios to the pool: the "service" of swapaccel.
//!
//! A swap daemon hands an [`Engine`] store, load and invalidate requests for folios (1 to
//! 512 pages) from many threads and waits on a [`Ticket`], polls it, or receives the
//! [`Completion`] on a channel of its own ([`Engine::submit_to`]). Inside:
//!
//! * **Queues** (`queue.rs`): two bounded crossbeam channels, an urgent lane (loads,
//!   invalidates: a fault waits on them) that workers always serve first and a bulk lane
//!   (stores); capacity counted in items (a store is cut into items of up to 8 pages; a load
//!   or invalidate is one item). A full engine blocks the producer or returns
//!   [`EngineError::Busy`] ([`FullPolicy`]).
//! * **Workers** (`worker.rs`, `coalesce.rs`): by default one per online CPU. A worker takes
//!   an item and coalesces whatever is *already* queued, up to 8 pages, never waiting for
//!   more; contiguous stores become one pool call (one codec batch on that CPU's pool
//!   context: on IAA submitted whole, then polled).
//! * **Fallback** (the `device-fallback` crate, re-exported as [`fallback`]):
//!   [`DeviceBackend`] plugs IAA into the pool's contexts through its codec factory; each
//!   page the device does not do runs in software in the same call, counted by
//!   [`FallbackReason`]; a device that goes away is marked down and probed again later.
//! * **Hotplug** (`hotplug.rs`): workers follow the online CPUs; the pool's contexts are
//!   never freed on the way.
//! * **Shutdown** (`shutdown.rs`): stop new callers, drain, stop; nothing accepted is lost.
//! * **Metrics** (`metrics.rs`, `prometheus.rs`): requests and pages by backend, batch-size
//!   histogram, queue depth, per-page latency p50/p99/p999, fallbacks by reason.
//!
//! **Ordering contract.** Requests are not ordered with each other: two requests in flight
//! at the same time whose slots overlap may run in either order. As in the kernel (where
//! the swap cache serialises a slot's operations), a caller that needs an order between
//! operations on a slot waits for the first one's completion before submitting the next.

#![deny(missing_docs)]

mod coalesce;
mod engine;
mod error;
pub use device_fallback as fallback;
mod hotplug;
pub mod metrics;
pub mod prometheus;
mod queue;
mod request;
mod shutdown;
mod vocab;
mod worker;

pub use engine::{Engine, EngineConfig, MergePolicy, Request, MIN_QUEUE_CAPACITY};
pub use error::{EngineError, Rejected};
pub use fallback::{
    DeviceBackend, DeviceSnapshot, Direction, FallbackCodec, FallbackReason, BUSY_STREAK_LIMIT,
};
pub use hotplug::Workers;
pub use metrics::MetricsSnapshot;
pub use queue::FullPolicy;
pub use request::{Completion, Reply, StorePiece, StoreReceipt, Ticket};
pub use shutdown::ShutdownReport;
pub use vocab::{Backend, Op};
