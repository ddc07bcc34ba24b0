//! lz4 block format (no frame) through lz4_flex.

use lz4_flex::block::{
    compress_into_with_table, decompress_into, get_maximum_output_size, CompressTable,
    DecompressError,
};

use crate::bounded::compress_limited;
use crate::codec::check_page;
use crate::{crc32, CodecError, CodecId, Compressed, Decompressed, PageCodec, PAGE_SIZE};

/// The destination lz4_flex compresses a page into: its worst-case bound,
/// `16 + 4 + 4096 * 110 / 100` = 4525 bytes. `compress_into` refuses any shorter output
/// before it starts (lz4_flex 0.14.0, `src/block/compress.rs:340`, `compress_internal`:
/// `if output.capacity() - output.pos() < get_maximum_output_size(input.len() - input_pos)
/// { return Err(OutputTooSmall) }`; the bound is `get_maximum_output_size`, line 605) and has
/// no call that stops at a smaller limit, so a shorter destination needs a buffer of this
/// size and a copy.
pub(crate) const COMPRESS_ROOM: usize = get_maximum_output_size(PAGE_SIZE);

/// An lz4 context. A destination of at least [`PageCodec::compress_room`] bytes (the pool's
/// per-CPU buffers) is compressed into directly; for a shorter one (a limit under lz4_flex's
/// worst case) the context keeps a scratch buffer of that size, compresses into it and
/// copies what fits.
///
/// The context also keeps lz4_flex's hash table (8 KiB for inputs under 64 KiB), which the
/// plain `compress_into` allocates zeroed on the heap and frees on every call (with the
/// `alloc` feature, `HashTable4KU16::new`, lz4_flex 0.14.0 `src/block/hashtable.rs:67-77`,
/// called from `compress_into_sink_with_dict`, `src/block/compress.rs:565`);
/// `compress_into_with_table` (line 796) only clears it (same output: the same
/// `compress_internal` with no dictionary).
pub struct Lz4 {
    scratch: Box<[u8]>,
    table: CompressTable,
}

impl Lz4 {
    /// A new context.
    pub fn new() -> Self {
        Lz4 {
            scratch: vec![0u8; COMPRESS_ROOM].into_boxed_slice(),
            table: CompressTable::default(),
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
        // `dst` or the scratch has lz4_flex's worst-case room, so its "output too small"
        // cannot happen.
        let table = &mut self.table;
        let len = compress_limited(dst, &mut self.scratch, |out| {
            compress_into_with_table(page, out, table)
        })
        .map_err(|e| CodecError::Backend {
            codec: CodecId::Lz4,
            reason: e.to_string(),
        })?;
        Ok(Compressed { len, crc32: crc })
    }

    fn compress_room(&self) -> usize {
        COMPRESS_ROOM
    }

    #[inline]
    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        check_page(page.len())?;
        if src.is_empty() {
            return Err(CodecError::Empty {
                codec: CodecId::Lz4,
            });
        }
        match decode(src, page) {
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

/// lz4_flex's decoder, compiled once here: inlined into each caller (the pool's batch loop, a
/// benchmark's loop) its copy loops came out up to 14 % slower than the bare call in some of
/// them (`cargo bench -p benches --bench codecs`, decompress/lz4); out of line its code is
/// the same for every caller.
#[inline(never)]
fn decode(src: &[u8], page: &mut [u8]) -> Result<usize, DecompressError> {
    decompress_into(src, page)
}
