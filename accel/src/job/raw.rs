//! `RawJob`: one hand-built descriptor (the conformance suite's and the fact check's), its
//! record returned whatever its status. [`crate::IaaContext::run_raw`] runs one.

use software_fallback::PAGE_SIZE;

use super::{Input, Job, SlotAddrs, SlotDone, Step};
use crate::error::Op;
use crate::raw::completion::Completion;
use crate::raw::descriptor::{opcode, Descriptor};
use crate::slot::DroppedRegion;
use crate::AccelError;

/// A descriptor built by `build` from the slot's addresses, after `input` was copied into
/// the slot's source. Its result is the record as the device wrote it (any status) and the
/// slot's destination bytes up to `output_size` (at most a page). Page faults are not
/// retried: the first is the result ([`AccelError::PageFault`]).
pub(crate) struct RawJob<'a, F> {
    input: &'a [u8],
    build: Option<F>,
    op: Op,
    unbacked: Option<DroppedRegion>,
}

impl<F> std::fmt::Debug for RawJob<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawJob")
            .field("input_len", &self.input.len())
            .field("op", &self.op)
            .field("unbacked", &self.unbacked)
            .finish_non_exhaustive()
    }
}

impl<'a, F: FnOnce(&SlotAddrs) -> Descriptor> RawJob<'a, F> {
    /// A job for the descriptor `build` makes; `unbacked` names a slot buffer to drop
    /// before submission, so that the device faults on it.
    pub(crate) fn new(input: &'a [u8], unbacked: Option<DroppedRegion>, build: F) -> Self {
        RawJob {
            input,
            build: Some(build),
            op: Op::Decompress,
            unbacked,
        }
    }
}

impl<F: FnOnce(&SlotAddrs) -> Descriptor> Job for RawJob<'_, F> {
    type Output = (Completion, Vec<u8>);

    fn op(&self) -> Op {
        self.op
    }

    fn input(&self) -> Input<'_, Self::Output> {
        Input::Submit(self.input)
    }

    fn descriptor(&mut self, a: &SlotAddrs) -> Descriptor {
        // Built once; asked again (which the runner does not do), it gives a descriptor
        // with no completion record, which the descriptor check refuses.
        let d = self.build.take().map_or_else(Descriptor::zeroed, |b| b(a));
        self.op = match d.opcode() {
            opcode::COMPRESS => Op::Compress,
            _ => Op::Decompress,
        };
        d
    }

    fn retries_page_faults(&self) -> bool {
        false
    }

    fn unbacked(&self) -> Option<DroppedRegion> {
        self.unbacked
    }

    fn finish(
        &mut self,
        record: Result<Completion, AccelError>,
        slot: &mut SlotDone<'_>,
    ) -> Step<Self::Output> {
        Step::Done(record.and_then(|c| {
            let mut out = vec![0u8; (c.output_size as usize).min(PAGE_SIZE)];
            slot.read_dst(&mut out)?;
            Ok((c, out))
        }))
    }
}
