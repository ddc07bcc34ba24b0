//! The emulator's engines: threads that take accepted descriptors off the emulated queue,
//! validate them as the device does, execute them, and write completion records
//! asynchronously (status byte last, with release ordering: completion.rs).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::faults::{Fault, Target};
use super::{crc, deflate, inflate, mem, Shared};
use crate::raw::aecs::{CompressAecs, AECS_ALIGN, AECS_COMP_SIZE};
use crate::raw::completion::{Completion, COMPLETION_ALIGN};
use crate::raw::descriptor::{compr_flags, decompr_flags, flags, opcode, Descriptor};
use crate::status::{error_code as ec, Status, STATUS_FAULT_WRITE};

/// Engine thread body: runs until the emulator stops.
pub(crate) fn run(shared: Arc<Shared>) {
    while let Some(d) = shared.next_descriptor() {
        execute(&shared, &d);
        shared.occupancy.fetch_sub(1, Ordering::AcqRel);
    }
}

fn status(s: Status) -> Completion {
    Completion {
        status_byte: s.code(),
        ..Default::default()
    }
}

fn analytics(code: u8) -> Completion {
    Completion {
        status_byte: Status::AnalyticsError.code(),
        error_code: code,
        ..Default::default()
    }
}

/// Executes one descriptor and writes its record (unless the hardware would not).
fn execute(shared: &Shared, d: &Descriptor) {
    if shared.unplugged.load(Ordering::Acquire) {
        return; // a device that is gone completes nothing
    }
    let cr = d.completion_addr();
    // Without a valid, aligned completion address the device has nowhere to report: the
    // descriptor produces no record at all (its error goes to the device's SWERR log).
    if d.flags() & flags::CRAV == 0 || cr % COMPLETION_ALIGN as u64 != 0 || cr == 0 {
        shared.counters.no_record.fetch_add(1, Ordering::AcqRel);
        tracing::debug!("emulator: descriptor without a usable completion record dropped");
        return;
    }
    let kind = match (
        d.opcode(),
        d.op_flags() & decompr_flags::SUPPRESS_OUTPUT != 0,
    ) {
        (opcode::COMPRESS, _) => Target::Compress,
        (_, true) => Target::Verify,
        _ => Target::Decompress,
    };
    let mut corrupt = false;
    let mut late = None;
    if let Some(f) = shared.faults.take(kind) {
        tracing::debug!(?f, "emulator: injecting fault");
        let rec = match f {
            Fault::Lose => return,
            Fault::SlowCompletion(t) => {
                late = Some(t);
                None
            }
            Fault::CorruptOutput => {
                corrupt = true;
                None
            }
            Fault::Watchdog => Some(status(Status::Watchdog)),
            Fault::HardwareError => Some(status(Status::HwError1)),
            Fault::OutputOverflow => Some(status(Status::OutputOverflow)),
            Fault::PageFaultIr => Some(Completion {
                status_byte: Status::PageFaultIr.code(),
                fault_addr: d.src1_addr(),
                ..Default::default()
            }),
            Fault::PageFault { write } => {
                let (base, size) = if write {
                    (d.dst_addr(), d.max_dst_size())
                } else {
                    (d.src1_addr(), d.src1_size())
                };
                let off = size / 2;
                Some(Completion {
                    status_byte: Status::PageFault.code()
                        | if write { STATUS_FAULT_WRITE } else { 0 },
                    bytes_completed: if write { 0 } else { off },
                    fault_addr: base + u64::from(off),
                    ..Default::default()
                })
            }
        };
        if let Some(rec) = rec {
            finish(shared, cr, &rec);
            return;
        }
    }
    // Sources are read now; the destination and the record are written after any delay,
    // as a device that read its input long ago may still be writing its output.
    let (rec, out) = match d.opcode() {
        opcode::COMPRESS => compress(shared, d, corrupt),
        opcode::DECOMPRESS => decompress(shared, d),
        opcode::NOOP => (status(Status::Success), None),
        _ => (status(Status::BadOpcode), None),
    };
    if let Some(t) = late {
        std::thread::sleep(t);
    }
    if let Some(bytes) = out {
        // SAFETY: submission contract: dst is writable for max_dst_size bytes until the
        // record's status is set, and `compress`/`decompress` return at most that many.
        unsafe { mem::write(d.dst_addr(), &bytes) };
    }
    finish(shared, cr, &rec);
}

fn finish(shared: &Shared, cr: u64, rec: &Completion) {
    // SAFETY: `cr` is non-zero and 64-byte aligned (checked in `execute`) and, by the
    // submission contract (wq.rs), names a 64-byte record that only the device writes until
    // its status is set — which this call does, last.
    unsafe { mem::write_record(cr, rec) };
    shared.counters.completed.fetch_add(1, Ordering::AcqRel);
}

fn check_sizes(shared: &Shared, d: &Descriptor) -> Option<Completion> {
    if d.src1_size() == 0 || d.src1_size() > shared.max_transfer || d.max_dst_size() == 0 {
        return Some(status(Status::InvalidSize));
    }
    None
}

/// A compress descriptor's record and the bytes to write at its destination.
fn compress(shared: &Shared, d: &Descriptor, corrupt: bool) -> (Completion, Option<Vec<u8>>) {
    // Modelled: FLUSH_OUTPUT and the two-bit END_PROC field (QPL `ADCF_END_PROC`,
    // `own_hw_definitions.h:90`). Anything else (statistics mode, header generation, …)
    // is not modelled and answered as invalid flags.
    let known = compr_flags::FLUSH_OUTPUT | compr_flags::END_PROC_MASK;
    if d.op_flags() & !known != 0 {
        return (status(Status::InvalidCompFlag), None);
    }
    if d.flags() & flags::RD_SRC2_AECS == 0 {
        let rec = Completion {
            invalid_flags: flags::RD_SRC2_AECS,
            ..status(Status::InvalidFlags)
        };
        return (rec, None);
    }
    // "The AECS address or size was not a multiple of 32 bytes" is status 0x1c (QPL
    // `hw_status.h:55`, `AD_STATUS_MISALIGNED_ADDRESS`). The device reads at most the
    // 1568-byte compress AECS (`HW_AECS_COMPRESS_WITH_HT` = 0x620, `hw_aecs_api.h:52`);
    // a shorter one leaves the rest of the tables zero (no code: `INVALID_HUFFCODE`).
    if d.src2_addr() % AECS_ALIGN as u64 != 0 || d.src2_size() % AECS_ALIGN as u32 != 0 {
        return (status(Status::AddrAlign), None);
    }
    if let Some(bad) = check_sizes(shared, d) {
        return (bad, None);
    }
    let aecs_len = (d.src2_size() as usize).min(AECS_COMP_SIZE);
    // SAFETY: submission contract: src1 (src1_size bytes) and src2 (src2_size bytes, of
    // which at most 1568 are read) are readable until completion.
    let (src, aecs_bytes) = unsafe {
        (
            mem::read(d.src1_addr(), d.src1_size() as usize),
            mem::read(d.src2_addr(), aecs_len),
        )
    };
    let mut aecs_arr = [0u8; AECS_COMP_SIZE];
    aecs_arr[..aecs_len].copy_from_slice(&aecs_bytes);
    let aecs = CompressAecs::from_bytes(aecs_arr);
    let end = deflate::EndProc::from_field(d.op_flags() >> compr_flags::END_PROC_SHIFT);
    let flush = d.op_flags() & compr_flags::FLUSH_OUTPUT != 0;
    match deflate::compress(&src, &aecs, d.max_dst_size() as usize, end, flush) {
        Ok(mut enc) => {
            if corrupt && !enc.bytes.is_empty() {
                let mid = enc.bytes.len() / 2;
                enc.bytes[mid] ^= 0x10;
            }
            let rec = Completion {
                status_byte: Status::Success.code(),
                output_size: enc.bytes.len() as u32,
                output_bits: enc.last_bits,
                // The AECS `crc` is the initial CRC on input (QPL `hw_aecs_api.h:104`:
                // "Initial (on input) or final (on output) CRC Checksum value").
                crc: crc::crc32_continue(aecs.crc_seed(), &src),
                ..Default::default()
            };
            // The encoder never produces more than max_dst_size bytes.
            (rec, Some(enc.bytes))
        }
        Err(deflate::EncodeError::Overflow) => (analytics(ec::COMP_BUF_OVERFLOW), None),
        Err(deflate::EncodeError::MissingCode) => (analytics(ec::INVALID_HUFFCODE), None),
        Err(deflate::EncodeError::BadAccumulator) => (analytics(ec::AECS_ERROR), None),
    }
}

/// A decompress descriptor's record and the bytes to write at its destination.
fn decompress(shared: &Shared, d: &Descriptor) -> (Completion, Option<Vec<u8>>) {
    let f = d.op_flags();
    // Modelled: every bit QPL sets on a DEFLATE decompress of one stream
    // (`hw_decompress_descriptor.c`: ENABLE, FLUSH_OUTPUT, the stop/check rules of its
    // table, lines 16-25, with SEL_BFINAL_EOB; IGNORE_END_BITS; SUPPRESS_OUTPUT for
    // verification). Big-endian Huffman input and indexing are not: invalid flags here.
    let known = decompr_flags::ENABLE
        | decompr_flags::FLUSH_OUTPUT
        | decompr_flags::STOP_ON_EOB
        | decompr_flags::CHECK_FOR_EOB
        | decompr_flags::SEL_BFINAL_EOB
        | decompr_flags::IGNORE_END_BITS_MASK
        | decompr_flags::SUPPRESS_OUTPUT;
    if f & !known != 0 || f & decompr_flags::ENABLE == 0 {
        return (status(Status::InvalidCompFlag), None);
    }
    if let Some(bad) = check_sizes(shared, d) {
        return (bad, None);
    }
    // SAFETY: submission contract: src1 is readable for src1_size bytes until completion.
    let src = unsafe { mem::read(d.src1_addr(), d.src1_size() as usize) };
    let mode = inflate::InflateMode {
        stop_on_eob: f & decompr_flags::STOP_ON_EOB != 0,
        check_for_eob: f & decompr_flags::CHECK_FOR_EOB != 0,
        bfinal_only: f & decompr_flags::SEL_BFINAL_EOB != 0,
        ignore_end_bits: ((f & decompr_flags::IGNORE_END_BITS_MASK)
            >> decompr_flags::IGNORE_END_BITS_SHIFT) as u8,
    };
    match inflate::inflate(&src, d.max_dst_size() as usize, mode) {
        Ok(out) => {
            let suppress = f & decompr_flags::SUPPRESS_OUTPUT != 0;
            let rec = Completion {
                status_byte: Status::Success.code(),
                output_size: if suppress { 0 } else { out.len() as u32 },
                bytes_completed: d.src1_size(),
                crc: crc::crc32(&out),
                ..Default::default()
            };
            // `inflate` never returns more than max_dst_size bytes.
            (rec, (!suppress).then_some(out))
        }
        Err(inflate::InflateError::Overflow) => (status(Status::OutputOverflow), None),
        Err(inflate::InflateError::Analytics(code)) => (analytics(code), None),
    }
}
