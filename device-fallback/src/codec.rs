//! [`FallbackCodec`]: a pool context's codec — the device first, software per page — and
//! the factory that builds one per context. The rules are at the top of `fallback.rs`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use accel::{Compress, Decompress, IaaCodec, PageBatch, PageDirection, PageError};
use pool::{CodecFactory, PoolError};
use software_fallback::{
    BatchResults, CodecError, CodecId, CodecSpec, Compressed, Decompressed, PageCodec,
    SoftwareCodec, MAX_BATCH,
};

use super::{inc, DeviceBackend, Direction, FallbackReason, BUSY_STREAK_LIMIT};

pub(super) struct DeviceFactory(pub(super) Arc<DeviceBackend>);

impl CodecFactory for DeviceFactory {
    fn build(&self, spec: CodecSpec) -> pool::Result<Box<dyn PageCodec>> {
        let software = spec.build().map_err(PoolError::Codec)?;
        let device = (spec.id == CodecId::RawDeflate)
            .then(|| IaaCodec::new(Arc::clone(&self.0.wq), self.0.ctx_cfg.clone()));
        Ok(Box::new(FallbackCodec {
            backend: Arc::clone(&self.0),
            device,
            software,
            seen_in_flight: [0; MAX_BATCH + 1],
            gone_in_call: false,
            busy_in_call: 0,
        }))
    }
}

/// A pool context's codec: the device first, software per page when the device does not do
/// the page. Built by [`DeviceBackend::factory`]; used under the pool context's lock. Its
/// calls block: on the device (submit the batch, then poll until the context's deadline)
/// and in software for the pages that fall back.
pub struct FallbackCodec {
    backend: Arc<DeviceBackend>,
    device: Option<IaaCodec>,
    software: SoftwareCodec,
    /// The accel context's in-flight histogram as last copied into the backend's counters.
    seen_in_flight: [u64; MAX_BATCH + 1],
    /// Set when a page of the current call found the device gone.
    gone_in_call: bool,
    /// Pages of the current device call the queue refused.
    busy_in_call: u64,
}

impl std::fmt::Debug for FallbackCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FallbackCodec")
            .field("device", &self.device.is_some())
            .finish_non_exhaustive()
    }
}

enum Route {
    Device { probing: bool },
    Software(Option<FallbackReason>),
}

impl FallbackCodec {
    fn route(&self) -> Route {
        if self.device.is_none() {
            return Route::Software(None);
        }
        let b = &self.backend;
        if !b.is_down() {
            return Route::Device { probing: false };
        }
        if b.claim_probe() {
            inc(&b.counters.probes, 1);
            match b.wq.check_health() {
                Ok(()) => return Route::Device { probing: true },
                Err(why) => tracing::debug!(why, "IAA probe: still unhealthy"),
            }
        }
        Route::Software(Some(FallbackReason::DeviceDown))
    }

    /// Copies new rounds of the accel context's in-flight histogram into the backend.
    fn sync_in_flight(&mut self) {
        let Some(dev) = &self.device else { return };
        let now = dev.context().stats().in_flight.counts;
        for (i, (&n, seen)) in now.iter().zip(self.seen_in_flight.iter_mut()).enumerate() {
            if n > *seen {
                inc(&self.backend.counters.in_flight[i], n - *seen);
                *seen = n;
            }
        }
    }

    fn software_done(&self, dir: Direction, reason: Option<FallbackReason>, n: u64) {
        let b = &self.backend;
        inc(&b.counters.software_pages[dir.ix()], n);
        if let Some(r) = reason {
            b.count_fallback(r, dir, n);
        }
    }

    fn device_done(&self, dir: Direction, n: u64) {
        inc(&self.backend.counters.device_pages[dir.ix()], n);
    }

    /// Handles one page the device did not do: marks the device down if it is gone, counts
    /// the reason, and runs `redo` (software). A caller error (a wrong page size, an empty
    /// source: nothing was submitted) is returned as the page codec interface reports it.
    /// On a compress, so is a data error the device reported: software would refuse the
    /// same page. On a decompress, *every* error the device reported is redone in software
    /// on the same bytes (counted [`FallbackReason::DeviceError`] when the device called it
    /// a data error): the bytes are the pool's own, checksummed when stored, and the
    /// device's verdict alone must not cost an intact page (issue 11, item 1). Only
    /// software's failure then reaches the caller.
    fn fallback_page<T>(
        &mut self,
        dir: Direction,
        err: PageError,
        redo: impl FnOnce(&mut SoftwareCodec) -> Result<T, CodecError>,
    ) -> Result<T, CodecError> {
        let reason = match (FallbackReason::of(&err), &err, dir) {
            (Some(r), _, _) => r,
            (None, PageError::Device(_), Direction::Decompress) => FallbackReason::DeviceError,
            (None, _, _) => return Err(err.to_codec_error()),
        };
        if reason == FallbackReason::QueueBusy {
            self.busy_in_call += 1;
        }
        if reason == FallbackReason::DeviceGone {
            self.gone_in_call = true;
            self.backend.mark_down(software_fallback::Causes(&err));
        } else {
            tracing::debug!(
                error = &err as &dyn std::error::Error,
                reason = reason.name(),
                "page falls back to software"
            );
        }
        self.software_done(dir, Some(reason), 1);
        redo(&mut self.software)
    }

    /// After a device call of `pages` pages: tracks whole-batch refusals (marking the device
    /// down after [`BUSY_STREAK_LIMIT`] in a row, or at once on a probe) and, after a probe
    /// that found the device neither gone nor refusing everything, marks it up.
    fn end_call(&mut self, probing: bool, pages: usize) {
        let b = &self.backend;
        let refused_all = pages > 0 && self.busy_in_call == pages as u64;
        if self.gone_in_call {
            // Already marked down.
        } else if refused_all {
            if probing {
                b.mark_down("probe: the queue refused every page");
            } else if b.busy_streak.fetch_add(1, Ordering::AcqRel) + 1 >= BUSY_STREAK_LIMIT {
                b.busy_streak.store(0, Ordering::Release);
                b.mark_down("the queue refused every page of many batches in a row");
            }
        } else {
            b.busy_streak.store(0, Ordering::Release);
            if probing {
                b.mark_up();
            }
        }
        self.gone_in_call = false;
        self.busy_in_call = 0;
    }
}

impl FallbackCodec {
    /// One batch in direction `D`, the device first and software per page: the one path
    /// of both directions. The shape is checked here, once ([`PageBatch::new`]).
    fn batch<D: PageDirection>(
        &mut self,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
    ) -> Result<BatchResults<D::Output>, CodecError> {
        let mut batch = PageBatch::new(inputs, outputs)?;
        let dir = Direction::of::<D>();
        let probing = match self.route() {
            Route::Software(reason) => {
                self.software_done(dir, reason, batch.len() as u64);
                let mut out = BatchResults::new();
                for (input, output) in batch.pairs() {
                    out.push(D::on(&mut self.software, input, output));
                }
                return Ok(out);
            }
            Route::Device { probing } => probing,
        };
        let per_page = match &mut self.device {
            Some(dev) => dev.run_batch::<D>(&mut batch),
            None => Vec::new(),
        };
        self.sync_in_flight();
        let mut out = BatchResults::new();
        let mut on_device = 0;
        let mut per_page = per_page.into_iter();
        for (input, output) in batch.pairs() {
            let r = match per_page.next() {
                Some(Ok(r)) => {
                    self.device_done(dir, 1);
                    on_device += 1;
                    Ok(r)
                }
                Some(Err(e)) => self.fallback_page(dir, e, |sw| D::on(sw, input, output)),
                None => {
                    // The device returned fewer results than pages: treat as a device error.
                    self.software_done(dir, Some(FallbackReason::DeviceError), 1);
                    D::on(&mut self.software, input, output)
                }
            };
            out.push(r);
        }
        self.end_call(probing, batch.len());
        out.set_on_device(on_device);
        Ok(out)
    }
}

impl PageCodec for FallbackCodec {
    fn id(&self) -> CodecId {
        self.software.id()
    }

    fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError> {
        self.compress_batch(&[page], &mut [dst])?
            .into_iter()
            .next()
            .unwrap_or(Err(CodecError::BatchMismatch {
                pages: 1,
                buffers: 1,
            }))
    }

    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        self.decompress_batch(&[src], &mut [page])?
            .into_iter()
            .next()
            .unwrap_or(Err(CodecError::BatchMismatch {
                pages: 1,
                buffers: 1,
            }))
    }

    fn compress_batch(
        &mut self,
        pages: &[&[u8]],
        dsts: &mut [&mut [u8]],
    ) -> Result<BatchResults<Compressed>, CodecError> {
        self.batch::<Compress>(pages, dsts)
    }

    fn decompress_batch(
        &mut self,
        srcs: &[&[u8]],
        pages: &mut [&mut [u8]],
    ) -> Result<BatchResults<Decompressed>, CodecError> {
        self.batch::<Decompress>(srcs, pages)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use accel::emu::{Emulator, EmulatorConfig, Fault, Target};
    use accel::ContextConfig;
    use software_fallback::{CodecError, CodecSpec, PageCodec, PAGE_SIZE};

    use crate::{DeviceBackend, FallbackReason};

    fn rig() -> (Emulator, std::sync::Arc<DeviceBackend>, Box<dyn PageCodec>) {
        let emu = Emulator::start(EmulatorConfig::default()).expect("emulator");
        let backend = DeviceBackend::new(
            emu.work_queue(),
            ContextConfig::default(),
            Duration::from_secs(3600),
        );
        let codec = backend.factory().build(CodecSpec::DEFLATE).expect("codec");
        (emu, backend, codec)
    }

    /// The shape is checked once, before routing: a batch whose pages and buffers do not
    /// pair is refused whole in both directions, with the device up or down, and counts
    /// no page anywhere.
    #[test]
    fn a_mismatched_batch_is_refused_before_any_page_is_counted() {
        let (_emu, backend, mut codec) = rig();
        let page = vec![7u8; PAGE_SIZE];
        let mut buf = vec![0u8; PAGE_SIZE];
        for down in [false, true] {
            if down {
                backend.mark_down("test");
            }
            let before = backend.snapshot();
            let r = codec.compress_batch(&[&page, &page], &mut [&mut buf]);
            assert!(matches!(r, Err(CodecError::BatchMismatch { .. })), "{r:?}");
            let r = codec.decompress_batch(&[&page], &mut []);
            assert!(matches!(r, Err(CodecError::BatchMismatch { .. })), "{r:?}");
            let after = backend.snapshot();
            assert_eq!(
                (after.device_pages, after.software_pages, after.fallbacks),
                (before.device_pages, before.software_pages, before.fallbacks),
                "down: {down}"
            );
        }
    }

    /// Both directions share one path, and it still tells them apart where they differ: a
    /// device error on a store is redone in software, and so is one on a load; the pages
    /// the device did are attributed to it, per direction.
    #[test]
    fn both_directions_attribute_device_pages_and_redo_device_errors() {
        let (emu, backend, mut codec) = rig();
        let pages: Vec<Vec<u8>> = (0..4u8)
            .map(|i| (0..PAGE_SIZE).map(|j| (j % 7) as u8 ^ i).collect())
            .collect();
        let refs: Vec<&[u8]> = pages.iter().map(|p| p.as_slice()).collect();
        let mut bufs = vec![vec![0u8; PAGE_SIZE]; 4];
        emu.faults()
            .inject(Target::Compress, Fault::HardwareError, 1);
        let mut dsts: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
        let r = codec.compress_batch(&refs, &mut dsts).expect("batch");
        assert_eq!((r.len(), r.on_device()), (4, 3));
        let lens: Vec<usize> = r
            .iter()
            .map(|c| c.as_ref().expect("stored").len.expect("compressible"))
            .collect();
        let srcs: Vec<&[u8]> = bufs.iter().zip(&lens).map(|(b, &n)| &b[..n]).collect();
        let mut back = vec![vec![0u8; PAGE_SIZE]; 4];
        let mut outs: Vec<&mut [u8]> = back.iter_mut().map(|b| b.as_mut_slice()).collect();
        emu.faults()
            .inject(Target::Decompress, Fault::HardwareError, 2);
        let r = codec.decompress_batch(&srcs, &mut outs).expect("batch");
        assert_eq!((r.len(), r.on_device()), (4, 2));
        assert!(r.iter().all(|d| d.is_ok()));
        assert_eq!(back, pages);
        let s = backend.snapshot();
        assert_eq!(s.device_pages, [3, 2]);
        assert_eq!(s.software_pages, [1, 2]);
        let errors = s
            .fallbacks
            .iter()
            .find(|f| f.0 == FallbackReason::DeviceError);
        assert_eq!(errors, Some(&(FallbackReason::DeviceError, 1, 2)));
    }
}
