//! Which way a page batch goes ([`PageDirection`]: [`Compress`], [`Decompress`]) and the
//! batch whose shape was checked once ([`PageBatch`]): what lets [`super::IaaCodec`] and the
//! device-fallback codec write each of their batch paths once for both directions.

use software_fallback::codec::check_batch_shape;
use software_fallback::{CodecError, CodecId, Compressed, Decompressed, PageCodec, PAGE_SIZE};

use crate::error::Op;
use crate::job::{CompressPage, DecompressPage, Job};

/// A batch whose shape was checked once: as many outputs as inputs, at most
/// [`crate::MAX_BATCH`]. The device path of a call ([`crate::IaaCodec::run_batch`], and callers
/// that route pages between the device and software) takes this instead of checking again.
#[derive(Debug)]
pub struct PageBatch<'i, 'o, 'b> {
    inputs: &'i [&'i [u8]],
    outputs: &'o mut [&'b mut [u8]],
}

impl<'i, 'o, 'b> PageBatch<'i, 'o, 'b> {
    /// Pairs `inputs` with `outputs`: [`CodecError::BatchTooLarge`] or
    /// [`CodecError::BatchMismatch`] when they do not pair.
    pub fn new(
        inputs: &'i [&'i [u8]],
        outputs: &'o mut [&'b mut [u8]],
    ) -> Result<Self, CodecError> {
        check_batch_shape(inputs.len(), outputs.len())?;
        Ok(PageBatch { inputs, outputs })
    }

    /// Pages in the batch.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Whether the batch has no pages.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Each page's input and output buffer, in order.
    pub fn pairs(&mut self) -> Vec<(&[u8], &mut [u8])> {
        self.inputs
            .iter()
            .zip(self.outputs.iter_mut())
            .map(|(i, o)| (&**i, &mut **o))
            .collect()
    }
}

/// Which way a batch goes through [`crate::IaaCodec`] (and the device-fallback codec): the job
/// that does a page on the device, what the page-codec interface refuses before any job,
/// and the same page in software. Implemented by [`Compress`] and [`Decompress`].
pub trait PageDirection {
    /// The operation, as metrics and errors name it.
    const OP: Op;
    /// What a page yields.
    type Output;
    /// The job doing one page on the device.
    type Job<'a>: Job<Output = Self::Output>;
    /// The page's job, or the page-codec interface's error for buffers it refuses (no
    /// descriptor is submitted for them). `verify` is the context's setting.
    fn job<'a>(
        input: &'a [u8],
        output: &'a mut [u8],
        verify: bool,
    ) -> Result<Self::Job<'a>, CodecError>;
    /// The page through any page codec (software, when the device does not do it).
    fn on<C: PageCodec + ?Sized>(
        codec: &mut C,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<Self::Output, CodecError>;
}

/// Compression: pages in, compressed bytes out ([`CompressPage`]).
#[derive(Debug)]
pub enum Compress {}

/// Decompression: compressed bytes in, pages out ([`DecompressPage`]).
#[derive(Debug)]
pub enum Decompress {}

impl PageDirection for Compress {
    const OP: Op = Op::Compress;
    type Output = Compressed;
    type Job<'a> = CompressPage<'a>;
    fn job<'a>(
        page: &'a [u8],
        dst: &'a mut [u8],
        verify: bool,
    ) -> Result<CompressPage<'a>, CodecError> {
        CompressPage::new(page, dst, verify).map_err(|e| e.to_codec_error())
    }
    fn on<C: PageCodec + ?Sized>(
        codec: &mut C,
        page: &[u8],
        dst: &mut [u8],
    ) -> Result<Compressed, CodecError> {
        codec.compress(page, dst)
    }
}

impl PageDirection for Decompress {
    const OP: Op = Op::Decompress;
    type Output = Decompressed;
    type Job<'a> = DecompressPage<'a>;
    fn job<'a>(
        src: &'a [u8],
        page: &'a mut [u8],
        _verify: bool,
    ) -> Result<DecompressPage<'a>, CodecError> {
        if page.len() == PAGE_SIZE && src.is_empty() {
            return Err(CodecError::Empty {
                codec: CodecId::RawDeflate,
            });
        }
        DecompressPage::new(src, page).map_err(|e| e.to_codec_error())
    }
    fn on<C: PageCodec + ?Sized>(
        codec: &mut C,
        src: &[u8],
        page: &mut [u8],
    ) -> Result<Decompressed, CodecError> {
        codec.decompress(src, page)
    }
}
