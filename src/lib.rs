//! swapaccel: hardware-accelerated (Intel IAA) page compression for userspace swap daemons.
//!
//! This is the facade a swap daemon depends on. It re-exports the layers:
//! [`codec`] (the page-codec interface and software backends), [`accel`] (IAA),
//! [`pool`], [`batching`] and [`swapd`] (the userfaultfd swap daemon).

pub use accel;
pub use batching;
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
