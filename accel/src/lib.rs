//! Intel IAA (In-Memory Analytics Accelerator) through the idxd driver's user work queues,
//! and a device emulator for machines without one.
//!
//! Modules follow the hardware objects:
//! [`discovery`] (sysfs: devices and work queues, and why each queue is or is not usable) →
//! [`wq`] (an open queue: portal MOVDIR64B/ENQCMD or `write(2)`, in-flight budget) →
//! [`raw::descriptor`] (the 64-byte work descriptor, built safely and cheaply) →
//! [`raw::completion`] (64-byte records, typed [`Status`] and [`AccelError`]); [`raw`]
//! holds those and the other device formats (AECS, Huffman tables, CPU features, portal).
//! [`context::IaaContext`] owns everything the device writes (eight slots and the AECS) and
//! runs submit-then-poll batches of [`job`]s — an IAA operation is one [`job::Job`] type,
//! run by the context's one runner; [`IaaCodec`] puts it behind
//! `software_fallback::PageCodec` for raw DEFLATE. [`emu`] is **the device emulator**, a test
//! and benchmark aid that takes the same descriptors through the same submission code.
//!
//! Typical use:
//! ```no_run
//! use accel::{open_first_usable, ContextConfig, IaaCodec};
//! let cfg = accel::discovery::DiscoveryConfig::system();
//! match open_first_usable(&cfg) {
//!     Ok(wq) => { let _codec = IaaCodec::new(wq, ContextConfig::default()); }
//!     Err(why) => eprintln!("no IAA: {why}"),
//! }
//! ```

#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod codec;
pub mod context;
pub mod discovery;
mod dma;
pub mod emu;
pub mod error;
pub mod job;
mod open_path;
pub mod raw;
mod slot;
pub mod stats;
pub mod status;
pub mod wq;
mod write_path;

pub use codec::{Compress, Decompress, IaaCodec, PageBatch, PageDirection, PageError};
pub use context::{ContextConfig, IaaContext};
pub use error::{AccelError, Op};
pub use status::Status;
pub use wq::WorkQueue;

/// Pages per batch (one descriptor each), as the page-codec interface.
pub const MAX_BATCH: usize = software_fallback::MAX_BATCH;

/// Opens the first usable IAA work queue that discovery finds, or says why there is none.
pub fn open_first_usable(
    cfg: &discovery::DiscoveryConfig,
) -> Result<std::sync::Arc<WorkQueue>, AccelError> {
    let report = discovery::discover(cfg);
    let Some(info) = report.usable().next() else {
        return Err(AccelError::DeviceGone {
            reason: report
                .why_none()
                .unwrap_or_else(|| "no usable IAA work queue".into()),
        });
    };
    WorkQueue::open(info, cfg.cpu)
}
