//! lz4 block format (no frame) through lz4_flex.

use lz4_flex::block::{compress_into, decompress_into, CompressError, DecompressError};

use crate::codec::check_page;
use crate::{crc32, CodecError, CodecId, Compressed, Decompressed, PageCodec, PAGE_SIZE};

/// An lz4 context. lz4_flex keeps its hash table on the stack, so there is no state to reuse.
#[derive(Debug, Default)]
pub struct Lz4;

impl Lz4 {
    /// A new context.
    pub fn new() -> Self {
        Lz4
    }
}

impl PageCodec for Lz4 {
    fn id(&self) -> CodecId {
        CodecId::Lz4
    }

    fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError> {
        check_page(page.len())?;
        let crc = crc32(page);
        let len = match compress_into(page, dst) {
            Ok(n) if n <= dst.len() => Some(n),
            Ok(_) | Err(CompressError::OutputTooSmall { .. }) => None,
            Err(e) => {
                return Err(CodecError::Backend {
                    codec: CodecId::Lz4,
                    reason: e.to_string(),
                })
            }
        };
        Ok(Compressed { len, crc32: crc })
    }

    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        check_page(page.len())?;
        if src.is_empty() {
            return Err(CodecError::Empty {
                codec: CodecId::Lz4,
            });
        }
        match decompress_into(src, page) {
            Ok(PAGE_SIZE) => Ok(Decompressed {
                crc32: crc32(page),
            }),
            Ok(got) => Err(CodecError::WrongLength {
                codec: CodecId::Lz4,
                got,
            }),
            Err(DecompressError::OutputTooSmall { .. }) => Err(CodecError::Oversized {
                codec: CodecId::Lz4,
            }),
            Err(e) => Err(CodecError::Corrupt {
                codec: CodecId::Lz4,
                reason: e.to_string(),
            }),
        }
    }
}
