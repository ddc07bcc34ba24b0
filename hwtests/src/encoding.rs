//! Byte-level encodings checked against expected bytes written by hand from the documented
//! field offsets (`linux/idxd.h` for `struct iax_hw_desc` / `struct iax_completion_record`,
//! `drivers/crypto/intel/iaa/iaa_crypto.h` for the AECS and the IAA flag bits). Nothing here
//! is derived from `idxd-sys`.

use accel::raw::aecs::CompressAecs;
use accel::raw::completion::Completion;
use accel::raw::descriptor::{CompressJob, DecompressJob, Descriptor};
use accel::Status;

use crate::{ensure, CaseResult};

/// An encoding case.
pub type EncodingCase = fn() -> CaseResult;

fn diff(got: &[u8], want: &[u8]) -> String {
    let mut s = String::new();
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g != w {
            s.push_str(&format!("byte {i}: got 0x{g:02x}, want 0x{w:02x}; "));
        }
    }
    s
}

/// The kernel's fixed-mode compress descriptor.
pub fn compress_descriptor() -> CaseResult {
    let d = Descriptor::compress(&CompressJob {
        src: 0x0000_7f00_0000_1000,
        src_len: 4096,
        dst: 0x0000_7f00_0000_3000,
        max_dst: 4095,
        aecs: 0x0000_7f00_0000_5020,
        completion: 0x1111_2222_3333_4440,
    });
    #[rustfmt::skip]
    let want: [u8; 64] = [
        // 0: pasid:20 rsvd:11 priv:1 = 0
        0x00, 0x00, 0x00, 0x00,
        // 4: flags:24 = CRAV 0x4 | RCR 0x8 | CC 0x100 | RD_SRC2_AECS 0x10000; 7: opcode 0x43
        0x0c, 0x01, 0x01, 0x43,
        // 8: completion_addr
        0x40, 0x44, 0x33, 0x33, 0x22, 0x22, 0x11, 0x11,
        // 16: src1_addr
        0x00, 0x10, 0x00, 0x00, 0x00, 0x7f, 0x00, 0x00,
        // 24: dst_addr
        0x00, 0x30, 0x00, 0x00, 0x00, 0x7f, 0x00, 0x00,
        // 32: src1_size = 4096
        0x00, 0x10, 0x00, 0x00,
        // 36: int_handle
        0x00, 0x00,
        // 38: compr_flags = FLUSH_OUTPUT BIT(1) | APPEND_EOB BIT(2)
        0x06, 0x00,
        // 40: src2_addr (AECS)
        0x20, 0x50, 0x00, 0x00, 0x00, 0x7f, 0x00, 0x00,
        // 48: max_dst_size = 4095
        0xff, 0x0f, 0x00, 0x00,
        // 52: src2_size = 1568
        0x20, 0x06, 0x00, 0x00,
        // 56: filter_flags, 60: num_inputs
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    ensure!(
        d.as_bytes() == &want,
        "compress descriptor: {}",
        diff(d.as_bytes(), &want)
    );
    ensure!(
        std::mem::align_of::<Descriptor>() == 64,
        "descriptor must be 64-byte aligned"
    );
    Ok(())
}

/// The kernel's decompress descriptor, and the verify (suppressed-output) variant.
pub fn decompress_descriptors() -> CaseResult {
    let job = DecompressJob {
        src: 0x0000_5555_0000_2000,
        src_len: 1234,
        dst: 0x0000_5555_0000_4000,
        max_dst: 4096,
        completion: 0x0000_5555_0000_0040,
    };
    #[rustfmt::skip]
    let mut want: [u8; 64] = [
        0x00, 0x00, 0x00, 0x00,
        // flags CRAV|RCR|CC = 0x10c; opcode 0x42
        0x0c, 0x01, 0x00, 0x42,
        0x40, 0x00, 0x00, 0x00, 0x55, 0x55, 0x00, 0x00,
        0x00, 0x20, 0x00, 0x00, 0x55, 0x55, 0x00, 0x00,
        0x00, 0x40, 0x00, 0x00, 0x55, 0x55, 0x00, 0x00,
        // src1_size 1234 = 0x4d2
        0xd2, 0x04, 0x00, 0x00,
        0x00, 0x00,
        // decompr_flags ENABLE|FLUSH_OUTPUT|CHECK_FOR_EOB|STOP_ON_EOB = 0x000f
        0x0f, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        // max_dst_size 4096
        0x00, 0x10, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    let d = Descriptor::decompress(&job);
    ensure!(
        d.as_bytes() == &want,
        "decompress descriptor: {}",
        diff(d.as_bytes(), &want)
    );
    // Verify: SUPPRESS_OUTPUT = BIT(9) added to the decompression flags.
    want[39] = 0x02;
    let v = Descriptor::verify(&job);
    ensure!(
        v.as_bytes() == &want,
        "verify descriptor: {}",
        diff(v.as_bytes(), &want)
    );
    // And back: the emulator's view of the bytes.
    let back = Descriptor::from_bytes(&want);
    ensure!(
        back.opcode() == 0x42 && back.op_flags() == 0x020f,
        "from_bytes: {back:?}"
    );
    ensure!(
        back.src1_size() == 1234 && back.max_dst_size() == 4096,
        "from_bytes sizes"
    );
    Ok(())
}

/// Completion record fields at their documented offsets.
pub fn completion_record() -> CaseResult {
    let mut b = [0u8; 64];
    // Status 0x03 (page fault, block-on-fault off) with the write bit 0x80: QPL
    // `hw_status.h:63` `AD_STATUS_WRITE_PAGE_FAULT` = 3 + 128.
    b[0] = 0x83;
    b[1] = 0x19; // error_code
    b[4..8].copy_from_slice(&[0x78, 0x56, 0x34, 0x12]); // bytes_completed
    b[8..16].copy_from_slice(&[0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01]); // fault_addr
    b[16..20].copy_from_slice(&[0x01, 0x02, 0x03, 0x00]); // invalid_flags
    b[24..28].copy_from_slice(&[0xff, 0x0f, 0x00, 0x00]); // output_size
    b[28] = 3; // output_bits
    b[32..36].copy_from_slice(&[0xef, 0xbe, 0xad, 0xde]); // crc
    let c = Completion::from_bytes(&b);
    ensure!(
        c.status() == Status::PageFault && c.fault_was_write(),
        "status: {c:?}"
    );
    ensure!(c.error_code == 0x19, "error_code: {c:?}");
    // The read fault is 0x03 without the bit; 0x04 (`IAX_COMP_PAGE_FAULT_IR`) is another
    // status, never decoded as the touch-and-resubmit page fault.
    ensure!(
        Status::from_byte(0x03) == Status::PageFault,
        "0x03 must decode as the page fault"
    );
    ensure!(
        Status::from_byte(0x04) != Status::PageFault
            && Status::from_byte(0x84) != Status::PageFault,
        "0x04/0x84 must not decode as the touch-and-resubmit page fault"
    );
    ensure!(c.bytes_completed == 0x1234_5678, "bytes_completed: {c:?}");
    ensure!(c.fault_addr == 0x0102_0304_0506_0708, "fault_addr: {c:?}");
    ensure!(c.invalid_flags == 0x03_0201, "invalid_flags: {c:?}");
    ensure!(c.output_size == 4095 && c.output_bits == 3, "output: {c:?}");
    ensure!(c.crc == 0xdead_beef, "crc: {c:?}");
    ensure!(c.to_bytes() == b, "to_bytes: {}", diff(&c.to_bytes(), &b));
    Ok(())
}

/// The fixed-mode AECS against `struct aecs_comp_table_record` and the kernel's table.
pub fn aecs_layout() -> CaseResult {
    let a = CompressAecs::fixed();
    let b = a.as_bytes();
    ensure!(b.len() == 1568, "AECS size {}", b.len());
    ensure!(std::mem::align_of::<CompressAecs>() >= 32, "AECS alignment");
    ensure!(b[0..28] == [0u8; 28], "crc/xor/reserved0 must be zero");
    ensure!(
        b[28..32] == [3, 0, 0, 0],
        "num_output_accum_bits at 28: {:?}",
        &b[28..32]
    );
    ensure!(
        b[32] == 0b011,
        "output_accum[0] = BFINAL=1, BTYPE=01: 0x{:02x}",
        b[32]
    );
    // ll_sym at 288, 4 bytes each: 0x40030 (lit 0), 0x48190 (lit 144), 0x38000 (EOB),
    // 0x400c5 (sym 285); d_sym at 1440: 0x28000, 0x2801d (dist 29).
    ensure!(b[288..292] == [0x30, 0x00, 0x04, 0x00], "ll_sym[0]");
    ensure!(b[864..868] == [0x90, 0x81, 0x04, 0x00], "ll_sym[144]");
    ensure!(b[1312..1316] == [0x00, 0x80, 0x03, 0x00], "ll_sym[256]");
    ensure!(b[1428..1432] == [0xc5, 0x00, 0x04, 0x00], "ll_sym[285]");
    ensure!(b[1432..1440] == [0u8; 8], "reserved1/2");
    ensure!(b[1440..1444] == [0x00, 0x80, 0x02, 0x00], "d_sym[0]");
    ensure!(b[1556..1560] == [0x1d, 0x80, 0x02, 0x00], "d_sym[29]");
    ensure!(b[1560..1568] == [0u8; 8], "padding");
    Ok(())
}

/// MOVDIR64B (the dedicated-portal instruction) writes exactly the descriptor's 64 bytes.
pub fn movdir64b() -> CaseResult {
    let src = Descriptor::compress(&CompressJob {
        src: 0x1000,
        src_len: 4096,
        dst: 0x2000,
        max_dst: 4095,
        aecs: 0x3000,
        completion: 0x4000,
    });
    let mut dst = Descriptor::zeroed();
    ensure!(
        accel::raw::portal::movdir64b_to_memory(&mut dst, &src),
        "CPU lacks MOVDIR64B"
    );
    ensure!(
        dst.as_bytes() == src.as_bytes(),
        "{}",
        diff(dst.as_bytes(), src.as_bytes())
    );
    Ok(())
}
