//! [`IaaCodec`]: the IAA engine behind the project's one page-codec interface.

use std::sync::Arc;

use software_fallback::codec::check_batch_shape;
use software_fallback::{
    BatchResults, CodecError, CodecId, Compressed, Decompressed, PageCodec, PAGE_SIZE,
};

use crate::context::{ContextConfig, IaaContext};
use crate::wq::WorkQueue;
use crate::AccelError;

/// A raw-DEFLATE page codec running on an IAA work queue (hardware or the emulator).
///
/// Batches are submitted whole, then polled (submit-then-poll). Results are copied out of
/// the context's device-owned buffers into the caller's. Per-page errors keep their
/// [`AccelError`] classification through [`IaaCodec::try_compress_batch`] /
/// [`IaaCodec::try_decompress_batch`]; the [`PageCodec`] methods turn them into
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

    /// Compresses a batch; each page's result keeps its device-level error.
    pub fn try_compress_batch(
        &mut self,
        pages: &[&[u8]],
        dsts: &mut [&mut [u8]],
    ) -> Result<Vec<Result<Compressed, PageError>>, CodecError> {
        check_batch_shape(pages.len(), dsts.len())?;
        let mut out: Vec<Option<Result<Compressed, PageError>>> =
            (0..pages.len()).map(|_| None).collect();
        let mut idx = Vec::new();
        for (i, p) in pages.iter().enumerate() {
            if p.len() != PAGE_SIZE {
                out[i] = Some(Err(PageError::Codec(CodecError::WrongPageSize {
                    len: p.len(),
                })));
            } else {
                idx.push(i);
            }
        }
        let sel_pages: Vec<&[u8]> = idx.iter().map(|&i| pages[i]).collect();
        let mut sel_dsts = select_mut(dsts, &idx);
        let res = self
            .ctx
            .compress_batch(&sel_pages, &mut sel_dsts)
            .map_err(|e| e.to_codec_error())?;
        for (k, r) in res.into_iter().enumerate() {
            out[idx[k]] = Some(
                r.map(|c| Compressed {
                    len: c.len,
                    crc32: c.crc32,
                })
                .map_err(PageError::Device),
            );
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Decompresses a batch; each page's result keeps its device-level error.
    pub fn try_decompress_batch(
        &mut self,
        srcs: &[&[u8]],
        pages: &mut [&mut [u8]],
    ) -> Result<Vec<Result<Decompressed, PageError>>, CodecError> {
        check_batch_shape(srcs.len(), pages.len())?;
        let mut out: Vec<Option<Result<Decompressed, PageError>>> =
            (0..srcs.len()).map(|_| None).collect();
        let mut idx = Vec::new();
        for (i, (s, p)) in srcs.iter().zip(pages.iter()).enumerate() {
            if p.len() != PAGE_SIZE {
                out[i] = Some(Err(PageError::Codec(CodecError::WrongPageSize {
                    len: p.len(),
                })));
            } else if s.is_empty() {
                out[i] = Some(Err(PageError::Codec(CodecError::Empty {
                    codec: CodecId::RawDeflate,
                })));
            } else {
                idx.push(i);
            }
        }
        let sel_srcs: Vec<&[u8]> = idx.iter().map(|&i| srcs[i]).collect();
        let mut sel_pages = select_mut(pages, &idx);
        let res = self
            .ctx
            .decompress_batch(&sel_srcs, &mut sel_pages)
            .map_err(|e| e.to_codec_error())?;
        for (k, r) in res.into_iter().enumerate() {
            out[idx[k]] = Some(
                r.map(|crc32| Decompressed { crc32 })
                    .map_err(PageError::Device),
            );
        }
        Ok(out.into_iter().flatten().collect())
    }
}

/// Reborrows the buffers at the ascending indices `idx`.
fn select_mut<'a>(bufs: &'a mut [&mut [u8]], idx: &[usize]) -> Vec<&'a mut [u8]> {
    bufs.iter_mut()
        .enumerate()
        .filter(|(j, _)| idx.binary_search(j).is_ok())
        .map(|(_, b)| &mut **b)
        .collect()
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
        let mut r = self.try_compress_batch(&[page], &mut [dst])?;
        r.pop()
            .unwrap_or(Err(PageError::Device(AccelError::Internal {
                what: "a one-page batch gave no result",
            })))
            .map_err(|e| e.to_codec_error())
    }

    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        let mut r = self.try_decompress_batch(&[src], &mut [page])?;
        r.pop()
            .unwrap_or(Err(PageError::Device(AccelError::Internal {
                what: "a one-page batch gave no result",
            })))
            .map_err(|e| e.to_codec_error())
    }

    fn compress_batch(
        &mut self,
        pages: &[&[u8]],
        dsts: &mut [&mut [u8]],
    ) -> Result<BatchResults<Compressed>, CodecError> {
        let mut out = BatchResults::new();
        let mut done = 0;
        for r in self.try_compress_batch(pages, dsts)? {
            done += usize::from(r.is_ok());
            out.push(r.map_err(|e| e.to_codec_error()));
        }
        out.set_on_device(done);
        Ok(out)
    }

    fn decompress_batch(
        &mut self,
        srcs: &[&[u8]],
        pages: &mut [&mut [u8]],
    ) -> Result<BatchResults<Decompressed>, CodecError> {
        let mut out = BatchResults::new();
        let mut done = 0;
        for r in self.try_decompress_batch(srcs, pages)? {
            done += usize::from(r.is_ok());
            out.push(r.map_err(|e| e.to_codec_error()));
        }
        out.set_on_device(done);
        Ok(out)
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
