//! zstd, one frame per page, at a configurable level (negative "fast" levels included).

use zstd::bulk::{Compressor, Decompressor};

use crate::bounded::compress_limited;
use crate::codec::check_page;
use crate::{crc32, CodecError, CodecId, Compressed, Decompressed, PageCodec, PAGE_SIZE};

/// Default level: 1, the reference the design figures use.
pub const DEFAULT_LEVEL: i32 = 1;

/// zstd's worst-case output for one page, `ZSTD_compressBound(4096)` = 4174 bytes (the
/// `ZSTD_COMPRESSBOUND` formula, zstd 1.5.7 `lib/zstd.h:249`; a test checks it against the
/// library). Only a destination this long is sure to be enough ("Providing `dstCapacity >=
/// ZSTD_compressBound(srcSize)` guarantees that zstd will have enough space to successfully
/// compress the data", `ZSTD_compress2`, zstd.h:618): with less, zstd may fail a page whose
/// output would have fitted.
pub(crate) const COMPRESS_ROOM: usize =
    PAGE_SIZE + (PAGE_SIZE >> 8) + (((128 << 10) - PAGE_SIZE) >> 11);

/// A zstd context: a compression context at one level and a decompression context, both
/// reused for every page. A destination of at least [`PageCodec::compress_room`] bytes is
/// compressed into directly; for a shorter one the context keeps a scratch buffer of zstd's
/// worst-case output size, so that a page that fits under the limit is never refused for
/// lack of working room (it is compressed there and copied).
pub struct Zstd {
    level: i32,
    scratch: Box<[u8]>,
    compressor: Compressor<'static>,
    decompressor: Decompressor<'static>,
}

impl Zstd {
    /// A context compressing at `level`, anywhere in the library's range (negative levels
    /// trade ratio for speed).
    pub fn new(level: i32) -> Result<Self, CodecError> {
        let range = zstd::compression_level_range();
        let invalid = |reason: Option<String>| match reason {
            Some(reason) => CodecError::Backend {
                codec: CodecId::Zstd,
                reason,
            },
            None => CodecError::InvalidLevel {
                codec: CodecId::Zstd,
                level,
                min: *range.start(),
                max: *range.end(),
            },
        };
        if !range.contains(&level) {
            return Err(invalid(None));
        }
        let compressor = Compressor::new(level).map_err(|e| invalid(Some(e.to_string())))?;
        let decompressor = Decompressor::new().map_err(|e| invalid(Some(e.to_string())))?;
        Ok(Zstd {
            level,
            scratch: vec![0u8; COMPRESS_ROOM].into_boxed_slice(),
            compressor,
            decompressor,
        })
    }

    /// The compression level.
    pub fn level(&self) -> i32 {
        self.level
    }
}

impl std::fmt::Debug for Zstd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zstd").field("level", &self.level).finish()
    }
}

/// zstd's error code for "destination buffer is too small".
fn is_dst_too_small(err: &std::io::Error) -> bool {
    // The bulk API maps every ZSTD error to io::Error with the library's message.
    err.to_string().contains("Destination buffer is too small")
}

impl PageCodec for Zstd {
    fn id(&self) -> CodecId {
        CodecId::Zstd
    }

    fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError> {
        check_page(page.len())?;
        let crc = crc32(page);
        let compressor = &mut self.compressor;
        let len = compress_limited(dst, &mut self.scratch, |out| {
            compressor.compress_to_buffer(page, out)
        })
        .map_err(|e| CodecError::Backend {
            codec: CodecId::Zstd,
            reason: e.to_string(),
        })?;
        Ok(Compressed { len, crc32: crc })
    }

    fn compress_room(&self) -> usize {
        COMPRESS_ROOM
    }

    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        check_page(page.len())?;
        if src.is_empty() {
            return Err(CodecError::Empty {
                codec: CodecId::Zstd,
            });
        }
        match self.decompressor.decompress_to_buffer(src, page) {
            Ok(PAGE_SIZE) => Ok(Decompressed { crc32: crc32(page) }),
            Ok(got) => Err(CodecError::WrongLength {
                codec: CodecId::Zstd,
                got,
            }),
            Err(e) if is_dst_too_small(&e) => Err(CodecError::Oversized {
                codec: CodecId::Zstd,
            }),
            Err(e) => Err(CodecError::Corrupt {
                codec: CodecId::Zstd,
                reason: e.to_string(),
            }),
        }
    }
}
