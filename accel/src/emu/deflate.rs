//! The emulator's compressor: LZ77 over a 4 KiB window (hash chains) and Huffman coding
//! with the codes *read from the descriptor's AECS*, starting from the AECS output
//! accumulator bits (the block header in fixed mode) — as the engine does. With the kernel's
//! fixed-mode AECS this yields one final fixed-Huffman block, standard raw DEFLATE.

use crate::raw::aecs::CompressAecs;
use crate::raw::huffman::{
    distance_index, length_index, HuffCode, DIST_BASE, DIST_EXTRA, END_OF_BLOCK, LEN_BASE,
    LEN_EXTRA,
};

const WINDOW: usize = 4096;
const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 258;
const HASH_BITS: u32 = 12;
const MAX_CHAIN: usize = 32;

/// Why compression failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The output would exceed `max_dst`.
    Overflow,
    /// A symbol the data needs has no code in the AECS tables.
    MissingCode,
    /// The AECS output accumulator holds more bits than it has room for.
    BadAccumulator,
}

/// Output of the encoder.
#[derive(Debug)]
pub struct Encoded {
    /// The bytes (the last one padded when flushed).
    pub bytes: Vec<u8>,
    /// Valid bits in the last byte (0 = all eight).
    pub last_bits: u8,
}

struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
    max: usize,
}

impl BitWriter {
    fn put(&mut self, v: u32, bits: u32) -> Result<(), EncodeError> {
        debug_assert!(bits <= 32);
        self.acc |= u64::from(v) << self.n;
        self.n += bits;
        while self.n >= 8 {
            if self.out.len() >= self.max {
                return Err(EncodeError::Overflow);
            }
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
        Ok(())
    }
    fn put_code(&mut self, c: HuffCode) -> Result<(), EncodeError> {
        // Huffman codes are sent most-significant bit first (RFC 1951 §3.1.1).
        let rev = (u32::from(c.code).reverse_bits()) >> (32 - u32::from(c.len));
        self.put(rev, u32::from(c.len))
    }
    fn finish(mut self, flush: bool) -> Result<Encoded, EncodeError> {
        let last_bits = (self.n % 8) as u8;
        if flush && self.n > 0 {
            if self.out.len() >= self.max {
                return Err(EncodeError::Overflow);
            }
            self.out.push(self.acc as u8);
        }
        Ok(Encoded {
            bytes: self.out,
            last_bits,
        })
    }
}

/// The compression flags' end-processing field (bits 3:2, QPL `ADCF_END_PROC`,
/// `own_hw_definitions.h:53-55,90`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndProc {
    /// 0: nothing appended.
    None,
    /// 1: an end-of-block symbol (`AD_APPEND_EOB`).
    Eob,
    /// 2: end-of-block, then an empty stored block without BFINAL (`AD_APPEND_EOB_SB`).
    EobStored,
    /// 3: end-of-block, then an empty final stored block (`AD_APPEND_EOB_FINAL_SB`).
    EobFinalStored,
}

impl EndProc {
    /// Decodes the two-bit field.
    pub fn from_field(v: u16) -> EndProc {
        match v & 3 {
            0 => EndProc::None,
            1 => EndProc::Eob,
            2 => EndProc::EobStored,
            _ => EndProc::EobFinalStored,
        }
    }
}

/// Compresses `src` with `aecs`'s tables into at most `max_dst` bytes.
pub fn compress(
    src: &[u8],
    aecs: &CompressAecs,
    max_dst: usize,
    end: EndProc,
    flush: bool,
) -> Result<Encoded, EncodeError> {
    let mut w = BitWriter {
        out: Vec::with_capacity(max_dst.min(src.len() + 64)),
        acc: 0,
        n: 0,
        max: max_dst,
    };
    // Start from the accumulator bits (the fixed-mode block header).
    let acc_bits = aecs.output_accum_bits() as usize;
    if acc_bits > aecs.output_accum().len() * 8 {
        return Err(EncodeError::BadAccumulator);
    }
    for i in 0..acc_bits {
        let bit = (aecs.output_accum()[i / 8] >> (i % 8)) & 1;
        w.put(u32::from(bit), 1)?;
    }
    let ll = |s: usize| aecs.ll_code(s).ok_or(EncodeError::MissingCode);
    let dd = |s: usize| aecs.d_code(s).ok_or(EncodeError::MissingCode);

    let mut head = vec![usize::MAX; 1 << HASH_BITS];
    let mut prev = vec![usize::MAX; src.len()];
    let hash = |i: usize| {
        let v = u32::from(src[i]) | u32::from(src[i + 1]) << 8 | u32::from(src[i + 2]) << 16;
        (v.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
    };
    let insert = |i: usize, head: &mut Vec<usize>, prev: &mut Vec<usize>| {
        if i + MIN_MATCH <= src.len() {
            let h = hash(i);
            prev[i] = head[h];
            head[h] = i;
        }
    };
    let mut i = 0;
    while i < src.len() {
        let mut best_len = 0;
        let mut best_dist = 0;
        if i + MIN_MATCH <= src.len() {
            let mut cand = head[hash(i)];
            let mut chain = 0;
            let max_len = (src.len() - i).min(MAX_MATCH);
            while cand != usize::MAX && i - cand <= WINDOW && chain < MAX_CHAIN {
                let mut l = 0;
                while l < max_len && src[cand + l] == src[i + l] {
                    l += 1;
                }
                if l > best_len {
                    best_len = l;
                    best_dist = i - cand;
                    if l == max_len {
                        break;
                    }
                }
                cand = prev[cand];
                chain += 1;
            }
        }
        if best_len >= MIN_MATCH {
            let li = length_index(best_len as u16);
            w.put_code(ll(257 + li)?)?;
            w.put(
                u32::from(best_len as u16 - LEN_BASE[li]),
                u32::from(LEN_EXTRA[li]),
            )?;
            let di = distance_index(best_dist as u16);
            w.put_code(dd(di)?)?;
            w.put(
                u32::from(best_dist as u16 - DIST_BASE[di]),
                u32::from(DIST_EXTRA[di]),
            )?;
            for k in i..i + best_len {
                insert(k, &mut head, &mut prev);
            }
            i += best_len;
        } else {
            w.put_code(ll(usize::from(src[i]))?)?;
            insert(i, &mut head, &mut prev);
            i += 1;
        }
    }
    if end != EndProc::None {
        w.put_code(ll(usize::from(END_OF_BLOCK))?)?;
    }
    if matches!(end, EndProc::EobStored | EndProc::EobFinalStored) {
        // An empty stored block (RFC 1951 §3.2.4): BFINAL, BTYPE=00, pad to a byte, then
        // LEN = 0 and NLEN = 0xffff.
        w.put(u32::from(end == EndProc::EobFinalStored), 1)?;
        w.put(0, 2)?;
        let pad = (8 - w.n % 8) % 8;
        w.put(0, pad)?;
        w.put(0x0000, 16)?;
        w.put(0xffff, 16)?;
    }
    w.finish(flush)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_output_is_standard_deflate() {
        let aecs = CompressAecs::fixed();
        let mut page = vec![0u8; 4096];
        for (i, b) in page.iter_mut().enumerate() {
            *b = (i / 3 % 17) as u8 + if i > 2000 { (i % 5) as u8 } else { 0 };
        }
        let e = compress(&page, &aecs, 4095, EndProc::Eob, true).unwrap();
        assert_eq!(e.bytes[0] & 0b111, 0b011, "BFINAL=1, BTYPE=01");
        let mut d = libdeflater::Decompressor::new();
        let mut out = vec![0u8; 4096];
        assert_eq!(d.deflate_decompress(&e.bytes, &mut out).unwrap(), 4096);
        assert_eq!(out, page);
        // Incompressible-ish input overflows a tight limit.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        assert_eq!(
            compress(&noise, &aecs, 4095, EndProc::Eob, true).unwrap_err(),
            EncodeError::Overflow
        );
    }

    #[test]
    fn codes_come_from_the_aecs() {
        use crate::raw::huffman::fixed_ll_code;
        let page: Vec<u8> = (0..4096)
            .map(|i| {
                if i % 7 < 3 {
                    b'a'
                } else {
                    b'b' + (i % 5) as u8
                }
            })
            .collect();
        // Swap the codes of 'a' and 'b': a standard decoder then reads them swapped.
        let mut aecs = CompressAecs::fixed();
        aecs.set_ll(usize::from(b'a'), fixed_ll_code(u16::from(b'b')));
        aecs.set_ll(usize::from(b'b'), fixed_ll_code(u16::from(b'a')));
        let e = compress(&page, &aecs, 4096, EndProc::Eob, true).unwrap();
        let mut d = libdeflater::Decompressor::new();
        let mut out = vec![0u8; 4096];
        assert_eq!(d.deflate_decompress(&e.bytes, &mut out).unwrap(), 4096);
        let swapped: Vec<u8> = page
            .iter()
            .map(|&b| match b {
                b'a' => b'b',
                b'b' => b'a',
                o => o,
            })
            .collect();
        assert_eq!(out, swapped);
        // The header comes from the output accumulator: BFINAL=0 here.
        let mut hdr = CompressAecs::fixed();
        let mut bytes = *hdr.as_bytes();
        bytes[crate::raw::aecs::OFF_OUTPUT_ACCUM] = 0b010;
        *hdr = CompressAecs::from_bytes(bytes);
        let e = compress(&page, &hdr, 4096, EndProc::Eob, true).unwrap();
        assert_eq!(e.bytes[0] & 0b111, 0b010);
        // A symbol without a code cannot be encoded.
        let mut missing = CompressAecs::fixed();
        missing.set_ll(usize::from(b'a'), HuffCode { code: 0, len: 0 });
        assert_eq!(
            compress(&page, &missing, 4096, EndProc::Eob, true).unwrap_err(),
            EncodeError::MissingCode
        );
    }
}
