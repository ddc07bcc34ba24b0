//! Raw DEFLATE through libdeflate, in the form IAA reads and writes.
//!
//! Output is raw RFC 1951 data (no zlib or gzip wrapper). For a 4 KiB page libdeflate emits a
//! single block with BFINAL set: its block splitter never cuts a block shorter than several
//! kilobytes of input, so a page is always one block, which the tests check by parsing the
//! header. The history a page's data can reference is the page itself (at most 4 KiB), which
//! is within IAA's 4 KiB history window, so IAA decompresses this output and this decoder
//! reads IAA's.

use libdeflater::{CompressionError, CompressionLvl, Compressor, DecompressionError, Decompressor};

use crate::codec::check_page;
use crate::{crc32, CodecError, CodecId, Compressed, Decompressed, PageCodec, PAGE_SIZE};

/// Lowest libdeflate level accepted (level 0 only ever emits stored blocks).
pub const MIN_LEVEL: i32 = 1;
/// Highest libdeflate level.
pub const MAX_LEVEL: i32 = 12;
/// Default level: libdeflate's fastest, the reference the design figures use.
pub const DEFAULT_LEVEL: i32 = 1;

/// A raw DEFLATE context: a libdeflate compressor at one level and a decompressor.
pub struct Deflate {
    level: i32,
    compressor: Compressor,
    decompressor: Decompressor,
}

impl Deflate {
    /// A context compressing at `level` (1..=12).
    pub fn new(level: i32) -> Result<Self, CodecError> {
        let lvl = CompressionLvl::new(level)
            .ok()
            .filter(|_| level >= MIN_LEVEL)
            .ok_or(CodecError::InvalidLevel {
                codec: CodecId::RawDeflate,
                level,
                min: MIN_LEVEL,
                max: MAX_LEVEL,
            })?;
        Ok(Deflate {
            level,
            compressor: Compressor::new(lvl),
            decompressor: Decompressor::new(),
        })
    }

    /// The compression level.
    pub fn level(&self) -> i32 {
        self.level
    }
}

impl std::fmt::Debug for Deflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflate")
            .field("level", &self.level)
            .finish()
    }
}

impl PageCodec for Deflate {
    fn id(&self) -> CodecId {
        CodecId::RawDeflate
    }

    fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError> {
        check_page(page.len())?;
        let crc = crc32(page);
        // libdeflate's only compression failure is "does not fit": the page is incompressible.
        let len = self
            .compressor
            .deflate_compress(page, dst)
            .map_err(|CompressionError::InsufficientSpace| ())
            .ok();
        Ok(Compressed { len, crc32: crc })
    }

    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        check_page(page.len())?;
        if src.is_empty() {
            return Err(CodecError::Empty {
                codec: CodecId::RawDeflate,
            });
        }
        match self.decompressor.deflate_decompress(src, page) {
            Ok(PAGE_SIZE) => Ok(Decompressed { crc32: crc32(page) }),
            Ok(got) => Err(CodecError::WrongLength {
                codec: CodecId::RawDeflate,
                got,
            }),
            Err(DecompressionError::InsufficientSpace) => Err(CodecError::Oversized {
                codec: CodecId::RawDeflate,
            }),
            Err(DecompressionError::BadData) => Err(CodecError::Corrupt {
                codec: CodecId::RawDeflate,
                reason: "libdeflate: bad data (invalid or truncated stream)".into(),
            }),
        }
    }
}

/// DEFLATE block types (RFC 1951 §3.2.3, the BTYPE field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockType {
    /// 00: no compression.
    Stored,
    /// 01: fixed Huffman codes.
    FixedHuffman,
    /// 10: dynamic Huffman codes.
    DynamicHuffman,
    /// 11: reserved (an error).
    Reserved,
}

/// The 3-bit header of a DEFLATE block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateBlockHeader {
    /// BFINAL: this is the last block of the stream.
    pub is_final: bool,
    /// BTYPE.
    pub block_type: BlockType,
}

/// Parses the header of the first block of a raw DEFLATE stream (bits are packed starting at
/// the least significant bit of the first byte). When it has BFINAL set, the stream is exactly
/// one block — the form IAA's stop-on-EOB decompression expects for a page.
pub fn first_block_header(stream: &[u8]) -> Option<DeflateBlockHeader> {
    let b = *stream.first()?;
    let block_type = match (b >> 1) & 0b11 {
        0 => BlockType::Stored,
        1 => BlockType::FixedHuffman,
        2 => BlockType::DynamicHuffman,
        _ => BlockType::Reserved,
    };
    Some(DeflateBlockHeader {
        is_final: b & 1 == 1,
        block_type,
    })
}
