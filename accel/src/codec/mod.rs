//! [`IaaCodec`]: the IAA engine behind the project's one page-codec interface, one path for
//! both directions (`direction.rs`: which job a direction runs, the checked batch).

use std::sync::Arc;

use software_fallback::{BatchResults, CodecError, CodecId, Compressed, Decompressed, PageCodec};

use crate::context::{ContextConfig, IaaContext};
use crate::wq::WorkQueue;
use crate::AccelError;

mod direction;
pub use direction::{Compress, Decompress, PageBatch, PageDirection};

/// A raw-DEFLATE page codec running on an IAA work queue (hardware or the emulator).
///
/// Batches are submitted whole, then polled (submit-then-poll). Results are copied out of
/// the context's device-owned buffers into the caller's. Per-page errors keep their
/// [`AccelError`] classification through [`IaaCodec::try_batch`] (one path for both
/// directions, [`Compress`] and [`Decompress`]); the [`PageCodec`] methods turn them into
/// [`CodecError`]s (data errors map to `Corrupt`/`WrongLength`/`Oversized`, device errors
/// to `Backend` with the device's message).
pub struct IaaCodec {
    ctx: IaaContext,
}

impl std::fmt::Debug for IaaCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IaaCodec")
            .field("wq", self.ctx.work_queue())
            .finish_non_exhaustive()
    }
}

impl IaaCodec {
    /// A codec with its own context (eight slots) on `wq`.
    pub fn new(wq: Arc<WorkQueue>, cfg: ContextConfig) -> IaaCodec {
        IaaCodec {
            ctx: IaaContext::new(wq, cfg),
        }
    }

    /// True when running on the emulator (figures then measure software only).
    pub fn is_emulator(&self) -> bool {
        self.ctx.work_queue().is_emulator()
    }

    /// The context (stats, quarantine count, settings).
    pub fn context(&self) -> &IaaContext {
        &self.ctx
    }

    /// The context, mutably (e.g. to switch verification).
    pub fn context_mut(&mut self) -> &mut IaaContext {
        &mut self.ctx
    }

    /// Runs a batch in direction `D` ([`Compress`] or [`Decompress`]); each page's result
    /// keeps its device-level error. The batch shape is checked here ([`PageBatch::new`]).
    pub fn try_batch<D: PageDirection>(
        &mut self,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
    ) -> Result<Vec<Result<D::Output, PageError>>, CodecError> {
        Ok(self.run_batch::<D>(&mut PageBatch::new(inputs, outputs)?))
    }

    /// Runs a batch whose shape was checked: a page the caller's buffers make unsuitable
    /// is [`PageError::Codec`] (nothing submitted for it), the others go to the device
    /// together as jobs of `D`.
    pub fn run_batch<D: PageDirection>(
        &mut self,
        batch: &mut PageBatch<'_, '_, '_>,
    ) -> Vec<Result<D::Output, PageError>> {
        let verify = self.ctx.config().verify;
        let mut out: Vec<Option<Result<D::Output, PageError>>> =
            (0..batch.len()).map(|_| None).collect();
        let mut jobs = Vec::with_capacity(batch.len());
        let mut idx = Vec::with_capacity(batch.len());
        for (i, (input, output)) in batch.pairs().into_iter().enumerate() {
            match D::job(input, output, verify) {
                Ok(job) => {
                    jobs.push(job);
                    idx.push(i);
                }
                Err(e) => out[i] = Some(Err(PageError::Codec(e))),
            }
        }
        match self.ctx.run(&mut jobs) {
            Ok(res) => {
                for (&i, r) in idx.iter().zip(res) {
                    out[i] = Some(r.map_err(PageError::Device));
                }
            }
            Err(e) => {
                // Not reached: a checked batch has no more jobs than the context has slots.
                tracing::error!(
                    error = &e as &dyn std::error::Error,
                    "IAA context refused a checked batch"
                );
            }
        }
        out.into_iter()
            .map(|r| {
                r.unwrap_or(Err(PageError::Device(AccelError::Internal {
                    what: "a page of a batch was given no result",
                })))
            })
            .collect()
    }

    /// The one-page calls of the page-codec interface, both directions.
    fn one_page<D: PageDirection>(
        &mut self,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<D::Output, CodecError> {
        self.try_batch::<D>(&[input], &mut [output])?
            .pop()
            .unwrap_or(Err(PageError::Device(AccelError::Internal {
                what: "a one-page batch gave no result",
            })))
            .map_err(|e| e.to_codec_error())
    }

    /// The batch calls of the page-codec interface, both directions: every page that came
    /// back `Ok` was done on the device.
    fn page_codec_batch<D: PageDirection>(
        &mut self,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
    ) -> Result<BatchResults<D::Output>, CodecError> {
        let mut out = BatchResults::new();
        let mut done = 0;
        for r in self.try_batch::<D>(inputs, outputs)? {
            done += usize::from(r.is_ok());
            out.push(r.map_err(|e| e.to_codec_error()));
        }
        out.set_on_device(done);
        Ok(out)
    }
}

/// One page's failure: a caller error (wrong page size, empty input) or a device error.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The caller's buffers were unsuitable; no descriptor was submitted.
    #[error(transparent)]
    Codec(CodecError),
    /// The device (or emulator) reported an error for this page.
    #[error(transparent)]
    Device(AccelError),
}

impl PageError {
    /// See [`AccelError::is_device_gone`].
    pub fn is_device_gone(&self) -> bool {
        matches!(self, PageError::Device(e) if e.is_device_gone())
    }
    /// See [`AccelError::is_busy`].
    pub fn is_busy(&self) -> bool {
        matches!(self, PageError::Device(e) if e.is_busy())
    }
    /// The [`CodecError`] for the page-codec interface.
    pub fn to_codec_error(&self) -> CodecError {
        match self {
            PageError::Codec(c) => c.clone(),
            PageError::Device(e) => e.to_codec_error(),
        }
    }
}

impl PageCodec for IaaCodec {
    fn id(&self) -> CodecId {
        CodecId::RawDeflate
    }

    fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError> {
        self.one_page::<Compress>(page, dst)
    }

    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        self.one_page::<Decompress>(src, page)
    }

    fn compress_batch(
        &mut self,
        pages: &[&[u8]],
        dsts: &mut [&mut [u8]],
    ) -> Result<BatchResults<Compressed>, CodecError> {
        self.page_codec_batch::<Compress>(pages, dsts)
    }

    fn decompress_batch(
        &mut self,
        srcs: &[&[u8]],
        pages: &mut [&mut [u8]],
    ) -> Result<BatchResults<Decompressed>, CodecError> {
        self.page_codec_batch::<Decompress>(srcs, pages)
    }
}

#[cfg(test)]
mod tests {
    use software_fallback::corpus::Corpus;
    use software_fallback::{PageCodec, PAGE_SIZE};

    use super::IaaCodec;
    use crate::context::ContextConfig;
    use crate::emu::{Emulator, EmulatorConfig, Fault, Target};

    /// The batch calls report the pages the device did (`BatchResults::on_device`): every
    /// page that came back `Ok`, none of those the device failed.
    #[test]
    fn batch_calls_report_the_pages_the_device_did() {
        let emu = Emulator::start(EmulatorConfig::default()).expect("emulator");
        let mut codec = IaaCodec::new(emu.work_queue(), ContextConfig::default());
        let corpus = Corpus::builtin();
        let pages: Vec<&[u8]> = (0..8).map(|i| corpus.page(i)).collect();
        let mut bufs = vec![vec![0u8; PAGE_SIZE]; 8];
        let mut dsts: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
        let r = codec.compress_batch(&pages, &mut dsts).expect("batch");
        assert_eq!((r.len(), r.on_device()), (8, 8));

        emu.faults()
            .inject(Target::Compress, Fault::HardwareError, 3);
        let r = codec.compress_batch(&pages, &mut dsts).expect("batch");
        assert_eq!(r.iter().filter(|p| p.is_err()).count(), 3);
        assert_eq!((r.len(), r.on_device()), (8, 5));
    }
}
