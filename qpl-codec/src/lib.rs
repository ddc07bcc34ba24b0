//! A [`PageCodec`](software_fallback::PageCodec) on Intel QPL, the library most applications
//! use to reach IAA: software (ISA-L based), hardware (IAA through QPL's own driver layer) and
//! auto (hardware, falling back to software) paths; fixed or dynamic Huffman.
//!
//! Output is raw DEFLATE ([`CodecId::RawDeflate`](software_fallback::CodecId)), one
//! self-contained stream per page with no wrapper, so pages written by QPL are read by
//! libdeflate ([`software_fallback::Deflate`]), by our IAA path and by the device emulator,
//! and the reverse (the `interchange` test checks this on the real corpora).
//!
//! Each [`QplCodec`] owns one QPL job, allocated and initialised once and reused for every
//! page. QPL's status codes become typed errors ([`Status`] names them). The hardware path
//! reports itself unavailable with QPL's reason: without IAA, `qpl_init_job` on the hardware
//! path returns 501, `QPL_STS_INIT_LIBACCEL_NOT_FOUND` — QPL loads libaccel-config at run time
//! by itself; this crate never links or loads it.
//!
//! Everything is behind the `qpl` feature, off by default (this crate is empty without it).
//! See `docs/qpl.md` for building with QPL.
//!
#![cfg_attr(feature = "qpl", doc = "```")]
#![cfg_attr(not(feature = "qpl"), doc = "```ignore")]
//! use qpl_codec::{Huffman, Path, QplCodec, QplConfig};
//! use software_fallback::{Deflate, PageCodec, PAGE_SIZE};
//!
//! let page: Vec<u8> = (0..PAGE_SIZE).map(|i| (i / 64) as u8).collect();
//! let mut qpl = QplCodec::new(QplConfig::new(Path::Software, Huffman::Dynamic))?;
//! let mut dst = vec![0u8; PAGE_SIZE - 1];
//! let len = qpl.compress(&page, &mut dst)?.len.expect("compressible");
//! // libdeflate reads QPL's output.
//! let mut back = vec![0u8; PAGE_SIZE];
//! Deflate::new(1)?.decompress(&dst[..len], &mut back)?;
//! assert_eq!(back, page);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "qpl")]
mod codec;
#[cfg(feature = "qpl")]
mod job;
#[cfg(feature = "qpl")]
mod status;

#[cfg(feature = "qpl")]
pub use codec::{Huffman, Path, QplCodec, QplConfig, QplError};
#[cfg(feature = "qpl")]
pub use status::Status;
