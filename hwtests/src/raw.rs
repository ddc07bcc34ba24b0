//! Hand-built descriptors run on any device through `IaaContext::run_raw`: what the
//! device must answer in the record for bad ones, what `run_raw` must refuse before
//! submission, and that compression really follows the AECS the descriptor names.

use accel::context::SlotAddrs;
use accel::raw::aecs::{CompressAecs, OFF_OUTPUT_ACCUM};
use accel::raw::descriptor::{
    compr_flags, decompr_flags, flags, CompressJob, DecompressJob, Descriptor,
};
use accel::raw::huffman::fixed_ll_code;
use accel::{AccelError, IaaContext, Status};
use software_fallback::{crc32, PAGE_SIZE};

use crate::dut::Dut;
use crate::{ensure, CaseResult};

/// Descriptors the device must refuse in the completion record.
pub(crate) fn bad_descriptors(dut: &Dut) -> CaseResult {
    let _ = dut; // uses its own context
    let mut ctx = dut.context();
    let page = vec![7u8; PAGE_SIZE];
    let job = |a: &SlotAddrs| CompressJob {
        src: a.src,
        src_len: PAGE_SIZE as u32,
        dst: a.dst,
        max_dst: a.dst_cap,
        aecs: a.aecs,
        completion: a.record,
    };
    // Unsupported opcode.
    let (c, _) = ctx
        .run_raw(&page, |a| {
            let mut d = Descriptor::compress(&job(a));
            d.set_opcode(0x7f);
            d
        })
        .map_err(|e| format!("bad opcode: {e}"))?;
    ensure!(
        c.status() == Status::BadOpcode,
        "bad opcode: status {}",
        c.status()
    );
    // AECS not 32-byte aligned.
    let (c, _) = ctx
        .run_raw(&page, |a| {
            let mut d = Descriptor::compress(&job(a));
            // In bounds of the AECS, but not 32-byte aligned (size a multiple of 32).
            d.set_src2(a.aecs + 8, 1536);
            d
        })
        .map_err(|e| format!("misaligned AECS: {e}"))?;
    ensure!(
        c.status() == Status::AddrAlign,
        "misaligned AECS: status {}",
        c.status()
    );
    // A good one still works on the same context.
    let (c, out) = ctx
        .run_raw(&page, |a| Descriptor::compress(&job(a)))
        .map_err(|e| format!("good descriptor: {e}"))?;
    ensure!(
        c.status() == Status::Success && !out.is_empty(),
        "good descriptor: {c:?}"
    );
    // A no-op, built as QPL builds it (a zeroed descriptor, opcode NOOP, CRAV|RCR, the
    // record: `hw_queue.cpp:146-152`), writes only its record, with success.
    let (c, _) = ctx
        .run_raw(&page, |a| Descriptor::noop(a.record))
        .map_err(|e| format!("no-op: {e}"))?;
    ensure!(
        c.status() == Status::Success,
        "no-op: status {}",
        c.status()
    );
    // Descriptors that could make the device write outside the context are refused before
    // submission (so these are safe to try on hardware too).
    let foreign: [(&str, DescriptorEdit); 8] = [
        ("foreign destination", |_, d| {
            *d = Descriptor::compress(&CompressJob {
                dst: 0x1000,
                ..job_of(d)
            })
        }),
        ("foreign destination with max_dst_size 0", |_, d| {
            *d = Descriptor::compress(&CompressJob {
                dst: 0x1000,
                max_dst: 0,
                ..job_of(d)
            })
        }),
        ("destination running past the slot", |a, d| {
            d.set_max_dst_size(a.dst_cap + 64)
        }),
        ("MEMMOVE (writes src1_size bytes)", |_, d| {
            d.set_opcode(0x03)
        }),
        ("WR_SRC2_AECS_COMP onto the shared AECS", |_, d| {
            d.set_flags(d.flags() | flags::WR_SRC2_AECS_COMP)
        }),
        (
            "AECS_SEL (reads the AECS at src2 + src2_size, past the checked range)",
            |_, d| d.set_flags(d.flags() | flags::AECS_SEL),
        ),
        (
            "destination over the completion record (output would read as done)",
            |a, d| {
                *d = Descriptor::compress(&CompressJob {
                    dst: a.record,
                    max_dst: 64,
                    ..job_of(d)
                })
            },
        ),
        (
            "completion record in the destination (never polled)",
            |a, d| d.set_completion_addr(a.dst),
        ),
    ];
    for (what, edit) in foreign {
        let r = ctx.run_raw(&page, |a| {
            let mut d = Descriptor::compress(&job(a));
            edit(a, &mut d);
            d
        });
        ensure!(
            matches!(r, Err(AccelError::RawDescriptorRefused { .. })),
            "{what}: not refused before submission: {r:?}"
        );
    }
    ensure!(ctx.quarantined() == 0, "a refused descriptor took a slot");
    Ok(())
}

/// A change made to a good descriptor, given its slot's addresses.
type DescriptorEdit = fn(&SlotAddrs, &mut Descriptor);

/// The job a compress descriptor was built from (to rebuild it with one field changed).
fn job_of(d: &Descriptor) -> CompressJob {
    CompressJob {
        src: d.src1_addr(),
        src_len: d.src1_size(),
        dst: d.dst_addr(),
        max_dst: d.max_dst_size(),
        aecs: d.src2_addr(),
        completion: d.completion_addr(),
    }
}

/// The device encodes with the Huffman codes and header bits of the AECS the descriptor
/// names, not with built-in tables: a copy of the fixed AECS with the codes of two literals
/// swapped makes a standard decoder read those literals swapped, and an output accumulator
/// holding BFINAL=0 starts the stream with BFINAL=0.
pub(crate) fn descriptor_aecs(dut: &Dut) -> CaseResult {
    let mut ctx = dut.context();
    let page: Vec<u8> = (0..PAGE_SIZE)
        .map(|i| {
            if i % 7 < 3 {
                b'a'
            } else {
                b'b' + (i % 5) as u8
            }
        })
        .collect();
    let standard = compress_with_aecs(&mut ctx, &page, &CompressAecs::fixed())?;
    let mut swapped = CompressAecs::fixed();
    swapped.set_ll(usize::from(b'a'), fixed_ll_code(u16::from(b'b')));
    swapped.set_ll(usize::from(b'b'), fixed_ll_code(u16::from(b'a')));
    let out = compress_with_aecs(&mut ctx, &page, &swapped)?;
    ensure!(
        out != standard,
        "a changed AECS table did not change the output"
    );
    let mut lib = libdeflater::Decompressor::new();
    let mut back = vec![0u8; PAGE_SIZE];
    let n = lib
        .deflate_decompress(&out, &mut back)
        .map_err(|e| format!("swapped-table output is not DEFLATE: {e:?}"))?;
    let want: Vec<u8> = page
        .iter()
        .map(|&b| match b {
            b'a' => b'b',
            b'b' => b'a',
            o => o,
        })
        .collect();
    ensure!(
        n == PAGE_SIZE && back == want,
        "swapped-table output does not decode to the swapped page"
    );
    let mut bytes = *CompressAecs::fixed().as_bytes();
    bytes[OFF_OUTPUT_ACCUM] = 0b010; // BFINAL=0, BTYPE=01
    let out = compress_with_aecs(&mut ctx, &page, &CompressAecs::from_bytes(bytes))?;
    ensure!(
        out.first().map(|b| b & 0b111) == Some(0b010),
        "header bits do not come from the AECS output accumulator"
    );
    Ok(())
}

/// Compresses `page` with `aecs`, both copied into a slot's source buffer (the AECS at
/// offset 4096, so 32-byte aligned), through a hand-built kernel-style descriptor.
fn compress_with_aecs(
    ctx: &mut IaaContext,
    page: &[u8],
    aecs: &CompressAecs,
) -> Result<Vec<u8>, String> {
    let mut input = page.to_vec();
    input.extend_from_slice(aecs.as_bytes());
    let (c, out) = ctx
        .run_raw(&input, |a| {
            Descriptor::compress(&CompressJob {
                src: a.src,
                src_len: PAGE_SIZE as u32,
                dst: a.dst,
                max_dst: (PAGE_SIZE - 1) as u32,
                aecs: a.src + PAGE_SIZE as u64,
                completion: a.record,
            })
        })
        .map_err(|e| format!("compress with a caller AECS: {e}"))?;
    ensure!(c.status() == Status::Success, "status {}", c.status());
    ensure!(c.crc == crc32(page), "CRC is not the page's");
    ensure!(
        out.len() == c.output_size as usize && !out.is_empty(),
        "output size {}",
        c.output_size
    );
    Ok(out)
}

/// The AECS is checked as the hardware checks it: its address and size must be multiples
/// of 32 (else status 0x1c: QPL `hw_status.h:55`), not exactly 1568 bytes; its `crc` field
/// seeds the CRC (QPL `hw_aecs_api.h:104`).
pub(crate) fn aecs_size_and_crc_seed(dut: &Dut) -> CaseResult {
    let mut ctx = dut.context();
    let page = sample_page();
    for (size, want) in [
        (1568u32, Status::Success),
        (1600, Status::Success),
        (1570, Status::AddrAlign),
    ] {
        let (c, _) = compress_with(&mut ctx, &page, &CompressAecs::fixed(), size, |_| {})?;
        ensure!(
            c.status() == want,
            "AECS of {size} bytes: status {}, want {want}",
            c.status()
        );
    }
    let prefix = b"bytes that came before this page";
    let mut seeded = CompressAecs::fixed();
    seeded.set_crc_seed(crc32(prefix));
    let (c, _) = compress_with(&mut ctx, &page, &seeded, 1568, |_| {})?;
    let whole: Vec<u8> = prefix.iter().chain(page.iter()).copied().collect();
    ensure!(
        c.status() == Status::Success && c.crc == crc32(&whole),
        "AECS CRC seed not honoured: CRC 0x{:08x}, want 0x{:08x}",
        c.crc,
        crc32(&whole)
    );
    Ok(())
}

/// Compression flag bits 3:2 are one end-processing field (QPL `ADCF_END_PROC`,
/// `own_hw_definitions.h:90`; values at lines 53-55): with the block header BFINAL=0, value
/// 3 ends the stream with an empty final stored block, so a standard decoder accepts it,
/// while value 1 leaves the stream without a final block.
pub(crate) fn end_processing_field(dut: &Dut) -> CaseResult {
    let mut ctx = dut.context();
    let page = sample_page();
    let mut bytes = *CompressAecs::fixed().as_bytes();
    bytes[OFF_OUTPUT_ACCUM] = 0b010; // BFINAL=0, BTYPE=01
    let open = CompressAecs::from_bytes(bytes);
    let mut lib = libdeflater::Decompressor::new();
    let mut back = vec![0u8; PAGE_SIZE];
    let set_end = |end: u16| {
        move |d: &mut Descriptor| {
            d.set_op_flags((d.op_flags() & !compr_flags::END_PROC_MASK) | end);
        }
    };
    let (c, out) = compress_with(
        &mut ctx,
        &page,
        &open,
        1568,
        set_end(compr_flags::APPEND_EOB_FINAL_STORED),
    )?;
    ensure!(c.status() == Status::Success, "END_PROC 3: {}", c.status());
    ensure!(
        out.ends_with(&[0x00, 0x00, 0xff, 0xff]),
        "END_PROC 3 does not end with an empty stored block"
    );
    let n = lib
        .deflate_decompress(&out, &mut back)
        .map_err(|e| format!("END_PROC 3 output is not a whole DEFLATE stream: {e:?}"))?;
    ensure!(n == PAGE_SIZE && back == page, "END_PROC 3 decodes wrong");
    let (c, out) = compress_with(
        &mut ctx,
        &page,
        &open,
        1568,
        set_end(compr_flags::APPEND_EOB),
    )?;
    ensure!(c.status() == Status::Success, "END_PROC 1: {}", c.status());
    ensure!(
        lib.deflate_decompress(&out, &mut back).is_err(),
        "END_PROC 1 with BFINAL=0 should leave the stream unfinished"
    );
    Ok(())
}

/// Every decompression stop/check rule QPL sends (`hw_decompress_descriptor.c:16-25`,
/// SELECT_BFINAL_EOB included) is accepted and decodes a one-block page.
pub(crate) fn qpl_decompress_flag_rules(dut: &Dut) -> CaseResult {
    let mut ctx = dut.context();
    let page = sample_page();
    let (c, compressed) = compress_with(&mut ctx, &page, &CompressAecs::fixed(), 1568, |_| {})?;
    ensure!(c.status() == Status::Success, "compress: {}", c.status());
    for rule in decompr_flags::QPL_STOP_CHECK_RULES {
        let flags = decompr_flags::ENABLE | decompr_flags::FLUSH_OUTPUT | rule;
        let (c, out) = ctx
            .run_raw(&compressed, |a| {
                let mut d = Descriptor::decompress(&DecompressJob {
                    src: a.src,
                    src_len: compressed.len() as u32,
                    dst: a.dst,
                    max_dst: a.dst_cap,
                    completion: a.record,
                });
                d.set_op_flags(flags);
                d
            })
            .map_err(|e| format!("decompress flags 0x{flags:04x}: {e}"))?;
        ensure!(
            c.status() == Status::Success && out == page,
            "decompress flags 0x{flags:04x}: status {}, {} bytes",
            c.status(),
            out.len()
        );
    }
    Ok(())
}

fn sample_page() -> Vec<u8> {
    (0..PAGE_SIZE)
        .map(|i| if i % 11 < 4 { b'x' } else { (i % 13) as u8 })
        .collect()
}

/// Compresses `page` with `aecs` (copied into the slot after the page, so 32-byte aligned)
/// declared as `aecs_size` bytes, the descriptor changed by `edit`.
fn compress_with(
    ctx: &mut IaaContext,
    page: &[u8],
    aecs: &CompressAecs,
    aecs_size: u32,
    edit: impl FnOnce(&mut Descriptor),
) -> Result<(accel::raw::completion::Completion, Vec<u8>), String> {
    let mut input = page.to_vec();
    input.extend_from_slice(aecs.as_bytes());
    input.resize(PAGE_SIZE + aecs_size.max(1568) as usize, 0);
    ctx.run_raw(&input, |a| {
        let mut d = Descriptor::compress(&CompressJob {
            src: a.src,
            src_len: PAGE_SIZE as u32,
            dst: a.dst,
            max_dst: (PAGE_SIZE - 1) as u32,
            aecs: a.src + PAGE_SIZE as u64,
            completion: a.record,
        });
        d.set_src2(a.src + PAGE_SIZE as u64, aecs_size);
        edit(&mut d);
        d
    })
    .map_err(|e| format!("compress with a caller AECS of {aecs_size} bytes: {e}"))
}
