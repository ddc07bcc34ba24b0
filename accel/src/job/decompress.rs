//! [`DecompressPage`]: raw DEFLATE back to exactly one page, as the kernel's decompress
//! descriptor asks for it.

use software_fallback::{Decompressed, PAGE_SIZE};

use super::{succeeded, Input, Job, SlotAddrs, SlotDone, Step};
use crate::error::Op;
use crate::raw::completion::Completion;
use crate::raw::descriptor::{DecompressJob, Descriptor};
use crate::AccelError;

/// Decompresses `src` into `page` (exactly one page); the result carries the page's CRC-32
/// from the completion record.
#[derive(Debug)]
pub struct DecompressPage<'a> {
    src: &'a [u8],
    page: &'a mut [u8],
}

impl<'a> DecompressPage<'a> {
    /// A job decompressing `src` into `page`, which must be exactly one page. (A `src`
    /// larger than a slot takes is refused by the runner, [`AccelError::InputTooLarge`].)
    pub fn new(src: &'a [u8], page: &'a mut [u8]) -> Result<Self, AccelError> {
        if page.len() != PAGE_SIZE {
            return Err(AccelError::WrongPageSize { len: page.len() });
        }
        Ok(DecompressPage { src, page })
    }
}

impl Job for DecompressPage<'_> {
    type Output = Decompressed;

    fn op(&self) -> Op {
        Op::Decompress
    }

    fn input(&self) -> Input<'_, Decompressed> {
        Input::Submit(self.src)
    }

    fn descriptor(&mut self, a: &SlotAddrs) -> Descriptor {
        Descriptor::decompress(&DecompressJob {
            src: a.src,
            src_len: self.src.len() as u32,
            dst: a.dst,
            max_dst: PAGE_SIZE as u32,
            completion: a.record,
        })
    }

    fn finish(
        &mut self,
        record: Result<Completion, AccelError>,
        slot: &mut SlotDone<'_>,
    ) -> Step<Decompressed> {
        Step::Done(match succeeded(Op::Decompress, record) {
            Ok(c) if c.output_size as usize == PAGE_SIZE => slot
                .read_dst(self.page)
                .map(|()| Decompressed { crc32: c.crc }),
            Ok(c) => Err(AccelError::WrongOutputSize { got: c.output_size }),
            Err(e) => Err(e),
        })
    }
}
