//! [`CompressPage`]: one page to raw DEFLATE with the fixed Huffman code (the kernel's fixed
//! mode), then — when verification is on — the verify pass on the same slot, as the kernel
//! driver does (`iaa_compress_verify`).

use software_fallback::{Compressed, PAGE_SIZE};

use super::{succeeded, Input, Job, SlotAddrs, SlotDone, Step};
use crate::error::Op;
use crate::raw::completion::Completion;
use crate::raw::descriptor::{CompressJob, DecompressJob, Descriptor};
use crate::status::{Status, ERROR_COMP_BUF_OVERFLOW};
use crate::AccelError;

/// Compresses one page into `out` (its length, at most a page, is the output limit). A page
/// that does not fit is `len: None` (incompressible), not an error.
#[derive(Debug)]
pub struct CompressPage<'a> {
    page: &'a [u8],
    out: &'a mut [u8],
    verify: bool,
    pass: Pass,
}

#[derive(Clone, Copy, Debug)]
enum Pass {
    Compress,
    /// The compress gave `len` bytes of CRC `crc`; the verify pass decodes them.
    Verify {
        len: usize,
        crc: u32,
    },
}

impl<'a> CompressPage<'a> {
    /// A job compressing `page` (exactly one page) into `out`, verified when `verify`.
    pub fn new(page: &'a [u8], out: &'a mut [u8], verify: bool) -> Result<Self, AccelError> {
        if page.len() != PAGE_SIZE {
            return Err(AccelError::WrongPageSize { len: page.len() });
        }
        Ok(CompressPage {
            page,
            out,
            verify,
            pass: Pass::Compress,
        })
    }

    fn limit(&self) -> usize {
        self.out.len().min(PAGE_SIZE)
    }

    fn incompressible(&self) -> Compressed {
        Compressed {
            len: None,
            crc32: software_fallback::crc32(self.page),
        }
    }

    fn compressed(&mut self, c: Completion, slot: &mut SlotDone<'_>) -> Step<Compressed> {
        let (len, crc32) = (c.output_size as usize, c.crc);
        if len > self.limit() {
            // The device wrote past the limit it was given: a broken descriptor or device.
            return Step::Done(Err(AccelError::InvalidDescriptor {
                op: Op::Compress,
                status: Status::Success,
                invalid_flags: 0,
            }));
        }
        if self.verify {
            self.pass = Pass::Verify { len, crc: crc32 };
            let a = slot.addrs();
            // Decode the output in place (output suppressed), the source buffer as scratch.
            return Step::Then(Descriptor::verify(&DecompressJob {
                src: a.dst,
                src_len: len as u32,
                dst: a.src,
                max_dst: PAGE_SIZE as u32,
                completion: a.record,
            }));
        }
        Step::Done(self.copy_out(slot, len, crc32))
    }

    fn copy_out(
        &mut self,
        slot: &SlotDone<'_>,
        len: usize,
        crc32: u32,
    ) -> Result<Compressed, AccelError> {
        slot.read_dst(&mut self.out[..len])?;
        Ok(Compressed {
            len: Some(len),
            crc32,
        })
    }
}

impl Job for CompressPage<'_> {
    type Output = Compressed;

    fn op(&self) -> Op {
        match self.pass {
            Pass::Compress => Op::Compress,
            Pass::Verify { .. } => Op::Verify,
        }
    }

    fn input(&self) -> Input<'_, Compressed> {
        if self.limit() == 0 {
            return Input::Ready(Ok(self.incompressible()));
        }
        Input::Submit(self.page)
    }

    fn descriptor(&mut self, a: &SlotAddrs) -> Descriptor {
        Descriptor::compress(&CompressJob {
            src: a.src,
            src_len: PAGE_SIZE as u32,
            dst: a.dst,
            max_dst: self.limit() as u32,
            aecs: a.aecs,
            completion: a.record,
        })
    }

    fn finish(
        &mut self,
        record: Result<Completion, AccelError>,
        slot: &mut SlotDone<'_>,
    ) -> Step<Compressed> {
        match self.pass {
            Pass::Compress => match succeeded(Op::Compress, record) {
                Ok(c) => self.compressed(c, slot),
                Err(AccelError::Analytics {
                    op: Op::Compress,
                    code: ERROR_COMP_BUF_OVERFLOW,
                })
                | Err(AccelError::OutputOverflow { op: Op::Compress }) => {
                    slot.stats().incompressible += 1;
                    Step::Done(Ok(self.incompressible()))
                }
                Err(e) => Step::Done(Err(e)),
            },
            Pass::Verify { len, crc } => Step::Done(match succeeded(Op::Verify, record) {
                Ok(c) if c.crc == crc => self.copy_out(slot, len, crc),
                Ok(c) => {
                    slot.stats().verify_mismatches += 1;
                    Err(AccelError::VerifyMismatch {
                        compress_crc: crc,
                        verify_crc: c.crc,
                    })
                }
                Err(e) => Err(e),
            }),
        }
    }
}
