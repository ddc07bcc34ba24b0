//! The page-codec interface shared by every layer of swapaccel, its three software backends,
//! and the page corpora used by tests and benchmarks.
//!
//! * [`PageCodec`] compresses and decompresses 4 KiB pages, one at a time or in batches of up
//!   to [`MAX_BATCH`] with one result per page. A hardware engine (IAA, in the `accel` crate)
//!   implements the same trait by submitting the whole batch and then polling.
//! * Every result carries the CRC-32 of the uncompressed page ([`crc32`]), the function IAA
//!   reports in its completion record, so a page's checksum does not depend on the engine.
//! * [`CodecId`] names a *format* (raw DEFLATE, zstd, lz4), never an engine: a page compressed
//!   on IAA is read back by [`Deflate`] and the reverse.
//! * [`corpus`] provides the built-in synthetic page set and a reader for `*.pages.zst` files.

mod bounded;
mod causes;
pub mod codec;
pub mod corpus;
mod crc;
mod deflate;
mod error;
mod lz4;
mod software;
mod zstd_codec;

pub use causes::Causes;
pub use codec::{
    BatchResults, CodecId, Compressed, Decompressed, PageCodec, DEFAULT_COMPRESS_LIMIT, MAX_BATCH,
    MAX_COMPRESS_ROOM, PAGE_SIZE,
};
pub use crc::crc32;
pub use deflate::{first_block_header, BlockType, Deflate, DeflateBlockHeader};
pub use error::{CodecError, EngineFailure};
pub use lz4::Lz4;
pub use software::{CodecSpec, SoftwareCodec};
pub use zstd_codec::Zstd;
