//! The emulator's DEFLATE decoder (RFC 1951): stored, fixed and dynamic blocks, a history
//! window of at most 4 KiB as IAA's, and the engine's stop/check-on-EOB behaviour. Errors
//! carry the analytics error code the hardware reports for the same condition.

use crate::raw::huffman::{DIST_BASE, DIST_EXTRA, LEN_BASE, LEN_EXTRA};
use crate::status::error_code as ec;

/// IAA's decompression history window.
pub const HISTORY: usize = 4096;

/// What the decoder should do at the end of a block and of input: the decompression flags
/// as QPL names them (`own_hw_definitions.h:74-83`; see `descriptor::decompr_flags`).
#[derive(Clone, Copy, Debug, Default)]
pub struct InflateMode {
    /// `ADDF_STOP_ON_EOB` (bit 2): stop at an end-of-block — the first one, or with
    /// `bfinal_only` the BFINAL block's. The end of a stored block counts as its
    /// end-of-block here (an assumption `hwcheck` asks the device about).
    pub stop_on_eob: bool,
    /// `ADDF_CHECK_FOR_EOB` (bit 3): input ending other than right after an end-of-block
    /// (with `bfinal_only`: the BFINAL block's) is an error (`BAD_EOF`).
    pub check_for_eob: bool,
    /// `ADDF_SEL_BFINAL_EOB` (bit 4): stop and check concern the BFINAL block's end only.
    pub bfinal_only: bool,
    /// `ADDF_IGNORE_END_BITS` (bits 8:6): that many bits at the end of the input are not
    /// input.
    pub ignore_end_bits: u8,
}

/// Why decoding stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InflateError {
    /// Malformed input: analytics error with this code.
    Analytics(u8),
    /// Output would exceed the limit.
    Overflow,
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize, // bit position
    end: usize, // bits of input
}

impl Bits<'_> {
    fn need(&mut self, n: u32) -> Option<u32> {
        if self.pos + n as usize > self.end {
            return None;
        }
        let mut v = 0u32;
        for i in 0..n {
            let p = self.pos + i as usize;
            let bit = (self.data[p / 8] >> (p % 8)) & 1;
            v |= u32::from(bit) << i;
        }
        self.pos += n as usize;
        Some(v)
    }
    fn align_byte(&mut self) {
        self.pos = self.pos.div_ceil(8) * 8;
    }
}

/// A canonical Huffman decoding table (counts per length and symbols in code order).
struct Huffman {
    counts: [u16; 16],
    symbols: Vec<u16>,
}

impl Huffman {
    /// Builds from code lengths; `None` when over-subscribed.
    fn new(lengths: &[u8]) -> Option<Huffman> {
        let mut counts = [0u16; 16];
        for &l in lengths {
            counts[usize::from(l)] += 1;
        }
        counts[0] = 0;
        let mut left: i32 = 1;
        for &c in counts.iter().skip(1) {
            left = (left << 1) - i32::from(c);
            if left < 0 {
                return None;
            }
        }
        let mut offs = [0u16; 16];
        for l in 1..15 {
            offs[l + 1] = offs[l] + counts[l];
        }
        let mut symbols = vec![0u16; lengths.len()];
        for (sym, &l) in lengths.iter().enumerate() {
            if l != 0 {
                symbols[usize::from(offs[usize::from(l)])] = sym as u16;
                offs[usize::from(l)] += 1;
            }
        }
        Some(Huffman { counts, symbols })
    }

    /// Decodes one symbol; `Err(true)` at end of input, `Err(false)` for an invalid code.
    fn decode(&self, bits: &mut Bits<'_>) -> Result<u16, bool> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= bits.need(1).ok_or(true)? as i32;
            let count = i32::from(self.counts[len]);
            if code - count < first {
                return Ok(self.symbols[(index + (code - first)) as usize]);
            }
            index += count;
            first += count;
            first <<= 1;
            code <<= 1;
        }
        Err(false)
    }
}

fn fixed_tables() -> (Huffman, Huffman) {
    let mut l = [0u8; 288];
    for (i, v) in l.iter_mut().enumerate() {
        *v = match i {
            0..=143 => 8,
            144..=255 => 9,
            256..=279 => 7,
            _ => 8,
        };
    }
    let d = [5u8; 30];
    // Both are complete codes; construction cannot fail.
    match (Huffman::new(&l), Huffman::new(&d)) {
        (Some(a), Some(b)) => (a, b),
        _ => unreachable!("RFC 1951 fixed codes are valid"),
    }
}

/// Decodes `input` into at most `limit` bytes. Returns the output; with `sink == None` the
/// output is only counted (suppressed) but history is still kept for matches.
pub fn inflate(input: &[u8], limit: usize, mode: InflateMode) -> Result<Vec<u8>, InflateError> {
    let mut out: Vec<u8> = Vec::with_capacity(limit.min(1 << 16));
    let mut bits = Bits {
        data: input,
        pos: 0,
        end: (input.len() * 8).saturating_sub(usize::from(mode.ignore_end_bits)),
    };
    // Input ended: inside a block (`at_eob` false), or between blocks after an
    // end-of-block (`at_eob` true; `final_seen` false, since decoding ends at the final
    // block). Only CHECK_FOR_EOB makes that an error.
    let eof = |m: InflateMode, at_eob: bool| {
        if m.check_for_eob && (!at_eob || m.bfinal_only) {
            Err(InflateError::Analytics(ec::BAD_EOF))
        } else {
            Ok(())
        }
    };
    loop {
        let Some(hdr) = bits.need(3) else {
            // Input ended between blocks.
            if out.is_empty() {
                return Err(InflateError::Analytics(ec::BIGHDR));
            }
            eof(mode, true)?;
            return Ok(out);
        };
        let last = hdr & 1 == 1;
        match hdr >> 1 {
            0 => {
                bits.align_byte();
                let (Some(len), Some(nlen)) = (bits.need(16), bits.need(16)) else {
                    return Err(InflateError::Analytics(ec::BIGHDR));
                };
                if len != !nlen & 0xffff {
                    return Err(InflateError::Analytics(ec::INVALID_STORED_LEN));
                }
                for _ in 0..len {
                    let Some(b) = bits.need(8) else {
                        eof(mode, false)?;
                        return Ok(out);
                    };
                    push(&mut out, b as u8, limit)?;
                }
            }
            1 => {
                let (l, d) = fixed_tables();
                if !codes(&mut bits, &mut out, &l, &d, limit, mode)? {
                    return Ok(out);
                }
            }
            2 => {
                let (l, d) = dynamic_tables(&mut bits)?;
                if !codes(&mut bits, &mut out, &l, &d, limit, mode)? {
                    return Ok(out);
                }
            }
            _ => return Err(InflateError::Analytics(ec::INVALID_BLOCK_TYPE)),
        }
        if last || (mode.stop_on_eob && !mode.bfinal_only) {
            return Ok(out);
        }
    }
}

fn push(out: &mut Vec<u8>, b: u8, limit: usize) -> Result<(), InflateError> {
    if out.len() >= limit {
        return Err(InflateError::Overflow);
    }
    out.push(b);
    Ok(())
}

/// Decodes one block's symbols. `Ok(true)` at its end-of-block, `Ok(false)` when input
/// ended without one and that is allowed.
fn codes(
    bits: &mut Bits<'_>,
    out: &mut Vec<u8>,
    lit: &Huffman,
    dist: &Huffman,
    limit: usize,
    mode: InflateMode,
) -> Result<bool, InflateError> {
    let ended = |mode: InflateMode| {
        if mode.check_for_eob {
            Err(InflateError::Analytics(ec::BAD_EOF))
        } else {
            Ok(false)
        }
    };
    loop {
        let sym = match lit.decode(bits) {
            Ok(s) => s,
            Err(true) => return ended(mode),
            Err(false) => return Err(InflateError::Analytics(ec::BAD_LL_CODE)),
        };
        match sym {
            0..=255 => push(out, sym as u8, limit)?,
            256 => return Ok(true),
            257..=285 => {
                let i = usize::from(sym - 257);
                let Some(extra) = bits.need(u32::from(LEN_EXTRA[i])) else {
                    return ended(mode);
                };
                let len = usize::from(LEN_BASE[i]) + extra as usize;
                let dsym = match dist.decode(bits) {
                    Ok(s) => usize::from(s),
                    Err(true) => return ended(mode),
                    Err(false) => return Err(InflateError::Analytics(ec::BAD_D_CODE)),
                };
                if dsym >= 30 {
                    return Err(InflateError::Analytics(ec::BAD_D_CODE));
                }
                let Some(dextra) = bits.need(u32::from(DIST_EXTRA[dsym])) else {
                    return ended(mode);
                };
                let d = usize::from(DIST_BASE[dsym]) + dextra as usize;
                if d > HISTORY {
                    return Err(InflateError::Analytics(ec::BAD_DIST));
                }
                if d > out.len() {
                    return Err(InflateError::Analytics(ec::REF_BEFORE_START));
                }
                for _ in 0..len {
                    let b = out[out.len() - d];
                    push(out, b, limit)?;
                }
            }
            _ => return Err(InflateError::Analytics(ec::BAD_LL_CODE)),
        }
    }
}

/// Reads a dynamic block header (RFC 1951 §3.2.7).
fn dynamic_tables(bits: &mut Bits<'_>) -> Result<(Huffman, Huffman), InflateError> {
    let hdr = |v: Option<u32>| v.ok_or(InflateError::Analytics(ec::BIGHDR));
    let hlit = hdr(bits.need(5))? as usize + 257;
    let hdist = hdr(bits.need(5))? as usize + 1;
    let hclen = hdr(bits.need(4))? as usize + 4;
    if hlit > 286 {
        return Err(InflateError::Analytics(ec::TOO_MANY_LL_CODES));
    }
    if hdist > 30 {
        return Err(InflateError::Analytics(ec::TOO_MANY_D_CODES));
    }
    const ORDER: [usize; 19] = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];
    let mut cl = [0u8; 19];
    for &o in ORDER.iter().take(hclen) {
        cl[o] = hdr(bits.need(3))? as u8;
    }
    let clh = Huffman::new(&cl).ok_or(InflateError::Analytics(ec::UNDEF_CL_CODE))?;
    let mut lengths = vec![0u8; hlit + hdist];
    let mut i = 0;
    while i < hlit + hdist {
        let sym = match clh.decode(bits) {
            Ok(s) => s,
            Err(true) => return Err(InflateError::Analytics(ec::BIGHDR)),
            Err(false) => return Err(InflateError::Analytics(ec::UNDEF_CL_CODE)),
        };
        let (val, rep) = match sym {
            0..=15 => (sym as u8, 1),
            16 => {
                if i == 0 {
                    return Err(InflateError::Analytics(ec::WRONG_NUM_LL_CODES));
                }
                (lengths[i - 1], 3 + hdr(bits.need(2))? as usize)
            }
            17 => (0, 3 + hdr(bits.need(3))? as usize),
            _ => (0, 11 + hdr(bits.need(7))? as usize),
        };
        if i + rep > hlit + hdist {
            return Err(InflateError::Analytics(ec::WRONG_NUM_LL_CODES));
        }
        for l in &mut lengths[i..i + rep] {
            *l = val;
        }
        i += rep;
    }
    if lengths[256] == 0 {
        return Err(InflateError::Analytics(ec::BAD_LL_CODE_LEN));
    }
    let lit = Huffman::new(&lengths[..hlit]).ok_or(InflateError::Analytics(ec::BAD_LL_CODE_LEN))?;
    let dist =
        Huffman::new(&lengths[hlit..]).ok_or(InflateError::Analytics(ec::BAD_LL_CODE_LEN))?;
    Ok((lit, dist))
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: InflateMode = InflateMode {
        stop_on_eob: true,
        check_for_eob: true,
        bfinal_only: false,
        ignore_end_bits: 0,
    };

    /// A non-final stored block "ab", then a final stored block "cd".
    const TWO_BLOCKS: [u8; 14] = [
        0x00, 2, 0, 0xfd, 0xff, b'a', b'b', 0x01, 2, 0, 0xfd, 0xff, b'c', b'd',
    ];

    #[test]
    fn stop_and_check_follow_qpl_names_and_select_bfinal() {
        let mode = |flags: u16| InflateMode {
            stop_on_eob: flags & crate::raw::descriptor::decompr_flags::STOP_ON_EOB != 0,
            check_for_eob: flags & crate::raw::descriptor::decompr_flags::CHECK_FOR_EOB != 0,
            bfinal_only: flags & crate::raw::descriptor::decompr_flags::SEL_BFINAL_EOB != 0,
            ignore_end_bits: 0,
        };
        use crate::raw::descriptor::decompr_flags::{CHECK_FOR_EOB, SEL_BFINAL_EOB, STOP_ON_EOB};
        // Bit 2 (STOP_ON_EOB in QPL): stops at the first block's end.
        assert_eq!(inflate(&TWO_BLOCKS, 64, mode(STOP_ON_EOB)).unwrap(), b"ab");
        // Bit 3 alone (CHECK_FOR_EOB in QPL) does not stop there.
        assert_eq!(
            inflate(&TWO_BLOCKS, 64, mode(CHECK_FOR_EOB)).unwrap(),
            b"abcd"
        );
        // With SEL_BFINAL_EOB the stop waits for the final block.
        assert_eq!(
            inflate(&TWO_BLOCKS, 64, mode(STOP_ON_EOB | SEL_BFINAL_EOB)).unwrap(),
            b"abcd"
        );
        // Input that ends after a non-final block: fine for "check any EOB", an error when
        // the check concerns the final block's EOB.
        let first = &TWO_BLOCKS[..7];
        assert_eq!(inflate(first, 64, mode(CHECK_FOR_EOB)).unwrap(), b"ab");
        assert_eq!(
            inflate(first, 64, mode(CHECK_FOR_EOB | SEL_BFINAL_EOB)),
            Err(InflateError::Analytics(ec::BAD_EOF))
        );
        // Every rule of QPL's table decodes a complete stream.
        for rule in crate::raw::descriptor::decompr_flags::QPL_STOP_CHECK_RULES {
            let got = inflate(&TWO_BLOCKS, 64, mode(rule)).unwrap();
            assert!(got == b"ab" || got == b"abcd", "rule {rule:#x}: {got:?}");
        }
    }

    #[test]
    fn ignore_end_bits_shortens_the_input() {
        // Ignoring 7 bits of the last byte leaves the stored block one byte short.
        let m = InflateMode {
            ignore_end_bits: 7,
            ..M
        };
        assert_eq!(
            inflate(&TWO_BLOCKS[7..], 64, m),
            Err(InflateError::Analytics(ec::BAD_EOF))
        );
        assert_eq!(inflate(&TWO_BLOCKS[7..], 64, M).unwrap(), b"cd");
    }

    #[test]
    fn decodes_libdeflate_every_level() {
        let mut page = vec![0u8; 4096];
        for (i, b) in page.iter_mut().enumerate() {
            *b = ((i * 7) % 251) as u8 ^ if i % 64 < 32 { 0 } else { (i / 64) as u8 };
        }
        for level in 0..=12 {
            let mut c =
                libdeflater::Compressor::new(libdeflater::CompressionLvl::new(level).unwrap());
            let mut out = vec![0u8; 8192];
            let n = c.deflate_compress(&page, &mut out).unwrap();
            let got = inflate(&out[..n], 4096, M).unwrap();
            assert_eq!(got, page, "level {level}");
        }
    }

    #[test]
    fn errors_are_typed() {
        assert_eq!(
            inflate(&[0x07], 4096, M),
            Err(InflateError::Analytics(ec::INVALID_BLOCK_TYPE))
        );
        assert_eq!(
            inflate(&[], 4096, M),
            Err(InflateError::Analytics(ec::BIGHDR))
        );
        // Stored block "abc" with a bad NLEN.
        assert_eq!(
            inflate(&[0x01, 3, 0, 0, 0, b'a', b'b', b'c'], 4096, M),
            Err(InflateError::Analytics(ec::INVALID_STORED_LEN))
        );
        // Stored block of 3 bytes into a 2-byte limit.
        assert_eq!(
            inflate(&[0x01, 3, 0, 0xfc, 0xff, b'a', b'b', b'c'], 2, M),
            Err(InflateError::Overflow)
        );
    }
}
