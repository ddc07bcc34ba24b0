//! The job seam: an operation the crate does not have, written outside it as one small
//! `Job` type, runs through the context's one runner — and gets its submission, page-fault
//! retries, deadlines, quarantine and descriptor check without writing any of them.
//!
//! The operation here is a CRC-only pass over a stored stream: decode with the output
//! suppressed and report the CRC-32 of the page it decodes to (what checking a stored entry
//! without loading it would use). The emulator runs it as it runs the verify pass.

use std::time::Duration;

use accel::emu::{Emulator, EmulatorConfig, Fault, Target};
use accel::job::{succeeded, CompressPage, Input, Job, SlotAddrs, SlotDone, Step};
use accel::raw::descriptor::{DecompressJob, Descriptor};
use accel::{AccelError, ContextConfig, IaaContext, Op};
use software_fallback::corpus::Corpus;
use software_fallback::PAGE_SIZE;

/// The CRC-32 of the page a raw DEFLATE stream decodes to, nothing written anywhere.
struct StreamCrc<'a> {
    stream: &'a [u8],
}

impl Job for StreamCrc<'_> {
    type Output = u32;
    fn op(&self) -> Op {
        Op::Verify
    }
    fn input(&self) -> Input<'_, u32> {
        Input::Submit(self.stream)
    }
    fn descriptor(&mut self, a: &SlotAddrs) -> Descriptor {
        Descriptor::verify(&DecompressJob {
            src: a.src,
            src_len: self.stream.len() as u32,
            dst: a.dst,
            max_dst: PAGE_SIZE as u32,
            completion: a.record,
        })
    }
    fn finish(
        &mut self,
        record: Result<accel::raw::completion::Completion, AccelError>,
        _: &mut SlotDone<'_>,
    ) -> Step<u32> {
        Step::Done(succeeded(Op::Verify, record).map(|c| c.crc))
    }
}

/// Eight pages compressed on the emulator: the streams and each page's CRC.
fn streams(ctx: &mut IaaContext) -> (Vec<Vec<u8>>, Vec<u32>) {
    let corpus = Corpus::builtin();
    let mut streams = Vec::new();
    let mut crcs = Vec::new();
    for i in 0..8 {
        let page = corpus.page(i);
        let mut out = vec![0u8; PAGE_SIZE];
        let c = ctx
            .run_one(CompressPage::new(page, &mut out, true).expect("a page"))
            .expect("compressed");
        let Some(len) = c.len else { continue };
        out.truncate(len);
        streams.push(out);
        crcs.push(software_fallback::crc32(page));
    }
    assert!(streams.len() >= 4, "the corpus should mostly compress");
    (streams, crcs)
}

fn jobs(streams: &[Vec<u8>]) -> Vec<StreamCrc<'_>> {
    streams.iter().map(|s| StreamCrc { stream: s }).collect()
}

#[test]
fn a_job_type_written_outside_the_crate_runs_as_one_batch() {
    let emu = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let mut ctx = IaaContext::new(emu.work_queue(), ContextConfig::default());
    let (streams, crcs) = streams(&mut ctx);
    let rounds = ctx.stats().in_flight.rounds();
    let got: Vec<u32> = ctx
        .run(&mut jobs(&streams))
        .expect("at most eight jobs")
        .into_iter()
        .map(|r| r.expect("crc"))
        .collect();
    assert_eq!(got, crcs);
    // One submission round with every job in flight together.
    assert_eq!(ctx.stats().in_flight.rounds(), rounds + 1);
    assert_eq!(ctx.stats().in_flight.max(), streams.len().max(1));
}

#[test]
fn the_runner_resolves_a_new_jobs_page_faults_for_it() {
    let emu = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let mut ctx = IaaContext::new(emu.work_queue(), ContextConfig::default());
    let (streams, crcs) = streams(&mut ctx);
    emu.faults()
        .inject(Target::Verify, Fault::PageFault { write: false }, 2);
    let got: Vec<u32> = ctx
        .run(&mut jobs(&streams))
        .expect("batch")
        .into_iter()
        .map(|r| r.expect("crc after the fault was touched"))
        .collect();
    assert_eq!(got, crcs);
    assert_eq!(ctx.stats().page_faults_resolved, 2);
}

#[test]
fn the_runner_quarantines_a_new_jobs_slot_past_its_deadline() {
    let emu = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let cfg = ContextConfig {
        timeout: Duration::from_millis(20),
        ..ContextConfig::default()
    };
    let mut ctx = IaaContext::new(emu.work_queue(), cfg);
    let (streams, _) = streams(&mut ctx);
    emu.faults().inject(
        Target::Verify,
        Fault::SlowCompletion(Duration::from_millis(300)),
        1,
    );
    let r = ctx.run(&mut jobs(&streams[..1])).expect("batch");
    assert!(
        matches!(r[0], Err(AccelError::DeviceUnresponsive { .. })),
        "{:?}",
        r[0]
    );
    assert_eq!(ctx.quarantined(), 1, "the slot the device may still write");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(ctx.reclaim(), 1, "released once the late record landed");
}

/// A job whose descriptor names memory outside its slot (here: a buffer of the caller's).
struct Escapes<'a> {
    target: &'a mut [u8],
}

impl Job for Escapes<'_> {
    type Output = ();
    fn op(&self) -> Op {
        Op::Decompress
    }
    fn input(&self) -> Input<'_, ()> {
        Input::Submit(&[0x03, 0x00])
    }
    fn descriptor(&mut self, a: &SlotAddrs) -> Descriptor {
        Descriptor::decompress(&DecompressJob {
            src: a.src,
            src_len: 2,
            dst: self.target.as_mut_ptr() as u64,
            max_dst: self.target.len() as u32,
            completion: a.record,
        })
    }
    fn finish(
        &mut self,
        record: Result<accel::raw::completion::Completion, AccelError>,
        _: &mut SlotDone<'_>,
    ) -> Step<()> {
        Step::Done(record.map(|_| ()))
    }
}

#[test]
fn a_job_cannot_make_the_device_touch_memory_outside_its_slot() {
    let emu = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let mut ctx = IaaContext::new(emu.work_queue(), ContextConfig::default());
    let mut target = vec![0u8; PAGE_SIZE];
    let r = ctx.run_one(Escapes {
        target: &mut target,
    });
    assert!(
        matches!(r, Err(AccelError::RawDescriptorRefused { .. })),
        "{r:?}"
    );
    assert_eq!(ctx.stats().submitted, 0, "nothing reached the device");
}

/// A job whose first descriptor is good and whose second pass (as compress's verify pass
/// is) names a buffer of the caller's.
struct EscapesOnItsSecondPass<'a> {
    target: &'a mut [u8],
    passes: u32,
}

impl Job for EscapesOnItsSecondPass<'_> {
    type Output = ();
    fn op(&self) -> Op {
        Op::Verify
    }
    fn input(&self) -> Input<'_, ()> {
        Input::Submit(&[])
    }
    fn descriptor(&mut self, a: &SlotAddrs) -> Descriptor {
        Descriptor::noop(a.record)
    }
    fn finish(
        &mut self,
        record: Result<accel::raw::completion::Completion, AccelError>,
        slot: &mut SlotDone<'_>,
    ) -> Step<()> {
        self.passes += 1;
        if self.passes > 1 {
            return Step::Done(record.map(|_| ()));
        }
        let a = slot.addrs();
        Step::Then(Descriptor::verify(&DecompressJob {
            src: self.target.as_ptr() as u64,
            src_len: self.target.len() as u32,
            dst: a.dst,
            max_dst: a.dst_cap,
            completion: a.record,
        }))
    }
}

#[test]
fn a_jobs_later_pass_is_checked_like_its_first() {
    let emu = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let mut ctx = IaaContext::new(emu.work_queue(), ContextConfig::default());
    let mut target = vec![0u8; PAGE_SIZE];
    let r = ctx.run_one(EscapesOnItsSecondPass {
        target: &mut target,
        passes: 0,
    });
    assert!(
        matches!(r, Err(AccelError::RawDescriptorRefused { .. })),
        "{r:?}"
    );
    assert_eq!(ctx.stats().submitted, 1, "only the first, good pass ran");
    assert_eq!(ctx.quarantined(), 0);
}

/// A job that never stops asking for another pass.
struct Endless;

impl Job for Endless {
    type Output = ();
    fn op(&self) -> Op {
        Op::Decompress
    }
    fn input(&self) -> Input<'_, ()> {
        Input::Submit(&[])
    }
    fn descriptor(&mut self, a: &SlotAddrs) -> Descriptor {
        Descriptor::noop(a.record)
    }
    fn finish(
        &mut self,
        _: Result<accel::raw::completion::Completion, AccelError>,
        slot: &mut SlotDone<'_>,
    ) -> Step<()> {
        Step::Then(Descriptor::noop(slot.addrs().record))
    }
}

#[test]
fn a_job_that_never_finishes_is_stopped_after_the_pass_limit() {
    let emu = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let mut ctx = IaaContext::new(emu.work_queue(), ContextConfig::default());
    let r = ctx.run_one(Endless);
    assert!(matches!(r, Err(AccelError::Internal { .. })), "{r:?}");
    assert_eq!(
        ctx.stats().submitted,
        u64::from(accel::context::MAX_PASSES),
        "one descriptor per allowed pass"
    );
    assert_eq!(ctx.quarantined(), 0);
}

#[test]
fn more_jobs_than_slots_is_refused_whole_before_any_submission() {
    let emu = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let mut ctx = IaaContext::new(emu.work_queue(), ContextConfig::default());
    let stream = [0x03u8, 0x00];
    let mut nine: Vec<StreamCrc<'_>> = (0..9).map(|_| StreamCrc { stream: &stream }).collect();
    let r = ctx.run(&mut nine);
    assert!(
        matches!(r, Err(AccelError::BatchShape { pages: 9, .. })),
        "{:?}",
        r.map(|v| v.len())
    );
    assert_eq!(ctx.stats().submitted, 0);
}
