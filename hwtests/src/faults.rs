//! Every fault the emulator injects, and the recovery it calls for. Emulator only: each case
//! starts its own emulator so that armed faults cannot hit another case's descriptors.

use std::time::Duration;

use accel::discovery::WqMode;
use accel::emu::{Emulator, EmulatorConfig, Fault, Target};
use accel::wq::PathKind;
use accel::{AccelError, ContextConfig, IaaCodec, PageError};
use software_fallback::corpus::Corpus;
use software_fallback::{CodecError, PageCodec, DEFAULT_COMPRESS_LIMIT, PAGE_SIZE};

use crate::cases::{compress_pages, decompress_streams};
use crate::{ensure, CaseResult};

/// An emulator-only case.
pub type FaultCase = fn() -> CaseResult;

/// Every fault case, by name (the quarantine cases are registered in [`crate::quarantine`]).
pub fn all() -> Vec<(&'static str, FaultCase)> {
    vec![
        (
            "page_fault_on_read_is_touched_and_resubmitted",
            page_fault_read as FaultCase,
        ),
        (
            "page_fault_on_write_is_touched_and_resubmitted",
            page_fault_write,
        ),
        (
            "persistent_page_fault_gives_up_after_bounded_retries",
            page_fault_persistent,
        ),
        (
            "page_fault_ir_status_0x04_is_reported_not_resubmitted",
            page_fault_ir,
        ),
        ("output_overflow", output_overflow),
        ("hardware_error_fails_one_page_only", hardware_error),
        ("watchdog_fails_one_page_only", watchdog),
        ("shared_queue_enqcmd_retry_then_busy", enqcmd_retry),
        ("shared_queue_write_path_eagain_is_busy", write_path_eagain),
        ("dedicated_queue_in_flight_budget", dedicated_budget),
        ("dedicated_queue_drops_beyond_size", dedicated_drops),
        (
            "dedicated_queue_second_open_is_busy",
            dedicated_second_open_is_busy,
        ),
        (
            "submission_path_portal_first_then_write_confirmed_by_noop",
            path_choice,
        ),
        (
            "emulator_answers_unmodelled_flags_as_invalid",
            unmodelled_flags,
        ),
        ("unplugged_device_is_gone", unplugged),
        ("verify_catches_corrupt_output", verify_catches_corruption),
        (
            "write_path_rejects_misaligned_record",
            misaligned_record_write,
        ),
        (
            "portal_misaligned_record_gets_no_record",
            misaligned_record_portal,
        ),
    ]
}

pub(crate) fn emu(mode: WqMode, path: PathKind, size: u32) -> Result<Emulator, String> {
    Emulator::start(EmulatorConfig {
        mode,
        path,
        size,
        ..EmulatorConfig::default()
    })
    .map_err(|e| e.to_string())
}

pub(crate) fn codec(e: &Emulator, timeout: Duration) -> IaaCodec {
    IaaCodec::new(
        e.work_queue(),
        ContextConfig {
            timeout,
            drain_on_drop: Duration::from_millis(20),
            ..ContextConfig::default()
        },
    )
}

pub(crate) fn test_page(seed: u8) -> Vec<u8> {
    (0..PAGE_SIZE)
        .map(|i| ((i / 8) as u8).wrapping_mul(seed) ^ (i % 13) as u8)
        .collect()
}

pub(crate) fn device_err(
    r: Result<software_fallback::Compressed, PageError>,
) -> Result<AccelError, String> {
    match r {
        Err(PageError::Device(e)) => Ok(e),
        other => Err(format!("expected a device error, got {other:?}")),
    }
}

pub(crate) fn compress_one(
    c: &mut IaaCodec,
    page: &[u8],
) -> Result<Result<software_fallback::Compressed, PageError>, String> {
    let mut dst = vec![0u8; DEFAULT_COMPRESS_LIMIT];
    let mut r = c
        .try_batch::<accel::Compress>(&[page], &mut [&mut dst])
        .map_err(|e| e.to_string())?;
    r.pop().ok_or_else(|| "no result".to_string())
}

fn roundtrip_ok(c: &mut IaaCodec, page: &[u8]) -> CaseResult {
    let comp = compress_pages(c, &[page], DEFAULT_COMPRESS_LIMIT)?;
    let bytes = comp[0].0.clone().ok_or("page incompressible")?;
    let (p, _) = decompress_streams(c, &[&bytes])?
        .pop()
        .ok_or("no result")?
        .map_err(|e| e.to_string())?;
    ensure!(p == page, "round trip returned other data");
    Ok(())
}

fn page_fault_read() -> CaseResult {
    let e = emu(WqMode::Dedicated, PathKind::Portal, 32)?;
    let mut c = codec(&e, Duration::from_secs(2));
    e.faults()
        .inject(Target::Compress, Fault::PageFault { write: false }, 1);
    roundtrip_ok(&mut c, &test_page(3))?;
    ensure!(
        c.context().stats().page_faults_resolved == 1,
        "fault not resolved by touch+resubmit"
    );
    ensure!(e.faults().injected() == 1, "fault not injected");
    Ok(())
}

fn page_fault_write() -> CaseResult {
    let e = emu(WqMode::Shared, PathKind::Write, 32)?;
    let mut c = codec(&e, Duration::from_secs(2));
    e.faults()
        .inject(Target::Decompress, Fault::PageFault { write: true }, 2);
    roundtrip_ok(&mut c, &test_page(5))?;
    ensure!(
        c.context().stats().page_faults_resolved == 2,
        "write faults not resolved"
    );
    Ok(())
}

fn page_fault_persistent() -> CaseResult {
    let e = emu(WqMode::Dedicated, PathKind::Portal, 32)?;
    let mut c = codec(&e, Duration::from_secs(2));
    let retries = c.context().config().page_fault_retries;
    e.faults()
        .inject(Target::Compress, Fault::PageFault { write: false }, 100);
    let err = device_err(compress_one(&mut c, &test_page(7))?)?;
    match err {
        AccelError::PageFault {
            attempts,
            write: false,
            ..
        } => {
            ensure!(
                attempts == retries + 1,
                "gave up after {attempts} attempts, want {}",
                retries + 1
            )
        }
        other => return Err(format!("expected PageFault, got {other}")),
    }
    ensure!(
        !err_is_gone(&compress_one(&mut c, &test_page(7))?),
        "context unusable after faults"
    );
    Ok(())
}

/// 0x04 (`IAX_COMP_PAGE_FAULT_IR`) is not the page fault Intel's code touches and
/// resubmits on (that is 0x03, QPL `hw_status.h:62`): one submission, a typed hardware error.
fn page_fault_ir() -> CaseResult {
    let e = emu(WqMode::Dedicated, PathKind::Portal, 32)?;
    let mut c = codec(&e, Duration::from_secs(2));
    c.context_mut().set_verify(false);
    e.faults().inject(Target::Compress, Fault::PageFaultIr, 1);
    let err = device_err(compress_one(&mut c, &test_page(8))?)?;
    ensure!(
        matches!(
            err,
            AccelError::Hardware {
                status: accel::Status::PageFaultIr,
                ..
            }
        ),
        "0x04 gave {err}"
    );
    ensure!(
        c.context().stats().page_faults_resolved == 0 && c.context().stats().submitted == 1,
        "0x04 was resubmitted: {:?}",
        c.context().stats()
    );
    Ok(())
}

fn err_is_gone(r: &Result<software_fallback::Compressed, PageError>) -> bool {
    matches!(r, Err(e) if e.is_device_gone())
}

fn output_overflow() -> CaseResult {
    let e = emu(WqMode::Dedicated, PathKind::Portal, 32)?;
    let mut c = codec(&e, Duration::from_secs(2));
    let page = test_page(9);
    e.faults()
        .inject(Target::Compress, Fault::OutputOverflow, 1);
    let r = compress_one(&mut c, &page)?.map_err(|e| e.to_string())?;
    ensure!(
        r.len.is_none(),
        "compress overflow must read as incompressible"
    );
    let comp = compress_pages(&mut c, &[&page], DEFAULT_COMPRESS_LIMIT)?;
    let bytes = comp[0].0.clone().ok_or("incompressible")?;
    e.faults()
        .inject(Target::Decompress, Fault::OutputOverflow, 1);
    let mut out = vec![0u8; PAGE_SIZE];
    ensure!(
        matches!(
            c.decompress(&bytes, &mut out),
            Err(CodecError::Oversized { .. })
        ),
        "decompress overflow must be Oversized"
    );
    roundtrip_ok(&mut c, &page)
}

fn one_page_error(fault: Fault, check: fn(&AccelError) -> bool) -> CaseResult {
    let e = emu(WqMode::Dedicated, PathKind::Write, 32)?;
    let mut c = codec(&e, Duration::from_secs(2));
    e.faults().inject(Target::Compress, fault, 1);
    let err = device_err(compress_one(&mut c, &test_page(11))?)?;
    ensure!(check(&err), "unexpected error {err}");
    ensure!(
        !err.is_device_gone() && !err.is_busy(),
        "{err} misclassified"
    );
    roundtrip_ok(&mut c, &test_page(11))
}

fn hardware_error() -> CaseResult {
    one_page_error(Fault::HardwareError, |e| {
        matches!(
            e,
            AccelError::Hardware {
                status: accel::Status::HwError1,
                ..
            }
        )
    })
}

fn watchdog() -> CaseResult {
    one_page_error(Fault::Watchdog, |e| {
        matches!(e, AccelError::Watchdog { .. })
    })
}

/// Compresses eight corpus pages in one batch and checks that `ok` succeed and `busy` are
/// refused as busy.
pub(crate) fn batch_of_eight_splits(c: &mut IaaCodec, ok: usize, busy: usize) -> CaseResult {
    let corpus = Corpus::builtin().sample(8);
    let pages: Vec<&[u8]> = corpus.pages().collect();
    let mut bufs = vec![vec![0u8; DEFAULT_COMPRESS_LIMIT]; 8];
    let mut dsts: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
    let r = c
        .try_batch::<accel::Compress>(&pages, &mut dsts)
        .map_err(|e| e.to_string())?;
    let n_ok = r.iter().filter(|x| x.is_ok()).count();
    let n_busy = r
        .iter()
        .filter(|x| matches!(x, Err(e) if e.is_busy()))
        .count();
    ensure!(
        n_ok == ok && n_busy == busy,
        "{n_ok} ok and {n_busy} busy, want {ok} and {busy}: {r:?}"
    );
    Ok(())
}

fn enqcmd_retry() -> CaseResult {
    let e = Emulator::start(EmulatorConfig {
        mode: WqMode::Shared,
        path: PathKind::Portal,
        enqcmd_retries: 4,
        ..EmulatorConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let mut c = codec(&e, Duration::from_secs(2));
    e.faults().reject_enqcmd(3);
    roundtrip_ok(&mut c, &test_page(23))?;
    e.faults().reject_enqcmd(1000);
    let refused = || {
        e.counters()
            .refused
            .load(std::sync::atomic::Ordering::Acquire)
    };
    let before = refused();
    let err = device_err(compress_one(&mut c, &test_page(23))?)?;
    ensure!(err.is_busy(), "expected QueueBusy, got {err}");
    // Bounded: one try plus `enqcmd_retries` (4) retries, then the queue is reported busy.
    ensure!(
        refused() - before == 5,
        "{} ENQCMD attempts, want 5",
        refused() - before
    );
    e.faults().clear();
    roundtrip_ok(&mut c, &test_page(23))
}

fn write_path_eagain() -> CaseResult {
    let e = emu(WqMode::Shared, PathKind::Write, 32)?;
    let mut c = codec(&e, Duration::from_secs(2));
    e.faults().reject_enqcmd(10_000);
    let err = device_err(compress_one(&mut c, &test_page(29))?)?;
    ensure!(err.is_busy(), "expected QueueBusy from EAGAIN, got {err}");
    e.faults().clear();
    roundtrip_ok(&mut c, &test_page(29))
}

fn dedicated_budget() -> CaseResult {
    let e = emu(WqMode::Dedicated, PathKind::Portal, 4)?;
    let mut c = codec(&e, Duration::from_secs(2));
    batch_of_eight_splits(&mut c, 4, 4)?;
    let dropped = e
        .counters()
        .dropped_full
        .load(std::sync::atomic::Ordering::Acquire);
    ensure!(
        dropped == 0,
        "{dropped} descriptors dropped: the budget must prevent drops"
    );
    ensure!(
        c.context().stats().in_flight.max() <= 4,
        "more than 4 in flight"
    );
    Ok(())
}

fn dedicated_drops() -> CaseResult {
    // A dedicated queue whose entries are taken by descriptors this handle's budget does not
    // know of (a submitter that ignores the budget; `occupy_entries` is that submitter)
    // drops what the device has no room for, without a word: the victim sees only a
    // missed deadline. One opener only: the kernel refuses a second (EBUSY).
    let e = emu(WqMode::Dedicated, PathKind::Portal, 2)?;
    let taken = e.occupy_entries(2);
    ensure!(taken == 2, "occupied {taken} entries, want 2");
    let mut c = IaaCodec::new(
        e.work_queue(),
        ContextConfig {
            timeout: Duration::from_millis(50),
            drain_on_drop: Duration::from_millis(10),
            ..ContextConfig::default()
        },
    );
    let probe = test_page(41);
    let mut dst = vec![0u8; DEFAULT_COMPRESS_LIMIT];
    let r = c
        .try_batch::<accel::Compress>(&[&probe], &mut [&mut dst])
        .map_err(|e| e.to_string())?;
    let dropped = e
        .counters()
        .dropped_full
        .load(std::sync::atomic::Ordering::Acquire);
    ensure!(
        dropped == 1,
        "emulated dedicated queue dropped {dropped}, want 1"
    );
    ensure!(
        matches!(&r[0], Err(e) if e.is_device_gone()),
        "dropped descriptor: {:?}",
        r[0]
    );
    // With the entries back, the same context works again (the lost descriptor's slot
    // stays quarantined; the others are free).
    e.free_entries(2);
    roundtrip_ok(&mut c, &test_page(43))?;
    Ok(())
}

/// The kernel lets one file have a dedicated queue open (`idxd_cdev_open`: EBUSY); the
/// emulator refuses a second opener the same way, with a typed error. A shared queue takes
/// many openers.
fn dedicated_second_open_is_busy() -> CaseResult {
    let e = emu(WqMode::Dedicated, PathKind::Portal, 8)?;
    match e.open_again() {
        Err(AccelError::QueueHeld { .. }) => {}
        other => return Err(format!("second open of a dedicated queue: {other:?}")),
    }
    let s = emu(WqMode::Shared, PathKind::Portal, 8)?;
    let other = s
        .open_again()
        .map_err(|e| format!("shared second open: {e}"))?;
    let mut c = IaaCodec::new(other, ContextConfig::default());
    roundtrip_ok(&mut c, &test_page(47))?;
    Ok(())
}

/// The submission path is chosen by the production code (`open_path.rs`) on the emulator:
/// portal first; EPERM from the mmap → `write(2)`, confirmed with a NOOP at open; a kernel
/// without `write()` → a typed error of open, not a failure per page.
fn path_choice() -> CaseResult {
    use std::sync::atomic::Ordering::Acquire;
    let start = |path, mmap_permitted, kernel_write| {
        Emulator::start(EmulatorConfig {
            path,
            mmap_permitted,
            kernel_write,
            ..EmulatorConfig::default()
        })
    };
    let e = start(PathKind::Portal, true, true).map_err(|e| e.to_string())?;
    ensure!(
        e.work_queue().path_kind() == PathKind::Portal,
        "mmap permitted: {}",
        e.work_queue().path_reason()
    );
    ensure!(
        e.counters().accepted.load(Acquire) == 0,
        "the portal path needs no NOOP at open"
    );
    for insn in [PathKind::Portal, PathKind::Write] {
        let e = start(insn, false, true).map_err(|e| e.to_string())?;
        let wq = e.work_queue();
        ensure!(
            wq.path_kind() == PathKind::Write && wq.path_reason().contains("NOOP"),
            "{insn:?}, mmap refused: {:?} ({})",
            wq.path_kind(),
            wq.path_reason()
        );
        ensure!(
            e.counters().completed.load(Acquire) == 1,
            "the write(2) path was not confirmed with one NOOP"
        );
        if insn == PathKind::Portal {
            ensure!(
                wq.path_reason().contains("EPERM"),
                "reason does not name the refused mmap: {}",
                wq.path_reason()
            );
        }
        let mut c = IaaCodec::new(wq, ContextConfig::default());
        roundtrip_ok(&mut c, &test_page(53))?;
    }
    for insn in [PathKind::Portal, PathKind::Write] {
        match start(insn, false, false) {
            Err(AccelError::NoSubmissionPath { reason, .. }) => ensure!(
                reason.contains("EINVAL") && reason.contains("no write()"),
                "reason: {reason}"
            ),
            other => return Err(format!("{insn:?}, no mmap, no write(): {other:?}")),
        }
    }
    // A kernel without write() does not matter when the portal can be mapped.
    let e = start(PathKind::Portal, true, false).map_err(|e| e.to_string())?;
    ensure!(
        e.work_queue().path_kind() == PathKind::Portal,
        "portal with a kernel lacking write()"
    );
    Ok(())
}

/// Flag bits the emulator does not model (big-endian Huffman input, statistics mode) are
/// answered as invalid flags (0x30), never silently ignored. Emulator only: the device
/// supports them.
fn unmodelled_flags() -> CaseResult {
    use accel::raw::descriptor::{
        compr_flags, decompr_flags, CompressJob, DecompressJob, Descriptor,
    };
    let e = emu(WqMode::Dedicated, PathKind::Portal, 32)?;
    let mut ctx = accel::IaaContext::new(e.work_queue(), ContextConfig::default());
    let page = test_page(59);
    let (c, _) = ctx
        .run_raw(&page, |a| {
            let mut d = Descriptor::compress(&CompressJob {
                src: a.src,
                src_len: PAGE_SIZE as u32,
                dst: a.dst,
                max_dst: a.dst_cap,
                aecs: a.aecs,
                completion: a.record,
            });
            d.set_op_flags(d.op_flags() | compr_flags::STATS_MODE);
            d
        })
        .map_err(|e| e.to_string())?;
    ensure!(
        c.status() == accel::Status::InvalidCompFlag,
        "compress with STATS_MODE: {}",
        c.status()
    );
    let (c, _) = ctx
        .run_raw(&[0x03, 0x00], |a| {
            let mut d = Descriptor::decompress(&DecompressJob {
                src: a.src,
                src_len: 2,
                dst: a.dst,
                max_dst: a.dst_cap,
                completion: a.record,
            });
            d.set_op_flags(decompr_flags::KERNEL | decompr_flags::DECOMP_BE);
            d
        })
        .map_err(|e| e.to_string())?;
    ensure!(
        c.status() == accel::Status::InvalidCompFlag,
        "decompress with DECOMP_BE: {}",
        c.status()
    );
    Ok(())
}

fn unplugged() -> CaseResult {
    let e = emu(WqMode::Dedicated, PathKind::Write, 32)?;
    let mut c = codec(&e, Duration::from_millis(30));
    roundtrip_ok(&mut c, &test_page(41))?;
    e.unplug();
    let err = device_err(compress_one(&mut c, &test_page(41))?)?;
    ensure!(
        matches!(err, AccelError::DeviceGone { .. }),
        "expected DeviceGone, got {err}"
    );
    ensure!(err.is_device_gone(), "misclassified");
    Ok(())
}

fn verify_catches_corruption() -> CaseResult {
    let e = emu(WqMode::Dedicated, PathKind::Portal, 32)?;
    let page = test_page(43);
    let mut c = codec(&e, Duration::from_secs(2));
    e.faults().inject(Target::Compress, Fault::CorruptOutput, 1);
    let r = compress_one(&mut c, &page)?;
    ensure!(r.is_err(), "verify let corrupt output through: {r:?}");
    // With verification off the corruption is returned, and decoding shows it.
    c.context_mut().set_verify(false);
    e.faults().inject(Target::Compress, Fault::CorruptOutput, 1);
    let comp = compress_pages(&mut c, &[&page], DEFAULT_COMPRESS_LIMIT)?;
    let bytes = comp[0].0.clone().ok_or("incompressible")?;
    let mut lib = libdeflater::Decompressor::new();
    let mut out = vec![0u8; PAGE_SIZE];
    let same = lib.deflate_decompress(&bytes, &mut out).ok() == Some(PAGE_SIZE) && out == page;
    ensure!(!same, "injected corruption had no effect");
    Ok(())
}

fn misaligned(kind: PathKind) -> Result<(Emulator, Result<(), AccelError>, usize), String> {
    let e = emu(WqMode::Dedicated, kind, 32)?;
    let mut ctx = accel::IaaContext::new(
        e.work_queue(),
        ContextConfig {
            timeout: Duration::from_millis(30),
            drain_on_drop: Duration::from_millis(10),
            ..ContextConfig::default()
        },
    );
    let page = test_page(47);
    let r = ctx
        .run_raw(&page, |a| {
            accel::raw::descriptor::Descriptor::compress(&accel::raw::descriptor::CompressJob {
                src: a.src,
                src_len: PAGE_SIZE as u32,
                dst: a.dst,
                max_dst: a.dst_cap,
                aecs: a.aecs,
                completion: a.record + 8,
            })
        })
        .map(|_| ());
    let q = ctx.quarantined();
    Ok((e, r, q))
}

fn misaligned_record_write() -> CaseResult {
    let (e, r, q) = misaligned(PathKind::Write)?;
    match r {
        Err(AccelError::Rejected(io)) => {
            ensure!(
                io.raw_os_error() == Some(libc::EINVAL),
                "expected EINVAL, got {io}"
            )
        }
        other => return Err(format!("expected Rejected(EINVAL), got {other:?}")),
    }
    ensure!(q == 0, "a rejected descriptor must not quarantine its slot");
    ensure!(
        e.counters()
            .write_rejected
            .load(std::sync::atomic::Ordering::Acquire)
            == 1,
        "emulated kernel did not count the rejection"
    );
    Ok(())
}

fn misaligned_record_portal() -> CaseResult {
    let (e, r, q) = misaligned(PathKind::Portal)?;
    ensure!(
        matches!(r, Err(AccelError::DeviceUnresponsive { .. })),
        "expected no record (unresponsive), got {r:?}"
    );
    ensure!(
        q == 1,
        "slot of a descriptor without record must stay quarantined"
    );
    ensure!(
        e.counters()
            .no_record
            .load(std::sync::atomic::Ordering::Acquire)
            == 1,
        "emulator did not drop the record"
    );
    Ok(())
}
