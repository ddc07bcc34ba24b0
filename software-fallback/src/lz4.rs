//! lz4 block format (no frame) through lz4_flex.

use lz4_flex::block::{compress_into, decompress_into, get_maximum_output_size, DecompressError};

use crate::bounded::compress_limited;
use crate::codec::check_page;
use crate::{crc32, CodecError, CodecId, Compressed, Decompressed, PageCodec, PAGE_SIZE};

/// An lz4 context: a scratch buffer of lz4_flex's worst-case output size, so that any
/// destination (limit) works. lz4_flex keeps its hash table on the stack.
pub struct Lz4 {
    scratch: Box<[u8]>,
}

impl Lz4 {
    /// A new context.
    pub fn new() -> Self {
        Lz4 {
            scratch: vec![0u8; get_maximum_output_size(PAGE_SIZE)].into_boxed_slice(),
        }
    }
}

impl Default for Lz4 {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Lz4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lz4").finish()
    }
}

impl PageCodec for Lz4 {
    fn id(&self) -> CodecId {
        CodecId::Lz4
    }

    fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError> {
        check_page(page.len())?;
        let crc = crc32(page);
        // The scratch has lz4_flex's worst-case room, so its "output too small" cannot happen.
        let len = compress_limited(dst, &mut self.scratch, |out| compress_into(page, out))
            .map_err(|e| CodecError::Backend {
                codec: CodecId::Lz4,
                reason: e.to_string(),
            })?;
        Ok(Compressed { len, crc32: crc })
    }

    #[inline]
    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        check_page(page.len())?;
        if src.is_empty() {
            return Err(CodecError::Empty {
                codec: CodecId::Lz4,
            });
        }
        match decompress_into(src, page) {
            Ok(PAGE_SIZE) => Ok(Decompressed { crc32: crc32(page) }),
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
