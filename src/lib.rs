//! swapaccel: hardware-accelerated (Intel IAA) page compression for userspace swap daemons.
//!
//! Start with [`Swapaccel::builder`]: the codec, the device ([`Device::Auto`] uses the first
//! usable IAA queue and falls back to software, logged once and shown in [`Stats`]), the pool
//! limit, the engine, and the swap areas, given once. Each area is a [`SwapArea`] handle
//! (`area.store(slot, &folio)`, `area.load(..)`). The examples in `examples/` are the
//! documentation's code, built and run by the test suite.
//!
//! The layers stay reachable: [`codec`] (the page-codec interface and software backends),
//! [`accel`] (IAA), [`device_fallback`] (a device as the pool's codec factory), [`pool`],
//! [`batching`] and [`swapd`] (the userfaultfd swap daemon).

#![deny(missing_docs)]

mod builder;
mod device;
mod error;
mod instance;

pub use builder::Builder;
pub use device::{Device, DeviceStatus};
pub use error::SwapaccelError;
pub use instance::{Stats, Swapaccel};
pub use pool::{Generation, LoadMode, PoolStats, SwapArea};

pub use accel;
pub use batching;
pub use device_fallback;
pub use pool;
/// Intel QPL as a page codec (feature `qpl`; see docs/qpl.md).
#[cfg(feature = "qpl")]
pub use qpl_codec as qpl;
pub use software_fallback as codec;
pub use swapd;

/// The code in `docs/qpl.md`, compiled and run as a doctest (feature `qpl`).
#[cfg(all(doctest, feature = "qpl"))]
#[doc = include_str!("../docs/qpl.md")]
pub struct QplDocs;
