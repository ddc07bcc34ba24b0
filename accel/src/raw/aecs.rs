//! The Analytics Engine Configuration and State (AECS) record read by a compress descriptor.
//!
//! Layout: `struct aecs_comp_table_record` in the kernel driver,
//! `drivers/crypto/intel/iaa/iaa_crypto.h` (1568 bytes, packed, little-endian):
//!
//! | offset | size      | field                    |
//! |-------:|----------:|--------------------------|
//! |      0 |         4 | crc                      |
//! |      4 |         4 | xor_checksum             |
//! |      8 |        20 | reserved0\[5\]           |
//! |     28 |         4 | num_output_accum_bits    |
//! |     32 |       256 | output_accum\[256\]      |
//! |    288 | 286 × 4   | ll_sym\[286\]            |
//! |   1432 |         8 | reserved1, reserved2     |
//! |   1440 |  30 × 4   | d_sym\[30\]              |
//! |   1560 |         8 | reserved_padding\[2\]    |
//!
//! It must be 32-byte aligned (`IAA_AECS_ALIGN` in the same header; status 0x1c otherwise).
//! Each `ll_sym`/`d_sym` entry holds a Huffman code as `(length << 15) | code`, code MSB
//! first: the kernel's fixed table (`iaa_crypto_comp_fixed.c`) has `0x40030` for literal 0
//! (8 bits, 0x30), `0x48190` for literal 144, `0x38000` for end-of-block and `0x28000` for
//! distance 0. The "fixed" mode starts the output with the 3 header bits BFINAL=1, BTYPE=01
//! (`FIXED_HDR | bfinal` = 0b011 with `num_output_accum_bits` = 3, `init_fixed_mode()`).

use crate::raw::huffman::{fixed_d_code, fixed_ll_code, HuffCode, D_SYMBOLS, LL_SYMBOLS};

/// Size of the compress AECS in bytes.
pub const AECS_COMP_SIZE: usize = 1568;
/// Required alignment of the AECS.
pub const AECS_ALIGN: usize = 32;
/// Offset of `num_output_accum_bits`.
pub const OFF_NUM_OUTPUT_ACCUM_BITS: usize = 28;
/// Offset of `output_accum`.
pub const OFF_OUTPUT_ACCUM: usize = 32;
/// Size of `output_accum` in bytes.
pub const OUTPUT_ACCUM_BYTES: usize = 256;
/// Offset of `ll_sym`.
pub const OFF_LL_SYM: usize = 288;
/// Offset of `d_sym`.
pub const OFF_D_SYM: usize = 1440;
/// Bit position of the code length inside a table entry.
pub const ENTRY_LEN_SHIFT: u32 = 15;
/// Mask of the code value inside a table entry.
pub const ENTRY_CODE_MASK: u32 = (1 << ENTRY_LEN_SHIFT) - 1;

/// The 3 header bits of a final fixed-Huffman block: BFINAL=1, then BTYPE=01 (LSB first).
pub const FIXED_FINAL_HEADER: u8 = 0b011;
/// Number of header bits.
pub const FIXED_HEADER_BITS: u32 = 3;

/// A compress AECS, aligned as the device requires.
#[derive(Clone)]
#[repr(C, align(32))]
pub struct CompressAecs {
    bytes: [u8; AECS_COMP_SIZE],
}

const _: () = assert!(std::mem::size_of::<CompressAecs>() == AECS_COMP_SIZE);
const _: () = assert!(std::mem::align_of::<CompressAecs>() == AECS_ALIGN);

impl CompressAecs {
    /// The "fixed" mode AECS, as the kernel's `init_fixed_mode()` sets it up: RFC 1951's
    /// fixed codes, output accumulator holding the final-fixed-block header.
    pub fn fixed() -> Box<CompressAecs> {
        let mut a = Box::new(CompressAecs {
            bytes: [0; AECS_COMP_SIZE],
        });
        for sym in 0..LL_SYMBOLS {
            a.set_ll(sym, fixed_ll_code(sym as u16));
        }
        for sym in 0..D_SYMBOLS {
            a.set_d(sym, fixed_d_code(sym as u16));
        }
        a.bytes[OFF_OUTPUT_ACCUM] = FIXED_FINAL_HEADER;
        a.put_u32(OFF_NUM_OUTPUT_ACCUM_BITS, FIXED_HEADER_BITS);
        a
    }

    /// Builds an AECS from raw bytes (as the emulator reads it from device memory).
    pub fn from_bytes(bytes: [u8; AECS_COMP_SIZE]) -> CompressAecs {
        CompressAecs { bytes }
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; AECS_COMP_SIZE] {
        &self.bytes
    }

    fn put_u32(&mut self, off: usize, v: u32) {
        self.bytes[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn get_u32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.bytes[off..off + 4]);
        u32::from_le_bytes(b)
    }

    /// Sets the literal/length code of `sym` (< 286).
    pub fn set_ll(&mut self, sym: usize, code: HuffCode) {
        self.put_u32(OFF_LL_SYM + 4 * sym, encode_entry(code));
    }

    /// Sets the distance code of `sym` (< 30).
    pub fn set_d(&mut self, sym: usize, code: HuffCode) {
        self.put_u32(OFF_D_SYM + 4 * sym, encode_entry(code));
    }

    /// The raw 32-bit literal/length table entry of `sym`.
    pub fn ll_entry(&self, sym: usize) -> u32 {
        self.get_u32(OFF_LL_SYM + 4 * sym)
    }

    /// The raw 32-bit distance table entry of `sym`.
    pub fn d_entry(&self, sym: usize) -> u32 {
        self.get_u32(OFF_D_SYM + 4 * sym)
    }

    /// The literal/length code of `sym`, `None` if the entry has length 0.
    pub fn ll_code(&self, sym: usize) -> Option<HuffCode> {
        decode_entry(self.ll_entry(sym))
    }

    /// The distance code of `sym`, `None` if the entry has length 0.
    pub fn d_code(&self, sym: usize) -> Option<HuffCode> {
        decode_entry(self.d_entry(sym))
    }

    /// The `crc` field: the CRC the device continues from (0 for a fresh stream; QPL
    /// `hw_aecs_api.h:104`, "Initial (on input) or final (on output) CRC").
    pub fn crc_seed(&self) -> u32 {
        self.get_u32(0)
    }

    /// Sets the `crc` field.
    pub fn set_crc_seed(&mut self, crc: u32) {
        self.put_u32(0, crc);
    }

    /// Number of valid bits in the output accumulator.
    pub fn output_accum_bits(&self) -> u32 {
        self.get_u32(OFF_NUM_OUTPUT_ACCUM_BITS)
    }

    /// The output accumulator's bytes.
    pub fn output_accum(&self) -> &[u8] {
        &self.bytes[OFF_OUTPUT_ACCUM..OFF_OUTPUT_ACCUM + OUTPUT_ACCUM_BYTES]
    }
}

impl std::fmt::Debug for CompressAecs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompressAecs")
            .field("output_accum_bits", &self.output_accum_bits())
            .finish_non_exhaustive()
    }
}

/// Encodes a code as a table entry: `(len << 15) | code`.
pub fn encode_entry(code: HuffCode) -> u32 {
    (u32::from(code.len) << ENTRY_LEN_SHIFT) | u32::from(code.code)
}

/// Decodes a table entry; `None` for length 0 or a length above 15.
pub fn decode_entry(entry: u32) -> Option<HuffCode> {
    let len = entry >> ENTRY_LEN_SHIFT;
    if len == 0 || len > 15 {
        return None;
    }
    Some(HuffCode {
        code: (entry & ENTRY_CODE_MASK) as u16,
        len: len as u8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_table_matches_kernel_entries() {
        // Values from drivers/crypto/intel/iaa/iaa_crypto_comp_fixed.c.
        let a = CompressAecs::fixed();
        assert_eq!(a.ll_entry(0), 0x40030);
        assert_eq!(a.ll_entry(143), 0x400BF);
        assert_eq!(a.ll_entry(144), 0x48190);
        assert_eq!(a.ll_entry(255), 0x481FF);
        assert_eq!(a.ll_entry(256), 0x38000);
        assert_eq!(a.ll_entry(279), 0x38017);
        assert_eq!(a.ll_entry(280), 0x400C0);
        assert_eq!(a.ll_entry(285), 0x400C5);
        assert_eq!(a.d_entry(0), 0x28000);
        assert_eq!(a.d_entry(29), 0x2801D);
        assert_eq!(a.as_bytes()[32], 0x03);
        assert_eq!(a.output_accum_bits(), 3);
        assert_eq!(&a.as_bytes()[0..8], &[0u8; 8]);
    }
}
