//! IAA operations as jobs: the one seam through which an operation reaches the device.
//!
//! A [`Job`] does one page (or one hand-built descriptor): it says what to copy into a
//! slot's source buffer, builds its descriptor from the slot's addresses (safely and cheaply,
//! like io-uring's opcode builders), and turns the completion record plus the slot's
//! destination into its result — or into one more descriptor on the same slot, as compress
//! does for its verify pass. Everything else — taking slots, submitting, polling, deadlines
//! and quarantine, page-fault touch-and-resubmit, the batch-size check — is the context's one
//! runner, [`IaaContext::run`](crate::IaaContext::run), under the slot rules at the top of
//! `context/mod.rs`.
//!
//! Adding an operation is one file here (its job type, with its `mod` line and its row in
//! the table below) plus its case in the emulator (`emu/engine.rs`); `tests/job_seam.rs`
//! writes one outside the crate with nothing else. When errors should name it apart from
//! compress, decompress and verify, it adds a variant to [`Op`] (non-exhaustive, so no
//! other crate breaks); an opcode the descriptor check (`slot.rs`) does not model yet needs
//! its memory effects written there too, since that check is what keeps a job's descriptor
//! inside the slot whoever wrote the job.
//!
//! | job | file | does |
//! | --- | --- | --- |
//! | [`CompressPage`] | `compress.rs` | a page to raw DEFLATE (fixed Huffman), then the verify pass |
//! | [`DecompressPage`] | `decompress.rs` | raw DEFLATE to one page |
//! | `RawJob` (crate-private: [`IaaContext::run_raw`](crate::IaaContext::run_raw)) | `raw.rs` | a hand-built descriptor, its record returned as it is |

use crate::error::Op;
use crate::raw::completion::Completion;
use crate::raw::descriptor::Descriptor;
use crate::slot::Slot;
pub use crate::slot::SlotAddrs;
use crate::stats::ContextStats;
use crate::status::Status;
use crate::AccelError;

mod compress;
mod decompress;
mod raw;

pub use compress::CompressPage;
pub use decompress::DecompressPage;
pub(crate) use raw::RawJob;

/// One IAA operation on one slot.
///
/// Implementing it is safe anywhere: the runner checks every descriptor a job gives against
/// the slot's memory and the AECS before submitting it, and refuses (with
/// [`AccelError::RawDescriptorRefused`], as the job's result) anything that could make the
/// device touch other memory, or write anything but the completion onto the slot's record
/// (whose status byte tells the runner the slot is the host's again).
pub trait Job {
    /// What the job yields.
    type Output;

    /// The operation, as errors name it. Asked for each descriptor the job gives, right
    /// after it gives it (so a job with several passes names the pass).
    fn op(&self) -> Op;

    /// Before a slot is taken: the bytes to copy into the slot's source buffer (at most
    /// [`crate::context::MAX_COMPRESSED_INPUT`]; the runner refuses more), or the job's result
    /// when it needs no device.
    fn input(&self) -> Input<'_, Self::Output>;

    /// The first descriptor, for the idle slot at `slot` (its source holds the input).
    fn descriptor(&mut self, slot: &SlotAddrs) -> Descriptor;

    /// Whether a page fault is touched and the descriptor resubmitted (bounded by
    /// `ContextConfig::page_fault_retries`). When not, the first fault is the result
    /// ([`AccelError::PageFault`]).
    fn retries_page_faults(&self) -> bool {
        true
    }

    /// A buffer of the slot to unback just before the first submission, so that the device
    /// faults on it (only the fact check wants this); the runner backs it again afterwards.
    fn unbacked(&self) -> Option<crate::context::DroppedRegion> {
        None
    }

    /// The descriptor's outcome: its record (any status but a page fault, which the runner
    /// handles), or the runner's error (deadline passed, queue busy, fault unresolved, …).
    /// Returns the job's result, or [`Step::Then`] with the next descriptor for the same
    /// slot.
    fn finish(
        &mut self,
        record: Result<Completion, AccelError>,
        slot: &mut SlotDone<'_>,
    ) -> Step<Self::Output>;
}

/// What a job wants before a slot is taken.
#[derive(Debug)]
pub enum Input<'a, T> {
    /// Copy these bytes into the slot's source buffer and submit.
    Submit(&'a [u8]),
    /// The result, without the device.
    Ready(Result<T, AccelError>),
}

/// What a job does after a completion.
#[derive(Debug)]
pub enum Step<T> {
    /// The job's result.
    Done(Result<T, AccelError>),
    /// Submit this descriptor on the same slot (its memory kept as the last one left it).
    Then(Descriptor),
}

/// The slot a job's descriptor completed on, as [`Job::finish`] sees it.
pub struct SlotDone<'a> {
    pub(crate) slot: &'a Slot,
    pub(crate) addrs: SlotAddrs,
    pub(crate) stats: &'a mut ContextStats,
}

impl SlotDone<'_> {
    /// The slot's addresses, to build a next descriptor.
    pub fn addrs(&self) -> SlotAddrs {
        self.addrs
    }

    /// Copies the first `out.len()` bytes of the slot's destination buffer (at most a page)
    /// into `out`. Refused ([`AccelError::Internal`]) unless the slot is idle — after a
    /// record was seen, never after a deadline passed.
    pub fn read_dst(&self, out: &mut [u8]) -> Result<(), AccelError> {
        if !self.slot.is_idle() || out.len() > software_fallback::PAGE_SIZE {
            return Err(AccelError::Internal {
                what: "a job read a slot the device may still write, or past its buffer",
            });
        }
        self.slot.read_dst(out);
        Ok(())
    }

    /// The context's counters, for this crate's jobs to count what they saw (incompressible
    /// pages, verify mismatches); a job from outside cannot rewrite them.
    pub(crate) fn stats(&mut self) -> &mut ContextStats {
        self.stats
    }
}

/// `record` when it reports success; otherwise the typed error its status means for `op`.
pub fn succeeded(op: Op, record: Result<Completion, AccelError>) -> Result<Completion, AccelError> {
    let c = record?;
    if c.status() == Status::Success {
        Ok(c)
    } else {
        Err(AccelError::from_completion(op, &c))
    }
}
