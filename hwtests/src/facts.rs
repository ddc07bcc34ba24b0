//! The IAA fact check: what only a device can say, asked of a device.
//!
//! Every fact here is something the driver (`accel`) and the emulator (`accel::emu`) assume
//! and that no source we can read settles (or settles only by reading Intel's code, which a
//! device run confirms). [`check`] runs each fact as one small job on a device and reports,
//! per fact, what we assumed, the source, what the device did, and a [`Verdict`]; when the
//! device contradicts us, `what_to_change` says where. On the emulator every verdict is
//! [`Verdict::Emulated`] (it was written from the same reading, so it cannot settle anything)
//! and the run doubles as a test that each job runs and that the emulator agrees with the
//! assumptions.
//!
//! Stable API (the hardware CI, `swapaccel hwcheck`): [`check_emulated`],
//! [`check_hardware`], [`FactReport`] (serde: `device`, `emulated`, `skipped`,
//! `submission_path`, `mlocked`, `mlock_refused`, `facts[]` of {`name`, `assumed`,
//! `source`, `observed`, `verdict` ∈ `pass`/`contradicted`/`emulated`/`skipped`,
//! `matches_assumption`, `what_to_change`}), [`FactReport::contradicted`] (non-zero →
//! failure). `SWAPACCEL_REQUIRE_HW=1` makes a missing device an error of
//! [`check_hardware`] rather than a skipped report.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use accel::context::{DroppedRegion, SlotAddrs};
use accel::emu::{EmulatorConfig, Fault, Target};
use accel::raw::aecs::{CompressAecs, OFF_OUTPUT_ACCUM};
use accel::raw::completion::Completion;
use accel::raw::descriptor::{compr_flags, decompr_flags, CompressJob, DecompressJob, Descriptor};
use accel::wq::PathKind;
use accel::{AccelError, ContextConfig, IaaContext, Status};
use serde::Serialize;
use software_fallback::{crc32, PAGE_SIZE};

use crate::dut::Dut;
use crate::harness::with_deadline;

/// A fact's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The device did what we assume.
    Pass,
    /// The device did something else: `what_to_change` says what.
    Contradicted,
    /// Run on the emulator, which settles nothing.
    Emulated,
    /// Not run, or the device gave no answer to the question (the reason is in `observed`).
    Skipped,
}

/// One fact's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct FactResult {
    /// Short name.
    pub name: String,
    /// What the driver and the emulator assume.
    pub assumed: String,
    /// Where the assumption comes from (file:line), or that no source says.
    pub source: String,
    /// What the device (or emulator) did.
    pub observed: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Whether the observation agreed with the assumption (`None`: no answer).
    pub matches_assumption: Option<bool>,
    /// When the observation disagrees: what to change, and where.
    pub what_to_change: Option<String>,
}

/// A whole fact-check run.
#[derive(Clone, Debug, Serialize)]
pub struct FactReport {
    /// The queue checked (`wqN.M`, or the emulator's name).
    pub device: String,
    /// True on the emulator.
    pub emulated: bool,
    /// Why the run did not happen (no device), when it did not.
    pub skipped: Option<String>,
    /// The submission path the queue was opened with, and why.
    pub submission_path: String,
    /// Device-memory regions of the checking context that `mlock` locked.
    pub mlocked: u64,
    /// … and that the memlock limit refused (they work, but may be reclaimed and fault).
    pub mlock_refused: u64,
    /// The facts, in order.
    pub facts: Vec<FactResult>,
}

impl FactReport {
    /// Facts the device contradicted: a run with any is a failure.
    pub fn contradicted(&self) -> usize {
        self.facts
            .iter()
            .filter(|f| f.verdict == Verdict::Contradicted)
            .count()
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    fn skipped(reason: String) -> FactReport {
        FactReport {
            device: "none".into(),
            emulated: false,
            skipped: Some(reason),
            submission_path: String::new(),
            mlocked: 0,
            mlock_refused: 0,
            facts: Vec::new(),
        }
    }
}

impl std::fmt::Display for FactReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(why) = &self.skipped {
            return writeln!(f, "IAA fact check skipped: {why}");
        }
        writeln!(
            f,
            "IAA fact check on {}{}",
            self.device,
            if self.emulated {
                " (the emulator: every verdict is 'emulated', nothing is settled)"
            } else {
                ""
            }
        )?;
        writeln!(f, "submission path: {}", self.submission_path)?;
        writeln!(
            f,
            "device memory: {} regions mlocked, {} refused by the memlock limit{}",
            self.mlocked,
            self.mlock_refused,
            if self.mlock_refused > 0 {
                " (they may be reclaimed and fault; raise RLIMIT_MEMLOCK)"
            } else {
                ""
            }
        )?;
        for r in &self.facts {
            writeln!(f)?;
            writeln!(f, "[{:?}] {}", r.verdict, r.name)?;
            writeln!(f, "  assumed:  {}", r.assumed)?;
            writeln!(f, "  source:   {}", r.source)?;
            writeln!(f, "  observed: {}", r.observed)?;
            if let Some(change) = &r.what_to_change {
                writeln!(f, "  change:   {change}")?;
            }
        }
        writeln!(f)?;
        let count = |v: Verdict| self.facts.iter().filter(|r| r.verdict == v).count();
        writeln!(
            f,
            "{} facts: {} pass, {} contradicted, {} emulated, {} skipped",
            self.facts.len(),
            count(Verdict::Pass),
            count(Verdict::Contradicted),
            count(Verdict::Emulated),
            count(Verdict::Skipped)
        )
    }
}

/// Choices for a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct FactOptions {
    /// Also submit a descriptor with a misaligned completion record through the portal of
    /// real hardware. Off by default: the kernel refuses such descriptors on its `write(2)`
    /// path because "the hardware engine can get very confused (security issue)"
    /// (`idxd_submit_user_descriptor`, `drivers/dma/idxd/cdev.c`): run it only on a machine
    /// you can reset.
    pub misaligned_record_on_portal: bool,
}

/// Runs every fact on an emulated dedicated queue (portal path).
pub fn check_emulated(opts: FactOptions) -> Result<FactReport, String> {
    let dut = Dut::emulated_with(EmulatorConfig {
        size: 64,
        ..EmulatorConfig::default()
    })
    .map_err(|e| format!("emulator: {e}"))?;
    Ok(check(Arc::new(dut), opts))
}

/// Runs every fact on the IAA work queue the suite's selection names (default: the first
/// usable one). No queue: a report that says it was skipped and why — or, with
/// `SWAPACCEL_REQUIRE_HW=1`, an error.
pub fn check_hardware(opts: FactOptions) -> Result<FactReport, String> {
    // The same queue and path the suite's hardware cases take (`SWAPACCEL_HWTESTS_WQ`,
    // `SWAPACCEL_HWTESTS_PATH`; default the first usable queue over discovery's path), so
    // the hardware CI checks the facts on every queue over both paths.
    let sel = crate::suite::Selection::from_env().map_err(|e| e.to_string())?;
    let require = sel.require_hw;
    match crate::suite::open_hardware(&sel) {
        Ok(wq) => Ok(check(Arc::new(Dut::hardware(wq)), opts)),
        Err(why) if require => Err(format!("SWAPACCEL_REQUIRE_HW=1 but no IAA hardware: {why}")),
        Err(why) => Ok(FactReport::skipped(format!("no IAA hardware: {why}"))),
    }
}

/// One fact: its text, and the job that asks the device.
struct Fact {
    name: &'static str,
    assumed: &'static str,
    source: &'static str,
    /// What to change when the device disagrees.
    change: &'static str,
    run: fn(&Dut, FactOptions) -> Observation,
}

/// What a job saw.
enum Observation {
    /// The device answered; `agrees` says whether as assumed.
    Answer { observed: String, agrees: bool },
    /// The question could not be asked or the device gave no answer to it.
    NoAnswer(String),
}

fn answer(observed: String, agrees: bool) -> Observation {
    Observation::Answer { observed, agrees }
}

/// Runs every fact on `dut`, each under a deadline.
pub fn check(dut: Arc<Dut>, opts: FactOptions) -> FactReport {
    let wq = dut.work_queue();
    let ctx = IaaContext::new(wq.clone(), ContextConfig::default());
    let (mlocked, mlock_refused) = (ctx.stats().mlocked, ctx.stats().mlock_refused);
    drop(ctx);
    let emulated = dut.emulator().is_some();
    let facts = FACTS
        .iter()
        .map(|fact| {
            let d = Arc::clone(&dut);
            let run = fact.run;
            let seen = Arc::new(Mutex::new(None));
            let put = Arc::clone(&seen);
            let done = with_deadline(fact.name, Duration::from_secs(30), move || {
                let _g = d.lock();
                let o = run(&d, opts);
                *put.lock().unwrap_or_else(|e| e.into_inner()) = Some(o);
                Ok(())
            });
            let obs = match done {
                Ok(()) => seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .unwrap_or_else(|| Observation::NoAnswer("the job left no observation".into())),
                Err(e) => Observation::NoAnswer(e),
            };
            let (observed, agrees) = match obs {
                Observation::Answer { observed, agrees } => (observed, Some(agrees)),
                Observation::NoAnswer(why) => (why, None),
            };
            let verdict = match (emulated, agrees) {
                (true, _) => Verdict::Emulated,
                (false, Some(true)) => Verdict::Pass,
                (false, Some(false)) => Verdict::Contradicted,
                (false, None) => Verdict::Skipped,
            };
            FactResult {
                name: fact.name.into(),
                assumed: fact.assumed.into(),
                source: fact.source.into(),
                observed,
                verdict,
                matches_assumption: agrees,
                what_to_change: (agrees == Some(false)).then(|| fact.change.into()),
            }
        })
        .collect();
    FactReport {
        device: wq.name().into(),
        emulated,
        skipped: None,
        submission_path: wq.path_reason().into(),
        mlocked,
        mlock_refused,
        facts,
    }
}

const FACTS: &[Fact] = &[
    Fact {
        name: "page_fault_read_status",
        assumed: "a read page fault (block-on-fault off) completes with status 0x03, bit 7 \
                  clear, fault_addr inside source 1; accel touches the address and resubmits",
        source: "QPL 1.6.0 sources/core-iaa/include/hw_status.h:62 (AD_STATUS_READ_PAGE_FAULT); \
                 sources/middle-layer/util/descriptor_processing.hpp:61-80; accel-config \
                 test/iaa.c:2594 (DSA_COMP_PAGE_FAULT_NOBOF)",
        change: "make accel::Status::PageFault the observed value (accel/src/status.rs) and \
                 inject it in accel/src/emu/engine.rs (Fault::PageFault), so that \
                 context/round.rs touches and resubmits on it",
        run: page_fault_read,
    },
    Fact {
        name: "page_fault_write_status",
        assumed: "a write page fault completes with status 0x83 (0x03 | bit 7), fault_addr \
                  inside the destination",
        source: "QPL 1.6.0 sources/core-iaa/include/hw_status.h:40,63 (FAULT_TYPE_IS_WRITE, \
                 AD_STATUS_WRITE_PAGE_FAULT); linux/idxd.h DSA_COMP_STATUS_WRITE",
        change: "decode the observed write-fault status in accel/src/status.rs and \
                 completion.rs (fault_was_write), and inject it in accel/src/emu/engine.rs",
        run: page_fault_write,
    },
    Fact {
        name: "zeroed_noop_succeeds",
        assumed: "a NOOP built from a zeroed descriptor (opcode 0, CRAV|RCR, the record) \
                  completes with SUCCESS; open uses it to confirm the write(2) path",
        source: "QPL 1.6.0 sources/middle-layer/dispatcher/hw_queue.cpp:146-166 (execute_noop), \
                 sources/core-iaa/sources/descriptors/hw_descriptor.c:27-31",
        change: "accept the observed NOOP status in accel/src/open_path.rs (noop_through), or \
                 build the NOOP as the device wants in Descriptor::noop",
        run: zeroed_noop,
    },
    Fact {
        name: "verify_crc_equals_compress_crc",
        assumed: "a verify pass (decompress, output suppressed) reports the CRC-32 of the \
                  uncompressed page, equal to the compress record's CRC",
        source: "kernel drivers/crypto/intel/iaa/iaa_crypto_main.c iaa_compress_verify (compares \
                 the two CRCs); QPL docs, Checksums (CRC-32 0x04C11DB7 unless CRC32C)",
        change: "turn verification off by default (ContextConfig::verify in \
                 accel/src/context/mod.rs) until the relation is understood, and model the \
                 observed CRC in accel/src/emu/engine.rs",
        run: verify_crc,
    },
    Fact {
        name: "suppressed_output_size",
        assumed: "a decompress with SUPPRESS_OUTPUT reports output_size 0 (what the emulator \
                  writes; accel never reads it on a verify pass)",
        source: "no source states it: QPL's verification and the kernel's iaa_compress_verify \
                 read only the CRC",
        change: "report the observed output_size for suppressed output in \
                 accel/src/emu/engine.rs decompress() (production code does not depend on it)",
        run: suppressed_output_size,
    },
    Fact {
        name: "decompress_flag_bit2_is_stop_on_eob",
        assumed: "decompression flag bit 2 is STOP_ON_EOB (QPL and accel-config naming; the \
                  kernel's iaa_crypto.h calls it CHECK_FOR_EOB): with ENABLE|FLUSH|bit 2 the \
                  device stops at the first block's end-of-block",
        source: "QPL 1.6.0 sources/core-iaa/sources/include/own_hw_definitions.h:76-77; \
                 accel-config accfg/idxd.h:62-63; kernel iaa_crypto.h IAA_DECOMP_CHECK_FOR_EOB",
        change: "swap STOP_ON_EOB and CHECK_FOR_EOB in accel/src/raw/descriptor.rs decompr_flags \
                 and in accel/src/emu/engine.rs (production sets both bits: 0x000f)",
        run: bit2_stops,
    },
    Fact {
        name: "stop_on_eob_at_stored_block_end",
        assumed: "STOP_ON_EOB also stops at the end of a stored block (which has no EOB symbol)",
        source: "no source states it: the emulator's choice (accel/src/emu/inflate.rs)",
        change: "in accel/src/emu/inflate.rs, do not stop at the end of a stored block (or do, \
                 as observed); production pages are single fixed blocks",
        run: stop_at_stored_end,
    },
    Fact {
        name: "compress_max_dst_exact",
        assumed: "a compress whose max_dst_size equals the exact output length succeeds",
        source: "no source states it: the kernel passes the buffer length as max_dst_size \
                 and treats analytics error 0x19 as overflow (iaa_crypto_main.c iaa_compress)",
        change: "give the device one byte more than the limit in accel/src/job/compress.rs and \
                 make accel/src/emu/deflate.rs overflow at max_dst_size (pages that fit exactly \
                 are then reported incompressible)",
        run: compress_max_dst_exact,
    },
    Fact {
        name: "decompress_max_dst_exact",
        assumed: "a decompress whose max_dst_size equals the output (4096 for a page) succeeds",
        source: "kernel iaa_crypto_main.c iaa_decompress (max_dst_size = the page buffer's \
                 length); QPL sets it from the output buffer size",
        change: "every page decompress would fail: give the device a destination larger than \
                 a page (slot.rs SlotMem dst, job/decompress.rs max_dst) and make \
                 accel/src/emu/inflate.rs overflow at max_dst_size",
        run: decompress_max_dst_exact,
    },
    Fact {
        name: "compress_end_processing_field",
        assumed: "compression flag bits 3:2 are the end-processing field: value 3 appends an \
                  EOB and an empty final stored block",
        source: "QPL 1.6.0 sources/core-iaa/sources/include/own_hw_definitions.h:53-55,90 \
                 (ADCF_END_PROC, AD_APPEND_EOB_FINAL_SB); accel-config accfg/idxd.h:58 \
                 (IDXD_COMPRESS_FLAG_EOB_BFINAL = 0x000c)",
        change: "model the observed end processing in accel/src/emu/deflate.rs (EndProc) and \
                 accel/src/raw/descriptor.rs compr_flags (production uses value 1 only)",
        run: end_processing,
    },
    Fact {
        name: "aecs_size_multiple_of_32",
        assumed: "the AECS address and size need only be multiples of 32 (1600 works, 1570 \
                  fails with status 0x1c)",
        source: "QPL 1.6.0 sources/core-iaa/include/hw_status.h:55 \
                 (AD_STATUS_MISALIGNED_ADDRESS: 'AECS address or size was not a multiple of \
                 32 bytes'); hw_aecs_api.h:52 (HW_AECS_COMPRESS_WITH_HT = 0x620)",
        change: "check the AECS in accel/src/emu/engine.rs compress() as observed",
        run: aecs_size,
    },
    Fact {
        name: "misaligned_completion_record",
        assumed: "a completion record not 64-byte aligned: write(2) refuses it with EINVAL; \
                  through the portal the device writes no record at the aligned address \
                  (the slot is quarantined after the deadline)",
        source: "kernel drivers/dma/idxd/cdev.c idxd_submit_user_descriptor \
                 (comp_addr_align 0x40 for IAA); the portal case: no source",
        change: "model the observed answer in accel/src/emu/engine.rs execute() (e.g. a record \
                 with status 0x1b at the rounded-down address)",
        run: misaligned_record,
    },
];

// ---- the jobs -------------------------------------------------------------------------

/// A compressible page, the same every run.
fn page() -> Vec<u8> {
    (0..PAGE_SIZE)
        .map(|i| if i % 9 < 4 { b'q' } else { (i % 23) as u8 })
        .collect()
}

fn ctx(dut: &Dut) -> IaaContext {
    IaaContext::new(
        dut.work_queue(),
        ContextConfig {
            timeout: Duration::from_millis(500),
            drain_on_drop: Duration::from_millis(100),
            ..ContextConfig::default()
        },
    )
}

fn kernel_compress(a: &SlotAddrs) -> Descriptor {
    Descriptor::compress(&CompressJob {
        src: a.src,
        src_len: PAGE_SIZE as u32,
        dst: a.dst,
        max_dst: a.dst_cap,
        aecs: a.aecs,
        completion: a.record,
    })
}

fn decompress_job(a: &SlotAddrs, len: usize, max_dst: u32) -> DecompressJob {
    DecompressJob {
        src: a.src,
        src_len: len as u32,
        dst: a.dst,
        max_dst,
        completion: a.record,
    }
}

fn arm(dut: &Dut, target: Target, fault: Fault) {
    if let Some(e) = dut.emulator() {
        e.faults().inject(target, fault, 1);
    }
}

fn status_text(c: &Completion) -> String {
    format!(
        "status byte 0x{:02x} ({}), error code 0x{:02x}, output_size {}",
        c.status_byte,
        c.status().name(),
        c.error_code,
        c.output_size
    )
}

/// Compresses `page()` with the context's fixed AECS; the compressed bytes and CRC.
fn compressed(ctx: &mut IaaContext) -> Result<(Vec<u8>, u32), String> {
    let (c, out) = ctx
        .run_raw(&page(), kernel_compress)
        .map_err(|e| format!("could not compress the test page: {e}"))?;
    if c.status() != Status::Success {
        return Err(format!(
            "could not compress the test page: {}",
            status_text(&c)
        ));
    }
    Ok((out, c.crc))
}

fn page_fault(dut: &Dut, region: DroppedRegion) -> Observation {
    let write = region == DroppedRegion::Destination;
    arm(dut, Target::Compress, Fault::PageFault { write });
    let mut ctx = ctx(dut);
    let mut addrs = None;
    let r = ctx.run_raw_with_dropped_pages(&page(), region, |a| {
        addrs = Some(*a);
        kernel_compress(a)
    });
    let Some(a) = addrs else {
        return Observation::NoAnswer(format!("not submitted: {r:?}"));
    };
    let (lo, len) = match region {
        DroppedRegion::Source => (a.src, u64::from(a.src_cap)),
        DroppedRegion::Destination => (a.dst, u64::from(a.dst_cap)),
    };
    match r {
        Err(AccelError::PageFault { addr, write: w, .. }) => {
            let inside = addr >= lo && addr < lo + len;
            answer(
                format!(
                    "status 0x{:02x} (decoded as the page fault), write bit {}, fault_addr \
                     {} the dropped {}",
                    if w { 0x83 } else { 0x03 },
                    if w { "set" } else { "clear" },
                    if inside { "inside" } else { "outside" },
                    if write { "destination" } else { "source" }
                ),
                w == write && inside,
            )
        }
        Ok((c, _)) if c.status() == Status::Success => Observation::NoAnswer(
            "no fault reported (SUCCESS): the page was resolved without one (IOMMU page \
             request, or block-on-fault on the queue); run again under memory pressure"
                .into(),
        ),
        Ok((c, _)) => answer(
            format!(
                "{} with fault_addr 0x{:x} — not decoded as the page fault",
                status_text(&c),
                c.fault_addr
            ),
            false,
        ),
        Err(e) => answer(format!("error: {e}"), false),
    }
}

fn page_fault_read(dut: &Dut, _: FactOptions) -> Observation {
    page_fault(dut, DroppedRegion::Source)
}

fn page_fault_write(dut: &Dut, _: FactOptions) -> Observation {
    page_fault(dut, DroppedRegion::Destination)
}

fn zeroed_noop(dut: &Dut, _: FactOptions) -> Observation {
    let mut ctx = ctx(dut);
    match ctx.run_raw(&[], |a| Descriptor::noop(a.record)) {
        Ok((c, _)) => answer(status_text(&c), c.status() == Status::Success),
        Err(e) => answer(format!("error: {e}"), false),
    }
}

fn verify(ctx: &mut IaaContext, bytes: &[u8]) -> Result<Completion, String> {
    ctx.run_raw(bytes, |a| {
        Descriptor::verify(&decompress_job(a, bytes.len(), PAGE_SIZE as u32))
    })
    .map(|(c, _)| c)
    .map_err(|e| format!("verify pass: {e}"))
}

fn verify_crc(dut: &Dut, _: FactOptions) -> Observation {
    let mut ctx = ctx(dut);
    let (bytes, crc) = match compressed(&mut ctx) {
        Ok(v) => v,
        Err(e) => return Observation::NoAnswer(e),
    };
    match verify(&mut ctx, &bytes) {
        Ok(c) => answer(
            format!(
                "{}; verify CRC 0x{:08x}, compress CRC 0x{crc:08x}, CRC-32 of the page \
                 0x{:08x}",
                status_text(&c),
                c.crc,
                crc32(&page())
            ),
            c.status() == Status::Success && c.crc == crc && crc == crc32(&page()),
        ),
        Err(e) => answer(e, false),
    }
}

fn suppressed_output_size(dut: &Dut, _: FactOptions) -> Observation {
    let mut ctx = ctx(dut);
    let (bytes, _) = match compressed(&mut ctx) {
        Ok(v) => v,
        Err(e) => return Observation::NoAnswer(e),
    };
    match verify(&mut ctx, &bytes) {
        Ok(c) if c.status() == Status::Success => {
            answer(format!("output_size {}", c.output_size), c.output_size == 0)
        }
        Ok(c) => Observation::NoAnswer(format!("verify pass failed: {}", status_text(&c))),
        Err(e) => Observation::NoAnswer(e),
    }
}

/// Compresses `data` (at most a page) with a fixed AECS whose block header has BFINAL=0,
/// with end-processing `end`.
fn compress_open(ctx: &mut IaaContext, data: &[u8], end: u16) -> Result<Vec<u8>, String> {
    let mut bytes = *CompressAecs::fixed().as_bytes();
    bytes[OFF_OUTPUT_ACCUM] = 0b010; // BFINAL=0, BTYPE=01
    let mut input = data.to_vec();
    input.resize(PAGE_SIZE, 0);
    input.extend_from_slice(&bytes);
    let (c, out) = ctx
        .run_raw(&input, |a| {
            let mut d = Descriptor::compress(&CompressJob {
                src: a.src,
                src_len: data.len() as u32,
                dst: a.dst,
                max_dst: a.dst_cap,
                aecs: a.src + PAGE_SIZE as u64,
                completion: a.record,
            });
            d.set_op_flags(compr_flags::FLUSH_OUTPUT | end);
            d
        })
        .map_err(|e| format!("compress with END_PROC {}: {e}", end >> 2))?;
    if c.status() != Status::Success {
        return Err(format!(
            "compress with END_PROC {}: {}",
            end >> 2,
            status_text(&c)
        ));
    }
    Ok(out)
}

/// Decompresses `stream` with decompression flags `flags` into at most a page.
fn decompress_with(
    ctx: &mut IaaContext,
    stream: &[u8],
    flags: u16,
    max_dst: u32,
) -> Result<(Completion, Vec<u8>), AccelError> {
    ctx.run_raw(stream, |a| {
        let mut d = Descriptor::decompress(&decompress_job(a, stream.len(), max_dst));
        d.set_op_flags(flags);
        d
    })
}

fn bit2_stops(dut: &Dut, _: FactOptions) -> Observation {
    let mut ctx = ctx(dut);
    let first = &page()[..2048];
    // A non-final fixed block with its EOB and an empty non-final stored block (END_PROC 2),
    // then a final stored block "XYZ".
    let mut stream = match compress_open(&mut ctx, first, compr_flags::APPEND_EOB_STORED) {
        Ok(s) => s,
        Err(e) => return Observation::NoAnswer(format!("could not build the stream: {e}")),
    };
    stream.extend_from_slice(&[0x01, 3, 0, 0xfc, 0xff, b'X', b'Y', b'Z']);
    let flags = decompr_flags::ENABLE | decompr_flags::FLUSH_OUTPUT | (1 << 2);
    match decompress_with(&mut ctx, &stream, flags, PAGE_SIZE as u32) {
        Ok((c, out)) if c.status() == Status::Success => answer(
            format!(
                "output_size {} ({})",
                c.output_size,
                if out == first {
                    "stopped after the first block"
                } else if out.len() == first.len() + 3 {
                    "went on to the final block"
                } else {
                    "other output"
                }
            ),
            out == first,
        ),
        Ok((c, _)) => answer(status_text(&c), false),
        Err(e) => answer(format!("error: {e}"), false),
    }
}

fn stop_at_stored_end(dut: &Dut, _: FactOptions) -> Observation {
    let mut ctx = ctx(dut);
    // Non-final stored block of 100 'A', final stored block of 50 'B'.
    let mut stream = vec![0x00, 100, 0, !100u8, 0xff];
    stream.extend_from_slice(&[b'A'; 100]);
    stream.extend_from_slice(&[0x01, 50, 0, !50u8, 0xff]);
    stream.extend_from_slice(&[b'B'; 50]);
    let flags = decompr_flags::ENABLE | decompr_flags::FLUSH_OUTPUT | decompr_flags::STOP_ON_EOB;
    match decompress_with(&mut ctx, &stream, flags, PAGE_SIZE as u32) {
        Ok((c, _)) if c.status() == Status::Success => answer(
            format!(
                "output_size {} (100 = stopped, 150 = went on)",
                c.output_size
            ),
            c.output_size == 100,
        ),
        Ok((c, _)) => answer(status_text(&c), false),
        Err(e) => answer(format!("error: {e}"), false),
    }
}

fn compress_max_dst_exact(dut: &Dut, _: FactOptions) -> Observation {
    let mut ctx = ctx(dut);
    let (bytes, _) = match compressed(&mut ctx) {
        Ok(v) => v,
        Err(e) => return Observation::NoAnswer(e),
    };
    let exact = bytes.len() as u32;
    let r = ctx.run_raw(&page(), |a| {
        let mut d = kernel_compress(a);
        d.set_max_dst_size(exact);
        d
    });
    match r {
        Ok((c, out)) => answer(
            format!("max_dst_size {exact}: {}", status_text(&c)),
            c.status() == Status::Success && out == bytes,
        ),
        Err(e) => answer(format!("max_dst_size {exact}: error {e}"), false),
    }
}

fn decompress_max_dst_exact(dut: &Dut, _: FactOptions) -> Observation {
    let mut ctx = ctx(dut);
    let (bytes, _) = match compressed(&mut ctx) {
        Ok(v) => v,
        Err(e) => return Observation::NoAnswer(e),
    };
    match decompress_with(&mut ctx, &bytes, decompr_flags::KERNEL, PAGE_SIZE as u32) {
        Ok((c, out)) => answer(
            format!("max_dst_size {PAGE_SIZE}: {}", status_text(&c)),
            c.status() == Status::Success && out == page(),
        ),
        Err(e) => answer(format!("max_dst_size {PAGE_SIZE}: error {e}"), false),
    }
}

fn end_processing(dut: &Dut, _: FactOptions) -> Observation {
    let mut ctx = ctx(dut);
    let p = page();
    match compress_open(&mut ctx, &p, compr_flags::APPEND_EOB_FINAL_STORED) {
        Ok(out) => {
            let mut back = vec![0u8; PAGE_SIZE];
            let decoded = libdeflater::Decompressor::new()
                .deflate_decompress(&out, &mut back)
                .ok();
            answer(
                format!(
                    "{} bytes, ends with {:02x?}, libdeflate {}",
                    out.len(),
                    &out[out.len().saturating_sub(4)..],
                    match decoded {
                        Some(n) if n == PAGE_SIZE && back == p => "decodes the page",
                        Some(_) => "decodes other data",
                        None => "rejects it",
                    }
                ),
                out.ends_with(&[0, 0, 0xff, 0xff]) && decoded == Some(PAGE_SIZE) && back == p,
            )
        }
        Err(e) => answer(e, false),
    }
}

fn aecs_size(dut: &Dut, _: FactOptions) -> Observation {
    let mut ctx = ctx(dut);
    let mut seen = Vec::new();
    let mut agrees = true;
    for (size, want) in [(1600u32, Status::Success), (1570, Status::AddrAlign)] {
        let mut input = page();
        input.extend_from_slice(CompressAecs::fixed().as_bytes());
        input.resize(PAGE_SIZE + 1600, 0);
        let r = ctx.run_raw(&input, |a| {
            let mut d = kernel_compress(a);
            d.set_src2(a.src + PAGE_SIZE as u64, size);
            d
        });
        match r {
            Ok((c, _)) => {
                agrees &= c.status() == want;
                seen.push(format!("size {size}: {}", c.status()));
            }
            Err(e) => {
                agrees = false;
                seen.push(format!("size {size}: error {e}"));
            }
        }
    }
    answer(seen.join("; "), agrees)
}

fn misaligned_record(dut: &Dut, opts: FactOptions) -> Observation {
    let wq = dut.work_queue();
    let portal = wq.path_kind() == PathKind::Portal;
    if portal && dut.emulator().is_none() && !opts.misaligned_record_on_portal {
        return Observation::NoAnswer(
            "not run through the portal of real hardware unless asked \
             (--include-misaligned-record): the kernel calls it a security issue that can \
             confuse the engine"
                .into(),
        );
    }
    let mut ctx = IaaContext::new(
        wq,
        ContextConfig {
            timeout: Duration::from_millis(100),
            drain_on_drop: Duration::from_millis(100),
            ..ContextConfig::default()
        },
    );
    let r = ctx.run_raw(&page(), |a| {
        let mut d = kernel_compress(a);
        d.set_completion_addr(a.record + 32);
        d
    });
    match (portal, r) {
        (false, Err(AccelError::Rejected(e))) => answer(
            format!("write(2) refused it: {e}"),
            e.raw_os_error() == Some(libc::EINVAL),
        ),
        (true, Err(AccelError::DeviceUnresponsive { waited })) => answer(
            format!(
                "no record at the aligned address within {waited:?}; {} slot(s) quarantined",
                ctx.quarantined()
            ),
            true,
        ),
        (_, Ok((c, _))) => answer(
            format!("a record at the aligned address: {}", status_text(&c)),
            false,
        ),
        (_, Err(e)) => answer(format!("error: {e}"), false),
    }
}

/// Conformance case: the emulated run reports every fact, each labelled "emulated", each
/// with its source and an answer that agrees with the assumption (the emulator was written
/// from them), and the JSON carries the same.
pub fn emulated_run_case() -> crate::CaseResult {
    let r = check_emulated(FactOptions::default())?;
    crate::ensure!(
        r.emulated && r.skipped.is_none(),
        "not an emulated run: {r:?}"
    );
    crate::ensure!(
        r.facts.len() == FACTS.len(),
        "{} facts reported, {} defined",
        r.facts.len(),
        FACTS.len()
    );
    for f in &r.facts {
        crate::ensure!(
            f.verdict == Verdict::Emulated,
            "{}: verdict {:?}",
            f.name,
            f.verdict
        );
        crate::ensure!(!f.source.is_empty(), "{}: no source", f.name);
        crate::ensure!(
            f.matches_assumption == Some(true),
            "{}: the emulator disagrees with the assumption: {}",
            f.name,
            f.observed
        );
    }
    crate::ensure!(r.contradicted() == 0, "contradicted on the emulator");
    let json: serde_json::Value =
        serde_json::from_str(&r.to_json()).map_err(|e| format!("JSON: {e}"))?;
    let facts = json["facts"].as_array().ok_or("JSON has no facts array")?;
    crate::ensure!(
        facts.iter().all(|f| f["verdict"] == "emulated"),
        "JSON verdicts: {json}"
    );
    let text = r.to_string();
    for f in &r.facts {
        crate::ensure!(
            text.contains(&f.name) && text.contains(&f.source),
            "text report lacks {} or its source",
            f.name
        );
    }
    Ok(())
}

/// Conformance case on real hardware: no fact contradicted.
pub fn hardware_case(dut: Arc<Dut>) -> crate::CaseResult {
    let r = check(dut, FactOptions::default());
    if r.contradicted() > 0 {
        return Err(format!(
            "the device contradicts {} fact(s):\n{r}",
            r.contradicted()
        ));
    }
    Ok(())
}
