//! zstd, one frame per page, at a configurable level (negative "fast" levels included).

use zstd::bulk::Compressor;
use zstd::zstd_safe::{self, zstd_sys::ZSTD_ErrorCode, DCtx};

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
    decompressor: DCtx<'static>,
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
        let decompressor = DCtx::try_create()
            .ok_or_else(|| invalid(Some("cannot allocate a zstd decompression context".into())))?;
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

/// True for zstd's "destination buffer is too small" (a frame that decodes to more than a
/// page). zstd returns an error as `(size_t)-ZSTD_ErrorCode` (`ERROR()` in zstd 1.5.7
/// `lib/common/error_private.h`), so the code is read, not the message.
fn is_dst_too_small(code: zstd_safe::ErrorCode) -> bool {
    code.wrapping_neg() == ZSTD_ErrorCode::ZSTD_error_dstSize_tooSmall as usize
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
        match self.decompressor.decompress(page, src) {
            Ok(PAGE_SIZE) => Ok(Decompressed { crc32: crc32(page) }),
            Ok(got) => Err(CodecError::WrongLength {
                codec: CodecId::Zstd,
                got,
            }),
            Err(code) if is_dst_too_small(code) => Err(CodecError::Oversized {
                codec: CodecId::Zstd,
            }),
            Err(code) => Err(CodecError::Corrupt {
                codec: CodecId::Zstd,
                reason: zstd_safe::get_error_name(code).to_string(),
            }),
        }
    }
}
