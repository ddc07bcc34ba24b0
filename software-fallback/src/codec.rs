//! The one page-codec interface.
//!
//! A codec instance is a long-lived, single-threaded context (the pool keeps one per CPU):
//! it owns whatever state its library or device needs and is reused for every page. Pages are
//! exactly [`PAGE_SIZE`] bytes. Compression writes into a caller-provided buffer whose length
//! is the size limit: a page whose compressed form does not fit comes back incompressible
//! ([`Compressed::len`] `None`, [`Compressed::is_incompressible`]), which is an outcome, not
//! an error. Decompression fills exactly one page or fails with a
//! typed error; it never leaves a short page behind as if it were whole.

use crate::CodecError;

/// Size of one page, the unit every codec works on.
pub const PAGE_SIZE: usize = 4096;

/// Largest batch a codec accepts in one call: IAA's batch of 8 descriptors.
pub const MAX_BATCH: usize = 8;

/// Default size limit for compressed output: one byte less than the page. A page that does
/// not compress below this is stored as it is.
pub const DEFAULT_COMPRESS_LIMIT: usize = PAGE_SIZE - 1;

/// The largest [`PageCodec::compress_room`] of the software codecs (lz4_flex's worst-case
/// bound for a page, 4525 bytes; zstd's is 4174): a caller's destination buffers of at least
/// this many bytes let every software codec compress straight into them.
pub const MAX_COMPRESS_ROOM: usize = {
    let (lz4, zstd) = (crate::lz4::COMPRESS_ROOM, crate::zstd_codec::COMPRESS_ROOM);
    if lz4 > zstd {
        lz4
    } else {
        zstd
    }
};

/// Stable identifier of a compressed *format*, stored with every compressed page.
///
/// The numeric values are part of the on-disk and in-memory format and never change.
/// The id names the format, not the engine: [`CodecId::RawDeflate`] data may come from IAA or
/// from libdeflate and is read back by either.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum CodecId {
    /// Raw DEFLATE (RFC 1951), no zlib or gzip wrapper, one final block per page.
    RawDeflate = 1,
    /// A zstd frame.
    Zstd = 2,
    /// An lz4 block (no frame).
    Lz4 = 3,
}

impl CodecId {
    /// Every format, in id order.
    pub const ALL: [CodecId; 3] = [CodecId::RawDeflate, CodecId::Zstd, CodecId::Lz4];

    /// The id's byte, as stored with an entry.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Short lower-case name, as used on the command line (`deflate`, `zstd`, `lz4`).
    pub fn name(self) -> &'static str {
        match self {
            CodecId::RawDeflate => "deflate",
            CodecId::Zstd => "zstd",
            CodecId::Lz4 => "lz4",
        }
    }
}

impl TryFrom<u8> for CodecId {
    type Error = CodecError;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            1 => Ok(CodecId::RawDeflate),
            2 => Ok(CodecId::Zstd),
            3 => Ok(CodecId::Lz4),
            other => Err(CodecError::UnknownCodecId(other)),
        }
    }
}

impl std::fmt::Display for CodecId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Outcome of compressing one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compressed {
    /// Bytes written to the destination, or `None` when the page did not fit under the limit
    /// (incompressible: store it raw). When `None`, the destination's contents are unspecified.
    pub len: Option<usize>,
    /// CRC-32 of the uncompressed page (see [`crate::crc32`]).
    pub crc32: u32,
}

impl Compressed {
    /// True when the page did not compress under the limit.
    pub fn is_incompressible(&self) -> bool {
        self.len.is_none()
    }
}

/// Outcome of decompressing one page: the page is whole and this is its CRC-32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decompressed {
    /// CRC-32 of the decompressed page, for the caller to compare with the stored one.
    pub crc32: u32,
}

/// Per-page results of a batch call, in the order of the batch's pages.
///
/// Besides the results, a batch says how many of its pages a device did
/// ([`BatchResults::on_device`]): a device codec sets it for each call, a software codec
/// leaves it 0. A caller attributes the call from it (e.g. the pool's `*_attributed` calls)
/// without any state outside the return value.
#[derive(Debug)]
pub struct BatchResults<T> {
    slots: [Option<Result<T, CodecError>>; MAX_BATCH],
    len: usize,
    on_device: usize,
}

impl<T> BatchResults<T> {
    /// An empty result set.
    pub fn new() -> Self {
        BatchResults {
            slots: std::array::from_fn(|_| None),
            len: 0,
            on_device: 0,
        }
    }

    /// Records that `pages` of this batch's pages were done on a device (the rest, if any,
    /// in software). Set by a device codec after its call; never by a software codec.
    pub fn set_on_device(&mut self, pages: usize) {
        self.on_device = pages;
    }

    /// Pages of this batch done on a device: what the codec set, at most [`Self::len`];
    /// 0 for a software codec.
    pub fn on_device(&self) -> usize {
        self.on_device.min(self.len)
    }

    /// Appends the next page's result.
    ///
    /// # Panics
    /// Panics if more than [`MAX_BATCH`] results are pushed; codecs validate the batch size
    /// before they push.
    pub fn push(&mut self, result: Result<T, CodecError>) {
        assert!(
            self.len < MAX_BATCH,
            "BatchResults holds at most MAX_BATCH results"
        );
        self.slots[self.len] = Some(result);
        self.len += 1;
    }

    /// Number of results.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no results.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The result of page `i` of the batch.
    pub fn get(&self, i: usize) -> Option<&Result<T, CodecError>> {
        self.slots[..self.len].get(i).and_then(Option::as_ref)
    }

    /// Iterates over the results in page order.
    pub fn iter(&self) -> impl Iterator<Item = &Result<T, CodecError>> {
        self.slots[..self.len].iter().filter_map(Option::as_ref)
    }
}

impl<T> Default for BatchResults<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> IntoIterator for BatchResults<T> {
    type Item = Result<T, CodecError>;
    type IntoIter =
        std::iter::Flatten<std::array::IntoIter<Option<Result<T, CodecError>>, MAX_BATCH>>;

    fn into_iter(self) -> Self::IntoIter {
        self.slots.into_iter().flatten()
    }
}

/// Checks the shape of a batch: at most [`MAX_BATCH`] pages and one buffer per page.
pub fn check_batch_shape(pages: usize, buffers: usize) -> Result<(), CodecError> {
    if pages > MAX_BATCH {
        return Err(CodecError::BatchTooLarge { pages });
    }
    if pages != buffers {
        return Err(CodecError::BatchMismatch { pages, buffers });
    }
    Ok(())
}

/// A page compressor/decompressor context: software library state or a device context.
///
/// Implementations are used from one thread at a time (`&mut self`) and may be moved between
/// threads. The batch methods have software defaults that loop over the pages; a device
/// overrides them to submit the whole batch and then poll.
pub trait PageCodec: Send {
    /// The format this codec reads and writes.
    fn id(&self) -> CodecId;

    /// Compresses one page into `dst`; `dst.len()` is the size limit.
    ///
    /// Errors: `page` is not exactly [`PAGE_SIZE`] bytes, or the engine failed. A page that
    /// does not fit under the limit is `Ok` with [`Compressed::len`] `None`.
    fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError>;

    /// The destination length from which this codec compresses straight into the
    /// destination: its library's worst-case output for one page, for a library that
    /// refuses or may fail a shorter destination (lz4_flex, zstd). 0 (the default) when the
    /// codec writes straight into a destination of any length (libdeflate, a device).
    ///
    /// A caller that can afford it (the pool's per-CPU buffers) passes a destination at
    /// least this long and applies its own size limit to the returned length, which may
    /// then exceed [`PAGE_SIZE`]. A shorter destination is still the size limit, as always;
    /// the codec then compresses into a buffer of its own and copies what fits.
    fn compress_room(&self) -> usize {
        0
    }

    /// Decompresses `src` into `page`, which must be exactly [`PAGE_SIZE`] bytes and is
    /// filled completely on success. Corrupt, truncated or oversized input is an error.
    /// On error the contents of `page` are unspecified.
    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError>;

    /// Compresses up to [`MAX_BATCH`] pages, each into its own destination; one result per
    /// page, so one page's failure does not fail the others. The outer error is for a batch
    /// of the wrong shape (too many pages, or not one destination per page).
    fn compress_batch(
        &mut self,
        pages: &[&[u8]],
        dsts: &mut [&mut [u8]],
    ) -> Result<BatchResults<Compressed>, CodecError> {
        check_batch_shape(pages.len(), dsts.len())?;
        let mut results = BatchResults::new();
        for (page, dst) in pages.iter().zip(dsts.iter_mut()) {
            results.push(self.compress(page, dst));
        }
        Ok(results)
    }

    /// Decompresses up to [`MAX_BATCH`] pages, each into its own page buffer; one result per
    /// page. The outer error is for a batch of the wrong shape.
    fn decompress_batch(
        &mut self,
        srcs: &[&[u8]],
        pages: &mut [&mut [u8]],
    ) -> Result<BatchResults<Decompressed>, CodecError> {
        check_batch_shape(srcs.len(), pages.len())?;
        let mut results = BatchResults::new();
        for (src, page) in srcs.iter().zip(pages.iter_mut()) {
            results.push(self.decompress(src, page));
        }
        Ok(results)
    }
}

/// Checks that a buffer is exactly one page.
pub(crate) fn check_page(len: usize) -> Result<(), CodecError> {
    if len != PAGE_SIZE {
        return Err(CodecError::WrongPageSize { len });
    }
    Ok(())
}

impl<C: PageCodec + ?Sized> PageCodec for Box<C> {
    fn id(&self) -> CodecId {
        (**self).id()
    }
    fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError> {
        (**self).compress(page, dst)
    }
    fn compress_room(&self) -> usize {
        (**self).compress_room()
    }
    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        (**self).decompress(src, page)
    }
    fn compress_batch(
        &mut self,
        pages: &[&[u8]],
        dsts: &mut [&mut [u8]],
    ) -> Result<BatchResults<Compressed>, CodecError> {
        (**self).compress_batch(pages, dsts)
    }
    fn decompress_batch(
        &mut self,
        srcs: &[&[u8]],
        pages: &mut [&mut [u8]],
    ) -> Result<BatchResults<Decompressed>, CodecError> {
        (**self).decompress_batch(srcs, pages)
    }
}
